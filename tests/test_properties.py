"""Property-based checks on random small networks: no NaN, no negative density, conservation."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import trafficsim as ts


@st.composite
def random_scenarios(draw):
    n_nodes = draw(st.integers(3, 6))
    net = ts.Network()
    for i in range(n_nodes):
        net.add_node(f"n{i}", x=100.0 * i, y=0.0)
    # a spine guarantees connectivity; random extra links make merges and diverges
    pairs = [(i, i + 1) for i in range(n_nodes - 1)]
    extra = draw(st.lists(st.tuples(st.integers(0, n_nodes - 1), st.integers(0, n_nodes - 1)), max_size=5))
    for a, b in extra:
        if a != b and (a, b) not in pairs:
            pairs.append((a, b))
    for a, b in pairs:
        net.add_link(
            f"l{a}_{b}", f"n{a}", f"n{b}",
            length_m=draw(st.floats(60.0, 800.0)),
            lanes=draw(st.integers(1, 3)),
            free_speed_kmh=draw(st.sampled_from([40.0, 50.0, 60.0])),
            capacity_vph_per_lane=draw(st.sampled_from([1600.0, 1800.0, 2000.0])),
            jam_density_vpkm_per_lane=draw(st.sampled_from([130.0, 150.0])),
            lane_schedule=draw(st.sampled_from([(), ((300.0, 1),), ((200.0, 0), (500.0, 2))])),
        )
    d = ts.Demand()
    for _ in range(draw(st.integers(1, 4))):
        o = draw(st.integers(0, n_nodes - 2))
        dest = draw(st.integers(o + 1, n_nodes - 1))
        rate = draw(st.floats(0.0, 6000.0))
        stop = draw(st.floats(60.0, 600.0))
        d.add(f"n{o}", f"n{dest}", [(0.0, rate), (stop, 0.0)])
    return ts.Scenario(net, d, duration_s=900.0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_scenarios(), st.sampled_from([0.0, 0.15]))
def test_random_networks_conserve_and_stay_physical(sc, drop):
    res = ts.simulate(sc, record_interval_s=30.0, record_cells=True, capacity_drop=drop)
    ds = res.data
    for name in ("flow", "density", "speed", "queue", "cell_density"):
        assert np.isfinite(ds[name].values).all(), name
        assert (ds[name].values >= 0).all(), name
    assert res.conservation_error() < 1e-6
    k = res.kpis
    assert abs(k["demand"] - (k["completed"] + k["inside"] + k["unserved"])) < 1e-6
    # links fed through the network never exceed their jam density by more than what a lane
    # closure strands (the vehicles stay): checked against the largest lane count
    jam = np.array([sc.network.links[str(l)].jam_density_vpkm_per_lane * sc.network.links[str(l)].max_lanes
                    for l in ds.link.values])
    assert (ds.density.values <= jam[None, :] * (1 + 1e-9)).all()
