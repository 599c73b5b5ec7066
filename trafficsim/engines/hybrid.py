"""The ``hybrid`` engine: a region of the network in SUMO, the rest in the CTM or the micro engine, coupled every step.

The scenario is split by a set of ``region`` links into two sub-scenarios:

* the **outer** part (every other link, ``HybridSplit.macro``) runs in the cell-transmission
  model (:mod:`trafficsim.engines.macro`, ``outer="macro"``, the default) or in the micro
  engine (:mod:`trafficsim.engines.micro`, ``outer="micro"``). A route that enters the region becomes, in the macro
  part, a *prefix* route ending at the region's entry node (a virtual sink there) and, if it
  leaves the region again, a *suffix* route starting at the exit node with no demand of its
  own; a route that never touches the region is unchanged;
* the **SUMO** part (the region links) is exported with
  :func:`trafficsim.sumo_io.export_scenario` (same capacity-matched vehicle types as
  ``engine="sumo"``) but without flows: every vehicle is inserted by the coupling.

Every coupling step ``dt_s`` (default 1 s; SUMO runs ``dt_s / sumo_dt_s`` sub-steps):

1. **Receiving flow of the region.** For each entry edge SUMO's available space is read from a
   lane-area detector on the first ``v_f dt_s`` metres of each lane (subscriptions, no
   per-vehicle calls): ``R = min(Q dt, (w / v_f) (k_j lanes v_f dt - n)) - pending``, the CTM
   receiving function of that stretch minus the vehicles already handed over but not yet
   inserted. ``R`` caps the discharge of the macro links feeding the entry node (through the
   kernel's ``meter`` array, split among several feeding links by their sending flows).
2. **Macro step.** One :func:`~trafficsim.kernels.ctm.ctm_advance` step; the fractional
   vehicles of each prefix route that reach the virtual sink are accumulated per route.
3. **Insertion.** Each time a route's accumulator passes a whole vehicle, one vehicle is added
   to SUMO on the route's region part (``vehicle.add``, ``departLane="free"``,
   ``departSpeed="max"``); the remainder (< 1 vehicle per route) stays in the accumulator.
   Demand whose origin lies inside the region is accumulated the same way from its rate.
4. **SUMO steps.** Before each SUMO sub-step the region's controls are applied by the sumo
   engine's own :class:`~trafficsim.engines.sumo.Controls` (lane closures with disallow lists,
   tidal and variable lanes, fixed-rate and ALINEA meters). Vehicles that arrive at the end of
   their region part and continue in the macro part are added, as whole vehicles, to the origin
   queue of their suffix route's source at the exit node (the *exit buffer*), from which the
   CTM's node model lets them onto the downstream link as its receiving flow allows.

Conservation is exact: every vehicle demanded is, at every step, in exactly one of the origin
queues, the macro links, the fractional transfer accumulators, SUMO's insertion backlog of
handed-over vehicles, SUMO's network, the exit buffers, or arrived
(``Result.final_state["conservation"]`` lists the terms). The boundary buffers are booked as
point queues at the boundary ends of the region links: their waiting time is in those links'
VHT and queue, a vehicle in an exit buffer has not left its link yet, one handed over but not yet
inserted has entered the entry link.

An ALINEA meter runs in the part that holds its merge node with every link at it (SUMO: traffic
light and lane-area detectors; macro: meter array and detector cells); one whose merge straddles
the boundary is an error naming the meter.

**Exit hold** (``hold_exits=True``, default): while the outer link after an exit is backed up
(its exit buffer holds more than it can take in one step plus one vehicle), SUMO's vehicles bound
for it that are within the last stopping distance of their exit edge are held with
``vehicle.setSpeed(id, 0)`` and released with ``setSpeed(id, -1)`` when it clears, so the
downstream queue occupies SUMO's lanes instead of the point buffer.

This describes ``outer="macro"``. With ``outer="micro"`` whole vehicles cross both ways and the
steps differ as follows (:class:`~trafficsim.engines._hybrid_outer.MicroOuter`): the coupling
step is the micro step (default 0.5 s); a prefix route ends at the entry node with an exit
movement that a *gate* signal of the coupling times: green while SUMO has inserted every vehicle
handed over at that node and its entry stretch has room, then amber for 2 s and red, so the
vehicles wait at the end of their micro link and the queue stands in the micro part; a vehicle
that leaves the micro network there is added to SUMO at once (no accumulator); vehicles leaving
SUMO join the origin queue of their suffix route in the micro engine (the exit buffer), which
inserts them at the speed the downstream allows; demand that starts inside the region arrives
as Poisson whole vehicles. The conservation terms are the same, with ``micro_links`` for
``macro_links`` and no ``transfer_fraction``.

A road a measure cut in parts (``Scenario.meta["split_links"]``: a metered ramp and its
``"<ramp>-merge"`` after the stop line) is in the region as a whole when the region names it or
any of its parts.

Limitations (see ``docs/hybrid.md``): each route may enter the region at most once; no route may
pass an entry node from an outer link to an outer link; a signal and an ALINEA meter's merge lie
wholly inside or outside the region, as do a variable lane's link and pocket; with
``outer="micro"`` a meter may not time a link that feeds an entry node (the gate does); the exit
hold is per exit edge and route, not per lane.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..control import (
    AlineaMeter, Blocking, BusStop, FixedRateMeter, FixedTimeSignal, PriorityJunction, TollBooth, merge_downstream,
)
from ..demand import Demand, ODFlow
from ..network import Network
from ..results import Result, build_dataset
from ..scenario import Scenario
from ..sumo_io import SumoError, export_scenario, sumo_binary, variable_lane_groups
from ._common import SimulationError, build_routes, positive_seconds, progress_bar, steps_for
from ._hybrid_outer import OUTER_MODELS, MacroOuter, MicroOuter

__all__ = ["run_hybrid", "split_scenario", "HybridSplit", "default_region", "measure_overhead"]

#: Default coupling step [s] (also the CTM step of the macro part).
DEFAULT_DT_S = 1.0
#: Default coupling step [s] with ``outer="micro"`` (the micro engine's default step).
DEFAULT_MICRO_DT_S = 0.5
#: Default SUMO step [s] inside the region.
DEFAULT_SUMO_DT_S = 0.5
_LAST_STEP_VEHICLE_NUMBER = 0x10  # traci.constants.LAST_STEP_VEHICLE_NUMBER
_JAM_LENGTH_METERS = 0x19
_LAST_STEP_VEHICLE_ID_LIST = 0x12
#: Deceleration [m/s2] of the exported SUMO vehicle types (``sumo_io``): sizes the exit hold zones.
_SUMO_DECEL = 4.5


def default_region(scenario: Scenario) -> list[str]:
    """The scenario's ``meta["bottleneck_link"]`` plus every link at its two nodes: the links
    into and out of its upstream node and its downstream node. A merge or a diverge at either end
    is then wholly in SUMO: with only the links into the upstream node and out of the downstream
    one, the stream merging at the downstream node stayed outside, and the merge was split between
    SUMO and the outer model (``jiangwan-bridge``: 6,051 veh h of delay and 1,788 vehicles never
    served, against 936 and none with the merge whole)."""
    b = scenario.meta.get("bottleneck_link")
    if not b:
        raise SimulationError("engine 'hybrid': give region=[link ids] (the scenario has no meta['bottleneck_link'])")
    net = scenario.network
    lk = net.link(b)
    region = [b]
    for node in (lk.from_node, lk.to_node):
        region += [x.id for x in net.in_links(node)] + [x.id for x in net.out_links(node)]
    return list(dict.fromkeys(region))


def _subnetwork(net: Network, keep: set[str]) -> Network:
    sub = net.copy()
    for lid in list(sub.links):
        if lid not in keep:
            sub.remove_link(lid)
    used = {n for lk in sub.links.values() for n in (lk.from_node, lk.to_node)}
    for nid in list(sub.nodes):
        if nid not in used:
            del sub.nodes[nid]
    return sub


@dataclass
class HybridSplit:
    """A scenario split into a macro and a SUMO sub-scenario, with the route maps between them.

    For original route ``r``: ``parts[r] = (prefix, middle, suffix)`` link tuples (``middle``
    in the region); ``macro_first[r]`` / ``macro_last[r]`` index the macro sub-scenario's flow
    that carries the route's first / last macro part (or -1), ``region_route[r]`` the SUMO
    sub-scenario's flow of its region part (or -1).
    """

    scenario: Scenario
    region: list[str]
    macro: Scenario | None
    sumo: Scenario
    parts: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]
    macro_first: list[int] = field(default_factory=list)
    macro_last: list[int] = field(default_factory=list)
    region_route: list[int] = field(default_factory=list)
    entry_nodes: list[str] = field(default_factory=list)


def split_scenario(scenario: Scenario, region) -> HybridSplit:
    """Split ``scenario`` by the ``region`` links (see the module docstring for the rules).

    ``split.sumo`` carries the region part of every route at the route's own demand rate, so
    ``simulate(split.sumo, engine="sumo")`` is SUMO alone on the same region (the baseline of
    the coupling-overhead figure). A link that is a part of a road a measure cut in parts
    (``meta["split_links"]``, e.g. a ramp and ``"<ramp>-merge"`` at a meter's stop line) stands
    for the whole road: ``split.region`` lists every part.
    """
    scenario.validate()
    net = scenario.network
    # a road a measure cut in parts (a meter's stop line) lies wholly in or out: naming it or any
    # of its parts (default_region names a metered ramp by its last part) covers all of them
    region = scenario.link_parts(dict.fromkeys(scenario.road_of(lid) for lid in region))
    rset = set(region)
    for lid in region:
        net.link(lid)
    if not rset:
        raise SimulationError("engine 'hybrid': region is empty")
    mset = set(net.links) - rset
    routes = build_routes(scenario)
    flows = scenario.demand.flows
    parts = []
    for r, path in enumerate(routes.links):
        inside = [lid in rset for lid in path]
        idx = [i for i, x in enumerate(inside) if x]
        if idx and idx[-1] - idx[0] + 1 != len(idx):
            raise SimulationError(
                f"engine 'hybrid': route {routes.label[r]} enters the region twice ({' '.join(path)}); "
                f"choose a region that each route crosses at most once"
            )
        if not idx:
            parts.append((tuple(path), (), ()))
        else:
            parts.append((tuple(path[: idx[0]]), tuple(path[idx[0]: idx[-1] + 1]), tuple(path[idx[-1] + 1:])))
    entry_nodes = sorted({net.links[p[0][-1]].to_node for p in parts if p[0] and p[1]})
    eset = set(entry_nodes)
    for r, path in enumerate(routes.links):
        for a, b in zip(path[:-1], path[1:]):
            n = net.links[a].to_node
            if n in eset and a in mset and b in mset:
                raise SimulationError(
                    f"engine 'hybrid': node {n!r} feeds the region but route {routes.label[r]} also passes it from "
                    f"macro link {a!r} to macro link {b!r}; add {b!r} to the region or move the boundary"
                )
    for main, g in variable_lane_groups(net).items():
        if (main in rset) != (g["pocket"] in rset):
            raise SimulationError(
                f"engine 'hybrid': variable lane on link {main!r}: {main!r} and its pocket {g['pocket']!r} must both "
                f"lie inside or both outside the region (in SUMO the pocket is {main!r}'s median lane)"
            )
    macro_ctl, sumo_ctl = [], []

    def side(nodes: list[str], what: str) -> list:
        """The control list of the part that holds every link at ``nodes``, else an error."""
        touched = {lk.id for node in nodes for lk in net.in_links(node) + net.out_links(node)}
        if touched <= rset:
            return sumo_ctl
        if touched <= mset:
            return macro_ctl
        raise SimulationError(
            f"engine 'hybrid': {what} straddles the region boundary: {sorted(touched & rset)} in the region, "
            f"{sorted(touched & mset)} outside; put node {' and '.join(map(repr, nodes))} with all its links inside "
            "or outside the region"
        )

    for c in scenario.controls:
        c = c.validate(net)
        if isinstance(c, AlineaMeter):
            # the meter's line and its merge (one node, or two when the line stands before the merge)
            nodes = list(dict.fromkeys((net.links[c.link].to_node, merge_downstream(net, c.link))))
            side(nodes, f"ALINEA meter on ramp {c.link!r} (detector on {c.detector_link!r})").append(c)
        elif isinstance(c, FixedTimeSignal):
            side([c.node], f"signal at node {c.node!r}").append(c)
        elif isinstance(c, PriorityJunction):
            side([c.node], f"priority junction at node {c.node!r}").append(c)
        elif isinstance(c, (FixedRateMeter, Blocking, BusStop, TollBooth)):
            (sumo_ctl if c.link in rset else macro_ctl).append(c)
        else:
            raise SimulationError(f"engine 'hybrid': control {type(c).__name__} is not supported")
    # ---- macro sub-scenario: one flow per route part
    m_flows: list[ODFlow] = []
    macro_first, macro_last, region_route = [], [], []
    s_flows: list[ODFlow] = []
    for r, (pre, mid, suf) in enumerate(parts):
        f = flows[routes.flow[r]]
        share = routes.share[r]
        prof = tuple((s, q * share) for s, q in f.profile)
        name = routes.label[r]
        first = last = -1
        if not mid:
            m_flows.append(ODFlow(f.origin, f.destination, prof, ((pre, 1.0),), f.vehicle_class, name))
            first = last = len(m_flows) - 1
        else:
            if pre:
                m_flows.append(ODFlow(f.origin, net.links[pre[-1]].to_node, prof, ((pre, 1.0),), f.vehicle_class,
                                      name + " (to region)"))
                first = len(m_flows) - 1
            if suf:
                zero = ((0.0, 0.0),)
                m_flows.append(ODFlow(net.links[suf[0]].from_node, f.destination, zero, ((suf, 1.0),),
                                      f.vehicle_class, name + " (from region)"))
                last = len(m_flows) - 1
            s_flows.append(ODFlow(net.links[mid[0]].from_node, net.links[mid[-1]].to_node, prof, ((mid, 1.0),),
                                  f.vehicle_class, name))
        macro_first.append(first)
        macro_last.append(last)
        region_route.append(len(s_flows) - 1 if mid else -1)
    meta = dict(scenario.meta)
    macro = None
    if mset:
        macro = Scenario(_subnetwork(net, mset), Demand(m_flows), scenario.duration_s, macro_ctl,
                         name=f"{scenario.name} (macro part)", meta=meta)
        macro.validate()
    sumo = Scenario(_subnetwork(net, rset), Demand(s_flows), scenario.duration_s, sumo_ctl,
                    name=f"{scenario.name} (SUMO region)", meta=meta)
    sumo.validate()
    return HybridSplit(scenario, region, macro, sumo, parts, macro_first, macro_last, region_route, entry_nodes)


def _strip_flows(route_file: Path) -> None:
    tree = ET.parse(str(route_file))
    root = tree.getroot()
    for el in list(root):
        if el.tag == "flow":
            root.remove(el)
    tree.write(str(route_file), encoding="utf-8")


def run_hybrid(
    scenario: Scenario,
    *,
    region=None,
    outer: str = "macro",
    dt_s: float | None = None,
    sumo_dt_s: float = DEFAULT_SUMO_DT_S,
    record_interval_s: float = 60.0,
    capacity_drop: float = 0.0,
    vehicle_params: dict | None = None,
    lane_change: dict | None = None,
    progress: bool = False,
    seed: int | None = 0,
    reference_link: str | None = None,
    timeout_s: float = 600.0,
    keep_files: str | Path | None = None,
    hold_exits: bool = True,
) -> Result:
    """Run ``scenario`` with the ``region`` links in SUMO and the rest in the CTM or the micro engine.

    Parameters
    ----------
    region : list of str, optional
        Links simulated in SUMO; default :func:`default_region` (the scenario's bottleneck link
        and its neighbours). A link that is a part of a road a measure cut in parts
        (``meta["split_links"]``) brings in the whole road.
    outer : {"macro", "micro"}
        Model of the links outside the region: the CTM (default) or the micro engine (IDM +
        MOBIL, whole vehicles; see :mod:`trafficsim.engines._hybrid_outer`).
    dt_s : float, optional
        Coupling step [s], also the outer model's step; default :data:`DEFAULT_DT_S` (macro)
        or :data:`DEFAULT_MICRO_DT_S` (micro). Macro: must satisfy the CFL condition on the
        outer links. Must be a whole multiple of ``sumo_dt_s``.
    sumo_dt_s : float
        SUMO step [s] inside the region.
    capacity_drop : float
        As for the macro engine (``outer="macro"`` only).
    vehicle_params, lane_change : dict, optional
        As for the micro engine (``outer="micro"`` only).
    seed : int or None
        SUMO's random seed; with ``outer="micro"`` also the micro engine's (arrivals) and that of
        the arrivals of routes that start inside the region.
    reference_link : str, optional
        Region link on which SUMO's vehicle type matches capacity (see the ``sumo`` engine).
    timeout_s : float
        Wall-clock limit [s] for the whole run.
    keep_files : path, optional
        Keep the exported SUMO files and outputs there.
    hold_exits : bool
        Hold SUMO's vehicles at the end of their exit edge (``vehicle.setSpeed(id, 0)`` in the
        last stopping distance of the edge) while the outer link after the exit is backed up
        (:meth:`~trafficsim.engines._hybrid_outer.MacroOuter.exit_blocked`), so its queue
        occupies space in SUMO; False: the exit buffer is a point queue only.
    """
    from . import sumo as sumo_engine

    t_wall0 = time.perf_counter()
    if outer not in OUTER_MODELS:
        raise SimulationError(f"engine 'hybrid': outer must be one of {list(OUTER_MODELS)}, got {outer!r}")
    if not (0.0 <= capacity_drop < 0.5):
        raise SimulationError(f"capacity_drop must be in [0, 0.5), got {capacity_drop!r}")
    if outer == "micro" and capacity_drop:
        raise SimulationError("engine 'hybrid': capacity_drop applies to outer='macro' only")
    if outer == "macro" and (vehicle_params or lane_change):
        raise SimulationError("engine 'hybrid': vehicle_params and lane_change apply to outer='micro' only")
    region = default_region(scenario) if region is None else list(region)
    split = split_scenario(scenario, region)
    if split.macro is None:
        raise SimulationError("engine 'hybrid': the region covers the whole network; use engine='sumo'")
    dt = (DEFAULT_DT_S if outer == "macro" else DEFAULT_MICRO_DT_S) if dt_s is None else positive_seconds("dt_s", dt_s)
    sub = dt / sumo_dt_s
    if sumo_dt_s <= 0 or abs(sub - round(sub)) > 1e-9 or round(sub) < 1:
        raise SimulationError(f"engine 'hybrid': dt_s={dt:g} must be a whole multiple of sumo_dt_s={sumo_dt_s:g}")
    sub = int(round(sub))
    n_steps, spr = steps_for(scenario, dt, record_interval_s)
    T = int(math.ceil(n_steps / spr))
    net = scenario.network
    routes = build_routes(scenario)
    R = len(routes)
    link_ids = list(net.links)
    L = len(link_ids)

    # ---- outer part (the links outside the region) and the route maps
    if outer == "macro":
        om = MacroOuter(split, R, dt, record_interval_s, capacity_drop, net)
    else:
        om = MicroOuter(split, R, dt, record_interval_s, seed, net, vehicle_params=vehicle_params,
                        lane_change=lane_change)
    o_index = {lid: i for i, lid in enumerate(om.link_ids)}
    reg = np.array(split.region_route)
    pre_r, suf_r = om.pre_r, om.suf_r
    inreg_origin = [r for r in range(R) if not split.parts[r][0]]                  # origin in the region
    ends_in_region = om.ends_in_region
    flows = scenario.demand.flows
    vclass = [flows[routes.flow[r]].vehicle_class for r in range(R)]
    # boundary links: outer links into each entry node; a variable lane's pocket is no SUMO edge
    # (its vehicles use its link's edge)
    edge_of = {g["pocket"]: main for main, g in variable_lane_groups(net).items()}
    entry_edges: dict[str, list[str]] = {}
    for n in split.entry_nodes:
        entry_edges[n] = [lk.id for lk in net.out_links(n) if lk.id not in edge_of and lk.id not in o_index]
    entry_edge_of_route = {r: edge_of.get(split.parts[r][1][0], split.parts[r][1][0]) for r in pre_r}
    exit_edge_of_route = {r: edge_of.get(split.parts[r][1][-1], split.parts[r][1][-1]) for r in suf_r}

    # ---- SUMO part
    work = Path(keep_files) if keep_files is not None else Path(tempfile.mkdtemp(prefix="trafficsim-hybrid-"))
    work.mkdir(parents=True, exist_ok=True)
    reg_sc = split.sumo
    reg_ids = list(reg_sc.network.links)
    sumo_engine.check_meters(reg_sc, "hybrid")
    # boundary buffers are point queues at the boundary ends of the region links (columns of reg_ids)
    exit_col = np.array([reg_ids.index(edge_of.get(split.parts[r][1][-1], split.parts[r][1][-1])) for r in suf_r],
                        dtype=np.int64)
    try:
        reg_routes = build_routes(reg_sc)
        try:
            exp = export_scenario(
                reg_sc, work, routes=reg_routes, reference_link=reference_link, edge_data_file=work / "edgedata",
                record_interval_s=record_interval_s, queue_speed_fraction=sumo_engine.QUEUE_SPEED_FRACTION,
                lane_data_edges=sorted({lid for lid, lk in reg_sc.network.links.items() if lk.lane_schedule}
                                       | {c.link for c in reg_sc.controls if isinstance(c, Blocking)}),
            )
        except SumoError as exc:
            raise SimulationError(f"engine 'hybrid': SUMO export failed: {exc}") from None
        _strip_flows(exp.route_file)
        # detectors on the first v_f*dt metres of every entry lane: SUMO's available entry space
        import sumolib

        snet = sumolib.net.readNet(str(exp.net_file))
        det_lines = ["<additional>"]
        entry_info = {}
        for n, edges in entry_edges.items():
            for e in edges:
                lk = net.links[e]
                seg = []
                for ln in snet.getEdge(exp.ids.edge(e)).getLanes():
                    length = min(lk.free_speed_kmh / 3.6 * dt, ln.getLength())
                    seg.append((ln.getID(), length))
                    det_lines.append(
                        f'  <laneAreaDetector id="hyb_{ln.getID()}" lane="{ln.getID()}" pos="0" endPos="{length:.2f}" '
                        f'period="{record_interval_s:g}" file="{work / "hybrid.e2.xml"}"/>'
                    )
                entry_info[e] = seg
        # exit hold zones: the last stopping distance of every lane of an exit edge
        exit_zone: dict[str, list[str]] = {}
        if hold_exits:
            for e in sorted({edge_of.get(split.parts[r][1][-1], split.parts[r][1][-1]) for r in suf_r}):
                vf = net.links[e].free_speed_kmh / 3.6
                zone = vf * vf / (2.0 * _SUMO_DECEL) + 2.0 * vf * sumo_dt_s
                exit_zone[e] = []
                for ln in snet.getEdge(exp.ids.edge(e)).getLanes():
                    start = max(0.0, ln.getLength() - zone)
                    exit_zone[e].append(ln.getID())
                    det_lines.append(
                        f'  <laneAreaDetector id="hx_{ln.getID()}" lane="{ln.getID()}" pos="{start:.2f}" '
                        f'endPos="{ln.getLength():.2f}" period="{record_interval_s:g}" file="{work / "hybrid.e2.xml"}"/>'
                    )
        det_lines.append("</additional>")
        det_file = work / "hybrid.add.xml"
        det_file.write_text("\n".join(det_lines) + "\n", encoding="utf-8")
        log = work / "sumo.log"
        cmd = [
            sumo_binary("sumo"), "-n", str(exp.net_file), "-r", str(exp.route_file),
            "-a", f"{exp.additional_file},{det_file}",
            "--step-length", f"{sumo_dt_s:g}", "--begin", "0", "--seed", str(0 if seed is None else int(seed)),
            "--time-to-teleport", "-1", "--no-step-log", "true", "--duration-log.disable", "true",
            "--error-log", str(log), "--no-warnings", "true", "--collision.action", "warn",
            "--max-depart-delay", "-1", "--precision", "4", "--xml-validation", "never",
        ]
        # receiving function parameters of each entry edge's first stretch
        qdt, wvf, kj = {}, {}, {}
        for e in entry_info:
            lk = net.links[e]
            qdt[e] = lk.capacity_vph_per_lane / 3600.0 * dt
            wvf[e] = lk.wave_speed_kmh / lk.free_speed_kmh
            kj[e] = lk.jam_density_vpkm_per_lane / 1000.0

        # ---- run state
        gen = np.zeros(R)          # cumulative demand (region-origin routes only; others from the outer part)
        dep_sumo = np.zeros(R)     # departures in SUMO of region-origin routes
        arr_sumo = np.zeros(R)     # arrivals in SUMO of routes that end in the region
        handed = np.zeros(R)       # whole vehicles handed to SUMO (prefix routes)
        acc = np.zeros(R)          # fractional region-origin demand (outer="macro")
        to_exit = np.zeros(R)      # vehicles moved into exit buffers
        seq = np.zeros(R, np.int64)
        route_gen = np.zeros((T, R))
        route_in = np.zeros((T, R))
        route_out = np.zeros((T, R))
        wait_s = np.zeros(T)
        boundary_wait = 0.0
        jam_end = np.zeros((T, len(reg_ids)))
        lanes_end = np.zeros((T, len(reg_ids)))
        buf_wait = np.zeros((T, len(reg_ids)))   # vehicle-seconds in the boundary buffers per region link
        buf_end = np.zeros((T, len(reg_ids)))    # vehicles in the exit buffers at the record instant
        pend_end = np.zeros((T, len(reg_ids)))   # handed over, not yet inserted, at the record instant
        entry_col = {e: reg_ids.index(e) for e in entry_info}
        t_sumo = 0.0
        n_holds = 0                # vehicle-steps held at exit edges
        max_imbalance = 0.0        # largest |demanded - every place a vehicle can be| over the steps
        session = sumo_engine._Session("libsumo" if _has_libsumo() else "traci", cmd, timeout_s, log, exp.ids)
        bar = progress_bar(progress, n_steps, "hybrid", scenario)
        lanes_of = exp.lanes
        reg_lanes = [ln for lid in reg_ids for ln in lanes_of.get(lid, ())]
        sumo_ctl = sumo_engine.Controls(reg_sc, exp, sumo_dt_s)
        lane_open = np.zeros((T, len(sumo_ctl.switched)), bool)
        k = 0
        try:
            try:
                session.start()
            except SimulationError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise session.failure("hybrid", "to start", exc, timeout_s) from None
            api = session.api
            try:
                sumo_ctl.start(api)
                for ln in reg_lanes:
                    api.lanearea.subscribe("q_" + ln, [_JAM_LENGTH_METERS])
                for e, seg in entry_info.items():
                    for ln, _ in seg:
                        api.lanearea.subscribe("hyb_" + ln, [_LAST_STEP_VEHICLE_NUMBER])
                for lns in exit_zone.values():
                    for ln in lns:
                        api.lanearea.subscribe("hx_" + ln, [_LAST_STEP_VEHICLE_ID_LIST])
                held: dict[str, int] = {}     # vehicle id -> original route, held at its exit edge's end
                pending_edge = {e: 0 for e in entry_info}
                for k in range(n_steps):
                    t = k * dt
                    row = k // spr
                    # -- SUMO-side controls (lanes, meters, ALINEA) as they stand for the coming step
                    sumo_ctl.apply(api, k * sub, t)
                    closed = sumo_ctl.closed
                    # -- 1. receiving flow of each entry node -> limit on the outer links feeding it
                    supply: dict[str, float] = {}
                    pending_node: dict[str, int] = {}
                    if entry_info:
                        subs = api.lanearea.getAllSubscriptionResults()
                        for n, edges in entry_edges.items():
                            s_n = 0.0
                            for e in edges:
                                seg = entry_info[e]
                                open_ = [(ln, x) for ln, x in seg if ln not in closed]
                                veh = sum(subs["hyb_" + ln][_LAST_STEP_VEHICLE_NUMBER] for ln, _ in open_)
                                room = wvf[e] * (kj[e] * sum(x for _, x in open_) - veh)
                                s_n += max(0.0, min(qdt[e] * len(open_), room) - pending_edge[e])
                            supply[n] = s_n
                            pending_node[n] = sum(pending_edge[e] for e in edges)
                    om.limit(k, supply, pending_node)
                    # -- 2. outer step: whole vehicles reaching the entry nodes
                    region_rate = [flows[routes.flow[r]].rate_at(t) * routes.share[r] / 3600.0 * dt
                                   for r in inreg_origin]
                    whole_of = om.advance(k)
                    # -- 3. whole vehicles into SUMO (prefix routes, then region-origin demand)
                    for r in pre_r:
                        if whole_of[r]:
                            handed[r] += whole_of[r]
                    for r, veh in zip(inreg_origin, region_rate):
                        if veh > 0:
                            if outer == "macro":
                                gen[r] += veh
                            n_new = om.region_demand(r, veh, acc)
                            if outer == "micro":
                                gen[r] += n_new
                            whole_of[r] = n_new
                    for r in pre_r + inreg_origin:
                        if reg[r] < 0:
                            continue
                        for _ in range(int(whole_of[r])):
                            api.vehicle.add(f"{r}_{seq[r]}", f"r{reg[r]}", typeID=vclass[r], depart="now",
                                            departLane="free", departPos="base", departSpeed="max")
                            seq[r] += 1
                    # -- exits whose downstream outer link is backed up: hold their vehicles in SUMO
                    if exit_zone:
                        blocked = om.exit_blocked(t)
                        if blocked or held:
                            zsubs = api.lanearea.getAllSubscriptionResults()
                            if blocked:
                                for e in {exit_edge_of_route[r] for r in blocked}:
                                    for ln in exit_zone[e]:
                                        for vid in zsubs["hx_" + ln][_LAST_STEP_VEHICLE_ID_LIST]:
                                            r = int(vid.split("_", 1)[0])
                                            if r in blocked and vid not in held:
                                                api.vehicle.setSpeed(vid, 0.0)
                                                held[vid] = r
                            for vid in [v for v, r in held.items() if r not in blocked]:
                                api.vehicle.setSpeed(vid, -1.0)
                                del held[vid]
                            n_holds += len(held)
                    # -- 4. SUMO sub-steps; arrivals feed the exit buffers
                    t0 = time.perf_counter()
                    for j in range(sub):
                        if j:
                            sumo_ctl.apply(api, k * sub + j, t + j * sumo_dt_s)
                        api.simulationStep(t + (j + 1) * sumo_dt_s)
                        for vid in api.simulation.getDepartedIDList():
                            r = int(vid.split("_", 1)[0])
                            if r not in entry_edge_of_route:
                                dep_sumo[r] += 1
                        for vid in api.simulation.getArrivedIDList():
                            r = int(vid.split("_", 1)[0])
                            if ends_in_region[r]:
                                arr_sumo[r] += 1
                            else:
                                om.receive(r)
                                to_exit[r] += 1
                                held.pop(vid, None)
                    pending = api.simulation.getPendingVehicles()
                    t_sumo += time.perf_counter() - t0
                    for e in pending_edge:
                        pending_edge[e] = 0
                    for vid in pending:
                        r = int(vid.split("_", 1)[0])
                        e = entry_edge_of_route.get(r)
                        if e is not None:
                            pending_edge[e] += 1
                    # -- bookkeeping per original route
                    g_now, i_now, o_now = om.totals(gen, dep_sumo, arr_sumo)
                    wait_s[row] += float((g_now - i_now).sum()) * dt
                    exit_q = om.exit_queue()
                    np.add.at(buf_wait[row], exit_col, exit_q * dt)
                    for e, npend in pending_edge.items():
                        buf_wait[row, entry_col[e]] += npend * dt
                    boundary_wait += (sum(pending_edge.values()) + exit_q.sum()) * dt
                    # -- conservation at every step: the terms of final_state["conservation"]
                    placed = (o_now.sum() + (g_now - i_now).sum() + sum(om.conservation().values())
                              + sum(pending_edge.values()) + api.vehicle.getIDCount() + exit_q.sum())
                    max_imbalance = max(max_imbalance, abs(float(g_now.sum() - placed)))
                    if (k + 1) % spr == 0 or k + 1 == n_steps:
                        route_gen[row], route_in[row], route_out[row] = g_now, i_now, o_now
                        subs = api.lanearea.getAllSubscriptionResults()
                        jam_end[row] = [max((subs["q_" + ln][_JAM_LENGTH_METERS] for ln in lanes_of.get(lid, ())),
                                            default=0.0) for lid in reg_ids]
                        lanes_end[row] = sumo_ctl.lanes_open((k + 1) * dt, reg_ids)
                        lane_open[row] = sumo_ctl.read_open(api)
                        buf_end[row] = np.bincount(exit_col, weights=exit_q, minlength=len(reg_ids))
                        for e, npend in pending_edge.items():
                            pend_end[row, entry_col[e]] += npend
                        session.check_time()
                        if bar is not None:
                            bar.update(spr)
                sumo_running = float(api.vehicle.getIDCount())
                pending_boundary = float(sum(pending_edge.values()))
            except SimulationError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise session.failure("hybrid", f"at t={k * dt:g} s", exc, timeout_s) from None
        finally:
            session.close()
            if bar is not None:
                bar.close()
        s_vkt, s_vht, s_in, s_out, s_wait, span = sumo_engine._read_edge_data(exp.edge_data_files, reg_ids, T,
                                                                              record_interval_s, exp.ids)
        switched = sumo_ctl.final(lane_open)
        sw = switched["switched_lanes"]
        sw["entered"], sw["left"] = sumo_engine._read_lane_data(exp.lane_data_file, sw["lanes"], T, record_interval_s,
                                                                exp.ids)
    finally:
        if keep_files is None:
            shutil.rmtree(work, ignore_errors=True)

    # ---- assemble the common Result over all links
    z = lambda: np.zeros((T, L))  # noqa: E731
    vkt, vht, cum_in, cum_out, queue_veh, queue_m, lanes = z(), z(), z(), z(), z(), z(), z()
    orec = om.records()
    for lid, i in o_index.items():
        j = link_ids.index(lid)
        vkt[:, j], vht[:, j] = orec["vkt"][:, i], orec["vht"][:, i]
        cum_in[:, j], cum_out[:, j] = orec["cum_in"][:, i], orec["cum_out"][:, i]
        queue_veh[:, j], queue_m[:, j], lanes[:, j] = orec["queue_veh"][:, i], orec["queue_m"][:, i], orec["lanes"][:, i]
    length = np.array([net.links[lid].length_m for lid in reg_ids])
    # boundary buffers as point queues at the region links' boundary ends: their waiting time is
    # the links' VHT and queue, a buffered exit has not left its link, a pending entry has entered
    s_vht = s_vht + buf_wait
    s_wait = s_wait + buf_wait
    s_out = s_out - buf_end
    s_in = s_in + pend_end
    with np.errstate(invalid="ignore", divide="ignore"):
        s_queue = np.where(span[:, None] > 0, s_wait / np.where(span[:, None] > 0, span[:, None], 1.0), 0.0)
    for i, lid in enumerate(reg_ids):
        j = link_ids.index(lid)
        vkt[:, j], vht[:, j], cum_in[:, j], cum_out[:, j] = s_vkt[:, i], s_vht[:, i], s_in[:, i], s_out[:, i]
        queue_veh[:, j] = s_queue[:, i]
        # the buffered vehicles stand (in effect) at the link's end: the jam they would make
        kj_m = net.links[lid].jam_density_vpkm_per_lane / 1000.0 * np.maximum(lanes_end[:, i], 1.0)
        queue_m[:, j] = np.minimum(length[i], jam_end[:, i] + buf_end[:, i] / kj_m)
        lanes[:, j] = lanes_end[:, i]
    src_key: dict[tuple[str, str], int] = {}
    route_src = np.array([src_key.setdefault((flows[routes.flow[r]].origin, routes.links[r][0]), len(src_key))
                          for r in range(R)], dtype=np.int64)
    S = len(src_key)
    origin_queue = np.stack([np.bincount(route_src, weights=route_gen[t] - route_in[t], minlength=S) for t in range(T)])
    wall = time.perf_counter() - t_wall0
    conservation = {
        "demanded": float(route_gen[-1].sum()),
        "arrived": float(route_out[-1].sum()),
        "origin_waiting": float((route_gen[-1] - route_in[-1]).sum()),
        **om.conservation(),
        "sumo_pending_boundary": pending_boundary,
        "sumo_network": sumo_running,
        "exit_buffer": float(om.exit_queue().sum()),
    }
    t_outer = om.wall_s
    ds = build_dataset(
        scenario, engine="hybrid", dt_s=dt, record_interval_s=record_interval_s, n_steps=n_steps,
        link_ids=link_ids, route_labels=routes.label, route_links=routes.links,
        origins=[o for (o, _) in src_key], vkt_m=vkt, vht_s=vht, cum_in=cum_in, cum_out=cum_out,
        queue_veh=queue_veh, queue_m=queue_m, lanes=lanes, route_in=route_in, route_out=route_out,
        route_gen=route_gen, origin_queue=origin_queue, wait_s=wait_s,
        extra_attrs={
            "hybrid_region": " ".join(split.region), "hybrid_outer": outer, "sumo_dt_s": float(sumo_dt_s),
            "sumo_reference_link": exp.reference_link, "capacity_drop": capacity_drop,
            "boundary_wait_vh": boundary_wait / 3600.0,
            "wall_s": wall, "wall_sumo_s": t_sumo, "wall_outer_s": t_outer,
            "wall_coupling_s": wall - t_sumo - t_outer,
        },
    )
    final = {
        "conservation": conservation,
        "timing": {"wall_s": wall, "sumo_s": t_sumo, "outer_s": t_outer, "coupling_s": wall - t_sumo - t_outer},
        "handed_to_sumo": handed.copy(), "to_exit_buffer": to_exit.copy(),
        "exit_hold_vs": n_holds * dt, "conservation_max_error": max_imbalance,
        "switched_lanes": switched["switched_lanes"],
    }
    logs = {**om.controller_logs(), **switched.get("controllers", {})}
    if logs:
        final["controllers"] = logs
    return Result(ds, scenario=scenario, engine="hybrid", final_state=final)


def _has_libsumo() -> bool:
    try:
        import libsumo  # noqa: F401

        return True
    except ImportError:
        return False


def measure_overhead(scenario: Scenario, region=None, *, repeat: int = 1, **options) -> dict[str, float]:
    """Wall time of the coupled run against SUMO alone on the same region.

    SUMO alone runs ``split_scenario(scenario, region).sumo`` (the region's links with the
    region part of every route at its own demand rate) with ``engine="sumo"`` and the same
    SUMO step; both timings include export, ``netconvert`` and result assembly. ``options`` go
    to :func:`run_hybrid` (e.g. ``outer="micro"``). Returns the best of ``repeat`` runs of each,
    their ratio (``ratio`` <= 2 is the target) and the split of the last coupled run [s]
    (``hybrid_sumo_step_s``, ``hybrid_outer_s``: the outer model's steps, ``hybrid_coupling_s``:
    the rest).
    """
    from .sumo import run_sumo

    region = default_region(scenario) if region is None else list(region)
    split = split_scenario(scenario, region)
    sumo_dt = options.get("sumo_dt_s", DEFAULT_SUMO_DT_S)
    rec = options.get("record_interval_s", 60.0)
    t_h, t_s, timing = [], [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = run_hybrid(scenario, region=region, **options)
        t_h.append(time.perf_counter() - t0)
        timing = res.final_state["timing"]
        t0 = time.perf_counter()
        run_sumo(split.sumo, dt_s=sumo_dt, record_interval_s=rec)
        t_s.append(time.perf_counter() - t0)
    return {
        "hybrid_s": min(t_h), "sumo_alone_s": min(t_s), "ratio": min(t_h) / min(t_s),
        "hybrid_sumo_step_s": timing["sumo_s"], "hybrid_outer_s": timing["outer_s"],
        "hybrid_coupling_s": timing["coupling_s"],
    }
