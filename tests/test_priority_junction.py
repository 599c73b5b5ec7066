"""Priority junctions (`PriorityJunction`): who gives way to whom, from the geometry; the minor
stream's capacity on both engines; the SUMO export's major road."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import trafficsim as ts
from trafficsim.control import (
    PRIORITY_GAPS_S, ControlError, PriorityJunction, control_from_dict, permitted_flow_vps, priority_yields,
)

from conftest import cross_junction, crossing_lags, not_held_up
from test_micro import check_invariants


def _cross(minor_vph, major_vph, *, junction=True, duration_s=3600.0, major=()):
    """The 3-lane cross of ``conftest.cross_junction`` without its signal: ``minor_vph`` east to
    west (through), ``major_vph`` each way north-south (through)."""
    sc = cross_junction(demand_vph=0.0, duration_s=duration_s)
    d = ts.Demand()
    d.add("E", "W", [(0, minor_vph)])
    d.add("N", "S", [(0, major_vph)])
    d.add("S", "N", [(0, major_vph)])
    controls = [PriorityJunction("C", major)] if junction else []
    return ts.Scenario(sc.network, d, duration_s, controls=controls, name="priority-cross")


def _rate(res, od):
    """Discharge [veh/h] of the routes of ``od`` (``"E->W"``) from 1,200 s to the end."""
    arrived = res.data.route_arrived
    sel = arrived.sel(route=[r for r in arrived.route.values if od in str(r)]).sum("route")
    t = res.data.time.values
    late = t >= 1200
    return float(sel[late][-1] - sel[late][0]) / float(t[late][-1] - t[late][0]) * 3600.0


# ---------------------------------------------------------------------------------- geometry
def test_who_gives_way_to_whom_at_a_four_leg_cross():
    """Ranks of the HCM's two-way stop control, conflicts from the coordinates (right-hand
    traffic): the major road (the first in-link, north, and the one opposite) gives way only
    with its left turns; a minor right turn only to the major stream it joins; a minor through
    movement to the whole major road's streams that cross it or join its exit; a minor left turn
    also to the opposite minor stream."""
    net = cross_junction().network
    y = priority_yields(net, PriorityJunction("C"))
    assert PriorityJunction("C").validate(net).major == ("N-in", "S-in")
    assert ("N-in", "S-out") not in y and ("N-in", "W-out") not in y          # major through, right
    assert y[("N-in", "E-out")] == ((("S-in", "E-out"), ("S-in", "N-out")), *PRIORITY_GAPS_S["major_left"])
    assert y[("E-in", "N-out")] == ((("S-in", "N-out"),), *PRIORITY_GAPS_S["minor_right"])
    through, tc, tf = y[("E-in", "W-out")]
    assert (tc, tf) == PRIORITY_GAPS_S["minor_through"]
    assert set(through) == {("N-in", "E-out"), ("N-in", "S-out"), ("N-in", "W-out"), ("S-in", "N-out"),
                            ("S-in", "W-out")}                               # not S-in -> E-out: it stays in its corner
    left, tc, _ = y[("E-in", "S-out")]
    assert tc == PRIORITY_GAPS_S["minor_left"][0]
    assert {("W-in", "E-out"), ("W-in", "S-out")} <= set(left)              # opposite minor through, and right into S-out
    assert ("N-in", "W-out") not in left                                    # the far corner's right turn
    # the order of give-way follows the critical gaps, so ranks: nobody gives way to a minor left
    assert not any(("E-in", "S-out") in ys for ys, _, _ in y.values())


def test_major_road_defaults_to_the_highest_ranked_in_link_and_the_one_opposite():
    net = cross_junction().network
    net.update_link("W-in", free_speed_kmh=60)
    assert PriorityJunction("C").validate(net).major == ("W-in", "E-in")
    net.update_link("N-in", priority=2.0)                                   # an explicit priority ranks first
    assert PriorityJunction("C").validate(net).major == ("N-in", "S-in")
    # a T junction: the stem is minor
    t = ts.Network()
    for k, xy in {"C": (0, 0), "W": (-300, 0), "E": (300, 0), "S": (0, -300)}.items():
        t.add_node(k, *xy)
    for a in "WES":
        t.add_link(f"{a}-in", a, "C", length_m=300, lanes=1)
        t.add_link(f"{a}-out", "C", a, length_m=300, lanes=1)
    assert PriorityJunction("C").validate(t).major == ("W-in", "E-in")
    # the westbound left turn, and both turns out of the stem; the eastbound right turn gives way
    # to nobody (it passes the stem's left turn on the other side)
    assert set(priority_yields(t, PriorityJunction("C"))) == {("E-in", "S-out"), ("S-in", "E-out"), ("S-in", "W-out")}


def test_right_before_left_every_stream_gives_way_to_the_right():
    """``rule="right_before_left"`` at the 4-leg cross: no road is major; a right turn gives way
    to nobody; a through movement to the streams from the leg on its right that cross it or
    join its exit; a left turn also to the opposite leg's through movement and right turn (the
    southbound driver, coming from the north, has the west leg on their right)."""
    net = cross_junction().network
    y = priority_yields(net, PriorityJunction("C", rule="right_before_left"))
    assert not any(mv in y for mv in (("N-in", "W-out"), ("E-in", "N-out"), ("S-in", "E-out"), ("W-in", "S-out")))
    through, tc, tf = y[("N-in", "S-out")]
    assert set(through) == {("W-in", "E-out"), ("W-in", "N-out"), ("W-in", "S-out")}
    assert (tc, tf) == PRIORITY_GAPS_S["minor_through"]
    left, tc, _ = y[("N-in", "E-out")]
    assert set(left) == {("S-in", "N-out"), ("S-in", "E-out"), ("W-in", "E-out"), ("W-in", "N-out")}
    assert tc == PRIORITY_GAPS_S["minor_left"][0]
    # the four through movements give way in a cycle: N to W, W to S, S to E, E to N
    for a, b in (("N", "W"), ("W", "S"), ("S", "E"), ("E", "N")):
        opposite = {"N": "S", "S": "N", "E": "W", "W": "E"}
        assert (f"{b}-in", f"{opposite[b]}-out") in y[(f"{a}-in", f"{opposite[a]}-out")][0]
        assert (f"{a}-in", f"{opposite[a]}-out") not in y[(f"{b}-in", f"{opposite[b]}-out")][0]


@pytest.mark.parametrize("junction, message", [
    (PriorityJunction("nowhere"), "node is not in the network"),
    (PriorityJunction("C", ("N-out",)), "major link 'N-out' is not a link into the node"),
    (PriorityJunction("C", ("N-in", "E-in")), "do not come from opposite directions"),
    (PriorityJunction("C", "N-in"), "major must be a sequence"),
    (PriorityJunction("C", ("N-in", "S-in", "E-in")), "one or two distinct in-links"),
    (PriorityJunction("C", rule="left_first"), r"rule must be one of \['priority', 'right_before_left'\]"),
    (PriorityJunction("C", ("N-in",), rule="right_before_left"), "rule 'right_before_left' has no major road"),
])
def test_bad_priority_junctions_are_errors_naming_the_field(junction, message):
    with pytest.raises(ControlError, match=message):
        junction.validate(cross_junction().network)


def test_a_priority_junction_needs_coordinates_and_round_trips_through_toml(tmp_path):
    net = cross_junction().network
    bare = ts.Network.from_dict({**net.to_dict(), "nodes": [{"id": n} for n in net.nodes]})
    with pytest.raises(ControlError, match=r"priority junction at node 'C': nodes .* have no x, y"):
        PriorityJunction("C").validate(bare)
    for j in (PriorityJunction("C"), PriorityJunction("C", ("E-in", "W-in")),
              PriorityJunction("C", rule="right_before_left")):
        assert control_from_dict(j.to_dict()) == j
    sc = _cross(600, 300, major=("N-in", "S-in"))
    assert ts.Scenario.from_toml(sc.to_toml(tmp_path / "cross.toml")).controls == sc.controls


# ---------------------------------------------------------------------------------- engines
@pytest.mark.parametrize("major_vph", [300.0, 600.0])
def test_macro_minor_stream_discharges_at_the_gap_acceptance_capacity(major_vph):
    """The minor through stream (2 lanes) against both major streams discharges at the HCM's
    potential capacity per lane, ``v_c e^(-v_c t_c) / (1 - e^(-v_c t_f))`` with t_c 6.5 s, t_f
    4.0 s and v_c the sum of the major flows (834 veh/h at 2 x 300, 374 at 2 x 600); the major
    road passes in full; without the control the minor stream passes in full."""
    expected = 2 * permitted_flow_vps(2 * major_vph / 3600.0, *PRIORITY_GAPS_S["minor_through"]) * 3600.0
    res = ts.simulate(_cross(1500.0, major_vph), engine="macro")
    assert _rate(res, "E->W") == pytest.approx(expected, rel=0.03)
    assert not_held_up(res, "N->S", major_vph) and not_held_up(res, "S->N", major_vph)
    assert res.conservation_error() < 1e-6
    free = ts.simulate(_cross(1500.0, major_vph, junction=False), engine="macro")
    assert _rate(free, "E->W") == pytest.approx(1500.0, rel=0.02)


def test_micro_minor_stream_waits_for_gaps():
    """On the micro engine a minor vehicle crosses only where the next major vehicle reaches the
    node at least 3 s later (it waits for 6.5 s at the line and takes a second or two to get
    there; 5.5 s measured at 2 x 450 veh/h); without the control a fifth of them cross within 1 s
    of one. Its discharge falls
    with the major flow (seed 0: 1,092 veh/h at 2 x 300, 351 at 2 x 600, against the HCM's 834
    and 374), the major road is not held up, no collisions, exact conservation."""
    def lags(junction):
        res = ts.simulate(_cross(1500.0, 450.0, junction=junction, duration_s=900.0), engine="micro", seed=2,
                          trajectories={"every_s": 0.5, "max_vehicles": 2000})
        check_invariants(res)
        return crossing_lags(res, [("E-in", "W-out")], [("N-in", "S-out"), ("S-in", "N-out")])

    given_way, free = lags(True), lags(False)
    assert given_way.size > 50 and given_way.min() >= 3.0
    assert np.mean(free < 1.0) > 0.1
    rates = []
    for major_vph in (300.0, 600.0):
        res = ts.simulate(_cross(1500.0, major_vph), engine="micro", seed=0)
        rates.append(_rate(res, "E->W"))
        assert not_held_up(res, "N->S", major_vph) and not_held_up(res, "S->N", major_vph)
    assert 1500.0 * 0.8 > rates[0] > 2.0 * rates[1] > 0.0


def _all_through(vph, duration_s=1800.0):
    """The cross under ``right_before_left``, ``vph`` through each approach: the four through
    streams give way to each other in a cycle."""
    sc = cross_junction(demand_vph=0.0, duration_s=duration_s)
    d = ts.Demand()
    for a, b in (("N", "S"), ("E", "W"), ("S", "N"), ("W", "E")):
        d.add(a, b, [(0, vph)])
    return ts.Scenario(sc.network, d, duration_s, controls=[PriorityJunction("C", rule="right_before_left")],
                       name="right-before-left")


def test_right_before_left_with_every_approach_loaded_shares_the_junction():
    """Four through streams of 1,500 veh/h (on 2 lanes each), each giving way to the one on its
    right: neither engine deadlocks or starves an approach (the cycle used to leave one approach
    waiting for ever on micro, and the macro caps depended on the order of the approaches).
    Macro: each stream flows at the fixed point of the gap-acceptance capacity through the
    stream on its right, q = 2 C(q) (2 lanes serve it; C of ``permitted_flow_vps``); micro: every
    approach passes a share, none less than 60% of the best one's, no collisions."""
    sc = _all_through(1500.0)
    lo, hi = 0.0, 1500.0 / 3600.0
    for _ in range(60):            # q - 2 C(q) rises with q: bisect its root
        q = 0.5 * (lo + hi)
        lo, hi = (q, hi) if q < 2 * permitted_flow_vps(q, *PRIORITY_GAPS_S["minor_through"]) else (lo, q)
    fixed = 3600.0 * lo
    res = ts.simulate(sc, engine="macro")
    rates = [_rate(res, od) for od in ("N->S", "E->W", "S->N", "W->E")]
    assert res.conservation_error() < 1e-6
    assert max(rates) - min(rates) < 1e-6 * max(rates)
    assert rates[0] == pytest.approx(fixed, rel=0.03)
    assert 500.0 < fixed < 1500.0
    res = ts.simulate(sc, engine="micro", seed=0, trajectories={"every_s": 0.5, "max_vehicles": 6000})
    check_invariants(res)
    rates = [_rate(res, od) for od in ("N->S", "E->W", "S->N", "W->E")]
    assert min(rates) > 0.6 * max(rates) > 0.0, rates


