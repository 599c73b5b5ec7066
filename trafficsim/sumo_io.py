"""SUMO files both ways: export a Scenario to a SUMO network, routes and programs; import a
SUMO ``.net.xml`` (and routes/flows) into a trafficsim Network and Demand.

Export writes SUMO "plain" XML (nodes, edges, connections), runs ``netconvert`` on it, then
writes the demand as ``<flow>`` elements (one per route and demand segment), one ``vType`` per
vehicle class, and a ``tlLogic`` program per :class:`~trafficsim.control.FixedTimeSignal`
(built after netconvert, because SUMO numbers the controlled links of a junction itself).
Node and link ids SUMO does not accept (Chinese names, spaces, ``:``) are written under safe
forms (:func:`sumo_ids`, :mod:`trafficsim.sumo_ids`); the maps the engine gets back
(:class:`SumoExport`) are keyed by trafficsim ids.

**Capacity match.** SUMO's lane capacity is emergent; trafficsim's is a parameter. For the
Krauss model with all vehicles at speed ``v`` the gross time headway is
``(length + minGap) / v + tau`` (SUMO docs, *Simulation/RoadCapacity*), so with ``sigma = 0``
and ``speedDev = 0`` a lane carries ``q = 3600 / ((length + minGap)/v_f + tau)`` veh/h. We set

* ``length + minGap = 1000 / k_j`` (so the jam density per lane equals the link's
  ``jam_density_vpkm_per_lane``),
* ``tau = 3600 / q_c - (length + minGap) / v_f`` (so the capacity equals
  ``capacity_vph_per_lane``),

which makes Krauss' steady states the triangular fundamental diagram of the link: the backward
wave speed ``(length + minGap) / tau`` then equals ``q_c / (k_j - q_c / v_f)`` (Newell 2002).
A vehicle type cannot change per link, so ``tau`` is matched on one *reference link* (by
default the used link with the lowest capacity per lane, then the most loaded: the bottleneck
that sets discharge);
other links with other ``v_f`` or ``q_c`` get the capacity the formula gives them.

Import reads a ``.net.xml`` with :mod:`sumolib`: every non-internal edge that admits passenger
cars becomes a link (lanes admitting cars, length, speed), a missing edge-to-edge connection
becomes a turn ban (a turnaround is a turn like any other: allowed where SUMO has its
connection), static ``tlLogic`` programs become fixed-time signals where their phases map onto
movements, and unsignalised ``priority`` junctions become
:class:`~trafficsim.control.PriorityJunction` controls with SUMO's major road.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from .control import (
    AlineaMeter, BusStop, FixedRateMeter, FixedTimeSignal, Phase, PriorityJunction, check_junction_controls,
    fold_cycle, paths_cross, priority_junctions, turn_deg,
)
from .demand import Demand, DemandError, movement_peaks, profile_from_intervals
from .network import Link, Network, NetworkError
from .scenario import Scenario
from .sumo_ids import SumoIds

__all__ = [
    "SumoError",
    "SumoExport",
    "sumo_binary",
    "krauss_params",
    "write_plain_network",
    "netconvert",
    "export_scenario",
    "sumo_ids",
    "network_from_sumo",
    "signals_from_sumo",
    "junctions_from_sumo",
    "import_capacity",
    "demand_from_sumo",
    "taz_from_sumo",
    "scenario_from_sumo",
]

#: trafficsim vehicle class -> SUMO vClass.
SUMO_VCLASS = {"car": "passenger", "bus": "bus", "truck": "truck"}
#: Physical length [m] of buses and trucks in SUMO (cars take theirs from the jam density).
HEAVY_LENGTH_M = {"bus": 12.0, "truck": 10.0}
#: SUMO's standstill gap between vehicles [m] (its default).
MIN_GAP_M = 2.5
#: Name of the programs trafficsim writes (SUMO keeps netconvert's as "0").
PROGRAM_ID = "trafficsim"
#: Fractional part of the golden ratio: the phases of uniform arrivals, route by route
#: (a low-discrepancy sequence over (0, 1)).
_GOLDEN = 0.6180339887498949
#: Green time [s] of a ramp-meter release (about one vehicle per lane per green, as in the field).
METER_GREEN_S = 2.0


def _first_few(names, k: int = 4) -> str:
    """The first ``k`` of ``names`` quoted, for a warning, and "and others" if there are more."""
    return ", ".join(repr(n) for n in names[:k]) + (" and others" if len(names) > k else "")


class SumoError(RuntimeError):
    """A SUMO tool failed; the message quotes its error output."""


def sumo_home() -> Path:
    """SUMO's installation directory (the ``eclipse-sumo`` wheel, else ``$SUMO_HOME``)."""
    try:
        import sumo  # the eclipse-sumo wheel

        return Path(sumo.SUMO_HOME)
    except ImportError:
        home = os.environ.get("SUMO_HOME")
        if not home:
            raise SumoError("SUMO is not installed: pip install 'trafficsim[sumo]' (or set SUMO_HOME)") from None
        return Path(home)


def sumo_binary(name: str) -> str:
    """Path of a SUMO executable (``sumo``, ``netconvert``, ...)."""
    for cand in (sumo_home() / "bin" / name, sumo_home() / "bin" / f"{name}.exe"):
        if cand.exists():
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    raise SumoError(f"SUMO executable {name!r} not found under {sumo_home() / 'bin'}")


# ---------------------------------------------------------------------------------- vehicles
def krauss_params(link: Link, min_gap_m: float = MIN_GAP_M) -> dict[str, float]:
    """Krauss ``length`` [m] and ``tau`` [s] that reproduce ``link``'s capacity and jam density.

    ``length + minGap = 1000 / k_j`` and ``tau = 3600 / q_c - (length + minGap) / v_f``
    (see the module docstring). Raises :class:`SumoError` if the jam spacing is shorter than
    the gap or ``tau`` would not be positive.
    """
    spacing = 1000.0 / link.jam_density_vpkm_per_lane
    length = spacing - min_gap_m
    tau = 3600.0 / link.capacity_vph_per_lane - spacing / (link.free_speed_kmh / 3.6)
    if length <= 0.5 or tau <= 0.05:
        raise SumoError(
            f"link {link.id!r}: cannot match capacity_vph_per_lane={link.capacity_vph_per_lane:g} and "
            f"jam_density_vpkm_per_lane={link.jam_density_vpkm_per_lane:g} with Krauss "
            f"(length={length:.2f} m, tau={tau:.2f} s)"
        )
    return {"length": length, "minGap": min_gap_m, "tau": tau}


# ---------------------------------------------------------------------------------- layout
#: Unplaced nodes around a junction with at least this many neighbours are spread around it
#: (through movements opposite) rather than fanned out by 35 degrees.
SPREAD_MIN_NEIGHBOURS = 4


