"""SUMO import and export: a small net built with netconvert from plain XML in the test."""

import subprocess

import pytest

import trafficsim as ts
from trafficsim.demand import DemandError
from trafficsim.sumo_io import (
    demand_from_sumo,
    export_scenario,
    krauss_params,
    network_from_sumo,
    scenario_from_sumo,
    signals_from_sumo,
    sumo_binary,
)

NODES = """<nodes>
  <node id="W" x="-300" y="0" type="priority"/>
  <node id="X" x="0" y="0" type="traffic_light"/>
  <node id="E" x="300" y="0" type="priority"/>
  <node id="S" x="0" y="-300" type="priority"/>
</nodes>"""
EDGES = """<edges>
  <edge id="we" from="W" to="X" numLanes="2" speed="13.89"/>
  <edge id="xe" from="X" to="E" numLanes="2" speed="13.89"/>
  <edge id="sx" from="S" to="X" numLanes="1" speed="11.11"/>
  <edge id="ew" from="E" to="X" numLanes="1" speed="13.89"/>
  <edge id="xw" from="X" to="W" numLanes="1" speed="13.89"/>
  <edge id="foot" from="S" to="W" numLanes="1" speed="2" allow="pedestrian"/>
</edges>"""
# no connection sx -> xw: a banned left turn
CONNECTIONS = """<connections>
  <connection from="we" to="xe"/>
  <connection from="sx" to="xe"/>
  <connection from="ew" to="xw"/>
  <delete from="sx" to="xw"/>
</connections>"""
TLS = """<tlLogics>
  <tlLogic id="X" type="static" programID="p" offset="0">
    <phase duration="30" state="GGGrr"/>
    <phase duration="3" state="yyyrr"/>
    <phase duration="20" state="rrrGG"/>
    <phase duration="3" state="rrryy"/>
    <phase duration="2" state="rrrrr"/>
  </tlLogic>
</tlLogics>"""
ROUTES = """<routes>
  <vType id="bus" vClass="bus"/>
  <route id="main" edges="we xe"/>
  <flow id="f1" route="main" begin="0" end="1800" vehsPerHour="900"/>
  <flow id="f2" route="main" begin="1800" end="3600" period="6"/>
  <flow id="f3" from="sx" to="xe" begin="0" end="3600" number="300" type="bus"/>
  <vehicle id="v1" depart="10"><route edges="ew xw"/></vehicle>
  <vehicle id="v2" depart="20"><route edges="ew xw"/></vehicle>
</routes>"""


@pytest.fixture(scope="module")
def sumo_net(tmp_path_factory):
    d = tmp_path_factory.mktemp("sumonet")
    (d / "n.nod.xml").write_text(NODES)
    (d / "n.edg.xml").write_text(EDGES)
    (d / "n.con.xml").write_text(CONNECTIONS)
    (d / "routes.rou.xml").write_text(ROUTES)
    out = d / "n.net.xml"
    subprocess.run(
        [sumo_binary("netconvert"), "-n", str(d / "n.nod.xml"), "-e", str(d / "n.edg.xml"), "-x",
         str(d / "n.con.xml"), "-o", str(out), "--no-turnarounds", "--no-warnings"],
        check=True, capture_output=True,
    )
    return out


def test_network_from_sumo(sumo_net):
    net = ts.Network.from_sumo(sumo_net)
    assert set(net.links) == {"we", "xe", "sx", "ew", "xw"}  # the footpath is not for cars
    assert net.links["we"].lanes == 2 and net.links["sx"].lanes == 1
    assert net.links["we"].free_speed_kmh == pytest.approx(50.0, abs=0.1)
    assert net.links["sx"].free_speed_kmh == pytest.approx(40.0, abs=0.1)
    assert 250 < net.links["we"].length_m < 300  # SUMO trims edges at the junction shape
    assert net.links["we"].from_node == "W" and net.links["we"].to_node == "X"
    assert not net.turn_allowed("sx", "xw")
    assert net.turn_allowed("sx", "xe") and net.turn_allowed("we", "xe")
    assert net.nodes["X"].x - net.nodes["W"].x == pytest.approx(300.0)  # netconvert shifts the origin


def test_signals_from_sumo_map_phases(sumo_net, tmp_path):
    # replace netconvert's program with ours (known link order) by re-running with a tls file
    d = sumo_net.parent
    (d / "p.tll.xml").write_text(TLS)
    out = tmp_path / "tls.net.xml"
    subprocess.run(
        [sumo_binary("netconvert"), "-s", str(sumo_net), "--tllogic-files", str(d / "p.tll.xml"), "-o", str(out),
         "--no-warnings"],
        check=True, capture_output=True,
    )
    net = network_from_sumo(out)
    sigs = signals_from_sumo(out, net, program="p")
    assert len(sigs) == 1
    sig = sigs[0]
    assert sig.node == "X"
    assert sig.cycle_s == pytest.approx(58.0)
    assert [p.green_s for p in sig.phases] == [30.0, 20.0]
    assert [p.amber_s for p in sig.phases] == [3.0, 3.0]
    assert sig.phases[1].all_red_s == 2.0
    import sumolib

    tls = sumolib.net.readNet(str(out), withPrograms=True).getTLS("X")
    by_index: dict[int, set] = {}
    for a, b, i in tls.getConnections():
        by_index.setdefault(i, set()).add((a.getEdge().getID(), b.getEdge().getID()))
    states = [ph.state for ph in tls.getPrograms()["p"].getPhases()]
    for phase, state in zip(sig.phases, (states[0], states[2])):
        expected = set().union(*(by_index.get(i, set()) for i, ch in enumerate(state) if ch == "G"))
        assert set(phase.movements) == expected and expected


def test_demand_from_sumo(sumo_net):
    net = network_from_sumo(sumo_net)
    d = demand_from_sumo(sumo_net.parent / "routes.rou.xml", net, duration_s=3600, bin_s=900)
    by_route = {(f.routes[0][0], f.vehicle_class): f for f in d.flows}
    main = by_route[(("we", "xe"), "car")]
    assert main.rate_at(0) == pytest.approx(900) and main.rate_at(2000) == pytest.approx(600)
    bus = by_route[(("sx", "xe"), "bus")]
    assert bus.rate_at(100) == pytest.approx(300)
    single = by_route[(("ew", "xw"), "car")]
    assert single.total(3600) == pytest.approx(2.0)
    assert main.origin == "W" and main.destination == "E"


