"""Scenario <-> TOML: exact round trip and clear errors on malformed files."""

import numpy as np
import pytest

import trafficsim as ts


def _scenario():
    net = ts.Network()
    for i, n in enumerate("ABCD"):
        net.add_node(n, x=1000.0 * i, y=0.0)
    net.add_link("up", "A", "B", length_m=1500, lanes=6, free_speed_kmh=60, lane_schedule=[(1800, 4)], name="Ring")
    net.add_link("bridge", "B", "C", length_m=2000, lanes=2, free_speed_kmh=60, priority=2.0)
    net.add_link("off", "C", "D", length_m=300, lanes=1, free_speed_kmh=40)
    d = ts.Demand()
    d.add("A", "C", [(0, 4500), (2700, 2000)])
    d.add("A", "D", [(0, 300)], routes=[(["up", "bridge", "off"], 1.0)], vehicle_class="bus", name="bus 1")
    controls = [
        ts.FixedTimeSignal("C", (ts.Phase(30, (("bridge", "off"),), 3, 2), ts.Phase(20, (), 3, 0)), offset_s=5),
        ts.FixedRateMeter("up", ((0, 900.0), (3600, 1200.0))),
        ts.Blocking("bridge", 600, 900, lanes=1, position_m=100, length_m=30),
        ts.BusStop("bridge", 500, bay=True, name="Stop A"),
    ]
    return ts.Scenario(net, d, 7200, controls, name="merge", description="a merge")


def test_round_trip_is_exact(tmp_path):
    sc = _scenario()
    path = sc.to_toml(tmp_path / "sc.toml")
    back = ts.Scenario.from_toml(path)
    assert back == sc
    assert back.to_dict() == sc.to_dict()
    # and a second trip changes nothing
    assert ts.Scenario.from_toml(back.to_toml(tmp_path / "again.toml")).to_dict() == sc.to_dict()


def test_round_trip_runs_the_same(tmp_path):
    sc = _scenario()
    back = ts.Scenario.from_toml(sc.to_toml(tmp_path / "sc.toml"))
    a = ts.simulate(sc, "macro")
    b = ts.simulate(back, "macro")
    assert a.kpis["vht"] == b.kpis["vht"]


def test_numpy_numbers_in_controls_round_trip(tmp_path):
    """Control fields are stored as given: a signal plan or blocking built from numpy numbers
    (a table, a sweep) made to_toml fail with 'Object of type int64 is not TOML serializable'."""
    sc = _scenario()
    sc.controls = [
        ts.FixedTimeSignal("C", (ts.Phase(np.float64(30), (("bridge", "off"),), np.int64(3), np.float32(2)),
                                 ts.Phase(np.int64(20), (), 3, 0)), offset_s=np.int64(5)),
        ts.FixedRateMeter("up", np.array([[0, 900.0], [3600, 1200.0]])),
        ts.Blocking("bridge", np.int64(600), np.float64(900), lanes=np.int64(1), position_m=np.float64(100),
                    length_m=np.int32(30)),
        ts.BusStop("bridge", np.float64(500), bay=np.bool_(True), dwell_mean_s=np.int64(25), name="Stop A"),
    ]
    back = ts.Scenario.from_toml(sc.to_toml(tmp_path / "sc.toml"))
    assert back == sc
    a, b = ts.simulate(sc, "macro"), ts.simulate(back, "macro")
    assert a.kpis["vht"] == b.kpis["vht"] and a.kpis["completed"] == b.kpis["completed"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("[scenario\nduration_s = 1", "malformed TOML"),
        ("[scenario]\nname='x'", "missing \\[scenario\\] table with duration_s"),
        ("[scenario]\nduration_s = 10\n[[links]]\nid='a'\nfrom='A'\nto='B'\nlength_m=5\nlanes=1",
         "link 'a': from_node 'A' is not a node"),
        ("[scenario]\nduration_s = 10\n[[nodes]]\nid='A'\nz=1", "nodes\\[0\\] \\('A'\\): unknown field"),
        ("[scenario]\nduration_s = 10\n[[widgets]]\nid='A'", "unknown table"),
        ("[scenario]\nduration_s = 10\n[[controls]]\nkind='teleporter'", "unknown kind 'teleporter'"),
        ("[scenario]\nduration_s = -3", "duration_s must be finite and > 0"),
    ],
)
def test_malformed_toml_is_a_clear_error(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ts.ScenarioError, match=match):
        ts.Scenario.from_toml(p)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ts.ScenarioError, match="cannot read"):
        ts.Scenario.from_toml(tmp_path / "nope.toml")
