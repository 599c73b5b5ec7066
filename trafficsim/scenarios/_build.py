"""Building blocks shared by the black-spot scenarios: road classes, the peak shape, the site
builder, signal plans and the scenario card's facts.

Every scenario module builds its local network with :class:`Site` (nodes with coordinates in
metres, link lengths from the coordinates unless given), its demand with :class:`PeakShape`
(a whole peak period with shoulders, so that the queue builds and dissolves) and its card with
:func:`card_meta`. The numbers the seed does not give live here once, with their justification,
and every scenario's ``meta["assumptions"]`` repeats the rows it relies on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..control import FixedTimeSignal, Phase
from ..demand import Demand
from ..network import Network
from ..scenario import Scenario

__all__ = [
    "CAUSE_CLASSES",
    "REMEDIES",
    "ROAD_CLASSES",
    "RoadClass",
    "PeakShape",
    "Site",
    "two_phase_signal",
    "signal_corridor",
    "road_chain",
    "kerbside_capacity_vph",
    "Corridor",
    "card_meta",
    "finish",
    "SEED_CITATION",
]

#: Cause classes of the Haizhu table (000 Att. 1 item 2 lists them for the census of causes).
CAUSE_CLASSES = ("road condition", "signal", "order", "stops", "network defect")

#: Remedy names the measures issue turns into classes.
REMEDIES = (
    "TidalLane", "RampMetering", "MergeMetering", "SignalRetiming", "GreenWave", "DemandRestriction",
    "BusBay", "StopRelocation", "Widening", "NewLink", "Enforcement", "VariableLane", "OneWayLoop",
    "OffRampKeepClear", "PeakControl",
)

SEED_CITATION = (
    "Haizhu District Government Office, 海府办〔2016〕34号 (7 Sep 2016), Attachment 2 "
    "海珠区交通拥堵黑点路段及治理意见汇总表, row {row}"
)


@dataclass(frozen=True)
class RoadClass:
    """A triangular fundamental diagram for a kind of road, with why these numbers."""

    free_speed_kmh: float
    capacity_vph_per_lane: float
    jam_density_vpkm_per_lane: float
    justification: str


#: Road classes used by the scenarios. All backward wave speeds lie in 9-18 km/h.
ROAD_CLASSES = {
    "expressway": RoadClass(
        80.0, 2000.0, 140.0,
        "urban expressway (Inner Ring Road, Huanan/Xinguang): 80 km/h limit; 2000 veh/h/lane is the "
        "Chinese urban-expressway design capacity (CJJ 37-2012, 80 km/h)",
    ),
    "bridge": RoadClass(
        60.0, 1900.0, 140.0,
        "river bridge approach and deck, 60 km/h: CJJ 37-2012 gives 1800-2000 veh/h/lane for 60 km/h "
        "uninterrupted flow",
    ),
    "arterial": RoadClass(
        50.0, 1800.0, 150.0,
        "urban arterial, 50 km/h: 1800 veh/h/lane saturation flow (HCM base 1900 minus lane-width and "
        "heavy-vehicle factors); 150 veh/km/lane jam (6.7 m spacing)",
    ),
    "ramp": RoadClass(
        40.0, 1600.0, 150.0,
        "single-lane ramp or slip road, 40 km/h: 1600 veh/h (CJJ 37-2012 ramp capacity 1500-1800)",
    ),
    "toll": RoadClass(
        30.0, 450.0, 60.0,
        "toll booth lane: 450 veh/h per booth (manual/mixed collection, 7-9 s per vehicle); the jam "
        "density of 60 veh/km/lane is a surrogate that keeps the booth link's wave speed physical",
    ),
    "street": RoadClass(
        25.0, 800.0, 125.0,
        "narrow two-way inner street, 25 km/h: 800 veh/h/lane, parked cars and opposing traffic "
        "make drivers slow and give way (well below an arterial's 1800)",
    ),
}


@dataclass(frozen=True)
class PeakShape:
    """The time profile every scenario's demand follows: shoulder, ramp, peak, ramp, shoulder.

    Parameters
    ----------
    demand_scale : float
        Multiplies every car and truck rate (buses keep their timetable).
    peak_start_s : float
        Start of the peak plateau [s]; the ramp up takes the ``ramp_s`` before it.
    peak_duration_s : float
        Length of the peak plateau [s].
    ramp_s : float
        Length of each ramp [s]; the ramp rate is halfway between shoulder and peak.
    shoulder_ratio : float
        Shoulder rate as a share of the peak rate (before and after the peak).
    clearance_s : float
        Time after the ramp down [s] (shoulder demand) for the queue to dissolve.
    """

    demand_scale: float = 1.0
    peak_start_s: float = 2700.0
    peak_duration_s: float = 3600.0
    ramp_s: float = 900.0
    shoulder_ratio: float = 0.5
    clearance_s: float = 2700.0

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"peak shape: {f.name} must be a finite number >= 0, got {v!r}")
        if self.peak_start_s < self.ramp_s:
            raise ValueError(
                f"peak shape: peak_start_s={self.peak_start_s:g} must be >= ramp_s={self.ramp_s:g} "
                "(the ramp up happens before the peak)"
            )
        if self.peak_duration_s <= 0:
            raise ValueError("peak shape: peak_duration_s must be > 0")
        if self.shoulder_ratio > 1:
            raise ValueError(f"peak shape: shoulder_ratio must be <= 1, got {self.shoulder_ratio!r}")

    @property
    def peak_end_s(self) -> float:
        """End of the peak plateau [s]."""
        return self.peak_start_s + self.peak_duration_s

    @property
    def duration_s(self) -> float:
        """Simulated horizon [s]: the whole profile plus the clearance."""
        return self.peak_end_s + self.ramp_s + self.clearance_s

    def profile(self, peak_vph: float) -> list[tuple[float, float]]:
        """Piecewise-constant ``[(start_s, veh_per_h), ...]`` for a flow of ``peak_vph`` at the peak."""
        peak = peak_vph * self.demand_scale
        shoulder = peak * self.shoulder_ratio
        ramp = 0.5 * (peak + shoulder)
        points = [(0.0, shoulder)]
        if self.ramp_s > 0:
            points.append((self.peak_start_s - self.ramp_s, ramp))
        points += [(self.peak_start_s, peak), (self.peak_end_s, ramp if self.ramp_s > 0 else shoulder)]
        if self.ramp_s > 0:
            points.append((self.peak_end_s + self.ramp_s, shoulder))
        out: list[tuple[float, float]] = []
        for t, q in points:
            if out and t <= out[-1][0]:
                out[-1] = (out[-1][0], q)
            else:
                out.append((t, q))
        return out

    def assumptions(self) -> list[tuple[str, str, str]]:
        """The card's rows for the peak shape."""
        return [
            ("peak period", f"{self.duration_s / 3600:.2f} h: shoulder, {self.ramp_s / 60:.0f} min ramp, "
             f"{self.peak_duration_s / 60:.0f} min peak from t={self.peak_start_s / 60:.0f} min, ramp, shoulder",
             "typical Guangzhou AM peak (07:30-09:00 plateau) with shoulders so the queue builds and dissolves"),
            ("shoulder demand", f"{self.shoulder_ratio:.0%} of the peak rate",
             "off-peak hourly volumes on Guangzhou arterials are about half the peak hour's"),
            ("demand scale", f"{self.demand_scale:g}", "multiplies cars and trucks; buses keep their timetable"),
        ]


