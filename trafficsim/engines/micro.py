"""The microscopic engine (``engine="micro"``): IDM car-following and MOBIL lane changing.

This module compiles a :class:`~trafficsim.scenario.Scenario` into the flat arrays of
:mod:`trafficsim.kernels.micro`, draws every random number in Python from the seed (arrivals,
bus dwell times), runs the kernel in chunks between record boundaries and input breakpoints, and
returns the common :class:`~trafficsim.results.Result` (plus point detectors and sampled
trajectories when asked).

Lane-level rules derived from the network (no lane connectors need to be given):

* lanes are numbered from the right (0 = kerb lane); a lane count ``n`` in force (the lane
  schedule) opens lanes ``0 .. n-1``: closing lanes closes them from the left (median side);
* at a diverge, every turn the network allows takes part, used by a route or not (the lanes are
  a property of the road): the through movement (turning least, by at most
  :data:`~trafficsim.lanes.THROUGH_MAX_DEG`) keeps as many lanes as continue, the turns
  share the outer lanes with it (right turns the kerb lane, left turns the median lane), and
  spare lanes become turn lanes, split between right and left turns in proportion to their
  downstream lanes (ties to the left); without a through movement (a T's stem) the lanes are
  shared in proportion to the downstream lanes, right to left (a lane on a boundary serves
  both); a U-turn (back to the node the link came from, or turning by more than
  :data:`~trafficsim.lanes.U_TURN_DEG`) leaves from the leftmost lane and enters the
  leftmost lane, taking no lane from the others;
* at a merge, the widest feeding movement takes the leftmost lanes of the downstream link; the
  others attach from the right, except those turning further left than it (they come in from
  the left side, e.g. a left turn joining a road) which attach from the left and push it to the
  right; when they do not fit side by side they share lanes and merge by zipper at the node;
* when a movement feeds fewer downstream lanes than it has, its rightmost lanes end (an
  acceleration lane or a kerb lane ends on the right): vehicles must leave them;
* right-to-left order comes from the turning angle when nodes have coordinates; without
  coordinates the widest link is the through road on the left and the others attach on the
  right in insertion order;
* explicit connectors (:meth:`~trafficsim.network.Network.connect_lanes`) replace these rules
  for their movement.

Blocking events block the ``lanes`` rightmost lanes over their segment; kerbside bus stops are
on lane 0; a vehicle is *queued* when its speed is below ``queue_speed_frac`` (default 0.5)
times its desired speed, and a link's queue length is the length of the run of queued vehicles
that starts at the link's downstream end (longest over lanes); a vehicle that halted in the queue
standing at the link's end counts as queued until it leaves the link (a queue discharging at
green still reaches back to its standing part); a lane whose vehicles are all
queued, the last one's rear less than one free-speed equilibrium spacing from the link's start,
counts as full (the whole link length), like a CTM link whose every cell is congested. Where a
lane flows at the link's end, a queued vehicle in it that must leave it before the end (its lane
does not lead to its next link: it waits for a gap in the lanes that do) starts such a run too:
for it the lane ends there, and the queue behind it is measured from the link's end as the queue
of a lane that ended there would be (the head of a queue that waits to merge inside a link, e.g.
turners stopped in the through lanes, stands on that link, not on the one before).

Ramp meters (:class:`~trafficsim.control.FixedRateMeter`, :class:`~trafficsim.control.AlineaMeter`)
become ramp signals of the kernel, set between chunks by
:class:`~trafficsim.engines._feedback.MicroMeters` (ALINEA reads its detector zone from the
vehicle state there).
"""

from __future__ import annotations

import bisect
import heapq
import functools
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..control import Blocking, BusStop, FixedTimeSignal, TollBooth
from ..demand import VEHICLE_CLASSES
from ..kernels import idm
from ..kernels.micro import (
    C_CLAMP, C_ENTERED, C_EXITED, C_INSIDE, C_LC, C_UID, GREEN, STATUS_OK, STATUS_POOL,
    MicroControls, MicroNet, MicroRecord, MicroState, micro_advance,
)
from ..kernels.micro_io import chunk_needs
from ..results import Result, build_dataset
from ..scenario import Scenario
from ..routing import DynamicRouting
from ._route_choice import MicroRouteChoice
from ..lanes import derive_connectors
from ._common import (
    SimulationError, breakpoints, build_routes, float_array, give_way_table, int_array, positive_seconds, progress_bar,
    step_index, steps_for,
)
from ._feedback import MicroMeters

__all__ = ["VEHICLE_DEFAULTS", "LANE_CHANGE_DEFAULTS", "CompiledMicro", "compile_micro", "MicroStepper", "run_micro",
           "merge_priority_links", "default_micro_dt", "DEFAULT_DT_S"]

#: The capacity preset's time gap and critical speed, cached per process: pure functions of their
#: arguments, derived per class and link by every compile, and sweeps, seeds and remedy
#: evaluations repeat the same parameter sets (their flow-curve grids took 12% of a 1 h run of
#: the merge corridor).
_headway_for_capacity = functools.lru_cache(maxsize=4096)(idm.headway_for_capacity)
_critical_speed = functools.lru_cache(maxsize=4096)(idm.critical_speed)

#: Default IDM parameters per vehicle class: length [m], jam distance s0 [m], maximum
#: acceleration a [m/s2], comfortable deceleration b [m/s2], desired-speed cap [km/h] (``inf``:
#: the link's free speed), and the time-gap factor relative to the car's ``T`` on the same link.
#: The car's ``T`` is derived per link from ``capacity_vph_per_lane`` unless ``T_s`` is given.
#: ``b = 1.5``, ``s0 = 2`` follow Treiber & Kesting (2013, Table 11.2); the car's ``a = 2.0``
#: (their table: 1.0) is chosen so that a queue released by a signal discharges at about the
#: link capacity (1,900 veh/h/lane at 50 km/h gives about 1,900 measured; with a = 1.0 the
#: IDM's queue discharge is only about 1,450) - a calibrated, documented choice.
VEHICLE_DEFAULTS = {
    "car": {"length_m": 5.0, "s0_m": 2.0, "a_ms2": 2.0, "b_ms2": 1.5, "max_speed_kmh": math.inf, "T_factor": 1.0},
    "bus": {"length_m": 12.0, "s0_m": 2.0, "a_ms2": 1.0, "b_ms2": 1.5, "max_speed_kmh": 70.0, "T_factor": 1.2},
    "truck": {"length_m": 12.0, "s0_m": 2.0, "a_ms2": 0.8, "b_ms2": 1.5, "max_speed_kmh": 90.0, "T_factor": 1.2},
}

#: MOBIL and node-behaviour parameters (Kesting, Treiber & Helbing 2007 typical values).
LANE_CHANGE_DEFAULTS = {
    "politeness": 0.2,          # p
    "b_safe_ms2": 4.0,          # safety limit on the new follower's braking
    "threshold_ms2": 0.1,       # switching threshold
    "bias_right_ms2": 0.1,      # keep-right bias
    "min_gap_m": 0.5,           # geometric gap needed front and back
    "cooldown_s": 3.0,          # no second change within this time
    "free_distance_m": 300.0,   # discretionary moves off the route's lanes only this far from the link end
    "yield_distance_m": 100.0,  # zipper courtesy for vehicles this close to where their lane ends
    "lookahead_m": 300.0,       # how far a vehicle looks across nodes
    "amber_decel_ms2": 3.0,     # at amber, go on when stopping needs more than this
    "queue_speed_frac": 0.5,    # queued: speed below this fraction of the desired speed
    "insert_decel_ms2": 1.0,    # inserted vehicles never need to brake harder than this
    "strategic_distance_m": 1000.0,  # seek the lanes a later node needs from this far before it
    # lane-change relaxation (LMRS, Schakel, Knoop & van Arem 2012): right after a change the
    # changer and its new follower keep a time gap of relaxation_factor x T, which relaxes
    # exponentially back to T with time constant relaxation_s (LMRS: 25 s, the default; 0 = off:
    # the plain IDM, which brakes hard to open a short gap at once, docs/models/micro.md)
    "relaxation_s": 25.0,
    "relaxation_factor": 0.47,  # LMRS T_min / T_max = 0.56 / 1.2 s
}

