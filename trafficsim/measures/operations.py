"""Operational measures: bus bays, bus-stop relocation, enforcement.

BusBay
    Buses dwell in a bay off the running lane (``BusStop.bay = True``): the macro engine no
    longer takes the share of a lane the stop held (bus flow x (dwell + clearance) / 3600); the
    micro engine no longer blocks the lane.
StopRelocation
    A kerbside stop moves to another link (away from the merge or the queue) and, optionally,
    fewer buses pass the spot (routes moved to another crossing: ``bus_flow_factor``).
Enforcement (电子警察, cameras and patrols)
    Fewer lane-blocking events: each :class:`~trafficsim.control.Blocking` lasts
    ``1 - blocking_reduction`` of its time; trucks in a ban zone fall by ``truck_reduction``;
    links whose lane capacity is lowered by disorder (illegal U-turns cutting across,
    double-parking manoeuvres) get ``capacity_restore`` of the lost capacity back; illegal stopping
    at bus stops stops (stop clearance times the ``stop_clearance_factor``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..control import Blocking, BusStop
from ..scenario import Scenario
from ._base import Measure, finite

__all__ = ["BusBay", "StopRelocation", "Enforcement"]


def _stops(sc: Scenario, links) -> list[int]:
    return [i for i, c in enumerate(sc.controls) if isinstance(c, BusStop) and (links is None or c.link in links)]


@dataclass(frozen=True)
class BusBay(Measure):
    """Bus bays at the kerbside stops on ``links`` (all stops when None).

    Parameters
    ----------
    links : tuple of str, optional
        Links whose stops get a bay.
    label : str
        Name of the variant in reports.
    """

    links: tuple | None = None
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        idx = [i for i in _stops(sc, self.links) if not sc.controls[i].bay]
        if not idx:
            where = f"on {', '.join(self.links)}" if self.links else "in the scenario"
            raise self.error("links", f"no kerbside bus stop {where}")
        for i in idx:
            sc.controls[i] = replace(sc.controls[i], bay=True)

    def describe(self) -> str:
        """One line for tables and plots: the links whose kerbside stops get bays."""
        return f"BusBay: bays at the stops on {', '.join(self.links) if self.links else 'every kerbside stop'}"


@dataclass(frozen=True)
class StopRelocation(Measure):
    """Move the bus stop(s) on ``link`` to ``to_link`` and/or route fewer buses past it.

    Parameters
    ----------
    link : str
        Link whose stop(s) move.
    to_link : str, optional
        Where the stop goes (at ``position_m``); the stop stays when None.
    position_m : float
        Stop position on ``to_link`` from its start [m].
    bus_flow_factor : float
        Multiplier of the bus flows that use ``link`` (fewer buses at the spot), in [0, 1].
    label : str
        Name of the variant in reports.
    """

    link: str = ""
    to_link: str | None = None
    position_m: float = 0.0
    bus_flow_factor: float = 1.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        self.need_link(sc, "link", self.link)
        idx = _stops(sc, (self.link,))
        if not idx:
            raise self.error("link", f"link {self.link!r} has no bus stop to move")
        factor = finite(owner, "bus_flow_factor", self.bus_flow_factor)
        if factor > 1.0:
            raise self.error("bus_flow_factor", f"must be in [0, 1], got {factor!r}")
        if self.to_link is None and factor == 1.0:
            raise self.error("to_link", "give to_link or a bus_flow_factor below 1 (otherwise nothing changes)")
        if self.to_link is not None:
            self.need_link(sc, "to_link", self.to_link)
            buses = [f for f, rts in zip(sc.demand.flows, sc.demand.resolve_routes(sc.network))
                     if f.vehicle_class == "bus" and any(self.to_link in p for p, _ in rts)]
            if not buses:
                # the stop would serve nobody: the variant would be the stop's removal, not a move
                raise self.error("to_link", f"no bus route uses link {self.to_link!r}: the moved stop would serve no "
                                            "bus (remove the stop with bus_flow_factor, or move it onto the buses' route)")
            for i in idx:
                sc.controls[i] = replace(sc.controls[i], link=self.to_link, position_m=finite(owner, "position_m", self.position_m))
        if factor < 1.0:
            routes = sc.demand.resolve_routes(sc.network)
            flows = []
            for f, rts in zip(sc.demand.flows, routes):
                if f.vehicle_class == "bus" and any(self.link in p for p, _ in rts):
                    f = replace(f, profile=tuple((s, q * factor) for s, q in f.profile))
                flows.append(f)
            sc.demand.flows[:] = flows

    def describe(self) -> str:
        """One line for tables and plots: where the stop moves and how many fewer buses pass it."""
        parts = []
        if self.to_link:
            parts.append(f"stop on {self.link!r} moved to {self.to_link!r}")
        if self.bus_flow_factor < 1.0:
            parts.append(f"{1 - self.bus_flow_factor:.0%} fewer buses past {self.link!r}")
        return "StopRelocation: " + ", ".join(parts)


@dataclass(frozen=True)
class Enforcement(Measure):
    """Fewer lane-blocking events (illegal parking, trucks in a ban zone, U-turns cutting across).

    Parameters
    ----------
    blocking_reduction : float
        Share of each blocking event's duration removed, in [0, 1].
    truck_reduction : float
        Share of truck flows removed (trucks kept out of the ban zone), in [0, 1].
    capacity_restore : tuple of (str, float, float)
        ``((link, lowered_capacity_vph_per_lane, normal_capacity_vph_per_lane), ...)``, one triple
        per link, capacities [veh/h/lane] with ``0 <= lowered <= normal``, ``lowered`` the link's
        capacity in the scenario: it becomes ``lowered + restore_share x (normal - lowered)``
        (anything else is an error naming the entry; so a second application is one). A link a measure cut
        in parts (``meta["split_links"]``, e.g. a ramp that
        :class:`~trafficsim.measures.RampMetering` metered) is restored in all its parts: the
        disorder and the enforcement cover the road, not the side of the stop line.
    restore_share : float
        Share of the disorder loss that enforcement removes, in [0, 1].
    stop_clearance_factor : float
        Multiplier of the bus stops' clearance time (cars no longer stop in the bus berth).
    label : str
        Name of the variant in reports.
    """

    blocking_reduction: float = 0.7
    truck_reduction: float = 0.0
    capacity_restore: tuple = ()
    restore_share: float = 0.5
    stop_clearance_factor: float = 1.0
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        for f in ("blocking_reduction", "truck_reduction", "restore_share"):
            if finite(owner, f, getattr(self, f)) > 1.0:
                raise self.error(f, f"must be a fraction in [0, 1], got {getattr(self, f)!r}")
        acted = False
        ctl = []
        for c in sc.controls:
            if isinstance(c, Blocking) and self.blocking_reduction > 0:
                acted = True
                dur = (c.end_s - c.start_s) * (1.0 - self.blocking_reduction)
                if dur <= 0:
                    continue
                c = replace(c, end_s=c.start_s + dur)
            elif isinstance(c, BusStop) and self.stop_clearance_factor != 1.0:
                acted = True
                c = replace(c, clearance_s=c.clearance_s * finite(owner, "stop_clearance_factor", self.stop_clearance_factor))
            ctl.append(c)
        sc.controls[:] = ctl
        if self.truck_reduction > 0:
            trucks = [i for i, f in enumerate(sc.demand.flows) if f.vehicle_class == "truck"]
            if trucks:
                acted = True
            for i in trucks:
                f = sc.demand.flows[i]
                sc.demand.flows[i] = replace(f, profile=tuple((s, q * (1 - self.truck_reduction)) for s, q in f.profile))
        for lid, low, normal in self._restore_entries(sc):
            for part in sc.link_parts([lid]):   # a road an earlier measure cut: every part
                lk = sc.network.links[part]
                cap = lk.capacity_vph_per_lane + self.restore_share * (normal - low)
                sc.network.update_link(part, capacity_vph_per_lane=cap)
            acted = True
        if not acted:
            raise self.error("blocking_reduction", f"scenario {sc.name or 'scenario'!r} has no blocking events, trucks, "
                                                   "bus stops or listed links for enforcement to act on")

    def _restore_entries(self, sc: Scenario) -> list[tuple[str, float, float]]:
        """``capacity_restore`` checked: ``(link, lowered, normal)`` triples of a link in ``sc``
        and two capacities [veh/h/lane] with ``0 <= lowered <= normal``."""
        field = "capacity_restore"
        shape = "(link, lowered_capacity_vph_per_lane, normal_capacity_vph_per_lane)"
        entries = self.capacity_restore
        if isinstance(entries, (str, bytes)) or not isinstance(entries, (tuple, list)):
            raise self.error(field, f"must be a sequence of {shape} triples, got {entries!r}")
        if len(entries) == 3 and isinstance(entries[0], str) and not isinstance(entries[1], (str, tuple, list)):
            # one triple given without the enclosing sequence: iterating it would read the link id
            raise self.error(field, f"must be a sequence of {shape} triples, got the single triple {tuple(entries)!r}; "
                                    f"write ({tuple(entries)!r},)")
        out = []
        for i, entry in enumerate(entries):
            at = f"{field}[{i}]"
            if isinstance(entry, (str, bytes)) or not isinstance(entry, (tuple, list)) or len(entry) != 3:
                raise self.error(at, f"must be a {shape} triple, got {entry!r}")
            lid, low, normal = entry
            if not isinstance(lid, str):
                raise self.error(at, f"the link must be a link id (str), got {lid!r}")
            self.need_link(sc, at, lid)
            caps = []
            for name, value in (("lowered", low), ("normal", normal)):
                try:
                    x = float(value)
                except (TypeError, ValueError):
                    x = math.nan
                if not (math.isfinite(x) and x >= 0.0):
                    raise self.error(at, f"the {name} capacity of link {lid!r} must be a finite number >= 0 "
                                         f"[veh/h/lane], got {value!r}")
                caps.append(x)
            low, normal = caps
            if low > normal:
                raise self.error(at, f"the lowered capacity {low:g} veh/h/lane of link {lid!r} is above its normal "
                                     f"capacity {normal:g} veh/h/lane")
            now = sc.network.links[lid].capacity_vph_per_lane
            if abs(now - low) > 0.5:
                # the gap is won back from the lowered capacity: on a link that does not have it,
                # adding it would give a capacity above the normal one (or count the gain twice
                # when the measure is applied again)
                raise self.error(at, f"link {lid!r} has {now:g} veh/h/lane, not the lowered capacity {low:g} given: "
                                     "give the link's capacity in the scenario as the lowered one")
            out.append((lid, low, normal))
        return out

    def describe(self) -> str:
        """One line for tables and plots: the cuts in blocking and trucks, the capacity recovered, the stop clearance."""
        parts = []
        if self.blocking_reduction:
            parts.append(f"lane blocking -{self.blocking_reduction:.0%}")
        if self.truck_reduction:
            parts.append(f"trucks -{self.truck_reduction:.0%}")
        if self.capacity_restore:
            parts.append(f"{self.restore_share:.0%} of the disorder loss recovered on {', '.join(e[0] for e in self.capacity_restore)}")
        if self.stop_clearance_factor != 1.0:
            parts.append(f"bus-stop clearance x{self.stop_clearance_factor:g}")
        return "Enforcement: " + ", ".join(parts)
