"""CTM engine against analytic traffic-flow solutions (LWR, Daganzo merge/diverge, signals).

Every check derives its expected value from the scenario's own parameters.
"""

import math
import numpy as np
import pytest

import trafficsim as ts
from conftest import always_green_cross, corridor, left_turn_rate, marked_signal

VF, Q, KJ = 100.0, 2000.0, 150.0           # km/h, veh/h/lane, veh/km/lane
W = Q / (KJ - Q / VF)                       # backward wave speed, km/h


def test_lwr_bottleneck_discharge_shock_speed_and_storage():
    """2 lanes into 1 lane, demand 3600 veh/h above the 2000 veh/h bottleneck capacity (anchors V7)."""
    qa, qb = 3600.0, Q
    ka = qa / VF                            # free-flow upstream state, veh/km
    kb = 2 * KJ - qb / W                    # congested upstream state at bottleneck flow
    shock_kmh = (qb - qa) / (kb - ka)       # negative: moves upstream
    assert shock_kmh == pytest.approx(-11.94, abs=0.01)
    L_up, dt = 10000.0, 3.6
    sc = corridor(lanes=(2, 1), lengths=(L_up, 2000.0), demand=[(0, qa)], duration=1800)
    res = ts.simulate(sc, dt_s=dt, record_interval_s=dt, record_cells=True)
    ds = res.data
    # discharge equals the bottleneck capacity once the queue stands
    t_arrive = L_up / (VF / 3.6)            # first vehicles reach the bottleneck
    discharge = ds.outflow.sel(link="L1").where(ds.time > t_arrive + 2 * 2000 / (VF / 3.6)).dropna("time")
    assert float(discharge.mean()) == pytest.approx(qb, rel=0.01)
    # the queue tail follows the shock within one cell
    up = ds.cell_density.where(ds.cell_link == "L0", drop=True)
    dx = float(np.diff(up.cell_x.values)[0])
    for t in (600.0, 1200.0, 1800.0):
        row = up.sel(time=t, method="nearest")
        congested = row.cell_x.values[row.values > (ka + kb) / 2]
        expected = L_up + shock_kmh / 3.6 * (t - t_arrive)
        assert abs(congested.min() - dx / 2 - expected) <= dx + 1e-6
    # stored vehicles = (qa - qb) (t - t_arrive)
    stored = float(ds.cum_in.sel(link="L0")[-1] - ds.cum_out.sel(link="L0")[-1]) - ka * L_up / 1000
    assert stored == pytest.approx((qa - qb) * (1800 - t_arrive) / 3600, rel=0.01)
    assert res.conservation_error() < 1e-6


def test_free_flow_travel_time_is_length_over_speed():
    sc = corridor(lanes=(2, 2), lengths=(3000.0, 2000.0), demand=[(0, 1000), (600, 0)], duration=1200)
    dt = 1.8
    res = ts.simulate(sc, dt_s=dt, record_interval_s=dt)
    ds = res.data
    n_in = ds.route_departed.isel(route=0).values
    n_out = ds.route_arrived.isel(route=0).values
    # mean travel time = area between the cumulative curves / vehicles (FIFO)
    mean_tt = float(np.sum(n_in - n_out) * dt / n_in[-1])
    assert n_out[-1] == pytest.approx(n_in[-1], abs=1e-6)
    assert mean_tt == pytest.approx(5000.0 / (VF / 3.6), abs=dt)
    assert res.kpis["delay_vh"] == pytest.approx(0.0, abs=1e-6)
    assert res.kpis["travel_time_index"] == pytest.approx(1.0, abs=1e-6)