IDM_DELTA = 4.0
#: Integer type of the vehicle state's slot indices and links (lanes, leaders, followers, targets,
#: route slots, classes): 4 bytes instead of 8 takes a pool slot from 177 to 125 bytes.
VEH_INT = np.int32
#: Dwell draws prepared per bus stop and chunk (reused cyclically if a chunk needs more).
DWELL_POOL = 64

#: Time steps [s] above this draw a warning: lane capacity falls at coarser steps (measured in
#: docs/models/micro.md, *Time step*)
COARSE_DT_S = 1.0
#: Time gaps [s] the capacity preset may give a link (``kernels.idm.headway_for_capacity``);
#: a capacity beyond them runs at the nearest, with a warning.
T_RANGE_S = (0.3, 8.0)
#: The default time step [s] (smaller on networks with links shorter than one step at free speed:
#: :func:`default_micro_dt`).
DEFAULT_DT_S = 0.5


def _class_params(vehicle_params: dict | None) -> dict:
    out = {c: dict(p) for c, p in VEHICLE_DEFAULTS.items()}
    for cls, over in (vehicle_params or {}).items():
        if cls not in out:
            raise SimulationError(f"vehicle_params: unknown vehicle class {cls!r}; known: {list(VEHICLE_CLASSES)}")
        for k, v in over.items():
            if k not in out[cls] and k != "T_s" and k != "v0_kmh":
                raise SimulationError(f"vehicle_params[{cls!r}]: unknown field {k!r}; known: {sorted(out[cls])} + ['T_s', 'v0_kmh']")
            if not (isinstance(v, (int, float)) and v > 0):
                raise SimulationError(f"vehicle_params[{cls!r}]: {k} must be a number > 0, got {v!r}")
            out[cls][k] = float(v)
    return out


@dataclass
class CompiledMicro:
    """A scenario compiled for the microscopic kernel, plus the maps back to ids."""

    scenario: Scenario
    dt: float
    n_steps: int
    steps_per_record: int
    link_ids: list
    routes: object
    n_demand_routes: int
    source_nodes: list
    net: MicroNet
    movements: list
    slot_move_pair: list
    blockings: list
    stops: list
    detectors: list
    lane0: np.ndarray
    connectors: dict = field(default_factory=dict, repr=False)  # lanes in force -> derive_connectors
    preferred: dict = field(default_factory=dict, repr=False)  # lanes in force -> _slot_lanes, _preferred_lanes
    lane_times: list | None = field(default=None, repr=False)  # times the lane state changes (see _lane_state)
    lane_states: dict = field(default_factory=dict, repr=False)  # interval between them -> _lane_state


