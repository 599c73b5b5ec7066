"""Tuhua Road at the Huanan and Ring Expressway ramps (土华路华快、环城出口路段) — road condition / order.

**Seed (row 6).** "较多大型货车进入土华路禁行区域造成拥堵；该道路狭窄，且华快、环城出入口相距近，
出入车流相互干扰影响，通行能力不足": many heavy trucks enter Tuhua Road's truck-ban zone; the road
is narrow and the Huanan Expressway and Ring Expressway ramps are close together, so entering and
leaving traffic interfere (a short weave) and capacity is insufficient. Remedies: cameras
(enforcement: fewer trucks), peak manual control, **more toll booths**; long term widening.

**Layout.** Tuhua Road eastbound (2 lanes). The Huanan Expressway off-ramp (1 lane) joins at
``E``; 200 m later, at ``D``, traffic for the Ring Expressway leaves by its on-ramp (1 lane,
250 m) to a toll plaza of ``booths`` booths; the rest continues east on Tuhua Road.

**Mechanism.** The toll plaza serves ``booths x booth_vph``. At the peak its demand exceeds
that, the on-ramp fills, and its queue backs into the short weaving section and blocks Tuhua
Road (first-in-first-out at ``D``): the active bottleneck is the plaza (queue head at the end of
``toll-approach``), the queue spills over ``weave`` onto ``tuhua-approach`` and the off-ramp.
The weaving section itself runs at ``weave_capacity_factor`` of a basic lane.

**Engines.** The plaza is a 100 m link with one lane per booth and a
:class:`~trafficsim.control.TollBooth` line 20 m into it; past the booths every booth lane merges
into the ramp lane by zipper (lane connectors) over the remaining 80 m (a toll plaza's merge
taper; the 34 m plaza of earlier versions left 14 m to merge from standstill, which queued behind
the booths and starved them: micro 673 veh/h). Macro: the booths are the plaza's capacity,
``booth_vph`` per lane (its lanes scaled by ``booth_vph`` over the ramp lane capacity); trucks
count as one vehicle (no passenger-car equivalent), so ``truck_share`` changes the mix, not the
macro capacity. Micro: every vehicle halts at its booth and leaves when the booth is free again,
one gamma-drawn service time (mean ``3600 / booth_vph``, cv 0.3) after the booth's last release;
trucks are longer and slower, so the micro engine shows their effect (they take longer to move up).

**Seeds (micro, issue 4).** ``toll-approach`` is micro's most frequent peak head on seeds 0-7
(35, 34, 35, 38, 35, 20, 36, 39 of 45 records; ``tuhua-approach`` 6, 5, 6, 6, 8, 20, 6, 4),
discharge 91-93% of macro's 900 veh/h: the weave upstream stays a competing queue, and on seed
5 it ties with the toll's (20 records each; seeds 5-7 are not in the slow tests).
"""

from __future__ import annotations

from ..control import TollBooth
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]

#: Toll booth service rate [veh/h/booth].
BOOTH_VPH = 450.0
#: Where the booth line stands on the 34 m plaza link [m]: two vehicles per booth lane queue
#: before it on the plaza, the rest on the on-ramp, where the macro's booth capacity holds them.
BOOTH_LINE_M = 20.0


