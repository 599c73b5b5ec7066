"""Travel demand: time-dependent origin-destination flows and their routes.

Each OD flow is piecewise constant in time (``[(start_s, veh_per_h), ...]``, zero before the
first start) and travels on one or several routes with shares. Without explicit routes a flow
takes the free-flow shortest path. Demand that cannot enter the network waits in an origin
queue; engines never drop it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from .network import Network, NetworkError, PathFinder, _not_a_number

__all__ = ["ODFlow", "Demand", "DemandError", "VEHICLE_CLASSES", "movement_peaks", "profile_from_intervals"]

#: Vehicle classes every engine knows. The macro engine counts vehicles of all classes alike
#: (one vehicle each); the micro engine gives each class its own length and behaviour.
VEHICLE_CLASSES = ("car", "bus", "truck")


class DemandError(ValueError):
    """An OD flow has an invalid field (the message names the flow and the field)."""


@dataclass(frozen=True)
class ODFlow:
    """One origin-destination flow.

    Parameters
    ----------
    origin, destination : str
        Node ids.
    profile : tuple of (float, float)
        Piecewise-constant rate: ``((start_s, veh_per_h), ...)`` [s, veh/h], start times strictly
        increasing, rates >= 0. The rate is 0 before the first start time.
    routes : tuple of (tuple of str, float)
        Explicit routes as ``((link ids...), share)``; empty means the free-flow shortest path.
        Shares are normalised to sum to 1.
    vehicle_class : str
        One of :data:`VEHICLE_CLASSES`.
    name : str
        Optional label (e.g. ``"ramp"``) used in reports.
    """

    origin: str
    destination: str
    profile: tuple[tuple[float, float], ...]
    routes: tuple[tuple[tuple[str, ...], float], ...] = ()
    vehicle_class: str = "car"
    name: str = ""

    def rate_at(self, t_s: float) -> float:
        """Demand rate [veh/h] in force at time ``t_s`` [s]."""
        rate = 0.0
        for start, q in self.profile:
            if start <= t_s:
                rate = q
            else:
                break
        return rate

    def total(self, until_s: float) -> float:
        """Vehicles demanded in ``[0, until_s)`` [veh]."""
        total = 0.0
        for i, (start, q) in enumerate(self.profile):
            end = self.profile[i + 1][0] if i + 1 < len(self.profile) else math.inf
            a, b = max(start, 0.0), min(end, until_s)
            if b > a:
                total += q * (b - a) / 3600.0
        return total

    def label(self) -> str:
        """A short readable label: the name or ``origin->destination``."""
        return self.name or f"{self.origin}->{self.destination}"


def movement_peaks(routes: Iterable[tuple[ODFlow, Sequence[str], float]], *,
                   vehicle_class: str | None = None) -> dict[tuple[str, str], float]:
    """Peak demand [veh/h] of every movement ``(in_link, out_link)`` over ``routes``.

    ``routes`` gives ``(flow, links, share)`` for every route of every flow (from
    :meth:`Demand.resolve_routes` or an engine's route table); each flow counts at its highest
    rate times the route's share, summed over the routes in the order given. ``vehicle_class``
    keeps only the flows of that class.
    """
    out: dict[tuple[str, str], float] = {}
    for f, links, share in routes:
        if vehicle_class is not None and f.vehicle_class != vehicle_class:
            continue
        q = max((v for _, v in f.profile), default=0.0) * share
        for a, b in zip(links[:-1], links[1:]):
            out[(a, b)] = out.get((a, b), 0.0) + q
    return out


def profile_from_intervals(intervals: Iterable[tuple[float, float, float]]) -> list[tuple[float, float]]:
    """The piecewise-constant profile ``[(start_s, veh_per_h), ...]`` of overlapping intervals
    ``(begin_s, end_s, veh_per_h)`` summed (trips counted in bins, flows of an imported file),
    without a leading zero and without repeats of a rate."""
    intervals = list(intervals)
    times = sorted({a for a, _, _ in intervals} | {b for _, b, _ in intervals})
    prof: list[tuple[float, float]] = []
    for t in times:
        q = sum(r for a, b, r in intervals if a <= t < b)
        if not prof or prof[-1][1] != q:
            prof.append((t, q))
    if len(prof) > 1 and prof[0][1] == 0.0:
        prof = prof[1:]
    return prof


def _check_profile(label: str, profile) -> tuple[tuple[float, float], ...]:
    out = []
    last = -math.inf
    try:
        entries = list(profile)
    except TypeError:
        raise DemandError(f"flow {label}: profile must be a list of (start_s, veh_per_h) pairs") from None
    if not entries:
        raise DemandError(f"flow {label}: profile is empty")
    for i, entry in enumerate(entries):
        try:
            start, q = entry
            if _not_a_number(start) or _not_a_number(q):
                raise TypeError
            start, q = float(start), float(q)
        except (TypeError, ValueError):
            raise DemandError(f"flow {label}: profile[{i}] must be a (start_s, veh_per_h) pair of numbers, got {entry!r}") from None
        if not (math.isfinite(start) and math.isfinite(q)):
            raise DemandError(f"flow {label}: profile[{i}] must be finite, got {entry!r}")
        if q < 0:
            raise DemandError(f"flow {label}: profile[{i}] veh_per_h must be >= 0, got {q:g}")
        if start <= last:
            raise DemandError(f"flow {label}: profile start times must be strictly increasing, got {start:g} after {last:g}")
        last = start
        out.append((start, q))
    return tuple(out)


@dataclass
class Demand:
    """A set of OD flows.

    Examples
    --------
    >>> d = Demand()
    >>> d.add("A", "C", [(0, 4500), (2700, 2000)])
    """

    flows: list[ODFlow] = field(default_factory=list)

    def add(
        self,
        origin: str,
        destination: str,
        profile: Iterable[tuple[float, float]],
        *,
        route: Sequence[str] | None = None,
        routes: Sequence[tuple[Sequence[str], float]] | None = None,
        vehicle_class: str = "car",
        name: str = "",
    ) -> ODFlow:
        """Add an OD flow.

        Parameters
        ----------
        origin, destination : str
            Node ids.
        profile : iterable of (float, float)
            ``[(start_s, veh_per_h), ...]`` [s, veh/h], piecewise constant.
        route : sequence of str, optional
            One explicit route (link ids).
        routes : sequence of (sequence of str, float), optional
            Several routes with shares (normalised). Exclusive with ``route``.
        vehicle_class : str
            ``"car"``, ``"bus"`` or ``"truck"``.
        name : str
            Optional label.
        """
        label = name or f"{origin}->{destination}"
        if route is not None and routes is not None:
            raise DemandError(f"flow {label}: give route or routes, not both")
        if vehicle_class not in VEHICLE_CLASSES:
            raise DemandError(f"flow {label}: vehicle_class must be one of {VEHICLE_CLASSES}, got {vehicle_class!r}")
        if origin == destination and route is None and not routes:
            raise DemandError(f"flow {label}: origin and destination are the same node {origin!r}; "
                              "a round trip needs an explicit route")
        prof = _check_profile(label, profile)
        rts: list[tuple[tuple[str, ...], float]] = []
        if route is not None:
            routes = [(route, 1.0)]
        for i, entry in enumerate(routes or []):
            try:
                links, share = entry
                if _not_a_number(share):
                    raise TypeError
                share = float(share)
            except (TypeError, ValueError):
                raise DemandError(f"flow {label}: routes[{i}] must be a (links, share) pair, got {entry!r}") from None
            if isinstance(links, str):
                raise DemandError(f"flow {label}: routes[{i}] links must be a list of link ids, got a string")
            if not (math.isfinite(share) and share > 0):
                raise DemandError(f"flow {label}: routes[{i}] share must be > 0, got {share!r}")
            rts.append((tuple(links), share))
        if rts:
            total = sum(s for _, s in rts)
            rts = [(lk, s / total) for lk, s in rts]
        flow = ODFlow(origin, destination, prof, tuple(rts), vehicle_class, name)
        self.flows.append(flow)
        return flow

    def scaled(self, factor: float, *, start_s: float = -math.inf, end_s: float = math.inf) -> "Demand":
        """A copy with every rate multiplied by ``factor`` within ``[start_s, end_s)`` [s]."""
        if not (math.isfinite(factor) and factor >= 0):
            raise DemandError(f"demand scale factor must be finite and >= 0, got {factor!r}")
        out = Demand()
        for f in self.flows:
            breaks = sorted({s for s, _ in f.profile} | ({start_s} if math.isfinite(start_s) else set())
                            | ({end_s} if math.isfinite(end_s) else set()))
            prof = []
            for s in breaks:
                q = f.rate_at(s)
                if start_s <= s < end_s:
                    q *= factor
                if not prof or prof[-1][1] != q:
                    prof.append((s, q))
            out.flows.append(replace(f, profile=tuple(prof)))
        return out

    def copy(self) -> "Demand":
        """A copy whose flow list can be edited independently."""
        return Demand(list(self.flows))

    def total(self, until_s: float) -> float:
        """Vehicles demanded by all flows in ``[0, until_s)`` [veh]."""
        return sum(f.total(until_s) for f in self.flows)

    def resolve_routes(self, network: Network) -> list[list[tuple[tuple[str, ...], float]]]:
        """Routes with shares for every flow, computing free-flow shortest paths where none given.

        Raises :class:`DemandError` naming the flow when a node is missing, a destination is
        unreachable or an explicit route is not a valid path.
        """
        resolved = []
        finder = None
        for f in self.flows:
            label = f.label()
            for end in ("origin", "destination"):
                if getattr(f, end) not in network.nodes:
                    raise DemandError(f"flow {label}: {end} {getattr(f, end)!r} is not a node of the network")
            if f.routes:
                for links, _ in f.routes:
                    try:
                        network.validate_route(links, f.origin, f.destination)
                    except NetworkError as exc:
                        raise DemandError(f"flow {label}: {exc}") from None
                resolved.append(list(f.routes))
            else:
                finder = finder or PathFinder(network)
                path = finder.path(f.origin, f.destination)
                if path is None:
                    raise DemandError(
                        f"flow {label}: destination {f.destination!r} is unreachable from origin {f.origin!r}"
                    )
                resolved.append([(tuple(path), 1.0)])
        return resolved

    def to_list(self) -> list[dict]:
        """Plain-data form (used by TOML serialisation)."""
        out = []
        for f in self.flows:
            d = {"origin": f.origin, "destination": f.destination, "profile": [[s, q] for s, q in f.profile]}
            if f.routes:
                d["routes"] = [{"links": list(lk), "share": s} for lk, s in f.routes]
            if f.vehicle_class != "car":
                d["vehicle_class"] = f.vehicle_class
            if f.name:
                d["name"] = f.name
            out.append(d)
        return out

    @classmethod
    def from_list(cls, data: list[dict]) -> "Demand":
        """Inverse of :meth:`to_list`, validating every field."""
        demand = cls()
        known = {"origin", "destination", "profile", "routes", "vehicle_class", "name"}
        for i, d in enumerate(data):
            extra = set(d) - known
            if extra:
                raise DemandError(f"demand[{i}]: unknown field(s) {sorted(extra)}")
            for req in ("origin", "destination", "profile"):
                if req not in d:
                    raise DemandError(f"demand[{i}]: missing field {req!r}")
            routes = None
            if "routes" in d:
                try:
                    for j, r in enumerate(d["routes"]):
                        extra = set(r) - {"links", "share"}
                        if extra:
                            raise DemandError(f"demand[{i}].routes[{j}]: unknown field(s) {sorted(extra)}; "
                                              "known: ['links', 'share']")
                    routes = [(r["links"], r.get("share", 1.0)) for r in d["routes"]]
                except (TypeError, KeyError):
                    raise DemandError(f"demand[{i}]: routes must be tables with 'links' and 'share'") from None
            flow = demand.add(
                d["origin"], d["destination"], d["profile"], routes=routes,
                vehicle_class=d.get("vehicle_class", "car"), name=d.get("name", ""),
            )
            if routes:
                # keep the shares exactly as written so that to_toml/from_toml round-trips
                demand.flows[-1] = replace(flow, routes=tuple((tuple(r["links"]), float(r.get("share", 1.0))) for r in d["routes"]))
        return demand