def compile_micro(scenario: Scenario, dt_s: float = 0.5, record_interval_s: float = 60.0, *,
                  vehicle_params=None, lane_change=None, detectors=None, initial_vehicles=None,
                  capacity_preset: bool = True, route_candidates: int = 1) -> CompiledMicro:
    """Compile ``scenario`` into :class:`~trafficsim.kernels.micro.MicroNet` arrays
    (``route_candidates > 1``: candidate routes for dynamic route choice, see the macro engine)."""
    scenario.validate()
    controls = [c.validate(scenario.network) for c in scenario.controls]
    scenario = scenario.replace(controls=controls)
    net = scenario.network
    n_steps, spr = steps_for(scenario, dt_s, record_interval_s)
    link_ids = list(net.links)
    L = len(link_ids)
    lidx = {lid: i for i, lid in enumerate(link_ids)}
    links = [net.links[lid] for lid in link_ids]
    for lk in links:
        if lk.length_m < lk.free_speed_kmh / 3.6 * dt_s * (1.0 - 1e-9):  # (km/h round trips)
            raise SimulationError(
                f"link {lk.id!r}: length_m={lk.length_m:g} is shorter than one step at free speed "
                f"({lk.free_speed_kmh / 3.6 * dt_s:.1f} m); use dt_s <= {lk.length_m / (lk.free_speed_kmh / 3.6):.3g}"
            )
    lanes_max = [lk.max_lanes for lk in links]
    lane0 = np.concatenate([[0], np.cumsum(lanes_max)]).astype(np.int64)
    lane_link = np.repeat(np.arange(L), lanes_max)
    lane_idx = np.concatenate([np.arange(n) for n in lanes_max]) if L else np.zeros(0, np.int64)
    maxl = max(lanes_max)

    # ---- vehicle classes
    cp = _class_params(vehicle_params)
    C = len(VEHICLE_CLASSES)
    cl_v0 = np.zeros(C * L)
    cl_T = np.zeros(C * L)
    cl_vc = np.zeros(C * L)
    cache: dict = {}
    vcrit_cache: dict = {}
    clamped: dict = {}      # preset key out of IDM's reach -> the capacity it gets [veh/h/lane]
    unreachable: dict[str, float] = {}  # link -> that capacity
    for l, lk in enumerate(links):
        car = cp["car"]
        vf = lk.free_speed_kmh / 3.6
        for c, name in enumerate(VEHICLE_CLASSES):
            p = cp[name]
            v0 = p["v0_kmh"] / 3.6 if "v0_kmh" in p else min(vf, p["max_speed_kmh"] / 3.6)
            if "T_s" in p:
                T = p["T_s"]
            elif not capacity_preset:
                T = 1.0 * p["T_factor"]
            else:
                key = (lk.capacity_vph_per_lane, vf, car["s0_m"], car["length_m"])
                if key not in cache:
                    try:
                        cache[key] = _headway_for_capacity(lk.capacity_vph_per_lane / 3600.0, vf, car["s0_m"],
                                                           car["length_m"], IDM_DELTA, T_RANGE_S)
                    except ValueError:
                        # out of IDM's reach (a capacity too high for a very slow street): the
                        # nearest time gap, and the link runs at the capacity that gives
                        lo, hi = T_RANGE_S
                        q_lo = idm.steady_state_capacity(vf, lo, car["s0_m"], car["length_m"], IDM_DELTA)
                        cache[key] = lo if lk.capacity_vph_per_lane / 3600.0 > q_lo else hi
                        clamped[key] = idm.steady_state_capacity(vf, cache[key], car["s0_m"], car["length_m"],
                                                                 IDM_DELTA) * 3600.0
                if key in clamped:
                    unreachable[lk.id] = clamped[key]
                T = cache[key] * p["T_factor"]
            cl_v0[c * L + l] = v0
            cl_T[c * L + l] = T
            vkey = (v0, T, p["s0_m"], p["length_m"])
            if vkey not in vcrit_cache:  # the same on most links; 0.3 s per 1,000 calls
                vcrit_cache[vkey] = _critical_speed(v0, T, p["s0_m"], p["length_m"], IDM_DELTA)
            cl_vc[c * L + l] = vcrit_cache[vkey]
    cls_len = float_array([cp[n]["length_m"] for n in VEHICLE_CLASSES])
    if unreachable:
        shown = ", ".join(f"{lid!r} ({net.links[lid].capacity_vph_per_lane:.0f} -> {q:.0f})"
                          for lid, q in list(unreachable.items())[:3])
        warnings.warn(f"micro engine: capacity_vph_per_lane of {len(unreachable)} link(s) is outside what the IDM "
                      f"reaches at their free speed with a time gap in {list(T_RANGE_S)} s; they run at the nearest: "
                      f"{shown}{' and others' if len(unreachable) > 3 else ''} veh/h/lane", UserWarning, stacklevel=4)

    # ---- routes (demand, then the cyclic or explicit routes of initial vehicles)
    routes = build_routes(scenario, route_candidates)
    route_links = [tuple(p) for p in routes.links]
    route_cls = [VEHICLE_CLASSES.index(scenario.demand.flows[f].vehicle_class) for f in routes.flow]
    cyclic = [False] * len(route_links)
    R_d = len(route_links)
    init = []
    # an initial vehicle's route is checked and added once per distinct route (a ring of 50,000
    # vehicles shares one): the per-vehicle check and list search made this quadratic
    checked: set = set()
    extra_route: dict = {}
    for i, iv in enumerate(initial_vehicles or []):
        el = f"initial_vehicles[{i}]"
        try:
            lid = iv["link"]
        except (KeyError, TypeError):
            raise SimulationError(f"{el}: needs a 'link'") from None
        if lid not in net.links:
            raise SimulationError(f"{el}: link {lid!r} is not in the network")
        path = tuple(iv.get("route", (lid,)))
        if path not in checked:
            try:
                net.validate_route(path)
            except Exception as exc:  # NetworkError
                raise SimulationError(f"{el}: route: {exc}") from None
            checked.add(path)
        if lid not in path:
            raise SimulationError(f"{el}: route {list(path)} does not contain link {lid!r}")
        cyc = bool(iv.get("cyclic", False))
        if cyc and net.links[path[-1]].to_node != net.links[path[0]].from_node:
            raise SimulationError(f"{el}: cyclic route must end where it starts")
        cname = iv.get("vehicle_class", "car")
        if cname not in VEHICLE_CLASSES:
            raise SimulationError(f"{el}: vehicle_class must be one of {VEHICLE_CLASSES}, got {cname!r}")
        lane = int(iv.get("lane", 0))
        if not 0 <= lane < net.links[lid].max_lanes:
            raise SimulationError(f"{el}: lane {lane} does not exist on link {lid!r}")
        x = float(iv.get("x_m", 0.0))
        if not cp[cname]["length_m"] <= x <= net.links[lid].length_m:
            raise SimulationError(f"{el}: x_m must lie in [vehicle length, link length], got {x:g}")
        key = (path, cyc, VEHICLE_CLASSES.index(cname))
        r = extra_route.get(key)
        if r is None:
            r = extra_route[key] = len(route_links)
            route_links.append(path)
            cyclic.append(cyc)
            route_cls.append(key[2])
        init.append((r, path.index(lid), lidx[lid], lane, x, float(iv.get("speed_kmh", 0.0)) / 3.6))
    R = len(route_links)
    route_off = np.concatenate([[0], np.cumsum([len(p) for p in route_links])]).astype(np.int64)
    movements: list = []
    mv_index: dict = {}
    slot_link, slot_next, slot_move, slot_route, slot_pair, slot_vturn = [], [], [], [], [], []
    for r, path in enumerate(route_links):
        for k, lid in enumerate(path):
            slot_link.append(lidx[lid])
            slot_route.append(r)
            if k + 1 < len(path) or cyclic[r]:
                nxt_link = path[k + 1] if k + 1 < len(path) else path[0]
                pair = (lid, nxt_link)
                if pair not in mv_index:
                    mv_index[pair] = len(movements)
                    movements.append(pair)
                slot_next.append(route_off[r] + (k + 1 if k + 1 < len(path) else 0))
                slot_move.append(mv_index[pair])
                slot_vturn.append(net.turn_speeds.get(pair, math.inf) / 3.6)
                slot_pair.append(pair)
            else:
                # leaving the network is an exit movement (lid, None): always green unless a
                # meter on the link times it (a give-way exit, engines._feedback.MicroMeters)
                pair = (lid, None)
                if pair not in mv_index:
                    mv_index[pair] = len(movements)
                    movements.append(pair)
                slot_next.append(-1)
                slot_move.append(mv_index[pair])
                slot_vturn.append(math.inf)
                slot_pair.append(None)
    # sources: one per (origin node, first link), as in the macro engine
    src_key: dict = {}
    route_src = []
    for r in range(R):
        if r < R_d:
            origin = scenario.demand.flows[routes.flow[r]].origin
            key = (origin, route_links[r][0])
            src_key.setdefault(key, len(src_key))
            route_src.append(src_key[key])
        else:
            route_src.append(-1)
    source_nodes = [o for (o, _) in src_key]
    src_link = [lidx[f] for (_, f) in src_key]

    # ---- signals
    signals = [c for c in controls if isinstance(c, FixedTimeSignal)]
    sig_of_node = {s.node: i for i, s in enumerate(signals)}
    move_sig, win_off, ws, we, wa = [], [0], [], [], []
    for a, b in movements:
        node = net.links[a].to_node
        if b is not None and node in sig_of_node:
            sig = signals[sig_of_node[node]]
            t = 0.0
            found = False
            for p in sig.phases:
                if (a, b) in [tuple(m) for m in p.movements]:
                    ws.append(t)
                    we.append(t + p.green_s)
                    wa.append(t + p.green_s + p.amber_s)
                    found = True
                t += p.duration_s
            if not found:
                raise SimulationError(
                    f"signal at node {node!r}: movement {a!r} -> {b!r} is used by demand but has green in no phase; add it to a phase"
                )
            move_sig.append(sig_of_node[node])
        else:
            move_sig.append(-1)
        win_off.append(len(ws))

    # ---- movements that give way (permitted lefts, priority junctions): what to, critical gap
    # in the order of the critical gaps, one node's entries of one gap together (a block, whose
    # order the kernel rotates: see kernels.micro._give_way)
    table = sorted(give_way_table(net, controls, movements),
                   key=lambda row: (row[2], net.links[movements[row[0]][0]].to_node))
    yld_move, yld_off, yld_opp, yld_tc, yld_lo = [], [0], [], [], []
    for i, (m, opp, tc, _) in enumerate(table):
        yld_move.append(m)
        yld_opp.extend(opp)
        yld_off.append(len(yld_opp))
        yld_tc.append(tc)
        same = i > 0 and tc == table[i - 1][2] and \
            net.links[movements[m][0]].to_node == net.links[movements[table[i - 1][0]][0]].to_node
        yld_lo.append(yld_lo[-1] if same else i)
    block_n = Counter(yld_lo)
    yld_n = [block_n[lo] for lo in yld_lo]

    # ---- feeders: every lane of every link with a movement into the target's link
    feeders: list[list[int]] = [[] for _ in range(int(lane0[-1]))]
    for a, b in movements:
        if b is None:
            continue
        la, lb = lidx[a], lidx[b]
        for j in range(lane0[lb], lane0[lb + 1]):
            feeders[j].extend(range(lane0[la], lane0[la + 1]))
    feeders = [sorted(set(f)) for f in feeders]
    feed_off = np.concatenate([[0], np.cumsum([len(f) for f in feeders])]).astype(np.int64)
    lane_order = _downstream_first(feeders)

    # ---- blocked segments (the `lanes` rightmost lanes), bus stops, detectors
    blockings = [c for c in controls if isinstance(c, Blocking)]
    obs: list[list[tuple]] = [[] for _ in range(int(lane0[-1]))]
    for bi, c in enumerate(blockings):
        l = lidx[c.link]
        for i in range(min(c.lanes, lanes_max[l])):
            obs[lane0[l] + i].append((c.position_m, c.position_m + c.length_m, bi))
    obs_flat = [o for lst in obs for o in lst]
    obs_off = np.concatenate([[0], np.cumsum([len(o) for o in obs])]).astype(np.int64)
    stops = sorted((c for c in controls if isinstance(c, BusStop)), key=lambda c: (lidx[c.link], c.position_m))
    stop_count = np.bincount([lidx[c.link] for c in stops], minlength=L) if stops else np.zeros(L, np.int64)
    # toll booths: a line across every lane of their link; draws in the rows after the stops
    booths = [c for c in controls if isinstance(c, TollBooth)]
    booth_pos, booth_min = np.full(int(lane0[-1]), -1.0), np.zeros(int(lane0[-1]))
    booth_row = np.full(int(lane0[-1]), -1, np.int64)
    booth_lanes: list[TollBooth] = []
    for c in booths:
        l = lidx[c.link]
        if booth_pos[lane0[l]] >= 0.0 or any(st.link == c.link for st in stops):
            raise SimulationError(f"toll booth on link {c.link!r}: a link takes one booth line and no bus stop")
        for j in range(lane0[l], lane0[l + 1]):
            booth_pos[j], booth_min[j] = c.position_m, c.min_stop_s
            booth_row[j] = len(stops) + len(booth_lanes)
            booth_lanes.append(c)
    dets = []
    for i, d in enumerate(detectors or []):
        if isinstance(d, dict):
            lid, pos = d.get("link"), d.get("position_m")
        else:
            lid, pos = d
        if lid not in net.links:
            raise SimulationError(f"detectors[{i}]: link {lid!r} is not in the network")
        if not (isinstance(pos, (int, float)) and 0 < pos <= net.links[lid].length_m):
            raise SimulationError(f"detectors[{i}]: position_m must lie in (0, length_m] of link {lid!r}, got {pos!r}")
        dets.append((lidx[lid], float(pos), i))
    dets_sorted = sorted(dets)
    det_count = np.bincount([d[0] for d in dets], minlength=L) if dets else np.zeros(L, np.int64)

    lc = dict(LANE_CHANGE_DEFAULTS)
    for k, v in (lane_change or {}).items():
        if k not in lc:
            raise SimulationError(f"lane_change: unknown parameter {k!r}; known: {sorted(lc)}")
        if not (isinstance(v, (int, float)) and v >= 0):
            raise SimulationError(f"lane_change: {k} must be a number >= 0, got {v!r}")
        lc[k] = float(v)
    if not 0.0 < lc["relaxation_factor"] <= 1.0:
        raise SimulationError(f"lane_change: relaxation_factor must lie in (0, 1], got {lc['relaxation_factor']!r}")
    par = float_array([
        IDM_DELTA, lc["politeness"], lc["b_safe_ms2"], lc["threshold_ms2"], lc["bias_right_ms2"], lc["min_gap_m"],
        lc["cooldown_s"], lc["free_distance_m"], lc["yield_distance_m"], lc["lookahead_m"], lc["amber_decel_ms2"],
        lc["queue_speed_frac"], lc["insert_decel_ms2"], lc["strategic_distance_m"], lc["relaxation_s"],
        lc["relaxation_factor"], 0.0,  # P_ALLTGT: off (a test-only switch, see micro_base)
    ])
    mnet = MicroNet(
        link_len=float_array([lk.length_m for lk in links]), link_lane0=int_array(lane0),
        lane_link=int_array(lane_link), lane_idx=int_array(lane_idx), cls_len=cls_len,
        cls_s0=float_array([cp[n]["s0_m"] for n in VEHICLE_CLASSES]),
        cls_a=float_array([cp[n]["a_ms2"] for n in VEHICLE_CLASSES]),
        cls_b=float_array([cp[n]["b_ms2"] for n in VEHICLE_CLASSES]),
        cls_sab=2.0 * np.sqrt(float_array([cp[n]["a_ms2"] * cp[n]["b_ms2"] for n in VEHICLE_CLASSES])),
        cl_v0=float_array(cl_v0), cl_T=float_array(cl_T), cl_vcrit=float_array(cl_vc),
        route_cls=int_array(route_cls), route_off=int_array(route_off), route_src=int_array(route_src),
        slot_link=int_array(slot_link), slot_route=int_array(slot_route), slot_next=int_array(slot_next),
        slot_move=int_array(slot_move), slot_vturn=float_array(slot_vturn), move_sig=int_array(move_sig), move_release=np.zeros(len(move_sig), np.uint8),
        move_win_off=int_array(win_off),
        win_start=float_array(ws), win_end=float_array(we), win_amber=float_array(wa),
        sig_cycle=float_array([s.cycle_s for s in signals]), sig_offset=float_array([s.offset_s for s in signals]),
        feed_off=int_array(feed_off), feed_lane=int_array([j for f in feeders for j in f]),
        obs_off=int_array(obs_off), obs_pos=float_array([o[0] for o in obs_flat]),
        obs_end=float_array([o[1] for o in obs_flat]),
        stop_off=int_array(np.concatenate([[0], np.cumsum(stop_count)])),
        stop_pos=float_array([c.position_m + c.length_m for c in stops]),
        stop_bay=int_array([1 if c.bay else 0 for c in stops]),
        stop_start=float_array([c.position_m for c in stops]),
        booth_pos=float_array(booth_pos), booth_min=float_array(booth_min), booth_row=int_array(booth_row),
        det_off=int_array(np.concatenate([[0], np.cumsum(det_count)])),
        det_pos=float_array([d[1] for d in dets_sorted]), det_id=int_array([d[2] for d in dets_sorted]),
        src_link=int_array(src_link), par=par, maxl=int(maxl), lane_order=int_array(lane_order),
        move_in=int_array([lidx[a] for a, _ in movements]), yld_move=int_array(yld_move),
        move_gw=np.isin(np.arange(len(movements)), yld_move).astype(np.uint8),
        move_out=int_array([lidx[b] if b is not None else -1 for _, b in movements]),
        yld_off=int_array(yld_off), yld_opp=int_array(yld_opp), yld_tc=float_array(yld_tc),
        yld_lo=int_array(yld_lo), yld_n=int_array(yld_n),
    )
    c = CompiledMicro(scenario, float(dt_s), n_steps, spr, link_ids, routes, R_d, source_nodes, mnet,
                      movements, slot_pair, blockings, stops, [(link_ids[d[0]], d[1]) for d in dets], lane0)
    c.obs_block = [o[2] for o in obs_flat]
    c.init = init
    c.route_links = route_links
    c.route_share = np.asarray(routes.share, dtype=np.float64)  # dynamic route choice re-splits it
    c.class_params = cp
    c.booth_lanes = booth_lanes
    # most vehicles insertion can place in one step: one per lane of each source's first link
    c.source_lanes = int(sum(lane0[l + 1] - lane0[l] for l in src_link))
    c.lane_change = lc
    return c


