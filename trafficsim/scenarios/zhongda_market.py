"""Zhongda fabric market, Ruikang Road (中大布匹城（瑞康路）) — order (wholesale market).

**Seed (row 11).** "周边的批发市场密集，车流、人流量大，停车位不足、货物占道摆放、车辆排队、违停":
dense wholesale markets; heavy traffic and pedestrians; too few parking spaces; goods stacked on
the road; vehicles queueing and parking illegally. Remedies: managed (park-style) delivery,
penalties for occupying the road, enforcement.

**Layout.** Ruikang Road southbound, 2 lanes: feeder, approach, the market frontage (400 m),
and an exit.

**Mechanism.** Illegally parked and loading vehicles and goods occupy ``blocked_lanes`` of the
frontage while the market trades (the whole simulated period by default): its capacity is
``(2 - blocked_lanes) x 1800``. The queue head stands at the end of ``approach``, where the
frontage begins, and spills back over ``feeder``.

**Engines.** Macro: a :class:`~trafficsim.control.Blocking` removes the lane from the whole
frontage link. Micro: the blocked segment is ``blocked_length_m`` long and drivers merge around
it.
"""

from __future__ import annotations

from ..control import Blocking
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, kerbside_capacity_vph, road_chain

__all__ = ["build"]


def build(peak: PeakShape, *, lanes: int = 2, blocked_lanes: int = 1, blocked_length_m: float = 150.0,
          car_peak_vph: float = 1900.0, frontage_length_m: float = 400.0, approach_length_m: float = 400.0,
          feeder_length_m: float = 1000.0):
    """Build the Zhongda market scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    lanes, blocked_lanes : int
        Lanes of Ruikang Road and lanes occupied by parking, loading and goods.
    blocked_length_m : float
        Length of the occupied stretch [m] (micro engine).
    car_peak_vph : float
        Peak demand [veh/h] (cars and delivery vans).
    frontage_length_m, approach_length_m, feeder_length_m : float
        Lengths [m].
    """
    s = Site()
    links = road_chain(s, [("feeder", feeder_length_m), ("approach", approach_length_m), ("frontage", frontage_length_m),
                           ("exit", 400.0)], lanes=lanes, name="Ruikang Road", heading=(0.0, -1.0))
    d = Demand()
    d.add("feeder.0", "exit.end", peak.profile(car_peak_vph), name="southbound")
    controls = []
    if blocked_lanes > 0:
        controls.append(Blocking("frontage", 0.0, peak.duration_s, blocked_lanes,
                                 position_m=(frontage_length_m - blocked_length_m) / 2, length_m=blocked_length_m))
    meta = card_meta(
        row=11, original_name="中大布匹城（瑞康路）", english_name="Zhongda fabric market, Ruikang Road",
        cause_class="order", seed_category="批发市场",
        symptom="illegal parking, loading and goods occupy a lane along the market frontage",
        bottleneck_link="approach", queue_links=["approach", "feeder"], discharge_link="frontage",
        capacity_vph=kerbside_capacity_vph(s, "frontage", blocked_lanes=blocked_lanes),
        capacity_basis="(lanes - blocked_lanes) x 1800 veh/h",
        remedies=["Enforcement"], corridor=links,
        assumptions=[
            ("lane occupation", f"{blocked_lanes} of {lanes} lanes over {blocked_length_m:g} m, all day",
             "'货物占道摆放、违停': parked vans and goods along the frontage while the market trades"),
            ("peak demand", f"{car_peak_vph:g} veh/h", "about 1.05 x the one remaining lane's capacity"),
        ],
        approximations=["lane occupation: a Blocking control (whole link in macro, a segment in micro)"],
    )
    return finish("zhongda-market", "Illegal parking and goods occupy a lane of Ruikang Road along the fabric market.",
                  s, d, peak, meta, controls)
