"""The measure protocol: a frozen dataclass whose ``apply`` is a pure ``Scenario -> Scenario``.

A measure never reaches into an engine. It copies the scenario, edits the copy's network, lane
schedules, controls or demand, validates the result and returns it. Errors name the measure and
the offending field (``TidalLane.link: link 'x' has no opposite link ...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..control import ControlError
from ..demand import DemandError
from ..network import Link, Network, NetworkError, PathFinder
from ..scenario import Scenario, ScenarioError

__all__ = ["Measure", "MeasureError", "peak_window", "add_lane_delta", "reroute_flows", "check_reachable",
           "road_ends", "opposite_roads"]


class MeasureError(ValueError):
    """A measure cannot be applied to a scenario (the message names the measure and the field)."""


@dataclass(frozen=True)
class Measure:
    """Base class of every remedy.

    Subclasses are frozen dataclasses that implement :meth:`_edit` on a private copy of the
    scenario and :meth:`describe`. ``apply`` copies, edits, records the measure in
    ``meta["applied_measures"]`` and validates.
    """

    @property
    def name(self) -> str:
        """The measure's label: ``label`` if the subclass has one set, else its class name."""
        return getattr(self, "label", "") or type(self).__name__

    def apply(self, scenario: Scenario) -> Scenario:
        """A new scenario with this measure in force; ``scenario`` is not modified.

        Raises
        ------
        MeasureError
            The measure does not fit the scenario (message names the measure and field).
        """
        sc = scenario.copy()
        try:
            self._edit(sc)
            sc.validate()
        except MeasureError:
            raise
        except (NetworkError, DemandError, ControlError, ScenarioError) as exc:
            raise MeasureError(f"{type(self).__name__}: {exc}") from None
        sc.meta["applied_measures"] = list(sc.meta.get("applied_measures", [])) + [self.describe()]
        return sc

    __call__ = apply

    def _edit(self, sc: Scenario) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        """One line in traffic terms: what this measure does and where."""
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.name != "label")
        return f"{type(self).__name__}({args})"

    def error(self, field: str, message: str) -> MeasureError:
        """A :class:`MeasureError` naming this measure and ``field``."""
        return MeasureError(f"{type(self).__name__}.{field}: {message}")

    def time_window(self, sc: Scenario, field: str, window) -> tuple[float, float]:
        """``window`` checked as a ``(start_s, end_s)`` pair with ``0 <= start_s < end_s`` that
        starts before the end of the run (a window after it would make the measure do nothing,
        e.g. hours given for seconds); the end may be ``inf`` or past the run."""
        try:
            if isinstance(window, (str, bytes)) or len(window) != 2:
                raise TypeError
            start, end = float(window[0]), float(window[1])
        except (TypeError, ValueError):
            raise self.error(field, f"must be a (start_s, end_s) pair [s], got {window!r}") from None
        if not (math.isfinite(start) and 0.0 <= start < end):
            raise self.error(field, f"need 0 <= start_s < end_s [s], got {window!r}")
        if start >= sc.duration_s:
            raise self.error(field, f"starts at {start:g} s, at or after the end of the run ({sc.duration_s:g} s); "
                                    "the measure would do nothing (times are in seconds)")
        return start, end

    def need_link(self, sc: Scenario, field: str, link_id: str) -> Link:
        """The link ``link_id`` of ``sc``, or an error naming ``field``."""
        if link_id not in sc.network.links:
            raise self.error(field, f"link {link_id!r} is not in scenario {sc.name or 'scenario'!r}")
        return sc.network.links[link_id]

    def need_unsignalised_node(self, sc: Scenario, field: str, node: str) -> None:
        """An error naming ``field`` unless ``node`` is in ``sc`` and has no signal plan (a
        measure that puts a signal there; an existing plan is retimed by ``SignalRetiming``)."""
        from ..control import FixedTimeSignal

        if node not in sc.network.nodes:
            raise self.error(field, f"node {node!r} is not in the network")
        if any(isinstance(c, FixedTimeSignal) and c.node == node for c in sc.controls):
            raise self.error(field, f"node {node!r} is already signalised; use SignalRetiming")

    def need_road_end(self, sc: Scenario, field: str, link_id: str) -> Link:
        """The part of the road ``link_id`` that reaches its downstream node: the link itself, or
        its last part when a measure cut it (``meta["split_links"]``, e.g. ``"<ramp>-merge"`` of a
        metered ramp); an error naming ``field`` when ``link_id`` is not in the network."""
        self.need_link(sc, field, link_id)
        return sc.network.links[sc.link_parts([link_id])[-1]]