def build(peak: PeakShape, *, booths: int = 2, booth_vph: float = BOOTH_VPH, truck_share: float = 0.15,
          tuhua_lanes: int = 2, weave_capacity_factor: float = 0.85, through_peak_vph: float = 1300.0,
          to_toll_peak_vph: float = 700.0, offramp_through_peak_vph: float = 400.0, offramp_to_toll_peak_vph: float = 350.0,
          weave_length_m: float = 200.0, approach_length_m: float = 600.0, feeder_length_m: float = 1000.0):
    """Build the Tuhua Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    booths : int
        Toll booths open on the Ring Expressway on-ramp.
    booth_vph : float
        Service rate of one booth [veh/h].
    truck_share : float
        Share of heavy trucks in the Tuhua Road flows.
    tuhua_lanes : int
        Eastbound lanes of Tuhua Road (narrow: 2).
    weave_capacity_factor : float
        Lane capacity of the weaving section relative to a basic lane.
    through_peak_vph, to_toll_peak_vph : float
        Peak Tuhua Road demand going through / to the Ring Expressway [veh/h] (cars + trucks).
    offramp_through_peak_vph, offramp_to_toll_peak_vph : float
        Peak Huanan Expressway off-ramp demand going east / straight to the Ring Expressway [veh/h].
    weave_length_m, approach_length_m, feeder_length_m : float
        Lengths [m].
    """
    if not 0.0 <= truck_share < 1.0:
        raise ValueError(f"tuhua-weaving: truck_share must be in [0, 1), got {truck_share!r}")
    w, a, f = weave_length_m, approach_length_m, feeder_length_m
    s = Site()
    s.nodes(T0=(-a - f, 0), T1=(-a, 0), H0=(-500, 300), E=(0, 0), D=(w, 0), P=(w + 200, -150), Q=(w + 290, -195),
            R=(w + 800, -300), T2=(w + 800, 0))
    s.road("tuhua-feeder", "T0", "T1", lanes=tuhua_lanes, name="Tuhua Road")
    s.road("tuhua-approach", "T1", "E", lanes=tuhua_lanes, name="Tuhua Road")
    s.road("huanan-offramp", "H0", "E", lanes=1, kind="ramp", name="Huanan Expressway off-ramp")
    s.road("weave", "E", "D", lanes=tuhua_lanes, capacity_factor=weave_capacity_factor, name="Tuhua Road weaving section")
    s.road("toll-approach", "D", "P", lanes=1, kind="ramp", name="Ring Expressway on-ramp")
    s.road("toll", "P", "Q", lanes=booths, kind="ramp", name="toll plaza")
    s.road("ring-onramp", "Q", "R", lanes=1, kind="ramp", name="Ring Expressway on-ramp")
    # past the booths every booth lane merges into the ramp lane (zipper), none of them ends
    s.net.connect_lanes("toll", "ring-onramp", [(i, 0) for i in range(booths)])
    s.road("tuhua-east", "D", "T2", lanes=tuhua_lanes, name="Tuhua Road")
    controls = [TollBooth("toll", BOOTH_LINE_M, 3600.0 / booth_vph, name="Ring Expressway toll plaza")]
    d = Demand()
    for dest, q, label in (("T2", through_peak_vph, "Tuhua Road through"), ("R", to_toll_peak_vph, "Tuhua Road to Ring Expressway")):
        d.add("T0", dest, peak.profile(q * (1.0 - truck_share)), name=label)
        if truck_share > 0:
            d.add("T0", dest, peak.profile(q * truck_share), vehicle_class="truck", name=label + " (trucks)")
    d.add("H0", "T2", peak.profile(offramp_through_peak_vph), name="Huanan off-ramp to Tuhua Road")
    d.add("H0", "R", peak.profile(offramp_to_toll_peak_vph), name="Huanan off-ramp to Ring Expressway")
    meta = card_meta(
        row=6, original_name="土华路华快、环城出口路段", english_name="Tuhua Road at the Huanan and Ring Expressway ramps",
        cause_class="road condition", seed_category="道路条件、交通秩序",
        symptom="toll-plaza queue on the closely spaced on-ramp backs into a short weave and blocks narrow Tuhua Road",
        bottleneck_link="toll-approach", queue_links=["toll-approach", "weave", "tuhua-approach"], discharge_link="toll",
        capacity_vph=booths * booth_vph, capacity_basis="booths x booth_vph",
        remedies=["Enforcement", "PeakControl", "Widening"], corridor=["tuhua-feeder", "tuhua-approach", "weave", "toll-approach", "toll"],
        assumptions=[
            ("toll booths", f"{booths} booths x {booth_vph:g} veh/h", "manual/mixed toll lanes serve 400-500 veh/h (7-9 s per vehicle)"),
            ("truck share", f"{truck_share:.0%} of Tuhua Road traffic", "port and logistics traffic near the Huangpu docks"),
            ("weaving capacity factor", f"{weave_capacity_factor:g}", "HCM 2010 ch. 12: weaving costs 10-20 % per lane"),
            ("peak demand", f"through {through_peak_vph:g}, to toll {to_toll_peak_vph:g}, off-ramp {offramp_through_peak_vph:g} + "
             f"{offramp_to_toll_peak_vph:g} veh/h", "toll demand about 1.2 x the plaza's capacity"),
            ("lengths", f"weave {w:g} m, on-ramp 250 m, plaza 100 m (booths 20 m into it)",
             "'出入口相距近': ramps close together; past the booths the lanes merge over a short taper"),
        ],
        approximations=["toll plaza: macro, one lane per booth at the booth's service rate; micro, vehicles halt and "
                        "are served at each booth (TollBooth)",
                        "trucks: one vehicle each in macro (no PCE); micro models their length"],
    )
    return finish("tuhua-weaving", "Close expressway ramps, trucks and a toll plaza choke narrow Tuhua Road.", s, d, peak, meta,
                  controls)
