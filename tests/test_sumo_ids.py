"""Node and link ids beyond what SUMO accepts (Chinese names, spaces, ``:``) on the SUMO engines.

Each run is paired with the same network under Latin ids. SUMO's dynamics do not depend on
names: the two networks are the same roads, the vehicle ids (``<route>_<n>``) and route ids
(``r<n>``) embed no node or link id, and the seed is the same, so the runs must agree vehicle
for vehicle: the tests ask for equal arrays, not a tolerance.
"""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import trafficsim as ts
from trafficsim.control import AlineaMeter, Blocking, FixedTimeSignal, Phase
from trafficsim.engines import SimulationError
from trafficsim.sumo_ids import HASH_HEX, PARAM_KEY, SumoIds, safe_form, sumo_accepts
from trafficsim.sumo_io import export_scenario

DT = 1.0
#: Latin key -> the id a Guangzhou user would give (a space and a ':' among them)
ZH = {
    "A": "海珠桥", "B": "江南西", "C": "工业大道:北", "R": "昌岗路口",
    "main": "江南大道", "ramp": "昌岗 匝道", "down": "江南大道南",
    "N": "北", "S": "南", "E": "东", "W": "西", "X": "路口",
    "up": "上游", "drop": "瓶颈段", "exit": "下游",
}


def latin(key: str) -> str:
    return key


def chinese(key: str) -> str:
    """The Chinese id of a Latin key; ``Nin`` -> ``北进口``, ``Nout`` -> ``北出口``."""
    if key.endswith("in") and key[:-2] in ZH:
        return ZH[key[:-2]] + "进口"
    if key.endswith("out") and key[:-3] in ZH:
        return ZH[key[:-3]] + "出口"
    return ZH[key]


def metered_merge(n, duration=900):
    """A 2-lane main road and a 1-lane on-ramp onto 2 lanes, ALINEA on the ramp and one lane of
    the main road blocked for 5 minutes: traffic light, edge subscription, lane-area
    detectors and lane switching all carry the ids."""
    net = ts.Network()
    for k, xy in {"A": (0, 0), "B": (1000, 0), "C": (2000, 0), "R": (600, -250)}.items():
        net.add_node(n(k), *xy)
    net.add_link(n("main"), n("A"), n("B"), length_m=1000, lanes=2, free_speed_kmh=80)
    net.add_link(n("ramp"), n("R"), n("B"), length_m=450, lanes=1, free_speed_kmh=80)
    net.add_link(n("down"), n("B"), n("C"), length_m=1000, lanes=2, free_speed_kmh=80)
    d = ts.Demand()
    d.add(n("A"), n("C"), [(0, 2800)])
    d.add(n("R"), n("C"), [(0, 900)])
    controls = [AlineaMeter(n("ramp"), n("down"), setpoint_pct=10.0, queue_override=0.0),
                Blocking(n("main"), 300, 600, lanes=1)]
    return ts.Scenario(net, d, duration, controls=controls, name="metered-merge")


def signalised_cross(n, duration=600):
    """A 4-leg cross, 2 lanes per leg, permissive lefts (green ``g``, yielding to the opposing
    through movement)."""
    net = ts.Network()
    for k, xy in {"X": (0, 0), "N": (0, 300), "S": (0, -300), "E": (300, 0), "W": (-300, 0)}.items():
        net.add_node(n(k), *xy)
    for a in "NSEW":
        net.add_link(n(f"{a}in"), n(a), n("X"), length_m=300, lanes=2)
        net.add_link(n(f"{a}out"), n("X"), n(a), length_m=300, lanes=2)
    turns = {"N": "ESW", "S": "WNE", "E": "SWN", "W": "NES"}  # left, through, right
    d = ts.Demand()
    for a, bs in turns.items():
        for b in bs:
            d.add(n(a), n(b), [(0, 150)])

    def green(approaches):
        return tuple((n(f"{a}in"), n(f"{b}out")) for a in approaches for b in turns[a])

    phases = (Phase(37, green("NS")), Phase(37, green("EW")))
    return ts.Scenario(net, d, duration, controls=[FixedTimeSignal(n("X"), phases)], name="cross")


