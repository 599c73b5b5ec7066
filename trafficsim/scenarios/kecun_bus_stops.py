"""Xingang Middle Road at Kecun station / Liying Plaza (新港中路客村站（丽影广场）) — stops.

**Seed (row 12).** "站点密集、人流量大车辆停靠时间长、车次密集，造成拥堵": dense stops, heavy
passenger flows, long dwell times and frequent buses cause congestion. Remedies: **bus bays**;
cameras against illegal stopping.

**Layout.** Xingang Middle Road westbound, 3 lanes: feeder, approach, the Kecun station stop
(metro interchange, long dwell), a short block, the Liying Plaza stop, and an exit.

**Mechanism.** Buses arrive every ``3600 / bus_vph`` s and stand ``dwell + clearance`` s: at
Kecun the kerb lane is occupied practically all the time, so the road has 2 lanes there
(``(3 - min(1, bus_vph (dwell + 10) / 3600)) x 1800``). The queue head stands at the end of
``approach`` and spills back over ``feeder``.

**Engines.** Macro: a kerbside stop is a time-share lane loss, capped at one lane (a stop
never takes more than the kerb lane). Micro: buses queue for the berth and may spill into the
next lane, which the macro engine does not represent.
"""

from __future__ import annotations

from ..control import BusStop
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, kerbside_capacity_vph, road_chain

__all__ = ["build"]


def build(peak: PeakShape, *, lanes: int = 3, car_peak_vph: float = 3900.0, bus_vph: float = 100.0,
          kecun_dwell_s: float = 35.0, liying_dwell_s: float = 20.0, block_length_m: float = 300.0,
          approach_length_m: float = 600.0, feeder_length_m: float = 1500.0):
    """Build the Kecun bus stops scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    lanes : int
        Westbound lanes.
    car_peak_vph : float
        Peak car demand [veh/h].
    bus_vph : float
        Buses serving both stops [bus/h] (timetable, not scaled).
    kecun_dwell_s, liying_dwell_s : float
        Mean dwell at the two stops [s].
    block_length_m, approach_length_m, feeder_length_m : float
        Lengths [m].
    """
    s = Site()
    links = road_chain(s, [("feeder", feeder_length_m), ("approach", approach_length_m), ("kecun-stop", 200.0),
                           ("block", block_length_m), ("liying-stop", 200.0), ("exit", 500.0)],
                       lanes=lanes, name="Xingang Middle Road", heading=(-1.0, 0.0))
    d = Demand()
    d.add("feeder.0", "exit.end", peak.profile(car_peak_vph), name="westbound cars")
    d.add("feeder.0", "exit.end", [(0.0, bus_vph)], vehicle_class="bus", name="buses")
    controls = [BusStop("kecun-stop", 120.0, 60.0, bay=False, dwell_mean_s=kecun_dwell_s, name="Kecun station"),
                BusStop("liying-stop", 120.0, 60.0, bay=False, dwell_mean_s=liying_dwell_s, name="Liying Plaza")]
    meta = card_meta(
        row=12, original_name="新港中路客村站（丽影广场）", english_name="Xingang Middle Road at Kecun station (Liying Plaza)",
        cause_class="stops", seed_category="站场布局",
        symptom="frequent buses with long dwells occupy the kerb lane at dense stops",
        bottleneck_link="approach", queue_links=["approach", "feeder"], discharge_link="kecun-stop",
        capacity_vph=kerbside_capacity_vph(s, "kecun-stop", bus_vph, kecun_dwell_s),
        capacity_basis="(lanes - min(1, bus_vph x (kecun_dwell_s + 10 s) / 3600)) x 1800 veh/h",
        remedies=["BusBay", "Enforcement"], corridor=links,
        assumptions=[
            ("buses", f"{bus_vph:g} bus/h, dwell {kecun_dwell_s:g} s (Kecun) and {liying_dwell_s:g} s (Liying Plaza)",
             "'车次密集': a dozen routes; long dwell at the metro interchange"),
            ("lanes", f"{lanes} westbound", "Xingang Middle Road is a dual 3-lane arterial"),
            ("peak demand", f"{car_peak_vph:g} cars/h", "about 1.1 x the capacity the Kecun stop leaves"),
        ],
        approximations=["kerbside stop: a time-share lane loss (at most one lane) in macro"],
    )
    return finish("kecun-bus-stops", "Dense stops with frequent buses and long dwells block Xingang Middle Road.",
                  s, d, peak, meta, controls)