def test_unmapped_route_is_an_error_or_skipped(sumo_net, tmp_path):
    net = network_from_sumo(sumo_net)
    bad = tmp_path / "bad.rou.xml"
    bad.write_text('<routes><flow id="x" begin="0" end="60" vehsPerHour="10"><route edges="foot"/></flow></routes>')
    with pytest.raises(DemandError, match="not in the network"):
        demand_from_sumo(bad, net)
    assert demand_from_sumo(bad, net, on_unmapped="skip").flows == []


def test_a_file_that_is_not_a_network_or_not_xml_is_an_error_naming_it(sumo_net, tmp_path):
    """A route file given as the network used to import as an empty network (0 nodes, 0 links)
    that failed only when run; a broken route file gave a ParseError without its name."""
    with pytest.raises(ts.NetworkError, match=r"routes.rou.xml': not a SUMO network: its root element is <routes>, "
                                           r"expected <net>"):
        network_from_sumo(sumo_net.parent / "routes.rou.xml")
    broken = tmp_path / "broken.rou.xml"
    broken.write_text('<routes><flow id="x"')
    with pytest.raises(DemandError, match=r"SUMO file '.*broken.rou.xml': malformed XML"):
        demand_from_sumo(broken, network_from_sumo(sumo_net))


def test_imported_scenario_runs_on_macro_and_sumo(sumo_net):
    sc = scenario_from_sumo(sumo_net, [sumo_net.parent / "routes.rou.xml"], duration_s=600)
    assert {s.node for s in sc.controls} == {"X"}
    rm = ts.simulate(sc, engine="macro")
    rs = ts.simulate(sc, engine="sumo", dt_s=1.0)
    for r in (rm, rs):
        assert r.kpis["completed"] > 50
    assert rs.kpis["entered"] == pytest.approx(rm.kpis["entered"], rel=0.1)


def test_export_round_trip(tmp_path):
    net = ts.Network()
    net.add_node("A")
    net.add_node("B")
    net.add_node("C")
    net.add_node("D")
    net.add_link("ab", "A", "B", length_m=800, lanes=3, free_speed_kmh=70)
    net.add_link("bc", "B", "C", length_m=600, lanes=2, free_speed_kmh=50)
    net.add_link("bd", "B", "D", length_m=500, lanes=1, free_speed_kmh=40)
    net.ban_turn("ab", "bd")
    d = ts.Demand()
    d.add("A", "C", [(0, 1000)])
    sc = ts.Scenario(net, d, 600)
    exp = export_scenario(sc, tmp_path)
    back = network_from_sumo(exp.net_file)
    for lid, lk in net.links.items():
        assert back.links[lid].lanes == lk.lanes
        assert back.links[lid].length_m == pytest.approx(lk.length_m)
        assert back.links[lid].free_speed_kmh == pytest.approx(lk.free_speed_kmh, abs=0.05)  # SUMO keeps m/s to 2 decimals
    assert not back.turn_allowed("ab", "bd") and back.turn_allowed("ab", "bc")


def test_export_turn_flows_and_signal_measures_sum_the_same_movement_peaks():
    """The SUMO export's turn flows (junction types, layout) and the signal measures' movement
    flows (Webster, bus priority) are one sum: each flow at its peak rate times the route's
    share, per (in_link, out_link)."""
    from trafficsim.engines._common import build_routes
    from trafficsim.measures.signals import movement_peak_flows
    from trafficsim.sumo_io import _turn_flows

    net = ts.Network()
    for n in "ABCDE":
        net.add_node(n)
    net.add_link("ab", "A", "B", length_m=500, lanes=1)
    net.add_link("bc", "B", "C", length_m=500, lanes=1)
    net.add_link("bd", "B", "D", length_m=500, lanes=1)
    net.add_link("cd", "C", "D", length_m=500, lanes=1)
    net.add_link("de", "D", "E", length_m=500, lanes=1)
    d = ts.Demand()
    d.add("A", "E", [(0, 600), (600, 900), (1200, 300)], routes=[(["ab", "bc", "cd", "de"], 0.25), (["ab", "bd", "de"], 0.75)])
    d.add("B", "E", [(0, 200)], vehicle_class="bus")
    sc = ts.Scenario(net, d, 1800)
    want = {("ab", "bc"): 225.0, ("bc", "cd"): 225.0, ("cd", "de"): 225.0, ("ab", "bd"): 675.0, ("bd", "de"): 875.0}
    assert movement_peak_flows(sc) == pytest.approx(want)
    assert _turn_flows(sc) == movement_peak_flows(sc)
    assert movement_peak_flows(sc, vehicle_class="bus") == {("bd", "de"): 200.0}
    # candidate routes the run loop has not split yet (share 0) add nothing
    assert _turn_flows(sc, build_routes(sc, candidates=3)) == movement_peak_flows(sc)
    lib = ts.scenarios.load("jiangwan-bridge")
    assert _turn_flows(lib) == movement_peak_flows(lib)


def test_lane_connectors_export_lane_by_lane(tmp_path):
    net = ts.Network()
    for n, xy in {"A": (0, 0), "B": (800, 0), "C": (1400, 0), "D": (1100, 300)}.items():
        net.add_node(n, *xy)
    net.add_link("ab", "A", "B", length_m=800, lanes=3, free_speed_kmh=70)
    net.add_link("bc", "B", "C", length_m=600, lanes=2, free_speed_kmh=50)
    net.add_link("bd", "B", "D", length_m=500, lanes=1, free_speed_kmh=40)
    net.connect_lanes("ab", "bd", [(2, 0)])        # a left turn from the left lane only
    net.connect_lanes("ab", "bc", [(0, 0), (1, 1)])
    d = ts.Demand()
    d.add("A", "C", [(0, 1000)])
    exp = export_scenario(ts.Scenario(net, d, 600), tmp_path)
    import sumolib

    sn = sumolib.net.readNet(str(exp.net_file))
    pairs = set()
    for e in sn.getEdges():
        for conns in e.getOutgoing().values():
            for c in conns:
                pairs.add((c.getFrom().getID(), c.getTo().getID(), c.getFromLane().getIndex(), c.getToLane().getIndex()))
    assert {p for p in pairs if p[0] == "ab"} == {("ab", "bd", 2, 0), ("ab", "bc", 0, 0), ("ab", "bc", 1, 1)}


