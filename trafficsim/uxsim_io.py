"""UXsim worlds both ways: import a UXsim ``World`` (its network, signals and demand) as a
trafficsim Scenario, and build a World from a Scenario.

UXsim (``pip install uxsim``) builds a scenario in Python: ``W.addNode``, ``W.addLink``,
``W.adddemand``. :func:`scenario_from_uxsim` reads such a World before (or after) it runs and
gives the same road to trafficsim's engines:

* **nodes**: name and ``x``, ``y``;
* **links**: length, lanes, free-flow speed ``u`` and jam density per lane as they are; the
  lane capacity is UXsim's triangular diagram's (``u w kappa / (u + w)`` per lane), lowered to
  ``capacity_out`` or ``capacity_in`` where one of those binds, so the backward wave speed
  (trafficsim derives it from capacity, free speed and jam density) is UXsim's ``w`` where no cap
  binds; a cap so low that the wave would leave trafficsim's physical range (8-30 km/h) is left
  out, with a ``UserWarning`` naming the links;
* **signals**: a node's ``signal`` cycle (a list of group durations) and ``signal_offset``
  become a :class:`~trafficsim.control.FixedTimeSignal`; each group is a phase whose movements
  are those of the in-links in the group (``signal_group``) to every out-link; a group in which
  no in-link has green becomes all-red time after the previous phase;
* **demand**: the ``adddemand`` calls UXsim records (``W.demand_info``) as piecewise-constant OD
  flows at their exact rates; where vehicles were added otherwise (``addVehicle``, area demand),
  every vehicle (platoon of ``deltan``) is counted per OD in bins of ``bin_s`` and becomes a rate.

Not carried over: UXsim's route choice (trafficsim routes by free-flow shortest path, or
``route_choice="dynamic"``), ``merge_priority`` (trafficsim merges in proportion to capacity),
node ``flow_capacity``, congestion pricing and user functions.
"""

from __future__ import annotations

import math
import warnings

from .control import FixedTimeSignal, Phase, fold_cycle
from .demand import Demand, DemandError, profile_from_intervals
from .network import Network, NetworkError
from .scenario import Scenario

__all__ = ["scenario_from_uxsim", "world_from_scenario"]


def _name(x) -> str:
    return str(getattr(x, "name", x))


def _capacity_vps(link) -> float:
    """The link's capacity [veh/s], UXsim's diagram and its caps."""
    cap = float(link.capacity)
    for attr in ("capacity_out", "capacity_in"):
        c = getattr(link, attr, None)
        if c is not None and math.isfinite(float(c)) and float(c) > 0:
            cap = min(cap, float(c))
    return cap


def _signals(W, network: Network) -> list[FixedTimeSignal]:
    out = []
    for node in W.NODES:
        cycle = [float(d) for d in (getattr(node, "signal", None) or [])]
        if len(cycle) < 2 or sum(cycle) <= 0:
            continue  # UXsim's default [0]: no signal
        nid = _name(node)
        ins = [lk for lk in W.LINKS if _name(lk.end_node) == nid]
        outs = [lk.id for lk in network.out_links(nid)]
        stages = []
        for g, d in enumerate(cycle):
            mv = tuple(sorted((_name(a), b) for a in ins if g in (getattr(a, "signal_group", None) or [])
                              for b in outs if network.turn_allowed(_name(a), b)))
            stages.append((d, mv, "green" if mv and d > 0 else "red"))
        groups = fold_cycle(stages)
        if not groups:
            continue
        phases = tuple(Phase(g, mv, a, r) for g, mv, a, r in groups)
        out.append(FixedTimeSignal(nid, phases, float(getattr(node, "signal_offset", 0.0) or 0.0)).validate(network))
    return out


def _record_rate(r) -> tuple[float, float, float]:
    """``(t_start, t_end, veh/s)`` of one recorded ``adddemand`` call (``volume`` wins over ``flow``)."""
    t0, t1 = float(r["t_start"]), float(r["t_end"])
    vol = float(r.get("volume", -1) or -1)
    return t0, t1, (vol / (t1 - t0) if vol > 0 and t1 > t0 else float(r["flow"]))


def _demand(W, bin_s: float) -> Demand:
    deltan = float(W.DELTAN)
    records = [_record_rate(r) + (_name(r["orig"]), _name(r["dest"]))
               for r in getattr(W, "demand_info", {}).get("adddemand", [])]
    vehicles = list(W.VEHICLES.values())
    # the recorded adddemand calls serve if they account for every vehicle: each call makes whole
    # platoons of its volume, rounded down, so it exceeds its vehicles by less than one platoon
    given = sum(max(t1 - t0, 0.0) * q for t0, t1, q, _, _ in records)
    made = len(vehicles) * deltan
    segments: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    if records and made - 1e-6 <= given <= made + deltan * len(records) + 1e-6:
        for t0, t1, q, o, d in records:
            if q > 0 and t1 > t0:
                segments.setdefault((o, d), []).append((t0, t1, q * 3600.0))
    else:
        for v in vehicles:
            b0 = math.floor(float(v.departure_time_in_second) / bin_s) * bin_s
            segments.setdefault((_name(v.orig), _name(v.dest)), []).append((b0, b0 + bin_s, deltan * 3600.0 / bin_s))
    demand = Demand()
    for (o, d), segs in segments.items():
        demand.add(o, d, profile_from_intervals(segs))
    return demand