# ---------------------------------------------------------------------------------- SUMO
def test_sumo_export_makes_the_same_road_major(tmp_path):
    """The junction is a SUMO ``priority`` junction whose major road is the control's, also when
    it is not the one netconvert would pick (the east-west road here: all legs are equal)."""
    import sumolib

    from trafficsim.sumo_io import export_scenario

    sc = _cross(600.0, 300.0, major=("E-in", "W-in"))
    exp = export_scenario(sc, tmp_path)
    sn = sumolib.net.readNet(str(exp.net_file))
    assert sn.getNode("C").getType() == "priority"
    states = {}
    for e in sn.getNode("C").getIncoming():
        for c in e.getOutgoing().values():
            for con in c:
                states.setdefault(e.getID(), set()).add(con.getState())
    # through movements of the major road have right of way ('M'), everything of the minor road yields ('m')
    assert "M" in states["E-in"] and "M" in states["W-in"]
    assert states["N-in"] == {"m"} and states["S-in"] == {"m"}


def test_sumo_export_of_right_before_left(tmp_path):
    import sumolib

    from trafficsim.sumo_io import export_scenario

    exp = export_scenario(_all_through(600.0, duration_s=60.0), tmp_path)
    node = sumolib.net.readNet(str(exp.net_file)).getNode("C")
    assert node.getType() == "right_before_left"