def test_krauss_params_reproduce_the_fundamental_diagram():
    net = ts.Network()
    net.add_node("A")
    net.add_node("B")
    lk = net.add_link("x", "A", "B", length_m=100, lanes=1, free_speed_kmh=60, capacity_vph_per_lane=1800,
                      jam_density_vpkm_per_lane=150)
    p = krauss_params(lk)
    spacing = p["length"] + p["minGap"]
    assert 1000 / spacing == pytest.approx(150)
    assert 3600 / (spacing / (60 / 3.6) + p["tau"]) == pytest.approx(1800)
    # Newell: the wave speed of Krauss' steady states equals the link's triangular FD
    assert spacing / p["tau"] * 3.6 == pytest.approx(lk.wave_speed_kmh, rel=1e-9)


def _signalised_cross(protected_lefts: bool) -> ts.Scenario:
    """A 4-leg signalised cross, 2 lanes per leg; lefts in their own phases or permissive."""
    net = ts.Network()
    for n, xy in {"C": (0, 0), "N": (0, 300), "S": (0, -300), "E": (300, 0), "W": (-300, 0)}.items():
        net.add_node(n, *xy)
    for a in "NSEW":
        net.add_link(f"{a}in", a, "C", length_m=300, lanes=2)
        net.add_link(f"{a}out", "C", a, length_m=300, lanes=2)
    left = {"N": "E", "S": "W", "E": "S", "W": "N"}
    right = {"N": "W", "S": "E", "E": "N", "W": "S"}
    through = {"N": "S", "S": "N", "E": "W", "W": "E"}
    d = ts.Demand()
    for a in "NSEW":
        for b in (left[a], right[a], through[a]):
            d.add(a, b, [(0, 100)])

    def mv(approaches, turns):
        return tuple((f"{a}in", f"{t[a]}out") for a in approaches for t in turns)

    if protected_lefts:
        phases = (ts.Phase(25, mv("NS", (through, right))), ts.Phase(12, mv("NS", (left,))),
                  ts.Phase(25, mv("EW", (through, right))), ts.Phase(12, mv("EW", (left,))))
    else:
        phases = (ts.Phase(37, mv("NS", (through, right, left))), ts.Phase(37, mv("EW", (through, right, left))))
    return ts.Scenario(net, d, 600, controls=[ts.FixedTimeSignal("C", phases)])


@pytest.mark.parametrize("protected_lefts", [False, True])
def test_signal_program_lets_permissive_movements_yield(tmp_path, protected_lefts):
    """A green movement that SUMO's junction logic makes yield to another movement green in the
    same phase (a permissive left against the opposing through) gets ``g``, not ``G``: with ``G``
    on both SUMO ignores the conflict and vehicles cross through each other (junction collisions,
    emergency braking). Movements alone in their phase (protected lefts) keep ``G``."""
    import xml.etree.ElementTree as ET

    sc = _signalised_cross(protected_lefts)
    exp = export_scenario(sc, tmp_path)
    links = exp.tls_links["C"]
    prog = next(t for t in ET.parse(exp.additional_file).getroot().iter("tlLogic"))
    greens = [ph.get("state") for ph in prog.iter("phase") if set(ph.get("state")) & set("Gg")]
    assert len(greens) == len(sc.controls[0].phases)
    left = {("Nin", "Eout"), ("Sin", "Wout"), ("Ein", "Sout"), ("Win", "Nout")}
    for state, phase in zip(greens, sc.controls[0].phases):
        for i, mv in enumerate(links):
            if mv not in phase.movements:
                assert state[i] == "r"
            elif mv in left and not protected_lefts:
                assert state[i] == "g", (mv, state)
            elif mv not in left:
                assert state[i] == "G", (mv, state)  # through and right turns keep priority
            else:
                assert state[i] == "G", (mv, state)  # a protected left has no foe in its phase


def test_latin1_and_hash_ids_export_and_run(tmp_path):
    """Ids SUMO accepts as they are (Latin-1 letters, '#') go to SUMO unchanged. Ids it rejects
    are exported under safe forms: tests/test_sumo_ids.py."""
    net = ts.Network()
    for i, n in enumerate(("A", "ü", "n#3")):
        net.add_node(n, 500.0 * i, 0.0)
    net.add_link("straße", "A", "ü", length_m=500, lanes=2)
    net.add_link("e#f", "ü", "n#3", length_m=500, lanes=2)
    d = ts.Demand()
    d.add("A", "n#3", [(0, 600)])
    res = ts.simulate(ts.Scenario(net, d, 300), engine="sumo", dt_s=1.0)
    assert res.kpis["completed"] > 0
    assert res.kpis["demand"] == res.kpis["completed"] + res.kpis["inside"] + res.kpis["unserved"]


def test_cross_without_coordinates_exports_through_movements_straight(tmp_path):
    """Nodes without x, y are laid out for SUMO; around a 4-leg junction the legs are spread so
    that the most demanded movement of each leg is straight on. (The 35-degree fan put all four
    legs in one half-plane: SUMO took N -> S for a right turn and gave it one lane of two.)"""
    import sumolib

    sc = _signalised_cross(protected_lefts=False)
    net = ts.Network()
    for nid in sc.network.nodes:
        net.add_node(nid)  # no coordinates
    for lk in sc.network.links.values():
        net.add_link(lk.id, lk.from_node, lk.to_node, length_m=lk.length_m, lanes=lk.lanes)
    d = ts.Demand()
    for f in sc.demand.flows:
        q = 500 if {f.origin, f.destination} in ({"N", "S"}, {"E", "W"}) else 100
        d.add(f.origin, f.destination, [(0, q)])
    exp = export_scenario(ts.Scenario(net, d, 600, controls=sc.controls), tmp_path)
    sn = sumolib.net.readNet(str(exp.net_file))
    for a, b in (("Nin", "Sout"), ("Sin", "Nout"), ("Ein", "Wout"), ("Win", "Eout")):
        conns = sn.getEdge(a).getOutgoing()[sn.getEdge(b)]
        assert {c.getDirection() for c in conns} == {"s"}, (a, b)
        assert len(conns) == 2, (a, b)  # both lanes carry the through movement


