"""Xingang West Road x Ruikang Road junction (新港西路瑞康路口) — road condition / order.

**Seed (row 15).** "该路口交通压力较大，瑞康路交通组织混乱，影响新港路交通通行，中大进出车流量大":
a heavily loaded junction; traffic on Ruikang Road is disorderly and holds up Xingang Road; many
vehicles enter and leave Sun Yat-sen University (中大). Remedy: peak manual control.

**Layout.** Xingang West Road eastbound (3 lanes) through the junction ``R`` (two-phase signal;
the kerb lane is marked for the right turn, the two others go straight on);
right-turners enter Ruikang Road southbound (2 lanes): 150 m of entry, then the market stretch
(400 m) where double parking and jaywalking shoppers occupy a lane and slow the other. The
university's north gate faces Ruikang Road across Xingang West Road: its traffic crosses
straight into Ruikang Road in the second phase.

**Mechanism.** Ruikang Road's market stretch carries only
``(2 - 1) x 1800 x disorder_factor`` veh/h, less than the right-turners and university traffic
bring: the queue head stands at the end of ``ruikang-entry``; the entry fills, its queue fills
the approach's kerb lane (the right-turners' lane group on the macro engine) and then blocks
Xingang West Road's approach where vehicles sort into their lanes, delaying its through traffic.

**Engines.** The disorder is a blocked lane (Blocking, all day) plus a lower lane capacity of the
market link (friction from shoppers and parking manoeuvres) in both engines. The blocked lane
covers the whole market stretch in both (micro: the kerb lane from the stretch's start to its
end), so micro drivers leave it on ``ruikang-entry``, where the macro's lane loss begins.

**Through demand and seeds (micro, issue 4).** The through movement gets 2 lanes x 1800 veh/h x
78 / 130 s of green = 2,160 veh/h on both engines (the macro engine caps a movement at the share
of its link's lanes that serve it; with all 3 lanes it would get 3,240). At 2,000 veh/h (93% of it) it queued on its own in micro,
whose signal passes less than the CTM (vehicles start from standstill each green: 1,789 against
1,989 veh/h measured to ``xingang-east``): micro's head stood on ``xingang-approach`` on 6 of
seeds 0-7. The scenario is about Ruikang Road's queue reaching the approach, so the through
movement must stay clearly below its green's capacity on both engines. 1,800 veh/h (83% of
macro's, about 1.0 of micro's 1,789) held on most seeds but left seed 3 with its head on
``xingang-approach`` (24 of 45 records, ``ruikang-entry`` 20), and seed 4 alike; now 1,700 veh/h
(79% of macro's, 95% of micro's). Micro's most frequent peak head (of 45 records) and its
discharge as a share of macro's 1,260 veh/h (measured with ``peak_heads`` and ``peak_discharge`` of
``tests/test_scenarios_micro.py``, 2026-11-23):

| seed | through 1,800 veh/h (before) | through 1,700 veh/h |
|---|---|---|
| 0 | ``ruikang-entry`` 21, 101% | ``ruikang-entry`` 26 (``university-gate`` 10), 101% |
| 1 | ``ruikang-entry`` 26, 101% | ``ruikang-entry`` 31, 101% |
| 2 | ``ruikang-entry`` 39, 101% | ``ruikang-entry`` 32, 101% |
| 3 | ``xingang-approach`` 24 (``ruikang-entry`` 20), 101% | ``ruikang-entry`` 31, 101% |
| 4-7 | ``ruikang-entry`` on 3 of 4; seed 4 ``xingang-approach`` 30 | ``ruikang-entry`` on 4 of 4 (31-41), 100-101% |

At 1,650 and 1,600 veh/h all eight seeds hold too (``ruikang-entry`` 24-39 of 45); macro's
head is ``ruikang-entry`` in all 45 records at each of these flows. Tried before and not kept:
lowering the gate flow and raising the right turn (500 and 850 veh/h) moved the head to
``xingang-approach`` (the right-turners' kerb-lane queue) instead.
"""

from __future__ import annotations

from ..control import Blocking
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, kerbside_capacity_vph, two_phase_signal

__all__ = ["build"]