def assert_same_run(res_zh, res_latin, n):
    """The Chinese run is the Latin run with its link coordinate renamed."""
    assert list(res_zh.data.link.values) == [n(lid) for lid in res_latin.data.link.values]
    assert set(res_zh.data.data_vars) == set(res_latin.data.data_vars)
    for var in res_latin.data.data_vars:  # every link, route and origin series
        np.testing.assert_array_equal(res_zh.data[var].values, res_latin.data[var].values, err_msg=var)
    for k in ("completed", "vkt", "vht", "delay_vh", "unserved"):
        assert res_zh.kpis[k] == res_latin.kpis[k], k
    assert res_zh.conservation_error() == 0.0 and res_latin.conservation_error() == 0.0
    assert res_zh.data.attrs["sumo_reference_link"] == n(res_latin.data.attrs["sumo_reference_link"])


# ---------------------------------------------------------------------------------- the map
def test_ids_sumo_accepts_stay_and_the_others_get_safe_forms():
    assert all(sumo_accepts(i) for i in ("A", "straße", "n#3", "ü", "in-up", "e_f", "a~b"))
    assert not any(sumo_accepts(i) for i in ("江南大道", "up link", "B:1", "a;b", "tab\t", "x&y"))
    ids = SumoIds(["A", "江南", "B:1"], ["straße", "江南大道", "ramp 2", "n#3"])
    assert ids.node("A") == "A" and ids.edge("straße") == "straße" and ids.edge("n#3") == "n#3"
    assert ids.edge("江南大道") == safe_form("江南大道") and ids.edge("江南大道").startswith("~")
    assert len(ids.edge("江南大道")) == 1 + HASH_HEX
    assert ids.edge("ramp 2").startswith("ramp_2~") and ids.node("B:1").startswith("B_1~")
    assert all(sumo_accepts(ids.edge(i)) and ids.edge(i).isascii() for i in ("江南大道", "ramp 2"))
    assert ids.renamed == {"B:1": ids.node("B:1"), "ramp 2": ids.edge("ramp 2"), "江南": ids.node("江南"),
                           "江南大道": ids.edge("江南大道")}
    # deterministic: the same form in any network, whatever else it holds or its order
    other = SumoIds(["Z", "江南"], ["ramp 2", "江南大道"][::-1])
    assert other.edge("江南大道") == ids.edge("江南大道") and other.node("江南") == ids.node("江南")
    # and back: elements, lanes (internal ones too), SUMO's messages
    assert ids.element(ids.edge("江南大道")) == "江南大道" and ids.element(":江南_0") == ":江南_0"
    assert ids.lane(ids.edge("江南大道") + "_1") == "江南大道_1"
    assert ids.lane(f":{ids.node('江南')}_3_0") == ":江南_3_0"
    assert ids.lane("straße_0") == "straße_0"
    msg = f"Error: Vehicle '0_1' has no valid route from edge '{ids.edge('ramp 2')}' (lane '{ids.edge('江南大道')}_0')"
    assert ids.restore(msg) == "Error: Vehicle '0_1' has no valid route from edge 'ramp 2' (lane '江南大道_0')"
    with pytest.raises(KeyError, match="not a SUMO edge"):
        ids.edge("nowhere")


def test_safe_forms_that_would_collide_get_longer():
    """Two ways a safe form can collide, both resolved by more hex digits: a Latin id kept as it
    is that spells another id's safe form, and two ids whose first 8 hex digits agree
    ('路找一' and '路橖一' share SHA-1 prefix 82bfe481)."""
    assert safe_form("路找一") == safe_form("路橖一") == "~82bfe481"
    ids = SumoIds([], ["路找一", "路橖一", "~82bfe481"])
    assert ids.edge("~82bfe481") == "~82bfe481"  # SUMO takes it: it stays
    forms = {ids.edge("路找一"), ids.edge("路橖一")}
    assert forms == {safe_form("路找一", HASH_HEX + 4), safe_form("路橖一", HASH_HEX + 4)} and len(forms) == 2
    both = SumoIds([], ["路找一", "路橖一"])  # without the Latin id the first in sorted order keeps 8
    assert sorted(both.renamed.values()) == sorted([safe_form(min("路找一", "路橖一")),
                                                     safe_form(max("路找一", "路橖一"), HASH_HEX + 4)])


