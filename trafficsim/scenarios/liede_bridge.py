"""Liede Bridge, northbound (猎德大桥南往北) — road condition (downstream spillback).

**Seed (row 9).** "新光快速直达车流、新港路、阅江路几股车流汇合通过猎德大桥进入珠江新城区域后消化不及导致拥堵":
the Xinguang Expressway, Xingang Road and Yuejiang Road streams merge across Liede Bridge into
Zhujiang New Town, which cannot absorb them, and the queue spills back. Remedies: optimise the
lane-separation signals and release in batches (merge metering), peak manual control; odd-even
plates and downstream works in Tianhe.

**Layout.** Three approaches meet at the bridge foot ``M``: Xinguang Expressway (2 lanes),
Xingang Road (2 lanes), Yuejiang Road (1 lane). The bridge (3 lanes, 1 km) lands in Zhujiang New
Town, whose street network is represented by one link ``znt-streets`` (3 lanes) with the
absorption capacity of its signalised exits.

**Mechanism.** The bottleneck is *downstream* of the bridge: Zhujiang New Town's streets absorb
``znt_lanes x 1800 x znt_green_ratio`` veh/h (saturation flow times the share of green its
junctions give this stream), less than the bridge carries. The queue head stands at the bridge's
north end (``bridge``), fills the bridge and spills onto the three approaches.

**Engines.** The downstream network's signals are represented by their mean capacity (a lower
lane capacity on ``znt-streets``), not by signal plans, so the queue head does not flicker with
the cycle; both engines see the same link.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, bridge_lanes: int = 3, znt_lanes: int = 3, znt_green_ratio: float = 0.6,
          xinguang_peak_vph: float = 1800.0, xingang_peak_vph: float = 1300.0, yuejiang_peak_vph: float = 500.0,
          bridge_length_m: float = 1000.0, approach_length_m: float = 1000.0):
    """Build the Liede Bridge scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    bridge_lanes, znt_lanes : int
        Lanes of the bridge and of the Zhujiang New Town streets that take its traffic.
    znt_green_ratio : float
        Share of the cycle Zhujiang New Town's junctions give this stream (capacity factor).
    xinguang_peak_vph, xingang_peak_vph, yuejiang_peak_vph : float
        Peak demand of the three streams [veh/h].
    bridge_length_m, approach_length_m : float
        Lengths [m].
    """
    b, a = bridge_length_m, approach_length_m
    s = Site()
    s.nodes(X0=(-a, -a), G0=(0, -a - 200), Y0=(a, -a * 0.6), M=(0, 0), T=(0, b), Z=(0, b + 800))
    s.road("xinguang-approach", "X0", "M", lanes=2, kind="expressway", name="Xinguang Expressway")
    s.road("xingang-approach", "G0", "M", lanes=2, name="Xingang Road")
    s.road("yuejiang-approach", "Y0", "M", lanes=1, name="Yuejiang Road")
    s.road("bridge", "M", "T", lanes=bridge_lanes, kind="bridge", name="Liede Bridge")
    s.road("znt-streets", "T", "Z", lanes=znt_lanes, capacity_factor=znt_green_ratio, free_speed_kmh=40.0,
           name="Zhujiang New Town streets")
    d = Demand()
    for node, q, label in (("X0", xinguang_peak_vph, "Xinguang Expressway"), ("G0", xingang_peak_vph, "Xingang Road"),
                           ("Y0", yuejiang_peak_vph, "Yuejiang Road")):
        d.add(node, "Z", peak.profile(q), name=label)
    meta = card_meta(
        row=9, original_name="猎德大桥南往北", english_name="Liede Bridge, northbound",
        cause_class="road condition", seed_category="道路条件",
        symptom="three merged streams cross the bridge faster than Zhujiang New Town absorbs them; the queue fills the bridge",
        bottleneck_link="bridge", queue_links=["bridge", "xinguang-approach"], discharge_link="znt-streets",
        capacity_vph=s.capacity_vph("znt-streets"), capacity_basis="znt_lanes x 1800 veh/h/lane x znt_green_ratio",
        remedies=["MergeMetering", "PeakControl", "DemandRestriction"],
        corridor=["xinguang-approach", "bridge", "znt-streets"],
        assumptions=[
            ("Zhujiang New Town absorption", f"{znt_lanes} lanes x 1800 x {znt_green_ratio:g}",
             "signalised grid: saturation flow times the green share its junctions give the bridge traffic"),
            ("approach lanes", "Xinguang 2 (expressway), Xingang 2, Yuejiang 1", "the seed names the streams, not lanes"),
            ("peak demand", f"{xinguang_peak_vph:g} / {xingang_peak_vph:g} / {yuejiang_peak_vph:g} veh/h",
             "together about 1.1 x the downstream absorption capacity"),
        ],
        approximations=["downstream signals: represented by their mean capacity on znt-streets"],
    )
    return finish("liede-bridge", "Three streams merge over Liede Bridge into Zhujiang New Town, which cannot absorb them.",
                  s, d, peak, meta)
