"""Xingang-gang junction (新港岗路口) — road condition (sag and merging streams).

**Seed (row 16).** "该节点交通压力较大，南北向道路上呈'前后高，中间低'，加上多股车流汇入":
a heavily loaded node; the north-south road is "high at both ends and low in the middle" (a sag)
and several streams merge into it. Remedies: widen or tunnel (more lanes), a pedestrian
overpass or tunnel, odd-even plates; short term peak manual control.

**Layout.** The north-south road southbound (3 lanes) descends to the junction ``J`` at the bottom
of the sag, where two side streams join (east 1 lane, west 2 lanes); it then climbs out of the
sag (3 lanes, 400 m uphill) and continues level.

**Mechanism.** On the uphill leg drivers lose speed and keep longer gaps: a sag's capacity is
10-20 % below a level road's (Koshi et al. 1992; Goñi-Ros et al. 2016). The merged streams exceed
``3 x 1800 x sag_capacity_factor``, so the queue head stands at the bottom of the sag, on the
downhill leg ``main-downhill``, and spills back up the north slope; the side streams, whose
merge share covers their demand, flow.

**Engines.** The sag is a lower lane capacity on the uphill link in both engines (neither models
grade explicitly).
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, main_lanes: int = 3, sag_capacity_factor: float = 0.85, main_peak_vph: float = 3600.0,
          east_peak_vph: float = 500.0, west_peak_vph: float = 900.0, downhill_length_m: float = 500.0,
          feeder_length_m: float = 1500.0, uphill_length_m: float = 400.0):
    """Build the Xingang-gang junction scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    main_lanes : int
        Lanes of the north-south road.
    sag_capacity_factor : float
        Uphill lane capacity relative to a level lane.
    main_peak_vph, east_peak_vph, west_peak_vph : float
        Peak demand of the main road and the two side streams [veh/h].
    downhill_length_m, feeder_length_m, uphill_length_m : float
        Lengths [m].
    """
    h, f, u = downhill_length_m, feeder_length_m, uphill_length_m
    s = Site()
    s.nodes(N0=(0, h + f), N1=(0, h), J=(0, 0), E0=(400, 0), W0=(-600, 100), U=(0, -u), S=(0, -u - 600))
    s.road("main-feeder", "N0", "N1", lanes=main_lanes, name="north-south road (north slope)")
    s.road("main-downhill", "N1", "J", lanes=main_lanes, name="north-south road (downhill)")
    s.road("east-stream", "E0", "J", lanes=1, name="side stream (east)")
    s.road("west-stream", "W0", "J", lanes=2, name="side stream (west)")
    s.road("main-uphill", "J", "U", lanes=main_lanes, capacity_factor=sag_capacity_factor, name="north-south road (uphill)")
    s.road("main-south", "U", "S", lanes=main_lanes, name="north-south road")
    d = Demand()
    d.add("N0", "S", peak.profile(main_peak_vph), name="southbound main road")
    d.add("E0", "S", peak.profile(east_peak_vph), name="east stream")
    d.add("W0", "S", peak.profile(west_peak_vph), name="west stream")
    meta = card_meta(
        row=16, original_name="新港岗路口", english_name="Xingang-gang junction",
        cause_class="road condition", seed_category="道路条件",
        symptom="several streams merge at the bottom of a sag; the uphill leg cannot carry them",
        bottleneck_link="main-downhill", queue_links=["main-downhill", "main-feeder"], discharge_link="main-uphill",
        capacity_vph=s.capacity_vph("main-uphill"), capacity_basis="main_lanes x 1800 veh/h x sag_capacity_factor",
        remedies=["Widening", "PeakControl", "DemandRestriction"],
        corridor=["main-feeder", "main-downhill", "main-uphill", "main-south"],
        assumptions=[
            ("sag capacity factor", f"{sag_capacity_factor:g}",
             "sag bottlenecks carry 10-20 % less than level road (Koshi et al. 1992; Goñi-Ros et al. 2016)"),
            ("peak demand", f"main {main_peak_vph:g}, east {east_peak_vph:g}, west {west_peak_vph:g} veh/h",
             "together about 1.1 x the uphill capacity"),
            ("lengths", f"downhill {h:g} m, uphill {u:g} m", "the seed gives the profile, not its lengths"),
        ],
        approximations=["grade: a lower lane capacity on the uphill link"],
    )
    return finish("xingang-gang", "Several streams merge at the bottom of a sag; the uphill leg is the bottleneck.",
                  s, d, peak, meta)
