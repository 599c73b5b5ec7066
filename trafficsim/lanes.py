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

from .network import allowed_turn_pairs

__all__ = ["derive_connectors", "THROUGH_MAX_DEG", "U_TURN_DEG"]


def _turn_angle(net, a, b):
    """Turning angle [rad] from link a into link b (negative = towards the kerb side: right, or
    left on a left-hand network), or None without coordinates."""
    la, lb = net.links[a], net.links[b]
    pts = [net.nodes[n] for n in (la.from_node, la.to_node, lb.to_node)]
    if any(p.x is None for p in pts):
        return None
    u = (pts[1].x - pts[0].x, pts[1].y - pts[0].y)
    w = (pts[2].x - pts[1].x, pts[2].y - pts[1].y)
    a = math.atan2(u[0] * w[1] - u[1] * w[0], u[0] * w[0] + u[1] * w[1])
    return -a if net.left_hand and a != math.pi else a   # keep-left: the mirror image


def _memo_angles(net):
    """``angle(a, b)``: :func:`_turn_angle` of ``net``, each pair computed once (a derivation asks
    for most of them several times)."""
    memo = {}

    def angle(a, b):
        got = memo.get((a, b), memo)
        if got is memo:
            got = memo[(a, b)] = _turn_angle(net, a, b)
        return got
    return angle


def _right_to_left(net, angle, pairs, key_link, order):
    """Sort movements ``pairs`` ((a, b) tuples) right to left (rules: :mod:`trafficsim.engines.micro`)."""
    angles = [angle(a, b) for a, b in pairs]
    if all(x is not None for x in angles):
        return [p for _, p in sorted(zip(angles, pairs), key=lambda t: (t[0], order[key_link(t[1])]))]
    widest = max(pairs, key=lambda p: (net.links[key_link(p)].max_lanes, -order[key_link(p)]))
    rest = sorted((p for p in pairs if p != widest), key=lambda p: order[key_link(p)])
    return rest + [widest]


THROUGH_MAX_DEG = 45.0
"""A diverge's through movement turns by at most this [deg]; without one the lanes are shared
among the movements in proportion to their downstream lanes."""


U_TURN_DEG = 170.0
"""A movement turning by more than this [deg] is a U-turn for the lanes (on a divided road the
U-turn links two carriageways whose nodes differ, so topology alone does not tell)."""


def _is_u_turn(net, angle, a, b):
    """A turn back to the node link ``a`` came from, or one turning by more than ``U_TURN_DEG``."""
    if net.links[b].to_node == net.links[a].from_node:
        return True
    turn = angle(a, b)
    return turn is not None and abs(turn) > math.radians(U_TURN_DEG)


def _u_turns(net, angle, mvs):
    """The U-turns among ``mvs`` that give way to the others: none when there are no others
    (a link whose every way on turns back, e.g. nodes on a line)."""
    got = [mv for mv in mvs if _is_u_turn(net, angle, *mv)]
    return got if len(got) < len(mvs) else []


def _share(mvs, lo, hi, weight):
    """Lanes ``lo .. hi - 1`` (fractional bounds) shared among ``mvs`` right to left in proportion
    to ``weight``: ``{mv: (first, last)}``; a lane on a boundary serves both movements."""
    total = float(sum(weight[mv] for mv in mvs))
    got, cum = {}, lo
    for mv in mvs:
        f0, f1 = cum, cum + (hi - lo) * weight[mv] / total
        cum = f1
        got[mv] = (int(math.floor(f0 + 1e-9)), max(int(math.floor(f0 + 1e-9)), int(math.ceil(f1 - 1e-9)) - 1))
    return got


