"""Baogang Avenue from Jiangnan West Road to Baochang Road (宝岗大道至宝昌路段) — road condition / signal.

**Seed (row 4).** "宝岗昌岗路口南往东通行能力较差，宝岗江南西商圈车流密集…该路口四方向都有两车道通行":
at the Baogang x Changgang junction the southbound-to-east movement has poor capacity; the
Baogang / Jiangnan West business district generates dense traffic; every approach has 2 lanes.
Remedies: **retime the signal** at Baogang Avenue x Jiangnan West Road, peak manual control, a
pedestrian overpass at Changgang; odd-even plates.

**Layout.** Baogang Avenue southbound (2 lanes) passes the Jiangnan West Road junction ``JX``
(two-phase signal), runs 400 m and splits 60 m before the Changgang Road junction ``J`` into
its two lanes: a left-turn lane to Changgang Road east and a through lane. ``J`` runs three
phases: southbound through, southbound left (protected, short), Changgang Road westbound.

**Mechanism.** The protected left phase serves ``1800 x g_left / C`` veh/h, less than the
peak left-turn demand: the left lane ``sb-left`` fills, its queue blocks the through lane at the
split and spills back along Baogang Avenue to ``JX``. The active bottleneck is the left-turn
stop line (end of ``sb-left``).

**Engines.** The split into a left and a through lane is explicit (two 1-lane links), so both
engines see the lane overflow; macro blocks the whole approach once the left lane is full
(first in, first out at the split).
"""

from __future__ import annotations

from ..control import FixedTimeSignal, Phase
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, two_phase_signal

__all__ = ["build"]


def build(peak: PeakShape, *, cycle_s: float = 130.0, left_green_s: float = 22.0, through_green_s: float = 62.0,
          left_peak_vph: float = 380.0, through_peak_vph: float = 400.0, cross_peak_vph: float = 700.0,
          jx_cross_peak_vph: float = 900.0, jx_main_green_share: float = 0.55, link_length_m: float = 400.0,
          pocket_length_m: float = 60.0, feeder_length_m: float = 600.0):
    """Build the Baogang Avenue / Changgang Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    cycle_s : float
        Cycle at both junctions [s].
    left_green_s, through_green_s : float
        Green of the southbound left and through phases at Changgang [s]; Changgang Road gets the rest.
    left_peak_vph, through_peak_vph, cross_peak_vph : float
        Peak demand southbound-left, southbound-through and westbound on Changgang Road [veh/h].
    jx_cross_peak_vph, jx_main_green_share : float
        Jiangnan West Road demand [veh/h] and Baogang Avenue's share of the green at ``JX``.
    link_length_m, pocket_length_m, feeder_length_m : float
        Lengths [m] between the junctions, of the split lanes and upstream of ``JX``.
    """
    L, p, f = link_length_m, pocket_length_m, feeder_length_m
    s = Site()
    s.nodes(B0=(0, L + p + f), JX=(0, L + p), JXW=(-300, L + p), JXE=(300, L + p), P=(0, p), J=(0, 0), BS=(0, -500),
            CE=(500, 0), CEi=(500, 15), CW=(-500, 15))
    s.road("baogang-feeder", "B0", "JX", lanes=2, name="Baogang Avenue")
    s.road("jx-cross-in", "JXE", "JX", lanes=2, name="Jiangnan West Road")
    s.road("jx-cross-out", "JX", "JXW", lanes=2, name="Jiangnan West Road")
    s.road("baogang-sb", "JX", "P", lanes=2, name="Baogang Avenue")
    # the left-turn lane's path through the junction is a little longer than the through lane's
    s.road("sb-left", "P", "J", lanes=1, length_m=p + 10.0, name="Baogang Avenue left-turn lane")
    s.road("sb-through", "P", "J", lanes=1, name="Baogang Avenue through lane")
    s.road("baogang-south", "J", "BS", lanes=2, name="Baogang Avenue")
    s.road("changgang-east", "J", "CE", lanes=2, name="Changgang Road")
    s.road("changgang-wb", "CEi", "J", lanes=2, name="Changgang Road")
    s.road("changgang-west", "J", "CW", lanes=2, name="Changgang Road")
    amber, red = 3.0, 2.0
    cross_green = cycle_s - left_green_s - through_green_s - 3 * (amber + red)
    if cross_green <= 0:
        raise ValueError(f"baogang-changgang: cycle_s={cycle_s:g} leaves no green for Changgang Road")
    sig_j = FixedTimeSignal("J", (
        Phase(through_green_s, (("sb-through", "baogang-south"),), amber, red),
        Phase(left_green_s, (("sb-left", "changgang-east"),), amber, red),
        Phase(cross_green, (("changgang-wb", "changgang-west"),), amber, red),
    ))
    sig_x = two_phase_signal("JX", [("baogang-feeder", "baogang-sb")], [("jx-cross-in", "jx-cross-out")],
                             cycle_s=cycle_s, main_green_share=jx_main_green_share)
    d = Demand()
    d.add("B0", "CE", peak.profile(left_peak_vph), route=["baogang-feeder", "baogang-sb", "sb-left", "changgang-east"],
          name="Baogang southbound to Changgang east")
    d.add("B0", "BS", peak.profile(through_peak_vph), route=["baogang-feeder", "baogang-sb", "sb-through", "baogang-south"],
          name="Baogang southbound through")
    d.add("CEi", "CW", peak.profile(cross_peak_vph), name="Changgang Road westbound")
    d.add("JXE", "JXW", peak.profile(jx_cross_peak_vph), name="Jiangnan West Road")
    g = sig_j.green_share("sb-left", "changgang-east")
    meta = card_meta(
        row=4, original_name="宝岗大道至宝昌路段", english_name="Baogang Avenue from Jiangnan West Road to Baochang Road",
        cause_class="signal", seed_category="道路条件、交通信号",
        symptom="the short protected southbound-to-east phase at Changgang overflows its lane and queues back to Jiangnan West Road",
        bottleneck_link="sb-left", queue_links=["sb-left", "baogang-sb"], discharge_link="changgang-east",
        capacity_vph=s.capacity_vph("sb-left") * g, capacity_basis="1 lane x 1800 veh/h x left_green_s / cycle_s",
        remedies=["SignalRetiming", "PeakControl", "DemandRestriction"],
        corridor=["baogang-feeder", "baogang-sb", "sb-left", "changgang-east"],
        assumptions=[
            ("signal plan at Changgang", f"cycle {cycle_s:g} s: through {through_green_s:g} s, left {left_green_s:g} s, "
             f"Changgang Road {cross_green:g} s, amber 3 s + all-red 2 s each", "three-phase plan of a 2-lane x 2-lane junction"),
            ("signal plan at Jiangnan West", f"2 phases, Baogang {jx_main_green_share:.0%} of the effective green", "business district junction"),
            ("peak demand", f"left {left_peak_vph:g}, through {through_peak_vph:g}, Changgang {cross_peak_vph:g}, "
             f"Jiangnan West {jx_cross_peak_vph:g} veh/h", "left turns about 1.2 x the left phase's capacity"),
            ("lane split", f"{pocket_length_m:g} m before the stop line", "the 2 approach lanes become a left and a through lane"),
        ],
    )
    return finish("baogang-changgang", "The short southbound-to-east phase at Baogang x Changgang queues back along Baogang Avenue.",
                  s, d, peak, meta, [sig_j, sig_x])
