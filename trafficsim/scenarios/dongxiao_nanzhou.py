"""Dongxiao South Road x Nanzhou North Road junction (东晓南路南洲北路路口) — road condition / signal.

**Seed (row 17).** "该路口交通压力较大，西边晓港路仅有双向2车道": a heavy junction whose west leg,
Xiaogang Road, has only 2 lanes in total (one per direction). Remedies: optimise the signal
timing, peak manual control; long term redesign the junction, widen Qiaogang Road, odd-even
plates.

**Layout.** Dongxiao South Road runs north-south through the junction ``J`` (3 lanes per
direction, northbound modelled); the cross street is Xiaogang Road from the west (1 lane
eastbound into ``J``) continuing as Nanzhou North Road to the east. A two-phase fixed-time plan
(cycle ``cycle_s``) gives the cross street ``cross_green_share`` of the effective green.

**Mechanism.** The cross phase's green serves Xiaogang Road's single lane: its capacity
``1800 x g/C`` is below the peak demand, so the queue stands on ``xiaogang-approach`` (head at
the stop line) and spills back over ``xiaogang-feeder``, while the 3-lane main road clears in
its longer green.

**Engines.** Both engines run the same fixed-time plan; amber and all-red are lost time.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, signal_corridor, two_phase_signal

__all__ = ["build"]


def build(peak: PeakShape, *, xiaogang_lanes: int = 1, main_lanes: int = 3, cycle_s: float = 130.0,
          cross_green_share: float = 0.35, main_peak_vph: float = 2600.0, xiaogang_peak_vph: float = 650.0,
          approach_length_m: float = 300.0, feeder_length_m: float = 700.0):
    """Build the Dongxiao South Road x Nanzhou North Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    xiaogang_lanes, main_lanes : int
        Eastbound lanes of Xiaogang Road (seed: 2 lanes two-way) and northbound lanes of Dongxiao South Road.
    cycle_s, cross_green_share : float
        Cycle [s] and the cross phase's share of the effective green.
    main_peak_vph, xiaogang_peak_vph : float
        Peak demand [veh/h].
    approach_length_m, feeder_length_m : float
        Xiaogang Road lengths [m] (last block and the one before it).
    """
    s = Site()
    # the "corridor" is Xiaogang Road eastbound, the cross street Dongxiao South Road northbound
    cor = signal_corridor(s, key="xiaogang", name="Xiaogang Road", junctions=[("J", "Dongxiao South Road")],
                          spacing_m=[approach_length_m], lanes=xiaogang_lanes, cross_lanes=main_lanes,
                          feeder_length_m=feeder_length_m, exit_length_m=400.0, cross_length_m=500.0,
                          origin=(-approach_length_m - feeder_length_m, 0.0))
    s.net.update_link(cor.main[-1], name="Nanzhou North Road")
    sig = two_phase_signal("J", [(cor.cross_in["J"], cor.cross_out["J"])], [(cor.main[1], cor.main[2])],
                           cycle_s=cycle_s, main_green_share=1.0 - cross_green_share)
    d = Demand()
    d.add("xiaogang-start", "xiaogang-end", peak.profile(xiaogang_peak_vph), name="Xiaogang Road eastbound")
    d.add("J-left", "J-right", peak.profile(main_peak_vph), name="Dongxiao South Road northbound")
    g = sig.green_share(cor.main[1], cor.main[2])
    meta = card_meta(
        row=17, original_name="东晓南路南洲北路路口", english_name="Dongxiao South Road x Nanzhou North Road junction",
        cause_class="road condition", seed_category="道路条件",
        symptom="the west leg, Xiaogang Road, has one lane per direction and queues in the cross phase",
        bottleneck_link=cor.main[1], queue_links=[cor.main[1], cor.main[0]], discharge_link=cor.main[2],
        capacity_vph=s.capacity_vph(cor.main[1]) * g,
        capacity_basis="xiaogang_lanes x 1800 veh/h x green share of the cross phase (green / cycle)",
        remedies=["SignalRetiming", "PeakControl", "Widening", "DemandRestriction"], corridor=list(cor.main),
        assumptions=[
            ("signal plan", f"2 phases, cycle {cycle_s:g} s, cross street {cross_green_share:.0%} of the effective green, "
             "amber 3 s + all-red 2 s per phase", "typical Guangzhou peak plan for a major/minor junction"),
            ("peak demand", f"Dongxiao {main_peak_vph:g} veh/h, Xiaogang {xiaogang_peak_vph:g} veh/h",
             "Xiaogang about 1.2 x its green capacity; the main road below its own"),
            ("lengths", f"Xiaogang Road {approach_length_m:g} m + {feeder_length_m:g} m", "old-town block lengths"),
        ],
    )
    return finish("dongxiao-nanzhou", "A heavy junction whose west leg (Xiaogang Road) has one lane per direction.",
                  s, d, peak, meta, [sig])
