"""Guangzhou Avenue South at Tianxiong Road / Shinan Road (广州大道南天雄路口/市南路) — road condition / stops.

**Seed (row 5).** Northbound traffic is held up by vehicles making **U-turns** at the junction;
vehicles turning out of the side road cut across to the leftmost lane to U-turn; the Shangchong
**bus stop** on Guangzhou Avenue South is badly placed and adds to the blockage. Remedies:
**variable (reversible-use) lanes**, peak manual control, cameras (enforcement); long term the
Guangzhou Avenue expressway upgrade, odd-even plates.

**Layout.** Guangzhou Avenue South northbound, 3 lanes: feeder, approach, then the 150 m
section before the U-turn opening at ``U`` with a kerbside bus stop; U-turners leave at ``U``
(1 lane) to the southbound carriageway, the rest continue north.

**Mechanism.** Each U-turner waits in the leftmost lane for a gap in the opposing flow, and
vehicles crossing to reach it disturb the other lanes: ``uturn_peak_vph x uturn_block_s / 3600``
lanes' worth of capacity is lost in the section; the kerbside stop takes the kerb lane for
``bus_vph (dwell + clearance) / 3600`` of the time. The section's capacity
``(3 - bus share) x 1800 x (1 - U-turn lanes lost / 3)`` is below the peak demand; the queue
head stands at the end of ``approach`` and spills back over ``feeder``.

**Engines.** Neither engine has gap acceptance for U-turns: both represent the U-turn friction
as a lower lane capacity of the ``uturn-section`` link (computed from the U-turn demand at the
peak). The bus stop is a time-share lane loss in macro and explicit dwelling buses in micro.

**Seeds (micro, issue 4).** Micro's most frequent peak head (of 45 records), discharge 102-106%
of macro's on seeds 0-7: ``approach`` on every seed (35, 38, 35, 38, 38, 39, 33, 38 records;
``uturn-section`` the rest). The section is where micro's U-turners cross to the leftmost lane,
as the seed describes. Seed 2 read ``uturn-section`` (24 records) until the queue records stopped
counting a slow U-turner close behind its leader (a platoon leaving the approach's queue) as one
waiting to change lanes (``micro_base._waits_to_leave``).
"""

from __future__ import annotations

from ..control import BusStop
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, kerbside_capacity_vph

__all__ = ["build"]


def build(peak: PeakShape, *, lanes: int = 3, through_peak_vph: float = 3500.0, uturn_peak_vph: float = 300.0,
          uturn_block_s: float = 10.0, bus_vph: float = 40.0, bus_dwell_s: float = 25.0,
          section_length_m: float = 150.0, approach_length_m: float = 500.0, feeder_length_m: float = 1200.0):
    """Build the Guangzhou Avenue South scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    lanes : int
        Northbound lanes.
    through_peak_vph, uturn_peak_vph : float
        Peak demand going north and making the U-turn [veh/h].
    uturn_block_s : float
        Time each U-turner holds the leftmost lane while waiting for a gap [s].
    bus_vph, bus_dwell_s : float
        Buses at the Shangchong stop [bus/h] (timetable) and their mean dwell [s].
    section_length_m, approach_length_m, feeder_length_m : float
        Lengths [m].
    """
    c, a, f = section_length_m, approach_length_m, feeder_length_m
    uturn_lanes_lost = uturn_peak_vph * peak.demand_scale * uturn_block_s / 3600.0
    factor = 1.0 - uturn_lanes_lost / lanes
    s = Site()
    s.nodes(S0=(0, -a - f - c), S1=(0, -a - c), S2=(0, -c), U=(0, 0), N=(0, 700), R=(-30, -400))
    s.road("feeder", "S0", "S1", lanes=lanes, name="Guangzhou Avenue South")
    s.road("approach", "S1", "S2", lanes=lanes, name="Guangzhou Avenue South")
    s.road("uturn-section", "S2", "U", lanes=lanes, capacity_factor=factor, name="Guangzhou Avenue South at Tianxiong Road")
    s.road("north", "U", "N", lanes=lanes, name="Guangzhou Avenue South")
    s.road("uturn", "U", "R", lanes=1, kind="ramp", name="U-turn to southbound")
    d = Demand()
    d.add("S0", "N", peak.profile(through_peak_vph), name="northbound through")
    d.add("S0", "R", peak.profile(uturn_peak_vph), name="U-turners")
    d.add("S0", "N", [(0.0, bus_vph)], vehicle_class="bus", name="buses")
    controls = [BusStop("uturn-section", 20.0, 30.0, bay=False, dwell_mean_s=bus_dwell_s, name="Shangchong")]
    meta = card_meta(
        row=5, original_name="广州大道南天雄路口/市南路", english_name="Guangzhou Avenue South at Tianxiong Road / Shinan Road",
        cause_class="road condition", seed_category="道路条件、站点布局",
        symptom="U-turners waiting in the leftmost lane and a kerbside bus stop choke the northbound section",
        bottleneck_link="approach", queue_links=["approach", "feeder"], discharge_link="uturn-section",
        capacity_vph=kerbside_capacity_vph(s, "uturn-section", bus_vph, bus_dwell_s),
        capacity_basis="(lanes - bus share) x 1800 x (1 - uturn_peak_vph x uturn_block_s / 3600 / lanes)",
        remedies=["VariableLane", "PeakControl", "Enforcement", "StopRelocation", "DemandRestriction"],
        corridor=["feeder", "approach", "uturn-section", "north"],
        uturn_capacity_factor=factor,
        assumptions=[
            ("U-turns", f"{uturn_peak_vph:g} veh/h at the peak, {uturn_block_s:g} s of leftmost lane each",
             "gap acceptance across 3 opposing lanes takes 6-15 s per U-turn"),
            ("bus stop", f"{bus_vph:g} bus/h, dwell {bus_dwell_s:g} s, kerbside in the section", "Shangchong stop"),
            ("peak demand", f"{through_peak_vph:g} veh/h northbound", "about 1.1 x the section's capacity"),
        ],
        approximations=["U-turn gap acceptance: a lane-capacity reduction of the section (both engines)"],
    )
    return finish("guangzhou-ave-south", "U-turners and a badly placed bus stop choke Guangzhou Avenue South northbound.",
                  s, d, peak, meta, controls)
