"""Lane connectors at nodes, derived from the network: which lanes of a link lead to which link.

Both engines use them: the microscopic engine routes vehicles lane by lane along them, the
macroscopic engine fits each link's movements to the lanes that serve them where those are a
property of the road (explicit connectors, links with a single way on;
:meth:`trafficsim.engines.macro.CompiledMacro._lane_blocks`, :mod:`trafficsim.kernels.ctm`). The rules are those of the module docstring of
:mod:`trafficsim.engines.micro`; explicit connectors
(:meth:`~trafficsim.network.Network.connect_lanes`) replace them for their movement.
"""

from __future__ import annotations

import math

__all__ = ["derive_connectors"]


def _turn_angle(net, a, b):
    """Turning angle [rad] from link a into link b (negative = right), or None without coordinates."""
    la, lb = net.links[a], net.links[b]
    pts = [net.nodes[n] for n in (la.from_node, la.to_node, lb.to_node)]
    if any(p.x is None for p in pts):
        return None
    u = (pts[1].x - pts[0].x, pts[1].y - pts[0].y)
    w = (pts[2].x - pts[1].x, pts[2].y - pts[1].y)
    return math.atan2(u[0] * w[1] - u[1] * w[0], u[0] * w[0] + u[1] * w[1])


def _right_to_left(net, pairs, key_link, order):
    """Sort movements ``pairs`` ((a, b) tuples) right to left (rules: :mod:`trafficsim.engines.micro`)."""
    angles = [_turn_angle(net, a, b) for a, b in pairs]
    if all(x is not None for x in angles):
        return [p for _, p in sorted(zip(angles, pairs), key=lambda t: (t[0], order[key_link(t[1])]))]
    widest = max(pairs, key=lambda p: (net.links[key_link(p)].max_lanes, -order[key_link(p)]))
    rest = sorted((p for p in pairs if p != widest), key=lambda p: order[key_link(p)])
    return rest + [widest]


def derive_connectors(net, movements, open_lanes):
    """Lane connectors in force: ``{(a, b): (lo, hi, targets)}``.

    Lanes ``lo..hi`` of link ``a`` lead to link ``b``; ``targets[i - lo]`` is the lane index of
    ``b`` that lane ``i`` enters. ``open_lanes`` maps link id -> lanes in force. The rules are
    in the module docstring of :mod:`trafficsim.engines.micro`. Movements into a closed link get ``lo > hi``.
    """
    order = {lid: i for i, lid in enumerate(net.links)}
    by_in: dict[str, list] = {}
    by_out: dict[str, list] = {}
    for a, b in movements:
        if b is None:
            continue  # exit movement (leaves the network)
        by_in.setdefault(a, []).append((a, b))
        by_out.setdefault(b, []).append((a, b))
    src_range = {}
    for a, mvs in by_in.items():
        na = open_lanes[a] or net.links[a].max_lanes
        mvs = _right_to_left(net, mvs, lambda p: p[1], order)
        weights = [max(open_lanes[b], 1) for _, b in mvs]
        total = float(sum(weights))
        cum = 0.0
        for (mv, wgt) in zip(mvs, weights):
            f0, f1 = na * cum / total, na * (cum + wgt) / total
            cum += wgt
            src_range[mv] = (int(math.floor(f0 + 1e-9)), int(math.ceil(f1 - 1e-9)) - 1)
    out = {}
    for b, mvs in by_out.items():
        nb = open_lanes[b]
        if nb == 0:
            for mv in mvs:
                out[mv] = (0, -1, [])
            continue
        nsrc = {mv: src_range[mv][1] - src_range[mv][0] + 1 for mv in mvs}
        main = max(mvs, key=lambda mv: (nsrc[mv], net.links[mv[0]].max_lanes, -order[mv[0]]))
        others = [mv for mv in _right_to_left(net, mvs, lambda p: p[0], order) if mv != main]
        # a movement that turns further left than the main one comes in from the left side of b
        angle = {mv: _turn_angle(net, *mv) for mv in mvs}
        left = [mv for mv in others if angle[main] is not None and angle[mv] is not None
                and angle[mv] > angle[main] + 1e-6]
        right = [mv for mv in others if mv not in left]
        starts = {}
        m = min(nsrc[main], nb)
        starts[main] = (max(0, nb - m - sum(min(nsrc[mv], nb) for mv in left)), m)
        offset = 0
        for mv in right:
            m = min(nsrc[mv], nb)
            starts[mv] = (min(offset, nb - m), m)
            offset += m
        offset = 0
        for mv in reversed(left):
            m = min(nsrc[mv], nb)
            starts[mv] = (max(0, nb - offset - m), m)
            offset += m
        for mv in mvs:
            lo, hi = src_range[mv]
            t0, m = starts[mv]
            lo = hi - m + 1  # the rightmost lanes end when fewer lanes continue
            out[mv] = (lo, hi, [t0 + i for i in range(m)])
    for mv in out:
        pairs = net.lane_connectors.get(mv)
        if pairs is not None:
            # explicit connectors (Network.connect_lanes), the pairs whose lanes are open
            na, nb = open_lanes[mv[0]], open_lanes[mv[1]]
            pairs = [(i, j) for i, j in pairs if i < na and j < nb]
            out[mv] = (pairs[0][0], pairs[-1][0], [j for _, j in pairs]) if pairs else (0, -1, [])
    return out
