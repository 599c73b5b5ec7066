"""Xinjiao West Road x Gongye Road junction (新滘西路工业路口) — road condition / signal.

**Seed (row 8).** "路口受工业大道中石岗路口灯号影响；工业大道中石岗路口等候过马路行人和非机动车占用至少
工业大道南、新滘西路造成影响": the junction is held up by the signal at Gongye Avenue Middle x
Shigang Road; pedestrians and non-motorised vehicles waiting to cross there occupy part of
Gongye Avenue South and Xinjiao West Road. Remedies: channelise, add signals, peak manual
control; long term finish Xinjiao Road, a pedestrian overpass or tunnel, odd-even plates.

**Layout.** Eastbound from Xinjiao West Road (2 lanes) through the junction ``X`` (Gongye Road,
unsignalised: the seed's remedy is to add signals) onto a 250 m stretch of Gongye Avenue to the
Shigang Road junction ``S`` (two-phase fixed-time plan), then on.

**Mechanism.** During the peak the pedestrians and bicycles waiting at ``S`` occupy one lane of
the stretch ``X -> S``: its discharge at ``S`` is ``(2 - 1) x 1800 x g/C``. The queue stands on
``xinjiao-to-S``, fills its 250 m and spills back through ``X`` onto Xinjiao West Road, so the
junction ``X`` is held up by the next signal, as the seed says.

**Engines.** The unsignalised ``X`` carries no :class:`~trafficsim.control.PriorityJunction`,
so the streams cross there freely, and the cross street's flow is not blocked by the
spilled-back queue (in reality it is; a queue standing in the junction blocks it in neither
engine, with or without a PriorityJunction). The waiting pedestrians and non-motorised vehicles are a
:class:`~trafficsim.control.Blocking` of one lane during the peak (the engines have no
pedestrian primitive): the whole link in macro, a 40 m segment before the stop line in micro.
"""

from __future__ import annotations

from ..control import Blocking
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, signal_corridor, two_phase_signal

__all__ = ["build"]


def build(peak: PeakShape, *, lanes: int = 2, occupied_lanes: int = 1, cycle_s: float = 130.0,
          s_green_share: float = 0.4, main_peak_vph: float = 800.0, cross_peak_vph: float = 700.0,
          link_length_m: float = 250.0, approach_length_m: float = 400.0, feeder_length_m: float = 600.0):
    """Build the Xinjiao West Road x Gongye Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    lanes, occupied_lanes : int
        Eastbound lanes, and lanes occupied by waiting pedestrians and bicycles during the peak.
    cycle_s, s_green_share : float
        Cycle [s] and the main road's share of the effective green at ``S`` (``X`` has no signal).
    main_peak_vph, cross_peak_vph : float
        Peak demand eastbound and on each cross street [veh/h].
    link_length_m, approach_length_m, feeder_length_m : float
        Lengths [m] of ``X -> S``, of Xinjiao West Road's last block and of its feeder.
    """
    s = Site()
    cor = signal_corridor(s, key="xinjiao", name="Xinjiao West Road / Gongye Avenue",
                          junctions=[("X", "Gongye Road"), ("S", "Shigang Road")], spacing_m=[approach_length_m, link_length_m],
                          lanes=lanes, cross_lanes=2, feeder_length_m=feeder_length_m)
    # X has no signal yet (the seed's remedy is to add one); S runs a two-phase plan
    signals = [two_phase_signal("S", [(cor.main[2], cor.main[3])], [(cor.cross_in["S"], cor.cross_out["S"])],
                                cycle_s=cycle_s, main_green_share=s_green_share)]
    d = Demand()
    d.add("xinjiao-start", "xinjiao-end", peak.profile(main_peak_vph), name="eastbound")
    for j in ("X", "S"):
        d.add(f"{j}-left", f"{j}-right", peak.profile(cross_peak_vph), name=f"cross street at {j}")
    stretch = cor.main[2]
    controls = list(signals)
    if occupied_lanes > 0:
        controls.append(Blocking(stretch, peak.peak_start_s - peak.ramp_s, peak.peak_end_s + peak.ramp_s, occupied_lanes,
                                 position_m=link_length_m - 40.0, length_m=40.0))
    g = signals[0].green_share(stretch, cor.main[3])
    lane_cap = s.net.link(stretch).capacity_vph_per_lane
    meta = card_meta(
        row=8, original_name="新滘西路工业路口", english_name="Xinjiao West Road x Gongye Road junction",
        cause_class="signal", seed_category="道路条件、交通信号",
        symptom="the next signal's queue, narrowed by waiting pedestrians and bicycles, backs through the junction",
        bottleneck_link=stretch, queue_links=[stretch, cor.main[1]], discharge_link=cor.main[3],
        capacity_vph=(lanes - occupied_lanes) * lane_cap * g,
        capacity_basis="(lanes - occupied_lanes) x 1800 veh/h x main green share at S",
        remedies=["SignalRetiming", "PeakControl", "DemandRestriction"], corridor=list(cor.main),
        assumptions=[
            ("pedestrian/bicycle occupation", f"{occupied_lanes} lane during the peak (ramps included)",
             "'等候过马路行人和非机动车占用': crowds waiting at the kerb spill into the kerb lane"),
            ("signal plan at S", f"2 phases, cycle {cycle_s:g} s, main road {s_green_share:.0%} of the effective green",
             "Shigang Road is a major cross street; X is unsignalised (the seed's remedy adds a signal)"),
            ("peak demand", f"eastbound {main_peak_vph:g}, cross streets {cross_peak_vph:g} veh/h",
             "about 1.2 x the capacity left at S during the peak"),
        ],
        approximations=["waiting pedestrians and bicycles: a Blocking of one lane during the peak"],
    )
    return finish("xinjiao-gongye", "The next signal's queue, narrowed by waiting pedestrians, backs through Xinjiao West Rd x Gongye Rd.",
                  s, d, peak, meta, controls)