def _netconvert(d, nodes: str, edges: str, connections: str | None = None, *options):
    (d / "n.nod.xml").write_text(nodes)
    (d / "n.edg.xml").write_text(edges)
    cmd = [sumo_binary("netconvert"), "-n", str(d / "n.nod.xml"), "-e", str(d / "n.edg.xml"), "-o", str(d / "n.net.xml"),
           "--no-warnings", *options]
    if connections is not None:
        (d / "n.con.xml").write_text(connections)
        cmd += ["-x", str(d / "n.con.xml")]
    subprocess.run(cmd, check=True, capture_output=True)
    return d / "n.net.xml"


# a street A - B - C with a dead end at C (netconvert's turnaround there) and a side street B - D
DEAD_END_NODES = """<nodes>
  <node id="A" x="0" y="0" type="priority"/>
  <node id="B" x="400" y="0" type="priority"/>
  <node id="C" x="800" y="0" type="priority"/>
  <node id="D" x="400" y="-400" type="priority"/>
</nodes>"""
DEAD_END_EDGES = """<edges>
  <edge id="ab" from="A" to="B" numLanes="1" speed="13.89"/>
  <edge id="ba" from="B" to="A" numLanes="1" speed="13.89"/>
  <edge id="bc" from="B" to="C" numLanes="1" speed="13.89"/>
  <edge id="cb" from="C" to="B" numLanes="1" speed="13.89"/>
  <edge id="bd" from="B" to="D" numLanes="1" speed="13.89"/>
  <edge id="db" from="D" to="B" numLanes="1" speed="13.89"/>
</edges>"""


def test_round_trips_and_turnarounds_import_and_run(tmp_path):
    """Routes generated on a SUMO network (randomTrips, duarouter) may turn round where SUMO has a
    turnaround connection and may end where they started. Both import, run on macro, micro and
    SUMO (whose export keeps the turnaround), and conserve vehicles."""
    net_file = _netconvert(tmp_path, DEAD_END_NODES, DEAD_END_EDGES, None, "--no-turnarounds.except-deadend")
    (tmp_path / "r.rou.xml").write_text("""<routes>
  <flow id="loop" begin="0" end="600" vehsPerHour="300"><route edges="ab bc cb ba"/></flow>
  <flow id="side" begin="0" end="600" vehsPerHour="200"><route edges="db bc cb bd"/></flow>
  <flow id="plain" begin="0" end="600" vehsPerHour="200"><route edges="ab bd"/></flow>
</routes>""")
    net = network_from_sumo(net_file)
    assert net.turn_allowed("bc", "cb")            # SUMO's dead-end turnaround
    assert not net.turn_allowed("ab", "ba")        # no turnaround at B in SUMO's network
    sc = scenario_from_sumo(net_file, [tmp_path / "r.rou.xml"], duration_s=900)
    assert {f.origin for f in sc.demand.flows if f.origin == f.destination} == {"A", "D"}
    for engine, opts in (("macro", {}), ("micro", {"seed": 0}), ("sumo", {"dt_s": 1.0})):
        res = ts.simulate(sc, engine=engine, **opts)
        k = res.kpis
        assert k["demand"] == pytest.approx(k["completed"] + k["inside"] + k["unserved"], abs=1e-6)
        assert k["completed"] > 0.9 * k["demand"] - 20, engine  # every route, the loops too, gets through
        last = res.data["route_arrived"].isel(time=-1)
        loop = (res.data["route_origin"] == res.data["route_destination"]).values
        assert loop.sum() == 2 and float(last[loop].sum()) > 0.8 * 500 * 600 / 3600, engine


def test_a_round_trip_needs_an_explicit_route():
    with pytest.raises(DemandError, match="same node 'A'.*explicit route"):
        ts.Demand().add("A", "A", [(0, 100)])
    f = ts.Demand().add("A", "A", [(0, 100)], route=["ab", "ba"])
    assert f.routes == ((("ab", "ba"), 1.0),)


T_NODES = """<nodes>
  <node id="J" x="0" y="0" type="{kind}"/>
  <node id="W" x="-300" y="0" type="priority"/>
  <node id="E" x="300" y="0" type="priority"/>
  <node id="S" x="0" y="-300" type="priority"/>
</nodes>"""
T_EDGES = """<edges>
  <edge id="wj" from="W" to="J" numLanes="1" speed="13.89" priority="{p_main}"/>
  <edge id="jw" from="J" to="W" numLanes="1" speed="13.89" priority="{p_main}"/>
  <edge id="ej" from="E" to="J" numLanes="1" speed="13.89" priority="{p_main}"/>
  <edge id="je" from="J" to="E" numLanes="1" speed="13.89" priority="{p_main}"/>
  <edge id="sj" from="S" to="J" numLanes="1" speed="13.89" priority="{p_side}"/>
  <edge id="js" from="J" to="S" numLanes="1" speed="13.89" priority="{p_side}"/>
</edges>"""


@pytest.mark.parametrize("kind, p_main, p_side, major", [
    ("priority", 2, 1, {"wj", "ej"}),            # the through road outranks the side street
    ("priority", 1, 2, {"sj"}),                  # the side street outranks it: SUMO's major road bends
    ("right_before_left", 2, 1, ()),             # no major road: everyone gives way to the right
    ("zipper", 2, 1, None),                      # no counterpart: no control
])
def test_priority_junctions_import_with_sumos_major_road(tmp_path, kind, p_main, p_side, major):
    net_file = _netconvert(tmp_path, T_NODES.format(kind=kind), T_EDGES.format(p_main=p_main, p_side=p_side))
    from trafficsim.sumo_io import junctions_from_sumo

    net = network_from_sumo(net_file)
    js = junctions_from_sumo(net_file, net)
    if major is None:
        assert js == []
        return
    (j,) = js
    assert j.node == "J" and j.rule == ("priority" if major else "right_before_left")
    # where SUMO's major road bends (side street onto the west arm: sj and wj have major
    # connections), which a PriorityJunction cannot hold, its higher-ranked in-link alone
    assert set(j.major) == set(major)
    sc = scenario_from_sumo(net_file, [], duration_s=60)
    assert [c.node for c in sc.controls] == ["J"]
    assert scenario_from_sumo(net_file, [], duration_s=60, junctions=False).controls == []