def test_a_node_takes_one_junction_control_and_a_merge_signal_replaces_the_give_way_rules():
    signalised = cross_junction()
    both = signalised.replace(controls=[*signalised.controls, PriorityJunction("C")])
    with pytest.raises(ControlError, match="node 'C' has a signal and a priority junction"):
        both.validate()
    for engine in ("macro", "micro"):
        with pytest.raises(ControlError, match="a node takes one junction control"):
            ts.simulate(both.replace(duration_s=60.0), engine=engine)
    from trafficsim.measures import MergeMetering

    sc = _cross(600.0, 300.0)
    metered = MergeMetering(node="C").apply(sc)
    assert [type(c).__name__ for c in metered.controls] == ["FixedTimeSignal"]
    metered.validate()


def test_priority_junctions_at_every_unsignalised_meeting_of_three_roads():
    """A 3 x 3 grid of two-way streets: the centre (4 roads), the edges' middles (3 roads) get a
    junction; the corners (2 roads) and a signalised node do not."""
    net = ts.Network()
    for i in range(3):
        for j in range(3):
            net.add_node(f"{i}{j}", 100.0 * j, 100.0 * i)
    for i in range(3):
        for j in range(3):
            for a, b in ((i + 1, j), (i, j + 1)):
                if a < 3 and b < 3:
                    net.add_link(f"{i}{j}-{a}{b}", f"{i}{j}", f"{a}{b}", length_m=100, lanes=1)
                    net.add_link(f"{a}{b}-{i}{j}", f"{a}{b}", f"{i}{j}", length_m=100, lanes=1)
    assert sorted(j.node for j in ts.control.priority_junctions(net)) == ["01", "10", "11", "12", "21"]
    sig = ts.FixedTimeSignal("11", (ts.Phase(30.0, (("01-11", "11-21"),)),))
    assert "11" not in {j.node for j in ts.control.priority_junctions(net, [sig])}