def _merge(demand_a, demand_b, lanes=(2, 1), priority=(None, None)):
    net = ts.Network()
    for n in ("A", "B", "M", "D"):
        net.add_node(n)
    net.add_link("a", "A", "M", length_m=3000, lanes=lanes[0], free_speed_kmh=VF, capacity_vph_per_lane=Q,
                 jam_density_vpkm_per_lane=KJ, priority=priority[0])
    net.add_link("b", "B", "M", length_m=3000, lanes=lanes[1], free_speed_kmh=VF, capacity_vph_per_lane=Q,
                 jam_density_vpkm_per_lane=KJ, priority=priority[1])
    net.add_link("out", "M", "D", length_m=2000, lanes=2, free_speed_kmh=VF, capacity_vph_per_lane=Q,
                 jam_density_vpkm_per_lane=KJ)
    d = ts.Demand()
    d.add("A", "D", [(0, demand_a)])
    d.add("B", "D", [(0, demand_b)])
    return ts.simulate(ts.Scenario(net, d, 3600), dt_s=3.6, record_interval_s=36.0)


def _late(da):
    return float(da.where(da.time > 1800).dropna("time").mean())


def test_merge_both_congested_splits_by_capacity():
    res = _merge(4000, 2000)               # 6000 > 4000 downstream capacity
    qa, qb = _late(res.data.outflow.sel(link="a")), _late(res.data.outflow.sel(link="b"))
    assert qa + qb == pytest.approx(2 * Q, rel=1e-3)
    assert qa / qb == pytest.approx(2.0, rel=1e-3)   # capacity-proportional: 2 lanes vs 1 lane


def test_merge_follows_configured_priorities():
    res = _merge(4000, 2000, priority=(3.0, 1.0))
    qa, qb = _late(res.data.outflow.sel(link="a")), _late(res.data.outflow.sel(link="b"))
    assert qa + qb == pytest.approx(2 * Q, rel=1e-3)
    assert qa / qb == pytest.approx(3.0, rel=1e-3)
    # a priority share above what an input can send goes to the other input
    res = _merge(4000, 2000, priority=(1.0, 3.0))
    qa, qb = _late(res.data.outflow.sel(link="a")), _late(res.data.outflow.sel(link="b"))
    assert qb == pytest.approx(Q, rel=1e-3)                # b is capped by its own 1-lane capacity
    assert qa == pytest.approx(2 * Q - qb, rel=1e-3)


def test_merge_light_input_gets_all_its_demand():
    res = _merge(4000, 500)
    qa, qb = _late(res.data.outflow.sel(link="a")), _late(res.data.outflow.sel(link="b"))
    assert qb == pytest.approx(500, rel=1e-3)
    assert qa == pytest.approx(2 * Q - 500, rel=1e-3)
    assert res.kpis["bottleneck"] == "a"


def test_diverge_fifo_spills_back_to_the_shared_upstream():
    """A branch blocked downstream holds back the vehicles for the free branch too (FIFO)."""
    net = ts.Network()
    for n in ("A", "M", "B", "C", "Bx"):
        net.add_node(n)
    kw = dict(free_speed_kmh=VF, capacity_vph_per_lane=Q, jam_density_vpkm_per_lane=KJ)
    net.add_link("up", "A", "M", length_m=4000, lanes=2, **kw)
    net.add_link("to_b", "M", "B", length_m=1000, lanes=1, **kw)
    net.add_link("b_exit", "B", "Bx", length_m=1000, lanes=1, **kw)
    net.add_link("to_c", "M", "C", length_m=1000, lanes=2, **kw)
    d = ts.Demand()
    d.add("A", "Bx", [(0, 1000)])
    d.add("A", "C", [(0, 2000)])
    exit_meter = ts.FixedRateMeter("b_exit", ((0, 500.0),))   # e.g. a downstream signal
    res = ts.simulate(ts.Scenario(net, d, 3600, [exit_meter]), dt_s=3.6, record_interval_s=36.0)
    ds = res.data
    to_b, to_c = _late(ds.inflow.sel(link="to_b")), _late(ds.inflow.sel(link="to_c"))
    # the B branch discharges 500 veh/h downstream; FIFO keeps the 1:2 mix, so C gets 1000, not 2000
    assert to_b == pytest.approx(500, rel=0.02)
    assert to_c == pytest.approx(2 * to_b, rel=0.02)
    assert float(ds.queue_length.sel(link="up").isel(time=-1)) > 1000  # spilled back onto the shared link
    assert res.conservation_error() < 1e-6


