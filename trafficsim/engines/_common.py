"""What every engine needs from a scenario: resolved routes, time breakpoints, step choice."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..control import (
    PERMISSIVE_CRITICAL_GAP_S, PERMISSIVE_FOLLOW_UP_S, Blocking, BusStop, FixedRateMeter, FixedTimeSignal,
    PriorityJunction, TollBooth, check_junction_controls, permissive_yields, priority_yields,
)
from ..demand import Demand, DemandError
from ..routing import candidate_routes
from ..scenario import Scenario

__all__ = [
    "SimulationError", "RouteTable", "build_routes", "breakpoints", "lanes_in_force", "steps_for", "positive_seconds",
    "has_signals", "step_index", "int_array", "float_array", "progress_bar", "give_way_table",
]


class SimulationError(RuntimeError):
    """A run failed (a kernel status, an inconsistent option); the message says what to change."""


@dataclass
class RouteTable:
    """Every route of every OD flow, one row each (the commodities of the engines)."""

    flow: list[int]
    links: list[tuple[str, ...]]
    share: list[float]
    label: list[str]

    def __len__(self) -> int:
        return len(self.links)


def build_routes(scenario: Scenario, candidates: int = 1) -> RouteTable:
    """Resolve routes (free-flow shortest paths where none given) into a :class:`RouteTable`.

    ``candidates > 1`` (dynamic route choice) gives every flow without explicit routes up to that
    many routes (:func:`trafficsim.routing.candidate_routes`), the free-flow shortest path first
    with share 1 and the others with share 0 until the run loop re-splits them.
    """
    if candidates > 1:
        flows = scenario.demand.flows
        extra = candidate_routes(scenario.network, flows, candidates)
        explicit = iter(Demand([f for f in flows if f.routes]).resolve_routes(scenario.network))
        resolved = [next(explicit) if f.routes else [(p, 1.0 if i == 0 else 0.0) for i, p in enumerate(paths)]
                    for f, paths in zip(flows, extra)]
    else:
        resolved = scenario.demand.resolve_routes(scenario.network)
    flows, links, shares, labels = [], [], [], []
    for fi, (flow, routes) in enumerate(zip(scenario.demand.flows, resolved)):
        for ri, (path, share) in enumerate(routes):
            if len(set(path)) != len(path):
                raise DemandError(f"flow {flow.label()}: route {list(path)} visits a link twice")
            flows.append(fi)
            links.append(tuple(path))
            shares.append(float(share))
            suffix = f"#{ri}" if len(routes) > 1 else ""
            labels.append(f"{fi}:{flow.label()}{suffix}")
    return RouteTable(flows, links, shares, labels)


def lanes_in_force(scenario: Scenario, t_s: float, routes: "RouteTable | None" = None) -> dict[str, float]:
    """Effective lanes per link at ``t_s`` [s] as the macro engine sees them.

    The lane schedule, minus lanes blocked by :class:`~trafficsim.control.Blocking` events,
    minus the share of time a kerbside :class:`~trafficsim.control.BusStop` holds one lane
    (bus flow on the link x (dwell + clearance) / 3600, at most one lane), scaled by the share of
    a lane's capacity that a :class:`~trafficsim.control.TollBooth` serves (its rate over the
    link's lane capacity, when below 1). Never below 0.
    """
    lanes = {lid: float(lk.lanes_at(t_s)) for lid, lk in scenario.network.links.items()}
    for c in scenario.controls:
        if isinstance(c, Blocking) and c.start_s <= t_s < c.end_s:
            lanes[c.link] = max(0.0, lanes[c.link] - c.lanes)
    stops = [c for c in scenario.controls if isinstance(c, BusStop) and not c.bay]
    if stops:
        routes = routes if routes is not None else build_routes(scenario)
        flows = scenario.demand.flows
        for stop in stops:
            bus_vph = sum(
                flows[f].rate_at(t_s) * share
                for f, path, share in zip(routes.flow, routes.links, routes.share)
                if flows[f].vehicle_class == "bus" and stop.link in path
            )
            blocked = min(1.0, bus_vph * (stop.dwell_mean_s + stop.clearance_s) / 3600.0)
            lanes[stop.link] = max(0.0, lanes[stop.link] - blocked)
    for c in scenario.controls:
        if isinstance(c, TollBooth):
            share = c.rate_vph_per_lane / scenario.network.links[c.link].capacity_vph_per_lane
            lanes[c.link] *= min(1.0, share)
    return lanes


def breakpoints(scenario: Scenario) -> list[float]:
    """Times [s] at which some piecewise-constant input (demand, lanes, meters, blocking) changes."""
    times: set[float] = set()
    for f in scenario.demand.flows:
        times.update(s for s, _ in f.profile)
    for lk in scenario.network.links.values():
        times.update(s for s, _ in lk.lane_schedule)
    for c in scenario.controls:
        if isinstance(c, FixedRateMeter):
            times.update(s for s, _ in c.profile)
        elif isinstance(c, Blocking):
            times.update((c.start_s, c.end_s))
        elif isinstance(c, BusStop):
            times.update(s for f in scenario.demand.flows if f.vehicle_class == "bus" for s, _ in f.profile)
    return sorted(t for t in times if 0 < t < scenario.duration_s)


def positive_seconds(name: str, value) -> float:
    """``value`` as a float if it is a finite real number > 0 (numpy scalars included), else a
    :class:`SimulationError` naming the option ``name``."""
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value <= 0):
        raise SimulationError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def steps_for(scenario: Scenario, dt_s: float, record_interval_s: float) -> tuple[int, int]:
    """Number of steps and steps per record interval; clear errors when they do not divide."""
    dt_s = positive_seconds("dt_s", dt_s)
    record_interval_s = positive_seconds("record_interval_s", record_interval_s)
    spr = record_interval_s / dt_s
    if abs(spr - round(spr)) > 1e-9 * spr:
        raise SimulationError(
            f"record_interval_s={record_interval_s:g} must be a whole multiple of dt_s={dt_s:g}"
        )
    n_steps = int(math.ceil(scenario.duration_s / dt_s - 1e-9))
    return n_steps, int(round(spr))


def has_signals(scenario: Scenario) -> bool:
    """Whether the scenario has at least one signal plan."""
    return any(isinstance(c, FixedTimeSignal) for c in scenario.controls)


def give_way_table(network, controls, movements) -> list[tuple[int, list[int], float, float]]:
    """The movements that give way, for an engine: ``(m, [movements it gives way to], t_c, t_f)``
    with indices into ``movements`` (``(in_link, out_link)`` pairs; only pairs in it count).

    Permitted left turns at signals (:func:`~trafficsim.control.permissive_yields`, gaps
    ``PERMISSIVE_*``) and the yielding movements of priority junctions
    (:func:`~trafficsim.control.priority_yields`), in the order of their critical gaps, which is
    that of their ranks at a junction (the micro engine decides them in this order)."""
    check_junction_controls(controls)
    index = {tuple(mv): m for m, mv in enumerate(movements)}
    table = []
    for c in controls:
        if isinstance(c, FixedTimeSignal):
            found = {mv: (ys, PERMISSIVE_CRITICAL_GAP_S, PERMISSIVE_FOLLOW_UP_S)
                     for mv, ys in permissive_yields(network, c).items()}
        elif isinstance(c, PriorityJunction):
            used = [mv for mv in index if None not in mv and network.links[mv[0]].to_node == c.node]
            found = priority_yields(network, c, used)
        else:
            continue
        for mv, (ys, tc, tf) in sorted(found.items()):
            opp = [index[o] for o in ys if o in index]
            if mv in index and opp:
                table.append((index[mv], opp, float(tc), float(tf)))
    return sorted(table, key=lambda row: row[2])


def step_index(t_s: float, dt_s: float) -> int:
    """First step whose start time is at or after ``t_s``."""
    return int(math.ceil(t_s / dt_s - 1e-9))


def int_array(values) -> np.ndarray:
    """A C-contiguous int64 array."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.int64))


def float_array(values) -> np.ndarray:
    """A C-contiguous float64 array."""
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64))


def progress_bar(enabled: bool, total: int, engine: str, scenario: Scenario):
    """A tqdm bar over ``total`` steps labelled with the engine and scenario, or None when off."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"{engine} {scenario.name or 'scenario'}", unit="step", leave=False)
