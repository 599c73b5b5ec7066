"""Hypothesis properties of the CTM node model at random signalised junctions: vehicles waiting at
red let the green movements behind them pass, yet nothing is lost, nothing goes negative and no
movement flows on red."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trafficsim as ts


@st.composite
def signalised_junctions(draw):
    n_in = draw(st.integers(1, 3))
    n_out = draw(st.integers(2, 3))
    net = ts.Network()
    net.add_node("J", x=0.0, y=0.0)
    ins, outs = [], []
    for i in range(n_in):
        net.add_node(f"o{i}", x=-300.0, y=100.0 * i)
        ins.append(net.add_link(f"in{i}", f"o{i}", "J", length_m=draw(st.floats(100.0, 500.0)),
                                lanes=draw(st.integers(1, 3)), free_speed_kmh=50.0,
                                lane_schedule=draw(st.sampled_from([(), ((400.0, 1),), ((300.0, 0), (500.0, 2))]))).id)
    for j in range(n_out):
        net.add_node(f"d{j}", x=300.0, y=100.0 * j)
        outs.append(net.add_link(f"out{j}", "J", f"d{j}", length_m=draw(st.floats(100.0, 500.0)),
                                 lanes=draw(st.integers(1, 3)), free_speed_kmh=50.0,
                                 capacity_vph_per_lane=draw(st.sampled_from([1200.0, 1800.0]))).id)
    moves = [(a, b) for a in ins for b in outs]
    if draw(st.booleans()):
        # lane markings: output j of a 3-lane approach on lane min(j, 2) (1- and 2-lane ones share)
        for a in ins:
            n = net.links[a].lanes
            for j, b in enumerate(outs):
                net.connect_lanes(a, b, [(min(j, n - 1), 0)])
    n_ph = draw(st.integers(2, 4))
    subs = [draw(st.lists(st.sampled_from(moves), unique=True, max_size=len(moves))) for _ in range(n_ph)]
    for mv in moves:   # every movement has green somewhere (a plan must serve its demand)
        if not any(mv in sub for sub in subs):
            subs[draw(st.integers(0, n_ph - 1))].append(mv)
    phases = []
    for sub in subs:
        phases.append(ts.Phase(float(draw(st.integers(5, 40))), tuple(sub), amber_s=float(draw(st.integers(0, 3))),
                               all_red_s=float(draw(st.integers(0, 2)))))
    d = ts.Demand()
    for a in range(n_in):
        for b in range(n_out):
            rate = draw(st.floats(0.0, 1200.0))
            if rate > 0:
                d.add(f"o{a}", f"d{b}", [(0.0, rate), (draw(st.floats(200.0, 900.0)), 0.0)])
    if not d.flows:
        d.add("o0", "d0", [(0.0, 500.0)])
    sig = ts.FixedTimeSignal("J", tuple(phases), offset_s=float(draw(st.integers(0, 30))))
    controls = [sig]
    if draw(st.booleans()):
        controls.append(ts.FixedRateMeter("in0", ((0.0, draw(st.floats(100.0, 2000.0))),)))
    return ts.Scenario(net, d, duration_s=1200.0, controls=controls), sig, moves


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signalised_junctions(), st.sampled_from([0.0, 0.15]))
def test_random_signals_conserve_stay_physical_and_never_flow_on_red(case, drop):
    sc, sig, moves = case
    res = ts.simulate(sc, dt_s=1.0, record_interval_s=1.0, record_cells=True, capacity_drop=drop)
    ds = res.data
    for name in ("flow", "density", "queue", "cell_density", "inflow", "outflow"):
        assert np.isfinite(ds[name].values).all(), name
        assert (ds[name].values >= -1e-9).all(), name
    assert res.conservation_error() < 1e-6
    k = res.kpis
    assert abs(k["demand"] - (k["completed"] + k["inside"] + k["unserved"])) < 1e-6
    # an outgoing link all of whose movements are red in an interval receives nothing in it
    start = ds.time.values - 1.0
    for out in {b for _, b in moves}:
        feeding = [(a, b) for a, b in moves if b == out]
        red = np.array([not any(sig.is_green(a, b, t) for a, b in feeding) for t in start])
        got = ds["inflow"].sel(link=out).values[red]
        assert (got <= 1e-9).all(), (out, float(got.max()))
    for a in {a for a, _ in moves}:
        red = np.array([not any(sig.is_green(a, b, t) for b in {b for _, b in moves}) for t in start])
        got = ds["outflow"].sel(link=a).values[red]
        assert (got <= 1e-9).all(), (a, float(got.max()))