class Site:
    """A local network under construction: nodes with coordinates, links from road classes.

    Link lengths default to the distance between the end nodes, so the layout figure and the
    simulated lengths agree; give ``length_m`` where a road curves.
    """

    def __init__(self):
        self.net = Network()
        self.classes: set[str] = set()

    def node(self, id: str, x: float, y: float) -> str:
        """Add a node at ``(x, y)`` [m]; returns its id."""
        self.net.add_node(id, float(x), float(y))
        return id

    def nodes(self, **coords: tuple[float, float]) -> None:
        """Add several nodes: ``site.nodes(A=(0, 0), B=(500, 0))`` [m]."""
        for nid, (x, y) in coords.items():
            self.node(nid, x, y)

    def road(
        self,
        id: str,
        a: str,
        b: str,
        *,
        lanes: int,
        kind: str = "arterial",
        name: str = "",
        length_m: float | None = None,
        capacity_factor: float = 1.0,
        free_speed_kmh: float | None = None,
        priority: float | None = None,
    ) -> str:
        """Add link ``id`` from node ``a`` to ``b`` of road class ``kind``; returns its id.

        ``capacity_factor`` scales the class's lane capacity (weaving, grade, friction).
        """
        if kind not in ROAD_CLASSES:
            raise ValueError(f"link {id!r}: unknown road class {kind!r}; known: {sorted(ROAD_CLASSES)}")
        rc = ROAD_CLASSES[kind]
        self.classes.add(kind)
        if length_m is None:
            na, nb = self.net.node(a), self.net.node(b)
            length_m = round(math.hypot(nb.x - na.x, nb.y - na.y), 1)
        self.net.add_link(
            id, a, b, length_m=length_m, lanes=lanes,
            free_speed_kmh=rc.free_speed_kmh if free_speed_kmh is None else free_speed_kmh,
            capacity_vph_per_lane=rc.capacity_vph_per_lane * capacity_factor,
            jam_density_vpkm_per_lane=rc.jam_density_vpkm_per_lane, priority=priority, name=name,
        )
        return id

    def capacity_vph(self, link_id: str) -> float:
        """Lanes x lane capacity of a link at time 0 [veh/h]."""
        lk = self.net.link(link_id)
        return lk.lanes * lk.capacity_vph_per_lane

    def assumptions(self) -> list[tuple[str, str, str]]:
        """The card's rows for the road classes this site uses."""
        rows = []
        for kind in sorted(self.classes):
            rc = ROAD_CLASSES[kind]
            rows.append((f"{kind} fundamental diagram",
                         f"{rc.free_speed_kmh:g} km/h, {rc.capacity_vph_per_lane:g} veh/h/lane, "
                         f"jam {rc.jam_density_vpkm_per_lane:g} veh/km/lane", rc.justification))
        return rows