def test_new_signal_replaces_the_give_way_rules_and_trades_major_delay_for_minor_delay():
    """Signalising the priority cross (NewSignal): one phase per road with its left turns
    permitted, Webster timing from the peak demand; the minor road, starved by the major road's
    gaps, gets its share of the time and passes more, the major road waits at red now."""
    from trafficsim.control import permissive_yields
    from trafficsim.measures import MeasureError, NewSignal

    sc = _cross(1500.0, 600.0)
    sig = NewSignal(node="C").apply(sc)
    (plan,) = sig.controls
    assert isinstance(plan, ts.FixedTimeSignal) and len(plan.phases) == 2
    roads = [{a for a, _ in p.movements} for p in plan.phases]
    assert {frozenset(r) for r in roads} == {frozenset({"N-in", "S-in"}), frozenset({"E-in", "W-in"})}
    assert ("N-in", "E-out") in permissive_yields(sig.network, plan)    # lefts share the green, and give way
    assert 40.0 <= plan.cycle_s <= 120.0 and sig.meta["new_signal"]["Y"] > 0
    minor_green = next(p.green_s for p, r in zip(plan.phases, roads) if "E-in" in r)
    major_green = next(p.green_s for p, r in zip(plan.phases, roads) if "N-in" in r)
    assert minor_green > major_green                    # 1,500 veh/h on 2 lanes against 600 on 2
    for engine in ("macro", "micro"):
        before = ts.simulate(sc, engine=engine, seed=0)
        after = ts.simulate(sig, engine=engine, seed=0)
        assert _rate(after, "E->W") > 1.5 * _rate(before, "E->W"), engine
        assert after.conservation_error() < 1e-6
    with pytest.raises(MeasureError, match="already signalised; use SignalRetiming"):
        NewSignal(node="C").apply(sig)
    with pytest.raises(MeasureError, match="NewSignal.node: node 'X' is not in the network"):
        NewSignal(node="X").apply(sc)