def test_every_vehicle_exits_at_its_route_destination():
    net = ts.Network()
    for n in ("A", "M", "B", "C"):
        net.add_node(n)
    net.add_link("up", "A", "M", length_m=2000, lanes=2)
    net.add_link("mb", "M", "B", length_m=1000, lanes=1)
    net.add_link("mc", "M", "C", length_m=1000, lanes=1)
    d = ts.Demand()
    d.add("A", "B", [(0, 600), (1200, 0)])
    d.add("A", "C", [(0, 300), (1200, 0)])
    ds = ts.simulate(ts.Scenario(net, d, 2400)).data
    last = ds.isel(time=-1)
    assert float(last.cum_out.sel(link="mb")) == pytest.approx(200, abs=1e-6)
    assert float(last.cum_out.sel(link="mc")) == pytest.approx(100, abs=1e-6)
    assert list(last.route_arrived.values) == pytest.approx([200, 100], abs=1e-6)


def test_signal_discharge_is_saturation_flow_times_green_share():
    net = ts.Network()
    for n in ("A", "S", "B"):
        net.add_node(n)
    net.add_link("app", "A", "S", length_m=1000, lanes=2, free_speed_kmh=50, capacity_vph_per_lane=1800)
    net.add_link("exit", "S", "B", length_m=500, lanes=2, free_speed_kmh=50, capacity_vph_per_lane=1800)
    sig = ts.FixedTimeSignal("S", (ts.Phase(40, (("app", "exit"),), amber_s=3, all_red_s=2),
                                   ts.Phase(40, (), amber_s=3, all_red_s=2)))
    d = ts.Demand()
    d.add("A", "B", [(0, 3000)])
    res = ts.simulate(ts.Scenario(net, d, 3600, [sig]), dt_s=1.0, record_interval_s=90.0)
    out = res.data.outflow.sel(link="app").where(res.data.time > 900).dropna("time")
    assert float(out.mean()) == pytest.approx(2 * 1800 * 40 / 90, rel=0.01)
    assert res.kpis["bottleneck"] == "app"


def test_lane_drop_in_time_keeps_vehicles_and_drains_them():
    """A loaded 3-lane link drops to 1 lane: it holds more than its new storage; nobody vanishes."""
    net = ts.Network()
    for n in ("A", "B", "C"):
        net.add_node(n)
    net.add_link("a", "A", "B", length_m=2000, lanes=3, lane_schedule=[(900, 1)])
    net.add_link("b", "B", "C", length_m=500, lanes=1)
    d = ts.Demand()
    d.add("A", "C", [(0, 1800), (900, 0)])
    meter = ts.FixedRateMeter("b", ((0, 600.0),))
    res = ts.simulate(ts.Scenario(net, d, 7200, [meter]), dt_s=2.0, record_interval_s=60.0)
    ds = res.data
    assert res.conservation_error() < 1e-6
    assert float(ds.lanes.sel(link="a").sel(time=960)) == 1
    on_a = ds.cum_in.sel(link="a") - ds.cum_out.sel(link="a")
    jam_1_lane = 150 * 2.0
    assert float(on_a.sel(time=960)) < jam_1_lane          # (demand was moderate) stored within jam
    assert float(ds.route_arrived.isel(time=-1).sum()) == pytest.approx(450, abs=1e-6)


