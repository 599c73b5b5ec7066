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


def test_written_file_has_the_documented_layout(tmp_path):
    """``to_toml`` writes what docs/scenario-toml.md shows: ``[scenario]`` first, one ``[[nodes]]``
    table per node, a profile on one line (the writer used before put the nodes in an inline
    array ahead of ``[scenario]`` and every profile number on a line of its own)."""
    sc = _scenario()
    sc.description = 'a "merge"\\ with\nlines \u4e2d\t'
    text = sc.to_toml(tmp_path / "sc.toml").read_text(encoding="utf-8")
    assert text.startswith("[scenario]\n")
    assert text.count("[[nodes]]") == 4 and text.count("[[links]]") == 3 and text.count("[[controls]]") == 4
    assert "profile = [[0.0, 4500.0], [2700.0, 2000.0]]" in text
    assert ts.Scenario.from_toml(tmp_path / "sc.toml").description == sc.description


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


def _set(path, value):
    """A mutation of the scenario's plain-data form: ``path`` of keys and indices, the last one set."""
    def apply(d):
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return apply


@pytest.mark.parametrize("mutate, match", [
    # a misspelt field never falls back to its default without a word
    (_set(("controls", 0, "ofset_s"), 10.0), r"controls\[0\] \(signal\): unknown field\(s\) \['ofset_s'\]"),
    (_set(("controls", 0, "phases", 0, "ambr_s"), 4.0), r"controls\[0\] \(signal\), phases\[0\]: unknown field\(s\) \['ambr_s'\]"),
    (_set(("controls", 2, "lane"), 2), r"controls\[2\] \(blocking\): unknown field\(s\) \['lane'\]"),
    (_set(("controls", 3, "by"), True), r"controls\[3\] \(bus_stop\): unknown field\(s\) \['by'\]"),
    (_set(("demand", 1, "routes", 0, "shar"), 1.0), r"demand\[1\]\.routes\[0\]: unknown field\(s\) \['shar'\]"),
    # a value of the wrong type is not converted
    (_set(("scenario", "duration_s"), True), "duration_s must be a number, got True"),
    (_set(("scenario", "duration_s"), "7200"), "duration_s must be a number, got '7200'"),
    (_set(("links", 0, "free_speed_kmh"), "60"), "free_speed_kmh must be a number, got '60'"),
    (_set(("allow_u_turns",), "false"), "allow_u_turns must be true or false, got 'false'"),
    (_set(("demand", 0, "profile"), [["0", "4500"]]), r"profile\[0\] must be a \(start_s, veh_per_h\) pair of numbers"),
    (_set(("controls", 3, "bay"), "false"), "bay must be true or false, got 'false'"),
    (_set(("controls", 0, "phases", 0, "movements"), ["bridge", "off"]),
     r"phases\[0\]: movements must be a list of \[in_link, out_link\] pairs"),
    # values the network cannot hold
    (_set(("controls", 2, "lanes"), 5), r"lanes \(5\) exceeds the link's lanes \(2\)"),
    (_set(("controls", 0, "phases", 0, "movements"), []),
     "movement 'bridge' -> 'off' is used by flow bus 1 but has green in no phase"),
    (_set(("links",), []), "the network has no links"),
])
def test_typos_wrong_types_and_impossible_values_are_errors_naming_the_field(mutate, match):
    """Each mistake of a hand-written file is an error naming the table and the field (they used
    to load: a misspelt control field took its default, ``duration_s = true`` ran one second,
    ``allow_u_turns = "false"`` allowed U-turns, a blocking of 5 lanes ran on a 2-lane link)."""
    d = _scenario().to_dict()
    mutate(d)
    with pytest.raises(ts.ScenarioError, match=match):
        ts.Scenario.from_dict(d, source="site.toml")
    with pytest.raises(ts.ScenarioError, match="^site.toml: "):
        ts.Scenario.from_dict(d, source="site.toml")


def test_a_phase_given_one_bare_pair_is_an_error_not_two_movements():
    """``Phase(30, ("bridge", "off"))`` is one movement written without its tuple: the error says
    so instead of reading two movements 'b'->'r' and 'o'->'f'."""
    sc = _scenario()
    sc.controls[0] = ts.FixedTimeSignal("C", (ts.Phase(30, ("bridge", "off")),))
    with pytest.raises(ts.control.ControlError, match=r"one movement is written \(\(in_link, out_link\),\)"):
        sc.validate()


def test_a_length_in_km_by_mistake_warns():
    """A link 1,000 times shorter than the line between its nodes is a length typed in km."""
    net = ts.Network()
    net.add_node("A", 0.0, 0.0)
    net.add_node("B", 1500.0, 0.0)
    with pytest.warns(UserWarning, match="length_m=1.5 is less than 0.01 x the 1,500 m"):
        net.add_link("l", "A", "B", length_m=1.5, lanes=1)
    net.add_link("sketch", "B", "A", length_m=300.0, lanes=1)    # a schematic map: no warning