def two_phase_signal(
    node: str,
    main: list[tuple[str, str]],
    cross: list[tuple[str, str]],
    *,
    cycle_s: float,
    main_green_share: float,
    amber_s: float = 3.0,
    all_red_s: float = 2.0,
    offset_s: float = 0.0,
) -> FixedTimeSignal:
    """A two-phase fixed-time plan: ``main`` movements, then ``cross`` movements.

    ``main_green_share`` is the main phase's share of the effective green (cycle minus the two
    phases' amber and all-red).
    """
    lost = 2 * (amber_s + all_red_s)
    green = cycle_s - lost
    if green <= 0 or not 0 < main_green_share < 1:
        raise ValueError(f"signal at {node!r}: cycle_s={cycle_s:g} leaves no green, or share not in (0, 1)")
    g_main = round(green * main_green_share, 1)
    return FixedTimeSignal(
        node,
        (Phase(g_main, tuple(main), amber_s, all_red_s), Phase(round(green - g_main, 1), tuple(cross), amber_s, all_red_s)),
        offset_s,
    )


def card_meta(
    *,
    row: int,
    original_name: str,
    english_name: str,
    cause_class: str,
    seed_category: str,
    symptom: str,
    bottleneck_link: str,
    queue_links: list[str],
    discharge_link: str,
    capacity_vph: float,
    capacity_basis: str,
    remedies: list[str],
    corridor: list[str],
    assumptions: list[tuple[str, str, str]],
    approximations: list[str] = (),
    **extra,
) -> dict:
    """The scenario card's facts as ``Scenario.meta``.

    ``discharge_link`` is the link whose inflow is the flow through the bottleneck section and
    ``capacity_vph`` the capacity that flow should reach while the queue stands, computed by the
    scenario from its own parameters (``capacity_basis`` says how).
    """
    if cause_class not in CAUSE_CLASSES:
        raise ValueError(f"cause_class must be one of {CAUSE_CLASSES}, got {cause_class!r}")
    unknown = [r for r in remedies if r not in REMEDIES]
    if unknown:
        raise ValueError(f"unknown remedies {unknown}; known: {REMEDIES}")
    return {
        "original_name": original_name,
        "english_name": english_name,
        "seed": SEED_CITATION.format(row=row),
        "seed_row": row,
        "seed_category": seed_category,
        "cause_class": cause_class,
        "symptom": symptom,
        "bottleneck_link": bottleneck_link,
        "queue_links": list(queue_links),
        "discharge_link": discharge_link,
        "capacity_vph": float(capacity_vph),
        "capacity_basis": capacity_basis,
        "remedies": list(remedies),
        "corridor": list(corridor),
        "assumptions": [tuple(r) for r in assumptions],
        "approximations": list(approximations),
        **extra,
    }


def finish(name: str, description: str, site: Site, demand: Demand, peak: PeakShape, meta: dict,
           controls: list = ()) -> Scenario:
    """Assemble and validate the scenario (``measures`` empty until the measures issue fills it)."""
    for key in ("bottleneck_link", "discharge_link"):
        site.net.link(meta[key])
    for lid in list(meta["queue_links"]) + list(meta["corridor"]):
        site.net.link(lid)
    meta = dict(meta)
    meta["assumptions"] = site.assumptions() + peak.assumptions() + list(meta["assumptions"])
    sc = Scenario(site.net, demand, peak.duration_s, list(controls), name, description, {}, meta)
    return sc.validate()


