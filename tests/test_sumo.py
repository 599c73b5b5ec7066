"""The ``sumo`` engine: common schema, conservation, capacity match, run-time controls, failures.

Networks are small and horizons short so the file runs in well under a minute; SUMO runs at a
1 s step here (the engine default is 0.5 s).
"""

import dataclasses

import numpy as np
import pytest

import trafficsim as ts
from trafficsim.control import AlineaMeter, Blocking, ControlError, FixedRateMeter, FixedTimeSignal, Phase
from trafficsim.engines import SimulationError
from trafficsim.engines import sumo as sumo_engine
from trafficsim.measures import RampMetering, TidalLane, VariableLane

from conftest import arrived_by_turn, cross_junction
from test_measures import merge_drop_sc, metered_merge

DT = 1.0


def chain(up_lanes=3, down_lanes=2, demand=4500, duration=600, length=500):
    net = ts.Network()
    net.add_node("A", 0, 0)
    net.add_node("B", length, 0)
    net.add_node("C", 2 * length, 0)
    net.add_link("up", "A", "B", length_m=length, lanes=up_lanes, free_speed_kmh=60)
    net.add_link("down", "B", "C", length_m=length, lanes=down_lanes, free_speed_kmh=60)
    d = ts.Demand()
    d.add("A", "C", [(0, demand)])
    return ts.Scenario(network=net, demand=d, duration_s=duration, name="chain")


