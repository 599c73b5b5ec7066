"""Metering measures: ramp metering (fixed-rate or ALINEA), merge metering, peak manual control.

RampMetering
    A meter on an on-ramp that ends at a merge. ``mode="fixed"`` caps the ramp's discharge at
    ``rate_vph`` (a :class:`~trafficsim.control.FixedRateMeter`); ``mode="alinea"`` adds an
    :class:`~trafficsim.control.AlineaMeter` (Papageorgiou et al. 1991): every control interval
    ``r(k) = r(k-1) + K_R (o_set - o_out(k))`` from the occupancy measured just downstream of the
    merge, ``K_R`` = 70 veh/h per % and ``o_set`` the critical occupancy ``100 k_c / k_j`` of the
    downstream link by default, with a queue override that protects the ramp's storage.

MergeMetering ("开启分流灯，分道放行": release lane by lane)
    A signal at the merge node that gives green to one approach at a time, greens in
    proportion to the approaches' peak demand across the merge (the peak demand of their
    movements, :func:`~trafficsim.demand.movement_peaks`, the sum signal retiming uses).

PeakControl (高峰管控: peak manual control)
    Officers at the spot during the peak. In simulation: at a merge they release the streams in
    proportion to their peak demand across the merge (as for MergeMetering) instead of their
    lane counts (merge ``priority`` of the node
    model, which only matters while the merge is congested, i.e. during the peak); at a
    signalised junction they extend green for the congested approach, i.e. flow-proportional
    splits on the existing cycle. The spot decides the mode (see ``node``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..control import AlineaMeter, FixedRateMeter, FixedTimeSignal, Phase, PriorityJunction
from ..scenario import Scenario
from ._base import Measure, finite, peak_window
from .signals import _replace_signal, _signalise, movement_peak_flows, webster

__all__ = ["RampMetering", "MergeMetering", "PeakControl", "UNMETERED_VPH", "METER_STOP_LINE_M"]

#: Rate [veh/h] that stands for "not metered" in a fixed-rate profile after its window.
UNMETERED_VPH = 1.0e6

#: Default distance [m] of a ramp meter's stop line upstream of its merge
#: (:attr:`RampMetering.stop_line_m`): a car accelerating at 1.2 m/s^2 from the line reaches
#: about 55 km/h in 100 m, sqrt(2 x 1.2 x 100) = 15.5 m/s.
METER_STOP_LINE_M = 100.0


def _approach_peak_flows(sc: Scenario) -> dict[str, float]:
    """Peak demand [veh/h] that leaves each link into the next link of its routes: the movement
    peaks (:func:`~trafficsim.measures.signals.movement_peak_flows`, one sum with the SUMO
    export's turn flows) added up by approach. At a node it is the demand each incoming link
    sends across it; a flow whose destination is the node itself does not cross it and does not
    count."""
    out: dict[str, float] = {}
    for (approach, _), q in movement_peak_flows(sc).items():
        out[approach] = out.get(approach, 0.0) + q
    return out


@dataclass(frozen=True)
class RampMetering(Measure):
    """Meter an on-ramp at a merge: fixed rate or ALINEA feedback.

    Parameters
    ----------
    link : str
        The on-ramp (must end at a merge). One road takes one meter: a link of a road that has a
        meter on any part (``"<link>-merge"`` of a metered ramp) is an error.
    mode : str
        ``"alinea"`` or ``"fixed"``.
    rate_vph : float, optional
        Fixed rate [veh/h] (``mode="fixed"``).
    detector_link : str, optional
        Link downstream of the merge carrying the detector; the merge's only outgoing link when None.
    setpoint_pct : float, optional
        ALINEA set-point [%]; the detector link's critical occupancy ``100 k_c / k_j`` when None.
    gain_vph_per_pct : float
        ALINEA gain ``K_R`` [veh/h per %].
    min_rate_vph, max_rate_vph : float, optional
        Rate bounds [veh/h]. ``max`` defaults to the capacity of the metered ramp (its part up to
        the stop line, lanes at time 0 x lane capacity) in the scenario that runs, after every
        measure applied to it: the meter's ``max_rate_vph`` is None and
        :meth:`AlineaMeter.validate <trafficsim.control.AlineaMeter.validate>` resolves it, so a
        ``Widening`` or ``Enforcement`` of the ramp raises it whether applied before or after
        the meter.
    interval_s : float
        Control interval [s].
    queue_override : float
        Fraction of ramp storage that triggers the override (0 disables it).
    window : tuple of (float, float), optional
        Active ``(start_s, end_s)`` [s]; the whole run when None.
    stop_line_m : float
        Distance [m] of the meter's stop line upstream of the merge, at most half the ramp. The
        ramp is split there (:meth:`~trafficsim.network.Network.split_link`): the meter stands on
        its upstream part, which keeps the id ``link``, and a link ``"<link>-merge"`` carries the
        last metres, so that a released vehicle reaches the merge at speed, as behind a field
        meter; ``meta["split_links"]`` records the parts (``{link: [link, "<link>-merge"]}``), so
        that a hybrid region naming ``link`` covers both. ``0`` puts the stop line at the merge node, where on the micro and SUMO engines
        every released vehicle merges from a standstill (see ``docs/measures.md``).
    label : str
        Name of the variant in reports.
    """

    link: str = ""
    mode: str = "alinea"
    rate_vph: float | None = None
    detector_link: str | None = None
    setpoint_pct: float | None = None
    gain_vph_per_pct: float = 70.0
    min_rate_vph: float = 200.0
    max_rate_vph: float | None = None
    interval_s: float = 60.0
    queue_override: float = 0.8
    window: tuple | None = None
    stop_line_m: float = METER_STOP_LINE_M
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        ramp = self.need_link(sc, "link", self.link)
        road = sc.road_of(self.link)
        parts = sc.link_parts([road])
        metered = next((c for c in sc.controls if isinstance(c, (FixedRateMeter, AlineaMeter)) and c.link in parts), None)
        if metered is not None and metered.link == self.link:
            raise self.error("link", f"link {self.link!r} is already metered")
        if metered is not None:
            # a second stop line on the road (e.g. on '<ramp>-merge' behind the meter) meters it twice
            raise self.error("link", f"link {self.link!r} is part of the road {road!r}, which is already metered (a "
                                     f"{type(metered).__name__} on {metered.link!r}): one road takes one meter")
        pocket = sc.network.links.get(f"{ramp.id}:pocket")
        if pocket is not None and (pocket.from_node, pocket.to_node) == (ramp.from_node, ramp.to_node):
            # a VariableLane's pocket beside the whole ramp: its turning traffic would bypass the meter
            raise self.error("link", f"link {self.link!r} has a variable lane (pocket {pocket.id!r}) whose traffic would "
                                     "pass the meter unmetered; apply RampMetering first and the VariableLane after "
                                     "it, which puts the lane between the stop line and the junction")
        ins = sc.network.in_links(ramp.to_node)
        if len(ins) < 2:
            raise self.error("link", f"link {self.link!r} does not end at a merge (node {ramp.to_node!r} has one "
                                     "incoming link): there is nothing to meter it against")
        merge_node = ramp.to_node
        back = min(finite(owner, "stop_line_m", self.stop_line_m), 0.5 * ramp.length_m)
        if back > 0.0:
            self._move_stop_line(sc, ramp, back)
        start, end = (0.0, math.inf) if self.window is None else self.time_window(sc, "window", self.window)
        if self.mode == "fixed":
            if self.rate_vph is None:
                raise self.error("rate_vph", "a fixed-rate meter needs rate_vph [veh/h]")
            rate = finite(owner, "rate_vph", self.rate_vph)
            prof = [(start, rate)] + ([(end, UNMETERED_VPH)] if math.isfinite(end) else [])
            sc.controls.append(FixedRateMeter(self.link, tuple(prof)))
            return
        if self.mode != "alinea":
            raise self.error("mode", f"must be 'alinea' or 'fixed', got {self.mode!r}")
        if self.rate_vph is not None:
            # an ALINEA meter sets its own rate: a fixed rate given with it would be ignored
            raise self.error("rate_vph", f"applies to mode='fixed'; ALINEA sets the rate itself between min_rate_vph and "
                                         f"max_rate_vph (got rate_vph={self.rate_vph!r} with mode='alinea')")
        if self.setpoint_pct is not None and not 0.0 < finite(owner, "setpoint_pct", self.setpoint_pct) < 100.0:
            raise self.error("setpoint_pct", f"an occupancy must lie in (0, 100) %, got {self.setpoint_pct!r}")
        outs = sc.network.out_links(merge_node)
        det = self.detector_link
        if det is None:
            if len(outs) != 1:
                raise self.error("detector_link", f"the merge node {merge_node!r} has {len(outs)} outgoing links; name one")
            det = outs[0].id
        dlk = self.need_link(sc, "detector_link", det)
        if dlk.from_node != merge_node:
            raise self.error("detector_link", f"link {det!r} is not downstream of the merge node {merge_node!r}")
        setpoint = self.setpoint_pct
        if setpoint is None:
            setpoint = 100.0 * dlk.critical_density_vpkm_per_lane / dlk.jam_density_vpkm_per_lane
        # None: the ramp's capacity in the scenario that runs (AlineaMeter.validate), not the one
        # seen here, which a Widening or Enforcement applied before the meter had already raised
        hi = None if self.max_rate_vph is None else finite(owner, "max_rate_vph", self.max_rate_vph, strict=True)
        sc.controls.append(AlineaMeter(
            self.link, det, finite(owner, "setpoint_pct", setpoint, strict=True),
            finite(owner, "gain_vph_per_pct", self.gain_vph_per_pct, strict=True),
            finite(owner, "min_rate_vph", self.min_rate_vph), hi,
            finite(owner, "interval_s", self.interval_s, strict=True), min(100.0, dlk.length_m),
            finite(owner, "queue_override", self.queue_override), start, end,
        ))

    def _move_stop_line(self, sc: Scenario, ramp, back: float) -> None:
        """Split the ramp ``back`` metres before the merge; routes and the merge node's signal
        follow the new last link."""
        tail = f"{ramp.id}-merge"
        for c in sc.controls:
            on = [a for a in ("link", "detector_link") if getattr(c, a, None) == ramp.id]
            if on:
                raise self.error("stop_line_m", f"a {type(c).__name__} already stands on link {ramp.id!r} ({on[0]}); "
                                                "splitting the ramp would cut it off (stop_line_m=0 keeps the ramp whole)")
        for name in (f"{ramp.id}-meter", tail):
            if name in sc.network.nodes or name in sc.network.links:
                raise self.error("stop_line_m", f"the id {name!r} the split needs is taken (stop_line_m=0 keeps the ramp whole)")
        sc.network.split_link(ramp.id, ramp.length_m - back, node=f"{ramp.id}-meter", tail=tail)
        # a link list naming the ramp (a hybrid region) then covers both parts; a ramp that is
        # itself the last part of a road cut before stays a part of it (Scenario.link_parts
        # expands the parts of a part), and a road's first part that keeps the road's id gets
        # the tail after it in the road's own list
        split = dict(sc.meta.get("split_links", {}))
        own = split[ramp.id] if ramp.id in split.get(ramp.id, ()) else [ramp.id]
        at = own.index(ramp.id) + 1
        split[ramp.id] = [*own[:at], tail, *own[at:]]
        sc.meta["split_links"] = split
        for i, f in enumerate(sc.demand.flows):
            if any(ramp.id in links for links, _ in f.routes):
                routes = tuple((tuple(x for lid in links for x in ((lid, tail) if lid == ramp.id else (lid,))), share)
                               for links, share in f.routes)
                sc.demand.flows[i] = replace(f, routes=routes)
        for i, c in enumerate(sc.controls):
            if isinstance(c, FixedTimeSignal) and c.node == ramp.to_node:
                phases = tuple(replace(p, movements=tuple((tail if a == ramp.id else a, b) for a, b in p.movements))
                               for p in c.phases)
                sc.controls[i] = replace(c, phases=phases)
            elif isinstance(c, PriorityJunction) and c.node == ramp.to_node:
                sc.controls[i] = replace(c, major=tuple(tail if a == ramp.id else a for a in c.major))

    def describe(self) -> str:
        """One line for tables and plots: fixed rate or ALINEA, the ramp and where its stop line stands."""
        at = f", stop line {self.stop_line_m:g} m before the merge" if self.stop_line_m > 0 else ", stop line at the merge"
        if self.mode == "fixed":
            return f"RampMetering: fixed {self.rate_vph:g} veh/h on {self.link!r}{at}"
        return f"RampMetering: ALINEA on {self.link!r} (K_R={self.gain_vph_per_pct:g} veh/h/%, queue override){at}"


@dataclass(frozen=True)
class MergeMetering(Measure):
    """Release lane by lane: a signal at the merge alternates green between the approaches.

    Parameters
    ----------
    node : str
        The merge node (>= 2 incoming links, no signal yet; a
        :class:`~trafficsim.control.PriorityJunction` there is replaced by the signal).
    approaches : tuple of str, optional
        Incoming links, one phase each, in order; all incoming links when None.
    cycle_s : float
        Cycle [s].
    amber_s : float
        Lost time after each green [s] (a merge release needs little clearance).
    min_green_s : float
        Minimum green per approach [s].
    label : str
        Name of the variant in reports.
    """

    node: str = ""
    approaches: tuple | None = None
    cycle_s: float = 60.0
    amber_s: float = 2.0
    min_green_s: float = 7.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        self.need_unsignalised_node(sc, "node", self.node)
        ins = [lk.id for lk in sc.network.in_links(self.node)]
        if len(ins) < 2:
            raise self.error("node", f"node {self.node!r} is not a merge (it has {len(ins)} incoming link)")
        apps = list(self.approaches) if self.approaches is not None else ins
        if isinstance(self.approaches, str) or len(apps) < 2:
            raise self.error("approaches", f"needs two or more links into {self.node!r} to alternate between, got "
                                           f"{self.approaches!r}")
        for a in apps:
            if a not in ins:
                raise self.error("approaches", f"link {a!r} does not enter node {self.node!r}")
        outs = [lk.id for lk in sc.network.out_links(self.node)]
        flows = _approach_peak_flows(sc)
        cycle = finite(owner, "cycle_s", self.cycle_s, strict=True)
        amber = finite(owner, "amber_s", self.amber_s)
        finite(owner, "min_green_s", self.min_green_s, strict=True)
        eff = cycle - amber * len(apps)
        if eff < self.min_green_s * len(apps):
            raise self.error("cycle_s", f"{cycle:g} s is too short for {len(apps)} approaches")
        dem = [flows.get(a, 0.0) for a in apps]
        tot = sum(dem) or 1.0
        greens = [max(self.min_green_s, eff * d / tot) for d in dem]
        k = eff / sum(greens)
        phases = tuple(Phase(round(g * k, 1), tuple((a, o) for o in outs), self.amber_s, 0.0) for a, g in zip(apps, greens))
        _signalise(sc, FixedTimeSignal(self.node, phases, 0.0))

    def describe(self) -> str:
        """One line for tables and plots: the merge node released lane by lane and its cycle."""
        return f"MergeMetering: release lane by lane at {self.node!r} ({self.cycle_s:g} s cycle, green by demand)"


@dataclass(frozen=True)
class PeakControl(Measure):
    """Peak manual control at the spot (see the module docstring for its simulation meaning).

    Parameters
    ----------
    node : str
        The merge or signalised junction the officers control (ignored with ``gate_link``).
    gate_link : str, optional
        Instead: officers hold the inflow of this link to ``gate_rate_vph`` during the peak window
        (the "drip" method, 滴水法), keeping the queue off the critical section.
    gate_rate_vph : float, optional
        Gate rate [veh/h]; required with ``gate_link``.
    label : str
        Name of the variant in reports.
    """

    node: str = ""
    gate_link: str | None = None
    gate_rate_vph: float | None = None
    label: str = ""

    def mode(self, sc: Scenario) -> str:
        """``"gate"`` with a gate link, ``"green"`` at a signalised node, ``"priority"`` at a merge."""
        if self.gate_link is not None:
            return "gate"
        if self.node not in sc.network.nodes:
            raise self.error("node", f"node {self.node!r} is not in the network")
        if any(isinstance(c, FixedTimeSignal) and c.node == self.node for c in sc.controls):
            return "green"
        if len(sc.network.in_links(self.node)) >= 2:
            return "priority"
        raise self.error("node", f"node {self.node!r} is neither a merge nor a signalised junction")

    def _edit(self, sc: Scenario) -> None:
        if self.gate_link is None and self.gate_rate_vph is not None:
            raise self.error("gate_rate_vph", "applies with gate_link (officers holding one link's inflow); at a "
                                              f"node ({self.node!r}) they share the green or the merge by demand")
        if self.mode(sc) == "gate":
            self.need_link(sc, "gate_link", self.gate_link)
            if self.gate_rate_vph is None:
                raise self.error("gate_rate_vph", "a gate needs its rate [veh/h]")
            start, end = peak_window(sc)
            rate = finite(type(self).__name__, "gate_rate_vph", self.gate_rate_vph)
            sc.controls.append(FixedRateMeter(self.gate_link, ((start, rate), (end, UNMETERED_VPH))))
            return
        if self.mode(sc) == "green":
            sig = next(c for c in sc.controls if isinstance(c, FixedTimeSignal) and c.node == self.node)
            plan, rep = webster(sc, sig, cycle_s=sig.cycle_s)
            _replace_signal(sc, plan)
            sc.meta["peak_control"] = rep
            return
        flows = _approach_peak_flows(sc)
        ins = sc.network.in_links(self.node)
        tot = sum(flows.get(lk.id, 0.0) for lk in ins)
        if tot <= 0:
            raise self.error("node", f"no demand enters node {self.node!r}")
        for lk in ins:
            sc.network.update_link(lk.id, priority=max(flows.get(lk.id, 0.0) / tot, 1e-3))
        sc.meta["peak_control"] = {"node": self.node, "window_s": peak_window(sc),
                                   "priority": {lk.id: sc.network.links[lk.id].priority for lk in ins}}

    def describe(self) -> str:
        """One line for tables and plots: the gate and its rate, or the node whose streams officers release."""
        if self.gate_link is not None:
            return f"PeakControl: officers hold {self.gate_link!r} to {self.gate_rate_vph:g} veh/h in the peak"
        return f"PeakControl: officers at {self.node!r} release each stream by its demand (merge) or green by demand (signal)"
