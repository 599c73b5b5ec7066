"""Lane groups for the macro engine: one queue per group of lanes where the lanes of a link serve
different movements.

A CTM link is one FIFO queue over all its lanes, so left-turners held by their phase hold the
through vehicles behind them whose lanes are free on the road (docs/models/ctm.md, *One queue
per link*). Where a link's lanes are marked (every allowed movement has explicit lane connectors,
:meth:`~trafficsim.network.Network.connect_lanes`) and the marks split its lanes into disjoint
groups, :func:`split_lane_groups` replaces the link, for the run, by one parallel link per group
(same ends, length and per-lane characteristics; the group's lanes), each allowed only the
movements its lanes serve: the vehicles sort into their group where they enter the link, and each
group queues on its own. :func:`fold_links` adds the groups' records back into the link's, so a
result names the scenario's links only.

Links are left whole where a split would change what the scenario says rather than how it queues:
links with a lane schedule (variable and tidal lanes re-mark them), with a control on them (meters,
blockings, bus stops, toll booths, ALINEA detectors), ending or starting at a priority junction
(its major road and conflicts are per link), ending where a flow ends, or the only way on from a
node where a U-turn onto them is needed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..control import FixedTimeSignal, PriorityJunction
from ..demand import Demand
from ..network import Network
from ..scenario import Scenario

__all__ = ["lane_groups", "split_lane_groups", "fold_links", "fold_records"]


def lane_groups(network: Network) -> dict[str, list[tuple[tuple[int, int], tuple[str, ...]]]]:
    """The links whose every allowed movement has explicit lane connectors that split its lanes
    into two or more disjoint groups covering all its lanes: ``{link: [((lo, hi), (out links
    served)), ...]}``, groups from the right (lane 0 = kerb)."""
    out_of: dict[str, list[str]] = {}
    for lk in network.links.values():
        out_of.setdefault(lk.from_node, []).append(lk.id)
    marked = {a for a, _ in network.lane_connectors}   # a link without connectors cannot split
    found = {}
    for lid, lk in network.links.items():
        if lk.lane_schedule or lid not in marked:
            continue
        outs = [b for b in out_of.get(lk.to_node, []) if network.turn_allowed(lid, b)]
        if len(outs) < 2 or any((lid, b) not in network.lane_connectors for b in outs):
            continue
        spans = sorted((min(i for i, _ in network.lane_connectors[(lid, b)]),
                        max(i for i, _ in network.lane_connectors[(lid, b)]), b) for b in outs)
        groups: list[list] = []
        for lo, hi, b in spans:
            if groups and lo <= groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], hi)
                groups[-1][2].append(b)
            else:
                groups.append([lo, hi, [b]])
        covered = sum(hi - lo + 1 for lo, hi, _ in groups)
        if len(groups) >= 2 and covered == lk.max_lanes and groups[0][0] == 0:
            found[lid] = [((lo, hi), tuple(bs)) for lo, hi, bs in groups]
    return found


def _eligible(scenario: Scenario, groups: dict) -> dict:
    net = scenario.network
    held = {getattr(c, attr) for c in scenario.controls for attr in ("link", "detector_link")
            if getattr(c, attr, None) is not None}
    junction_nodes = {c.node for c in scenario.controls if isinstance(c, PriorityJunction)}
    ends = {f.destination for f in scenario.demand.flows}
    terminals = ends | {f.origin for f in scenario.demand.flows}
    routed = {pair for f in scenario.demand.flows for r, _ in f.routes for pair in zip(r, r[1:])}
    out = {}
    for lid, gs in groups.items():
        lk = net.links[lid]
        if lid in held or lk.to_node in junction_nodes or lk.from_node in junction_nodes or lk.to_node in ends:
            continue
        # a U-turn onto the link where it is the only way on (a dead end): parallel groups would
        # make it banned (Network.turn_allowed), unless nobody needs it
        turning = [a.id for a in net.in_links(lk.from_node) if a.from_node == lk.to_node]
        if not net.allow_u_turns and len(net.out_links(lk.from_node)) == 1 and turning and (
                lk.from_node not in terminals or any((a, lid) in routed for a in turning)):
            continue
        out[lid] = gs
    return out


def split_lane_groups(scenario: Scenario) -> tuple[Scenario, dict[str, list[str]]]:
    """``scenario`` with every link of :func:`lane_groups` (where eligible, see the module) cut
    along its length into one link per lane group, and ``{link: [its group links]}`` (empty, and
    the scenario itself, when nothing splits). Routes, signal phases, lane connectors, turn bans
    and turn speeds follow the groups: a movement ``(link, out)`` becomes ``(group serving out,
    out)``, a movement ``(up, link)`` one ``(up, group)`` per group."""
    net = scenario.network
    groups = _eligible(scenario, lane_groups(net))
    if not groups:
        return scenario, {}
    new = Network(dict(net.nodes), {}, set(), net.allow_u_turns, {}, {}, net.left_hand)
    parts: dict[str, list[str]] = {}
    serving: dict[tuple[str, str], str] = {}        # (link, out) -> the group link serving it
    block: dict[str, tuple[str, int, int]] = {}     # group link -> (link, lo, hi)
    for lid, lk in net.links.items():
        if lid not in groups:
            new.links[lid] = lk
            continue
        names = []
        for k, ((lo, hi), outs) in enumerate(groups[lid]):
            gid = f"{lid}#{k}"
            while gid in net.links or gid in new.links:
                gid += "'"
            new.links[gid] = replace(lk, id=gid, lanes=hi - lo + 1, name=lk.name or lid)
            names.append(gid)
            block[gid] = (lid, lo, hi)
            for b in outs:
                serving[(lid, b)] = gid
        parts[lid] = names

    def heads(lid):            # the links a movement into ``lid`` now enters
        return parts.get(lid, [lid])

    def tail(lid, out):        # the link a movement ``lid -> out`` now leaves from
        return serving.get((lid, out), lid)

    # turn bans: the old ones, and every movement a group does not serve
    new.banned_turns.update((t, h) for a, b in net.banned_turns for t in heads(a) for h in heads(b))
    for lid, names in parts.items():
        for gid in names:
            for b in new.out_links(new.links[gid].to_node):
                if serving.get((lid, block[b.id][0] if b.id in block else b.id)) != gid:
                    new.banned_turns.add((gid, b.id))
    for (a, b), pairs in net.lane_connectors.items():
        t = tail(a, b)
        shift = block[t][1] if t in block else 0
        for h in heads(b):
            if h in block:
                lo, hi = block[h][1], block[h][2]
                mapped = tuple((i - shift, j - lo) for i, j in pairs if lo <= j <= hi)
            else:
                mapped = tuple((i - shift, j) for i, j in pairs)
            if mapped:
                new.lane_connectors[(t, h)] = mapped
    for (a, b), v in net.turn_speeds.items():
        for h in heads(b):
            new.turn_speeds[(tail(a, b), h)] = v

    def reroute(path):
        return tuple(serving[(lid, path[i + 1])] if lid in parts else lid for i, lid in enumerate(path))

    demand = Demand([replace(f, routes=tuple((reroute(r), share) for r, share in f.routes))
                     for f in scenario.demand.flows])

    controls = []
    for c in scenario.controls:
        if isinstance(c, FixedTimeSignal):
            c = replace(c, phases=tuple(
                replace(p, movements=tuple(dict.fromkeys((tail(a, b), h) for a, b in p.movements for h in heads(b))))
                for p in c.phases))
        controls.append(c)
    return scenario.replace(network=new, demand=demand, controls=controls), parts


def fold_links(link_ids, parts: dict[str, list[str]], original_ids) -> tuple[list[np.ndarray], np.ndarray]:
    """For each link of ``original_ids``, the indices in ``link_ids`` (the run's links) of its
    parts (itself, or its lane groups), and for each run link the index of its original link."""
    index = {lid: i for i, lid in enumerate(link_ids)}
    members = [np.array([index[p] for p in parts.get(lid, [lid])], dtype=np.int64) for lid in original_ids]
    owner = np.empty(len(link_ids), dtype=np.int64)
    for j, m in enumerate(members):
        owner[m] = j
    return members, owner


#: Per-link records whose groups' values are the longest, not the sum (queue lengths [m]).
LONGEST = ("queue_m", "queue_m_max")


def fold_records(records: dict, members) -> dict:
    """Per-link record arrays ``{name: (T, run links)}`` folded to the scenario's links by
    ``members`` (of :func:`fold_links`): each link sums its groups, or takes their longest for
    the names in :data:`LONGEST`."""
    return {k: np.stack([(np.maximum if k in LONGEST else np.add).reduce(a[:, m], axis=1) for m in members], axis=1)
            for k, a in records.items()}
