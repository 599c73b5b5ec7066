"""Network, demand and scenario validation: bad input gets a clear error naming element and field."""

import math

import numpy as np

import pytest

import trafficsim as ts


def _net():
    net = ts.Network()
    for n in "ABC":
        net.add_node(n)
    return net


def test_fundamental_diagram_derived_quantities():
    net = _net()
    lk = net.add_link("a", "A", "B", length_m=1000, lanes=2, free_speed_kmh=100, capacity_vph_per_lane=2000,
                      jam_density_vpkm_per_lane=150)
    assert lk.critical_density_vpkm_per_lane == pytest.approx(20.0)
    assert lk.wave_speed_kmh == pytest.approx(2000 / 130)
    assert lk.free_flow_time_s == pytest.approx(36.0)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("length_m", 0, "link 'a': length_m must be > 0"),
        ("length_m", -5, "link 'a': length_m must be > 0"),
        ("length_m", math.nan, "link 'a': length_m must be finite"),
        ("length_m", math.inf, "link 'a': length_m must be finite"),
        ("lanes", 0, "link 'a': lanes must be >= 1"),
        ("lanes", 1.5, "link 'a': lanes must be a whole number"),
        ("lanes", math.nan, "link 'a': lanes must be a whole number"),
        ("lanes", math.inf, "link 'a': lanes must be a whole number"),
        ("lanes", "2", "link 'a': lanes must be a whole number"),
        ("lanes", True, "link 'a': lanes must be a whole number"),
        ("free_speed_kmh", 0, "link 'a': free_speed_kmh must be > 0"),
        ("capacity_vph_per_lane", "x", "link 'a': capacity_vph_per_lane must be a number"),
        ("jam_density_vpkm_per_lane", 10, "must be below jam_density_vpkm_per_lane"),
        ("jam_density_vpkm_per_lane", 40, "backward wave speed"),
        ("jam_density_vpkm_per_lane", 1000, "backward wave speed"),
    ],
)
def test_bad_link_fields_name_element_and_field(field, value, match):
    kw = dict(length_m=1000, lanes=2, free_speed_kmh=60, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    kw[field] = value
    with pytest.raises(ts.NetworkError, match=match):
        _net().add_link("a", "A", "B", **kw)


def test_numpy_lane_counts_are_accepted():
    # lane counts read from a table (pandas, numpy) are numpy integers or floats
    net = _net()
    lk = net.add_link("a", "A", "B", length_m=1000, lanes=np.int64(3), lane_schedule=[(600, np.int32(2))])
    assert lk.lanes == 3 and type(lk.lanes) is int
    assert lk.lane_schedule == ((600.0, 2),) and type(lk.lane_schedule[0][1]) is int
    assert net.add_link("b", "B", "C", length_m=1000, lanes=np.float64(2.0)).lanes == 2
    with pytest.raises(ts.NetworkError, match="link 'c': lanes must be a whole number"):
        net.add_link("c", "A", "C", length_m=1000, lanes=np.float64(1.5))
    net.connect_lanes("a", "b", [(np.int64(0), np.int64(0)), (np.int64(1), np.int64(1))])
    assert net.lane_connectors[("a", "b")] == ((0, 0), (1, 1))


def test_unknown_node_duplicate_ids_and_self_loop():
    net = _net()
    with pytest.raises(ts.NetworkError, match="link 'a': to_node 'Z' is not a node"):
        net.add_link("a", "A", "Z", length_m=100, lanes=1)
    net.add_link("a", "A", "B", length_m=100, lanes=1)
    with pytest.raises(ts.NetworkError, match="link 'a': duplicate id"):
        net.add_link("a", "A", "C", length_m=100, lanes=1)
    with pytest.raises(ts.NetworkError, match="node 'A': duplicate id"):
        net.add_node("A")
    with pytest.raises(ts.NetworkError, match="self-loops"):
        net.add_link("b", "A", "A", length_m=100, lanes=1)


def test_lane_schedule_validation():
    net = _net()
    with pytest.raises(ts.NetworkError, match="strictly increasing"):
        net.add_link("a", "A", "B", length_m=100, lanes=2, lane_schedule=[(100, 1), (50, 2)])
    with pytest.raises(ts.NetworkError, match=r"lane_schedule\[0\] lanes must be >= 0"):
        net.add_link("a", "A", "B", length_m=100, lanes=2, lane_schedule=[(100, -1)])
    with pytest.raises(ts.NetworkError, match=r"link 'a': lane_schedule\[0\] lanes must be a whole number"):
        net.add_link("a", "A", "B", length_m=100, lanes=2, lane_schedule=[(100, math.nan)])
    with pytest.raises(ts.NetworkError, match=r"lane connector 'ab' -> 'bc': lanes\[0\]\[0\] must be a whole number"):
        ab = _net()
        ab.add_link("ab", "A", "B", length_m=100, lanes=2)
        ab.add_link("bc", "B", "C", length_m=100, lanes=2)
        ab.connect_lanes("ab", "bc", [(math.inf, 0)])
    lk = net.add_link("a", "A", "B", length_m=100, lanes=2, lane_schedule=[(100, 1), (200, 3)])
    assert [lk.lanes_at(t) for t in (0, 99, 100, 150, 200, 1e9)] == [2, 2, 1, 1, 3, 3]
    assert lk.max_lanes == 3


def test_demand_errors():
    d = ts.Demand()
    with pytest.raises(ts.DemandError, match=r"flow A->B: profile\[0\] veh_per_h must be >= 0"):
        d.add("A", "B", [(0, -1)])
    with pytest.raises(ts.DemandError, match="strictly increasing"):
        d.add("A", "B", [(10, 1), (5, 2)])
    with pytest.raises(ts.DemandError, match="must be finite"):
        d.add("A", "B", [(0, math.nan)])
    with pytest.raises(ts.DemandError, match="vehicle_class"):
        d.add("A", "B", [(0, 1)], vehicle_class="tram")


def test_unreachable_destination_and_bad_route_are_clear():
    net = _net()
    net.add_link("ab", "A", "B", length_m=100, lanes=1)
    d = ts.Demand()
    d.add("A", "C", [(0, 100)])
    with pytest.raises(ts.DemandError, match="flow A->C: destination 'C' is unreachable from origin 'A'"):
        ts.Scenario(net, d, 100).validate()
    d = ts.Demand()
    d.add("A", "B", [(0, 100)], route=["nope"])
    with pytest.raises(ts.DemandError, match="link 'nope': not in the network"):
        ts.Scenario(net, d, 100).validate()
    d = ts.Demand()
    d.add("X", "B", [(0, 100)])
    with pytest.raises(ts.DemandError, match="origin 'X' is not a node"):
        ts.Scenario(net, d, 100).validate()


def test_shortest_path_respects_turn_bans_and_is_deterministic():
    net = ts.Network()
    for n in "ABCD":
        net.add_node(n)
    net.add_link("ab", "A", "B", length_m=1000, lanes=1)
    net.add_link("bd", "B", "D", length_m=1000, lanes=1)
    net.add_link("ac", "A", "C", length_m=1000, lanes=1)
    net.add_link("cd", "C", "D", length_m=1200, lanes=1)
    assert net.shortest_path("A", "D") == ["ab", "bd"]
    net.ban_turn("ab", "bd")
    assert net.shortest_path("A", "D") == ["ac", "cd"]


def test_scenario_duration_must_be_positive():
    with pytest.raises(ts.ScenarioError, match="duration_s must be finite and > 0"):
        ts.Scenario(ts.Network(), ts.Demand(), 0)


def test_lane_connectors_are_validated_and_round_trip():
    net = _net()
    net.add_link("ab", "A", "B", length_m=500, lanes=3)
    net.add_link("bc", "B", "C", length_m=500, lanes=2)
    net.add_link("ca", "C", "A", length_m=500, lanes=1)
    net.connect_lanes("ab", "bc", [(2, 1), (1, 0)])
    assert net.lane_connectors[("ab", "bc")] == ((1, 0), (2, 1))
    cases = [
        (("ab", "ca", [(0, 0)]), "'ab' ends at 'B' but 'ca' starts at 'C'"),
        (("ab", "bc", [(3, 0)]), r"lanes\[0\]: from-lane 3 does not exist \('ab' has 3\)"),
        (("ab", "bc", [(0, 2)]), r"lanes\[0\]: to-lane 2 does not exist \('bc' has 2\)"),
        (("ab", "bc", [(0, 0), (2, 1)]), r"from-lanes \[0, 2\] must be contiguous"),
        (("ab", "bc", [(0, 1), (1, 0)]), r"to-lanes \[1, 0\] cross"),
        (("ab", "bc", [(0, -1)]), r"lanes\[0\]\[1\] must be >= 0"),
        (("ab", "bc", []), "lanes is empty"),
    ]
    for args, match in cases:
        with pytest.raises(ts.NetworkError, match=match):
            net.connect_lanes(*args)
    back = ts.Network.from_dict(net.to_dict())
    assert back.lane_connectors == net.lane_connectors
    net.connect_lanes("ab", "bc", [(0, 0), (1, 0), (2, 1)])  # two lanes merge into one (zipper)
    assert net.lane_connectors[("ab", "bc")] == ((0, 0), (1, 0), (2, 1))
    assert net.copy().lane_connectors == net.lane_connectors
    with pytest.raises(ts.NetworkError, match=r"lane_connectors\[0\]: unknown field\(s\) \['lane'\]"):
        ts.Network.from_dict({**net.to_dict(), "lane_connectors": [{"from": "ab", "to": "bc", "lane": []}]})
    net.ban_turn("ab", "bc")
    assert ("ab", "bc") not in net.lane_connectors


def _reference_costs(net, origin):
    """Least cost to every node by Bellman-Ford over turns (the definition, slow and plain)."""
    best = {lid: lk.free_flow_time_s for lid, lk in net.links.items() if lk.from_node == origin}
    for _ in range(len(net.links)):
        changed = False
        for a, ca in list(best.items()):
            for b in net.out_links(net.links[a].to_node):
                if net.turn_allowed(a, b.id) and ca + b.free_flow_time_s < best.get(b.id, math.inf) - 1e-9:
                    best[b.id] = ca + b.free_flow_time_s
                    changed = True
        if not changed:
            break
    nodes = {}
    for lid, c in best.items():
        n = net.links[lid].to_node
        nodes[n] = min(nodes.get(n, math.inf), c)
    nodes.pop(origin, None)
    return nodes


@pytest.mark.parametrize("seed", range(6))
def test_path_finder_gives_least_cost_allowed_paths(seed):
    """On random grids with random turn bans, every path is allowed, connects the OD pair and
    costs what a Bellman-Ford over turns finds; unreachable nodes are reported as such."""
    rng = np.random.default_rng(seed)
    net = ts.Network()
    n = 5
    for i in range(n):
        for j in range(n):
            net.add_node(f"{i}_{j}", i * 100.0, j * 100.0)
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1), (-1, 0), (0, -1)):
                a, b = (i, j), (i + di, j + dj)
                if 0 <= b[0] < n and 0 <= b[1] < n and rng.random() < 0.85:
                    net.add_link(f"{a[0]}_{a[1]}>{b[0]}_{b[1]}", f"{a[0]}_{a[1]}", f"{b[0]}_{b[1]}",
                                 length_m=float(rng.uniform(50, 400)), lanes=1, free_speed_kmh=50.0,
                                 capacity_vph_per_lane=1800.0, jam_density_vpkm_per_lane=150.0)
    ids = list(net.links)
    for _ in range(15):
        a = ids[rng.integers(len(ids))]
        outs = [lk.id for lk in net.out_links(net.links[a].to_node)]
        if outs:
            net.ban_turn(a, outs[rng.integers(len(outs))])
    finder = ts.network.PathFinder(net)
    for origin in list(net.nodes)[::3]:
        ref = _reference_costs(net, origin)
        for dest in net.nodes:
            path = finder.path(origin, dest)
            if dest not in ref:
                assert path is None
                continue
            net.validate_route(path, origin, dest)
            assert sum(net.links[lid].free_flow_time_s for lid in path) == pytest.approx(ref[dest], rel=1e-12)
        assert finder.paths_from(origin) == net.shortest_paths_from(origin)