def _star(angles):
    """A junction ``C`` of one-lane two-way roads ``in{k}``/``out{k}`` at ``angles`` [deg], at
    least 20 degrees apart (hypothesis drops other draws)."""
    gaps = [(b - a) % 360 for a, b in zip(angles, angles[1:] + angles[:1])]
    assume(min(gaps) >= 20)
    net = ts.Network()
    net.add_node("C", 0.0, 0.0)
    for k, a in enumerate(angles):
        net.add_node(f"L{k}", 300.0 * math.cos(math.radians(a)), 300.0 * math.sin(math.radians(a)))
        net.add_link(f"in{k}", f"L{k}", "C", length_m=300, lanes=1)
        net.add_link(f"out{k}", "C", f"L{k}", length_m=300, lanes=1)
    return net


@settings(max_examples=60, deadline=None)
@given(angles=st.lists(st.integers(0, 359), min_size=3, max_size=6, unique=True))
def test_give_way_relations_are_a_ranking_at_any_star_junction(angles):
    """At a junction of 3-6 two-way roads at any angles (at least 20 degrees apart): nobody
    gives way to its own approach; the major road's through movements and right turns give way
    to nobody; the relation has no cycle (the ranks order it), so no two streams wait for each
    other; of two streams one at most gives way to the other; a minor stream gives way to a
    major through movement or right turn that enters its exit."""
    angles = sorted(angles)
    net = _star(angles)
    j = PriorityJunction("C").validate(net)
    y = priority_yields(net, j)
    moves = [(f"in{a}", f"out{b}") for a in range(len(angles)) for b in range(len(angles)) if a != b]
    for mv, (ys, tc, tf) in y.items():
        assert all(o[0] != mv[0] for o in ys)
        assert tc > tf > 0
    for mv in moves:
        if mv[0] in j.major and mv in y:
            t = ts.control.turn_deg(net, *mv)
            assert t > ts.control.TURN_DEG                      # only the major road's left turns wait
    # no cycle: repeatedly remove movements that give way to nobody left
    left = {mv: set(y.get(mv, ((), 0, 0))[0]) for mv in moves}
    while left:
        free = [mv for mv, ys in left.items() if not (ys & set(left))]
        assert free, f"a cycle of give-way among {sorted(left)}"
        for mv in free:
            del left[mv]
    # antisymmetric; a minor stream gives way to a major through or right turn entering its exit
    for a in moves:
        for b in moves:
            if a in y and b in y and b in y[a][0]:
                assert a not in y[b][0]
            major_b = b[0] in j.major and ts.control.turn_deg(net, *b) <= ts.control.TURN_DEG
            if a[0] not in j.major and major_b and a[1] == b[1]:
                assert b in y[a][0]


@settings(max_examples=60, deadline=None)
@given(angles=st.lists(st.integers(0, 359), min_size=3, max_size=6, unique=True))
def test_right_before_left_gives_way_one_way_between_any_two_streams(angles):
    """At a ``right_before_left`` junction of 3-6 two-way roads at any angles (at least 20
    degrees apart): right turns give way to nobody; of two streams one at most gives way to the
    other; of two conflicting streams from legs that are not opposite one does, unless both turn
    right."""
    angles = sorted(angles)
    net = _star(angles)
    y = priority_yields(net, PriorityJunction("C", rule="right_before_left"))
    moves = [(f"in{a}", f"out{b}") for a in range(len(angles)) for b in range(len(angles)) if a != b]

    def right(mv):
        t = ts.control.turn_deg(net, *mv)
        return -(180.0 - ts.control.TURN_DEG) < t < -ts.control.TURN_DEG

    for a in moves:
        if right(a):
            assert a not in y
        for b in moves:
            ab, ba = a in y and b in y[a][0], b in y and a in y[b][0]
            assert not (ab and ba)
            ka, kb = int(a[0][2:]), int(b[0][2:])
            apart = abs((angles[ka] - angles[kb] + 180) % 360 - 180)
            crossing = a[0] != b[0] and (a[1] == b[1] or ts.control.paths_cross(net, "C", a, b))
            if crossing and apart < 180 - ts.control.TURN_DEG and not (right(a) and right(b)):
                assert ab or ba, (a, b)