@dataclass
class Corridor:
    """Link ids of a signalised corridor built by :func:`signal_corridor`."""

    main: list[str]          # feeder, approach to each junction, exit (upstream order)
    cross_in: dict[str, str]  # junction -> cross-street approach
    cross_out: dict[str, str]  # junction -> cross-street exit

    def approach(self, junction_index: int) -> str:
        """The main-road link that ends at junction ``junction_index`` (0-based)."""
        return self.main[junction_index + 1]


def signal_corridor(
    site: Site,
    *,
    key: str,
    name: str,
    junctions: list[tuple[str, str]],
    spacing_m: list[float],
    lanes: int,
    cross_lanes: int,
    feeder_length_m: float,
    exit_length_m: float = 400.0,
    cross_length_m: float = 300.0,
    origin: tuple[float, float] = (0.0, 0.0),
    heading: tuple[float, float] = (1.0, 0.0),
    kind: str = "arterial",
) -> Corridor:
    """A main road through a row of junctions, each crossed by a two-way-less cross street.

    The main road runs from ``origin`` along the unit vector ``heading``: a feeder of
    ``feeder_length_m``, then one approach per junction (``spacing_m[i]`` long, the first
    measured from the feeder's end), then an exit. ``junctions`` holds ``(node id, cross-street
    name)``; each cross street runs through its junction at right angles (left to right of the
    main direction) with an approach and an exit of ``cross_length_m``. Signals are left to the
    caller (:func:`two_phase_signal`).
    """
    if len(spacing_m) != len(junctions):
        raise ValueError(f"corridor {key!r}: give one spacing per junction")
    hx, hy = heading
    lx, ly = -hy, hx  # left of the heading
    x0, y0 = origin

    def at(dist: float, side: float = 0.0) -> tuple[float, float]:
        return (x0 + hx * dist + lx * side, y0 + hy * dist + ly * side)

    dist = 0.0
    site.node(f"{key}-start", *at(dist))
    dist += feeder_length_m
    site.node(f"{key}-feed", *at(dist))
    main = [site.road(f"{key}-feeder", f"{key}-start", f"{key}-feed", lanes=lanes, kind=kind, name=name)]
    prev = f"{key}-feed"
    cross_in, cross_out = {}, {}
    for (jid, cross_name), gap in zip(junctions, spacing_m):
        dist += gap
        site.node(jid, *at(dist))
        main.append(site.road(f"{key}-to-{jid}", prev, jid, lanes=lanes, kind=kind, name=name))
        site.node(f"{jid}-left", *at(dist, cross_length_m))
        site.node(f"{jid}-right", *at(dist, -cross_length_m))
        cross_in[jid] = site.road(f"{jid}-cross-in", f"{jid}-left", jid, lanes=cross_lanes, name=cross_name)
        cross_out[jid] = site.road(f"{jid}-cross-out", jid, f"{jid}-right", lanes=cross_lanes, name=cross_name)
        prev = jid
    dist += exit_length_m
    site.node(f"{key}-end", *at(dist))
    main.append(site.road(f"{key}-exit", prev, f"{key}-end", lanes=lanes, kind=kind, name=name))
    return Corridor(main, cross_in, cross_out)


def road_chain(
    site: Site,
    segments: list[tuple[str, float]],
    *,
    lanes: int,
    name: str,
    kind: str = "arterial",
    origin: tuple[float, float] = (0.0, 0.0),
    heading: tuple[float, float] = (1.0, 0.0),
) -> list[str]:
    """A straight road of consecutive links ``[(link id, length_m), ...]`` from ``origin`` along
    ``heading``; nodes are named ``<first id>.0``, then after each link ``<link id>.end``.
    Returns the link ids in order."""
    hx, hy = heading
    x, y = origin
    prev = site.node(f"{segments[0][0]}.0", x, y)
    out = []
    for lid, length in segments:
        x, y = x + hx * length, y + hy * length
        nxt = site.node(f"{lid}.end", x, y)
        out.append(site.road(lid, prev, nxt, lanes=lanes, kind=kind, name=name))
        prev = nxt
    return out


def kerbside_capacity_vph(site: Site, link_id: str, bus_vph: float = 0.0, dwell_s: float = 0.0,
                          clearance_s: float = 10.0, blocked_lanes: int = 0) -> float:
    """Capacity [veh/h] of a link with a kerbside bus stop and/or blocked lanes, as the macro engine
    models them: ``(lanes - blocked - min(1, bus_vph (dwell + clearance) / 3600)) x lane capacity``."""
    lk = site.net.link(link_id)
    bus_lanes = min(1.0, bus_vph * (dwell_s + clearance_s) / 3600.0) if bus_vph > 0 else 0.0
    return max(0.0, lk.lanes - blocked_lanes - bus_lanes) * lk.capacity_vph_per_lane