def test_lane_closure_while_overfull_never_creates_negative_supply():
    net = ts.Network()
    for n in ("A", "B", "C"):
        net.add_node(n)
    net.add_link("a", "A", "B", length_m=1000, lanes=3, lane_schedule=[(1200, 1), (2400, 3)])
    net.add_link("b", "B", "C", length_m=500, lanes=1)
    d = ts.Demand()
    d.add("A", "C", [(0, 5000), (1200, 0)])
    meter = ts.FixedRateMeter("b", ((0, 300.0),))
    res = ts.simulate(ts.Scenario(net, d, 9000, [meter]), dt_s=2.0, record_interval_s=60.0, record_cells=True)
    cells = res.data.cell_density.where(res.data.cell_link == "a", drop=True)
    # the link was fuller than 1-lane jam density when the lanes closed, and it stays that way a while
    assert float(cells.sel(time=1260).max()) > 150.0
    assert float(res.data.cell_density.min()) >= 0.0
    assert res.conservation_error() < 1e-6
    assert float(res.data.origin_queue.isel(time=-1).sum()) + float(res.kpis["inside"]) + float(
        res.kpis["completed"]) == pytest.approx(float(res.kpis["demand"]), abs=1e-6)


def test_finer_step_converges():
    """The density field converges to the LWR solution (L1 error over the road) as dt shrinks."""
    qa, L_up = 3600.0, 10000.0
    ka, kb = qa / VF, 2 * KJ - Q / W
    shock = (Q - qa) / (kb - ka) / 3.6                      # m/s
    t, t_arrive = 1500.0, L_up / (VF / 3.6)

    def l1_error(dt):
        sc = corridor(lanes=(2, 1), lengths=(L_up, 2000.0), demand=[(0, qa)], duration=t)
        ds = ts.simulate(sc, dt_s=dt, record_interval_s=dt, record_cells=True).data
        up = ds.cell_density.where(ds.cell_link == "L0", drop=True).isel(time=-1)
        x = up.cell_x.values
        exact = np.where(x < L_up + shock * (t - t_arrive), ka, kb)
        return float(np.sum(np.abs(up.values - exact)) * (x[1] - x[0]) / 1000.0)   # vehicles

    errors = [l1_error(dt) for dt in (3.6, 1.8, 0.9)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.7 * errors[0] and errors[2] < 20.0   # a few vehicles out of ~3000 on the road


def test_capacity_drop_lowers_queue_discharge():
    sc = corridor(lanes=(2, 1), lengths=(5000.0, 1000.0), demand=[(0, 3000)], duration=3600)
    base = ts.simulate(sc, dt_s=3.6, record_interval_s=36.0)
    drop = ts.simulate(sc, dt_s=3.6, record_interval_s=36.0, capacity_drop=0.1)
    assert base.kpis["bottleneck_discharge_vph"] == pytest.approx(Q, rel=0.01)
    assert drop.kpis["bottleneck_discharge_vph"] == pytest.approx(0.9 * Q, rel=0.01)


def test_demand_beyond_entry_capacity_waits_in_origin_queue():
    """3000 veh/h for 30 min onto a 2000 veh/h road: 500 vehicles wait, then all enter."""
    sc = corridor(lanes=(1, 1), lengths=(1000.0, 1000.0), demand=[(0, 3000), (1800, 0)], duration=3600)
    res = ts.simulate(sc, dt_s=1.8, record_interval_s=36.0)
    ds, k = res.data, res.kpis
    at_peak_end = ds.sel(time=1800)
    assert float(at_peak_end.route_departed.sum()) == pytest.approx(Q * 0.5, rel=0.01)
    assert float(at_peak_end.origin_queue.sum()) == pytest.approx(500, rel=0.02)
    assert k["demand"] == pytest.approx(1500, abs=1e-6)
    assert k["entered"] == pytest.approx(1500, abs=1e-6)
    assert k["unserved"] == pytest.approx(0, abs=1e-6)
    # queue grows at 1000 veh/h for 0.5 h, drains at 2000 veh/h for 0.25 h: 0.5 * 500 * 0.75 veh h
    assert k["origin_wait_vh"] == pytest.approx(187.5, rel=0.02)
    assert res.conservation_error() < 1e-6


def test_cfl_violation_is_a_clear_error():
    sc = corridor(lanes=(1, 1), lengths=(100.0, 1000.0))
    with pytest.raises(ts.SimulationError, match="link 'L0': CFL violated"):
        ts.simulate(sc, dt_s=5.0, record_interval_s=60.0)


def test_default_step_ends_the_run_at_its_horizon():
    """Recorded every 7 s, 1,000 s leave a last interval of 6 s: the default step divides both
    (1 s), so the run ends at 1,000 s, not at 1,001 s (3.5 s steps), and demands 1,000 s of it."""
    from trafficsim.engines.macro import default_dt

    sc = corridor().replace(duration_s=1000.0)
    assert default_dt(sc, 7.0) == pytest.approx(1.0)
    assert default_dt(sc, 60.0) == default_dt(sc.replace(duration_s=960.0), 60.0)  # 40 s divides too
    res = ts.simulate(sc, record_interval_s=7.0)
    assert float(res.data["time"][-1]) == 1000.0
    assert float(res.kpis["demand"]) == pytest.approx(sum(f.total(1000.0) for f in sc.demand.flows), abs=1e-9)
    assert res.conservation_error() < 1e-6


def test_record_interval_must_be_a_multiple_of_the_step():
    with pytest.raises(ts.SimulationError, match="whole multiple of dt_s"):
        ts.simulate(corridor(), dt_s=3.6, record_interval_s=60.0)


@pytest.mark.parametrize("engine", ["macro", "micro"])
@pytest.mark.parametrize("name, value", [("record_interval_s", 0), ("record_interval_s", -60.0),
                                         ("record_interval_s", math.nan), ("record_interval_s", "60"),
                                         ("dt_s", "1"), ("dt_s", math.inf), ("dt_s", True)])
def test_bad_step_or_record_interval_is_a_clear_error(engine, name, value):
    """Before the fix the macro engine's default step divided by a zero record interval
    (ZeroDivisionError), took int() of a NaN (ValueError) or divided a string (TypeError)."""
    kw = {"record_interval_s": 60.0, "dt_s": None if engine == "macro" else 0.5, name: value}
    with pytest.raises(ts.SimulationError, match=f"{name} must be a finite number > 0"):
        ts.simulate(corridor(), engine=engine, **kw)


@pytest.mark.parametrize("engine", ["macro", "micro"])
def test_numpy_step_and_record_interval_are_accepted(engine):
    """A step or interval computed with numpy (np.int64, np.float32) is a number like any other."""
    res = ts.simulate(corridor(duration=600.0), engine=engine, dt_s=np.float32(0.5), record_interval_s=np.int64(120))
    assert res.data["time"].values.tolist() == [120.0, 240.0, 360.0, 480.0, 600.0]


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(ts.SimulationError, match="unknown engine 'warp'"):
        ts.simulate(corridor(), engine="warp")


def test_capacity_drop_is_not_triggered_by_a_metered_queue():
    """A ramp queue held by its meter does not lower the merge's capacity; an unmetered one does."""
    def run(meter_vph):
        net = ts.Network()
        for n in ("A", "R", "M", "D"):
            net.add_node(n)
        kw = dict(free_speed_kmh=VF, capacity_vph_per_lane=Q, jam_density_vpkm_per_lane=KJ)
        net.add_link("main", "A", "M", length_m=3000, lanes=2, **kw)
        net.add_link("ramp", "R", "M", length_m=1000, lanes=1, **kw)
        net.add_link("out", "M", "D", length_m=2000, lanes=2, **kw)
        d = ts.Demand()
        d.add("A", "D", [(0, 3000)])
        d.add("R", "D", [(0, 1500)])
        controls = [ts.FixedRateMeter("ramp", ((0, meter_vph),))] if meter_vph else []
        res = ts.simulate(ts.Scenario(net, d, 3600, controls), dt_s=3.6, record_interval_s=36.0, capacity_drop=0.1)
        return _late(res.data.inflow.sel(link="out"))

    assert run(None) == pytest.approx(0.9 * 2 * Q, rel=0.01)        # queues at the merge: drop
    assert run(900.0) == pytest.approx(3000 + 900, rel=0.01)          # meter holds the ramp: no drop


def _turn_bay(connect: bool, schedule=(), engine="macro", seed=0, **options):
    """A 3-lane approach: through to a 3-lane road, right turn to a 1-lane road (5000 + 500 veh/h).

    With ``connect`` the lane markings say: lane 0 turns right, lanes 1-2 go straight on."""
    net = ts.Network()
    for n, xy in (("A", (0, -2000)), ("M", (0, 0)), ("T", (0, 1000)), ("R", (1000, 0))):
        net.add_node(n, x=xy[0], y=xy[1])
    kw = dict(free_speed_kmh=VF, capacity_vph_per_lane=Q, jam_density_vpkm_per_lane=KJ)
    net.add_link("app", "A", "M", length_m=2000, lanes=3, lane_schedule=schedule, **kw)
    net.add_link("thru", "M", "T", length_m=1000, lanes=3, **kw)
    net.add_link("right", "M", "R", length_m=1000, lanes=1, **kw)
    if connect:
        net.connect_lanes("app", "right", [(0, 0)])
        net.connect_lanes("app", "thru", [(1, 1), (2, 2)])
    d = ts.Demand()
    d.add("A", "T", [(0, 5000)])
    d.add("A", "R", [(0, 500)])
    sc = ts.Scenario(net, d, 3600)
    if engine == "macro":
        return ts.simulate(sc, dt_s=1.8, record_interval_s=36.0, **options)
    return ts.simulate(sc, engine=engine, seed=seed, record_interval_s=36.0, **options)


def _mean(da, t0, t1):
    return float(da.where((da.time > t0) & (da.time <= t1)).dropna("time").mean())


def test_movement_carries_at_most_the_share_of_capacity_of_its_lanes():
    """Lane markings cap a movement at its lanes' capacity. Marked into disjoint groups (lane 0
    right, lanes 1-2 through), each group queues on its own (lane groups, the default): the right
    turn passes its whole demand beside the through queue. With one queue for the link
    (``lane_groups=False``) the queue holds back the right-turners in first-in-first-out order:
    they pass in the demand mix of the through flow. Marked along the whole link, the through
    lanes take their capacity from its start: with groups the through excess (5,000 - 2 x 2,000
    veh/h) waits to enter at the origin, with one queue it stands on the approach (and spills
    back to the origin once it fills it)."""
    ds = _turn_bay(connect=False).data
    # unmarked: every lane leads straight on, the approach's 3 lanes carry the 5,500 veh/h
    assert _mean(ds.inflow.sel(link="thru"), 1800, 3600) == pytest.approx(5000, rel=1e-3)
    for groups, right_expected in ((True, 500.0), (False, 2 * Q * 500 / 5000)):
        res = _turn_bay(connect=True, lane_groups=groups)
        ds = res.data
        thru, right = _mean(ds.inflow.sel(link="thru"), 1800, 3600), _mean(ds.inflow.sel(link="right"), 1800, 3600)
        assert thru == pytest.approx(2 * Q, rel=1e-3)             # 2 of 3 lanes x lane capacity
        assert right == pytest.approx(right_expected, rel=1e-3)
        assert res.kpis["bottleneck"] == ("" if groups else "app")
        if groups:      # the link free-flowing, the whole excess at the origin
            assert float(ds.origin_queue.isel(time=-1).sum()) == pytest.approx(5000 - 2 * Q, rel=1e-3)
        assert res.conservation_error() < 1e-6
        assert ds.attrs["lane_groups"] == (2 if groups else 0)
        assert list(ds.link.values) == ["app", "thru", "right"]


def test_movement_share_follows_the_lanes_in_force():
    """Closing the median lane leaves the through movement 1 of 2 open lanes from t = 1800 s."""
    ds = _turn_bay(connect=True, schedule=[(1800, 2)]).data
    assert _mean(ds.inflow.sel(link="thru"), 900, 1800) == pytest.approx(2 * Q, rel=1e-3)
    assert _mean(ds.inflow.sel(link="thru"), 2700, 3600) == pytest.approx(Q, rel=1e-3)


@pytest.mark.parametrize("q_up, q_down", [(1800.0, 1900.0), (2000.0, 1800.0)])
def test_lane_drop_discharges_at_the_continuing_lanes_capacity(q_up, q_down):
    """4 lanes into 2: the 2 lanes that continue carry the flow up to the drop at their own lane
    capacity, the link beyond at its own: the lower of the two counts."""
    net = ts.Network()
    for n, x in (("A", 0.0), ("B", 3000.0), ("C", 5000.0)):
        net.add_node(n, x=x, y=0.0)
    net.add_link("up", "A", "B", length_m=3000, lanes=4, free_speed_kmh=60, capacity_vph_per_lane=q_up)
    net.add_link("down", "B", "C", length_m=2000, lanes=2, free_speed_kmh=60, capacity_vph_per_lane=q_down)
    d = ts.Demand()
    d.add("A", "C", [(0, 4500)])
    res = ts.simulate(ts.Scenario(net, d, 3600), dt_s=2.0, record_interval_s=60.0)
    assert _mean(res.data.inflow.sel(link="down"), 1800, 3600) == pytest.approx(2 * min(q_up, q_down), rel=1e-3)
    assert res.kpis["bottleneck"] == "up"


def test_lanes_that_end_count_only_where_the_link_has_a_single_way_on():
    """A 4-lane road whose 2 left lanes continue (1,800 veh/h per lane before, 1,900 after): while a
    side road also leaves the node every lane serves both movements; once the turn into it is
    banned, the road ahead is the only way on and only the 2 continuing lanes carry its flow."""
    def run(ban):
        net = ts.Network()
        for n, xy in (("A", (0, 0)), ("B", (3000, 0)), ("C", (5000, 0)), ("S", (3000, -1000))):
            net.add_node(n, x=xy[0], y=xy[1])
        net.add_link("up", "A", "B", length_m=3000, lanes=4, free_speed_kmh=60, capacity_vph_per_lane=1800)
        net.add_link("down", "B", "C", length_m=2000, lanes=2, free_speed_kmh=60, capacity_vph_per_lane=1900)
        net.add_link("side", "B", "S", length_m=1000, lanes=1, free_speed_kmh=60, capacity_vph_per_lane=1800)
        if ban:
            net.ban_turn("up", "side")
        d = ts.Demand()
        d.add("A", "C", [(0, 4500)])
        res = ts.simulate(ts.Scenario(net, d, 3600), dt_s=2.0, record_interval_s=60.0)
        return _mean(res.data.inflow.sel(link="down"), 1800, 3600)

    assert run(ban=False) == pytest.approx(2 * 1900, rel=1e-3)   # the road beyond binds
    assert run(ban=True) == pytest.approx(2 * 1800, rel=1e-3)    # the continuing lanes bind


def _protected_left(thru_vph, left_vph, **options):
    """A 3-lane approach to a signal whose lanes 0-1 go straight on (40 s green) and lane 2 turns
    left (its own 15 s phase), then a 30 s phase for the cross street: cycle 100 s. The roads
    beyond are wider than the lanes that feed them, so the markings bind (``conftest.marked_signal``)."""
    res = ts.simulate(marked_signal(thru_vph, left_vph), dt_s=1.0, record_interval_s=100.0, **options)
    assert res.conservation_error() < 1e-6
    return _mean(res.data.inflow.sel(link="thru"), 1200, 3600), _mean(res.data.inflow.sel(link="left"), 1200, 3600)


def test_vehicles_waiting_at_red_do_not_hold_back_a_green_movement():
    """Below capacity every movement of the approach is served in full: the left-turners that
    wait through the through phase (in their lane, as in a turn pocket) do not hold back the
    through vehicles, nor the through vehicles the left-turners in theirs. (Until 2026-11-23
    the vehicles waiting at red at the head of the approach's FIFO filled its sending window:
    760 of the 1,000 through and 152 of the 200 left-turn veh/h passed.)"""
    thru, left = _protected_left(1000, 200)
    assert thru == pytest.approx(1000, rel=0.01)
    assert left == pytest.approx(200, rel=0.01)


@pytest.mark.parametrize("thru_vph, left_vph", [(1800, 200), (1000, 400)])
def test_saturated_movement_discharges_its_lanes_saturation_flow_times_green_share(thru_vph, left_vph):
    """The saturated movement discharges (its lanes) x 1,800 veh/h x (its green share): through
    2 x 1,800 x 40/100 within 2% (the left-turners that arrive during the through green stay in
    the last cell, spread over its three lanes, and slow its refill late in the green: 1,426
    veh/h), left 1 x 1,800 x 15/100 within 1%. (Until 2026-11-23: 918 and 196 veh/h.) The
    approach is one queue, first in first out: once the saturated movement's queue fills it,
    the other movement's vehicles reach the stop line only in the demand mix (a turn lane that
    stores its own queue is a link of its own, docs/models/ctm.md) with ``lane_groups=False``.
    With lane groups (the default: lanes 0-1 through and lane 2 left are disjoint) the two queue
    apart, and the other movement passes its whole demand."""
    thru, left = _protected_left(thru_vph, left_vph, lane_groups=False)
    if thru_vph > 2 * 1800 * 0.40:
        assert thru == pytest.approx(2 * 1800 * 0.40, rel=0.02)
        assert left == pytest.approx(thru * left_vph / thru_vph, rel=0.01)
    else:
        assert left == pytest.approx(1 * 1800 * 0.15, rel=0.01)
        assert thru == pytest.approx(left * thru_vph / left_vph, rel=0.01)
    thru, left = _protected_left(thru_vph, left_vph)
    if thru_vph > 2 * 1800 * 0.40:
        assert thru == pytest.approx(2 * 1800 * 0.40, rel=0.02)
        assert left == pytest.approx(left_vph, rel=0.01)
    else:
        assert left == pytest.approx(1 * 1800 * 0.15, rel=0.01)
        assert thru == pytest.approx(thru_vph, rel=0.01)


# ---------------------------------------------------------------- permitted left turns
def test_permissive_yields_from_geometry():
    """A left turn gives way to the opposing through and right turns green with it; a through
    movement and a protected left give way to nothing; without coordinates nothing is derived."""
    from trafficsim.control import permissive_yields

    sc = always_green_cross(600, 900)
    y = permissive_yields(sc.network, sc.controls[0])
    assert y[("N-in", "E-out")] == (("S-in", "E-out"), ("S-in", "N-out"))
    assert ("N-in", "S-out") not in y and ("N-in", "W-out") not in y
    assert len(y) == 4
    from conftest import cross_junction

    protected = cross_junction()
    assert permissive_yields(protected.network, protected.controls[0]) == {}
    bare = always_green_cross(600, 900, with_coordinates=False)
    assert permissive_yields(bare.network, bare.controls[0]) == {}


@pytest.mark.parametrize("opposing_vph", [300.0, 900.0])
def test_permitted_left_discharges_at_the_gap_acceptance_capacity(opposing_vph):
    """Left-turners queued against a steady opposing stream of ``v_o`` discharge at HCM's
    permitted flow ``v_o e^(-v_o t_c) / (1 - e^(-v_o t_f))`` per lane (1,096 veh/h at 300, 629 at
    900), not at the lane's 1,800; the opposing stream passes in full. Without coordinates no
    conflict is known and the lefts discharge at their demand."""
    from trafficsim.control import permitted_flow_vps

    expected = permitted_flow_vps(opposing_vph / 3600.0) * 3600.0
    res = ts.simulate(always_green_cross(1500.0, opposing_vph), engine="macro")
    rate, through = left_turn_rate(res)
    assert rate == pytest.approx(expected, rel=0.03)
    assert float(res.data.origin_queue.sum("origin")[-1]) > 100          # the lefts queue back to their origin
    assert through == pytest.approx(opposing_vph, rel=0.02, abs=15)
    free = ts.simulate(always_green_cross(1500.0, opposing_vph, with_coordinates=False), engine="macro")
    assert left_turn_rate(free)[0] > 1400
