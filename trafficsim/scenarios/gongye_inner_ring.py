"""Gongye Avenue northbound at the Inner Ring Road entrance (工业大道北行内环北路入口路段) — road condition.

**Seed (row 3).** "早晚高峰车流量大，南往东右转上内环车多，而该路口因设一条车道进入内环":
heavy AM and PM peaks; many northbound vehicles turn right onto the Inner Ring Road, but the
entrance has a single lane, so Gongye Avenue queues badly. Remedies: peak manual control;
odd-even plates.

**Layout.** Gongye Avenue northbound (3 lanes) reaches the entrance junction ``J``; right-turners
take the single-lane entrance (ramp class, 300 m) onto the Inner Ring Road, which continues with
3 lanes after the entrance joins; through traffic continues north on Gongye Avenue.

**Mechanism.** The entrance lane serves at most 1600 veh/h. Its queue overflows the right-turn
lane and blocks the through lanes too (first-in-first-out at the diverge): Gongye Avenue's
discharge at ``J`` drops to ``entrance capacity / right-turn share``, and the queue stands on
``gongye-approach`` and spills back over ``gongye-feeder``, delaying through traffic as well.

**Engines.** Macro: FIFO diverge (Tampere et al. 2011): a full entrance link stops the whole
approach, i.e. the right-turn queue is assumed longer than the turn lane. Micro: right-turners
queue in the kerb lane and through vehicles are blocked where they cannot change lanes.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, gongye_lanes: int = 3, entrance_lanes: int = 1, right_peak_vph: float = 1800.0,
          through_peak_vph: float = 1600.0, ring_peak_vph: float = 2000.0, approach_length_m: float = 500.0,
          feeder_length_m: float = 1200.0, entrance_length_m: float = 300.0):
    """Build the Gongye Avenue / Inner Ring Road entrance scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    gongye_lanes, entrance_lanes : int
        Northbound lanes of Gongye Avenue and lanes of the entrance (seed: 1).
    right_peak_vph, through_peak_vph, ring_peak_vph : float
        Peak demand [veh/h] turning onto the Inner Ring Road, going straight, and on the Inner Ring Road.
    approach_length_m, feeder_length_m, entrance_length_m : float
        Lengths [m].
    """
    a, f, e = approach_length_m, feeder_length_m, entrance_length_m
    s = Site()
    s.nodes(G0=(0, -a - f), G1=(0, -a), J=(0, 0), GN=(0, 600), K=(e, 150), RW=(-1200, 150), RE=(e + 1200, 150))
    s.road("gongye-feeder", "G0", "G1", lanes=gongye_lanes, name="Gongye Avenue")
    s.road("gongye-approach", "G1", "J", lanes=gongye_lanes, name="Gongye Avenue")
    s.road("gongye-north", "J", "GN", lanes=gongye_lanes, name="Gongye Avenue")
    s.road("ring-entrance", "J", "K", lanes=entrance_lanes, kind="ramp", length_m=e, name="Inner Ring Road entrance")
    s.road("ring-west", "RW", "K", lanes=2, kind="expressway", name="Inner Ring Road")
    s.road("ring-east", "K", "RE", lanes=3, kind="expressway", name="Inner Ring Road")
    d = Demand()
    d.add("G0", "RE", peak.profile(right_peak_vph), name="Gongye Avenue to Inner Ring Road")
    d.add("G0", "GN", peak.profile(through_peak_vph), name="Gongye Avenue through")
    d.add("RW", "RE", peak.profile(ring_peak_vph), name="Inner Ring Road mainline")
    meta = card_meta(
        row=3, original_name="工业大道北行内环北路入口路段", english_name="Gongye Avenue northbound at the Inner Ring Road entrance",
        cause_class="road condition", seed_category="道路条件",
        symptom="right-turners onto the single-lane Inner Ring Road entrance queue back along Gongye Avenue",
        bottleneck_link="gongye-approach", queue_links=["gongye-approach", "gongye-feeder"], discharge_link="ring-entrance",
        capacity_vph=s.capacity_vph("ring-entrance"), capacity_basis="entrance_lanes x ramp lane capacity (1600 veh/h)",
        remedies=["PeakControl", "DemandRestriction"], corridor=["gongye-feeder", "gongye-approach", "ring-entrance", "ring-east"],
        assumptions=[
            ("peak demand", f"right turn {right_peak_vph:g}, through {through_peak_vph:g}, Inner Ring {ring_peak_vph:g} veh/h",
             "right-turners about 1.1 x the entrance capacity ('南往东右转上内环车多')"),
            ("Gongye Avenue lanes", f"{gongye_lanes}", "dual 3-lane arterial"),
            ("lengths", f"approach {a:g} m + {f:g} m, entrance {e:g} m", "block lengths on Gongye Avenue"),
        ],
        approximations=["the right-turn lane's overflow blocks through lanes: FIFO diverge in the macro engine"],
    )
    return finish("gongye-inner-ring", "Many right-turners onto a single-lane Inner Ring Road entrance block Gongye Avenue.",
                  s, d, peak, meta)