def _lane_state(c: CompiledMicro, t: float) -> tuple:
    """The lane part of the controls at time ``t``: ``(lane_open, lo, hi, smap, active, lanes_rec,
    plo, phi, dpref)``, from the lane schedules and blockings in force.

    It changes only at the schedules' and blockings' times, so it is built once per interval
    between them and reused (the kernel only reads it): building it per chunk walked every link
    in Python, a tenth of a short run's time with one-minute records."""
    if c.lane_times is None:
        times = {s for lk in c.scenario.network.links.values() for s, _ in lk.lane_schedule}
        times.update(x for b in c.blockings for x in (b.start_s, b.end_s))
        c.lane_times = sorted(times)
    seg = bisect.bisect_right(c.lane_times, t)
    got = c.lane_states.get(seg)
    if got is not None:
        return got
    net = c.scenario.network
    open_lanes = {lid: net.links[lid].lanes_at(t) for lid in c.link_ids}
    lane_open = np.zeros(int(c.lane0[-1]), np.uint8)
    for l, lid in enumerate(c.link_ids):
        lane_open[c.lane0[l]:c.lane0[l] + open_lanes[lid]] = 1
    # the connectors change only with the lanes in force: derive them once per lane pattern
    conn_key = tuple(open_lanes[lid] for lid in c.link_ids)
    conn = c.connectors.get(conn_key)
    if conn is None:
        conn = c.connectors[conn_key] = derive_connectors(net, c.movements, open_lanes)
    maps = c.preferred.get(conn_key)
    if maps is None:
        # the slots' lane maps and preferred lanes change only with the lanes in force too
        lo, hi, smap = _slot_lanes(c, conn, open_lanes)
        maps = c.preferred[conn_key] = (lo, hi, smap) + _preferred_lanes(c, lo, hi, smap)
    lo, hi, smap, plo, phi, dpref = maps
    active = np.array([1 if c.blockings[b].start_s <= t < c.blockings[b].end_s else 0 for b in c.obs_block], np.uint8)
    lanes_rec = np.array([float(open_lanes[lid]) for lid in c.link_ids])
    for b in c.blockings:
        if b.start_s <= t < b.end_s:
            l = c.link_ids.index(b.link)
            lanes_rec[l] = max(0.0, lanes_rec[l] - b.lanes)
    got = c.lane_states[seg] = (lane_open, lo, hi, smap, active, lanes_rec, plo, phi, dpref)
    return got


