"""Shiliugang Road (石榴岗路) — road condition (narrow road, a kerbside bus stop).

**Seed (row 7).** "道路狭窄，车流量大，通行能力不足": a narrow road with heavy traffic and
insufficient capacity. Remedies: **bus bays** (buses dwell off the running lanes), cameras and
patrols; long term rebuild and widen the road.

**Layout.** Shiliugang Road eastbound, 2 lanes, about 3 km: feeder, approach, the block of a
first stop (a bus bay), a middle block, the block of the main stop (kerbside, the busiest, by a
metro exit), and an exit. Each berth stands at the start of its block (``stop_position_m``).
Buses of several routes serve both stops.

**Mechanism.** A bus standing at the kerbside stop takes one of the two lanes; its capacity is
``(2 - bus_vph (dwell + clearance) / 3600) x 1800``. The queue head stands at the end of the
block before it (``middle``) and spills back past the first stop onto the approach. The seed's
remedy, "优化港湾式公交车站建设" (improve the building of bay stops), is the ``BusBay`` measure on
the main stop; the first stop is a bay already (``first_stop_bay``).

**Why the first stop is a bay and the berths stand at their block's start (issue 4).** With both
stops kerbside (dwell 20 and 35 s) and 2,650 veh/h of demand, the first stop ran at 93% of its
capacity, the main one at 107%: two near-critical restrictions. Macro's deterministic time-share
of a lane always picks the main stop; micro draws Poisson buses and gamma dwells (cv 0.5), so a
stop's blocked time in a peak hour varies by about 15% (its capacity by 110-170 veh/h), and the
first stop, upstream, queued longer (micro's head on ``approach`` in 7 of seeds 0-7, no queue of
50 m in the 8th, never on ``middle``). The card's rule, demand about 1.1 x the capacity the main
stop leaves, could not hold with a first stop at 20 s (it would run at 95% of its own). Micro's
stop costs somewhat more than macro's dwell + 10 s once the buses that actually pass are counted
(dwell + 10-22 s per bus, mean 16 s: 2 lanes, one stop, 3,000 veh/h of demand, seeds 0-2; the
earlier reading of 5 s divided by the demanded 50 bus/h while fewer passed the stop in the
window): the stop models do not explain the first stop's queues, the near-critical design does.
A berth 200 m into a 300 m link put micro's restriction mid-link while macro spreads it over the
whole link (the queue then reads on the link before): the queue behind a dwelling bus stood in
the stop's link, unread (a run of queued vehicles starts at the link's end, and the 70 m past
the berth are free), and a spill-back through the first stop's link read as broken. A berth at
its link's start puts the restriction where macro's starts, on both engines.

**Engines.** Macro: the kerbside stop costs one lane for the share of time buses stand at it
(HCM bus-blockage idea); a bay costs nothing. Micro: buses dwell at the stop with
gamma-distributed dwell times and block their lane; a bay takes them off it.

**Seeds (micro, issue 4).** With this layout micro's most frequent peak head is ``middle`` on
every seed 0-7 (20, 19, 19, 26, 27, 29, 27, 18 of 45 records; the other records hold no queue of
50 m or a short one elsewhere), discharge 89-106% of macro's 2,475 veh/h. With both stops
kerbside, the berths 200 m into their links and 2,600 cars/h: ``approach`` on 7 of the 8 seeds.
"""

from __future__ import annotations

from ..control import BusStop
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, kerbside_capacity_vph, road_chain

__all__ = ["build"]


def build(peak: PeakShape, *, lanes: int = 2, car_peak_vph: float = 2670.0, bus_vph: float = 50.0,
          first_dwell_s: float = 20.0, main_dwell_s: float = 35.0, block_length_m: float = 400.0,
          feeder_length_m: float = 1200.0, stop_position_m: float = 0.0, first_stop_bay: bool = True):
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
    stop_position_m : float
        Distance [m] of each berth (30 m) from the start of its 300 m link.
    first_stop_bay : bool
        Whether the first stop is a bus bay (False: kerbside, as the main stop).
    """
    b = block_length_m
    s = Site()
    links = road_chain(s, [("feeder", feeder_length_m), ("approach", b), ("first-stop", 300.0), ("middle", b),
                           ("main-stop", 300.0), ("exit", b)], lanes=lanes, name="Shiliugang Road")
    d = Demand()
    d.add("feeder.0", "exit.end", peak.profile(car_peak_vph), name="eastbound cars")
    d.add("feeder.0", "exit.end", [(0.0, bus_vph)], vehicle_class="bus", name="buses")
    controls = [BusStop("first-stop", stop_position_m, 30.0, bay=bool(first_stop_bay), dwell_mean_s=first_dwell_s, name="first stop"),
                BusStop("main-stop", stop_position_m, 30.0, bay=False, dwell_mean_s=main_dwell_s, name="main stop")]
    meta = card_meta(
        row=7, original_name="石榴岗路", english_name="Shiliugang Road",
        cause_class="road condition", seed_category="道路条件",
        symptom="a narrow 2-lane road whose kerbside bus stop takes a lane while buses dwell",
        bottleneck_link="middle", queue_links=["middle", "first-stop", "approach"], discharge_link="main-stop",
        capacity_vph=kerbside_capacity_vph(s, "main-stop", bus_vph, main_dwell_s),
        capacity_basis="(lanes - bus_vph x (main_dwell_s + 10 s clearance) / 3600) x 1800 veh/h",
        remedies=["BusBay", "Enforcement", "Widening"], corridor=links,
        assumptions=[
            ("lanes", f"{lanes} eastbound", "'道路狭窄': a narrow dual 2-lane road"),
            ("buses", f"{bus_vph:g} bus/h, dwell {first_dwell_s:g} s and {main_dwell_s:g} s, clearance 10 s",
             "several routes at 5-10 min headways; longer dwell at the stop by the metro exit"),
            ("stops", f"first stop {'a bay' if first_stop_bay else 'kerbside'}, main stop kerbside; "
             f"30 m berths {stop_position_m:g} m into their 300 m links",
             "'优化港湾式公交车站建设': bays exist and the remedy adds them where they lack; one kerbside stop is "
             "the restriction (two near-critical ones bind at random on a stochastic engine); a berth at its "
             "link's start puts the restriction where macro's lane loss starts"),
            ("peak demand", f"{car_peak_vph:g} cars/h + {bus_vph:g} buses/h",
             "about 1.1 x the capacity left by the main stop"),
        ],
        approximations=["kerbside stop: a time-share lane loss over its whole link in macro; explicit dwelling buses "
                        "in micro (Poisson arrivals, gamma dwells), whose berth starts the link"],
    )
    return finish("shiliugang-road", "A narrow road whose kerbside bus stop takes a lane while buses dwell.",
                  s, d, peak, meta, controls)
