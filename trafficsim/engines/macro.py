"""The macroscopic engine (``engine="macro"``): compile a scenario to CTM arrays, run, record.

Compilation happens once per run, in plain numpy: links are cut into cells of equal length
``dx = L / floor(L / (v_f dt))`` so that ``v_f dt <= dx`` (CFL); routes become commodities with
one slot per (route, link); origins become sources with queues; signals become green windows per
movement. The run then calls :func:`trafficsim.kernels.ctm.ctm_advance` in chunks between the
times where a piecewise-constant input (demand, lane schedules, blocking, meters) changes, so
that every such change takes effect exactly at its step, and where controllers or route choice
act; the kernel records interval by interval within a chunk.
"""

from __future__ import annotations

import bisect
from collections import Counter
import math
from dataclasses import dataclass

import numpy as np

from ..control import FixedRateMeter, FixedTimeSignal
from ..kernels.ctm import (
    STATUS_NAN,
    STATUS_NEGATIVE,
    CTMControls,
    CTMNetwork,
    CTMRecord,
    CTMState,
    ctm_advance,
)
from ..network import allowed_turn_pairs
from ..results import Result, build_dataset
from ..scenario import Scenario
from ..routing import DynamicRouting
from ._feedback import MacroFeedback
from ._lane_groups import fold_links, fold_records, split_lane_groups
from ..lanes import derive_connectors
from ._route_choice import MacroRouteChoice
from ._common import (
    RouteTable,
    SimulationError,
    breakpoints,
    build_routes,
    float_array,
    give_way_table,
    has_signals,
    int_array,
    lanes_in_force,
    positive_seconds,
    progress_bar,
    step_index,
    steps_for,
)

__all__ = ["CompiledMacro", "compile_macro", "default_dt", "run_macro"]

#: Largest default time step [s]; smaller where a short link needs it (CFL).
MAX_DEFAULT_DT_S = 5.0
#: Largest default time step [s] on signalised networks, so green windows resolve to ~1-2 s.
MAX_DEFAULT_DT_SIGNALS_S = 2.0
#: Packets in each link's FIFO ring (route composition resolution).
N_PACKETS = 32


def default_dt(scenario: Scenario, record_interval_s: float = 60.0, *, cap: float | None = None) -> float:
    """The engine's default step [s]: the largest that satisfies CFL on every link, at most
    ``cap`` (default :data:`MAX_DEFAULT_DT_S`, :data:`MAX_DEFAULT_DT_SIGNALS_S` with signals), dividing the record
    interval evenly and, where a step of at least 1/64 of that one can, the horizon's last partial
    record interval too, so that the run ends at ``duration_s`` (1,000 s recorded every 7 s: 1 s,
    not 3.5 s, which would end at 1,001 s)."""
    if cap is None:
        cap = MAX_DEFAULT_DT_SIGNALS_S if has_signals(scenario) else MAX_DEFAULT_DT_S
    dt = min([cap] + [lk.free_flow_time_s for lk in scenario.network.links.values()])
    k = math.ceil(record_interval_s / dt - 1e-9)
    rest = scenario.duration_s - record_interval_s * math.floor(scenario.duration_s / record_interval_s + 1e-9)
    if rest > 1e-9 * record_interval_s:
        for kk in range(k, 64 * k + 1):
            steps = rest * kk / record_interval_s
            if abs(steps - round(steps)) <= 1e-9 * max(1.0, steps):
                return record_interval_s / kk
    return record_interval_s / k