def test_colliding_ids_run_on_sumo_with_their_own_names():
    """A chain over links '路找一', '~82bfe481' and '路橖一' (all three would be '~82bfe481' to
    SUMO without the longer forms) runs like the same chain with Latin ids."""
    runs = []
    for names in (("a", "b", "c"), ("路找一", "~82bfe481", "路橖一")):
        net = ts.Network()
        for i in range(4):
            net.add_node(f"n{i}", 500.0 * i, 0.0)
        for i, lid in enumerate(names):
            net.add_link(lid, f"n{i}", f"n{i + 1}", length_m=500, lanes=2 if i < 2 else 1)
        d = ts.Demand()
        d.add("n0", "n3", [(0, 2400)])
        runs.append(ts.simulate(ts.Scenario(net, d, 300), engine="sumo", dt_s=DT))
    rename = dict(zip(("a", "b", "c"), ("路找一", "~82bfe481", "路橖一")))
    assert_same_run(runs[1], runs[0], rename.get)
    assert runs[1].kpis["completed"] > 0


@pytest.mark.parametrize("node_ids, link_ids", [
    (("A", "B", "C"), ("up link", "down")),
    (("A", "B:1", "C"), ("up", "down")),
    (("A", "B", "C"), ("up", "下游")),
])
def test_ids_sumo_rejects_are_exported_under_safe_forms(tmp_path, node_ids, link_ids):
    """Ids with characters SUMO rejects (space, ':', ...) or cannot resolve (beyond Latin-1) were
    an error; now netconvert gets their safe forms and every file states the original."""
    import sumolib

    net = ts.Network()
    for i, n in enumerate(node_ids):
        net.add_node(n, 500.0 * i, 0.0)
    net.add_link(link_ids[0], node_ids[0], node_ids[1], length_m=500, lanes=2)
    net.add_link(link_ids[1], node_ids[1], node_ids[2], length_m=500, lanes=2)
    d = ts.Demand()
    d.add(node_ids[0], node_ids[2], [(0, 600)])
    exp = export_scenario(ts.Scenario(net, d, 300), tmp_path)
    renamed = [i for i in (*node_ids, *link_ids) if not sumo_accepts(i)]
    assert list(exp.ids.renamed) == renamed
    snet = sumolib.net.readNet(str(exp.net_file))
    for lid in link_ids:
        edge = snet.getEdge(exp.ids.edge(lid))
        assert edge.getParam(PARAM_KEY) == (lid if lid in renamed else None)
    for nid in node_ids:
        assert snet.getNode(exp.ids.node(nid)).getParam(PARAM_KEY) == (nid if nid in renamed else None)
    assert set(exp.lanes) == set(link_ids)  # the engine's maps are in trafficsim ids
    route = next(ET.parse(exp.route_file).getroot().iter("route")).get("edges")
    assert route == " ".join(exp.ids.edge(lid) for lid in link_ids)


def test_export_states_the_original_ids_in_the_files(tmp_path):
    """Files written for the user name renamed nodes, edges and traffic lights by their SUMO
    ids and state the original in a ``<param key="trafficsim.id">`` (carried into the .net.xml)."""
    import sumolib

    sc = signalised_cross(chinese)
    exp = export_scenario(sc, tmp_path)
    plain = {k: ET.parse(tmp_path / f"network.{k}.xml").getroot() for k in ("nod", "edg")}
    stated = {el.get("id"): el.find("param").get("value") for k in plain for el in plain[k]}
    assert stated == {exp.ids.node(n): n for n in sc.network.nodes} | {exp.ids.edge(lk): lk for lk in sc.network.links}
    snet = sumolib.net.readNet(str(exp.net_file))
    assert {e.getParam(PARAM_KEY) for e in snet.getEdges() if e.getFunction() == ""} == set(sc.network.links)
    tls = next(ET.parse(exp.additional_file).getroot().iter("tlLogic"))
    assert tls.get("id") == exp.ids.node(chinese("X")) and tls.find("param").get("value") == chinese("X")
    assert {a for a, _ in exp.tls_links[chinese("X")]} == {chinese(f"{a}in") for a in "NSEW"}