def test_route_distributions_split_their_flow(sumo_net, tmp_path):
    net = network_from_sumo(sumo_net)
    rou = tmp_path / "dist.rou.xml"
    rou.write_text("""<routes>
  <route id="main" edges="we xe"/>
  <routeDistribution id="mix">
    <route refId="main" probability="3"/>
    <route edges="sx xe" probability="1"/>
  </routeDistribution>
  <flow id="f" route="mix" begin="0" end="3600" vehsPerHour="800"/>
</routes>""")
    d = demand_from_sumo(rou, net, duration_s=3600)
    rates = {f.routes[0][0]: f.rate_at(100) for f in d.flows}
    assert rates == {("we", "xe"): pytest.approx(600), ("sx", "xe"): pytest.approx(200)}
    rou.write_text('<routes><flow id="g" route="nowhere" begin="0" end="60" vehsPerHour="10"/></routes>')
    with pytest.raises(DemandError, match="flow 'g': route 'nowhere' is not defined in dist.rou.xml"):
        demand_from_sumo(rou, net)


MERGE_NODES = """<nodes>
  <node id="A" x="0" y="0" type="priority"/>
  <node id="M" x="500" y="0" type="priority"/>
  <node id="B" x="1000" y="0" type="priority"/>
  <node id="R" x="200" y="-200" type="priority"/>
</nodes>"""
MERGE_EDGES = """<edges>
  <edge id="main" from="A" to="M" numLanes="2" speed="27.78" priority="3"/>
  <edge id="ramp" from="R" to="M" numLanes="1" speed="16.67" priority="1"/>
  <edge id="down" from="M" to="B" numLanes="{down}" speed="27.78" priority="3"/>
</edges>"""


@pytest.mark.parametrize("down, controlled", [(3, False), (2, True)])
def test_a_merge_onto_added_lanes_gets_no_priority_junction(tmp_path, down, controlled):
    """SUMO lets a ramp that gets its own lane downstream in without giving way (every connection
    ``M``); onto as many lanes as the main road has, the ramp gives way (``m``)."""
    from trafficsim.sumo_io import junctions_from_sumo

    net_file = _netconvert(tmp_path, MERGE_NODES, MERGE_EDGES.format(down=down))
    js = junctions_from_sumo(net_file, network_from_sumo(net_file))
    assert [(j.node, j.major) for j in js] == ([("M", ("main",))] if controlled else [])


def test_imported_capacity_follows_the_speed_limit(tmp_path):
    from trafficsim.sumo_io import import_capacity

    assert import_capacity(50.0) == import_capacity(70.0) == 1800.0
    assert import_capacity(90.0) == 2250.0 and import_capacity(130.0) == 2400.0
    assert 1800.0 < import_capacity(80.0) < 2250.0 < import_capacity(100.0) < 2400.0
    net_file = _netconvert(tmp_path, MERGE_NODES, MERGE_EDGES.format(down=3))
    net = network_from_sumo(net_file)
    assert net.links["main"].capacity_vph_per_lane == pytest.approx(import_capacity(100.0), rel=1e-3)
    assert net.links["ramp"].capacity_vph_per_lane == 1800.0
    assert network_from_sumo(net_file, capacity_vph_per_lane=2000.0).links["main"].capacity_vph_per_lane == 2000.0
    for lk in net.links.values():
        assert lk.wave_speed_kmh <= 25.0 + 1e-9


def test_lane_connections_import_as_lane_connectors(tmp_path):
    """SUMO's lane-to-lane connections become the network's lane connectors (SUMO counts lanes
    from the right as trafficsim does; a sidewalk lane 0 shifts the car lanes down by one)."""
    nodes = MERGE_NODES
    edges = """<edges>
  <edge id="main" from="A" to="M" numLanes="4" speed="13.89">
    <lane index="0" allow="pedestrian" width="2"/><lane index="1"/><lane index="2"/><lane index="3"/>
  </edge>
  <edge id="ramp" from="R" to="M" numLanes="1" speed="13.89"/>
  <edge id="down" from="M" to="B" numLanes="2" speed="13.89"/>
</edges>"""
    conns = """<connections>
  <connection from="main" to="down" fromLane="1" toLane="0"/>
  <connection from="main" to="down" fromLane="2" toLane="1"/>
  <connection from="ramp" to="down" fromLane="0" toLane="0"/>
  <delete from="main" to="ramp"/>
</connections>"""
    net_file = _netconvert(tmp_path, nodes, edges, conns, "--no-turnarounds")
    net = network_from_sumo(net_file)
    assert net.links["main"].lanes == 3           # the sidewalk is not a car lane
    assert net.lane_connectors[("main", "down")] == ((0, 0), (1, 1))   # car lane 2 (SUMO 3) ends
    assert net.lane_connectors[("ramp", "down")] == ((0, 0),)
    row = net.lane_connections(node="M").set_index(["from_link", "to_link"]).loc[("main", "down")]
    assert row["explicit"] and tuple(row["from_lanes"]) == (0, 1)