@dataclass
class CompiledMacro:
    """A scenario compiled for the CTM kernel, plus the maps back to ids."""

    scenario: Scenario
    dt: float
    n_steps: int
    steps_per_record: int
    link_ids: list[str]
    node_ids: list[str]
    routes: RouteTable
    source_nodes: list[str]
    net: CTMNetwork
    cell_link: np.ndarray
    cell_x: np.ndarray
    #: current split of each flow's departures over its routes (dynamic route choice changes it)
    route_share: np.ndarray | None = None
    #: each movement of the kernel (index = ``net.move_sig`` row) as (input link id, output link
    #: id); None for a source's entry (input) or an exit (output)
    movements: list | None = None

    def __post_init__(self):
        if self.route_share is None:
            self.route_share = np.asarray(self.routes.share, dtype=np.float64)
        self._flow_of_route = np.asarray(self.routes.flow, dtype=np.int64)
        # every input below is piecewise constant between the scenario's breakpoints: computed
        # once per segment (the Python loops over flows and links cost more than a kernel chunk)
        self._breaks = breakpoints(self.scenario)
        self._segment_cache: dict[int, tuple] = {}
        self._blocks_cache: dict[tuple, tuple] = {}
        self._single_way: set[str] | None = None  # links with one allowed way on (see _lane_blocks)

    def _segment(self, t_s: float) -> tuple:
        key = bisect.bisect_right(self._breaks, t_s)
        if key not in self._segment_cache:
            sc = self.scenario
            lanes = lanes_in_force(sc, t_s, self.routes)
            lanes_arr = float_array([lanes[lid] for lid in self.link_ids])
            meter = np.full(len(self.link_ids), np.inf)
            index = {lid: i for i, lid in enumerate(self.link_ids)}
            for c in sc.controls:
                if isinstance(c, FixedRateMeter):
                    meter[index[c.link]] = min(meter[index[c.link]], c.rate_at(t_s) / 3600.0 * self.dt)
            flow_rate = np.array([f.rate_at(t_s) for f in sc.demand.flows] or [0.0])
            self._segment_cache[key] = (lanes_arr, meter, flow_rate, self._lane_blocks(t_s))
        return self._segment_cache[key]

    def _lane_blocks(self, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The lanes serving each movement at ``t_s``: first and last open lane of its input link,
        each link's open lanes, and each link's smallest share of its lanes that one of its
        movements has (1 where every lane serves every movement).

        The lanes are those of the lane connectors in force (as the micro engine drives them)
        where they are a property of the road: explicit connectors (``Network.connect_lanes``,
        the markings), and the connector of a link with a single way on (where fewer lanes
        continue, the lanes that end serve nothing at the node). At an unmarked diverge every lane
        serves every movement, as drivers use the lanes the turning volumes need: the micro
        engine's derived lanes there would, with the FIFO lane fit, let one overloaded turn lane
        hold back the whole link (see docs/models/ctm.md). The ways on
        are the turns the network allows (``trafficsim.network.allowed_turn_pairs``, as for routing)."""
        net = self.scenario.network
        open_lanes = {lid: net.links[lid].lanes_at(t_s) for lid in self.link_ids}
        key = tuple(open_lanes.values())  # the blocks change only with the lanes in force
        got = self._blocks_cache.get(key)
        if got is not None:
            return got
        if self._single_way is None:
            ways = Counter(a for a, _ in allowed_turn_pairs(net))
            self._single_way = {lid for lid, n in ways.items() if n == 1}
        # a movement's lanes depend only on its own link's movements: derive just the marked ones
        marked = [mv for mv in self.movements if mv[0] is not None and mv[1] is not None
                  and (mv in net.lane_connectors or mv[0] in self._single_way)]
        conn = derive_connectors(net, marked, open_lanes)
        index = {lid: i for i, lid in enumerate(self.link_ids)}
        M = len(self.movements)
        move_lo, move_hi = np.zeros(M, np.int64), np.zeros(M, np.int64)
        link_open = np.array([open_lanes[lid] for lid in self.link_ids], np.int64)
        link_share = np.ones(len(self.link_ids))
        for m, (a, b) in enumerate(self.movements):
            if a is None:
                continue
            n = open_lanes[a]
            lo, hi = conn[(a, b)][:2] if (a, b) in conn else (0, n - 1)
            move_lo[m], move_hi[m] = lo, hi
            if n > 0:
                l = index[a]
                link_share[l] = min(link_share[l], max(0, hi - lo + 1) / n)
        got = self._blocks_cache[key] = (move_lo, move_hi, link_open, link_share)
        return got

    def controls_at(self, t_s: float) -> CTMControls:
        """Control arrays in force at time ``t_s`` [s] (fresh arrays: controllers write into them)."""
        lanes_arr, meter, _, blocks = self._segment(t_s)
        return CTMControls(lanes_arr.copy(), meter.copy(), self.source_rates(t_s), *blocks)

    def source_rates(self, t_s: float) -> np.ndarray:
        """Arrivals per step [veh] into each source slot at ``t_s`` [s], split by ``route_share``."""
        flow_rate = self._segment(t_s)[2]
        route_rate = flow_rate[self._route_flow] * self._route_share / 3600.0 * self.dt
        rate = np.zeros(self.net.slot_route.shape[0])
        first_src_slot = int(self.net.slot_off[-1])
        rate[first_src_slot:] = route_rate[self.net.slot_route[first_src_slot:]]
        return rate

    @property
    def _route_flow(self) -> np.ndarray:
        return self._flow_of_route

    @property
    def _route_share(self) -> np.ndarray:
        return self.route_share


def compile_macro(scenario: Scenario, dt_s: float | None = None, record_interval_s: float = 60.0,
                  route_candidates: int = 1) -> CompiledMacro:
    """Compile ``scenario`` into CTM arrays; raises with a clear message on bad input.

    ``route_candidates > 1`` gives flows without explicit routes that many candidate routes
    (dynamic route choice; the first, the free-flow shortest path, starts with all the share).
    """
    controls = [c.validate(scenario.network) for c in scenario.controls]
    scenario = scenario.replace(controls=controls)
    net = scenario.network
    # checked before default_dt divides by the record interval
    record_interval_s = positive_seconds("record_interval_s", record_interval_s)
    dt = default_dt(scenario, record_interval_s) if dt_s is None else positive_seconds("dt_s", dt_s)
    n_steps, spr = steps_for(scenario, dt, record_interval_s)
    link_ids = list(net.links)
    node_ids = list(net.nodes)
    lidx = {lid: i for i, lid in enumerate(link_ids)}
    nidx = {nid: i for i, nid in enumerate(node_ids)}
    L = len(link_ids)

    # ---- cells (CFL)
    n_cells, dx = [], []
    for lid in link_ids:
        lk = net.links[lid]
        vf = lk.free_speed_kmh / 3.6
        n = int(math.floor(lk.length_m / (vf * dt) + 1e-9))
        if n < 1:
            raise SimulationError(
                f"link {lid!r}: CFL violated: length_m={lk.length_m:g} is shorter than one free-flow step "
                f"v_f*dt = {vf * dt:.1f} m; use dt_s <= {lk.length_m / vf:.3g} (or leave dt_s=None)"
            )
        n_cells.append(n)
        dx.append(lk.length_m / n)
    cell_off = np.concatenate([[0], np.cumsum(n_cells)])
    links = [net.links[lid] for lid in link_ids]
    vf = np.array([lk.free_speed_kmh / 3.6 for lk in links])
    w = np.array([lk.wave_speed_kmh / 3.6 for lk in links])
    q = np.array([lk.capacity_vph_per_lane / 3600.0 for lk in links])
    kj = np.array([lk.jam_density_vpkm_per_lane / 1000.0 for lk in links])
    dx = np.array(dx)
    alpha = vf * dt / dx
    beta = w * dt / dx
    prio = np.array([-1.0 if lk.priority is None else lk.priority for lk in links])

    # ---- routes -> slots (one per route and link of it), vectorised over all route-link pairs
    routes = build_routes(scenario, route_candidates)
    R = len(routes.links)
    route_len = np.array([len(p) for p in routes.links], dtype=np.int64)
    pair_link = np.array([lidx[lid] for p in routes.links for lid in p], dtype=np.int64)
    pair_route = np.repeat(np.arange(R, dtype=np.int64), route_len)
    route_start = np.concatenate([[0], np.cumsum(route_len)[:-1]]).astype(np.int64)
    pair_last = np.zeros(pair_link.shape[0], dtype=bool)
    pair_last[route_start + route_len - 1] = True
    pair_next = np.where(pair_last, -1, np.roll(pair_link, -1))        # next link on the route, -1 = leaves
    link_to = np.array([nidx[lk.to_node] for lk in links], dtype=np.int64)
    # sources: one per (origin node, first link), in order of first appearance
    src_key: dict[tuple[str, str], list[int]] = {}
    for r, path in enumerate(routes.links):
        origin = scenario.demand.flows[routes.flow[r]].origin
        src_key.setdefault((origin, path[0]), []).append(r)
    src_list = list(src_key.items())
    n_pairs = int(pair_link.shape[0])
    src_slot_off = [n_pairs]
    src_slot_route: list[int] = []
    for (_, _), rs in src_list:
        src_slot_route.extend(rs)
        src_slot_off.append(src_slot_off[-1] + len(rs))
    G = src_slot_off[-1]

    # ---- node inputs/outputs; a link's local output index at its upstream node
    sink_nodes = set(link_to[pair_link[pair_last]].tolist())
    node_in, node_in_off, node_out, node_out_off = [], [0], [], [0]
    out_pos = np.zeros(L, dtype=np.int64)       # local output index of link l at its upstream node
    sink_pos = np.full(len(node_ids), -1, dtype=np.int64)
    src_of_node: dict[str, list[int]] = {}
    for s_, ((o, _), _) in enumerate(src_list):
        src_of_node.setdefault(o, []).append(L + s_)
    for ni_, nid in enumerate(node_ids):
        ins = [lidx[lk.id] for lk in net.in_links(nid)] + src_of_node.get(nid, [])
        node_in.extend(ins)
        node_in_off.append(len(node_in))
        outs = [lidx[lk.id] for lk in net.out_links(nid)]
        out_pos[outs] = np.arange(len(outs))
        if ni_ in sink_nodes:
            sink_pos[ni_] = len(outs)
            outs.append(-1)
        node_out.extend(outs)
        node_out_off.append(len(node_out))
    max_in = max(1, max(np.diff(node_in_off)))
    max_out = max(1, max(np.diff(node_out_off)))
    pair_out = np.where(pair_next >= 0, out_pos[np.maximum(pair_next, 0)], sink_pos[link_to[pair_link]])

    # slots: by link, then by output at the link's downstream node, then route (so the kernel
    # moves a link's vehicles output by output); slot_of_pair maps each route-link pair to its slot
    order = np.lexsort((pair_route, pair_out, pair_link))
    slot_of_pair = np.empty(n_pairs, dtype=np.int64)
    slot_of_pair[order] = np.arange(n_pairs)
    slot_off = np.concatenate([[0], np.cumsum(np.bincount(pair_link, minlength=L))]).astype(np.int64)
    per_out = np.bincount(pair_link * max_out + pair_out, minlength=L * max_out).reshape(L, max_out)
    out_slot_off = (slot_off[:-1, None] + np.concatenate([np.zeros((L, 1), np.int64), np.cumsum(per_out, 1)], 1))
    out_slot_off = out_slot_off.reshape(-1).astype(np.int64)
    has = per_out > 0
    grp_lo = np.where(has.any(1), has.argmax(1), 0)
    grp_hi = np.where(has.any(1), max_out - has[:, ::-1].argmax(1), 0)

    # ---- movements (one per node input and output) and signals
    signals = {c.node: c for c in controls if isinstance(c, FixedTimeSignal)}
    sig_ids = {nid: s for s, nid in enumerate(signals)}
    src_link = np.array([lidx[first] for (_, first), _ in src_list], dtype=np.int64)
    n_src_slots = G - n_pairs
    src_slot_src = np.repeat(np.arange(len(src_list), dtype=np.int64), np.diff(src_slot_off))
    src_slot_route = np.asarray(src_slot_route, dtype=np.int64)
    # movement key: input (link, or L + source) x (output link + 1, 0 = sink)
    move_in = np.concatenate([pair_link, L + src_slot_src])
    move_to = np.concatenate([pair_next, src_link[src_slot_src] if n_src_slots else np.zeros(0, np.int64)])
    keys, slot_move_sorted = np.unique(move_in * (L + 1) + (move_to + 1), return_inverse=True)
    move_sig, move_wins, movements = [], [], []
    for key in keys.tolist():
        inp, out = divmod(key, L + 1)
        out -= 1
        movements.append((link_ids[inp] if inp < L else None, link_ids[out] if out >= 0 else None))
        node = node_ids[link_to[inp]] if inp < L else src_list[inp - L][0][0]
        sig = -1
        wins: list[tuple[float, float]] = []
        if node in signals and inp < L and out >= 0:
            sig = sig_ids[node]
            wins = signals[node].green_windows().get((link_ids[inp], link_ids[out]), [])
            if not wins:
                raise SimulationError(
                    f"signal at node {node!r}: movement {link_ids[inp]!r} -> {link_ids[out]!r} is used by "
                    f"demand but has green in no phase; add it to a phase"
                )
        move_sig.append(sig)
        move_wins.append(wins)

    slot_next = np.full(G, -1, dtype=np.int64)
    slot_out = np.zeros(G, dtype=np.int64)
    slot_move = np.zeros(G, dtype=np.int64)
    slot_route = np.zeros(G, dtype=np.int64)
    has_next = ~pair_last
    slot_next[slot_of_pair[has_next]] = slot_of_pair[np.flatnonzero(has_next) + 1]
    slot_out[slot_of_pair] = pair_out
    slot_move[slot_of_pair] = slot_move_sorted[:n_pairs]
    slot_route[slot_of_pair] = pair_route
    if n_src_slots:
        slot_next[n_pairs:] = slot_of_pair[route_start[src_slot_route]]
        slot_out[n_pairs:] = out_pos[src_link[src_slot_src]]
        slot_move[n_pairs:] = slot_move_sorted[n_pairs:]
        slot_route[n_pairs:] = src_slot_route
    move_win_off = np.concatenate([[0], np.cumsum([len(wn) for wn in move_wins])]).astype(np.int64)
    move_yield_off, move_yield, yield_tc, yield_tf = _give_way(net, controls, movements, lidx, link_to, node_in,
                                                               node_in_off, out_pos, max_out)
    win_start = [a for wn in move_wins for a, _ in wn]
    win_end = [b for wn in move_wins for _, b in wn]

    # ---- packets
    m_l = np.diff(slot_off)
    # one record per packet: total, amounts per output at the downstream node, amounts per slot
    pk_base = np.concatenate([[0], np.cumsum((1 + max_out + m_l) * N_PACKETS)[:-1]]) if L else np.zeros(0)
    storage = np.array([lk.max_lanes * lk.jam_density_vpkm_per_lane * lk.length_m / 1000.0 for lk in links])
    pk_min = storage / (N_PACKETS - 8)

    cnet = CTMNetwork(
        cell_off=int_array(cell_off), alpha=float_array(alpha), beta=float_array(beta),
        qstep_lane=float_array(q * dt), njam_lane=float_array(kj * dx),
        ncrit_lane=float_array(q / vf * dx), dx=float_array(dx), prio=float_array(prio),
        slot_off=int_array(slot_off), out_slot_off=int_array(out_slot_off), grp_lo=int_array(grp_lo), grp_hi=int_array(grp_hi), slot_next=int_array(slot_next), slot_out=int_array(slot_out),
        slot_move=int_array(slot_move), slot_route=int_array(slot_route),
        src_slot_off=int_array(src_slot_off), src_link=int_array(src_link),
        node_in_off=int_array(node_in_off), node_in=int_array(node_in),
        node_out_off=int_array(node_out_off), node_out=int_array(node_out),
        move_sig=int_array(move_sig), move_win_off=int_array(move_win_off),
        win_start=float_array(win_start), win_end=float_array(win_end),
        move_yield_off=int_array(move_yield_off), move_yield=int_array(move_yield),
        yield_tc=float_array(yield_tc), yield_tf=float_array(yield_tf),
        sig_cycle=float_array([signals[n].cycle_s for n in signals]),
        sig_offset=float_array([signals[n].offset_s for n in signals]),
        pk_base=int_array(pk_base), pk_min=float_array(pk_min), n_packets=N_PACKETS,
        max_in=int(max_in), max_out=int(max_out),
    )
    cell_link = np.repeat(np.arange(L), n_cells)
    cell_x = np.concatenate([(np.arange(n) + 0.5) * d for n, d in zip(n_cells, dx)]) if L else np.zeros(0)
    return CompiledMacro(
        scenario, dt, n_steps, spr, link_ids, node_ids, routes, [o for (o, _), _ in src_list], cnet,
        cell_link, cell_x, movements=movements,
    )


def _give_way(net, controls, movements, lidx, link_to, node_in, node_in_off, out_pos, max_out):
    """``(move_yield_off, move_yield, yield_tc, yield_tf)`` of :class:`~trafficsim.kernels.ctm.CTMNetwork`:
    for each movement, the node-local demand indices (``input * max_out + output``) of the
    movements it gives way to (:func:`~trafficsim.engines._common.give_way_table`: permitted
    left turns, priority junctions), and its critical gap and follow-up headway."""
    M = len(movements)
    per_move: list[list[int]] = [[] for _ in movements]
    tc, tf = np.zeros(M), np.zeros(M)
    for m, opp, t_c, t_f in give_way_table(net, controls, movements):
        nd = link_to[lidx[movements[m][0]]]
        local_in = {l: i for i, l in enumerate(list(node_in[node_in_off[nd]:node_in_off[nd + 1]]))}
        per_move[m] = [local_in[lidx[movements[o][0]]] * max_out + int(out_pos[lidx[movements[o][1]]]) for o in opp]
        tc[m], tf[m] = t_c, t_f
    off = np.concatenate([[0], np.cumsum([len(y) for y in per_move])]).astype(np.int64)
    return off, np.array([k for y in per_move for k in y], dtype=np.int64), tc, tf


def _new_state(c: CompiledMacro) -> CTMState:
    net = c.net
    L = len(c.link_ids)
    C = int(net.cell_off[-1])
    G = net.slot_route.shape[0]
    R = len(c.routes)
    M = net.move_sig.shape[0]
    m_last = int(net.slot_off[-1] - net.slot_off[-2]) if L else 0
    pk_size = int(net.pk_base[-1] + (1 + net.max_out + m_last) * net.n_packets) if L else 0
    return CTMState(
        n=np.zeros(C), pk=np.zeros(max(pk_size, 1)),
        pk_head=np.zeros(L, np.int64), pk_count=np.zeros(L, np.int64), queue=np.zeros(G),
        cum_in=np.zeros(L), cum_out=np.zeros(L), route_in=np.zeros(R), route_out=np.zeros(R),
        route_gen=np.zeros(R), link_inflow=np.zeros(L), slot_flow=np.zeros(G),
        green=np.ones(M, np.uint8), s_io=np.zeros(net.max_in * net.max_out), s_i=np.zeros(net.max_in),
        a_i=np.zeros(net.max_in), f_i=np.zeros(net.max_in), c_i=np.ones(net.max_in), act=np.zeros(net.max_in, np.uint8),
        y_io=np.ones(2 * net.max_in * net.max_out),
        r_o=np.zeros(net.max_out), link_out=np.zeros(L),
        link_send=np.zeros(L), link_recv=np.zeros(L),
    )


def _new_record(c: CompiledMacro, record_cells: bool) -> CTMRecord:
    T = int(math.ceil(c.n_steps / c.steps_per_record))
    L = len(c.link_ids)
    R = len(c.routes)
    S = len(c.source_nodes)
    C = int(c.net.cell_off[-1])
    z = lambda *shape: np.zeros(shape)  # noqa: E731
    return CTMRecord(
        vkt=z(T, L), vht=z(T, L), cum_in=z(T, L), cum_out=z(T, L), queue_veh=z(T, L), queue_m=z(T, L),
        queue_m_max=z(T, L), lanes=z(T, L), route_in=z(T, R), route_out=z(T, R), route_gen=z(T, R), src_queue=z(T, S),
        wait=z(T), cell_veh=z(T if record_cells else 0, C),
    )


def run_macro(
    scenario: Scenario,
    *,
    dt_s: float | None = None,
    record_interval_s: float = 60.0,
    capacity_drop: float = 0.0,
    record_cells: bool = False,
    progress: bool = False,
    seed: int | None = None,
    route_choice: str = "fixed",
    route_update_s: float | None = None,
    route_candidates: int | None = None,
    route_smoothing: float | None = None,
    route_logit_s: float | None = None,
    lane_groups: bool = True,
) -> Result:
    """Run the CTM engine; see :func:`trafficsim.simulate` for the options.

    ``lane_groups=True`` gives every link whose marked lanes (explicit lane connectors for every
    movement) split into disjoint groups one queue per group (:mod:`trafficsim.engines.
    _lane_groups`): left-turners held at their red then queue in their own lanes, not in front of
    the through vehicles. The result names the scenario's links; each sums its groups.

    ``route_choice="dynamic"`` re-splits each OD flow's new departures among its candidate
    routes every ``route_update_s`` [s] (default 300) from the instantaneous route travel times
    (:mod:`trafficsim.routing`: ``route_candidates`` generated routes per flow, default 5;
    ``route_smoothing`` weight of each update, default 0.5; ``route_logit_s`` logit scale [s],
    default 0 = all to the cheapest). Vehicles keep the route they departed on; with
    ``route_choice="en-route"`` the vehicles on their way also re-split at every update among
    their flow's routes through their link, by remaining travel time. The shares after every
    update are in ``result.final_state["route_shares"]``.

    ``capacity_drop`` (fraction in [0, 0.5), default 0) lowers the discharge of a cell in the
    congested state, so an active bottleneck discharges at ``(1 - drop)`` times its capacity
    once a queue stands behind it (Cassidy & Bertini 1999 report about 10%). ``seed`` is
    accepted for a uniform interface; the CTM is deterministic.
    """
    if not (0.0 <= capacity_drop < 0.5):
        raise SimulationError(f"capacity_drop must be in [0, 0.5), got {capacity_drop!r}")
    try:
        routing = DynamicRouting.from_options(route_choice, route_update_s, route_candidates, route_smoothing,
                                              route_logit_s)
    except ValueError as exc:
        raise SimulationError(str(exc)) from None
    run_scenario, parts = split_lane_groups(scenario) if lane_groups else (scenario, {})
    c = compile_macro(run_scenario, dt_s, record_interval_s, routing.candidates if routing else 1)
    st = _new_state(c)
    rec = _new_record(c, record_cells)
    cuts = {0, c.n_steps}
    cuts.update(step_index(t, c.dt) for t in breakpoints(c.scenario))
    if progress:
        # the kernel records interval by interval within a call; chunks per interval only so the
        # progress bar moves
        cuts.update(range(0, c.n_steps, c.steps_per_record))
    feedback = MacroFeedback.build(c)  # controllers (ALINEA) cut chunks at their sample/interval steps
    if feedback is not None:
        cuts.update(feedback.cut_steps(c.n_steps))
    chooser = MacroRouteChoice.build(c, routing)  # dynamic route choice cuts chunks at its updates
    if chooser is not None:
        cuts.update(chooser.cut_steps())
    cuts = sorted(k for k in cuts if 0 <= k <= c.n_steps)
    bar = progress_bar(progress, c.n_steps, "macro", scenario)
    try:
        for k0, k1 in zip(cuts[:-1], cuts[1:]):
            ctl = c.controls_at(k0 * c.dt)
            if chooser is not None:
                chooser.step(k0, st, ctl)
            if feedback is not None:
                feedback.step(k0, st, ctl)
            status = ctm_advance(k0, k1, c.dt, c.steps_per_record, capacity_drop, c.net, ctl, st, rec)
            if status == STATUS_NEGATIVE:
                raise SimulationError(f"CTM produced a negative cell count between t={k0 * c.dt:g} s and {k1 * c.dt:g} s")
            if status == STATUS_NAN:
                raise SimulationError(f"CTM produced NaN between t={k0 * c.dt:g} s and {k1 * c.dt:g} s")
            if bar is not None:
                bar.update(k1 - k0)
    finally:
        if bar is not None:
            bar.close()
    link_ids, route_links, per_link = c.link_ids, c.routes.links, rec
    cell_link_ids = np.asarray(c.link_ids, dtype=object)[c.cell_link]
    if parts:       # each link of the scenario sums its lane groups
        link_ids = list(scenario.network.links)
        members, owner = fold_links(c.link_ids, parts, link_ids)
        name = {p: lid for lid, ps in parts.items() for p in ps}
        route_links = [[name.get(lid, lid) for lid in path] for path in c.routes.links]
        cell_link_ids = np.asarray(link_ids, dtype=object)[owner[c.cell_link]]

        per_link = rec._replace(**fold_records({k: getattr(rec, k) for k in (
            "vkt", "vht", "cum_in", "cum_out", "queue_veh", "queue_m", "queue_m_max", "lanes")}, members))
    ds = build_dataset(
        scenario.replace(controls=[ctl.validate(scenario.network) for ctl in scenario.controls]) if parts else c.scenario,
        engine="macro",
        dt_s=c.dt,
        record_interval_s=record_interval_s,
        n_steps=c.n_steps,
        link_ids=link_ids,
        route_labels=c.routes.label,
        route_links=route_links,
        origins=c.source_nodes,
        vkt_m=per_link.vkt,
        vht_s=per_link.vht,
        cum_in=per_link.cum_in,
        cum_out=per_link.cum_out,
        queue_veh=per_link.queue_veh,
        queue_m=per_link.queue_m,
        queue_m_max=per_link.queue_m_max,
        lanes=per_link.lanes,
        route_in=rec.route_in,
        route_out=rec.route_out,
        route_gen=rec.route_gen,
        origin_queue=rec.src_queue,
        wait_s=rec.wait,
        extra_attrs={"capacity_drop": capacity_drop, "cells": int(c.net.cell_off[-1]),
                     "lane_groups": int(sum(len(p) for p in parts.values()))},
    )
    if record_cells:
        ds = ds.assign_coords(
            cell_link=("cell", cell_link_ids.astype(str)),
            cell_x=("cell", c.cell_x, {"units": "m", "long_name": "cell centre from link start"}),
        )
        cell_len = c.net.dx[c.cell_link]
        ds["cell_density"] = (
            ("time", "cell"),
            rec.cell_veh / cell_len[None, :] * 1000.0,
            {"units": "veh/km", "long_name": "time-mean density of each cell (all lanes)"},
        )
    state = {"cells": st.n.copy(), "queues": st.queue.copy()}
    if feedback is not None:
        state["controllers"] = feedback.log()
    if chooser is not None:
        state["route_shares"] = chooser.log()
    return Result(ds, scenario=scenario, engine="macro", final_state=state)