def _layout(net: Network, turn_flow: dict[tuple[str, str], float] | None = None) -> dict[str, tuple[float, float]]:
    """Node coordinates [m]: the given ones, else placed along links at their length.

    Edge lengths are written explicitly, so positions only shape junctions and turn directions.
    An unplaced node is put at its link's length from a placed neighbour, straight on for the
    first neighbour and fanned out by 35 degrees for the next ones (ramps come in from below).
    Around a junction with :data:`SPREAD_MIN_NEIGHBOURS` or more neighbours the legs are spread
    instead: a leg goes opposite the placed leg it exchanges most demand with (``turn_flow``,
    veh/h per (in_link, out_link)), so that SUMO sees that movement as straight on, else in the
    widest free direction. (The 35-degree fan put all four legs of a cross in one half-plane: SUMO
    took its through movements for turns and gave them one lane instead of two.)
    """
    pos = {nid: (n.x, n.y) for nid, n in net.nodes.items() if n.x is not None}
    if len(pos) == len(net.nodes):
        return pos
    heading: dict[str, float] = {}
    fan: dict[str, int] = {}
    turn_flow = turn_flow or {}
    neighbours: dict[str, dict[str, list[str]]] = {}  # node -> neighbour -> links between them
    for lk in net.links.values():
        if lk.from_node != lk.to_node:
            neighbours.setdefault(lk.from_node, {}).setdefault(lk.to_node, []).append(lk.id)
            neighbours.setdefault(lk.to_node, {}).setdefault(lk.from_node, []).append(lk.id)

    def exchange(hub: str, u: str, v: str) -> float:
        """Demand [veh/h] through ``hub`` between its neighbours ``u`` and ``v`` (both ways)."""
        ls_u, ls_v = neighbours[hub][u], neighbours[hub][v]
        return sum(turn_flow.get((a, b), 0.0) + turn_flow.get((b, a), 0.0) for a in ls_u for b in ls_v)

    def spread_angle(hub: str, new: str) -> float:
        """Direction [deg] from ``hub`` to place ``new`` in, among ``hub``'s placed legs."""
        x0, y0 = pos[hub]
        placed = {q: math.degrees(math.atan2(pos[q][1] - y0, pos[q][0] - x0))
                  for q in neighbours[hub] if q in pos and q != hub}

        def gap(a: float) -> float:
            return min((abs((a - b + 180.0) % 360.0 - 180.0) for b in placed.values()), default=180.0)

        partners = sorted(((exchange(hub, new, q), q) for q in placed), reverse=True)
        if partners and partners[0][0] > 0 and gap(placed[partners[0][1]] + 180.0) >= 30.0:
            return placed[partners[0][1]] + 180.0
        return max((15.0 * i for i in range(24)), key=gap)
    offsets = [0.0, -35.0, 35.0, -70.0, 70.0, -105.0, 105.0, 180.0]
    links = list(net.links.values())
    order = list(net.nodes)
    while len(pos) < len(net.nodes):
        progress = False
        for lk in links:
            a, b = lk.from_node, lk.to_node
            if (a in pos) == (b in pos):
                continue
            known, new, sign = (a, b, 1.0) if a in pos else (b, a, -1.0)
            if len(neighbours.get(known, ())) >= SPREAD_MIN_NEIGHBOURS:
                theta = spread_angle(known, new)
                x0, y0 = pos[known]
                p = (x0 + lk.length_m * math.cos(math.radians(theta)), y0 + lk.length_m * math.sin(math.radians(theta)))
                while any(abs(p[0] - q[0]) < 1 and abs(p[1] - q[1]) < 1 for q in pos.values()):
                    p = (p[0] + 7.0, p[1] + 11.0)
                pos[new] = p
                heading[new] = theta if sign > 0 else theta + 180.0  # travel direction, as below
                progress = True
                continue
            k = fan.get(known, 0)
            fan[known] = k + 1
            base = heading.get(known, 0.0)
            ang = math.radians(base + offsets[k % len(offsets)] * sign)
            x0, y0 = pos[known]
            d = sign * lk.length_m
            p = (x0 + d * math.cos(ang), y0 + d * math.sin(ang))
            while any(abs(p[0] - q[0]) < 1 and abs(p[1] - q[1]) < 1 for q in pos.values()):
                p = (p[0] + 7.0, p[1] + 11.0)
            pos[new] = p
            heading[new] = math.degrees(ang)
            progress = True
        if not progress:
            # a new component: start it below everything placed so far
            nid = next(n for n in order if n not in pos)
            low = min((q[1] for q in pos.values()), default=0.0)
            pos[nid] = (0.0, low - 500.0)
    return pos


# ---------------------------------------------------------------------------------- plain XML
#: Suffix of the pocket link a :class:`~trafficsim.measures.VariableLane` adds beside its link.
POCKET_SUFFIX = ":pocket"


def variable_lane_groups(net: Network) -> dict[str, dict]:
    """Variable lanes in a network: ``{link: {"pocket", "turn_to", "lanes"}}``.

    A :class:`~trafficsim.measures.VariableLane` represents its dedicated lanes as a parallel
    *pocket* link ``<link>:pocket`` (same end nodes, turning only onto ``turn_to``). In SUMO the
    pocket is not an edge of its own: its lanes are the lanes of ``<link>``'s edge that netconvert
    connects to ``turn_to`` (the median lane for a left or U-turn), pre-built with their other
    connections too; while they are dedicated the engine closes the junction-internal lanes of
    those other connections. ``<link>`` gives the pocket's lanes up (its lane schedule) exactly
    while they are dedicated.
    """
    out = {}
    for pid, pk in net.links.items():
        if not pid.endswith(POCKET_SUFFIX):
            continue
        main = net.links.get(pid[: -len(POCKET_SUFFIX)])
        if main is None or (main.from_node, main.to_node) != (pk.from_node, pk.to_node):
            continue
        turns = [o.id for o in net.out_links(pk.to_node) if net.turn_allowed(pid, o.id)]
        if len(turns) != 1:
            continue
        out[main.id] = {"pocket": pid, "turn_to": turns[0], "lanes": pk.max_lanes}
    return out


def variable_lane_dedicated(net: Network, main: str, t_s: float, groups: dict[str, dict]) -> bool:
    """Whether ``main``'s variable lanes are dedicated at ``t_s`` [s] (it has given them up)."""
    g = groups[main]
    lk = net.links[main]
    return lk.lanes_at(t_s) + g["lanes"] <= lk.max_lanes


#: A movement turning by less than this [deg] runs beside the others at a ramp junction
#: (:func:`_is_merge`); a street crossing's turns come in at right angles.
RAMP_MAX_TURN_DEG = 45.0


def _is_merge(net: Network, node: str, used: set | None = None,
              pos: dict[str, tuple[float, float]] | None = None) -> bool:
    """Whether ``node`` is a merge: two or more in-links onto one out-link with fewer lanes than
    they bring, and no explicit priorities (so that capacity-proportional merging applies).

    With ``used`` (the ``(in_link, out_link)`` movements the demand takes) and ``pos`` (node
    positions), a node with several out-links is a merge too when one of them takes the
    movements of several in-links, each other one those of one in-link only, and every used
    movement turns by less than :data:`RAMP_MAX_TURN_DEG` (an off-ramp leaving the main road
    where a ramp joins it): the streams run side by side and none crosses another. As a
    ``priority`` junction SUMO made the ramp yield to the main road: 2 ramp vehicles in 15 min
    against the macro's 121 (``tests/test_sumo.py``). A street crossing is not a merge even when
    only one of its exits is shared (a right turn joining the through stream while the cross
    street's through stream crosses both): exported as a zipper, SUMO's 10x10 grid city of
    priority crossings completed 5,819 trips in 30 min instead of 9,844."""
    outs, ins = net.out_links(node), net.in_links(node)
    if len(ins) < 2 or any(lk.priority is not None for lk in ins):
        return False
    if len(outs) == 1:
        return sum(lk.max_lanes for lk in ins) > outs[0].max_lanes
    if used is None or pos is None:
        return False
    feeders = {o.id: [a for a in ins if (a.id, o.id) in used] for o in outs}
    merged = [o for o in outs if len(feeders[o.id]) >= 2]
    if len(merged) != 1:
        return False
    if any(abs(turn_deg(net, a.id, o.id, pos) or 0.0) >= RAMP_MAX_TURN_DEG for o in outs for a in feeders[o.id]):
        return False
    o = merged[0]
    return sum(net.links[a.id].max_lanes for a in feeders[o.id]) > o.max_lanes


#: Unsignalised nodes with at least this many in-links and no explicit priorities are exported as
#: ``right_before_left``: netconvert's ``priority`` logic for them (two main roads, the others
#: yielding) deadlocked in SUMO 1.28 depending on the legs' angles (5 two-way legs 0.1 rad apart,
#: 6 coincident: three approaches stood for the rest of the run at 20 veh/h per OD pair), while
#: ``right_before_left`` served 400 veh/h per approach (tests/test_sumo.py).
RIGHT_BEFORE_LEFT_MIN_IN_LINKS = 5


def _is_many_leg(net: Network, node: str) -> bool:
    """Whether ``node`` has :data:`RIGHT_BEFORE_LEFT_MIN_IN_LINKS` or more in-links, none with an
    explicit priority."""
    ins = net.in_links(node)
    return len(ins) >= RIGHT_BEFORE_LEFT_MIN_IN_LINKS and all(lk.priority is None for lk in ins)


def sumo_ids(net: Network) -> SumoIds:
    """The map of ``net``'s node and link ids to the ids SUMO is given (:mod:`trafficsim.sumo_ids`).

    Ids SUMO accepts (printable Latin-1 without :data:`~trafficsim.sumo_ids.SUMO_INVALID_ID_CHARS`)
    stay as they are; the others (Chinese names, spaces, ``:``, ...) get a deterministic ASCII
    safe form, unique against every other id, and the exported files state the original as
    ``<param key="trafficsim.id">``. (netconvert 1.28 did not resolve ids beyond Latin-1: it
    reported ``Edge's 'x' to-node '节点' is not known`` for a node it had been given.) Pocket links
    of variable lanes (``<link>:pocket``) are no SUMO edges and are not mapped.
    """
    pockets = {g["pocket"] for g in variable_lane_groups(net).values()}
    return SumoIds(net.nodes, (lid for lid in net.links if lid not in pockets))


def _turn_flows(scenario: Scenario, routes=None) -> dict[tuple[str, str], float]:
    """Peak demand [veh/h] of each (in_link, out_link) movement over the scenario's routes (a
    route table of :func:`~trafficsim.engines._common.build_routes`, built when None); the sum
    of :func:`~trafficsim.measures.signals.movement_peak_flows`, over the same routes."""
    from .engines._common import build_routes

    routes = routes if routes is not None else build_routes(scenario)
    flows = scenario.demand.flows
    return movement_peaks((flows[f], path, share) for f, path, share in zip(routes.flow, routes.links, routes.share))


def _element(opening: str, param: str) -> str:
    """An XML element from its ``opening`` tag text (without ``>``): empty, or holding the
    ``<param>`` line that states a renamed element's trafficsim id."""
    if not param:
        return opening + "/>"
    tag = opening.lstrip().split(" ", 1)[0][1:]
    indent = opening[: len(opening) - len(opening.lstrip())]
    return f"{opening}>\n{param}\n{indent}</{tag}>"