#: Most (step, route) cells of Poisson arrivals a chunk draws at once (4 MB of int64), see _chunk_steps
ARRIVALS_BUDGET = 1 << 19


def _chunk_steps(c: CompiledMicro) -> int:
    """Steps between the chunk cuts that do not come from an input: a multiple of the record interval.

    A chunk's controls are drawn when it starts. Its Poisson arrivals, one row per step drawn in
    order, are the rows two shorter chunks at the same rate would draw in turn, so where a chunk
    ends does not change a seed's arrivals; a chunk can then span many record intervals, and a
    short run builds its controls a few times instead of once per record interval (the kernel
    is still called once per interval, on a slice of them). The arrivals array is kept under
    :data:`ARRIVALS_BUDGET` cells.
    Bus stops and toll booths draw a pool of :data:`DWELL_POOL` dwell or service times per chunk
    and reuse it when a chunk needs more, so with them chunks stay one record interval long, as
    they were drawn before.
    """
    spr = c.steps_per_record
    if c.stops or c.booth_lanes:
        return spr
    per = ARRIVALS_BUDGET // max(len(c.route_links), 1)
    return max(spr, per - per % spr)


def _controls(c: CompiledMicro, t: float, n_chunk: int, rng: np.random.Generator) -> MicroControls:
    sc = c.scenario
    lane_open, lo, hi, smap, active, lanes_rec, plo, phi, dpref = _lane_state(c, t)
    R = len(c.route_links)
    rate = np.zeros(R)
    flows = sc.demand.flows
    for r in range(c.n_demand_routes):
        rate[r] = flows[c.routes.flow[r]].rate_at(t) * c.route_share[r] / 3600.0 * c.dt
    arrivals = rng.poisson(rate[None, :], size=(max(n_chunk, 1), R)).astype(np.int64)
    dwell = np.zeros((max(len(c.stops) + len(c.booth_lanes), 1), DWELL_POOL))
    # bus dwell times, then each booth lane's service times (gamma, drawn after the dwell times so
    # that runs without booths draw exactly as before)
    specs = [(st.dwell_mean_s, st.dwell_cv) for st in c.stops] + [(b.service_time_s, b.service_cv)
                                                                    for b in c.booth_lanes]
    for s, (mean, cv) in enumerate(specs):
        if cv > 0:
            k = 1.0 / cv ** 2
            dwell[s] = rng.gamma(k, mean / k, DWELL_POOL)
        else:
            dwell[s] = mean
        dwell[s] = np.maximum(dwell[s], 1e-3)
    return MicroControls(lane_open, lo, hi, smap, active, arrivals, dwell, lanes_rec, plo, phi, dpref)


def _slot_lanes(c: CompiledMicro, conn: dict, open_lanes: dict):
    """Per slot, the lanes ``lo..hi`` that lead to the next link and the lane each enters there
    (``smap``, -1: not connected), from the connectors in force."""
    mn = c.net
    NS = len(c.slot_move_pair)
    lo = np.zeros(NS, np.int64)
    hi = np.full(NS, -1, np.int64)
    smap = np.full(NS * mn.maxl, -1, np.int64)
    lidx = {lid: i for i, lid in enumerate(c.link_ids)}
    net = c.scenario.network
    for s, pair in enumerate(c.slot_move_pair):
        if pair is None:
            l = int(mn.slot_link[s])
            n = open_lanes[c.link_ids[l]] or net.links[c.link_ids[l]].max_lanes
            lo[s], hi[s] = 0, n - 1
            continue
        a, b = pair
        lo[s], hi[s], targets = conn[pair]
        for i, tgt in zip(range(lo[s], hi[s] + 1), targets):
            smap[s * mn.maxl + i] = c.lane0[lidx[b]] + tgt
    return lo, hi, smap


def _preferred_lanes(c: CompiledMicro, lo: np.ndarray, hi: np.ndarray, smap: np.ndarray):
    """Preferred lanes per slot: those of ``lo..hi`` whose lane on the next link is preferred there.

    Walks each route backwards from its last link: at the last link every lane that reaches the
    destination is preferred; on an earlier link, the lanes leading to the next link's preferred
    lanes (all of ``lo..hi`` when none does). ``dpref`` is the distance from the link's end to the
    node where the preference becomes a need (the end of the first later link whose preferred
    lanes are all the lanes leading on). Cyclic routes prefer nothing beyond ``lo..hi``.
    """
    mn = c.net
    plo, phi, dpref = lo.copy(), hi.copy(), np.zeros(len(lo))
    off, nxt, slink, maxl = mn.route_off, mn.slot_next, mn.slot_link, mn.maxl
    for r in range(len(off) - 1):
        s0, s1 = int(off[r]), int(off[r + 1])
        if s1 <= s0 or nxt[s1 - 1] >= 0:
            continue  # empty or cyclic
        for s in range(s1 - 2, s0 - 1, -1):
            n = s + 1
            b = int(slink[n])
            base = int(c.lane0[b])
            ok = [i for i in range(lo[s], hi[s] + 1) if smap[s * maxl + i] >= 0
                  and plo[n] <= smap[s * maxl + i] - base <= phi[n]]
            if not ok or (ok[0] == lo[s] and ok[-1] == hi[s]):
                continue
            plo[s], phi[s] = ok[0], ok[-1]
            strict = plo[n] > lo[n] or phi[n] < hi[n]
            dpref[s] = mn.link_len[b] + (dpref[n] if strict else 0.0)
    return plo, phi, dpref


def _new_state(c: CompiledMicro, n_pool: int) -> MicroState:
    mn = c.net
    N = n_pool
    NL = int(c.lane0[-1])
    S = len(c.source_nodes)
    R = len(c.route_links)
    L = len(c.link_ids)
    f8 = lambda: np.zeros(N)  # noqa: E731
    i4 = lambda: np.full(N, -1, VEH_INT)  # noqa: E731
    return MicroState(
        x=f8(), v=f8(), x_new=f8(), v_new=f8(), dwell=f8(), lc_until=f8(), cls=np.zeros(N, VEH_INT), slot=i4(),
        lane=i4(), nxt=i4(), prv=i4(), tgt=i4(), yld=i4(), stop_next=i4(), flags=np.zeros(N, np.uint8),
        uid=np.full(N, -1, np.int64), free=np.arange(N - 1, -1, -1, dtype=VEH_INT), n_free=np.array([N], np.int64),
        lane_head=np.full(NL, -1, VEH_INT), lane_tail=np.full(NL, -1, VEH_INT),
        qbuf=np.zeros(max(S, 1) * 64, np.int64), q_off=np.arange(S + 1, dtype=np.int64) * 64,
        q_head=np.zeros(S, np.int64), q_len=np.zeros(S, np.int64), bay=np.zeros(N, VEH_INT),
        n_bay=np.zeros(1, np.int64), cum_in=np.zeros(L, np.int64), cum_out=np.zeros(L, np.int64),
        sink_exits=np.zeros(L, np.int64), route_gen=np.zeros(R, np.int64), route_in=np.zeros(R, np.int64),
        route_out=np.zeros(R, np.int64), move_state=np.ones(max(len(c.movements), 1), np.uint8),
        stop_used=np.zeros(max(len(c.stops) + len(c.booth_lanes), 1), np.int64), counters=np.zeros(8, np.int64),
        lc_v=np.zeros(N, VEH_INT), lc_f=np.zeros(N, VEH_INT), lc_l=np.zeros(N, VEH_INT), afree=f8(),
        tfac=np.ones(N), sig_next=np.zeros(len(mn.sig_cycle)),
        sig_tc=np.zeros(len(mn.sig_cycle)), move_onset=np.full(max(len(c.movements), 1), -1, np.int64),
        lane_md=np.zeros(NL, np.uint8),
        ins_vfree=np.full(len(mn.cl_v0), -1.0), booth_wait=np.zeros(NL),
        yld_raw=np.full(len(mn.yld_move), GREEN, np.uint8),
    )