def test_trips_by_junctions_via_edges_and_taz(tmp_path):
    net = network_from_sumo(_netconvert(tmp_path, DEAD_END_NODES, DEAD_END_EDGES, None,
                                        "--no-turnarounds.except-deadend"))
    rou = tmp_path / "trips.rou.xml"
    rou.write_text("""<routes>
  <trip id="j" depart="0" fromJunction="A" toJunction="D"/>
  <trip id="v" depart="5" from="ab" to="bd" via="cb"/>
  <flow id="f" begin="0" end="900" number="9" fromJunction="D" toJunction="A"/>
</routes>""")
    d = demand_from_sumo(rou, net, duration_s=900)
    got = {f.routes[0][0]: f.total(900) for f in d.flows}
    assert got == {("ab", "bd"): pytest.approx(1.0), ("ab", "bc", "cb", "bd"): pytest.approx(1.0),
                   ("db", "ba"): pytest.approx(9.0)}
    rou.write_text('<routes><trip id="t" depart="0" fromTaz="a" toTaz="b"/></routes>')
    with pytest.raises(DemandError, match="trip 't': TAZ 'a' is not defined"):
        demand_from_sumo(rou, net)
    rou.write_text('<routes><trip id="u" depart="0" fromJunction="A" toJunction="Q"/></routes>')
    with pytest.raises(DemandError, match="trip 'u': .*'Q'"):
        demand_from_sumo(rou, net)
    assert demand_from_sumo(rou, net, on_unmapped="skip").flows == []


def test_taz_trips_take_the_fastest_route_between_their_zones(tmp_path):
    """Trips and flows between zones (``fromTaz``/``toTaz``, zones in an additional file) take
    the fastest route from a source edge of the one to a sink edge of the other, as SUMO routes
    them; trips from ``od2trips`` that also name their edges keep those edges."""
    net_file = _netconvert(tmp_path, DEAD_END_NODES, DEAD_END_EDGES, None, "--no-turnarounds.except-deadend")
    net = network_from_sumo(net_file)
    zones = tmp_path / "zones.add.xml"
    zones.write_text("""<additional>
  <taz id="west" edges="ab ba"/>
  <taz id="rest"><tazSource id="db" weight="1"/><tazSource id="cb" weight="0"/>
    <tazSink id="bc" weight="2"/><tazSink id="bd" weight="1"/></taz>
</additional>""")
    rou = tmp_path / "taz.rou.xml"
    rou.write_text("""<routes>
  <flow id="f" begin="0" end="900" number="90" fromTaz="west" toTaz="rest"/>
  <trip id="t" depart="10" fromTaz="rest" toTaz="west"/>
  <trip id="o" depart="20" from="cb" to="ba" fromTaz="rest" toTaz="west"/>
</routes>""")
    from trafficsim.sumo_io import taz_from_sumo

    assert taz_from_sumo(zones)["rest"] == ([("db", 1.0), ("cb", 0.0)], [("bc", 2.0), ("bd", 1.0)])
    d = demand_from_sumo(rou, net, duration_s=900, taz=taz_from_sumo(zones))
    got = {f.routes[0][0]: f.total(900) for f in d.flows}
    # west -> rest: from ab (ba leads away; bc and bd tie, the first listed wins); rest -> west: db (cb has weight 0)
    assert got == {("ab", "bc"): pytest.approx(90.0), ("db", "ba"): pytest.approx(1.0),
                   ("cb", "ba"): pytest.approx(1.0)}
    sc = scenario_from_sumo(net_file, [zones, rou], duration_s=900)
    assert sum(f.total(900) for f in sc.demand.flows) == pytest.approx(92.0)
    rou.write_text('<routes><trip id="h" depart="0" fromTaz="west"/></routes>')
    with pytest.raises(DemandError, match="trip 'h': fromTaz and toTaz go together"):
        demand_from_sumo(rou, net, taz=taz_from_sumo(zones))


def test_vtype_distributions_split_the_demand_by_vehicle_class(tmp_path):
    net = network_from_sumo(_netconvert(tmp_path, DEAD_END_NODES, DEAD_END_EDGES, None,
                                        "--no-turnarounds.except-deadend"))
    rou = tmp_path / "mix.rou.xml"
    rou.write_text("""<routes>
  <vTypeDistribution id="mix">
    <vType id="car" vClass="passenger" probability="0.8"/>
    <vType id="lorry" vClass="truck" probability="0.15"/>
    <vType id="coach" vClass="coach" probability="0.05"/>
  </vTypeDistribution>
  <vType id="b" vClass="bus" probability="1"/><vType id="c" vClass="passenger" probability="3"/>
  <vTypeDistribution id="named" vTypes="b c"/>
  <flow id="f" type="mix" begin="0" end="3600" vehsPerHour="1000" from="ab" to="bc"/>
  <flow id="g" type="named" begin="0" end="3600" vehsPerHour="400" from="cb" to="ba"/>
</routes>""")
    d = demand_from_sumo(rou, net, duration_s=3600)
    got = {(f.routes[0][0], f.vehicle_class): f.total(3600) for f in d.flows}
    assert got == {(("ab", "bc"), "car"): pytest.approx(800.0), (("ab", "bc"), "truck"): pytest.approx(150.0),
                   (("ab", "bc"), "bus"): pytest.approx(50.0), (("cb", "ba"), "bus"): pytest.approx(100.0),
                   (("cb", "ba"), "car"): pytest.approx(300.0)}


def test_bicycles_and_trains_are_left_out_and_types_may_come_from_another_file(tmp_path):
    """The engines model road vehicles: a flow of bicycles (or the bicycle share of a type
    distribution) is left out with a warning that counts it, not refused as a route over edges
    the network lacks; vehicle types defined in another of the scenario's files apply."""
    net_file = _netconvert(tmp_path, DEAD_END_NODES, DEAD_END_EDGES, None, "--no-turnarounds.except-deadend")
    types = tmp_path / "types.add.xml"
    types.write_text("""<additional>
  <vType id="bike" vClass="bicycle"/><vType id="lorry" vClass="truck"/><vType id="car" vClass="passenger"/>
  <vTypeDistribution id="street" vTypes="car bike" probabilities="0.75 0.25"/>
</additional>""")
    rou = tmp_path / "mixed.rou.xml"
    rou.write_text("""<routes>
  <flow id="b" type="bike" begin="0" end="3600" vehsPerHour="500" from="bike_only" to="elsewhere"/>
  <flow id="t" type="lorry" begin="0" end="3600" vehsPerHour="100" from="ab" to="bc"/>
  <flow id="s" type="street" begin="0" end="3600" vehsPerHour="400" from="cb" to="ba"/>
</routes>""")
    with pytest.warns(UserWarning, match=r"2 flow\(s\).*\(bicycle\): left out"):
        sc = scenario_from_sumo(net_file, [types, rou], duration_s=3600)
    got = {(f.routes[0][0], f.vehicle_class): f.total(3600) for f in sc.demand.flows}
    assert got == {(("ab", "bc"), "truck"): pytest.approx(100.0), (("cb", "ba"), "car"): pytest.approx(300.0)}