def test_path_finder_ties_go_to_the_link_added_first():
    """Two equal-cost routes A-B-D and A-C-D: the one whose links were added first wins, whatever
    the order of the node ids."""
    for first in ("C", "B"):
        net = ts.Network()
        for nid in "ABCD":
            net.add_node(nid)
        kw = dict(length_m=100.0, lanes=1, free_speed_kmh=50.0, capacity_vph_per_lane=1800.0,
                  jam_density_vpkm_per_lane=150.0)
        other = "B" if first == "C" else "C"
        for mid in (first, other):
            net.add_link(f"A{mid}", "A", mid, **kw)
            net.add_link(f"{mid}D", mid, "D", **kw)
        assert net.shortest_path("A", "D") == [f"A{first}", f"{first}D"]


def test_lane_connections_show_the_lanes_engines_drive_on():
    net = ts.Network()
    for nid, xy in {"W": (-500, 0), "D": (0, 0), "N": (0, 500), "S": (0, -500), "E": (500, 0)}.items():
        net.add_node(nid, *xy)
    kw = dict(length_m=500, free_speed_kmh=50, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    net.add_link("app", "W", "D", lanes=3, **kw)
    net.add_link("right", "D", "S", lanes=1, **kw)
    net.add_link("thru", "D", "E", lanes=2, lane_schedule=[(600.0, 1)], **kw)
    net.add_link("left", "D", "N", lanes=1, **kw)
    net.add_link("east-in", "E", "D", lanes=2, **kw)
    net.connect_lanes("app", "right", [(0, 0)])
    df = net.lane_connections(node="D").set_index(["from_link", "to_link"])
    assert set(df.index) == {("app", "right"), ("app", "thru"), ("app", "left"),
                             ("east-in", "right"), ("east-in", "left")}  # no U-turn east-in -> thru
    assert df.loc[("app", "right"), "explicit"] and not df.loc[("app", "thru"), "explicit"]
    assert df.loc[("app", "right"), "from_lanes"] == (0,)
    # three lanes onto a 2-lane road: a left-turn lane, the through movement keeps both of its lanes
    assert df.loc[("app", "thru"), "from_lanes"] == (0, 1) and df.loc[("app", "thru"), "to_lanes"] == (0, 1)
    assert df.loc[("app", "left"), "from_lanes"] == (2,)
    # with one lane of the through road open, the through movement's left lane ends
    later = net.lane_connections(600.0, node="D").set_index(["from_link", "to_link"])
    assert later.loc[("app", "thru"), "from_lanes"] == (1,) and later.loc[("app", "thru"), "to_lanes"] == (0,)
    assert len(net.lane_connections()) == len(df) + 1  # and the U-turn at the dead end E (its only way on)
    with pytest.raises(ts.NetworkError, match="'nowhere'"):
        net.lane_connections(node="nowhere")


def test_split_link_keeps_the_road_and_moves_its_downstream_end_to_the_tail():
    net = ts.Network()
    for n, x in (("A", 0), ("B", 1000), ("R", 600), ("C", 2000)):
        net.add_node(n, x, 0 if n != "R" else -300)
    net.add_link("main", "A", "B", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("ramp", "R", "B", length_m=400, lanes=1, free_speed_kmh=60, capacity_vph_per_lane=1600,
                 lane_schedule=[(600, 2)], priority=3.0, name="on-ramp")
    net.add_link("down", "B", "C", length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link("back", "B", "R", length_m=400, lanes=1)
    net.connect_lanes("ramp", "down", [(0, 0)])
    net.ban_turn("ramp", "back")
    tail = net.split_link("ramp", 300.0, node="M", tail="ramp-end")
    head = net.links["ramp"]
    assert (head.from_node, head.to_node, head.length_m, head.priority) == ("R", "M", 300.0, None)
    assert (tail.from_node, tail.to_node, tail.length_m, tail.priority) == ("M", "B", 100.0, 3.0)
    for lk in (head, tail):
        assert (lk.lanes, lk.lane_schedule, lk.free_speed_kmh, lk.capacity_vph_per_lane, lk.name) == \
            (1, ((600.0, 2),), 60.0, 1600.0, "on-ramp")
    assert (net.nodes["M"].x, net.nodes["M"].y) == pytest.approx((600 + 0.75 * 400, -300 + 0.75 * 300))
    assert net.lane_connectors == {("ramp-end", "down"): ((0, 0),)}
    assert net.banned_turns == {("ramp-end", "back")}
    assert net.shortest_path("R", "C") == ["ramp", "ramp-end", "down"]
    with pytest.raises(ts.NetworkError, match=r"link 'main': split at_m 1000 m must lie inside"):
        net.split_link("main", 1000.0)
    with pytest.raises(ts.NetworkError, match=r"link 'ramp-end': duplicate id"):
        net.split_link("ramp", 100.0, node="N", tail="ramp-end")