def _diverge(net, angle, mvs, na, open_lanes, order):
    """The lanes ``(first, last)`` of a link with ``na`` lanes that lead to each of its movements
    ``mvs`` (every turn the network allows there; rules: :mod:`trafficsim.engines.micro`)."""
    uturns = _u_turns(net, angle, mvs)
    got = {mv: (na - 1, na - 1) for mv in uturns}  # from the leftmost lane, sharing it
    mvs = _right_to_left(net, angle, [mv for mv in mvs if mv not in uturns], lambda p: p[1], order)
    weight = {mv: max(open_lanes[mv[1]], 1) for mv in mvs}
    angles = [angle(*mv) for mv in mvs]
    if all(x is not None for x in angles):
        k = min(range(len(mvs)), key=lambda i: abs(angles[i]))
        if abs(angles[k]) > math.radians(THROUGH_MAX_DEG):
            got.update(_share(mvs, 0.0, float(na), weight))  # no way straight on (a T's stem)
            return got
    else:
        k = len(mvs) - 1  # the widest link, placed leftmost: the through road
    right, through, left = mvs[:k], mvs[k], mvs[k + 1:]
    if not right and not left:
        got[through] = (0, na - 1)  # a lane drop's rightmost lanes end at the merge side
        return got
    # the through movement keeps as many lanes as continue; the rest become turn lanes, split
    # between the right and the left turns in proportion to their downstream lanes (a tie
    # goes left: left turns wait for a gap or their phase), which otherwise share the outer lanes
    m = min(na, weight[through])
    spare = na - m
    w_right, w_left = sum(weight[mv] for mv in right), sum(weight[mv] for mv in left)
    e_right = spare if not left else int(math.floor(spare * w_right / (w_right + w_left) + 0.5 - 1e-9))
    e_left = spare - e_right
    got[through] = (e_right, e_right + m - 1)
    if right:
        got.update(_share(right, 0.0, float(e_right), weight) if e_right else {mv: (0, 0) for mv in right})
    if left:
        got.update(_share(left, float(na - e_left), float(na), weight) if e_left
                   else {mv: (na - 1, na - 1) for mv in left})
    return got


def derive_connectors(net, movements, open_lanes):
    """Lane connectors in force: ``{(a, b): (lo, hi, targets)}``.

    Lanes ``lo..hi`` of link ``a`` lead to link ``b``; ``targets[i - lo]`` is the lane index of
    ``b`` that lane ``i`` enters. ``open_lanes`` maps link id -> lanes in force. The rules are
    in the module docstring of :mod:`trafficsim.engines.micro`. Movements into a closed link get ``lo > hi``.
    """
    order = {lid: i for i, lid in enumerate(net.links)}
    angle = _memo_angles(net)
    wanted = [mv for mv in movements if mv[1] is not None]  # (a, None): exits leave the network
    # the lanes are a property of the road: every turn the network allows takes part, used or not
    allowed = set(allowed_turn_pairs(net))
    # the links whose lanes are shared out: those of the wanted movements and every feeder of
    # their downstream links (a merge places the feeders' lanes)
    targets = {b for _, b in wanted}
    sources = {a for a, _ in wanted} | {a for a, b in allowed if b in targets}
    every = list(dict.fromkeys(wanted + sorted((mv for mv in allowed if mv[0] in sources),
                                               key=lambda p: (order[p[0]], order[p[1]]))))
    by_in: dict[str, list] = {}
    by_out: dict[str, list] = {}
    for a, b in every:
        by_in.setdefault(a, []).append((a, b))
        if b in targets:
            by_out.setdefault(b, []).append((a, b))
    src_range = {}
    for a, mvs in by_in.items():
        src_range.update(_diverge(net, angle, mvs, open_lanes[a] or net.links[a].max_lanes, open_lanes, order))
    out = {}
    for b, mvs in by_out.items():
        nb = open_lanes[b]
        if nb == 0:
            for mv in mvs:
                out[mv] = (0, -1, [])
            continue
        # a U-turn enters the leftmost lane from its own, sharing it (zipper), and moves no one
        for mv in _u_turns(net, angle, mvs):
            mvs.remove(mv)
            hi = src_range[mv][1]
            out[mv] = (hi, hi, [nb - 1])
        nsrc = {mv: src_range[mv][1] - src_range[mv][0] + 1 for mv in mvs}
        main = max(mvs, key=lambda mv: (nsrc[mv], net.links[mv[0]].max_lanes, -order[mv[0]]))
        others = [mv for mv in _right_to_left(net, angle, mvs, lambda p: p[0], order) if mv != main]
        # a movement that turns further left than the main one comes in from the left side of b
        turn = {mv: angle(*mv) for mv in mvs}
        left = [mv for mv in others if turn[main] is not None and turn[mv] is not None
                and turn[mv] > turn[main] + 1e-6]
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
    return {mv: out[mv] for mv in wanted}
