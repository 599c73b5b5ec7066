"""Shiliugang Road (石榴岗路) — road condition (narrow road, kerbside bus stops).

**Seed (row 7).** "道路狭窄，车流量大，通行能力不足": a narrow road with heavy traffic and
insufficient capacity. Remedies: **bus bays** (buses dwell off the running lanes), cameras and
patrols; long term rebuild and widen the road.

**Layout.** Shiliugang Road eastbound, 2 lanes, about 3 km: feeder, approach, a first
kerbside stop, a middle block, the main kerbside stop (the busiest, by a metro exit), and an
exit. Buses of several routes serve both stops.

**Mechanism.** A bus standing at a kerbside stop takes one of the two lanes. The main stop's
longer dwell makes it the tighter restriction: its capacity is
``(2 - bus_vph (dwell + clearance) / 3600) x 1800``; the queue head stands at the end of the
block before it (``middle``) and spills back past the first stop onto the approach.

**Engines.** Macro: each kerbside stop costs one lane for the share of time buses stand at it
(HCM bus-blockage idea); a bay (the BusBay remedy) costs nothing. Micro: buses dwell at the stop
with gamma-distributed dwell times and block their lane. There the queue behind a dwelling bus
stands inside the stop's link (the stops are 200 m into 300 m links). With the lane-change
relaxation (the micro default) a micro stop costs a little less than the macro's dwell + 10 s
(2,504 veh/h pass the main stop against 2,475), so demand exceeds it by only 5%; the first
stop, at about 93% of its capacity and upstream, sees the random bus and dwell (cv 0.5) peaks
first and meters the flow the main stop sees: micro's queues are short-lived at both stops and
longer at the first (peak means of the back of queue: ``approach`` 214 m, ``middle`` 135 m), so
the head stands on ``approach`` more often than on ``middle`` (18 and 7 of 45 peak records; a
known deviation of the micro tests).
"""

from __future__ import annotations

from ..control import BusStop
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, kerbside_capacity_vph, road_chain

__all__ = ["build"]


def build(peak: PeakShape, *, lanes: int = 2, car_peak_vph: float = 2600.0, bus_vph: float = 50.0,
          first_dwell_s: float = 20.0, main_dwell_s: float = 35.0, block_length_m: float = 400.0,
          feeder_length_m: float = 1200.0):
    """Build the Shiliugang Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    lanes : int
        Eastbound lanes (narrow: 2).
    car_peak_vph : float
        Peak car demand [veh/h].
    bus_vph : float
        Buses serving both stops [bus/h] (timetable, not scaled).
    first_dwell_s, main_dwell_s : float
        Mean dwell at the first and the main stop [s].
    block_length_m, feeder_length_m : float
        Lengths [m] of the blocks along the road and of the feeder.
    """
    b = block_length_m
    s = Site()
    links = road_chain(s, [("feeder", feeder_length_m), ("approach", b), ("first-stop", 300.0), ("middle", b),
                           ("main-stop", 300.0), ("exit", b)], lanes=lanes, name="Shiliugang Road")
    d = Demand()
    d.add("feeder.0", "exit.end", peak.profile(car_peak_vph), name="eastbound cars")
    d.add("feeder.0", "exit.end", [(0.0, bus_vph)], vehicle_class="bus", name="buses")
    controls = [BusStop("first-stop", 200.0, 30.0, bay=False, dwell_mean_s=first_dwell_s, name="first stop"),
                BusStop("main-stop", 200.0, 30.0, bay=False, dwell_mean_s=main_dwell_s, name="main stop")]
    meta = card_meta(
        row=7, original_name="石榴岗路", english_name="Shiliugang Road",
        cause_class="road condition", seed_category="道路条件",
        symptom="a narrow 2-lane road whose kerbside bus stops take a lane while buses dwell",
        bottleneck_link="middle", queue_links=["middle", "first-stop", "approach"], discharge_link="main-stop",
        capacity_vph=kerbside_capacity_vph(s, "main-stop", bus_vph, main_dwell_s),
        capacity_basis="(lanes - bus_vph x (main_dwell_s + 10 s clearance) / 3600) x 1800 veh/h",
        remedies=["BusBay", "Enforcement", "Widening"], corridor=links,
        assumptions=[
            ("lanes", f"{lanes} eastbound", "'道路狭窄': a narrow dual 2-lane road"),
            ("buses", f"{bus_vph:g} bus/h, dwell {first_dwell_s:g} s and {main_dwell_s:g} s, clearance 10 s",
             "several routes at 5-10 min headways; longer dwell at the stop by the metro exit"),
            ("peak demand", f"{car_peak_vph:g} cars/h", "about 1.1 x the capacity left by the main stop"),
        ],
        approximations=["kerbside stop: a time-share lane loss in macro; explicit dwelling buses in micro"],
    )
    return finish("shiliugang-road", "A narrow road whose kerbside bus stops take a lane while buses dwell.",
                  s, d, peak, meta, controls)
