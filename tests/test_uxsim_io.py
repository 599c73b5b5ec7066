"""UXsim worlds both ways (``trafficsim.uxsim_io``): UXsim's own definitions carried over, and a
trafficsim scenario sent to UXsim and back runs the same."""

import sys
from pathlib import Path

import pytest

import trafficsim as ts
from trafficsim.uxsim_io import scenario_from_uxsim, world_from_scenario

uxsim = pytest.importorskip("uxsim")  # in the `uxsim` extra, which `all` (CI) installs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def _world(**kw):
    return uxsim.World(**{**dict(name="w", deltan=5, tmax=3600, print_mode=0, save_mode=0, show_mode=0,
                                 random_seed=0), **kw})


def test_uxsim_definitions_carry_over():
    """Lanes, free speed and jam density as UXsim has them; the capacity of UXsim's triangular
    diagram (so the wave speed is UXsim's w) or the cap that binds; signal groups as phases; the
    demand at its recorded rates."""
    W = _world()
    W.addNode("A", 0, 0)
    W.addNode("B", 1000, 0, signal=[30, 5, 20], signal_offset=10)
    W.addNode("C", 2000, 0)
    W.addNode("D", 1000, 800)
    W.addLink("ab", "A", "B", length=1000, free_flow_speed=20, jam_density_per_lane=0.2, number_of_lanes=2,
              signal_group=[0])
    W.addLink("db", "D", "B", length=800, free_flow_speed=15, jam_density=0.2, signal_group=[2])
    W.addLink("bc", "B", "C", length=1000, free_flow_speed=20, jam_density_per_lane=0.2, number_of_lanes=2,
              capacity_out=1.2)
    W.adddemand("A", "C", 0, 600, 0.3)
    W.adddemand("A", "C", 600, 1200, volume=60)
    W.adddemand("D", "C", 100, 700, 0.1)
    sc = scenario_from_uxsim(W)
    ab, db, bc = (sc.network.links[k] for k in ("ab", "db", "bc"))
    assert (ab.lanes, ab.length_m, ab.free_speed_kmh, ab.jam_density_vpkm_per_lane) == (2, 1000.0, 72.0, 200.0)
    link = W.get_link("ab")
    assert ab.capacity_vph_per_lane == pytest.approx(link.capacity / 2 * 3600)       # 0.8 veh/s per lane
    assert ab.wave_speed_kmh == pytest.approx(link.w * 3.6)                           # UXsim's w: 5 m/s
    assert bc.capacity_vph_per_lane == pytest.approx(1.2 / 2 * 3600)                  # capacity_out binds
    assert db.lanes == 1 and db.free_speed_kmh == pytest.approx(54.0)
    (sig,) = sc.controls
    assert sig.node == "B" and sig.offset_s == 10 and sig.cycle_s == pytest.approx(55)
    assert [(p.green_s, p.movements, p.all_red_s) for p in sig.phases] == [
        (30.0, (("ab", "bc"),), 5.0), (20.0, (("db", "bc"),), 0.0)]
    rates = {(f.origin, f.destination): f for f in sc.demand.flows}
    assert rates[("A", "C")].rate_at(100) == pytest.approx(1080) and rates[("A", "C")].rate_at(700) == pytest.approx(360)
    assert rates[("D", "C")].total(3600) == pytest.approx(60)
    assert sc.duration_s == 3600 and sc.name == "w"


def test_a_cap_that_would_slow_the_wave_below_8_kmh_is_left_out_with_a_warning():
    W = _world()
    W.addNode("A", 0, 0)
    W.addNode("B", 1000, 0)
    W.addLink("ab", "A", "B", length=1000, free_flow_speed=20, jam_density_per_lane=0.2, number_of_lanes=2,
              capacity_out=0.5)
    with pytest.warns(UserWarning, match=r"'ab' \(0.5 of 1.6 veh/s\)"):
        sc = scenario_from_uxsim(W)
    assert sc.network.links["ab"].capacity_vph_per_lane == pytest.approx(2880)


def test_vehicles_added_one_by_one_are_binned():
    W = _world(deltan=1)
    W.addNode("A", 0, 0)
    W.addNode("B", 1000, 0)
    W.addLink("ab", "A", "B", length=1000, free_flow_speed=20, jam_density=0.2)
    for t in range(0, 600, 10):
        W.addVehicle("A", "B", t)
    sc = scenario_from_uxsim(W, bin_s=300)
    (f,) = sc.demand.flows
    assert f.total(3600) == pytest.approx(60) and f.rate_at(100) == pytest.approx(360) and f.rate_at(700) == 0


@pytest.mark.parametrize("case", ["merge", "changgang-corridor", "jiangwan-bridge"])
def test_a_scenario_sent_to_uxsim_and_back_runs_the_same(case):
    """(The library's merge, a 5-signal corridor, a lane drop.)"""
    sc = ts.scenarios.load(case)
    back = scenario_from_uxsim(world_from_scenario(sc))
    for lid, lk in sc.network.links.items():
        b = back.network.links[lid]
        assert (b.lanes, b.length_m) == (lk.lanes, lk.length_m)
        assert b.capacity_vph_per_lane == pytest.approx(lk.capacity_vph_per_lane, rel=1e-9)
    a, b = ts.simulate(sc).kpis, ts.simulate(back).kpis
    for k in ("vht", "origin_wait_vh", "completed"):
        assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-9), k


def test_uxsims_large_grid_demo_imports_with_its_own_numbers():
    """UXsim's demo notebook 11, built with UXsim's API: 11x11 nodes, 440 links of 1 km, 0.8 veh/s
    and a 5 m/s wave, 60,984 vehicles in the hour, as `benchmarks/cases.uxsim_grid` gives it."""
    import cases

    W = _world(tmax=7200)
    n = 11
    nodes = {(i, j): W.addNode(f"n{i}_{j}", i, j) for i in range(n) for j in range(n)}
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n and j + dj < n:
                    a, b = nodes[i, j], nodes[i + di, j + dj]
                    W.addLink(f"{a.name}-{b.name}", a, b, length=1000, free_flow_speed=20, jam_density=0.2)
                    W.addLink(f"{b.name}-{a.name}", b, a, length=1000, free_flow_speed=20, jam_density=0.2)
    for k in range(n):
        for m in range(n):
            for o, d in ((nodes[0, k], nodes[n - 1, m]), (nodes[k, 0], nodes[m, n - 1])):
                W.adddemand(o, d, 0, 3600, 0.035)
                W.adddemand(d, o, 0, 3600, 0.035)
    sc = scenario_from_uxsim(W)
    ref = cases.uxsim_grid()
    assert (len(sc.network.nodes), len(sc.network.links)) == (len(ref.network.nodes), len(ref.network.links)) == (121, 440)
    assert sc.demand.total(7200) == pytest.approx(ref.demand.total(7200)) == pytest.approx(60984)
    lk = next(iter(sc.network.links.values()))
    rl = next(iter(ref.network.links.values()))
    assert (lk.capacity_vph_per_lane, lk.wave_speed_kmh, lk.jam_density_vpkm_per_lane) == pytest.approx(
        (rl.capacity_vph_per_lane, rl.wave_speed_kmh, rl.jam_density_vpkm_per_lane))
    res = ts.simulate(sc)
    assert res.conservation_error() < 1e-6 and res.kpis["completed"] > 0