def test_edges_shorter_than_half_a_second_are_lengthened(tmp_path):
    """SUMO's tiny edges inside complex junctions would force the engines' steps down to their
    free-flow time; the import lengthens them to half a second at their speed limit."""
    nodes = """<nodes>
  <node id="A" x="0" y="0" type="priority"/><node id="B" x="300" y="0" type="priority"/>
  <node id="C" x="303" y="0" type="priority"/><node id="D" x="600" y="0" type="priority"/>
</nodes>"""
    edges = """<edges>
  <edge id="ab" from="A" to="B" numLanes="1" speed="13.89"/>
  <edge id="bc" from="B" to="C" numLanes="1" speed="13.89" length="3"/>
  <edge id="cd" from="C" to="D" numLanes="1" speed="13.89"/>
</edges>"""
    net_file = _netconvert(tmp_path, nodes, edges, None, "--no-turnarounds")
    net = network_from_sumo(net_file)
    assert net.links["bc"].length_m == pytest.approx(13.89 * 0.5, rel=1e-3)
    assert net.links["ab"].length_m > 250                      # long edges keep their length
    assert network_from_sumo(net_file, min_travel_time_s=0).links["bc"].length_m == pytest.approx(3.0, abs=0.01)
    (tmp_path / "r.rou.xml").write_text('<routes><flow id="f" begin="0" end="300" vehsPerHour="900">'
                                        '<route edges="ab bc cd"/></flow></routes>')
    sc = scenario_from_sumo(net_file, [tmp_path / "r.rou.xml"], duration_s=600)
    for engine in ("macro", "micro"):
        assert ts.simulate(sc, engine=engine).data.attrs["dt_s"] >= 0.5 - 1e-9
    with pytest.raises(ts.NetworkError, match="min_travel_time_s"):
        network_from_sumo(net_file, min_travel_time_s=-1)


@pytest.mark.parametrize("tls_type", ["actuated", "delay_based", "NEMA"])
def test_actuated_programs_import_as_fixed_time_with_a_warning(tmp_path, tls_type):
    net_file = _netconvert(tmp_path, T_NODES.format(kind="traffic_light"), T_EDGES.format(p_main=2, p_side=1), None,
                           "--tls.default-type", tls_type)
    net = network_from_sumo(net_file)
    with pytest.warns(UserWarning, match=r"1 actuated, delay-based or other adaptive program\(s\) \('J'\)"):
        (sig,) = signals_from_sumo(net_file, net)
    import sumolib

    prog = next(iter(sumolib.net.readNet(str(net_file), withPrograms=True).getTLS("J").getPrograms().values()))
    assert prog.getType() == tls_type
    assert sig.node == "J" and sig.cycle_s == pytest.approx(sum(float(p.duration) for p in prog.getPhases()))


def _sumo_tool_case(tmp_path, generator: list[str] | None, shipped: tuple[str, str] | None, seed: int):
    """A network and routes from SUMO's own tools (netgenerate + randomTrips) or shipped with it."""
    import sys

    from trafficsim.sumo_io import sumo_home

    if shipped is not None:
        game = sumo_home() / "tools" / "game"
        return game / shipped[0], game / shipped[1]
    net, rou = tmp_path / "g.net.xml", tmp_path / "g.rou.xml"
    subprocess.run([sumo_binary("netgenerate"), *generator, "-L", "2", "--seed", str(seed), "-o", str(net)],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", str(net), "-e", "600",
                    "-p", "1.5", "--seed", str(seed), "--fringe-factor", "5", "--validate", "-r", str(rou),
                    "-o", str(tmp_path / "g.trips.xml")], check=True, capture_output=True)
    return net, rou


@pytest.mark.parametrize("generator, shipped, seed", [
    (["--rand", "--rand.iterations", "80", "--rand.min-distance", "100"], None, 11),
    (["--rand", "--rand.iterations", "80", "--rand.min-distance", "100", "--tls.guess"], None, 12),
    (["--spider", "--spider.arm-number", "5", "--spider.circle-number", "3", "--spider.omit-center", "--tls.guess"],
     None, 13),
    (["--grid", "--grid.number", "4", "--grid.attach-length", "80", "--tls.guess"], None, 14),
    (None, ("fkk_in/ingolstadt.net.xml.gz", "fkk_in/fkk_in.rou.xml"), 0),
    (None, ("kuehne/kuehne.net.xml", "kuehne/kuehne.rou.xml"), 0),
    (None, ("highway/highway.net.xml", "highway/highway.rou.xml"), 0),
])
def test_networks_from_sumos_tools_import_and_run_on_both_engines(tmp_path, generator, shipped, seed):
    """Whatever SUMO's tools make (random planar networks with dead ends and turnarounds, spider
    webs, grids with fringe stubs, signals or priority junctions) or ship, the import runs on the
    macro and micro engines at their default steps, conserves every vehicle and gets trips
    through."""
    net, rou = _sumo_tool_case(tmp_path, generator, shipped, seed)
    sc = scenario_from_sumo(net, [rou], duration_s=900)
    assert sc.demand.flows
    for engine in ("macro", "micro"):
        res = ts.simulate(sc, engine=engine, seed=seed, record_interval_s=300)
        k = res.kpis
        assert res.conservation_error() < 1e-6, engine
        assert res.data.attrs["dt_s"] >= 0.5 - 1e-9, engine    # no tiny edge forced a tiny step
        assert k["completed"] > 0.3 * k["demand"], (engine, k["completed"], k["demand"])