# ---------------------------------------------------------------------------------- runs
@pytest.mark.parametrize("backend", ["libsumo", "traci"])
def test_metered_merge_with_chinese_ids_runs_like_latin(backend):
    res = {name: ts.simulate(metered_merge(n), engine="sumo", dt_s=DT, backend=backend)
           for name, n in (("latin", latin), ("zh", chinese))}
    assert_same_run(res["zh"], res["latin"], chinese)
    log = {k: r.final_state["controllers"] for k, r in res.items()}
    assert list(log["zh"]) == [chinese("ramp")]
    np.testing.assert_array_equal(log["zh"][chinese("ramp")]["rate_vph"], log["latin"]["ramp"]["rate_vph"])
    assert log["zh"][chinese("ramp")]["rate_vph"].min() < 1800  # the meter acted
    sw = {k: r.final_state["switched_lanes"] for k, r in res.items()}
    assert sw["latin"]["lanes"] == ["main_0"] and sw["zh"]["lanes"] == [chinese("main") + "_0"]
    assert [e["lane"] for e in sw["zh"]["switches"]] == [chinese("main") + "_0"] * 2
    np.testing.assert_array_equal(sw["zh"]["entered"], sw["latin"]["entered"])
    assert sw["zh"]["entered"].sum() > 0


def test_signalised_cross_with_chinese_ids_runs_like_latin():
    rl = ts.simulate(signalised_cross(latin), engine="sumo", dt_s=DT)
    rz = ts.simulate(signalised_cross(chinese), engine="sumo", dt_s=DT)
    assert_same_run(rz, rl, chinese)
    assert rz.kpis["completed"] > 0.8 * 1800 * 600 / 3600


def test_hybrid_region_with_chinese_ids_runs_like_latin():
    """The hybrid engine exports its region to SUMO: entry detectors, exit hold zones and
    edgeData carry the ids; the region's Result columns and the outer ones are the user's."""
    def drop_chain(n):
        net = ts.Network()
        for i, k in enumerate(("A", "B", "C", "R")):
            net.add_node(n(k), 600.0 * i, 0.0)
        for k, a, b, lanes in (("up", "A", "B", 3), ("drop", "B", "C", 2), ("exit", "C", "R", 2)):
            net.add_link(n(k), n(a), n(b), length_m=600, lanes=lanes, free_speed_kmh=60)
        d = ts.Demand()
        d.add(n("A"), n("R"), [(0, 4500), (600, 1000)])
        return ts.Scenario(net, d, 900)

    rl = ts.simulate(drop_chain(latin), engine="hybrid", region=["drop"])
    rz = ts.simulate(drop_chain(chinese), engine="hybrid", region=[chinese("drop")])
    assert rz.data.attrs["hybrid_region"] == chinese("drop")
    assert list(rz.data.link.values) == [chinese(lid) for lid in rl.data.link.values]
    for var in ("flow", "outflow", "queue", "vkt", "vht"):
        np.testing.assert_array_equal(rz.data[var].values, rl.data[var].values, err_msg=var)
    assert rz.kpis["completed"] == rl.kpis["completed"] > 0
    c = rz.final_state["conservation"]
    assert rz.final_state["conservation_max_error"] < 1e-6
    assert abs(c["demanded"] - sum(v for k, v in c.items() if k != "demanded")) < 1e-6


def test_sumo_errors_name_elements_by_the_users_ids():
    """SUMO's own messages are turned back into trafficsim ids: closing the lane of the merge's
    downstream link that the 1-lane ramp feeds leaves ramp vehicles without a route."""
    sc = metered_merge(chinese, duration=300)
    sc = sc.replace(controls=[Blocking(chinese("down"), 60, 300, lanes=1)])
    with pytest.raises(SimulationError,
                       match=f"No connection between edge '{chinese('ramp')}' and edge '{chinese('down')}'"):
        ts.simulate(sc, engine="sumo", dt_s=DT)
