"""Haiyin Bridge, northbound up-bridge (海印桥南往北上桥位) — road condition.

**Seed (row 1).** "东晓路主线上桥车流与滨江路入口匝道车流交织": the mainline traffic from
Dongxiao Road going up the bridge weaves with the traffic of the Binjiang Road on-ramp.
Remedies: peak manual control of the east-to-north ramp flow and "开启分流灯，分道放行" (a
diverging signal releasing lane by lane, i.e. merge metering); long term a new crossing, a wider
deck, odd-even plates.

**Layout.** Dongxiao Road northbound (3 lanes) and the Binjiang Road east-to-north on-ramp
(1 lane) meet at ``M`` and share a short weaving section (2 lanes, 250 m) up to the bridge
deck (2 lanes).

**Mechanism.** In the weaving section ramp vehicles cut across mainline vehicles; the lane
changes cost capacity. The section's capacity is ``weave_lanes x 1900 x weave_capacity_factor``
(HCM weaving-segment capacities are 10-20 % below the basic segment's); it is below the
deck's, so the queue head stands at the section's entrance on Dongxiao Road
(``dongxiao-approach``) and spills back over ``dongxiao-feeder``. The ramp gets a share of the
section proportional to its capacity (Tampere et al. 2011); at baseline demand it stays within
that share, so the mainline carries the whole queue, which is why the seed's short-term
remedies control the ramp flow.

**Engines.** Macro: the weaving loss is a lower lane capacity of the ``weave`` link (the CTM has
no lane changes). Micro: MOBIL lane changes happen in the section; its lane capacity is the same
lowered value, so the loss is not counted twice only if the micro engine reads the link's
capacity as its IDM headway — the agreement tolerance covers the difference.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, main_lanes: int = 3, weave_lanes: int = 2, weave_capacity_factor: float = 0.85,
          main_peak_vph: float = 2900.0, ramp_peak_vph: float = 700.0, weave_length_m: float = 250.0,
          approach_length_m: float = 700.0, feeder_length_m: float = 1500.0):
    """Build the Haiyin Bridge scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    main_lanes, weave_lanes : int
        Lanes of Dongxiao Road and of the weaving section / deck.
    weave_capacity_factor : float
        Capacity of a weaving lane relative to a basic bridge lane.
    main_peak_vph, ramp_peak_vph : float
        Peak demand of the mainline and of the Binjiang Road ramp [veh/h].
    weave_length_m, approach_length_m, feeder_length_m : float
        Lengths [m].
    """
    a, f, w = approach_length_m, feeder_length_m, weave_length_m
    s = Site()
    s.nodes(D0=(0, -a - f), D1=(0, -a), B0=(900, -350), M=(0, 0), W=(0, w), N=(0, w + 1000))
    s.road("dongxiao-feeder", "D0", "D1", lanes=main_lanes, name="Dongxiao Road")
    s.road("dongxiao-approach", "D1", "M", lanes=main_lanes, name="Dongxiao Road")
    s.road("binjiang-ramp", "B0", "M", lanes=1, kind="ramp", name="Binjiang Road on-ramp")
    s.road("weave", "M", "W", lanes=weave_lanes, kind="bridge", capacity_factor=weave_capacity_factor,
           name="weaving section")
    s.road("deck", "W", "N", lanes=weave_lanes, kind="bridge", name="Haiyin Bridge")
    d = Demand()
    d.add("D0", "N", peak.profile(main_peak_vph), name="Dongxiao Road mainline")
    d.add("B0", "N", peak.profile(ramp_peak_vph), name="Binjiang Road ramp")
    meta = card_meta(
        row=1, original_name="海印桥南往北上桥位", english_name="Haiyin Bridge, northbound up-bridge",
        cause_class="road condition", seed_category="道路条件",
        symptom="Dongxiao Road mainline weaves with the Binjiang Road on-ramp before the bridge",
        bottleneck_link="dongxiao-approach", queue_links=["dongxiao-approach", "dongxiao-feeder"],
        discharge_link="weave", capacity_vph=s.capacity_vph("weave"),
        capacity_basis="weave_lanes x bridge lane capacity x weave_capacity_factor",
        remedies=["MergeMetering", "PeakControl", "Widening", "NewLink", "DemandRestriction"],
        corridor=["dongxiao-feeder", "dongxiao-approach", "weave", "deck"],
        assumptions=[
            ("weaving capacity factor", f"{weave_capacity_factor:g}",
             "HCM 2010 ch. 12: weaving segments carry 10-20 % less per lane than basic segments"),
            ("lanes", f"Dongxiao Road {main_lanes}, ramp 1, weave/deck {weave_lanes}",
             "the seed gives no lane counts; Haiyin Bridge carries 2 lanes per direction"),
            ("peak demand", f"mainline {main_peak_vph:g} veh/h, ramp {ramp_peak_vph:g} veh/h",
             "about 1.2 x the weaving section's capacity"),
            ("lengths", f"weave {w:g} m, approach {a:g} m + {f:g} m", "short weave typical of bridge-foot ramps"),
        ],
        approximations=["weaving: a lane-capacity reduction of the weaving link (macro has no lane changes)"],
    )
    return finish("haiyin-bridge", "Dongxiao Road mainline and the Binjiang Road ramp weave before Haiyin Bridge.",
                  s, d, peak, meta)