def test_measures_that_cut_or_remove_an_approach_keep_the_priority_junction_valid():
    """A ramp meter's split renames the metered approach in the junction's major road (its last
    part enters the node now); a one-way loop that removes an approach drops it from there."""
    from trafficsim.measures import OneWayLoop, RampMetering

    sc = _cross(600.0, 300.0, major=("N-in", "S-in"))
    metered = RampMetering(link="N-in", mode="fixed", rate_vph=900.0).apply(sc)
    (j,) = [c for c in metered.controls if isinstance(c, PriorityJunction)]
    assert j.major == ("N-in-merge", "S-in")
    metered.validate()
    assert ts.simulate(metered.replace(duration_s=600.0), engine="macro").conservation_error() < 1e-6
    d = ts.Demand()
    d.add("E", "W", [(0, 600.0)])
    d.add("S", "N", [(0, 300.0)])
    looped = OneWayLoop(keep=("N-out",)).apply(sc.replace(demand=d))
    (j,) = [c for c in looped.controls if isinstance(c, PriorityJunction)]
    assert j.major == ("S-in",)
    looped.validate()


def test_a_one_way_loop_through_a_signalised_junction_drops_the_removed_movements():
    from trafficsim.measures import OneWayLoop

    sc = cross_junction(demand_vph=0.0, duration_s=600.0)
    d = ts.Demand()
    d.add("E", "W", [(0, 600.0)])
    d.add("S", "N", [(0, 300.0)])
    looped = OneWayLoop(keep=("N-out",)).apply(sc.replace(demand=d))
    (sig,) = looped.controls
    assert sig.cycle_s == sc.controls[0].cycle_s
    assert not any("N-in" in mv for p in sig.phases for mv in p.movements)
    assert ts.simulate(looped, engine="macro").conservation_error() < 1e-6


# ---------------------------------------------------------------------------------- left-hand traffic
def _mirrored(sc: ts.Scenario) -> ts.Scenario:
    """The scenario's map mirrored (y -> -y) on a keep-left network: the same junctions as seen
    by drivers who keep left."""
    from trafficsim.network import Node

    sc = sc.copy()
    sc.network.nodes = {k: Node(n.id, n.x, -n.y) for k, n in sc.network.nodes.items()}
    sc.network.left_hand = True
    return sc


def _turning_cross(control) -> ts.Scenario:
    sc = cross_junction(demand_vph=0.0, duration_s=1200.0)
    d = ts.Demand()
    for a, b in (("N", "S"), ("E", "W"), ("S", "N"), ("W", "E"), ("N", "E"), ("E", "S"), ("S", "W"), ("W", "N")):
        d.add(a, b, [(0, 400.0)])
    return sc.replace(demand=d, controls=[control])


@pytest.mark.parametrize("case", ["permissive signal", "priority", "right_before_left"])
def test_a_left_hand_network_is_the_mirror_image_of_a_right_hand_one(case):
    """Mirrored on the map and flagged ``left_hand``, a junction gives way, turns and uses its
    lanes exactly as the right-hand original: both engines give the same arrivals to the last bit
    (permitted turns across the opposing stream, derived lanes of an unmarked approach, a major
    road, give way to the right become give way to the left). Mirrored without the flag, the
    turns across traffic become kerb-side turns and the results differ."""
    sc = {"permissive signal": cross_junction(800.0, marks="none", phasing="permissive", duration_s=1200.0),
          "priority": _turning_cross(PriorityJunction("C")),
          "right_before_left": _turning_cross(PriorityJunction("C", rule="right_before_left"))}[case]
    mirror = _mirrored(sc)
    for engine in ("macro", "micro"):
        a = ts.simulate(sc, engine=engine, seed=1).data.route_arrived.values
        b = ts.simulate(mirror, engine=engine, seed=1).data.route_arrived.values
        assert a[-1].sum() > 500 and np.array_equal(a, b), engine
    mirror.network.left_hand = False
    assert not np.array_equal(a, ts.simulate(mirror, engine="micro", seed=1).data.route_arrived.values)
