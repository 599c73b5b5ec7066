"""Shared builders for the tests: small networks written with the public API."""

import pytest

import trafficsim as ts


def corridor(lanes=(2, 1), lengths=(10000.0, 2000.0), vf=100.0, q=2000.0, kj=150.0, demand=None, duration=3600.0,
             name="corridor"):
    """A chain of links A0 -> A1 -> ... with the given lane counts and lengths."""
    net = ts.Network()
    for i in range(len(lanes) + 1):
        net.add_node(f"N{i}", x=sum(lengths[:i]), y=0.0)
    for i, (n, L) in enumerate(zip(lanes, lengths)):
        net.add_link(f"L{i}", f"N{i}", f"N{i + 1}", length_m=L, lanes=n, free_speed_kmh=vf,
                     capacity_vph_per_lane=q, jam_density_vpkm_per_lane=kj)
    d = ts.Demand()
    d.add("N0", f"N{len(lanes)}", demand if demand is not None else [(0, 3600)])
    return ts.Scenario(network=net, demand=d, duration_s=duration, name=name)


@pytest.fixture
def make_corridor():
    return corridor


#: for traffic arriving from each arm of :func:`cross_junction`: its right, through and left exits
CROSS_TURNS = {"N": ("W", "S", "E"), "S": ("E", "N", "W"), "E": ("N", "W", "S"), "W": ("S", "E", "N")}


def cross_junction(demand_vph=800.0, left_share=0.2, right_share=0.1, marks="dedicated", duration_s=3600.0,
                   phasing="protected"):
    """A signalised 4-leg cross: 400 m arms of 3 lanes each way (50 km/h, 1,800 veh/h/lane), each
    approach loaded with ``demand_vph`` [veh/h], of which ``left_share`` turns left and
    ``right_share`` right. Four phases (amber 3 s, all-red 2 s, cycle 130 s): N-S through and
    right 40 s, N-S left 15 s, E-W through and right 40 s, E-W left 15 s. ``marks``:
    ``"dedicated"`` (lane 0 right and through, lane 1 through, lane 2 left only), ``"shared"``
    (lane 2 through and left) or ``"none"`` (no lane markings). ``phasing="permissive"``: two
    phases of 60 s (same cycle), N-S all turns then E-W all turns, so left turns give way to the
    opposing stream."""
    net = ts.Network()
    net.add_node("C", x=0.0, y=0.0)
    for arm, (x, y) in {"N": (0, 400), "E": (400, 0), "S": (0, -400), "W": (-400, 0)}.items():
        net.add_node(arm, x=float(x), y=float(y))
    for arm in CROSS_TURNS:
        net.add_link(f"{arm}-in", arm, "C", length_m=400, lanes=3, free_speed_kmh=50, capacity_vph_per_lane=1800)
        net.add_link(f"{arm}-out", "C", arm, length_m=400, lanes=3, free_speed_kmh=50, capacity_vph_per_lane=1800)
    d = ts.Demand()
    for arm, (right, through, left) in CROSS_TURNS.items():
        if marks != "none":
            net.connect_lanes(f"{arm}-in", f"{right}-out", [(0, 0)])
            net.connect_lanes(f"{arm}-in", f"{through}-out", [(0, 0), (1, 1)] + ([(2, 2)] if marks == "shared" else []))
            net.connect_lanes(f"{arm}-in", f"{left}-out", [(2, 2)])
        d.add(arm, through, [(0, demand_vph * (1 - left_share - right_share))])
        d.add(arm, right, [(0, demand_vph * right_share)])
        d.add(arm, left, [(0, demand_vph * left_share)])

    def moves(arms, turns):
        return tuple((f"{a}-in", f"{CROSS_TURNS[a][k]}-out") for a in arms for k in turns)

    plan = ((40, "NS", (0, 1)), (15, "NS", (2,)), (40, "EW", (0, 1)), (15, "EW", (2,)))
    if phasing == "permissive":
        plan = ((60, "NS", (0, 1, 2)), (60, "EW", (0, 1, 2)))
    sig = ts.FixedTimeSignal("C", tuple(ts.Phase(g, moves(arms, turns), amber_s=3, all_red_s=2) for g, arms, turns in plan))
    return ts.Scenario(network=net, demand=d, duration_s=duration_s, controls=[sig], name="cross")


def always_green_cross(left_vph, opposing_vph, with_coordinates=True, duration_s=3600.0):
    """The 3-lane cross of ``conftest.cross_junction`` (left turns on lane 2 only) under one
    permanent green for every movement: north-to-east left turns against a steady south-to-north
    through stream."""
    sc = cross_junction(demand_vph=0.0, duration_s=duration_s)
    net = sc.network
    if not with_coordinates:
        net = ts.Network.from_dict({**net.to_dict(), "nodes": [{"id": n} for n in net.nodes]})
    d = ts.Demand()
    d.add("N", "E", [(0, left_vph)])
    d.add("S", "N", [(0, opposing_vph)])
    moves = tuple(sc.controls[0].green_windows())
    sig = ts.FixedTimeSignal("C", (ts.Phase(100.0, moves, amber_s=0.0),))
    return ts.Scenario(net, d, duration_s, controls=[sig], name="permitted-left")