def build(peak: PeakShape, *, disorder_factor: float = 0.7, blocked_lanes: int = 1, cycle_s: float = 130.0,
          xingang_green_share: float = 0.65, through_peak_vph: float = 1700.0, right_peak_vph: float = 800.0,
          gate_peak_vph: float = 550.0, entry_length_m: float = 150.0, approach_length_m: float = 400.0,
          feeder_length_m: float = 1000.0):
    """Build the Xingang West Road x Ruikang Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    disorder_factor : float
        Lane capacity of Ruikang Road's market stretch relative to an orderly lane.
    blocked_lanes : int
        Lanes of the market stretch occupied by double parking.
    cycle_s, xingang_green_share : float
        Cycle [s] and Xingang West Road's share of the effective green.
    through_peak_vph, right_peak_vph, gate_peak_vph : float
        Peak demand: Xingang through, Xingang right into Ruikang Road, university gate into Ruikang Road [veh/h].
    entry_length_m, approach_length_m, feeder_length_m : float
        Lengths [m].
    """
    e, a, f = entry_length_m, approach_length_m, feeder_length_m
    s = Site()
    s.nodes(X0=(-a - f, 0), X1=(-a, 0), R=(0, 0), XE=(700, 0), G=(0, 200), K1=(0, -e), K2=(0, -e - 400), K3=(0, -e - 800))
    s.road("xingang-feeder", "X0", "X1", lanes=3, name="Xingang West Road")
    s.road("xingang-approach", "X1", "R", lanes=3, name="Xingang West Road")
    s.road("xingang-east", "R", "XE", lanes=3, name="Xingang West Road")
    s.road("university-gate", "G", "R", lanes=1, name="Sun Yat-sen University north gate")
    s.road("ruikang-entry", "R", "K1", lanes=2, name="Ruikang Road")
    s.road("ruikang-market", "K1", "K2", lanes=2, capacity_factor=disorder_factor, name="Ruikang Road market stretch")
    s.road("ruikang-south", "K2", "K3", lanes=2, name="Ruikang Road")
    # lane markings: the kerb lane turns right into Ruikang Road, the other two go straight on
    # (without markings the engines' rule gives a double right turn from lanes 0-1 into the
    # 2-lane street, with lane 1 shared, which the junction does not have)
    s.net.connect_lanes("xingang-approach", "ruikang-entry", [(0, 0)])
    s.net.connect_lanes("xingang-approach", "xingang-east", [(1, 1), (2, 2)])
    sig = two_phase_signal("R", [("xingang-approach", "xingang-east"), ("xingang-approach", "ruikang-entry")],
                           [("university-gate", "ruikang-entry")], cycle_s=cycle_s, main_green_share=xingang_green_share)
    d = Demand()
    d.add("X0", "XE", peak.profile(through_peak_vph), name="Xingang West Road through")
    d.add("X0", "K3", peak.profile(right_peak_vph), name="Xingang West Road to Ruikang Road")
    d.add("G", "K3", peak.profile(gate_peak_vph), name="university gate to Ruikang Road")
    controls = [sig]
    if blocked_lanes > 0:
        # the whole market stretch, as the card says and as the macro engine applies it (a 200 m
        # segment in its middle let micro traffic queue inside the stretch, not before it)
        controls.append(Blocking("ruikang-market", 0.0, peak.duration_s, blocked_lanes, position_m=0.0,
                                 length_m=s.net.link("ruikang-market").length_m))
    meta = card_meta(
        row=15, original_name="新港西路瑞康路口", english_name="Xingang West Road x Ruikang Road junction",
        cause_class="order", seed_category="道路条件",
        symptom="disorderly Ruikang Road cannot take the turning and university traffic; its queue blocks Xingang West Road",
        bottleneck_link="ruikang-entry", queue_links=["ruikang-entry", "xingang-approach"], discharge_link="ruikang-market",
        capacity_vph=kerbside_capacity_vph(s, "ruikang-market", blocked_lanes=blocked_lanes),
        capacity_basis="(2 - blocked_lanes) x 1800 veh/h x disorder_factor",
        remedies=["PeakControl", "Enforcement"],
        corridor=["xingang-feeder", "xingang-approach", "ruikang-entry", "ruikang-market", "ruikang-south"],
        assumptions=[
            ("Ruikang Road disorder", f"{blocked_lanes} lane double-parked along the whole market stretch, the other at "
             f"{disorder_factor:g} x capacity",
             "'交通组织混乱': parking manoeuvres and shoppers crossing at random (row 11's market is on this road)"),
            ("signal plan", f"2 phases, cycle {cycle_s:g} s, Xingang {xingang_green_share:.0%} of the effective green",
             "arterial-priority plan"),
            ("lane markings", "Xingang approach: kerb lane right turn, lanes 2-3 through",
             "the usual marking of an arterial approach at a minor road; the engines' default rule (no markings) "
             "gives a double right turn from lanes 1-2 with lane 2 shared, which a turn into a 2-lane market street "
             "does not have"),
            ("peak demand", f"through {through_peak_vph:g}, right {right_peak_vph:g}, gate {gate_peak_vph:g} veh/h",
             "flows into Ruikang Road about 1.1 x its market stretch's capacity; the through movement at about "
             "0.8 x its green's capacity, 0.95 x what micro's signal passes (the queue on Xingang West Road is "
             "Ruikang Road's, not its own)"),
        ],
        approximations=["disorder: a blocked lane plus a lane-capacity factor"],
    )
    return finish("xingang-ruikang", "Disorderly Ruikang Road backs up into Xingang West Road at their junction.",
                  s, d, peak, meta, controls)