def write_plain_network(
    scenario: Scenario, directory: str | Path, routes=None, ids: SumoIds | None = None
) -> dict[str, Path]:
    """Write SUMO plain ``.nod.xml``, ``.edg.xml`` and ``.con.xml`` for ``scenario``'s network.

    Signalised and metered nodes become ``traffic_light`` junctions; the nodes of
    :class:`~trafficsim.control.PriorityJunction` controls ``priority`` junctions whose major
    in-links get edge priority 2 and the other in-links 1 (so netconvert takes the same major
    road; the edge priority of these in-links is this, not their merge priority), or
    ``right_before_left`` junctions for the rule of that name; merges of several links
    without explicit priorities (also where an off-ramp leaves, see :func:`_is_merge`) become
    ``zipper`` junctions (alternate merging, close to the capacity-proportional merge of the
    macro node model); unsignalised nodes with five or more
    in-links and no explicit priorities ``right_before_left`` (SUMO's ``priority`` logic could
    deadlock there); others ``priority``. A lane drop on a
    single link chain keeps netconvert's lane mapping: the dropped lanes end and their vehicles
    change lanes before the end (measured: a 6->2 drop then discharges within 2% of 2 lanes'
    capacity, while a zipper onto each remaining lane loses about 14%). Every allowed turn is an
    explicit connection and every banned turn a ``<delete>``.

    Node and edge ids are ``ids`` (default :func:`sumo_ids`): SUMO-safe forms for ids SUMO does
    not accept, each stated on its element as ``<param key="trafficsim.id" value="..."/>``.
    """
    directory = Path(directory)
    net = scenario.network
    ids = ids if ids is not None else sumo_ids(net)
    turn_flow = _turn_flows(scenario, routes)
    pos = _layout(net, turn_flow if any(n.x is None for n in net.nodes.values()) else None)
    groups = variable_lane_groups(net)
    pockets = {g["pocket"] for g in groups.values()}
    tl_nodes = {c.node for c in scenario.controls if isinstance(c, FixedTimeSignal)}
    tl_nodes |= {net.links[c.link].to_node for c in scenario.controls if isinstance(c, (FixedRateMeter, AlineaMeter))}
    used = {mv for mv, q in turn_flow.items() if q > 0}
    # priority junctions: their major in-links outrank the others (netconvert ranks a node's
    # in-links by the edge priority first, NBEdgePriorityComputer)
    check_junction_controls(scenario.controls)
    junctions = [c.validate(net) for c in scenario.controls if isinstance(c, PriorityJunction)]
    pj_nodes = {c.node: c.rule for c in junctions}
    edge_rank = {lk.id: (2 if lk.id in c.major else 1) for c in junctions if c.rule == "priority"
                 for lk in net.in_links(c.node)}
    crossings = {c.node: [] for c in priority_junctions(net, scenario.controls)}
    for mv in used:     # the used movements of each unsignalised crossing, in one pass
        crossings.get(net.links[mv[0]].to_node, []).append(mv)
    free_crossings = []
    nod = ['<nodes>']
    for nid in net.nodes:
        x, y = pos[nid]
        if nid in tl_nodes:
            kind = "traffic_light"
        elif nid in pj_nodes:
            kind = pj_nodes[nid]
        elif _is_merge(net, nid, used, pos):
            kind = "zipper"
        elif _is_many_leg(net, nid):
            kind = "right_before_left"
        else:
            kind = "priority"
            here = crossings.get(nid, [])
            if any(paths_cross(net, nid, m1, m2) for i, m1 in enumerate(here) for m2 in here[i + 1:]):
                free_crossings.append(nid)
        extra = ' tlType="static"' if kind == "traffic_light" else ""
        nod.append(_element(f'  <node id={quoteattr(ids.node(nid))} x="{x:.2f}" y="{y:.2f}" type="{kind}"{extra}',
                            ids.param(nid)))
    nod.append('</nodes>')
    if free_crossings:
        shown = _first_few(free_crossings)
        warnings.warn(f"SUMO export: {len(free_crossings)} unsignalised node(s) without a PriorityJunction where the "
                      f"demand's streams cross ({shown}) become netconvert priority junctions, whose minor streams "
                      "give way; trafficsim's engines let them cross freely there. For a like-for-like comparison add "
                      "trafficsim.control.priority_junctions(scenario.network, scenario.controls) to the controls "
                      "(docs/sumo.md, Priority junctions)", UserWarning, stacklevel=2)
    edg = ['<edges>']
    for lk in net.links.values():
        if lk.id in pockets:
            continue
        prio = "" if lk.priority is None else f' priority="{int(round(lk.priority * 100))}"'
        if lk.id in edge_rank:
            prio = f' priority="{edge_rank[lk.id]}"'
        edg.append(_element(
            f'  <edge id={quoteattr(ids.edge(lk.id))} from={quoteattr(ids.node(lk.from_node))} '
            f'to={quoteattr(ids.node(lk.to_node))} numLanes="{lk.max_lanes}" speed="{lk.free_speed_kmh / 3.6:.4f}" '
            f'length="{lk.length_m:.2f}"{prio}', ids.param(lk.id)
        ))
    edg.append('</edges>')
    con = ['<connections>']
    for nid in net.nodes:
        for a in net.in_links(nid):
            if a.id in pockets:
                continue
            for b in net.out_links(nid):
                if b.id in pockets:
                    continue
                ends = f'from={quoteattr(ids.edge(a.id))} to={quoteattr(ids.edge(b.id))}'
                if net.turn_allowed(a.id, b.id) and (a.id, b.id) in net.lane_connectors:
                    for i, j in net.lane_connectors[(a.id, b.id)]:  # both count lanes from the right
                        con.append(f'  <connection {ends} fromLane="{i}" toLane="{j}"/>')
                elif net.turn_allowed(a.id, b.id):
                    con.append(f'  <connection {ends}/>')
                else:
                    con.append(f'  <delete {ends}/>')
    con.append('</connections>')
    paths = {}
    for key, lines in (("nod", nod), ("edg", edg), ("con", con)):
        p = directory / f"network.{key}.xml"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths[key] = p
    return paths