def _downstream_first(feeders: list[list[int]]) -> list[int]:
    """The lanes in the order the move pass walks them: every lane after the lanes it feeds across
    a node (``feeders[j]``: the lanes that may feed lane ``j``), as far as the network's cycles
    allow; ties, and each cycle's entry, by lane index.

    A vehicle's step is bounded by what is ahead of it across the node (the next lane's tail, a
    zipper partner); walked first, their new positions bound it rather than their old ones
    (``trafficsim.kernels.micro._move``)."""
    n = len(feeders)
    out_deg = [0] * n
    for f in feeders:
        for i in f:
            out_deg[i] += 1
    done = [False] * n
    order: list[int] = []
    ready = [j for j in range(n) if out_deg[j] == 0]
    heapq.heapify(ready)
    nxt_cycle = 0
    while len(order) < n:
        if not ready:
            # a cycle (a grid's blocks, a ring): enter it at its lowest undone lane
            while done[nxt_cycle]:
                nxt_cycle += 1
            ready = [nxt_cycle]
        j = heapq.heappop(ready)
        if done[j]:
            continue
        done[j] = True
        order.append(j)
        for i in feeders[j]:
            out_deg[i] -= 1
            if out_deg[i] == 0 and not done[i]:
                heapq.heappush(ready, i)
    return order


def _initial_pool(n_initial: int) -> int:
    """Slots of the first vehicle pool: the initial vehicles and 64 more, at least 256; the
    arrivals of each chunk grow it (:func:`_grow`, by half), so a demand-driven run holds
    between one and 1.5 slots per vehicle present at its peak."""
    return max(256, n_initial + 64)


_PER_VEHICLE = ("x", "v", "x_new", "v_new", "dwell", "lc_until", "cls", "slot", "lane", "nxt", "prv", "tgt", "yld",
                "stop_next", "flags", "uid", "bay", "lc_v", "lc_f", "lc_l", "afree", "tfac")


def _pool_bytes(st: MicroState) -> int:
    """Bytes of the vehicle pool's state arrays (every per-vehicle array and the free-slot stack)."""
    return int(sum(getattr(st, name).nbytes for name in _PER_VEHICLE + ("free",)))