def road_ends(sc: Scenario, link_id: str) -> tuple[str, str]:
    """Upstream and downstream node of the road ``link_id`` names: the link, or all its parts when
    a measure cut it (``meta["split_links"]``)."""
    parts = sc.link_parts([link_id])
    return sc.network.links[parts[0]].from_node, sc.network.links[parts[-1]].to_node


def opposite_roads(sc: Scenario, link_id: str) -> list[str]:
    """The roads running opposite to the road ``link_id`` names (from its downstream node to its
    upstream one), each by the id that names it as a whole: a part of a road a measure cut
    (``meta["split_links"]``) is no road of its own."""
    start, end = road_ends(sc, link_id)
    inner = {p for road, parts in sc.meta.get("split_links", {}).items() for p in parts if p != road}
    return [o for o in sc.network.links if o not in inner and road_ends(sc, o) == (end, start)]


def peak_window(sc: Scenario) -> tuple[float, float]:
    """The scenario's peak window ``(start_s, end_s)`` [s]: the peak plateau with its ramps.

    Read from ``meta["parameters"]`` (peak_start_s, peak_duration_s, ramp_s) of library
    scenarios; the whole run when they are absent.
    """
    p = sc.meta.get("parameters", {})
    if not {"peak_start_s", "peak_duration_s"} <= set(p):
        return 0.0, sc.duration_s
    ramp = float(p.get("ramp_s", 0.0))
    start = max(0.0, float(p["peak_start_s"]) - ramp)
    end = min(sc.duration_s, float(p["peak_start_s"]) + float(p["peak_duration_s"]) + ramp)
    return start, end


def add_lane_delta(net: Network, link_id: str, deltas: list[tuple[float, int]], *, owner: str = "measure") -> None:
    """Add a piecewise-constant lane change to a link's schedule.

    ``deltas`` is ``[(start_s, delta_lanes), ...]``: from ``start_s`` [s] on, ``delta_lanes`` is
    added (cumulative changes are the caller's job: each entry is the *total* delta in force from
    its start). The lane count at time 0 and the existing schedule are merged. Raises
    :class:`MeasureError` if a lane count would fall below 0 (or below 1 at time 0).
    """
    lk = net.link(link_id)
    deltas = sorted(deltas)

    def delta_at(t: float) -> int:
        d = 0
        for s, v in deltas:
            if s <= t:
                d = v
        return d

    times = sorted({s for s, _ in lk.lane_schedule} | {s for s, _ in deltas if s > 0})
    lanes0 = lk.lanes_at(0.0) + delta_at(0.0)
    if lanes0 < 1:
        raise MeasureError(f"{owner}: link {link_id!r} would have {lanes0} lanes at time 0 (needs >= 1)")
    schedule: list[tuple[float, int]] = []
    last = lanes0
    for t in times:
        n = lk.lanes_at(t) + delta_at(t)
        if n < 0:
            raise MeasureError(f"{owner}: link {link_id!r} would have {n} lanes from t={t:g} s")
        if n != last:
            schedule.append((t, n))
            last = n
    net.update_link(link_id, lanes=lanes0, lane_schedule=schedule)


def reroute_flows(sc: Scenario, touched_links: set[str] | None = None) -> list[str]:
    """Drop explicit routes that are no longer valid (or that use ``touched_links``), so that the
    flows take the free-flow shortest path on the changed network; returns the labels re-routed."""
    changed = []
    for i, f in enumerate(sc.demand.flows):
        if not f.routes:
            continue
        stale = False
        for links, _ in f.routes:
            if touched_links and set(links) & touched_links:
                stale = True
            try:
                sc.network.validate_route(links, f.origin, f.destination)
            except NetworkError:
                stale = True
        if stale:
            from dataclasses import replace

            sc.demand.flows[i] = replace(f, routes=())
            changed.append(f.label())
    return changed


def check_reachable(sc: Scenario, owner: str) -> None:
    """Raise :class:`MeasureError` naming the first OD pair whose destination is unreachable."""
    finder = PathFinder(sc.network)
    for f in sc.demand.flows:
        if f.origin not in sc.network.nodes or f.destination not in sc.network.nodes:
            raise MeasureError(f"{owner}: OD {f.origin!r} -> {f.destination!r} ({f.label()}): a node was removed")
        if finder.path(f.origin, f.destination) is None:
            raise MeasureError(
                f"{owner}: OD {f.origin!r} -> {f.destination!r} ({f.label()}) is cut: no path remains on the changed network"
            )


def finite(owner: str, field: str, value, *, minimum: float = 0.0, strict: bool = False) -> float:
    """``value`` as a finite float >= ``minimum`` (> when ``strict``), or a clear error."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise MeasureError(f"{owner}.{field}: must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < minimum or (strict and x == minimum):
        raise MeasureError(f"{owner}.{field}: must be finite and {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return x