def scenario_from_uxsim(W, *, duration_s: float | None = None, bin_s: float = 300.0, name: str = "") -> Scenario:
    """A :class:`~trafficsim.scenario.Scenario` from a UXsim ``World`` (see the module docstring
    for what is carried over).

    Parameters
    ----------
    W : uxsim.World
        The world, with its nodes, links and demand added (run or not).
    duration_s : float, optional
        Horizon [s]; default the World's ``tmax``.
    bin_s : float
        Bin [s] for counting vehicles that were not added by ``adddemand``.
    name : str
        Scenario name; default the World's.
    """
    net = Network()
    for node in W.NODES:
        net.add_node(_name(node), x=float(node.x), y=float(node.y))
    uncapped = []
    for lk in W.LINKS:
        lanes = int(getattr(lk, "number_of_lanes", 1) or 1)
        kw = dict(length_m=float(lk.length), lanes=lanes, free_speed_kmh=float(lk.u) * 3.6,
                  jam_density_vpkm_per_lane=float(lk.kappa) / lanes * 1000.0)
        ends = (_name(lk), _name(lk.start_node), _name(lk.end_node))
        try:
            net.add_link(*ends, capacity_vph_per_lane=_capacity_vps(lk) / lanes * 3600.0, **kw)
        except NetworkError as exc:
            if _capacity_vps(lk) >= float(lk.capacity):
                raise NetworkError(f"UXsim link {_name(lk)!r}: {exc}") from None
            # a cap far below the diagram's capacity would make trafficsim's wave too slow
            net.add_link(*ends, capacity_vph_per_lane=float(lk.capacity) / lanes * 3600.0, **kw)
            uncapped.append(f"{_name(lk)!r} ({_capacity_vps(lk):.3g} of {float(lk.capacity):.3g} veh/s)")
    if uncapped:
        warnings.warn(f"UXsim links whose capacity_out/capacity_in would give a backward wave outside 8-30 km/h "
                      f"keep the capacity of UXsim's diagram: {', '.join(uncapped[:4])}"
                      f"{' and others' if len(uncapped) > 4 else ''}; model such a bottleneck with fewer lanes "
                      "or a FixedRateMeter", UserWarning, stacklevel=2)
    horizon = float(W.TMAX) if duration_s is None else float(duration_s)
    demand = _demand(W, bin_s)
    try:
        demand.resolve_routes(net)
    except DemandError as exc:
        raise DemandError(f"UXsim demand: {exc}") from None
    return Scenario(net, demand, horizon, _signals(W, net), name=name or str(getattr(W, "name", "") or "uxsim"))


def world_from_scenario(sc: Scenario, *, deltan: int = 5, cpp: bool = False, caps: bool = True, **world_options):
    """A UXsim ``World`` with ``sc``'s road, signals and demand (the inverse of
    :func:`scenario_from_uxsim`, which gives ``sc`` back exactly).

    Same nodes, links, lanes, free speed and jam density per lane; the link's capacity as
    ``capacity_in`` and ``capacity_out`` (``caps=False`` leaves them out: UXsim's own diagram
    alone; ``capacity_out`` alone does not bind where trips end on the link). UXsim's triangular
    diagram with its reaction time of 1 s has a capacity at or above trafficsim's on ordinary
    links, so the cap binds where trafficsim's capacity does. Signals: one UXsim signal group
    per phase (``green_s``) followed by an all-red group of ``amber_s + all_red_s``. Merge
    priority = lanes. Demand: one ``adddemand`` per piecewise-constant segment of each flow
    (UXsim chooses its own routes). ``world_options`` go to ``World`` (e.g. ``tmax``,
    ``duo_update_time``, ``random_seed``; defaults: ``tmax`` the scenario's horizon, printing,
    saving and showing off, ``random_seed=0``).
    """
    from uxsim import World

    net = sc.network
    W = World(**{**dict(name=sc.name or "", deltan=deltan, tmax=sc.duration_s, print_mode=0, save_mode=0,
                        show_mode=0, random_seed=0, cpp=cpp), **world_options})
    signals = {c.node: c for c in sc.controls if isinstance(c, FixedTimeSignal)}
    groups: dict[str, list[int]] = {}
    for nid, node in net.nodes.items():
        x, y = (node.x or 0.0), (node.y or 0.0)
        sig = signals.get(nid)
        if sig is None:
            W.addNode(nid, x, y)
            continue
        durations = []
        for p in sig.phases:
            g = len(durations)
            durations.append(p.green_s)
            for a, _b in p.movements:
                groups.setdefault(a, [])
                if g not in groups[a]:
                    groups[a].append(g)
            inter = p.amber_s + p.all_red_s
            if inter > 0:
                durations.append(inter)
        W.addNode(nid, x, y, signal=durations, signal_offset=sig.offset_s)
    for lid, lk in net.links.items():
        kw = {}
        if lid in groups:
            kw["signal_group"] = groups[lid]
        if caps:
            kw["capacity_out"] = kw["capacity_in"] = lk.capacity_vph_per_lane * lk.lanes / 3600.0
        W.addLink(lid, lk.from_node, lk.to_node, length=lk.length_m, free_flow_speed=lk.free_speed_kmh / 3.6,
                  jam_density_per_lane=lk.jam_density_vpkm_per_lane / 1000.0, number_of_lanes=int(lk.lanes),
                  merge_priority=float(lk.lanes), **kw)
    for f in sc.demand.flows:
        prof = list(f.profile)
        for i, (start, q) in enumerate(prof):
            end = prof[i + 1][0] if i + 1 < len(prof) else sc.duration_s
            if q > 0 and end > start:
                W.adddemand(f.origin, f.destination, start, min(end, sc.duration_s), q / 3600.0)
    return W