def netconvert(plain: dict[str, Path], out: str | Path, *, timeout_s: float = 120.0, lefthand: bool = False) -> Path:
    """Run ``netconvert`` on plain files (``lefthand``: a network for keep-left traffic); a failure
    raises :class:`SumoError` with its output."""
    out = Path(out)
    cmd = [
        sumo_binary("netconvert"), "--node-files", str(plain["nod"]), "--edge-files", str(plain["edg"]),
        "--connection-files", str(plain["con"]), "--output-file", str(out),
        "--no-turnarounds", "false",  # every allowed turn is an explicit connection, every other one a <delete>
        "--offset.disable-normalization", "true", "--tls.default-type", "static", "--no-warnings", "true",
        "--junctions.limit-turn-speed", "-1", "--lefthand", "true" if lefthand else "false",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SumoError(f"netconvert did not finish within {timeout_s:g} s on {plain['edg']}") from None
    if proc.returncode != 0 or not out.exists():
        raise SumoError(f"netconvert failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-2000:]}")
    return out


# ---------------------------------------------------------------------------------- export
@dataclass
class SumoExport:
    """The files of an exported scenario and the maps the engine needs at run time."""

    directory: Path
    net_file: Path
    route_file: Path
    additional_file: Path
    reference_link: str
    vtypes: dict[str, dict[str, float]]
    route_ids: list[str]
    tls_links: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    lanes: dict[str, list[str]] = field(default_factory=dict)
    edge_data_files: list[Path] = field(default_factory=list)
    #: ALINEA meter link -> ids of the lane-area detectors over its detector zone (one per lane)
    alinea_detectors: dict[str, list[str]] = field(default_factory=dict)
    #: per-lane aggregates (``laneData``) of the links in ``lane_data_edges``, if asked for
    lane_data_file: Path | None = None
    #: variable lanes: ``{link: {"pocket", "turn_to", "lanes", "dedicated": [lane ids],
    #: "via_close": [internal lanes of the dedicated lanes' other movements]}}``
    lane_groups: dict[str, dict] = field(default_factory=dict)
    #: the SUMO ids of the network's nodes and links (:func:`sumo_ids`); the maps above are keyed by
    #: trafficsim ids and hold SUMO lane and detector ids
    ids: SumoIds | None = None


def _reference_link(scenario: Scenario, routes) -> Link:
    """The used link with the lowest capacity per lane; among equals the one most demand
    crosses, then the one with the fewest lanes (the likely bottleneck)."""
    load: dict[str, float] = {}
    for r, path in enumerate(routes.links):
        f = scenario.demand.flows[routes.flow[r]]
        for lid in path:
            load[lid] = load.get(lid, 0.0) + max(q for _, q in f.profile) * routes.share[r]
    links = [lk for lid, lk in scenario.network.links.items() if lid in load] or list(scenario.network.links.values())
    return min(links, key=lambda lk: (lk.capacity_vph_per_lane, -round(load.get(lk.id, 0.0), 6), lk.max_lanes))


def _tls_state(links: list[tuple[str, str]], movements: set, code: str) -> str:
    return "".join(code if mv in movements else "r" for mv in links)


def _tls_green_state(links: list[tuple[str, str]], movements: set, yields: list[set[int]]) -> str:
    """Green state of a phase: ``G`` (priority) for a link that yields to no other link green in
    the phase, ``g`` (green, must yield) for one that SUMO's junction logic makes yield to such a
    link (a permissive left turn against the opposing through movement, two movements merging onto
    one lane), ``r`` for the rest. ``G`` on both of two conflicting links makes SUMO ignore the
    conflict: vehicles drive through each other on the junction."""
    green = {i for i, mv in enumerate(links) if mv in movements}
    return "".join(
        ("g" if yields[i] & green else "G") if i in green else "r" for i in range(len(links))
    )


def _tls_yields(tls, n_links: int) -> list[set[int]]:
    """For each link index of traffic light ``tls`` (sumolib), the link indices it must yield to,
    from the junction's right-of-way matrix (``<request response>``) netconvert wrote."""
    conns = {}
    for in_lane, out_lane, idx in tls.getConnections():
        for c in in_lane.getOutgoing():
            if c.getToLane() is out_lane and c.getTLLinkIndex() == idx:
                conns.setdefault(idx, []).append(c)
    yields: list[set[int]] = [set() for _ in range(n_links)]
    for i, ci in conns.items():
        for j, cj in conns.items():
            if i != j and any(
                a.getJunction() is b.getJunction() and a.getJunction().forbids(b, a) for a in ci for b in cj
            ):
                yields[i].add(j)
    return yields


def _tls_program(sig: FixedTimeSignal, links: list[tuple[str, str]], yields: list[set[int]] | None = None,
                 ids: SumoIds | None = None) -> str:
    """A ``tlLogic`` for ``sig``: green ``G``/``g`` (see :func:`_tls_green_state`), amber ``y``
    then all-red per phase. With ``ids`` its id is the node's SUMO id (and a renamed node's
    trafficsim id is stated in a ``<param>``)."""
    yields = yields if yields is not None else [set() for _ in links]
    tls_id = ids.node(sig.node) if ids is not None else sig.node
    out = [f'  <tlLogic id={quoteattr(tls_id)} type="static" programID="{PROGRAM_ID}" offset="{sig.offset_s:g}">']
    if ids is not None and ids.param(sig.node):
        out.append(ids.param(sig.node))
    for p in sig.phases:
        mv = set(p.movements)
        out.append(f'    <phase duration="{p.green_s:g}" state="{_tls_green_state(links, mv, yields)}"/>')
        if p.amber_s > 0:
            out.append(f'    <phase duration="{p.amber_s:g}" state="{_tls_state(links, mv, "y")}"/>')
        if p.all_red_s > 0:
            out.append(f'    <phase duration="{p.all_red_s:g}" state="{"r" * len(links)}"/>')
    out.append("  </tlLogic>")
    return "\n".join(out)


def export_scenario(
    scenario: Scenario,
    directory: str | Path,
    *,
    routes=None,
    arrivals: str = "uniform",
    sigma: float = 0.0,
    reference_link: str | None = None,
    edge_data_file: str | Path | None = None,
    record_interval_s: float = 60.0,
    timeout_s: float = 120.0,
    depart_lane: str = "free",
    queue_speed_fraction: float = 0.5,
    lane_data_edges=(),
) -> SumoExport:
    """Export ``scenario`` to SUMO files in ``directory``.

    Every :class:`~trafficsim.control.AlineaMeter` gets a lane-area detector on each lane of its
    ``detector_link`` over the first ``detector_length_m`` (ids in ``SumoExport.alinea_detectors``).

    Parameters
    ----------
    scenario : Scenario
    directory : path
        Where to write ``network.net.xml``, ``demand.rou.xml`` and ``controls.add.xml``.
    routes : RouteTable, optional
        Resolved routes (computed when omitted).
    arrivals : {"uniform", "poisson"}
        Equidistant insertions at the demand rate (deterministic, like the macro engine: a route's
        j-th vehicle departs when its demand so far reaches ``j + phase``, the routes' phases
        spread over (0, 1) so that their insertions interleave) or exponential headways.
    sigma : float
        Krauss driver imperfection (0 keeps the capacity exactly as matched).
    reference_link : str, optional
        Link whose capacity and jam density set the car type (default: see module docstring).
    edge_data_file : path, optional
        Stem of the files where SUMO writes edge aggregates every ``record_interval_s`` [s]
        (``STEM.N.xml``, one per free speed) and lane-area jams (``STEM.e2.xml``); none if
        omitted.
    depart_lane : str
        SUMO ``departLane``; ``"free"`` (default) inserts on the emptiest lane, so a queue
        behind a lane drop forms on the link rather than in the origin queue.
    queue_speed_fraction : float
        A vehicle counts as queued below this share of its link's free speed.
    lane_data_edges : sequence of str
        Links whose lanes get per-lane aggregates (``STEM.lanes.xml``, with ``edge_data_file``):
        the engine asks for the links whose lanes it opens and closes.
    """
    from .engines._common import build_routes

    if arrivals not in ("uniform", "poisson"):
        raise SumoError(f"arrivals must be 'uniform' or 'poisson', got {arrivals!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net = scenario.network
    routes = routes if routes is not None else build_routes(scenario)
    ids = sumo_ids(net)
    plain = write_plain_network(scenario, directory, routes, ids)
    try:
        net_file = netconvert(plain, directory / "network.net.xml", timeout_s=timeout_s,
                              lefthand=scenario.network.left_hand)
    except SumoError as exc:
        raise SumoError(ids.restore(str(exc))) from None

    ref = net.link(reference_link) if reference_link else _reference_link(scenario, routes)
    car = krauss_params(ref)
    vtypes = {}
    for vc in ("car", "bus", "truck"):
        length = car["length"] if vc == "car" else HEAVY_LENGTH_M[vc]
        vtypes[vc] = {"length": length, "minGap": MIN_GAP_M, "tau": car["tau"]}
    # ---- routes and flows
    rou = ['<routes>']
    for vc, p in vtypes.items():
        rou.append(
            f'  <vType id="{vc}" vClass="{SUMO_VCLASS[vc]}" length="{p["length"]:.4f}" minGap="{p["minGap"]:g}" '
            f'tau="{p["tau"]:.4f}" sigma="{sigma:g}" speedFactor="1" speedDev="0" maxSpeed="70" '
            f'accel="2.6" decel="4.5" emergencyDecel="9"/>'
        )
    route_ids = []
    groups = variable_lane_groups(net)
    as_edge = {g["pocket"]: main for main, g in groups.items()}  # a pocket is lanes of its link's edge
    for r, path in enumerate(routes.links):
        rid = f"r{r}"
        route_ids.append(rid)
        rou.append(f'  <route id="{rid}" edges={quoteattr(" ".join(ids.edge(as_edge.get(e, e)) for e in path))}/>')
    stops = [c for c in scenario.controls if isinstance(c, BusStop)]
    flows = []
    for r, path in enumerate(routes.links):
        f = scenario.demand.flows[routes.flow[r]]
        prof = list(f.profile)
        due = 0.0  # uniform: the route's vehicles demanded so far (continuous)
        phase = ((r + 1) * _GOLDEN) % 1.0
        for s, (start, q) in enumerate(prof):
            end = prof[s + 1][0] if s + 1 < len(prof) else scenario.duration_s
            end = min(end, scenario.duration_s)
            rate = q * routes.share[r]
            if rate <= 0 or end <= max(start, 0.0):
                continue
            begin = max(start, 0.0)
            if arrivals == "uniform":
                # the route's vehicle j departs when its demand so far reaches j + phase, across
                # segments (a segment's count is not rounded up on its own); the phases of the
                # routes are spread over (0, 1), so many low-rate routes (a grid's OD pairs, trips
                # binned on import) do not all insert at the same instants
                first = math.floor(due + 1.0 - phase)
                due += rate * (end - begin) / 3600.0
                n = math.floor(due + 1.0 - phase) - first
                if n <= 0:
                    continue
                period = 3600.0 / rate
                begin = end - (due - (first + phase)) * period
                freq = f'number="{n}"'
                end = begin + n * period
            else:
                freq = f'period="exp({rate / 3600.0:.8f})"'
            body = ""
            if f.vehicle_class == "bus":
                for k, stop in enumerate(stops):
                    if stop.link in path:
                        park = ' parking="true"' if stop.bay else ""
                        body += f'\n    <stop busStop="stop{k}" duration="{stop.dwell_mean_s + stop.clearance_s:g}"{park}/>'
            close = f">{body}\n  </flow>" if body else "/>"
            flows.append((begin, (
                f'  <flow id="{r}_{s}" type="{f.vehicle_class}" route="r{r}" begin="{begin:.3f}" end="{end:.3f}" '
                f'{freq} departLane="{depart_lane}" departSpeed="max" departPos="base"{close}'
            )))
    flows.sort(key=lambda e: e[0])
    rou.extend(line for _, line in flows)
    rou.append('</routes>')
    route_file = directory / "demand.rou.xml"
    route_file.write_text("\n".join(rou) + "\n", encoding="utf-8")

    # ---- signal programs and additional outputs
    import sumolib

    snet = sumolib.net.readNet(str(net_file), withPrograms=True)
    add = ['<additional>']
    tls_links: dict[str, list[tuple[str, str]]] = {}
    tls_yields: dict[str, list[set[int]]] = {}
    for tls in snet.getTrafficLights():
        n = max((c[2] for c in tls.getConnections()), default=-1) + 1
        links = [("", "")] * n
        for in_lane, out_lane, idx in tls.getConnections():
            links[idx] = (ids.element(in_lane.getEdge().getID()), ids.element(out_lane.getEdge().getID()))
        tls_links[ids.element(tls.getID())] = links
        tls_yields[ids.element(tls.getID())] = _tls_yields(tls, n)
    for c in scenario.controls:
        if isinstance(c, FixedTimeSignal):
            add.append(_tls_program(c, tls_links[c.node], tls_yields[c.node], ids))
    for k, stop in enumerate(stops):
        lane = f"{ids.edge(stop.link)}_0"
        add.append(
            f'  <busStop id="stop{k}" lane={quoteattr(lane)} startPos="{stop.position_m:g}" '
            f'endPos="{stop.position_m + stop.length_m:g}"/>'
        )
    edge_data_files: list[Path] = []
    if edge_data_file is not None:
        # one edgeData per free speed, so that "queued" means slower than a fixed share of each
        # link's free speed (SUMO's halting threshold is one speed per edgeData)
        speed_groups: dict[float, list[str]] = {}
        for lk in net.links.values():
            if lk.id not in as_edge:
                thr = round(lk.free_speed_kmh / 3.6 * queue_speed_fraction, 4)
                speed_groups.setdefault(thr, []).append(ids.edge(lk.id))
        for g, (thr, edges) in enumerate(sorted(speed_groups.items())):
            f = Path(f"{edge_data_file}.{g}.xml")
            edge_data_files.append(f)
            add.append(
                f'  <edgeData id="trafficsim{g}" file={quoteattr(str(f))} period="{record_interval_s:g}" '
                f'excludeEmpty="false" speedThreshold="{thr:g}" edges={quoteattr(" ".join(edges))}/>'
            )
        e2 = Path(f"{edge_data_file}.e2.xml")
        for lk in net.links.values():
            if lk.id in as_edge:
                continue
            thr = lk.free_speed_kmh / 3.6 * queue_speed_fraction
            for ln in snet.getEdge(ids.edge(lk.id)).getLanes():
                add.append(
                    f'  <laneAreaDetector id={quoteattr("q_" + ln.getID())} lane={quoteattr(ln.getID())} pos="0" '
                    f'endPos="{ln.getLength():.2f}" period="{record_interval_s:g}" file={quoteattr(str(e2))} '
                    f'speedThreshold="{thr:g}" jamThreshold="10"/>'
                )
    alinea: dict[str, list[str]] = {}
    for c in scenario.controls:
        if isinstance(c, AlineaMeter):
            detectors = alinea.setdefault(c.link, [])
            for ln in snet.getEdge(ids.edge(c.detector_link)).getLanes():
                did = f"alinea_{ids.edge(c.link)}_{ln.getIndex()}"
                detectors.append(did)
                add.append(
                    f'  <laneAreaDetector id={quoteattr(did)} lane={quoteattr(ln.getID())} pos="0" '
                    f'endPos="{min(c.detector_length_m, ln.getLength()):.2f}" period="{record_interval_s:g}" '
                    f'file={quoteattr(str(directory / "alinea.e2.xml"))}/>'
                )
    lanes = {ids.element(e.getID()): [ln.getID() for ln in e.getLanes()]
             for e in snet.getEdges() if e.getFunction() == ""}
    for main, g in groups.items():
        # which lanes serve the turn, and the junction-internal lanes to switch off while dedicated
        outgoing = snet.getEdge(ids.edge(main)).getOutgoing()
        turn_to = ids.edge(g["turn_to"])
        turn_lanes = sorted({c.getFromLane().getIndex() for c in outgoing.get(snet.getEdge(turn_to), [])})
        if len(turn_lanes) != g["lanes"]:
            raise SumoError(
                f"variable lane on link {main!r}: SUMO's junction connects {len(turn_lanes)} lane(s) to "
                f"{g['turn_to']!r} but the measure dedicates {g['lanes']}; SUMO export supports the lanes "
                f"netconvert gives the turn"
            )
        g["dedicated"] = [lanes[main][i] for i in turn_lanes]
        g["via_close"] = sorted(
            c.getViaLaneID() for target, conns in outgoing.items() if target.getID() != turn_to
            for c in conns if c.getFromLane().getIndex() in turn_lanes and c.getViaLaneID()
        )
    lane_data = None
    internal = sorted({v.rsplit("_", 1)[0] for g in groups.values() for v in g["via_close"]})
    lane_data_edges = [ids.edge(e) for e in lane_data_edges] + internal
    if edge_data_file is not None and lane_data_edges:
        lane_data = Path(f"{edge_data_file}.lanes.xml")
        add.append(
            f'  <laneData id="trafficsim_lanes" file={quoteattr(str(lane_data))} period="{record_interval_s:g}" '
            f'excludeEmpty="false" withInternal="{"true" if internal else "false"}" '
            f'edges={quoteattr(" ".join(lane_data_edges))}/>'
        )
    add.append('</additional>')
    additional = directory / "controls.add.xml"
    additional.write_text("\n".join(add) + "\n", encoding="utf-8")
    return SumoExport(
        directory, net_file, route_file, additional, ref.id, vtypes, route_ids, tls_links, lanes, edge_data_files,
        alinea, lane_data, groups, ids,
    )


# ---------------------------------------------------------------------------------- import
#: Default lane capacity [veh/h] of an imported edge by its speed limit [km/h]: 1,800 on streets
#: (up to 70 km/h), the HCM 2010 basic freeway segment capacities from 90 km/h (2,250, rising to
#: 2,400 at 120 km/h and above: ``1,800 + 5 FFS``, Exhibit 11-17), linear in between.
IMPORT_CAPACITY_BY_SPEED = ((70.0, 1800.0), (90.0, 2250.0), (120.0, 2400.0))


def import_capacity(free_speed_kmh: float) -> float:
    """The default lane capacity [veh/h] of an imported edge (:data:`IMPORT_CAPACITY_BY_SPEED`)."""
    pts = IMPORT_CAPACITY_BY_SPEED
    for (v0, c0), (v1, c1) in zip(pts, pts[1:]):
        if free_speed_kmh <= v1:
            return c0 + (c1 - c0) * min(max(free_speed_kmh - v0, 0.0), v1 - v0) / (v1 - v0)
    return pts[-1][1]


def _capacity_for(free_speed_kmh: float, jam: float, default: float | None) -> float:
    """A lane capacity [veh/h] whose backward wave speed stays at most 25 km/h."""
    wmax = 25.0
    if default is None:
        default = import_capacity(free_speed_kmh)
    return min(default, 0.98 * wmax * jam / (1.0 + wmax / free_speed_kmh))


def _read_net(path):
    """A SUMO network read by sumolib (with its programs), or ``path`` itself if sumolib has read
    it already (so that :func:`scenario_from_sumo` parses a large file once, not three times)."""
    if hasattr(path, "getEdges"):
        return path
    import sumolib

    path = Path(path)
    if not path.exists():
        raise NetworkError(f"SUMO network {str(path)!r}: file not found")
    root = _root_tag(_head(path))
    if root != "net":
        raise NetworkError(f"SUMO network {str(path)!r}: not a SUMO network: its root element is "
                           f"{'<' + root + '>' if root else 'missing'}, expected <net> (a route file goes after the network)")
    try:
        net = sumolib.net.readNet(str(path), withPrograms=True, withInternal=True)
    except Exception as exc:  # sumolib raises plain SAX/ValueErrors
        raise NetworkError(f"SUMO network {str(path)!r}: cannot read: {exc}") from None
    net.trafficsim_lefthand = _lefthand(path)
    return net


def _head(path: Path, size: int = 8192) -> str:
    """The first ``size`` characters of a (possibly gzipped) XML file."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read(size)


def _root_tag(head: str) -> str:
    """The name of the first element of an XML text (after its declaration and comments); "" if none."""
    import re

    text = re.sub(r"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", "", head, flags=re.S)
    m = re.search(r"<([A-Za-z_][\w.:-]*)", text)
    return m.group(1) if m else ""


def _lefthand(path: Path) -> bool:
    """Whether the ``<net>`` element of a SUMO network file says ``lefthand="true"`` (sumolib
    does not keep it)."""
    import re

    head = _head(path)
    tag = re.search(r"<net\b[^>]*>", head)
    return bool(tag and re.search(r'lefthand="(true|1)"', tag.group(0)))


def network_from_sumo(
    path: str | Path,
    *,
    vehicle_class: str = "passenger",
    capacity_vph_per_lane: float | None = None,
    jam_density_vpkm_per_lane: float = 150.0,
    min_travel_time_s: float = 0.5,
    turn_speeds: bool = False,
) -> Network:
    """A trafficsim :class:`~trafficsim.network.Network` from a SUMO ``.net.xml`` (or
    ``.net.xml.gz``; :func:`signals_from_sumo` and :func:`junctions_from_sumo` as well take either
    the path or a network ``sumolib.net.readNet(path, withPrograms=True)`` has read, which
    :func:`scenario_from_sumo` does once for all three).

    Every non-internal edge that admits ``vehicle_class`` becomes a link with the lanes that
    admit it, the edge length [m] and speed limit. Capacity and jam density per lane are not in
    a SUMO network; they take the given values, the capacity by default by the speed limit
    (:func:`import_capacity`: 1,800 veh/h on streets, up to 2,400 on motorways), lowered on slow
    streets so that the backward wave speed stays physical. SUMO's lane-to-lane connections
    become the network's lane connectors (:meth:`~trafficsim.network.Network.connect_lanes`)
    where they can be (contiguous from-lanes, not crossing; the first to-lane of a lane that
    SUMO connects to several); elsewhere the engines derive them. With ``turn_speeds=True`` a
    turn whose internal lanes in SUMO are slower than both its links (netconvert limits them by
    the curve's radius) gets that speed as the network's turn speed
    (:meth:`~trafficsim.network.Network.set_turn_speed`; the fastest of the movement's lanes).
    It is off by default: on SUMO's generated grids it moved the micro engine's total time in
    system further from SUMO's (docs/sumo.md, *Import*).

    Edges shorter than ``min_travel_time_s`` [s] at their speed limit (SUMO has edges of 0.1-2 m
    between the parts of a complex junction) are lengthened to it: the engines' steps are at most
    the shortest link's free-flow time (CFL on macro; one node per step on micro), and a 0.2 m
    edge at 50 km/h would take both to 0.014 s steps. The default, 0.5 s, adds at most half a
    second of free-flow travel per such edge (Ingolstadt's OpenStreetMap cut: 7 m to 1,477 m of
    road); 0 keeps SUMO's lengths. An edge pair meeting at a junction without a SUMO
    connection becomes a banned turn.
    """
    snet = _read_net(path)
    # SUMO's connections say which turns exist, turnarounds included; a left-hand network
    # (lefthand="true") keeps left, its lane 0 at the kerb as in trafficsim
    net = Network(allow_u_turns=True, left_hand=bool(getattr(snet, "trafficsim_lefthand", False)))
    edges = []
    for e in snet.getEdges():
        if e.getFunction() not in ("", "normal") or not e.allows(vehicle_class):
            continue
        lanes = [ln for ln in e.getLanes() if ln.allows(vehicle_class)]
        if not lanes or e.getFromNode().getID() == e.getToNode().getID():
            continue
        edges.append((e, len(lanes)))
    for e, _ in edges:
        for node in (e.getFromNode(), e.getToNode()):
            if node.getID() not in net.nodes:
                x, y = node.getCoord()[:2]
                net.add_node(node.getID(), x=float(x), y=float(y))
    if not (math.isfinite(min_travel_time_s) and min_travel_time_s >= 0):
        raise NetworkError(f"network_from_sumo: min_travel_time_s must be >= 0, got {min_travel_time_s!r}")
    for e, n in edges:
        vf = e.getSpeed() * 3.6
        net.add_link(
            e.getID(), e.getFromNode().getID(), e.getToNode().getID(),
            length_m=max(e.getLength(), e.getSpeed() * min_travel_time_s, 0.1),
            lanes=n, free_speed_kmh=vf,
            capacity_vph_per_lane=_capacity_for(vf, jam_density_vpkm_per_lane, capacity_vph_per_lane),
            jam_density_vpkm_per_lane=jam_density_vpkm_per_lane, name=e.getName() or "",
        )
    ids = set(net.links)
    # SUMO lane index -> index among the lanes that admit the class (OSM edges start with sidewalks)
    lane_no = {e.getID(): {ln.getIndex(): k for k, ln in enumerate(ln for ln in e.getLanes() if ln.allows(vehicle_class))}
               for e, _ in edges}
    for e, _ in edges:
        connected = {o.getID() for o in e.getOutgoing()}
        for nxt in e.getToNode().getOutgoing():
            if nxt.getID() in ids and nxt.getID() not in connected:
                net.ban_turn(e.getID(), nxt.getID())
        for nxt, conns in e.getOutgoing().items():
            if nxt.getID() not in ids:
                continue
            pairs = {}  # from-lane -> the first to-lane SUMO connects it to
            turn = 0.0  # the fastest of the movement's internal lanes [m/s]
            for c in conns:
                via = c.getViaLaneID()
                if via:
                    try:
                        turn = max(turn, snet.getLane(via).getSpeed())
                    except KeyError:  # a network read without its internal lanes
                        turn = math.inf
                else:
                    turn = math.inf
                i = lane_no[e.getID()].get(c.getFromLane().getIndex())
                j = lane_no[nxt.getID()].get(c.getToLane().getIndex())
                if i is not None and j is not None:
                    pairs.setdefault(i, j)
            try:
                net.connect_lanes(e.getID(), nxt.getID(), sorted(pairs.items()))
            except NetworkError:
                pass  # not expressible (no car lane, from-lanes not contiguous, crossing): derived
            if turn_speeds and 0.0 < turn < min(e.getSpeed(), nxt.getSpeed()) - 0.05:
                net.set_turn_speed(e.getID(), nxt.getID(), turn * 3.6)  # the curve's speed (SUMO's internal lane)
    return net


def signals_from_sumo(path: str | Path, network: Network, *, program: str | None = None) -> list[FixedTimeSignal]:
    """Fixed-time signals from the static ``tlLogic`` programs of a SUMO ``.net.xml``.

    Each run of phases that show green (``G``/``g``) becomes a :class:`Phase` whose movements
    are the green (in_link, out_link) pairs; the ``y`` phases after it are its amber and
    all-red phases its all-red. A traffic light that controls several junctions gives one
    signal per junction. Actuated, delay-based, NEMA, self-organising (``sotl_*``, ``swarm``)
    and other adaptive programs become fixed-time plans with their phases' ``duration`` (with a
    ``UserWarning`` naming them); programs switched ``off`` (SUMO then runs the junction
    without its light), and movements on links the network did not import, are skipped.
    """
    snet = _read_net(path)
    out = []
    adaptive: list[str] = []
    for tls in snet.getTrafficLights():
        progs = tls.getPrograms()
        if not progs:
            continue
        prog = progs.get(program) if program else progs[sorted(progs)[0]]
        if prog is None or prog.getType() == "off":
            continue
        if prog.getType() not in ("static", None, ""):
            adaptive.append(tls.getID())
        links: dict[int, list[tuple[str, str]]] = {}
        for in_lane, out_lane, idx in tls.getConnections():
            a, b = in_lane.getEdge().getID(), out_lane.getEdge().getID()
            if a in network.links and b in network.links:
                links.setdefault(idx, []).append((a, b))
        stages = []
        for ph in prog.getPhases():
            green = {mv for i, ch in enumerate(ph.state) if ch in "Gg" for mv in links.get(i, [])}
            stages.append((ph.duration, green, "green" if green else "amber" if "y" in ph.state else "red"))
        groups = fold_cycle(stages)
        if not groups:
            continue
        nodes = {network.links[a].to_node for mv in links.values() for a, _ in mv}
        for node in sorted(nodes):
            phases = tuple(
                Phase(g, tuple(sorted(mv for mv in m if network.links[mv[0]].to_node == node)), a, r)
                for g, m, a, r in groups
            )
            out.append(FixedTimeSignal(node, phases, float(prog.getOffset() or 0.0)).validate(network))
    if adaptive:
        shown = _first_few(adaptive)
        warnings.warn(f"signals_from_sumo: {len(adaptive)} actuated, delay-based or other adaptive program(s) ({shown}) "
                      "imported as fixed-time plans with their phases' base durations (trafficsim's signals are "
                      "fixed-time)", UserWarning, stacklevel=2)
    return out


#: SUMO junction types that become a :class:`PriorityJunction` on import.
PRIORITY_JUNCTION_TYPES = ("priority", "priority_stop")
#: SUMO junction types that become a ``PriorityJunction(rule="right_before_left")`` on import.
RIGHT_BEFORE_LEFT_TYPES = ("right_before_left", "allway_stop")
#: SUMO link states of a movement that gives way at such a junction (minor, stop).
_YIELD_STATES = {"m", "s"}


def junctions_from_sumo(path: str | Path, network: Network) -> list[PriorityJunction]:
    """A :class:`~trafficsim.control.PriorityJunction` for every ``priority`` (or
    ``priority_stop``) junction of a SUMO ``.net.xml`` where three or more roads of ``network``
    meet and some movement gives way (SUMO link state ``m`` or ``s``; a diverge, or a merge onto
    lanes added for it, has none and gets no control), with SUMO's own major road.

    The major road is read from the junction's connections: SUMO marks those of the major road
    (through movements and right turns) with state ``M``; the imported in-links that have one
    are the major road. Where they are not one in-link or two from opposite directions (SUMO's
    major road can bend at a junction; trafficsim's cannot), the highest-ranked of them (SUMO edge
    priority, then speed, then lanes) is the major road alone, and where there is none, the
    junction takes :class:`PriorityJunction`'s default major road.

    ``right_before_left`` junctions of three or more roads become ``PriorityJunction(node,
    rule="right_before_left")``; so do ``allway_stop`` junctions, with a ``UserWarning`` naming
    them: SUMO makes every vehicle stop there and lets them go in the order they arrived, which
    the engines do not model (they give way to the right). Other unsignalised types (``zipper``:
    the engines merge by zipper anyway; ``left_before_right``, ...) are left without a control:
    their streams cross freely in the macro and micro engines.
    """
    from .control import ControlError

    snet = _read_net(path)
    legs: dict[str, set[str]] = {}
    for lk in network.links.values():
        legs.setdefault(lk.to_node, set()).add(lk.from_node)
        legs.setdefault(lk.from_node, set()).add(lk.to_node)
    out, all_way = [], []
    for node in snet.getNodes():
        nid = node.getID()
        if nid not in network.nodes or len(legs.get(nid, ())) < 3:
            continue
        if node.getType() in RIGHT_BEFORE_LEFT_TYPES:
            try:
                out.append(PriorityJunction(nid, rule="right_before_left").validate(network))
            except ControlError:
                continue      # no coordinates on a leg
            if node.getType() == "allway_stop":
                all_way.append(nid)
            continue
        if node.getType() not in PRIORITY_JUNCTION_TYPES:
            continue
        ins = {lk.id for lk in network.in_links(nid)}
        states = {c.getState() for e in node.getIncoming() if e.getID() in ins
                  for cs in e.getOutgoing().values() for c in cs if c.getTo().getID() in network.links}
        if not states & _YIELD_STATES:
            continue  # nobody gives way in SUMO (a diverge, a merge onto added lanes)
        major = [e for e in node.getIncoming() if e.getID() in ins
                 and any(c.getState() == "M" for cs in e.getOutgoing().values() for c in cs)]
        # the major road as SUMO has it; where it bends, its highest-ranked in-link alone
        major.sort(key=lambda e: (e.getPriority(), e.getSpeed(), e.getLaneNumber()), reverse=True)
        for cand in (tuple(sorted(e.getID() for e in major)), tuple(e.getID() for e in major[:1]), ()):
            try:
                out.append(PriorityJunction(nid, cand).validate(network))
                break
            except ControlError:
                continue
    if all_way:
        shown = _first_few(all_way)
        warnings.warn(f"SUMO import: {len(all_way)} allway_stop junction(s) ({shown}) give way to the right "
                      "(rule 'right_before_left'): the stop of every vehicle and SUMO's first-come order are not "
                      "modelled", UserWarning, stacklevel=2)
    return out


_VCLASS_BACK = {"passenger": "car", "bus": "bus", "coach": "bus", "truck": "truck", "trailer": "truck", "delivery": "truck"}
#: SUMO vehicle classes that do not drive on the roads the engines model: their vehicles are
#: left out of the demand, with a ``UserWarning`` that counts them (every other class is a car
#: unless :data:`_VCLASS_BACK` says otherwise).
NON_ROAD_VCLASSES = frozenset({
    "pedestrian", "bicycle", "scooter", "wheelchair", "tram", "rail_urban", "rail", "rail_electric", "rail_fast",
    "subway", "cable_car", "ship", "aircraft", "drone", "container",
})


def _vclass_back(sumo_vclass: str) -> str | None:
    """trafficsim's vehicle class of a SUMO ``vClass`` (None: not a road vehicle)."""
    return None if sumo_vclass in NON_ROAD_VCLASSES else _VCLASS_BACK.get(sumo_vclass, "car")


def _num_attr(el, name: str, default=None):
    v = el.get(name)
    return default if v is None else float(v)


def _trip_path(network: Network, el) -> list[str] | None:
    """The free-flow shortest path of a trip or flow given by ``from``/``to`` edges (through its
    ``via`` edges) or by ``fromJunction``/``toJunction``; None if it gives neither. Edges not in
    the network come back as they are (the caller reports them)."""
    if el.get("fromJunction") and el.get("toJunction"):
        return network.shortest_path(el.get("fromJunction"), el.get("toJunction"))
    if not (el.get("from") and el.get("to")):
        return None
    stops = [el.get("from"), *el.get("via", "").split(), el.get("to")]
    if any(e not in network.links for e in stops):
        return stops
    path = [stops[0]]
    for b in stops[1:]:
        a = path[-1]
        if network.links[a].to_node != network.links[b].from_node:
            path += network.shortest_path(network.links[a].to_node, network.links[b].from_node)
        path.append(b)
    return path


def _xml_root(source):
    """The root element of an XML file, or ``source`` itself if it is one already; a file that
    does not parse is a :class:`~trafficsim.demand.DemandError` naming it."""
    if isinstance(source, ET.Element):
        return source
    try:
        return ET.parse(str(source)).getroot()
    except ET.ParseError as exc:
        raise DemandError(f"SUMO file {str(source)!r}: malformed XML: {exc}") from None
    except OSError as exc:
        raise DemandError(f"SUMO file {str(source)!r}: cannot read: {exc.strerror}") from None


def taz_from_sumo(*sources) -> dict[str, tuple[list[tuple[str, float]], list[tuple[str, float]]]]:
    """The traffic assignment zones (``<taz>``) of SUMO files (additional or route files, where
    ``od2trips`` and ``sumo -a`` read them; paths, or their parsed root elements):
    ``{id: (sources, sinks)}``, each a list of ``(edge, weight)``, from
    ``<tazSource>``/``<tazSink>`` children or else the ``edges`` attribute (every edge a source
    and a sink of weight 1)."""
    out = {}
    for src in sources:
        for t in _xml_root(src).iter("taz"):
            src = [(c.get("id"), float(c.get("weight", 1.0))) for c in t.iter("tazSource")]
            snk = [(c.get("id"), float(c.get("weight", 1.0))) for c in t.iter("tazSink")]
            edges = [(e, 1.0) for e in t.get("edges", "").split()]
            out[t.get("id")] = (src or edges, snk or edges)
    return out


def _taz_path(network: Network, taz: dict, el, cache: dict) -> list[str]:
    """The free-flow fastest route of a trip or flow from zone ``fromTaz`` to zone ``toTaz``: from
    any of the first's source edges to any of the second's sink edges (SUMO routes TAZ trips
    through a virtual node joined to every source and every sink edge: the weights only matter
    where ``od2trips`` draws edges)."""
    key = (el.get("fromTaz"), el.get("toTaz"))
    if key in cache:
        return cache[key]
    for z in key:
        if z not in taz:
            raise DemandError(f"{el.tag} {el.get('id')!r}: TAZ {z!r} is not defined (give the file with its "
                              "<taz> elements with the routes: scenario_from_sumo(net, [taz_file, routes]) or taz=)")
    sources = [e for e, w in taz[key[0]][0] if w > 0 and e in network.links]
    sinks = [e for e, w in taz[key[1]][1] if w > 0 and e in network.links]
    best, cost = None, math.inf
    for s in sources:
        first = network.links[s]
        paths = network.shortest_paths_from(first.to_node)
        for t in sinks:
            last = network.links[t]
            if s == t:
                route = [s]
            elif last.from_node == first.to_node:
                route = [s, t]
            elif last.from_node in paths:
                route = [s, *paths[last.from_node], t]
            else:
                continue
            if any(not network.turn_allowed(a, b) for a, b in zip(route, route[1:])):
                continue
            c = sum(network.links[e].free_flow_time_s for e in route)
            if c < cost:
                best, cost = route, c
    if best is None:
        raise DemandError(f"{el.tag} {el.get('id')!r}: no route from TAZ {key[0]!r} to TAZ {key[1]!r} over "
                          "their source and sink edges in the network")
    cache[key] = best
    return best


def demand_from_sumo(
    path: str | Path, network: Network, *, duration_s: float | None = None, bin_s: float = 900.0,
    on_unmapped: str = "error", taz: dict | None = None, types_from=(),
) -> Demand:
    """A :class:`~trafficsim.demand.Demand` from a SUMO routes file.

    ``<flow>`` elements (``vehsPerHour``, ``period``, ``number`` or ``probability`` with
    ``begin``/``end``) become piecewise-constant OD flows on their route; ``<vehicle>`` and
    ``<trip>`` elements are counted per route in bins of ``bin_s`` [s] and become rates. Routes
    are given by ``route`` (id or embedded ``<route edges>``; the id of a
    ``<routeDistribution>`` splits the element over its routes by their ``probability``), by
    ``from``/``to`` edges (free-flow shortest path, through the ``via`` edges) or by
    ``fromJunction``/``toJunction`` (shortest path between the nodes) or, with neither, by
    ``fromTaz``/``toTaz`` (the fastest route from a source edge of the one zone to a sink edge of
    the other; zones from ``taz``, :func:`taz_from_sumo`, and the file's own ``<taz>``
    elements). A route over an edge the network lacks raises :class:`DemandError`, or is skipped
    with ``on_unmapped="skip"``. A vehicle ``type`` naming a ``<vTypeDistribution>`` splits the
    element over its types' vehicle classes by their ``probability``; types may be defined in
    the files ``types_from`` too (paths or parsed root elements; :func:`scenario_from_sumo`
    passes its other files). Vehicles of a
    class that does not drive on roads (:data:`NON_ROAD_VCLASSES`: bicycles, pedestrians, trams,
    trains, ...) are left out, with a ``UserWarning`` counting them.
    """
    if on_unmapped not in ("error", "skip"):
        raise DemandError(f"on_unmapped must be 'error' or 'skip', got {on_unmapped!r}")
    root = _xml_root(path)
    type_roots = [root, *(_xml_root(f) for f in types_from)]
    named_routes = {r.get("id"): r.get("edges", "").split() for r in root.iter("route") if r.get("id")}
    # route distributions: id -> [(edges, probability)] (members inline or by refId)
    distributions = {
        d.get("id"): [(named_routes.get(r.get("refId")) if r.get("refId") else r.get("edges", "").split(),
                       float(r.get("probability", 1.0))) for r in d.iter("route")]
        for d in root.iter("routeDistribution") if d.get("id")
    }
    vclass = {t.get("id"): _vclass_back(t.get("vClass", "passenger")) for r in type_roots for t in r.iter("vType")}
    # vType distributions: id -> {class: share} (member types inline, or named by vTypes)
    class_shares: dict[str, dict[str, float]] = {}
    type_prob = {t.get("id"): float(t.get("probability", 1.0)) for r in type_roots for t in r.iter("vType")}
    for dist in (d for r in type_roots for d in r.iter("vTypeDistribution")):
        members = [(t.get("id"), float(t.get("probability", 1.0))) for t in dist.iter("vType")]
        named = dist.get("vTypes", "").split()
        probs = [float(p) for p in dist.get("probabilities", "").split()]
        members += [(tid, probs[i] if i < len(probs) else type_prob.get(tid, 1.0)) for i, tid in enumerate(named)]
        shares: dict[str | None, float] = {}
        for tid, p in members:
            shares[vclass.get(tid, "car")] = shares.get(vclass.get(tid, "car"), 0.0) + p
        total = sum(shares.values())
        if total > 0:
            class_shares[dist.get("id")] = {c: p / total for c, p in shares.items()}
    zones = {**taz_from_sumo(root), **(taz or {})}
    taz_routes: dict = {}

    def mapped(el, edges) -> tuple[str, ...] | None:
        if not edges or any(e not in network.links for e in edges):
            if on_unmapped == "error":
                why = (f"route {el.get('route')!r} is not defined in {Path(path).name}" if not edges
                       else f"route {edges} uses edges not in the network")
                raise DemandError(f"{el.tag} {el.get('id')!r}: {why}")
            return None
        return tuple(edges)

    def paths_of(el) -> list[tuple[tuple[str, ...], float]]:
        """The element's routes with their probabilities (one, or a route distribution's)."""
        ref = el.get("route")
        if ref is not None and ref not in named_routes and ref in distributions:
            out = [(mapped(el, edges), p) for edges, p in distributions[ref] if p > 0]
            return [(e, p) for e, p in out if e is not None]
        if ref is not None:
            edges = named_routes.get(ref)
        elif el.find("route") is not None:
            edges = el.find("route").get("edges", "").split()
        elif (el.get("fromTaz") or el.get("toTaz")) and not (el.get("from") or el.get("fromJunction")):
            if not (el.get("fromTaz") and el.get("toTaz")):
                raise DemandError(f"{el.tag} {el.get('id')!r}: fromTaz and toTaz go together")
            edges = _taz_path(network, zones, el, taz_routes)
        else:
            try:
                edges = _trip_path(network, el)
            except NetworkError as exc:
                if on_unmapped == "error":
                    raise DemandError(f"{el.tag} {el.get('id')!r}: {exc}") from None
                return []
            if edges is None:
                raise DemandError(f"{el.tag} {el.get('id')!r}: no route (route, from/to edges or "
                                  "fromJunction/toJunction)")
        e = mapped(el, edges)
        return [] if e is None else [(e, 1.0)]

    segments: dict[tuple[tuple[str, ...], str], list[tuple[float, float, float]]] = {}
    horizon = duration_s
    off_road = 0
    for el in root:
        if el.tag not in ("flow", "vehicle", "trip"):
            continue
        kinds = class_shares.get(el.get("type", ""), {vclass.get(el.get("type", ""), "car"): 1.0})
        if None in kinds:
            off_road += 1
            kinds = {c: p for c, p in kinds.items() if c is not None}
            if not kinds:
                continue
        paths = paths_of(el)
        if not paths:
            continue
        total_p = sum(w for _, w in paths)
        if el.tag == "flow":
            begin = _num_attr(el, "begin", 0.0)
            end = _num_attr(el, "end", horizon if horizon is not None else begin + 3600.0)
            if el.get("vehsPerHour") is not None:
                rate = float(el.get("vehsPerHour"))
            elif el.get("period") is not None and not el.get("period").startswith("exp"):
                rate = 3600.0 / float(el.get("period"))
            elif el.get("period") is not None:
                rate = float(el.get("period")[4:-1]) * 3600.0
            elif el.get("probability") is not None:
                rate = float(el.get("probability")) * 3600.0
            elif el.get("number") is not None:
                rate = float(el.get("number")) / max(end - begin, 1e-9) * 3600.0
            else:
                raise DemandError(f"flow {el.get('id')!r}: no rate (vehsPerHour, period, probability or number)")
        else:
            t = float(el.get("depart", "0"))
            begin = math.floor(t / bin_s) * bin_s
            end, rate = begin + bin_s, 3600.0 / bin_s
        for p, w in paths:
            for vc, share in kinds.items():
                segments.setdefault((p, vc), []).append((begin, end, rate * w / total_p * share))
    if off_road:
        off_classes = {t.get("vClass") for r in type_roots for t in r.iter("vType")} & NON_ROAD_VCLASSES
        warnings.warn(f"SUMO import: {off_road} flow(s), vehicle(s) or trip(s) in {Path(path).name} are (in part) of a "
                      f"vehicle class that does not drive on roads ({', '.join(sorted(off_classes))}): "
                      "left out of the demand", UserWarning, stacklevel=2)
    demand = Demand()
    for (p, vc), segs in segments.items():
        o, d = network.links[p[0]].from_node, network.links[p[-1]].to_node
        demand.add(o, d, profile_from_intervals(segs), route=list(p), vehicle_class=vc)
    demand.resolve_routes(network)
    return demand


def scenario_from_sumo(
    net_file: str | Path, route_files=(), *, duration_s: float = 3600.0, name: str = "", junctions: bool = True,
    **network_options
) -> Scenario:
    """A Scenario from a SUMO network, its route files and its static signal programs.

    ``route_files`` may include additional files with the ``<taz>`` zones of TAZ trips.

    ``junctions`` (default True): the network's unsignalised ``priority`` junctions become
    :class:`~trafficsim.control.PriorityJunction` controls (:func:`junctions_from_sumo`), so
    minor streams give way as in SUMO; False lets every unsignalised junction's streams cross
    freely (the CTM's classic node model). ``network_options`` go to :func:`network_from_sumo`.
    """
    snet = _read_net(net_file)
    net = network_from_sumo(snet, **network_options)
    demand = Demand()
    if isinstance(route_files, (str, Path)):
        route_files = [route_files]
    roots = [_xml_root(rf) for rf in route_files]     # each file read once for the zones and types
    zones = taz_from_sumo(*roots)
    for i, rf in enumerate(route_files):
        others = roots[:i] + roots[i + 1:]
        demand.flows.extend(demand_from_sumo(rf, net, duration_s=duration_s, taz=zones, types_from=others).flows)
    controls = signals_from_sumo(snet, net)
    if junctions:
        signalised = {c.node for c in controls}
        controls += [j for j in junctions_from_sumo(snet, net) if j.node not in signalised]
    return Scenario(net, demand, duration_s, controls, name=name or Path(net_file).stem)