def merge(main=3000, ramp=1200, duration=900):
    net = ts.Network()
    net.add_node("A", 0, 0)
    net.add_node("B", 1000, 0)
    net.add_node("C", 2000, 0)
    net.add_node("R", 600, -250)
    net.add_link("main", "A", "B", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("ramp", "R", "B", length_m=450, lanes=1, free_speed_kmh=80)
    net.add_link("down", "B", "C", length_m=1000, lanes=2, free_speed_kmh=80)
    d = ts.Demand()
    d.add("A", "C", [(0, main)], name="main")
    d.add("R", "C", [(0, ramp)], name="ramp")
    return ts.Scenario(network=net, demand=d, duration_s=duration, name="merge")


def two_way(demand_in=4000, demand_out=1200, duration=1800):
    """A 2+2-lane road B-C between 4-lane approaches, heavier inbound (A -> D) than outbound."""
    net = ts.Network()
    for n, x in zip("ABCD", (0, 500, 1500, 2000)):
        net.add_node(n, x, 0)
    net.add_link("in-up", "A", "B", length_m=500, lanes=4)
    net.add_link("in", "B", "C", length_m=1000, lanes=2)
    net.add_link("in-down", "C", "D", length_m=500, lanes=4)
    net.add_link("out-up", "D", "C", length_m=500, lanes=4)
    net.add_link("out", "C", "B", length_m=1000, lanes=2)
    net.add_link("out-down", "B", "A", length_m=500, lanes=4)
    d = ts.Demand()
    d.add("A", "D", [(0, demand_in)])
    d.add("D", "A", [(0, demand_out)])
    return ts.Scenario(net, d, duration, name="two-way")


def merge_drop(main=2800, ramp=1400, duration=1800):
    """An on-ramp onto 3 lanes and, 600 m on, a drop to 2: unmetered, the drop's queue spills back
    over the merge's detector (the network of test_measures)."""
    return merge_drop_sc(main, ramp, duration)


@pytest.fixture(scope="module")
def drop_runs():
    sc = chain(demand=4500, duration=600)
    return sc, ts.simulate(sc, engine="sumo", dt_s=DT), ts.simulate(sc, engine="macro")


def test_schema_matches_macro(drop_runs):
    _, rs, rm = drop_runs
    assert set(rs.data.data_vars) == set(rm.data.data_vars)
    assert rs.data.sizes == rm.data.sizes
    for v in rm.data.data_vars:
        assert rs.data[v].attrs["units"] == rm.data[v].attrs["units"]
    assert rs.engine == "sumo" and rs.data.attrs["engine"] == "sumo"
    assert set(rs.kpis.index) == set(rm.kpis.index)


def test_conservation(drop_runs):
    sc, rs, _ = drop_runs
    last = rs.data.isel(time=-1)
    demanded = float(last.route_demand.sum())
    departed = float(last.route_departed.sum())
    arrived = float(last.route_arrived.sum())
    waiting = float(last.origin_queue.sum())
    assert demanded == departed + waiting
    assert departed - arrived == rs.final_state["vehicles_inside"]
    assert rs.conservation_error() == 0.0
    # SUMO's flow emits at the demand rate: within one vehicle of the demanded integral
    assert abs(demanded - sc.demand.total(sc.duration_s)) <= 1.0
    # per link: what entered and has not left is still on it (or on a junction's internal lane)
    on_links = (last.cum_in - last.cum_out).values
    assert (on_links >= 0).all()
    assert on_links.sum() <= rs.final_state["vehicles_inside"]
    # the first link's inflow is the network's departures
    assert float(last.cum_in.sel(link="up")) == departed


def test_lane_drop_discharge_matches_capacity(drop_runs):
    _, rs, rm = drop_runs
    q_sumo = float(rs.data.outflow.sel(link="down")[-5:].mean())
    q_macro = float(rm.data.outflow.sel(link="down")[-5:].mean())
    assert q_macro == pytest.approx(3600, rel=1e-6)
    assert q_sumo == pytest.approx(q_macro, rel=0.05)
    # the queue stands on the wider upstream link in both engines
    assert float(rs.data.queue.sel(link="up")[-3:].mean()) > 20
    assert rs.kpis["bottleneck"] == rm.kpis["bottleneck"] == "up"


def test_micro_discharge_cross_check(drop_runs):
    """Micro against SUMO at the lane drop and the merge: the queue stands on the same link and
    micro's discharge is SUMO's within -15% / +5%. With the lane-change relaxation (default since
    issue 4) micro's 3-to-2 drop discharged at the downstream capacity: 3,586-3,632 veh/h over 55
    min, seeds 0-3, nominal 3,600 (off: 3,505-3,528). Since a lane change just past the node no
    longer cuts in front of a vehicle entering that lane (session 20, ``micro_base._entry_safe``)
    it passes 3,696-3,705 (2.7-2.9% above the nominal: the gaps of vehicles that changed lanes
    relax over 25 s, and the 500 m link is crossed in 30); the last 5 minutes of this 10-minute
    run read 3,612-3,708 (SUMO 3,588)."""
    for sc, rs in ((drop_runs[0], drop_runs[1]), (merge(), None)):
        rs = rs or ts.simulate(sc, engine="sumo", dt_s=DT)
        ru = ts.simulate(sc, engine="micro", seed=0)
        assert ru.conservation_error() < 1e-6
        q_sumo = float(rs.data.outflow.sel(link="down")[-5:].mean())
        q_micro = float(ru.data.outflow.sel(link="down")[-5:].mean())
        assert 0.85 * q_sumo <= q_micro <= 1.05 * q_sumo, (sc.name, q_micro, q_sumo)
        assert ru.kpis["bottleneck"] == rs.kpis["bottleneck"], sc.name


def test_undersaturated_flow_passes_at_free_speed():
    sc = chain(up_lanes=2, down_lanes=2, demand=1800, duration=600)
    rs = ts.simulate(sc, engine="sumo", dt_s=DT)
    out = rs.data.outflow.sel(link="down")[-5:].mean()
    assert float(out) == pytest.approx(1800, rel=0.03)
    speed = rs.data.speed.sel(link="up")[-5:].mean()
    assert float(speed) == pytest.approx(60, rel=0.03)
    assert rs.kpis["travel_time_index"] < 1.05


def test_on_ramp_joining_where_an_off_ramp_leaves_is_served():
    """A ramp joins a 2-lane road at the node where an off-ramp leaves it. As a 'priority'
    junction the ramp yielded to the nearly saturated main road and passed 2 vehicles in 15 min
    (macro 121); exported as a zipper (no two streams cross there) it passes its demand as on
    the macro engine, and the off-ramp and the main road keep theirs."""
    net = ts.Network()
    for n, x, y in (("A", 0, 0), ("B", 1000, 0), ("C", 2000, 0), ("R", 600, -250), ("O", 1500, -300)):
        net.add_node(n, x, y)
    net.add_link("main", "A", "B", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("ramp", "R", "B", length_m=450, lanes=1, free_speed_kmh=60)
    net.add_link("down", "B", "C", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("off", "B", "O", length_m=500, lanes=1, free_speed_kmh=60)
    d = ts.Demand()
    d.add("A", "C", [(0, 1800), (300, 2600)])
    d.add("R", "C", [(0, 500)])
    d.add("A", "O", [(0, 200)])
    sc = ts.Scenario(net, d, 900)
    out = {}
    for engine in ("macro", "sumo"):
        res = ts.simulate(sc, engine=engine, seed=0)
        out[engine] = {l: float(res.data["cum_out"].sel(link=l).isel(time=-1)) for l in ("main", "ramp", "off")}
    assert out["macro"]["ramp"] > 100
    for link in ("main", "ramp", "off"):
        assert out["sumo"][link] == pytest.approx(out["macro"][link], rel=0.1), link


def test_export_warns_where_sumo_gives_way_and_the_engines_cross_freely(tmp_path):
    """An unsignalised crossing without a PriorityJunction: netconvert makes it a priority
    junction whose minor streams give way, the engines let the streams cross. The export says so
    where the demand's paths cross, and is silent once the node has the control, at a merge and
    where the used movements only merge (pyproject turns any other warning into an error)."""
    from trafficsim.control import priority_junctions
    from trafficsim.sumo_io import write_plain_network

    net = ts.Network()
    for n, x, y in (("X", 0, 0), ("W", -500, 0), ("E", 500, 0), ("S", 0, -500), ("N", 0, 500)):
        net.add_node(n, x, y)
    for a, b in (("W", "X"), ("X", "E"), ("S", "X"), ("X", "N"), ("E", "X"), ("X", "W")):
        net.add_link(f"{a}{b}", a, b, length_m=500, lanes=1)

    def export(sc):
        (tmp_path / sc.name).mkdir()
        write_plain_network(sc, tmp_path / sc.name)

    crossing = ts.Demand()
    crossing.add("W", "E", [(0, 300)])
    crossing.add("S", "N", [(0, 300)])
    sc = ts.Scenario(net, crossing, 600, name="crossing")
    with pytest.warns(UserWarning, match=r"1 unsignalised node\(s\).*\('X'\).*priority_junctions"):
        export(sc)
    export(sc.replace(controls=priority_junctions(net), name="with-control"))
    merging = ts.Demand()            # S -> E turns right onto W -> E's exit: the paths merge, none crosses
    merging.add("W", "E", [(0, 300)])
    merging.add("S", "E", [(0, 300)])
    export(ts.Scenario(net, merging, 600, name="merging"))
    opposite = ts.Demand()           # both through movements of one road: side by side
    opposite.add("W", "E", [(0, 300)])
    opposite.add("E", "W", [(0, 300)])
    export(ts.Scenario(net, opposite, 600, name="opposite"))


def test_a_street_crossing_with_one_shared_exit_is_not_exported_as_a_zipper(tmp_path):
    """A right turn joins the through stream at a crossing while the cross street's through
    stream crosses both: only one exit takes several in-links, as where a ramp joins and an
    off-ramp leaves, but the streams cross. As a zipper junction SUMO's 10x10 grid city of such
    crossings completed 5,819 trips in 30 min instead of 9,844; it must stay a priority junction,
    while the ramp pair of the test above stays a zipper."""
    import xml.etree.ElementTree as ET

    from trafficsim.sumo_io import write_plain_network

    def node_type(sc, node):
        (tmp_path / sc.name).mkdir()
        files = write_plain_network(sc, tmp_path / sc.name)
        return {n.get("id"): n.get("type") for n in ET.parse(files["nod"]).getroot()}[node]

    net = ts.Network()
    for n, x, y in (("X", 0, 0), ("W", -500, 0), ("E", 500, 0), ("S", 0, -500), ("N", 0, 500)):
        net.add_node(n, x, y)
    for a, b in (("W", "X"), ("X", "E"), ("S", "X"), ("X", "N")):
        net.add_link(f"{a}{b}", a, b, length_m=500, lanes=2)
    d = ts.Demand()
    for o, dest in (("W", "E"), ("S", "E"), ("S", "N")):
        d.add(o, dest, [(0, 300)])
    with pytest.warns(UserWarning, match="'X'.*cross freely"):   # see the next test
        assert node_type(ts.Scenario(net, d, 600, name="crossing"), "X") == "priority"

    ramp = ts.Network()
    for n, x, y in (("A", 0, 0), ("B", 1000, 0), ("C", 2000, 0), ("R", 600, -250), ("O", 1500, -300)):
        ramp.add_node(n, x, y)
    ramp.add_link("main", "A", "B", length_m=1000, lanes=2)
    ramp.add_link("ramp", "R", "B", length_m=450, lanes=1)
    ramp.add_link("down", "B", "C", length_m=1000, lanes=2)
    ramp.add_link("off", "B", "O", length_m=500, lanes=1)
    d = ts.Demand()
    for o, dest in (("A", "C"), ("R", "C"), ("A", "O")):
        d.add(o, dest, [(0, 300)])
    assert node_type(ts.Scenario(ramp, d, 600, name="ramps"), "B") == "zipper"


@pytest.mark.parametrize("legs, offset", [(5, 0.1), (6, 0.0)])
def test_unsignalised_many_leg_junction_does_not_deadlock(legs, offset):
    """A star of two-way legs without signals or priorities, 20 veh/h per OD pair. Exported as a
    SUMO 'priority' junction, 5 legs (in and out 0.1 rad apart) and 6 legs (coincident) locked:
    three approaches discharged nothing after the first minute and 42-60% of the demand never
    arrived (macro and micro: all of it, travel time index ~1)."""
    import math

    net = ts.Network()
    net.add_node("X", 0.0, 0.0)
    for i in range(legs):
        a = 2 * math.pi * i / legs
        net.add_node(f"O{i}", 1000 * math.cos(a), 1000 * math.sin(a))
        net.add_node(f"D{i}", 900 * math.cos(a + offset), 900 * math.sin(a + offset))
        net.add_link(f"in{i}", f"O{i}", "X", length_m=800, lanes=2)
        net.add_link(f"out{i}", "X", f"D{i}", length_m=800, lanes=2)
    d = ts.Demand()
    for i in range(legs):
        for j in range(legs):
            if i != j:
                d.add(f"O{i}", f"D{j}", [(0, 20)])
    res = ts.simulate(ts.Scenario(net, d, 1200), engine="sumo", dt_s=DT)
    k = res.kpis
    last = res.data.isel(time=-1)
    for i in range(legs):
        assert float(last.cum_out.sel(link=f"in{i}")) >= float(last.cum_in.sel(link=f"in{i}")) - 3, f"in{i}"
    # in flight at the end: the demand rate times the free-flow trip (1,600 m at 50 km/h), doubled
    in_flight = legs * (legs - 1) * 20 / 3600 * 1600 / (50 / 3.6)
    assert k["inside"] <= 2 * in_flight and k["unserved"] <= 2
    assert k["travel_time_index"] < 1.5


def test_merge_discharge_cross_check():
    sc = merge()
    rs = ts.simulate(sc, engine="sumo", dt_s=DT)
    rm = ts.simulate(sc, engine="macro")
    q_sumo = float(rs.data.outflow.sel(link="down")[-5:].mean())
    q_macro = float(rm.data.outflow.sel(link="down")[-5:].mean())
    assert q_sumo == pytest.approx(q_macro, rel=0.10)


def test_lane_schedule_and_blocking_close_lanes():
    sc = chain(up_lanes=2, down_lanes=2, demand=3000, duration=900)
    sc.network.set_lane_schedule("down", [(300, 1), (600, 2)])
    rs = ts.simulate(sc, engine="sumo", dt_s=DT)
    out = rs.data.outflow.sel(link="down").values
    lanes = rs.data.lanes.sel(link="down").values
    assert lanes[3] == 2 and lanes[6] == 1 and lanes[-1] == 2
    assert np.mean(out[6:10]) == pytest.approx(1800, rel=0.10)
    blocked = chain(up_lanes=2, down_lanes=2, demand=3000, duration=600)
    blocked.controls.append(Blocking("down", 120, 600, lanes=1))
    rb = ts.simulate(blocked, engine="sumo", dt_s=DT)
    assert float(rb.data.outflow.sel(link="down")[-4:].mean()) == pytest.approx(1800, rel=0.10)
    assert float(rb.data.lanes.sel(link="down")[-2]) == 1  # the window ends at the horizon


def test_ramp_meter_caps_ramp_flow():
    sc = merge(main=1500, ramp=1200, duration=900)
    sc.controls.append(FixedRateMeter("ramp", ((0, 600),)))
    rs = ts.simulate(sc, engine="sumo", dt_s=0.5)
    ramp_out = float(rs.data.outflow.sel(link="ramp")[-10:].mean())
    assert ramp_out == pytest.approx(600, rel=0.10)
    assert float(rs.data.origin_queue.sel(origin="R")[-1]) > 50  # the meter holds the ramp back


def test_a_meter_before_the_merge_costs_the_main_road_nothing_on_sumo():
    """SUMO, like micro (tests/test_measures.py), delivers what macro does once the meter's stop
    line stands 100 m before the merge: 2,895 against 2,896 vehicles on 2026-11-23 (2,772 with
    the line at the merge node, where the main road queued)."""
    sc = metered_merge()
    macro, rs = ts.simulate(sc, engine="macro"), ts.simulate(sc, engine="sumo", seed=0)
    assert float(rs.kpis["completed"]) == pytest.approx(float(macro.kpis["completed"]), rel=0.01)
    assert float(rs.data["queue"].sel(link="up").max()) < 30.0
    assert float(rs.data["cum_out"].sel(link="ramp").isel(time=-1)) == pytest.approx(600, rel=0.05)


def test_tidal_lane_reverses_coincident_lanes_on_sumo():
    sc = two_way()
    m = TidalLane(link="in", windows=((300.0, 1200.0),))
    v = m.apply(sc)
    sched = m.schedule(sc)
    opens_in, closes_out = sched["in"][0][0], sched["out"][0][0]
    rs = ts.simulate(v, engine="sumo", dt_s=DT)
    sw = rs.final_state["switched_lanes"]
    # the median lanes of the two directions are one reversible strip
    assert sw["lanes"] == ["in_2", "out_1"] and sw["coincident"] == {"in_2": "out_1", "out_1": "in_2"}
    t_end = rs.data["time"].values
    # permissions read back from SUMO follow the schedule (state during each interval's last step)
    for j, (ln, lid) in enumerate((("in_2", "in"), ("out_1", "out"))):
        full = v.network.links[lid].max_lanes
        expected = [v.network.links[lid].lanes_at(t - DT) == full for t in t_end]
        assert sw["open"][:, j].tolist() == expected, ln
    # at every opening the coincident lane is closed and empty: never open both ways at once
    openings = [e for e in sw["switches"] if e["action"] == "open"]
    assert [e["time_s"] for e in openings] == [opens_in, sched["out"][1][0]]
    for e in openings:
        assert e["open_after"] and not e["coincident_open"] and e["coincident_vehicles"] == 0
    # the reversed lane carries peak-direction flow in its window; the closed opposite lane none
    window = (t_end > opens_in + 60) & (t_end <= 1200)
    assert sw["entered"][window, 0].mean() * 60 > 1000           # veh/h on the reversed lane
    closed_out = (t_end > closes_out + 60) & (t_end <= 1200 + 60)
    assert sw["entered"][closed_out, 1].sum() == 0
    assert not sw["open"][closed_out, 1].any()
    # the peak direction discharges above its 2 lanes' capacity while it has 3
    q_in = rs.data["outflow"].sel(link="in").values
    assert q_in[window].mean() > 1.1 * 2 * 1800
    assert rs.conservation_error() == 0.0 and rs.final_state["teleports"] == 0


def test_variable_lane_switches_prebuilt_connections_on_sumo():
    net = ts.Network()
    for n, xy in {"A": (0, -1500), "S": (0, -500), "U": (0, 0), "N": (0, 700), "W": (-600, 0)}.items():
        net.add_node(n, *xy)
    net.add_link("feed", "A", "S", length_m=1000, lanes=3)
    net.add_link("app", "S", "U", length_m=500, lanes=3)
    net.add_link("north", "U", "N", length_m=700, lanes=3)
    net.add_link("left", "U", "W", length_m=600, lanes=1)
    d = ts.Demand()
    d.add("A", "N", [(0, 3000)], name="through")
    d.add("A", "W", [(0, 400)], name="left")
    sc = ts.Scenario(net, d, 1500, name="variable-lane")
    m = VariableLane(link="app", turn_to="left", windows=((300.0, 1200.0),))
    rs = ts.simulate(m.apply(sc), engine="sumo", dt_s=DT)
    sw = rs.final_state["switched_lanes"]
    # the pocket is no SUMO edge: its lane is app's median lane, whose through connection (a
    # junction-internal lane) is the one lane switched
    assert sw["lanes"] == [":U_0_2"]
    assert [(e["time_s"], e["action"], e["open_after"]) for e in sw["switches"]] == [
        (300.0, "close", False), (1200.0, "open", True)]
    t = rs.data["time"].values
    inside, outside = (t > 360) & (t <= 1200), (t > 120) & (t <= 300) | (t > 1260)
    assert not sw["open"][inside, 0].any() and sw["open"][outside, 0].all()      # read back from SUMO
    # through traffic uses the median lane only outside the window; turners still turn in it
    assert sw["entered"][inside, 0].sum() == 0 and sw["entered"][outside, 0].sum() > 50
    lanes = rs.data["lanes"]
    assert float(lanes.sel(link="app:pocket")[10]) == 1 and float(lanes.sel(link="app")[10]) == 2
    labels = list(rs.data["route"].values)
    arrived = rs.data["route_arrived"].isel(time=-1)
    assert float(arrived[labels.index("2:left (dedicated lane)")]) > 40
    assert rs.conservation_error() == 0.0 and rs.final_state["teleports"] == 0


def test_alinea_on_sumo_holds_occupancy_near_setpoint():
    sc = merge_drop()
    v = RampMetering(link="ramp", queue_override=0.0).apply(sc)
    meter = next(c for c in v.controls if isinstance(c, AlineaMeter))
    # the same detector without metering: the window opens after the horizon
    observer = sc.replace(controls=[dataclasses.replace(meter, start_s=sc.duration_s + 1, end_s=sc.duration_s + 2)])
    occ = []
    for scen in (v, observer):
        rs = ts.simulate(scen, engine="sumo", dt_s=DT)
        log = rs.final_state["controllers"]["ramp"]
        assert np.all(np.diff(log["time_s"]) == meter.interval_s)
        occ.append(float(np.mean(log["occupancy_pct"][log["time_s"] > 700])))
        assert rs.conservation_error() == 0.0
        if scen is v:
            assert float(rs.data["outflow"].sel(link="ramp")[-15:].mean()) < 0.9 * 1400   # the ramp is held back
            assert log["rate_vph"].min() < meter.validate(v.network).max_rate_vph   # the ramp's capacity
    assert abs(occ[0] - meter.setpoint_pct) < 2.5
    assert occ[1] > meter.setpoint_pct + 15.0     # unmetered, the drop's queue covers the detector


def test_signal_program_gives_green_share():
    net = ts.Network()
    for i, x in enumerate((0, 400, 800)):
        net.add_node("ABC"[i], x, 0)
    net.add_node("S", 400, -400)
    net.add_link("a", "A", "B", length_m=400, lanes=1, free_speed_kmh=50)
    net.add_link("s", "S", "B", length_m=400, lanes=1, free_speed_kmh=50)
    net.add_link("b", "B", "C", length_m=400, lanes=1, free_speed_kmh=50)
    d = ts.Demand()
    d.add("A", "C", [(0, 1500)])
    sig = FixedTimeSignal("B", (Phase(27, (("a", "b"),), 3, 0), Phase(27, (("s", "b"),), 3, 0)))
    sc = ts.Scenario(net, d, 900, [sig])
    rs = ts.simulate(sc, engine="sumo", dt_s=DT)
    rm = ts.simulate(sc, engine="macro")
    q_sumo = float(rs.data.outflow.sel(link="a")[-5:].mean())
    q_macro = float(rm.data.outflow.sel(link="a")[-5:].mean())
    assert q_macro == pytest.approx(1800 * 27 / 60, rel=0.05)  # green windows snap to the 2 s step
    # SUMO loses start-up time at each green (vehicles accelerate from rest): within 15%
    assert q_sumo == pytest.approx(q_macro, rel=0.15)
    unused = ts.Scenario(net, d, 300, [FixedTimeSignal("B", (Phase(30, (("s", "b"),)),))])
    with pytest.raises(ControlError, match="green in no phase"):   # Scenario.validate, before SUMO starts
        ts.simulate(unused, engine="sumo", dt_s=DT)


def test_protected_left_cross_below_saturation_agrees_with_macro():
    """A 4-leg cross with protected left phases, every movement below capacity: SUMO and macro
    pass the same vehicles per turn. (Until 2026-11-23 macro passed 2,446 of SUMO's 3,110: the
    vehicles waiting at red held back the approach's green movements, docs/models/ctm.md.)"""
    sc = cross_junction(800.0, marks="dedicated")
    rs = ts.simulate(sc, engine="sumo", dt_s=DT)
    rm = ts.simulate(sc, engine="macro")
    assert float(rm.kpis["completed"]) == pytest.approx(float(rs.kpis["completed"]), rel=0.02)
    sumo, macro = arrived_by_turn(rs), arrived_by_turn(rm)
    for turn in ("right", "through", "left"):
        assert macro[turn] == pytest.approx(sumo[turn], rel=0.05), turn


@pytest.mark.slow
def test_protected_left_cross_above_saturation_agrees_with_macro_by_lane_group():
    """The same cross at 1,400 veh/h per approach: the left turns (280 veh/h against 208 that
    their phase serves) queue in their lane. With lane groups (the default) the macro engine's
    through and right-turn vehicles pass beside that queue, as SUMO's do, and each turn arrives
    within 5% of SUMO's (at the engines' default steps, through / right / left: 3,760 / 537 / 812
    against 3,693 / 530 / 854, docs/models/ctm.md); with one queue per link they are held behind
    it (2,873 through)."""
    sc = cross_junction(1400.0, marks="dedicated")
    sumo = arrived_by_turn(ts.simulate(sc, engine="sumo", dt_s=DT))
    macro = arrived_by_turn(ts.simulate(sc, engine="macro"))
    for turn in ("right", "through", "left"):
        assert macro[turn] == pytest.approx(sumo[turn], rel=0.05), (turn, macro, sumo)
    fifo = arrived_by_turn(ts.simulate(sc, engine="macro", lane_groups=False))
    assert fifo["through"] < 0.85 * sumo["through"]


def test_traci_backend_agrees_with_libsumo():
    sc = chain(up_lanes=2, down_lanes=1, demand=2400, duration=300)
    a = ts.simulate(sc, engine="sumo", dt_s=DT, backend="libsumo")
    b = ts.simulate(sc, engine="sumo", dt_s=DT, backend="traci")
    assert b.data.attrs["sumo_backend"] == "traci"
    np.testing.assert_allclose(a.data.cum_out.values, b.data.cum_out.values)
    np.testing.assert_allclose(a.data.vht.values, b.data.vht.values, rtol=1e-3)


def test_traci_backend_runs_alinea_and_tidal_lanes_like_libsumo():
    v = RampMetering(link="ramp", queue_override=0.5).apply(merge_drop(duration=600))
    logs = [ts.simulate(v, engine="sumo", dt_s=DT, backend=b).final_state["controllers"]["ramp"]
            for b in ("libsumo", "traci")]
    np.testing.assert_allclose(logs[0]["occupancy_pct"], logs[1]["occupancy_pct"])
    np.testing.assert_allclose(logs[0]["rate_vph"], logs[1]["rate_vph"])
    w = TidalLane(link="in", windows=((120.0, 400.0),)).apply(two_way(duration=600))
    sw = [ts.simulate(w, engine="sumo", dt_s=DT, backend=b).final_state["switched_lanes"] for b in ("libsumo", "traci")]
    assert (sw[0]["open"] == sw[1]["open"]).all() and sw[1]["open"].any() and not sw[1]["open"].all()


def test_failing_sumo_gives_clear_error_and_no_leftovers(monkeypatch, tmp_path):
    import libsumo

    real_export = sumo_engine.export_scenario

    def broken_export(*args, **kwargs):
        exp = real_export(*args, **kwargs)
        exp.additional_file.write_text("<additional><notAnElement/></additional", encoding="utf-8")
        return exp

    monkeypatch.setattr(sumo_engine, "export_scenario", broken_export)
    sc = chain(duration=120)
    for backend in ("libsumo", "traci"):
        with pytest.raises(SimulationError, match="SUMO failed"):
            ts.simulate(sc, engine="sumo", dt_s=DT, backend=backend, keep_files=tmp_path / backend)
    assert not libsumo.simulation.isLoaded()
    monkeypatch.undo()
    # a working run afterwards: nothing was left half-open
    assert ts.simulate(sc, engine="sumo", dt_s=DT).kpis["entered"] > 0


@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_wall_clock_timeout(backend, monkeypatch):
    """A run past ``timeout_s`` of wall time raises and leaves nothing open. The engine's clock
    is replaced by one that advances 10 s per reading, so the contract is checked without
    depending on how fast this machine runs SUMO."""
    import itertools

    import libsumo

    import trafficsim.engines.sumo as sumo_engine

    ticks = itertools.count(0.0, 10.0)
    monkeypatch.setattr(sumo_engine, "_clock", lambda: next(ticks))
    sc = chain(demand=4500, duration=3600)
    with pytest.raises(SimulationError, match="timeout_s"):
        ts.simulate(sc, engine="sumo", dt_s=0.25, backend=backend, timeout_s=15.0, record_interval_s=30)
    assert not libsumo.simulation.isLoaded()


def test_bad_backend_name():
    with pytest.raises(SimulationError, match="backend"):
        ts.simulate(chain(duration=60), engine="sumo", backend="gui")


def test_bus_bay_does_not_count_parking_buses_as_link_flow():
    """A bus parking in a bay leaves its lane and re-enters it: SUMO's edgeData counts that as
    ``left`` and ``entered``. The link counts must still chain over the node and add up to the
    vehicles inside (a bus is counted once into and once out of each link)."""
    net = ts.Network()
    for n, x in zip("ABC", (0, 600, 1200)):
        net.add_node(n, x, 0)
    net.add_link("u", "A", "B", length_m=600, lanes=2)
    net.add_link("d", "B", "C", length_m=600, lanes=2)
    d = ts.Demand()
    d.add("A", "C", [(0, 1200)])
    d.add("A", "C", [(0, 60)], vehicle_class="bus")
    sc = ts.Scenario(net, d, 900, controls=[ts.BusStop("d", 300, bay=True)])
    rs = ts.simulate(sc, engine="sumo", dt_s=DT)
    last = rs.data.isel(time=-1)
    assert rs.data.route_arrived.sel(route=rs.data.route.values[1])[-1] >= 10  # buses did stop and leave
    assert np.array_equal(rs.data.cum_out.sel(link="u").values, rs.data.cum_in.sel(link="d").values)
    assert float(last.cum_out.sel(link="d")) == rs.kpis["completed"]
    assert float((last.cum_in - last.cum_out).sum()) == rs.kpis["inside"]
    assert rs.conservation_error() == 0.0


def test_a_meter_on_a_link_leaving_the_network_is_a_clear_error_on_sumo():
    """SUMO meters a link's connections at a traffic light; where the network ends there is
    neither (haizhu-inner-streets meters its exit 'exit-east'): the error names the meter's link
    and node and says what to do, before SUMO starts (it read "SUMO failed at t=0 s: 'E'")."""
    sc = ts.scenarios.load("haizhu-inner-streets")
    with pytest.raises(ts.SimulationError, match=r"meter on link 'exit-east' ends at node 'E', where the network ends"):
        ts.simulate(sc, engine="sumo")