def test_turn_speeds_import_from_sumos_internal_lanes_on_request(tmp_path):
    """netconvert limits a turn's internal lane by its radius; ``turn_speeds=True`` makes that
    the network's turn speed (the micro engine slows for it), and the scenario TOML keeps it."""
    net_file = _netconvert(tmp_path, T_NODES.format(kind="priority"), T_EDGES.format(p_main=2, p_side=1))
    assert network_from_sumo(net_file).turn_speeds == {}
    net = network_from_sumo(net_file, turn_speeds=True)
    import sumolib

    sn = sumolib.net.readNet(str(net_file), withInternal=True)
    via = sn.getEdge("sj").getOutgoing()[sn.getEdge("je")][0].getViaLaneID()
    assert net.turn_speeds[("sj", "je")] == pytest.approx(sn.getLane(via).getSpeed() * 3.6)
    assert 10.0 < net.turn_speeds[("sj", "je")] < 50.0
    assert ("wj", "je") not in net.turn_speeds        # straight on: no limit below the links' 50 km/h
    sc = ts.Scenario(net, ts.Demand(), 60.0)
    back = ts.Scenario.from_toml(sc.to_toml(tmp_path / "t.toml"))
    assert back.network.turn_speeds == pytest.approx(net.turn_speeds)
    with pytest.raises(ts.NetworkError, match="turn speed 'sj' -> 'jw'.*must be > 0"):
        net.set_turn_speed("sj", "jw", 0)
    with pytest.raises(ts.NetworkError, match="turn speed 'je' -> 'sj'.*ends at"):
        net.set_turn_speed("je", "sj", 20)


@pytest.mark.parametrize("kind", ["right_before_left", "allway_stop"])
def test_right_before_left_junctions_import_with_sumos_own_give_way_logic(tmp_path, kind):
    """netgenerate's 3 x 3 grid of ``right_before_left`` junctions imports as
    ``PriorityJunction(rule="right_before_left")`` controls, and who gives way to whom is SUMO's
    own logic (its junction requests, read by sumolib) movement for movement, except one of
    each pair of opposing left turns, which SUMO makes give way to the other though their paths
    do not cross. ``allway_stop`` junctions import the same, with a warning that the stops are
    not modelled."""
    import sumolib

    from trafficsim.control import priority_yields, turn_deg
    from trafficsim.sumo_io import junctions_from_sumo

    net_file = tmp_path / "g.net.xml"
    subprocess.run([sumo_binary("netgenerate"), "--grid", "--grid.number", "3", "--grid.length", "200", "-L", "1",
                    "--default-junction-type", kind, "-o", str(net_file)], check=True, capture_output=True)
    snet = sumolib.net.readNet(str(net_file))
    net = network_from_sumo(snet)
    if kind == "allway_stop":
        with pytest.warns(UserWarning, match=r"5 allway_stop junction\(s\).*give way to the right"):
            js = junctions_from_sumo(snet, net)
    else:
        js = junctions_from_sumo(snet, net)
    assert sorted(j.node for j in js) == ["A1", "B0", "B1", "B2", "C1"]       # the corners have 2 roads
    assert all(j.rule == "right_before_left" for j in js)
    if kind == "allway_stop":
        return
    differ = []
    for j in js:
        ours = {(m, o) for m, (os, _, _) in priority_yields(net, j).items() for o in os}
        node = snet.getNode(j.node)
        conns = [c for e in node.getIncoming() for cs in e.getOutgoing().values() for c in cs]
        theirs = {((c.getFrom().getID(), c.getTo().getID()), (o.getFrom().getID(), o.getTo().getID()))
                  for c in conns for o in conns if node.forbids(o, c)}
        assert ours <= theirs, ours - theirs
        differ += [(m, o) for m, o in theirs - ours]
    # SUMO's extra pairs: a left turn giving way to the opposing left turn (their paths do not cross)
    for m, o in differ:
        assert turn_deg(net, *m) > 45 and turn_deg(net, *o) > 45
        assert abs(turn_deg(net, m[0], o[0])) == pytest.approx(180.0, abs=1.0)    # from opposite legs
    assert len(differ) == 2


def test_a_left_hand_network_gives_way_as_sumo_does_and_exports_left_hand(tmp_path):
    """A network built for keep-left traffic (``netgenerate --lefthand``) imports as
    ``Network(left_hand=True)``: the give-way geometry is mirrored, and on a 3 x 3 grid of
    ``right_before_left`` junctions who gives way to whom is SUMO's own logic (88 pairs, SUMO's two
    extra opposing-left pairs as on a right-hand grid). Read as right-hand, 52 of our pairs were
    not SUMO's. The export builds the SUMO network left-hand again."""
    import sumolib

    from trafficsim.control import priority_yields
    from trafficsim.sumo_io import _lefthand, junctions_from_sumo

    net_file = tmp_path / "g.net.xml"
    subprocess.run([sumo_binary("netgenerate"), "--grid", "--grid.number", "3", "--grid.length", "200", "-L", "1",
                    "--default-junction-type", "right_before_left", "--lefthand", "-o", str(net_file)],
                   check=True, capture_output=True)
    snet = sumolib.net.readNet(str(net_file))

    def pairs(left_hand):
        net = network_from_sumo(net_file)
        assert net.left_hand
        net.left_hand = left_hand
        agree = ours_only = theirs_only = 0
        for j in junctions_from_sumo(snet, net):
            ours = {(m, o) for m, (os, _, _) in priority_yields(net, j).items() for o in os}
            node = snet.getNode(j.node)
            conns = [c for e in node.getIncoming() for cs in e.getOutgoing().values() for c in cs]
            theirs = {((c.getFrom().getID(), c.getTo().getID()), (o.getFrom().getID(), o.getTo().getID()))
                      for c in conns for o in conns if node.forbids(o, c)}
            agree, ours_only, theirs_only = agree + len(ours & theirs), ours_only + len(ours - theirs), \
                theirs_only + len(theirs - ours)
        return agree, ours_only, theirs_only

    assert pairs(True) == (88, 0, 2)
    assert pairs(False)[1] > 40
    sc = scenario_from_sumo(net_file, [], duration_s=60.0)
    assert sc.network.left_hand and ts.Scenario.from_dict(sc.to_dict()).network.left_hand
    exp = export_scenario(sc, tmp_path / "exp")
    assert _lefthand(exp.net_file)
