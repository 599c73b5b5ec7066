"""Traffic controls that a scenario carries: signal plans, meters and lane-blocking events.

Controls are plain data. Engines compile them into arrays: a fixed-time signal becomes green
windows per movement (movements flow only during green; amber and all-red are lost time), a
meter caps a link's discharge rate, a blocking event removes lanes from a link for a time
window (illegal parking, loading, a broken-down truck). a toll booth (or any service point: a checkpoint, a parking gate) makes every vehicle of a
link stop and be served; a priority junction makes the streams of a minor road give way to those
of a major road at an unsignalised node. Every control serialises to a TOML table
with a ``kind`` field; :data:`CONTROL_KINDS` maps kinds to classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from .network import Network, NetworkError, _not_a_number

__all__ = [
    "ControlError",
    "Phase",
    "FixedTimeSignal",
    "FixedRateMeter",
    "Blocking",
    "BusStop",
    "TollBooth",
    "AlineaMeter",
    "merge_downstream",
    "turn_deg",
    "permissive_yields",
    "PERMISSIVE_CRITICAL_GAP_S",
    "PERMISSIVE_FOLLOW_UP_S",
    "permitted_flow_vps",
    "PriorityJunction",
    "PRIORITY_GAPS_S",
    "JUNCTION_RULES",
    "priority_yields",
    "paths_cross",
    "priority_junctions",
    "check_junction_controls",
    "CONTROL_KINDS",
    "control_from_dict",
]


class ControlError(ValueError):
    """A control has an invalid field (the message names the control and the field)."""


def _named_on_link(kind: str, name: str, link: str, network: Network) -> str:
    """The element name of a named control on ``link`` for error messages (e.g. ``bus stop 'A' on
    link 'l1'``); raises :class:`ControlError` when the link is not in ``network``."""
    el = f"{kind} {name or ''} on link {link!r}".replace("  ", " ")
    if link not in network.links:
        raise ControlError(f"{el}: link is not in the network")
    return el


def _num(el: str, name: str, value, *, minimum: float = 0.0, strict: bool = False) -> float:
    if _not_a_number(value):
        raise ControlError(f"{el}: {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ControlError(f"{el}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < minimum or (strict and x == minimum):
        rel = ">" if strict else ">="
        raise ControlError(f"{el}: {name} must be finite and {rel} {minimum:g}, got {value!r}")
    return x


@dataclass(frozen=True)
class Phase:
    """One stage of a fixed-time plan.

    Parameters
    ----------
    green_s : float
        Green time [s], > 0.
    movements : tuple of (str, str)
        ``(in_link, out_link)`` pairs that have right of way during this green.
    amber_s : float
        Amber after the green [s]; lost time, no flow.
    all_red_s : float
        All-red clearance after the amber [s].
    """

    green_s: float
    movements: tuple[tuple[str, str], ...]
    amber_s: float = 3.0
    all_red_s: float = 0.0

    @property
    def duration_s(self) -> float:
        """Green + amber + all-red [s]."""
        return self.green_s + self.amber_s + self.all_red_s


def fold_cycle(stages) -> list[list]:
    """The phases of a signal cycle given as stages ``(duration_s, movements, kind)`` in order,
    ``kind`` one of ``"green"``, ``"amber"``, ``"red"`` (an imported program: SUMO's phases,
    UXsim's groups): ``[[green_s, movements, amber_s, all_red_s], ...]``, one per green stage,
    with the amber and red stages after it added to it (amber only before any red). Stages before
    the first green belong to the end of the cycle: they are added to the last phase's all-red."""
    phases: list[list] = []
    lead = 0.0
    for d, mv, kind in stages:
        if kind == "green":
            phases.append([float(d), mv, 0.0, 0.0])
        elif not phases:
            lead += float(d)
        elif kind == "amber" and phases[-1][3] == 0.0:
            phases[-1][2] += float(d)
        else:
            phases[-1][3] += float(d)
    if phases:
        phases[-1][3] += lead
    return phases


@dataclass(frozen=True)
class FixedTimeSignal:
    """A fixed-time signal plan at a node.

    Parameters
    ----------
    node : str
        The signalised node.
    phases : tuple of Phase
        Stages in order; the cycle is the sum of their durations.
    offset_s : float
        Start of the first green relative to time 0 [s] (coordination offset).
    """

    node: str
    phases: tuple[Phase, ...]
    offset_s: float = 0.0
    kind: str = field(default="signal", init=False)

    @property
    def cycle_s(self) -> float:
        """Cycle length [s]."""
        return sum(p.duration_s for p in self.phases)

    def green_windows(self) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """Green windows ``(start, end)`` [s] within the cycle (from the offset) per movement."""
        windows: dict[tuple[str, str], list[tuple[float, float]]] = {}
        t = 0.0
        for p in self.phases:
            for mv in p.movements:
                windows.setdefault(tuple(mv), []).append((t, t + p.green_s))
            t += p.duration_s
        return windows

    def green_share(self, in_link: str, out_link: str) -> float:
        """Fraction of the cycle during which the movement has green."""
        w = self.green_windows().get((in_link, out_link), [])
        return sum(b - a for a, b in w) / self.cycle_s

    def is_green(self, in_link: str, out_link: str, t_s: float) -> bool:
        """Whether the movement has green at time ``t_s`` [s]."""
        tc = (t_s - self.offset_s) % self.cycle_s
        return any(a <= tc < b for a, b in self.green_windows().get((in_link, out_link), []))

    def validate(self, network: Network) -> "FixedTimeSignal":
        """Check the plan against ``network``; returns a normalised copy."""
        el = f"signal at node {self.node!r}"
        try:
            network.node(self.node)
        except NetworkError:
            raise ControlError(f"{el}: node is not in the network") from None
        if not self.phases:
            raise ControlError(f"{el}: phases is empty")
        phases = []
        for i, p in enumerate(self.phases):
            if isinstance(p, dict):
                p = Phase(**p)
            pel = f"{el}, phase {i}"
            green = _num(pel, "green_s", p.green_s, strict=True)
            amber = _num(pel, "amber_s", p.amber_s)
            red = _num(pel, "all_red_s", p.all_red_s)
            if isinstance(p.movements, str) or (len(p.movements) == 2 and all(isinstance(m, str) for m in p.movements)):
                raise ControlError(f"{pel}: movements must be a sequence of (in_link, out_link) pairs, got "
                                   f"{p.movements!r} (one movement is written ((in_link, out_link),))")
            mvs = []
            for mv in p.movements:
                if isinstance(mv, str):
                    raise ControlError(f"{pel}: movement must be an (in_link, out_link) pair, got the string {mv!r}")
                try:
                    a, b = mv
                except (TypeError, ValueError):
                    raise ControlError(f"{pel}: movement must be an (in_link, out_link) pair, got {mv!r}") from None
                for lid in (a, b):
                    if lid not in network.links:
                        raise ControlError(f"{pel}: movement {a!r}->{b!r}: link {lid!r} is not in the network")
                if network.links[a].to_node != self.node or network.links[b].from_node != self.node:
                    raise ControlError(f"{pel}: movement {a!r}->{b!r} does not pass through node {self.node!r}")
                mvs.append((a, b))
            phases.append(Phase(green, tuple(mvs), amber, red))
        offset = _num(el, "offset_s", self.offset_s, minimum=-math.inf)
        return FixedTimeSignal(self.node, tuple(phases), offset)

    def to_dict(self) -> dict:
        """Plain-data form for TOML."""
        return {
            "kind": self.kind,
            "node": self.node,
            "offset_s": self.offset_s,
            "phases": [
                {"green_s": p.green_s, "amber_s": p.amber_s, "all_red_s": p.all_red_s,
                 "movements": [list(m) for m in p.movements]}
                for p in self.phases
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "FixedTimeSignal":
        """Inverse of :meth:`to_dict`."""
        phases = tuple(
            Phase(p["green_s"], tuple(tuple(m) for m in p.get("movements", [])), p.get("amber_s", 3.0), p.get("all_red_s", 0.0))
            for p in d["phases"]
        )
        return cls(d["node"], phases, d.get("offset_s", 0.0))


#: Critical gap [s] of a permitted left turn against the opposing stream (HCM 2010, Eq. 31-49:
#: ``t_cg`` = 4.5 s); the macro engine's rate and the micro engine's gap acceptance both use it.
PERMISSIVE_CRITICAL_GAP_S = 4.5
#: Follow-up headway [s] of permitted left-turners through one gap (HCM 2010: ``t_fh`` = 2.5 s; macro
#: engine only: on the micro engine it is the vehicles' own start-up behind each other).
PERMISSIVE_FOLLOW_UP_S = 2.5
#: A movement turning by more than this [deg] to the left is a left (or U) turn; one within it either
#: way is straight on; beyond it to the right a right turn.
TURN_DEG = 45.0


def turn_deg(network: Network, in_link: str, out_link: str,
             pos: dict[str, tuple[float, float]] | None = None) -> float | None:
    """Signed turn [deg] from ``in_link``'s direction to ``out_link``'s, counter-clockwise
    positive (a left turn > 0, a right turn < 0, in (-180, 180]; on a left-hand network,
    ``Network.left_hand``, mirrored: > 0 is the turn across the opposing stream, there a right
    turn, so that every rule below reads the same for both), from the nodes' ``x``, ``y``
    (or the positions ``pos`` per node id, e.g. the SUMO export's layout); ``None`` when a node
    of either link has no position or a link has no length."""
    a, b = network.links[in_link], network.links[out_link]
    ends = (a.from_node, a.to_node, b.from_node, b.to_node)
    pts = [pos[n] if pos is not None else (network.nodes[n].x, network.nodes[n].y) for n in ends]
    if any(x is None or y is None for x, y in pts):
        return None
    ax, ay = pts[1][0] - pts[0][0], pts[1][1] - pts[0][1]
    bx, by = pts[3][0] - pts[2][0], pts[3][1] - pts[2][1]
    if (ax == 0 and ay == 0) or (bx == 0 and by == 0):
        return None
    deg = math.degrees(math.atan2(ax * by - ay * bx, ax * bx + ay * by))
    # keep-left traffic is the mirror image: its left turn is a right-hand network's right turn
    return -deg if network.left_hand and deg != 180.0 else deg


def permissive_yields(network: Network, signal: "FixedTimeSignal") -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """The movements of ``signal`` that turn left on a green they share with the opposing stream,
    each mapped to the movements it gives way to (right-hand traffic; mirrored on a left-hand network).

    A movement ``a -> b`` turning left (more than :data:`TURN_DEG` counter-clockwise, U-turns
    included) gives way to every movement ``c -> d`` green in the same phase whose approach ``c``
    comes from the opposite direction (headings more than 180 - :data:`TURN_DEG` degrees apart)
    and which goes straight on or turns right, as SUMO's junction logic makes it (``g`` in its
    programs). Directions come from the nodes' coordinates; a movement with a node without
    ``x``/``y`` gives way to nothing. The engines cap such a movement's flow at the permitted
    flow of :func:`permitted_flow_vps` for the opposing flow of the moment (macro), or let its
    vehicles cross only through a gap of :data:`PERMISSIVE_CRITICAL_GAP_S` (micro).
    """
    out: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for p in signal.phases:
        for a, b in p.movements:
            t = turn_deg(network, a, b)
            if t is None or t <= TURN_DEG:
                continue
            for c, d in p.movements:
                if c == a:
                    continue
                opp = turn_deg(network, a, c)    # heading of c against that of a
                tc = turn_deg(network, c, d)
                if opp is not None and tc is not None and abs(opp) > 180.0 - TURN_DEG and tc <= TURN_DEG:
                    out.setdefault((a, b), set()).add((c, d))
    return {mv: tuple(sorted(ys)) for mv, ys in out.items()}


def permitted_flow_vps(opposing_vps: float, critical_gap_s: float = PERMISSIVE_CRITICAL_GAP_S,
                       follow_up_s: float = PERMISSIVE_FOLLOW_UP_S) -> float:
    """Permitted left-turn flow per lane [veh/s] through an opposing stream of ``opposing_vps``
    [veh/s] with random gaps (HCM 2010, Eq. 31-49):
    ``v e^(-v t_c) / (1 - e^(-v t_f))``; ``1 / t_f`` as the opposing flow tends to 0."""
    v = opposing_vps
    if v <= 0.0:
        return 1.0 / follow_up_s
    return v * math.exp(-v * critical_gap_s) / -math.expm1(-v * follow_up_s)


#: The rules of :class:`PriorityJunction`: a major road, or everyone giving way to the right.
JUNCTION_RULES = ("priority", "right_before_left")

#: Base critical gap and follow-up headway ``(t_c, t_f)`` [s] of each movement that gives way at
#: an unsignalised junction (HCM 2010, Exhibit 19-10, two-lane major road): the major road's left
#: turn, and the minor road's right turn, through movement and left turn.
PRIORITY_GAPS_S = {
    "major_left": (4.1, 2.2),
    "minor_right": (6.2, 3.3),
    "minor_through": (6.5, 4.0),
    "minor_left": (7.1, 3.5),
}


def _rank_key(lk) -> tuple:
    """How a link ranks for the major road of a junction: explicit ``priority``, then speed, lanes
    and capacity (netconvert's order: priority, speed, lanes)."""
    return (lk.priority if lk.priority is not None else -math.inf, lk.free_speed_kmh, lk.max_lanes,
            lk.capacity_vph_per_lane)


@dataclass(frozen=True)
class PriorityJunction:
    """An unsignalised junction with a major road: the minor road's streams give way to the major
    road's, and a left turn gives way to the streams it crosses from ahead (right-hand traffic, mirrored
    on a left-hand network;
    SUMO's ``priority`` junction, a two-way yield- or stop-controlled junction of the HCM).

    Without a control, an unsignalised node lets crossing streams pass through each other, as the
    node models of the CTM and UXsim do; streams onto one lane always merge (zipper). The
    engines hold a movement that gives way while a vehicle of a movement it gives way to
    (:func:`priority_yields`) would reach the node within the critical gap of
    :data:`PRIORITY_GAPS_S` (micro), or cap it at the gap-acceptance capacity through their flow
    (macro, :func:`permitted_flow_vps`); the SUMO export makes the major road's edges outrank
    the others at the node.

    Parameters
    ----------
    node : str
        The junction. It, and the nodes at the other ends of its links, need ``x``, ``y``.
    major : tuple of str
        The in-links of the major road (one, or two from opposite directions). Empty (default):
        the highest-ranked in-link (explicit ``priority``, then free speed, lanes, capacity; ties
        by the order of the links) and the in-link most nearly opposite it, if one comes from
        within 45 degrees of straight ahead. Only with ``rule="priority"``.
    rule : str
        ``"priority"`` (default): a major road, as above. ``"right_before_left"``: no road is
        major and every stream gives way to the streams coming from its right (China's Road
        Traffic Safety Law, art. 52, at junctions without signals or signs; Germany's
        *rechts vor links*; SUMO's ``right_before_left``), see :func:`priority_yields`.
    """

    node: str
    major: tuple[str, ...] = ()
    rule: str = "priority"
    kind: str = field(default="priority", init=False)

    def validate(self, network: Network) -> "PriorityJunction":
        """Check the junction against ``network``; returns a copy with ``major`` resolved."""
        el = f"priority junction at node {self.node!r}"
        try:
            network.node(self.node)
        except NetworkError:
            raise ControlError(f"{el}: node is not in the network") from None
        ins = network.in_links(self.node)
        legs = {self.node} | {lk.from_node for lk in ins} | {lk.to_node for lk in network.out_links(self.node)}
        bare = sorted(n for n in legs if network.nodes[n].x is None)
        if bare:
            raise ControlError(f"{el}: nodes {bare} have no x, y; the junction's geometry (who crosses whom) "
                               "comes from the coordinates of the node and of its neighbours")
        if self.rule not in JUNCTION_RULES:
            raise ControlError(f"{el}: rule must be one of {list(JUNCTION_RULES)}, got {self.rule!r}")
        if isinstance(self.major, str):
            raise ControlError(f"{el}: major must be a sequence of in-link ids, got the string {self.major!r}")
        if self.rule == "right_before_left":
            if self.major:
                raise ControlError(f"{el}: rule 'right_before_left' has no major road, got major={list(self.major)!r}")
            return self
        major = tuple(self.major)
        if not major:
            major = _major_road(network, self.node)
        if not 1 <= len(major) <= 2 or len(set(major)) != len(major):
            raise ControlError(f"{el}: major must name one or two distinct in-links, got {list(self.major)!r}")
        for lid in major:
            if lid not in network.links or network.links[lid].to_node != self.node:
                raise ControlError(f"{el}: major link {lid!r} is not a link into the node; in-links: "
                                   f"{[lk.id for lk in ins]}")
        if len(major) == 2:
            t = turn_deg(network, major[0], major[1]) or 0.0   # the headings of two in-links
            if abs(t) < 180.0 - TURN_DEG:
                raise ControlError(f"{el}: major links {major[0]!r} and {major[1]!r} do not come from opposite "
                                   f"directions (their headings differ by {abs(t):.0f} degrees; more than "
                                   f"{180.0 - TURN_DEG:.0f} needed)")
        return PriorityJunction(self.node, major)

    def to_dict(self) -> dict:
        """Plain-data form for TOML."""
        d = {"kind": self.kind, "node": self.node}
        if self.major:
            d["major"] = list(self.major)
        if self.rule != "priority":
            d["rule"] = self.rule
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PriorityJunction":
        """Inverse of :meth:`to_dict`."""
        return cls(d["node"], tuple(d.get("major", ())), d.get("rule", "priority"))


def _major_road(network: Network, node: str) -> tuple[str, ...]:
    """The default major road of :class:`PriorityJunction` at ``node``."""
    ins = network.in_links(node)
    order = sorted(range(len(ins)), key=lambda i: (_rank_key(ins[i]), -i), reverse=True)
    first = ins[order[0]]
    opposite = [ins[i] for i in order[1:] if abs(turn_deg(network, first.id, ins[i].id) or 0.0) >= 180.0 - TURN_DEG]
    return (first.id,) if not opposite else (first.id, opposite[0].id)


def _leg_angle(network: Network, node: str, other: str) -> float:
    """Direction [rad] from ``node`` towards ``other`` (mirrored on a left-hand network, as
    :func:`turn_deg`: counter-clockwise there is clockwise on the map)."""
    a, b = network.nodes[node], network.nodes[other]
    return math.atan2(-(b.y - a.y) if network.left_hand else b.y - a.y, b.x - a.x)


def priority_yields(network: Network, junction: PriorityJunction,
                    movements=None) -> dict[tuple[str, str], tuple[tuple[tuple[str, str], ...], float, float]]:
    """The movements of ``junction`` that give way, each mapped to ``(movements it gives way to,
    t_c, t_f)`` (right-hand traffic; mirrored on a left-hand network).

    Ranks as in the HCM's two-way stop control: 1 the major road's through movements and right
    turns; 2 its left turns (and U-turns) and the minor road's right turns; 3 the minor road's
    through movements; 4 its left turns. A movement gives way to every movement of a lower rank
    from another in-link that it conflicts with: their paths cross inside the junction, or they
    enter the same link. Paths come from the coordinates: each link meets the junction at its
    direction from the node, traffic drives on the right (a link into the node sits just
    counter-clockwise of its road's direction, a link out just clockwise), and two paths cross
    when their ends interleave around the node. Movements of one rank do not give way to each
    other (onto one exit they merge, as at any merge). ``t_c``, ``t_f`` are :data:`PRIORITY_GAPS_S`
    of the movement's kind. ``movements``: the ``(in_link, out_link)`` pairs to consider
    (default: every turn the network allows at the node).

    With ``rule="right_before_left"`` a right turn gives way to nobody, and any other movement
    gives way to each movement it conflicts with that turns right, comes from the leg on its
    right (the other leg's direction from the node 0-135 degrees counter-clockwise of its own),
    or comes from the opposite leg (135-225 degrees) without turning left while it turns left
    (U-turns count as left turns). On a grid this is SUMO's ``right_before_left`` logic
    movement for movement, except that SUMO also lets one of two opposing left turns give way
    to the other where their paths do not cross (``tests/test_sumo_io.py``). Gaps: the minor
    road's through, left (and U-turn) values of :data:`PRIORITY_GAPS_S`."""
    jc = junction.validate(network)
    node = jc.node
    if movements is None:
        movements = [(a.id, b.id) for a in network.in_links(node) for b in network.out_links(node)
                     if network.turn_allowed(a.id, b.id)]
    else:
        movements = [(a, b) for a, b in movements if network.links[a].to_node == node]

    def conflict(m1, m2):
        if m1[0] == m2[0]:
            return False
        return m1[1] == m2[1] or paths_cross(network, node, m1, m2)

    def rank(mv):
        t = turn_deg(network, mv[0], mv[1])
        left = t is not None and t > TURN_DEG
        right = t is not None and t < -TURN_DEG
        if mv[0] in jc.major:
            return (2, "major_left") if left else (1, "")
        if right:
            return 2, "minor_right"
        return (4, "minor_left") if left else (3, "minor_through")

    if jc.rule == "right_before_left":
        return _right_before_left(network, node, movements, conflict)
    ranks = {mv: rank(mv) for mv in movements}
    out = {}
    for mv in movements:
        r, what = ranks[mv]
        if r == 1:
            continue
        majors = tuple(sorted(o for o in movements if ranks[o][0] < r and conflict(mv, o)))
        if majors:
            out[mv] = (majors, *PRIORITY_GAPS_S[what])
    return out


def _right_before_left(network: Network, node: str, movements, conflict) -> dict:
    """:func:`priority_yields` of a ``right_before_left`` junction."""
    def kind(mv):
        t = turn_deg(network, mv[0], mv[1])
        if t is None:
            return "minor_through"
        if t < -TURN_DEG and t > -(180.0 - TURN_DEG):
            return "minor_right"
        return "minor_left" if abs(t) > TURN_DEG else "minor_through"

    kinds = {mv: kind(mv) for mv in movements}
    angle = {lk.id: _leg_angle(network, node, lk.from_node) for lk in network.in_links(node)}

    def gives_way(mv, o):
        if kinds[o] == "minor_right":
            return True
        ccw = math.degrees(angle[o[0]] - angle[mv[0]]) % 360.0
        if ccw < 180.0 - TURN_DEG:          # o comes from the right
            return True
        if ccw <= 180.0 + TURN_DEG:         # from the opposite leg
            return kinds[mv] == "minor_left" and kinds[o] != "minor_left"
        return False

    out = {}
    for mv in movements:
        if kinds[mv] == "minor_right":
            continue
        foes = tuple(sorted(o for o in movements if conflict(mv, o) and gives_way(mv, o)))
        if foes:
            out[mv] = (foes, *PRIORITY_GAPS_S[kinds[mv]])
    return out


def paths_cross(network: Network, node: str, m1: tuple[str, str], m2: tuple[str, str]) -> bool:
    """Whether the paths of movements ``m1`` and ``m2`` (``(in_link, out_link)`` pairs at
    ``node``) cross inside the junction, right-hand traffic (mirrored on a left-hand network): each link meets the junction at its
    direction from the node (a link into the node just counter-clockwise of its road's direction,
    a link out just clockwise), and two paths cross when their ends interleave around the node.
    Movements from one leg (in-links from one neighbouring node: a road and its turn pocket) or
    onto one leg do not cross: they share the approach or merge. Needs the coordinates of the node
    and of the links' far ends."""
    a1, b1, a2, b2 = (network.links[i] for i in (*m1, *m2))
    if a1.from_node == a2.from_node or b1.to_node == b2.to_node:
        return False
    eps = 1e-6

    def ends(mv):
        a, b = network.links[mv[0]], network.links[mv[1]]
        return (_leg_angle(network, node, a.from_node) + eps) % (2 * math.pi), \
               (_leg_angle(network, node, b.to_node) - eps) % (2 * math.pi)

    def inside(p, q0, q1):   # p strictly on the counter-clockwise arc from q0 to q1
        return 0.0 < (p - q0) % (2 * math.pi) < (q1 - q0) % (2 * math.pi)

    p0, p1 = ends(m1)
    q0, q1 = ends(m2)
    return inside(q0, p0, p1) != inside(q1, p0, p1)


def priority_junctions(network: Network, controls=()) -> list[PriorityJunction]:
    """A :class:`PriorityJunction` with its default major road at every node where three or more
    roads meet (distinct neighbouring nodes), except those ``controls`` already signalise or make
    priority junctions, and those without coordinates (on the node or a neighbour): ``scenario.
    replace(controls=[*scenario.controls, *priority_junctions(scenario.network,
    scenario.controls)])`` gives every unsignalised crossing give-way rules, as SUMO's
    ``priority`` junctions have."""
    taken = {c.node for c in controls if isinstance(c, (FixedTimeSignal, PriorityJunction))}
    legs: dict[str, set[str]] = {nid: set() for nid in network.nodes}
    entered = set()
    for lk in network.links.values():   # one pass over the links (in_links scans them all per node)
        legs[lk.to_node].add(lk.from_node)
        legs[lk.from_node].add(lk.to_node)
        entered.add(lk.to_node)
    return [PriorityJunction(nid) for nid, node in network.nodes.items()
            if nid not in taken and nid in entered and node.x is not None and len(legs[nid]) >= 3
            and all(network.nodes[n].x is not None for n in legs[nid])]


def check_junction_controls(controls) -> None:
    """Raise :class:`ControlError` when a node carries more than one junction control (a
    :class:`FixedTimeSignal` or a :class:`PriorityJunction`): a node runs one set of rules."""
    seen: dict[str, str] = {}
    for c in controls:
        if isinstance(c, (FixedTimeSignal, PriorityJunction)):
            what = "a signal" if isinstance(c, FixedTimeSignal) else "a priority junction"
            if c.node in seen:
                raise ControlError(f"node {c.node!r} has {seen[c.node]} and {what}: a node takes one junction "
                                   "control (a signal replaces the give-way rules of a priority junction)")
            seen[c.node] = what


@dataclass(frozen=True)
class FixedRateMeter:
    """Caps the discharge of a link (a ramp meter or a merge-release signal) to a rate.

    Parameters
    ----------
    link : str
        The metered link; its outflow at its downstream node is capped.
    profile : tuple of (float, float)
        Piecewise-constant metering rate ``((start_s, veh_per_h), ...)`` [s, veh/h]; before the
        first start the link is not metered.
    """

    link: str
    profile: tuple[tuple[float, float], ...]
    kind: str = field(default="meter", init=False)

    def rate_at(self, t_s: float) -> float:
        """Metering rate [veh/h] at ``t_s`` [s] (``inf`` when not metered)."""
        rate = math.inf
        for s, q in self.profile:
            if s <= t_s:
                rate = q
        return rate

    def validate(self, network: Network) -> "FixedRateMeter":
        """Check against ``network``; returns a normalised copy."""
        el = f"meter on link {self.link!r}"
        if self.link not in network.links:
            raise ControlError(f"{el}: link is not in the network")
        prof, last = [], -math.inf
        for i, e in enumerate(self.profile):
            s = _num(el, f"profile[{i}] start_s", e[0], minimum=-math.inf)
            q = _num(el, f"profile[{i}] veh_per_h", e[1])
            if s <= last:
                raise ControlError(f"{el}: profile start times must be strictly increasing")
            last = s
            prof.append((s, q))
        if not prof:
            raise ControlError(f"{el}: profile is empty")
        return FixedRateMeter(self.link, tuple(prof))

    def to_dict(self) -> dict:
        """Plain-data form for TOML."""
        return {"kind": self.kind, "link": self.link, "profile": [list(e) for e in self.profile]}

    @classmethod
    def from_dict(cls, d: dict) -> "FixedRateMeter":
        """Inverse of :meth:`to_dict`."""
        return cls(d["link"], tuple(tuple(e) for e in d["profile"]))


@dataclass(frozen=True)
class Blocking:
    """Lanes of a link blocked during a time window (illegal parking, loading, an incident).

    The macro engine removes ``lanes`` from the link's lane count during ``[start_s, end_s)``
    (vehicles already there stay and drain); the micro engine blocks the lane segment.

    Parameters
    ----------
    link : str
        The link.
    start_s, end_s : float
        Time window [s].
    lanes : int
        Lanes blocked, >= 1.
    position_m : float
        Distance of the blocked segment's start from the link start [m] (micro engine).
    length_m : float
        Length of the blocked segment [m] (micro engine).
    """

    link: str
    start_s: float
    end_s: float
    lanes: int = 1
    position_m: float = 0.0
    length_m: float = 20.0
    kind: str = field(default="blocking", init=False)

    def validate(self, network: Network) -> "Blocking":
        """Check against ``network``; returns a normalised copy."""
        el = f"blocking on link {self.link!r}"
        if self.link not in network.links:
            raise ControlError(f"{el}: link is not in the network")
        s = _num(el, "start_s", self.start_s)
        e = _num(el, "end_s", self.end_s)
        if e <= s:
            raise ControlError(f"{el}: end_s ({e:g}) must be after start_s ({s:g})")
        if isinstance(self.lanes, bool) or int(self.lanes) != self.lanes or self.lanes < 1:
            raise ControlError(f"{el}: lanes must be a whole number >= 1, got {self.lanes!r}")
        if self.lanes > network.links[self.link].max_lanes:
            raise ControlError(f"{el}: lanes ({self.lanes}) exceeds the link's lanes "
                               f"({network.links[self.link].max_lanes})")
        pos = _num(el, "position_m", self.position_m)
        length = _num(el, "length_m", self.length_m, strict=True)
        if pos + length > network.links[self.link].length_m + 1e-9:
            raise ControlError(f"{el}: position_m + length_m exceeds the link length")
        return Blocking(self.link, s, e, int(self.lanes), pos, length)

    def to_dict(self) -> dict:
        """Plain-data form for TOML."""
        return {"kind": self.kind, "link": self.link, "start_s": self.start_s, "end_s": self.end_s,
                "lanes": self.lanes, "position_m": self.position_m, "length_m": self.length_m}

    @classmethod
    def from_dict(cls, d: dict) -> "Blocking":
        """Inverse of :meth:`to_dict`."""
        return cls(d["link"], d["start_s"], d["end_s"], d.get("lanes", 1), d.get("position_m", 0.0), d.get("length_m", 20.0))


@dataclass(frozen=True)
class BusStop:
    """A bus stop on a link, served by the bus flows whose routes use the link.

    In the micro engine buses stop at ``position_m`` for a dwell time drawn from a gamma
    distribution (mean ``dwell_mean_s``, coefficient of variation ``dwell_cv``), blocking their
    lane unless ``bay`` is true (a bus bay takes the bus off the running lane). The macro engine
    represents a kerbside stop as a capacity reduction: one lane is lost for the share of time
    buses stand at the stop, ``bus_flow * (dwell_mean_s + clearance_s) / 3600`` (the HCM
    bus-blockage idea, with the dwell made explicit); a bay costs no capacity.

    Parameters
    ----------
    link : str
        The link with the stop.
    position_m : float
        Distance of the stop from the link start [m].
    length_m : float
        Length of the stop (bus berth) [m].
    bay : bool
        Whether buses dwell in a bay off the running lane.
    dwell_mean_s : float
        Mean dwell time [s].
    dwell_cv : float
        Coefficient of variation of the dwell time.
    clearance_s : float
        Time a bus needs to enter and leave the stop [s] (blocking beyond the dwell).
    name : str
        Stop name.
    """

    link: str
    position_m: float
    length_m: float = 30.0
    bay: bool = False
    dwell_mean_s: float = 30.0
    dwell_cv: float = 0.5
    clearance_s: float = 10.0
    name: str = ""
    kind: str = field(default="bus_stop", init=False)

    def validate(self, network: Network) -> "BusStop":
        """Check against ``network``; returns a normalised copy."""
        el = _named_on_link("bus stop", self.name, self.link, network)
        pos = _num(el, "position_m", self.position_m)
        length = _num(el, "length_m", self.length_m, strict=True)
        if pos + length > network.links[self.link].length_m + 1e-9:
            raise ControlError(f"{el}: position_m + length_m exceeds the link length")
        if not isinstance(self.bay, (bool, np.bool_)):
            raise ControlError(f"{el}: bay must be true or false, got {self.bay!r}")
        return BusStop(
            self.link, pos, length, bool(self.bay), _num(el, "dwell_mean_s", self.dwell_mean_s),
            _num(el, "dwell_cv", self.dwell_cv), _num(el, "clearance_s", self.clearance_s), self.name,
        )

    def to_dict(self) -> dict:
        """Plain-data form for TOML."""
        return {"kind": self.kind, "link": self.link, "position_m": self.position_m, "length_m": self.length_m,
                "bay": self.bay, "dwell_mean_s": self.dwell_mean_s, "dwell_cv": self.dwell_cv,
                "clearance_s": self.clearance_s, "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> "BusStop":
        """Inverse of :meth:`to_dict`."""
        keys = ("length_m", "bay", "dwell_mean_s", "dwell_cv", "clearance_s", "name")
        return cls(d["link"], d["position_m"], **{k: d[k] for k in keys if k in d})


@dataclass(frozen=True)
class TollBooth:
    """A line of toll booths (or any service point) across every lane of a link.

    Every vehicle stops with its front at ``position_m`` in whatever lane it uses and is served
    there: a lane's booth releases a vehicle no sooner than ``service_time_s`` after it released
    the one before (a time drawn per vehicle from a gamma distribution, mean ``service_time_s``,
    coefficient of variation ``service_cv``) and no sooner than ``min_stop_s`` after the vehicle
    halted. ``service_time_s`` is thus the booth's *processing headway*, what toll studies
    measure as the time between successive departures of a booth whose queue never empties (pay
    and move up): a booth with a queue serves ``3600 / service_time_s`` veh/h as long as moving up
    takes less than that (a car from standstill moves up one place in about 4-5 s); a vehicle at an
    idle booth still halts for ``min_stop_s`` (paying). The micro engine models exactly this; the
    macro engine represents the booths as the link's capacity, ``3600 / service_time_s`` per lane
    at most (its lanes scaled down when the booth rate is below the link's lane capacity).

    Parameters
    ----------
    link : str
        The link with the booths (one booth per lane).
    position_m : float
        Distance of the booth line from the link start [m].
    service_time_s : float
        Mean processing headway of one booth [s].
    service_cv : float
        Coefficient of variation of the per-vehicle service time.
    min_stop_s : float
        Shortest halt at the booth [s], also when it was idle.
    name : str
        Booth (plaza) name.
    """

    link: str
    position_m: float
    service_time_s: float = 8.0
    service_cv: float = 0.3
    min_stop_s: float = 1.0
    name: str = ""
    kind: str = field(default="toll_booth", init=False)

    def validate(self, network: Network) -> "TollBooth":
        """Check against ``network``; returns a normalised copy."""
        el = _named_on_link("toll booth", self.name, self.link, network)
        pos = _num(el, "position_m", self.position_m, minimum=5.0)
        if pos > network.links[self.link].length_m:
            raise ControlError(f"{el}: position_m exceeds the link length")
        service = _num(el, "service_time_s", self.service_time_s, strict=True)
        min_stop = _num(el, "min_stop_s", self.min_stop_s)
        if min_stop > service:
            raise ControlError(f"{el}: min_stop_s must not exceed service_time_s, got {min_stop!r} > {service!r}")
        return TollBooth(self.link, pos, service, _num(el, "service_cv", self.service_cv), min_stop, self.name)

    @property
    def rate_vph_per_lane(self) -> float:
        """Service rate of one booth [veh/h]."""
        return 3600.0 / self.service_time_s

    def to_dict(self) -> dict:
        """Plain-data form for TOML."""
        return {"kind": self.kind, "link": self.link, "position_m": self.position_m,
                "service_time_s": self.service_time_s, "service_cv": self.service_cv, "min_stop_s": self.min_stop_s,
                "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> "TollBooth":
        """Inverse of :meth:`to_dict`."""
        keys = ("service_time_s", "service_cv", "min_stop_s", "name")
        return cls(d["link"], d["position_m"], **{k: d[k] for k in keys if k in d})


def merge_downstream(network: Network, link: str) -> str | None:
    """The merge a metered link leads to: its downstream node if two or more links enter there,
    else the first such node along a chain of single links (one in, one out at every node on the
    way, as between a meter's stop line and its merge); ``None`` if the chain forks or ends first."""
    node, seen = network.links[link].to_node, set()
    while len(network.in_links(node)) < 2:
        outs = network.out_links(node)
        if len(outs) != 1 or node in seen:
            return None
        seen.add(node)
        node = outs[0].to_node
    return node


@dataclass(frozen=True)
class AlineaMeter:
    """ALINEA feedback ramp metering (Papageorgiou, Hadj-Salem & Blosseville 1991).

    Every ``interval_s`` the controller reads the occupancy ``o`` [%] measured over the last
    interval on the first ``detector_length_m`` of ``detector_link`` (downstream of the merge)
    and sets the metering rate of ``link``::

        r(k) = r(k-1) + K_R * (o_set - o(k))        clipped to [min_rate_vph, max_rate_vph]

    With queue override: when the vehicles stored on the ramp exceed ``queue_override`` times its
    storage (lanes x jam density x length) the rate is ``max_rate_vph`` for that interval, so the
    ramp queue does not spill onto the street. Occupancy is the share of road covered by
    vehicles, ``o = 100 k / k_j`` with an effective vehicle length ``1 / k_j`` per lane.

    Parameters
    ----------
    link : str
        The metered on-ramp. It ends at a merge, or at the meter's stop line upstream of one: a
        node from which single links (one in, one out at each node) lead on to the merge, as
        :class:`~trafficsim.measures.RampMetering` builds it.
    detector_link : str
        The link downstream of the merge whose first cells are the detector.
    gain_vph_per_pct : float
        ``K_R`` [veh/h per % occupancy]; 70 in the field trials.
    setpoint_pct : float
        ``o_set`` [%]; about the critical occupancy of the detector link.
    min_rate_vph : float
        Lower bound of the rate [veh/h].
    max_rate_vph : float, optional
        Upper bound of the rate [veh/h], also the rate of the queue override. None (the default):
        the capacity of ``link`` in the network the meter runs on, ``lanes x
        capacity_vph_per_lane`` at time 0, so that a ramp widened or given capacity back by a
        measure is metered up to its new capacity whichever was applied first.
        :meth:`validate` resolves it (engines run the validated copy); read
        ``meter.validate(network).max_rate_vph`` for the number.
    interval_s : float
        Control interval [s] (40-60 s in practice).
    detector_length_m : float
        Detector zone from the start of ``detector_link`` [m].
    queue_override : float
        Fraction of the ramp's storage that triggers the override (in (0, 1]); 0 disables it.
    start_s, end_s : float
        Active window [s]; outside it the ramp is not metered.
    """

    link: str
    detector_link: str
    setpoint_pct: float
    gain_vph_per_pct: float = 70.0
    min_rate_vph: float = 200.0
    max_rate_vph: float | None = None
    interval_s: float = 60.0
    detector_length_m: float = 100.0
    queue_override: float = 0.8
    start_s: float = 0.0
    end_s: float = math.inf
    kind: str = field(default="alinea", init=False)

    def validate(self, network: Network) -> "AlineaMeter":
        """Check against ``network``; returns a normalised copy (``max_rate_vph`` a number)."""
        el = f"ALINEA meter on link {self.link!r}"
        for name in ("link", "detector_link"):
            if getattr(self, name) not in network.links:
                raise ControlError(f"{el}: {name} {getattr(self, name)!r} is not in the network")
        ramp, det = network.links[self.link], network.links[self.detector_link]
        merge = merge_downstream(network, self.link)
        if merge is None:
            raise ControlError(f"{el}: link does not lead to a merge (node {ramp.to_node!r} has one incoming link, "
                               "and no chain of single links leads from it to a merge)")
        if det.from_node != merge:
            raise ControlError(f"{el}: detector_link {self.detector_link!r} does not leave the merge node {merge!r}")
        lo = _num(el, "min_rate_vph", self.min_rate_vph)
        if self.max_rate_vph is None:
            hi, which = ramp.lanes * ramp.capacity_vph_per_lane, "the capacity of the link"
        else:
            hi, which = _num(el, "max_rate_vph", self.max_rate_vph, strict=True), "max_rate_vph"
        if hi < lo:
            raise ControlError(f"{el}: max_rate_vph ({which}, {hi:g}) is below min_rate_vph ({lo:g})")
        qo = _num(el, "queue_override", self.queue_override)
        if qo > 1.0:
            raise ControlError(f"{el}: queue_override must be a fraction in [0, 1], got {qo!r}")
        end = float(self.end_s)
        if not end > float(self.start_s):
            raise ControlError(f"{el}: end_s must be after start_s")
        return AlineaMeter(
            self.link, self.detector_link, _num(el, "setpoint_pct", self.setpoint_pct, strict=True),
            _num(el, "gain_vph_per_pct", self.gain_vph_per_pct, strict=True), lo, hi,
            _num(el, "interval_s", self.interval_s, strict=True), _num(el, "detector_length_m", self.detector_length_m, strict=True),
            qo, _num(el, "start_s", self.start_s), end,
        )

    def to_dict(self) -> dict:
        """Plain-data form for TOML (an infinite ``end_s`` and a ``max_rate_vph`` of None, the
        link's capacity, are left out)."""
        d = {"kind": self.kind, "link": self.link, "detector_link": self.detector_link, "setpoint_pct": self.setpoint_pct,
             "gain_vph_per_pct": self.gain_vph_per_pct, "min_rate_vph": self.min_rate_vph,
             "max_rate_vph": self.max_rate_vph, "interval_s": self.interval_s,
             "detector_length_m": self.detector_length_m, "queue_override": self.queue_override, "start_s": self.start_s}
        if self.max_rate_vph is None:
            del d["max_rate_vph"]
        if math.isfinite(self.end_s):
            d["end_s"] = self.end_s
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AlineaMeter":
        """Inverse of :meth:`to_dict`."""
        keys = ("gain_vph_per_pct", "min_rate_vph", "max_rate_vph", "interval_s", "detector_length_m",
                "queue_override", "start_s", "end_s")
        return cls(d["link"], d["detector_link"], d["setpoint_pct"], **{k: d[k] for k in keys if k in d})


#: kind -> control class, for deserialisation. Measures may register further kinds.
CONTROL_KINDS: dict[str, type] = {
    "signal": FixedTimeSignal,
    "meter": FixedRateMeter,
    "blocking": Blocking,
    "bus_stop": BusStop,
    "toll_booth": TollBooth,
    "alinea": AlineaMeter,
    "priority": PriorityJunction,
}


def _unknown_fields(where: str, d: dict, allowed) -> None:
    """Raise :class:`ControlError` naming the fields of the table ``d`` that are not ``allowed``
    (a misspelt field must not fall back to its default without a word)."""
    extra = sorted(set(d) - set(allowed))
    if extra:
        raise ControlError(f"{where}: unknown field(s) {extra}; known: {sorted(allowed)}")


def control_from_dict(d: dict, where: str = "control"):
    """Build a control from its TOML table (dispatch on ``kind``); ``where`` names the table in
    errors (e.g. ``"controls[2]"``). Unknown fields, in the control and in a signal's phases, are
    errors."""
    if not isinstance(d, dict):
        raise ControlError(f"{where}: must be a table with a 'kind' field, got {d!r}")
    kind = d.get("kind")
    if kind not in CONTROL_KINDS:
        raise ControlError(f"{where}: unknown kind {kind!r}; known: {sorted(CONTROL_KINDS)}")
    cls = CONTROL_KINDS[kind]
    el = f"{where} ({kind})"
    _unknown_fields(el, d, [f.name for f in fields(cls) if f.init] + ["kind"])
    if kind == "signal":
        phases = d.get("phases")
        if not isinstance(phases, list):
            raise ControlError(f"{el}: phases must be a list of tables, got {phases!r}")
        for i, p in enumerate(phases):
            if not isinstance(p, dict):
                raise ControlError(f"{el}, phases[{i}]: must be a table, got {p!r}")
            _unknown_fields(f"{el}, phases[{i}]", p, [f.name for f in fields(Phase)])
            if "green_s" not in p:
                raise ControlError(f"{el}, phases[{i}]: missing field 'green_s'")
            mv = p.get("movements", [])
            if not isinstance(mv, list) or not all(isinstance(m, list) and len(m) == 2 for m in mv):
                raise ControlError(f"{el}, phases[{i}]: movements must be a list of [in_link, out_link] pairs, "
                                   f"got {mv!r}")
    try:
        return cls.from_dict({k: v for k, v in d.items() if k != "kind"} | {"kind": kind})
    except KeyError as exc:
        raise ControlError(f"{el}: missing field {exc}") from None
    except TypeError as exc:
        raise ControlError(f"{el}: malformed field ({exc})") from None
