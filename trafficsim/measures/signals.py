"""Signal measures: Webster retiming, green waves, bus priority, off-ramp keep-clear.

Webster (1958) cycle and splits::

    C0 = (1.5 L + 5) / (1 - Y),   Y = sum_i y_i,   y_i = max over the phase's approaches of q / s
    g_i = (C0 - L) y_i / Y

with ``L`` the lost time per cycle (amber + all-red of every phase), ``q`` the peak demand of
the approach's movements in the phase [veh/h] and ``s`` the approach's saturation flow (lanes x
lane capacity) [veh/h].

Green wave: with signals ``j`` along a corridor and ``x_j`` the distance from the first one,
``offset_j = offset_1 + x_j / v_design`` (mod the common cycle), so that a vehicle released at
the start of green at the first signal meets green everywhere at the design speed. The
bandwidth is the length of the intersection of the corridor greens shifted by the travel
times ``x_j / v_design``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..control import TURN_DEG, FixedTimeSignal, Phase, PriorityJunction, turn_deg
from ..demand import movement_peaks
from ..scenario import Scenario
from ._base import Measure, finite

__all__ = ["SignalRetiming", "NewSignal", "GreenWave", "BusPriority", "OffRampKeepClear", "movement_peak_flows",
           "webster"]


def movement_peak_flows(sc: Scenario, *, vehicle_class: str | None = None) -> dict[tuple[str, str], float]:
    """Peak demand [veh/h] of every movement ``(in_link, out_link)`` from the routes' flows.

    Each flow counts at its highest rate; ``vehicle_class`` keeps only that class. The same sum
    as the SUMO export's turn flows (:func:`trafficsim.demand.movement_peaks` does both).
    """
    resolved = sc.demand.resolve_routes(sc.network)
    return movement_peaks(((f, path, share) for f, routes in zip(sc.demand.flows, resolved) for path, share in routes),
                          vehicle_class=vehicle_class)


def _corridor_links(sc: Scenario, corridor) -> list[str]:
    """The links of ``corridor`` in travel order. A road a measure cut in parts
    (``meta["split_links"]``, a meter's stop line) is driven end to end, whichever of its parts
    the corridor names (``"l2"`` or ``"l2-merge"`` both stand for ``l2, l2-merge``)."""
    return sc.link_parts([sc.road_of(lid) for lid in corridor])


def _phase_ratios(sc: Scenario, sig: FixedTimeSignal, flows) -> list[float]:
    """Critical flow ratio y_i of each phase."""
    ys = []
    for p in sig.phases:
        by_link: dict[str, float] = {}
        for a, b in p.movements:
            by_link[a] = by_link.get(a, 0.0) + flows.get((a, b), 0.0)
        y = 0.0
        for a, q in by_link.items():
            lk = sc.network.links[a]
            y = max(y, q / (lk.lanes * lk.capacity_vph_per_lane))
        ys.append(y)
    return ys


#: Shortest green [s] a phase keeps when a measure rescales or moves green (a pedestrian crossing's
#: minimum; the default ``min_green_s`` of the signal measures).
MIN_GREEN_S = 7.0


def _cycle_bounds(m, owner: str) -> None:
    """``min_cycle_s <= max_cycle_s`` and ``min_green_s > 0`` of a signal measure ``m``, or a
    :class:`MeasureError` naming the field (Webster's cycle silently took the maximum)."""
    lo = finite(owner, "min_cycle_s", m.min_cycle_s, strict=True)
    hi = finite(owner, "max_cycle_s", m.max_cycle_s, strict=True)
    if lo > hi:
        raise m.error("min_cycle_s", f"{lo:g} s is above max_cycle_s = {hi:g} s")
    finite(owner, "min_green_s", m.min_green_s, strict=True)


def webster(sc: Scenario, sig: FixedTimeSignal, *, min_cycle_s: float = 40.0, max_cycle_s: float = 150.0,
            min_green_s: float = 7.0, cycle_s: float | None = None) -> tuple[FixedTimeSignal, dict]:
    """Webster's cycle and flow-proportional splits for ``sig``; returns the plan and a report.

    With ``cycle_s`` given, only the splits are recomputed for that cycle.
    """
    flows = movement_peak_flows(sc)
    ys = _phase_ratios(sc, sig, flows)
    lost = sum(p.amber_s + p.all_red_s for p in sig.phases)
    Y = sum(ys)
    if cycle_s is None:
        c0 = (1.5 * lost + 5.0) / (1.0 - Y) if Y < 0.95 else max_cycle_s
        cycle = min(max_cycle_s, max(min_cycle_s, c0))
    else:
        c0, cycle = math.nan, float(cycle_s)
    eff = cycle - lost
    n = len(sig.phases)
    if eff < n * min_green_s:
        raise ValueError(f"signal at node {sig.node!r}: cycle {cycle:g} s leaves less than {min_green_s:g} s green per phase")
    weights = [y if Y > 0 else 1.0 / n for y in ys]
    total = sum(weights) or 1.0
    greens = [max(min_green_s, eff * w / total) for w in weights]
    scale = (eff - n * min_green_s) / max(sum(g - min_green_s for g in greens), 1e-9)
    greens = [min_green_s + (g - min_green_s) * min(1.0, scale) for g in greens]
    greens[-1] += eff - sum(greens)
    plan = replace(sig, phases=tuple(replace(p, green_s=round(g, 1)) for p, g in zip(sig.phases, greens)))
    return plan, {"node": sig.node, "Y": Y, "lost_time_s": lost, "webster_cycle_s": c0, "cycle_s": plan.cycle_s,
                  "greens_s": [p.green_s for p in plan.phases]}


def _signals(sc: Scenario, nodes, owner: str) -> dict[str, FixedTimeSignal]:
    sigs = {c.node: c for c in sc.controls if isinstance(c, FixedTimeSignal)}
    if nodes is None:
        if not sigs:
            raise ValueError(f"{owner}.nodes: scenario {sc.name or 'scenario'!r} has no signals")
        return sigs
    for n in nodes:
        if n not in sigs:
            raise ValueError(f"{owner}.nodes: node {n!r} has no signal plan")
    return {n: sigs[n] for n in nodes}


def _signalise(sc: Scenario, plan: FixedTimeSignal) -> None:
    """Add the signal ``plan`` at a node that has none: it replaces the node's give-way rules (a
    :class:`~trafficsim.control.PriorityJunction` there)."""
    sc.controls[:] = [c for c in sc.controls if not (isinstance(c, PriorityJunction) and c.node == plan.node)]
    sc.controls.append(plan)


def _replace_signal(sc: Scenario, plan: FixedTimeSignal) -> None:
    sc.controls[:] = [plan if isinstance(c, FixedTimeSignal) and c.node == plan.node else c for c in sc.controls]


@dataclass(frozen=True)
class SignalRetiming(Measure):
    """Webster cycle and green splits from the peak flows at each listed signal.

    Parameters
    ----------
    nodes : tuple of str, optional
        Signalised nodes to retime; all when None.
    keep_cycle : bool
        Keep each plan's cycle and recompute only the splits.
    min_cycle_s, max_cycle_s, min_green_s : float
        Bounds [s].
    label : str
        Name of the variant in reports.
    """

    nodes: tuple | None = None
    keep_cycle: bool = False
    min_cycle_s: float = 40.0
    max_cycle_s: float = 150.0
    min_green_s: float = 7.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        _cycle_bounds(self, owner)
        try:
            sigs = _signals(sc, self.nodes, owner)
            reports = []
            for sig in sigs.values():
                plan, rep = webster(sc, sig, min_cycle_s=self.min_cycle_s, max_cycle_s=self.max_cycle_s,
                                    min_green_s=self.min_green_s, cycle_s=sig.cycle_s if self.keep_cycle else None)
                _replace_signal(sc, plan)
                reports.append(rep)
        except ValueError as exc:
            raise self.error("nodes", str(exc).split(": ", 1)[-1]) from None
        sc.meta["signal_retiming"] = reports

    def describe(self) -> str:
        """One line for tables and plots: Webster cycle and/or splits, and the signals retimed."""
        where = ", ".join(self.nodes) if self.nodes else "every signal"
        return f"SignalRetiming: Webster {'splits' if self.keep_cycle else 'cycle and splits'} at {where}"


def _roads_through(sc: Scenario, node: str) -> list[list[str]]:
    """The in-links of ``node`` grouped by road: two in-links from opposite directions (their
    headings within :data:`~trafficsim.control.TURN_DEG` of straight on, from the coordinates)
    form one road, in the order of their first in-link; the others a road each."""
    ins = [lk.id for lk in sc.network.in_links(node)]
    outs = {lk.to_node: lk.id for lk in sc.network.out_links(node)}
    roads, taken = [], set()
    for a in ins:
        if a in taken:
            continue
        taken.add(a)
        best, best_t = None, TURN_DEG
        for c in ins:
            if c in taken:
                continue
            # c runs opposite to a where a's straight-on exit leads to c's origin
            back = outs.get(sc.network.links[c].from_node)
            t = turn_deg(sc.network, a, back) if back is not None else None
            if t is not None and abs(t) <= best_t:
                best, best_t = c, abs(t)
        if best is not None:
            taken.add(best)
        roads.append([a] if best is None else [a, best])
    return roads


@dataclass(frozen=True)
class NewSignal(Measure):
    """Signalise an unsignalised junction (增设信号灯, "add signals"): a fixed-time plan with one
    phase per road through the node, the cycle and greens by Webster (:func:`webster`) from the
    peak demand.

    Each road's two approaches (in-links from opposite directions, from the nodes' coordinates;
    without them every approach is a road of its own) share a phase with every turn the network
    allows them, so their left turns are permitted ones that give way to the opposing stream
    (:func:`~trafficsim.control.permissive_yields`). A
    :class:`~trafficsim.control.PriorityJunction` at the node is replaced: the signal takes over
    its rules. A node with a signal already is an error (retime it with :class:`SignalRetiming`).

    Parameters
    ----------
    node : str
        The junction, with at least two in-links.
    cycle_s : float, optional
        Cycle [s]; Webster's (bounded by ``min_cycle_s``, ``max_cycle_s``) when None.
    amber_s, all_red_s : float
        Amber and all-red after each green [s].
    min_cycle_s, max_cycle_s, min_green_s : float
        Bounds [s].
    label : str
        Name of the variant in reports.
    """

    node: str = ""
    cycle_s: float | None = None
    amber_s: float = 3.0
    all_red_s: float = 2.0
    min_cycle_s: float = 40.0
    max_cycle_s: float = 120.0
    min_green_s: float = 7.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        self.need_unsignalised_node(sc, "node", self.node)
        roads = _roads_through(sc, self.node)
        if sum(len(r) for r in roads) < 2:
            raise self.error("node", f"node {self.node!r} has fewer than two incoming links: nothing to signalise")
        amber = finite(owner, "amber_s", self.amber_s)
        red = finite(owner, "all_red_s", self.all_red_s)
        phases = []
        for road in roads:
            moves = tuple((a, b.id) for a in road for b in sc.network.out_links(self.node)
                          if sc.network.turn_allowed(a, b.id))
            if moves:
                phases.append(Phase(1.0, moves, amber, red))
        if len(phases) < 2:
            raise self.error("node", f"node {self.node!r} has one road through it: a signal would only stop it")
        cycle = None if self.cycle_s is None else finite(owner, "cycle_s", self.cycle_s, strict=True)
        _cycle_bounds(self, owner)
        try:
            plan, rep = webster(sc, FixedTimeSignal(self.node, tuple(phases), 0.0),
                                min_cycle_s=finite(owner, "min_cycle_s", self.min_cycle_s, strict=True),
                                max_cycle_s=finite(owner, "max_cycle_s", self.max_cycle_s, strict=True),
                                min_green_s=finite(owner, "min_green_s", self.min_green_s, strict=True), cycle_s=cycle)
        except ValueError as exc:
            raise self.error("cycle_s", str(exc).split(": ", 1)[-1]) from None
        _signalise(sc, plan)
        sc.meta["new_signal"] = {**rep, "roads": roads}

    def describe(self) -> str:
        """One line for tables and plots: the node signalised and its cycle."""
        cycle = "Webster cycle" if self.cycle_s is None else f"{self.cycle_s:g} s cycle"
        return f"NewSignal: a fixed-time signal at {self.node!r}, one phase per road, {cycle} and greens"


@dataclass(frozen=True)
class GreenWave(Measure):
    """Offsets for a design speed along a corridor (one direction), on a common cycle.

    Parameters
    ----------
    corridor : tuple of str
        Main-road links in travel order; the signals are at their downstream nodes. A link a
        measure cut in parts (``meta["split_links"]``, a meter's stop line) stands for all of
        them, and so does any of its parts (``"<link>-merge"``): the wave runs along whole roads.
    design_speed_kmh : float
        Progression speed [km/h].
    cycle_s : float, optional
        Common cycle [s]; default the longest cycle of the corridor's signals. Plans with another
        cycle are scaled (greens in proportion, amber and all-red kept).
    label : str
        Name of the variant in reports.
    """

    corridor: tuple = ()
    design_speed_kmh: float = 50.0
    cycle_s: float | None = None
    label: str = ""

    def offsets(self, sc: Scenario) -> dict:
        """The signals along the corridor with their distance [m], travel time [s] and new plans."""
        owner = type(self).__name__
        v = finite(owner, "design_speed_kmh", self.design_speed_kmh, strict=True) / 3.6
        if isinstance(self.corridor, str) or len(self.corridor) < 2:
            raise self.error("corridor", "needs at least two links in travel order")
        sigs = {c.node: c for c in sc.controls if isinstance(c, FixedTimeSignal)}
        for lid in self.corridor:
            self.need_link(sc, "corridor", lid)
        # a road a measure cut in parts (a meter's stop line) runs through all of them
        corridor = _corridor_links(sc, self.corridor)
        x, nodes = 0.0, []
        for i, lid in enumerate(corridor):
            lk = sc.network.links[lid]
            if i and sc.network.links[corridor[i - 1]].to_node != lk.from_node:
                raise self.error("corridor", f"link {corridor[i - 1]!r} does not lead to {lid!r}")
            if nodes:
                x += lk.length_m
            if lk.to_node in sigs and i + 1 < len(corridor):
                if not nodes:
                    x = 0.0
                nodes.append((lk.to_node, lid, corridor[i + 1], x))
        if len(nodes) < 2:
            raise self.error("corridor", f"passes fewer than two signals ({[n for n, *_ in nodes]})")
        cycle = self.cycle_s if self.cycle_s is not None else max(sigs[n].cycle_s for n, *_ in nodes)
        cycle = finite(owner, "cycle_s", cycle, strict=True)
        out = []
        for node, a, b, dist in nodes:
            try:
                sig = _scale_cycle(sigs[node], cycle)
            except ValueError as exc:
                raise self.error("cycle_s", str(exc).split(": ", 1)[-1]) from None
            wins = sig.green_windows().get((a, b))
            if not wins:
                raise self.error("corridor", f"the movement {a!r} -> {b!r} has no green at node {node!r}")
            travel = dist / v
            offset = (travel - wins[0][0]) % cycle
            out.append({"node": node, "distance_m": dist, "travel_s": travel, "green": wins[0],
                        "plan": replace(sig, offset_s=round(offset, 2))})
        return {"cycle_s": cycle, "signals": out, "bandwidth_s": _bandwidth(out, cycle)}

    def _edit(self, sc: Scenario) -> None:
        res = self.offsets(sc)
        for s in res["signals"]:
            _replace_signal(sc, s["plan"])
        sc.meta["green_wave"] = {"design_speed_kmh": self.design_speed_kmh, "cycle_s": res["cycle_s"],
                                 "bandwidth_s": res["bandwidth_s"],
                                 "offsets_s": {s["node"]: s["plan"].offset_s for s in res["signals"]}}

    def bandwidth_s(self, sc: Scenario) -> float:
        """Bandwidth [s] of the wave this measure sets on ``sc``."""
        return self.offsets(sc)["bandwidth_s"]

    def describe(self) -> str:
        """One line for tables and plots: the design speed and the corridor's first and last signal."""
        return f"GreenWave: offsets for {self.design_speed_kmh:g} km/h along {self.corridor[0]} .. {self.corridor[-1]}"


def corridor_bandwidth_s(sc: Scenario, corridor, design_speed_kmh: float) -> float:
    """Bandwidth [s] of the current plans along ``corridor`` at ``design_speed_kmh`` (any offsets).

    ``corridor`` names links in travel order as :class:`GreenWave` takes them: a road a measure
    cut in parts is driven end to end, whichever part names it."""
    sigs = {c.node: c for c in sc.controls if isinstance(c, FixedTimeSignal)}
    corridor = _corridor_links(sc, corridor)
    v, x, rows = design_speed_kmh / 3.6, 0.0, []
    for i, lid in enumerate(corridor):
        lk = sc.network.links[lid]
        if rows:
            x += lk.length_m
        if lk.to_node in sigs and i + 1 < len(corridor):
            if not rows:
                x = 0.0
            sig = sigs[lk.to_node]
            a, b = sig.green_windows()[(lid, corridor[i + 1])][0]
            rows.append({"travel_s": x / v, "green": (a, b), "plan": sig})
    cycles = {r["plan"].cycle_s for r in rows}
    if len(cycles) != 1:
        return 0.0
    return _bandwidth(rows, cycles.pop())


def _bandwidth(rows, cycle: float) -> float:
    """Length [s] of the set of release times at the first signal that meet green everywhere."""
    grid = [i * 0.5 for i in range(int(cycle / 0.5))]
    ok = 0
    for t0 in grid:
        good = True
        for r in rows:
            a, b = r["green"]
            tc = (t0 + r["travel_s"] - r["plan"].offset_s) % cycle
            if not (a <= tc < b):
                good = False
                break
        ok += good
    return ok * 0.5


def _scale_cycle(sig: FixedTimeSignal, cycle: float) -> FixedTimeSignal:
    if abs(sig.cycle_s - cycle) < 1e-9:
        return sig
    lost = sum(p.amber_s + p.all_red_s for p in sig.phases)
    green = sum(p.green_s for p in sig.phases)
    k = (cycle - lost) / green
    if k <= 0:
        raise ValueError(f"signal at node {sig.node!r}: cycle {cycle:g} s is shorter than its lost time")
    short = min(p.green_s * k for p in sig.phases)
    if short < MIN_GREEN_S - 1e-9:
        raise ValueError(f"signal at node {sig.node!r}: a cycle of {cycle:g} s leaves a phase {short:.1f} s of green, "
                         f"below the minimum of {MIN_GREEN_S:g} s")
    return replace(sig, phases=tuple(replace(p, green_s=p.green_s * k) for p in sig.phases))


def _extend_green(sc: Scenario, sig: FixedTimeSignal, served, extra_s: float) -> FixedTimeSignal:
    """Move ``extra_s`` of green to the phases serving any movement in ``served``, from the others."""
    gain = [i for i, p in enumerate(sig.phases) if any(tuple(m) in served for m in p.movements)]
    lose = [i for i in range(len(sig.phases)) if i not in gain]
    if not gain or not lose:
        raise ValueError(f"signal at node {sig.node!r} has no phase to take green from")
    pool = sum(sig.phases[i].green_s for i in lose)
    take = min(extra_s, pool - MIN_GREEN_S * len(lose))
    if take <= 0:
        raise ValueError(f"signal at node {sig.node!r}: the other phases are at their minimum green")
    phases = list(sig.phases)
    for i in gain:
        phases[i] = replace(phases[i], green_s=phases[i].green_s + take / len(gain))
    for i in lose:
        phases[i] = replace(phases[i], green_s=phases[i].green_s - take * sig.phases[i].green_s / pool)
    return replace(sig, phases=tuple(phases))


@dataclass(frozen=True)
class BusPriority(Measure):
    """Green extension for the phases that serve buses (cycle unchanged).

    The macro engine has fixed-time plans, so the extension is the average one: ``extra_green_s``
    per cycle moves to the phases that serve bus movements.

    Parameters
    ----------
    nodes : tuple of str, optional
        Signals to change; every signal that a bus route crosses when None.
    extra_green_s : float
        Green moved to the bus phases per cycle [s].
    label : str
        Name of the variant in reports.
    """

    nodes: tuple | None = None
    extra_green_s: float = 10.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        extra = finite(type(self).__name__, "extra_green_s", self.extra_green_s, strict=True)
        bus = set(movement_peak_flows(sc, vehicle_class="bus"))
        if not bus:
            raise self.error("nodes", f"scenario {sc.name or 'scenario'!r} has no bus flows")
        try:
            sigs = _signals(sc, self.nodes, type(self).__name__)
            changed = 0
            for sig in sigs.values():
                if any(tuple(m) in bus for p in sig.phases for m in p.movements):
                    _replace_signal(sc, _extend_green(sc, sig, bus, extra))
                    changed += 1
        except ValueError as exc:
            raise self.error("nodes", str(exc).split(": ", 1)[-1]) from None
        if not changed:
            raise self.error("nodes", "no listed signal serves a bus movement")

    def describe(self) -> str:
        """One line for tables and plots: the green added per cycle for the bus phases."""
        return f"BusPriority: +{self.extra_green_s:g} s green per cycle for bus phases"


@dataclass(frozen=True)
class OffRampKeepClear(Measure):
    """Off-ramp keep-clear (下行保畅): more green for the off-ramp at its downstream signal.

    Parameters
    ----------
    link : str
        The off-ramp; its downstream node must be signalised. On a road a measure cut in parts
        (``meta["split_links"]``, e.g. at a meter's stop line) the green goes to the movements of
        its last part, the one that reaches the signal: the green is at the road's end, whichever
        part names it.
    extra_green_s : float
        Green moved per cycle to the phases serving the off-ramp [s].
    label : str
        Name of the variant in reports.
    """

    link: str = ""
    extra_green_s: float = 10.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        lk = self.need_road_end(sc, "link", self.link)   # the part at the signal
        extra = finite(type(self).__name__, "extra_green_s", self.extra_green_s, strict=True)
        sig = next((c for c in sc.controls if isinstance(c, FixedTimeSignal) and c.node == lk.to_node), None)
        if sig is None:
            raise self.error("link", f"link {self.link!r} ends at node {lk.to_node!r}, which has no signal to give it green")
        served = {tuple(m) for p in sig.phases for m in p.movements if m[0] == lk.id}
        try:
            _replace_signal(sc, _extend_green(sc, sig, served, extra))
        except ValueError as exc:
            raise self.error("link", str(exc)) from None

    def describe(self) -> str:
        """One line for tables and plots: the green added per cycle for the off-ramp."""
        return f"OffRampKeepClear: +{self.extra_green_s:g} s green per cycle for off-ramp {self.link!r}"