def _grow(st: MicroState, need_free: int, need_queue: np.ndarray, queues_fit: bool | None = None) -> MicroState:
    """Enlarge the vehicle pool and the origin-queue rings so that the next chunk fits
    (``queues_fit``: whether the rings already hold ``need_queue`` more, when the caller knows).

    The pool grows by half (or by what the chunk needs, plus 64), so it holds at most 1.5 slots
    per vehicle present when it last grew: 125 bytes per slot, under 200 bytes per vehicle."""
    changes = {}
    N = st.x.shape[0]
    if st.n_free[0] < need_free:
        new_n = max(N + N // 2, N + need_free - int(st.n_free[0]) + 64)
        if new_n > np.iinfo(VEH_INT).max:
            raise SimulationError(f"micro engine: more than {np.iinfo(VEH_INT).max} vehicle slots needed")
        for name in _PER_VEHICLE:
            old = getattr(st, name)
            fill = -1 if old.dtype.kind == "i" and name not in ("cls", "bay", "lc_v", "lc_f", "lc_l") else 0
            if name == "tfac":
                fill = 1
            arr = np.full(new_n, fill, dtype=old.dtype)
            arr[:N] = old
            changes[name] = arr
        free = np.zeros(new_n, VEH_INT)
        nf = int(st.n_free[0])
        free[:nf] = st.free[:nf]
        added = np.arange(new_n - 1, N - 1, -1, dtype=VEH_INT)
        free[nf:nf + len(added)] = added
        changes["free"] = free
        changes["n_free"] = np.array([nf + len(added)], np.int64)
    if queues_fit is None:
        queues_fit = not np.any(st.q_len + need_queue > np.diff(st.q_off))
    if not queues_fit:
        caps = np.diff(st.q_off)
        new_caps = np.maximum(caps, 2 * (st.q_len + need_queue) + 64)
        off = np.concatenate([[0], np.cumsum(new_caps)]).astype(np.int64)
        buf = np.zeros(int(off[-1]), np.int64)
        for s in range(len(caps)):
            n = int(st.q_len[s])
            idx = (st.q_head[s] + np.arange(n)) % caps[s]
            buf[off[s]:off[s] + n] = st.qbuf[st.q_off[s] + idx]
        changes.update(qbuf=buf, q_off=off, q_head=np.zeros_like(st.q_head))
    return st._replace(**changes) if changes else st


def _place_initial(c: CompiledMicro, st: MicroState, traj_vehicles: int, rec: MicroRecord) -> None:
    """Put the initial vehicles on their lanes (sorted by position), checking they do not overlap."""
    mn = c.net
    by_lane: dict[int, list] = {}
    for (r, k, l, lane, x, v) in c.init:
        by_lane.setdefault(int(c.lane0[l]) + lane, []).append((x, r, k, v))
    for gl, items in by_lane.items():
        items.sort()
        prev = -1
        for x, r, k, v in items:
            nf = int(st.n_free[0]) - 1
            w = int(st.free[nf])
            st.n_free[0] = nf
            cls = int(mn.route_cls[r])
            if prev >= 0 and x - mn.cls_len[cls] < st.x[prev]:
                raise SimulationError(f"initial_vehicles: vehicles overlap on link {c.link_ids[mn.lane_link[gl]]!r}, lane {mn.lane_idx[gl]} at x={x:g} m")
            st.x[w], st.v[w], st.cls[w] = x, v, cls
            st.tfac[w] = 1.0
            st.slot[w] = mn.route_off[r] + k
            st.lane[w] = gl
            st.prv[w] = prev
            st.nxt[w] = -1
            st.flags[w] = 0
            u = int(st.counters[C_UID])
            st.uid[w] = u
            st.counters[C_UID] += 1
            if u < traj_vehicles:
                rec.veh_cls[u] = cls
                rec.veh_route[u] = r
            if prev >= 0:
                st.nxt[prev] = w
            else:
                st.lane_tail[gl] = w
            st.lane_head[gl] = w
            prev = w
            st.counters[C_INSIDE] += 1


class MicroStepper:
    """A compiled micro scenario with its state and record, advanced in steps by the caller.

    ``run_micro`` advances it over the whole horizon at once; the hybrid engine advances it one
    coupling step at a time and adds the vehicles that leave SUMO to origin queues. The kernel
    is called in chunks cut at input breakpoints, meter and route-choice update steps and every
    :func:`_chunk_steps` steps; the controls of a chunk (with its Poisson arrivals, drawn from
    ``seed``) are built once when the chunk starts, so advancing step by step draws the same
    numbers and gives the same result as advancing in one call.

    Attributes: ``c`` (the :class:`CompiledMicro`; ``c.net`` may be replaced between calls),
    ``st`` (:class:`~trafficsim.kernels.micro.MicroState`, replaced when the pool grows),
    ``rec`` (:class:`~trafficsim.kernels.micro.MicroRecord`), ``k`` (the next step), ``meters``,
    ``chooser``.
    """

    def __init__(self, c: CompiledMicro, seed: int | None = 0, *, routing=None, trajectories: dict | None = None):
        self.c = c
        self.meters = MicroMeters.build(c)  # ramp meters (fixed-rate, ALINEA) as ramp signals; replaces c.net
        mn = c.net
        L, R, S, D = len(c.link_ids), len(c.route_links), len(c.source_nodes), len(c.detectors)
        T = self.n_records = int(math.ceil(c.n_steps / c.steps_per_record))
        self.traj_every, V, K = 0, 0, 0
        if trajectories is not None:
            self.traj_every = max(1, int(round(float(trajectories.get("every_s", 1.0)) / c.dt)))
            V = int(trajectories.get("max_vehicles", 2000))
            K = c.n_steps // self.traj_every
        z = lambda *shape: np.zeros(shape)  # noqa: E731
        self.rec = MicroRecord(
            vkt=z(T, L), vht=z(T, L), cum_in=z(T, L), cum_out=z(T, L), queue_vs=z(T, L), queue_m=z(T, L),
            queue_m_max=z(T, L), lanes=z(T, L), route_in=z(T, R), route_out=z(T, R), route_gen=z(T, R), src_queue=z(T, S), wait=z(T),
            det_count=z(T, D, mn.maxl), det_occ=z(T, D, mn.maxl), det_vsum=z(T, D, mn.maxl),
            traj_x=np.full((K, V), np.nan, np.float32), traj_v=np.full((K, V), np.nan, np.float32),
            traj_link=np.full((K, V), -1, np.int32), traj_lane=np.full((K, V), -1, np.int8),
            veh_cls=np.full(V, -1, np.int8), veh_route=np.full(V, -1, np.int32), veh_exit=np.full(V, -1, np.int32),
        )
        self.st = _new_state(c, _initial_pool(len(c.init)))
        _place_initial(c, self.st, V, self.rec)
        self.rng = np.random.default_rng(seed)
        cuts = {0, c.n_steps}
        cuts.update(step_index(t, c.dt) for t in breakpoints(c.scenario))
        cuts.update(range(0, c.n_steps, _chunk_steps(c)))
        if self.meters is not None:
            cuts.update(self.meters.cut_steps(c.n_steps))
        self.chooser = MicroRouteChoice.build(c, routing)  # dynamic route choice cuts chunks at its updates
        if self.chooser is not None:
            cuts.update(self.chooser.cut_steps())
            # en-route draws from their own stream, so the arrivals and dwells are those of "dynamic"
            self.chooser.rng = np.random.default_rng(None if seed is None else [int(seed), 1])
        self.cuts = sorted(k for k in cuts if 0 <= k <= c.n_steps)
        self.k = 0
        self._need_q = np.zeros(S, np.int64)  # scratch of chunk_needs: arrivals per source in a chunk
        self._chunk = None  # (first step, end step, MicroControls) of the chunk in progress

    def advance(self, k1: int, arrivals: np.ndarray | None = None, bar=None) -> None:
        """Run steps ``self.k .. k1 - 1``; ``arrivals`` (per route, whole vehicles) join the
        routes' origin queues at the first of them, in addition to the demand."""
        c = self.c
        k1 = min(int(k1), c.n_steps)
        extra = None if arrivals is None or not np.any(arrivals) else np.asarray(arrivals, np.int64)
        while self.k < k1:
            k0 = self.k
            if self._chunk is None or k0 >= self._chunk[1]:
                end = self.cuts[bisect.bisect_right(self.cuts, k0)]
                if self.chooser is not None:
                    self.chooser.step(k0, self.st)
                self._chunk = (k0, end, _controls(c, k0 * c.dt, end - k0, self.rng))
                self.st.stop_used[:] = 0
                first = True
            else:
                first = False
            start, end, ctl = self._chunk
            # one kernel call per record interval at most, on a slice of the chunk's draws (as when
            # the caller advances in pieces): the pool grows for what one interval can insert
            kk = min(k1, end, (k0 // c.steps_per_record + 1) * c.steps_per_record)
            arr = ctl.arrivals
            if kk - k0 != arr.shape[0] or extra is not None:
                arr = arr[k0 - start:kk - start]
                if extra is not None:
                    arr = arr.copy()
                    arr[0] += extra
                    extra = None
                ctl = ctl._replace(arrivals=arr)
            queued, fits = chunk_needs(arr, c.net.route_src, c.n_demand_routes, self.st.q_len, self.st.q_off,
                                       self._need_q)
            # slots for what this call can insert: every queued and arriving vehicle, but at most
            # one per lane of each source's first link per step (origin queues hold no slots)
            need_free = min(queued, (kk - k0) * c.source_lanes) + 1
            self.st = _grow(self.st, need_free, self._need_q, fits)
            if first and self.meters is not None:
                self.meters.step(k0, self.st)
            status = micro_advance(k0, kk, c.n_steps, c.dt, c.steps_per_record, self.traj_every, c.net, ctl,
                                   self.st, self.rec)
            if status == STATUS_POOL:
                raise SimulationError(f"micro engine: vehicle pool exhausted between t={k0 * c.dt:g} s and {kk * c.dt:g} s")
            if status != STATUS_OK:
                raise SimulationError(f"micro engine: kernel status {status} between t={k0 * c.dt:g} s and {kk * c.dt:g} s")
            self.k = kk
            if bar is not None:
                bar.update(kk - k0)


def default_micro_dt(scenario: Scenario, record_interval_s: float = 60.0) -> float:
    """The micro engine's default step [s]: :data:`DEFAULT_DT_S`, or where a link is shorter than
    one such step at free speed (short edges of networks imported from OpenStreetMap or SUMO), the
    largest step within every link's free-flow time that divides the record interval (a vehicle
    crosses at most one node per step), as :func:`trafficsim.engines.macro.default_dt` chooses it."""
    from .macro import default_dt

    shortest = min((lk.free_flow_time_s for lk in scenario.network.links.values()), default=DEFAULT_DT_S)
    if shortest >= DEFAULT_DT_S * (1.0 - 1e-9):
        return DEFAULT_DT_S
    return default_dt(scenario, positive_seconds("record_interval_s", record_interval_s), cap=DEFAULT_DT_S)


def merge_priority_links(net) -> list[str]:
    """Links with an explicit ``priority`` that end at a node with other in-links: the merge
    priorities this engine does not model (``run_micro`` warns about them)."""
    n_in: dict[str, int] = {}
    for lk in net.links.values():
        n_in[lk.to_node] = n_in.get(lk.to_node, 0) + 1
    return [lk.id for lk in net.links.values() if lk.priority is not None and n_in[lk.to_node] > 1]


def run_micro(
    scenario: Scenario,
    *,
    dt_s: float | None = None,
    record_interval_s: float = 60.0,
    progress: bool = False,
    seed: int | None = 0,
    vehicle_params: dict | None = None,
    lane_change: dict | None = None,
    capacity_preset: bool = True,
    detectors=None,
    trajectories: dict | None = None,
    initial_vehicles=None,
    route_choice: str = "fixed",
    route_update_s: float | None = None,
    route_candidates: int | None = None,
    route_smoothing: float | None = None,
    route_logit_s: float | None = None,
) -> Result:
    """Run the microscopic engine; see :func:`trafficsim.simulate` for the common options.

    ``route_choice="dynamic"`` or ``"en-route"`` and the ``route_*`` options work as in the
    macro engine (:mod:`trafficsim.routing`), with a link's instantaneous speed taken as the
    mean speed of the vehicles on it (free speed when empty); en route, each vehicle at least
    ``free_distance_m`` (or half its link) before its link's end and not committed at the node
    re-chooses with probability ``route_smoothing``, drawing from the target split.

    Parameters
    ----------
    dt_s : float, optional
        Time step [s], default 0.5.
    seed : int or None
        Seed of every random draw (arrivals, dwell times): the same seed gives bit-identical
        results.
    vehicle_params : dict, optional
        ``{class: {field: value}}`` overriding :data:`VEHICLE_DEFAULTS`; ``T_s`` [s] fixes the
        time gap (otherwise derived from the link capacity), ``v0_kmh`` fixes the desired speed.
    lane_change : dict, optional
        Overrides of :data:`LANE_CHANGE_DEFAULTS` (MOBIL and node behaviour).
    capacity_preset : bool
        Derive the car's ``T`` per link so that the IDM's steady-state capacity equals
        ``capacity_vph_per_lane`` (default). False uses ``T = 1.0 s`` times the class factor.
    detectors : list of (link, position_m), optional
        Point (loop) detectors; the result gains ``det_count``, ``det_flow``, ``det_occupancy``
        and ``det_speed`` per (time, detector, lane).
    trajectories : dict, optional
        ``{"every_s": 1.0, "max_vehicles": 2000}``: sample position, speed, link and lane of the
        first ``max_vehicles`` vehicles every ``every_s`` seconds into
        ``result.final_state["trajectories"]`` (an ``xarray.Dataset`` over (time, vehicle)).
    initial_vehicles : list of dict, optional
        Vehicles present at time 0: ``{"link", "lane", "x_m", "speed_kmh", "vehicle_class",
        "route", "cyclic"}``; a cyclic route (a closed ring of links) is driven forever.
    """
    dt = default_micro_dt(scenario, record_interval_s) if dt_s is None else positive_seconds("dt_s", dt_s)
    if dt > COARSE_DT_S:
        warnings.warn(f"micro engine: dt_s={dt:g} is coarse for the IDM; lane capacity falls above {COARSE_DT_S:g} s "
                      f"(by about 30% at 2 s, see docs/models/micro.md, Time step); the default is 0.5 s",
                      UserWarning, stacklevel=3)
    try:
        routing = DynamicRouting.from_options(route_choice, route_update_s, route_candidates, route_smoothing,
                                              route_logit_s)
    except ValueError as exc:
        raise SimulationError(str(exc)) from None
    merges = merge_priority_links(scenario.network)
    if merges:
        warnings.warn(f"micro engine: the merge priorities of {', '.join(repr(m) for m in merges[:4])}"
                      f"{' and others' if len(merges) > 4 else ''} are not modelled; vehicles merge by zipper "
                      f"(docs/models/micro.md, Zipper)", UserWarning, stacklevel=3)
    c = compile_micro(scenario, dt, record_interval_s, vehicle_params=vehicle_params, lane_change=lane_change,
                      detectors=detectors, initial_vehicles=initial_vehicles, capacity_preset=capacity_preset,
                      route_candidates=routing.candidates if routing else 1)
    run = MicroStepper(c, seed, routing=routing, trajectories=trajectories)
    rec, T, D = run.rec, run.n_records, len(c.detectors)
    bar = progress_bar(progress, c.n_steps, "micro", scenario)
    try:
        run.advance(c.n_steps, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    st, meters, chooser, traj_every = run.st, run.meters, run.chooser, run.traj_every
    span = np.minimum((np.arange(T) + 1) * record_interval_s, c.n_steps * c.dt) - np.arange(T) * record_interval_s
    ds = build_dataset(
        c.scenario, engine="micro", dt_s=c.dt, record_interval_s=record_interval_s, n_steps=c.n_steps,
        link_ids=c.link_ids, route_labels=c.routes.label, route_links=c.routes.links, origins=c.source_nodes,
        vkt_m=rec.vkt, vht_s=rec.vht, cum_in=rec.cum_in, cum_out=rec.cum_out, queue_veh=rec.queue_vs / span[:, None],
        queue_m=rec.queue_m, queue_m_max=rec.queue_m_max, lanes=rec.lanes, route_in=rec.route_in[:, :c.n_demand_routes],
        route_out=rec.route_out[:, :c.n_demand_routes], route_gen=rec.route_gen[:, :c.n_demand_routes],
        origin_queue=rec.src_queue, wait_s=rec.wait,
        extra_attrs={"seed": -1 if seed is None else int(seed), "queue_speed_frac": c.lane_change["queue_speed_frac"]},
    )
    if D:
        ds = _add_detectors(ds, c, rec, span)
    counters = st.counters
    state = {
        "inside": int(counters[C_INSIDE]),
        "entered": int(counters[C_ENTERED]),
        "exited": int(counters[C_EXITED]),
        "initial": len(c.init),
        "clamps": int(counters[C_CLAMP]),
        "lane_changes": int(counters[C_LC]),
        "vehicles_created": int(counters[C_UID]),
        "sink_exits": dict(zip(c.link_ids, st.sink_exits.tolist())),
        "lanes_listed": _count_listed(st) + int(st.n_bay[0]),
        "origin_queue": int(st.q_len.sum()),
        "pool_slots": int(st.x.shape[0]),
        "pool_bytes": _pool_bytes(st),
    }
    if meters is not None and meters.laws:
        state["controllers"] = meters.log()
    if chooser is not None:
        state["route_shares"] = chooser.log()
    if trajectories is not None:
        state["trajectories"] = _trajectory_dataset(c, rec, traj_every)
        # the plot and the reader see how many vehicles the sample leaves out (max_vehicles)
        state["trajectories"].attrs["vehicles_created"] = int(counters[C_UID])
    return Result(ds, scenario=scenario, engine="micro", final_state=state)


def _count_listed(st: MicroState) -> int:
    n = 0
    for head in st.lane_head:
        w = int(head)
        while w >= 0:
            n += 1
            w = int(st.prv[w])
    return n


def _add_detectors(ds: xr.Dataset, c: CompiledMicro, rec: MicroRecord, span: np.ndarray) -> xr.Dataset:
    count = rec.det_count
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where(count > 0, rec.det_vsum / np.where(count > 0, count, 1) * 3.6, np.nan)
    dims = ("time", "detector", "lane")
    coords = {
        "detector": np.arange(len(c.detectors)),
        "detector_link": ("detector", np.array([d[0] for d in c.detectors], dtype=str)),
        "detector_position_m": ("detector", np.array([d[1] for d in c.detectors]), {"units": "m"}),
        "lane": ("lane", np.arange(c.net.maxl), {"long_name": "lane index from the right (0 = kerb lane)"}),
    }
    extra = xr.Dataset(
        {
            "det_count": (dims, count, {"units": "veh", "long_name": "vehicles crossing the detector in the interval"}),
            "det_flow": (dims, count / span[:, None, None] * 3600.0, {"units": "veh/h", "long_name": "detector flow per lane"}),
            "det_occupancy": (dims, rec.det_occ / span[:, None, None], {"units": "1", "long_name": "share of time the detector was occupied"}),
            "det_speed": (dims, speed, {"units": "km/h", "long_name": "time-mean speed of crossing vehicles"}),
        },
        coords={"time": ds["time"], **coords},
    )
    return xr.merge([ds, extra], combine_attrs="override")


def _trajectory_dataset(c: CompiledMicro, rec: MicroRecord, every: int) -> xr.Dataset:
    K, V = rec.traj_x.shape
    used = np.flatnonzero(rec.veh_cls >= 0)
    V = int(used.max()) + 1 if used.size else 0
    t = (np.arange(K) + 1) * every * c.dt
    links = np.array(c.link_ids + [""], dtype=str)
    return xr.Dataset(
        {
            "x": (("time", "vehicle"), rec.traj_x[:, :V], {"units": "m", "long_name": "front position from the link start"}),
            "speed": (("time", "vehicle"), rec.traj_v[:, :V] * np.float32(3.6), {"units": "km/h", "long_name": "speed"}),
            "link_index": (("time", "vehicle"), rec.traj_link[:, :V], {"long_name": "index into link_ids, -1 when absent"}),
            "lane": (("time", "vehicle"), rec.traj_lane[:, :V], {"long_name": "lane index from the right, -1 in a bus bay or absent"}),
            "vehicle_class": ("vehicle", np.array([VEHICLE_CLASSES[k] if k >= 0 else "" for k in rec.veh_cls[:V]], dtype=str)),
            "route": ("vehicle", rec.veh_route[:V]),
            "exit_link": ("vehicle", links[rec.veh_exit[:V]]),
            "length_m": ("vehicle", np.array([c.net.cls_len[k] if k >= 0 else np.nan for k in rec.veh_cls[:V]]), {"units": "m"}),
        },
        coords={"time": ("time", t, {"units": "s"}), "vehicle": np.arange(V), "link_ids": ("link_id", np.array(c.link_ids, dtype=str))},
        attrs={"sample_every_s": every * c.dt},
    )