def left_turn_rate(res):
    """``(rate, through)`` of an :func:`always_green_cross` run: the north-to-east left turns'
    discharge [veh/h] from 1,200 s to the end, and the opposing through vehicles arrived."""
    arrived = res.data.route_arrived
    routes = [str(r) for r in arrived.route.values]
    left = arrived.sel(route=[r for r in routes if "N->E" in r]).sum("route")
    through = arrived.sel(route=[r for r in routes if "S->N" in r]).sum("route")
    t = res.data.time.values
    late = t >= 1200
    rate = float(left[late][-1] - left[late][0]) / float(t[late][-1] - t[late][0]) * 3600.0
    return rate, float(through[-1])


def not_held_up(res, od, vph):
    """Whether every vehicle of the routes of ``od`` (``"S->N"``, demand ``vph``) arrived but those
    of the last 90 s: on the 400 m arms of :func:`cross_junction`, 800 m at 50 km/h take 58 s."""
    last = res.data.isel(time=-1)
    pick = [r for r in last.route.values if od in str(r)]
    return float(last.route_arrived.sel(route=pick).sum()) >= float(last.route_demand.sel(route=pick).sum()) - vph / 40


def crossing_lags(res, yielding, conflicting):
    """Seconds from each crossing of a ``yielding`` movement to the next crossing of a
    ``conflicting`` one (movements as ``(in_link, out_link)``), from a micro run's trajectories
    (crossing times to the sampling interval)."""
    import numpy as np

    tr = res.final_state["trajectories"]
    links = [str(lk) for lk in res.data.link.values]
    li, t = tr["link_index"].values, tr["time"].values

    def crossings(movements):
        out = []
        for a, b in movements:
            k, _ = np.nonzero((li[1:] == links.index(b)) & (li[:-1] == links.index(a)))
            out.append(t[k + 1])
        return np.sort(np.concatenate(out))

    mine, theirs = crossings(yielding), crossings(conflicting)
    nxt = np.searchsorted(theirs, mine)
    return np.array([theirs[i] - tm for i, tm in zip(nxt, mine) if i < len(theirs)])


def arrived_by_turn(res):
    """Vehicles of a :func:`cross_junction` run that reached their destination, per turn."""
    last = res.data.route_arrived.isel(time=-1)
    out = {"right": 0.0, "through": 0.0, "left": 0.0}
    for label, v in zip(last.route.values, last.values):
        origin, dest = str(label).split(":")[1].split("->")
        out[("right", "through", "left")[CROSS_TURNS[origin].index(dest)]] += float(v)
    return out


def marked_signal(thru_vph, left_vph, duration_s=3600.0, beyond=False):
    """A 3-lane approach ``app`` to a signal at ``S`` whose lanes 0-1 go straight on to ``thru``
    (40 s green) and lane 2 turns left onto ``left`` (its own 15 s phase), then a 30 s phase for
    the cross street: cycle 100 s. The roads beyond are wider than the lanes that feed them, so
    the markings bind. ``beyond``: the through road goes on past ``T`` on ``beyond`` to ``T2``
    (the through demand's destination)."""
    net = ts.Network()
    for n, xy in (("A", (0, -1000)), ("S", (0, 0)), ("T", (0, 1000)), ("W", (-1000, 0))):
        net.add_node(n, x=xy[0], y=xy[1])
    kw = dict(free_speed_kmh=50, capacity_vph_per_lane=1800)
    net.add_link("app", "A", "S", length_m=1000, lanes=3, **kw)
    net.add_link("thru", "S", "T", length_m=500, lanes=3, **kw)
    net.add_link("left", "S", "W", length_m=500, lanes=2, **kw)
    if beyond:
        net.add_node("T2", x=0.0, y=1600.0)
        net.add_link("beyond", "T", "T2", length_m=600, lanes=3, **kw)
    net.connect_lanes("app", "thru", [(0, 0), (1, 1)])
    net.connect_lanes("app", "left", [(2, 1)])
    sig = ts.FixedTimeSignal("S", (ts.Phase(40, (("app", "thru"),), amber_s=3, all_red_s=2),
                                   ts.Phase(15, (("app", "left"),), amber_s=3, all_red_s=2),
                                   ts.Phase(30, (), amber_s=3, all_red_s=2)))
    d = ts.Demand()
    d.add("A", "T2" if beyond else "T", [(0, thru_vph)])
    d.add("A", "W", [(0, left_vph)])
    return ts.Scenario(net, d, duration_s, [sig], name="marked-signal")
