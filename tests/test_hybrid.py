"""The ``hybrid`` engine: a region in SUMO, the rest in the CTM, exact conservation at the boundary.

Small lane-drop and merge cases, 10-15 simulated minutes, so the file runs in well under a minute.
"""

import numpy as np
import pytest

import libsumo  # noqa: F401  (the sumo extra installs it; the hybrid engine needs it)

import trafficsim as ts  # noqa: E402
from trafficsim.engines import SimulationError  # noqa: E402
from trafficsim.engines.hybrid import default_region, split_scenario  # noqa: E402


def drop_chain(demand=4500, duration=900):
    """A 3 -> 2 lane drop at B, demand above the drop's capacity for 10 minutes."""
    net = ts.Network()
    for i, n in enumerate("ABCD"):
        net.add_node(n, 600 * i, 0)
    net.add_link("up", "A", "B", length_m=600, lanes=3, free_speed_kmh=60)
    net.add_link("drop", "B", "C", length_m=600, lanes=2, free_speed_kmh=60)
    net.add_link("down", "C", "D", length_m=600, lanes=2, free_speed_kmh=60)
    d = ts.Demand()
    d.add("A", "D", [(0, demand), (600, 1000)])
    sc = ts.Scenario(network=net, demand=d, duration_s=duration, name="drop")
    sc.meta["bottleneck_link"] = "drop"
    return sc


def merge(main=3000, ramp=1200, duration=600):
    net = ts.Network()
    net.add_node("A", 0, 0)
    net.add_node("B", 1000, 0)
    net.add_node("C", 2000, 0)
    net.add_node("D", 2600, 0)
    net.add_node("R", 600, -250)
    net.add_link("main", "A", "B", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("ramp", "R", "B", length_m=450, lanes=1, free_speed_kmh=80)
    net.add_link("down", "B", "C", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("exit", "C", "D", length_m=600, lanes=2, free_speed_kmh=80)
    d = ts.Demand()
    d.add("A", "D", [(0, main)], name="main")
    d.add("R", "D", [(0, ramp)], name="ramp")
    return ts.Scenario(network=net, demand=d, duration_s=duration, name="merge")


def balance(res):
    """demanded - (every place a vehicle can be), from the engine's own counters."""
    c = res.final_state["conservation"]
    return c["demanded"] - sum(v for k, v in c.items() if k != "demanded")


@pytest.fixture(scope="module")
def drop_runs():
    sc = drop_chain()
    return sc, ts.simulate(sc, engine="hybrid", region=["drop"]), ts.simulate(sc, engine="macro", dt_s=1.0)


def test_schema_matches_macro(drop_runs):
    _, rh, rm = drop_runs
    assert set(rh.data.data_vars) == set(rm.data.data_vars)
    assert rh.data.sizes == rm.data.sizes
    assert rh.engine == "hybrid" and rh.data.attrs["hybrid_region"] == "drop"
    assert set(rh.kpis.index) == set(rm.kpis.index)
    for key in ("wall_s", "wall_sumo_s", "wall_macro_s", "wall_coupling_s"):
        assert rh.data.attrs[key] >= 0


def test_exact_conservation_lane_drop(drop_runs):
    _, rh, _ = drop_runs
    assert abs(balance(rh)) < 1e-6
    assert rh.conservation_error() < 1e-6
    c = rh.final_state["conservation"]
    assert c["sumo_network"] >= 0 and 0 <= c["transfer_fraction"] < 1
    # whole vehicles crossed both boundaries: every vehicle handed to SUMO is in it or left it
    handed = rh.final_state["handed_to_sumo"].sum()
    left = rh.final_state["to_exit_buffer"].sum()
    assert handed == int(handed) and left == int(left)
    assert handed - left == c["sumo_network"] + c["sumo_pending_boundary"]


def test_counts_continuous_across_boundaries(drop_runs):
    _, rh, _ = drop_runs
    last = rh.data.isel(time=-1)
    cin = dict(zip(rh.data["link"].values, last["cum_in"].values))
    cout = dict(zip(rh.data["link"].values, last["cum_out"].values))
    # macro 'up' discharges into SUMO 'drop': inserted whole vehicles lag by < 1 per route
    assert 0 <= cout["up"] - cin["drop"] < 1 + 1e-9
    # SUMO 'drop' outflow enters macro 'down' (minus whatever waits in the exit buffer)
    assert cout["drop"] - cin["down"] == pytest.approx(rh.final_state["conservation"]["exit_buffer"], abs=1e-6)


def test_bottleneck_in_sumo_matches_macro(drop_runs):
    """SUMO's discharge of the drop limits the macro upstream: same queue, same delay as macro."""
    _, rh, rm = drop_runs
    kh, km = rh.kpis, rm.kpis
    assert kh["bottleneck"] == "up" == km["bottleneck"]
    assert kh["bottleneck_discharge_vph"] == pytest.approx(km["bottleneck_discharge_vph"], rel=0.1)
    assert kh["delay_vh"] == pytest.approx(km["delay_vh"], rel=0.15)
    # the queue stands in the macro part, upstream of the region entry
    assert float(rh.data["queue_length"].sel(link="up").max()) > 300


def test_region_with_origin_and_merge_feeders():
    # origin inside the region (SUMO inserts the demand), macro downstream
    r1 = ts.simulate(drop_chain(duration=600), engine="hybrid", region=["up"])
    assert abs(balance(r1)) < 1e-6
    assert r1.kpis["completed"] > 0
    # two macro links (main, ramp) feed one SUMO entry edge: receiving flow split between them
    r2 = ts.simulate(merge(), engine="hybrid", region=["down"])
    assert abs(balance(r2)) < 1e-6
    assert r2.kpis["bottleneck"] in ("main", "ramp")
    out = float(r2.data["outflow"].sel(link="down").isel(time=slice(3, None)).mean())
    assert out == pytest.approx(2 * 1800, rel=0.12)


def test_split_rules():
    sc = drop_chain()
    assert default_region(sc) == ["drop", "up", "down"]
    sp = split_scenario(sc, ["drop"])
    assert list(sp.sumo.network.links) == ["drop"] and set(sp.macro.network.links) == {"up", "down"}
    assert sp.parts[0] == (("up",), ("drop",), ("down",))
    # SUMO alone on the region carries the route's demand
    assert sp.sumo.demand.flows[0].profile == sc.demand.flows[0].profile
    with pytest.raises(SimulationError, match="whole network"):
        ts.simulate(sc, engine="hybrid", region=["up", "drop", "down"])
    with pytest.raises(SimulationError, match="feeds the region but also"):
        net = sc.network.copy()
        net.add_node("E", 600, 300)
        net.add_link("side", "B", "E", length_m=400, lanes=1, free_speed_kmh=60)
        split_scenario(sc.replace(network=net), ["drop"])
    with pytest.raises(SimulationError, match="whole multiple"):
        ts.simulate(sc, engine="hybrid", region=["drop"], dt_s=1.0, sumo_dt_s=0.3)
    assert np.isfinite(sc.duration_s)
