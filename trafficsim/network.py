"""The road network: nodes, directed links with a triangular fundamental diagram, lane schedules.

This module owns the one network description that every engine reads. Units at this surface are
the ones traffic engineers use and are named in each parameter (``length_m``,
``free_speed_kmh``, ``capacity_vph_per_lane``, ``jam_density_vpkm_per_lane``); engines convert to
SI when they compile a scenario.

A link's fundamental diagram is triangular (Daganzo 1994; Newell 1993): free-flow speed
``v_f``, capacity per lane ``q_c`` and jam density per lane ``k_j`` fix the critical density
``k_c = q_c / v_f`` and the backward wave speed ``w = q_c / (k_j - k_c)``. Capacity is an
explicit parameter, never emergent; ``w`` follows and must lie in the physical range
``WAVE_SPEED_RANGE_KMH`` (observed congestion fronts move upstream at about 10-25 km/h,
Kerner & Rehborn 1996; Treiber, Kesting & Helbing 2010).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "WAVE_SPEED_RANGE_KMH",
    "SHORT_LENGTH_FACTOR",
    "Node",
    "Link",
    "Network",
    "NetworkError",
    "PathFinder",
]

#: Accepted range of the backward wave speed [km/h]. The literature range is about 10-25 km/h;
#: the bounds leave a margin for slow inner streets and fast expressways.
WAVE_SPEED_RANGE_KMH = (8.0, 30.0)


#: :meth:`Network.add_link` warns when a link is shorter than this fraction of the straight line
#: between its nodes' coordinates: a length typed in km (1,000 times too short), not a schematic
#: map (coordinates only draw the network, so a sketch with links a few times longer or shorter
#: than drawn is fine).
SHORT_LENGTH_FACTOR = 0.01


class NetworkError(ValueError):
    """A network element has an invalid or inconsistent field (the message names both)."""


def _not_a_number(value) -> bool:
    """A boolean or a string where a number belongs (``true``, ``"50"`` in a TOML file): a slip
    that ``float()`` would convert without a word, so every number field refuses it."""
    return isinstance(value, (bool, np.bool_, str))


def _finite(element: str, name: str, value, *, positive: bool = True, allow_zero: bool = False) -> float:
    if _not_a_number(value):
        raise NetworkError(f"{element}: {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise NetworkError(f"{element}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise NetworkError(f"{element}: {name} must be finite, got {value!r}")
    if positive and (x < 0 or (x == 0 and not allow_zero)):
        bound = ">= 0" if allow_zero else "> 0"
        raise NetworkError(f"{element}: {name} must be {bound}, got {value!r}")
    return x


def _lane_count(element: str, name: str, value, *, minimum: int) -> int:
    # numbers.Real admits numpy integers and floats (lane counts read from a table); a NaN or an
    # infinity is not a whole number (int() of them would raise a bare ValueError/OverflowError)
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value != int(value)):
        raise NetworkError(f"{element}: {name} must be a whole number of lanes, got {value!r}")
    if int(value) < minimum:
        raise NetworkError(f"{element}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Node:
    """A junction, an origin or a destination.

    Parameters
    ----------
    id : str
        Unique identifier.
    x, y : float, optional
        Position [m] for maps and plots; engines do not need it.
    """

    id: str
    x: float | None = None
    y: float | None = None


@dataclass(frozen=True)
class Link:
    """A directed road section with a triangular fundamental diagram.

    Parameters
    ----------
    id : str
        Unique identifier.
    from_node, to_node : str
        Upstream and downstream node ids.
    length_m : float
        Length [m], > 0.
    lanes : int
        Number of lanes at time 0, >= 1 (the lane schedule may change it later).
    free_speed_kmh : float
        Free-flow speed [km/h].
    capacity_vph_per_lane : float
        Capacity [veh/h/lane].
    jam_density_vpkm_per_lane : float
        Jam density [veh/km/lane].
    lane_schedule : tuple of (float, int)
        Piecewise-constant lane count after time 0: ``((start_s, lanes), ...)`` with strictly
        increasing ``start_s`` [s] > 0 and ``lanes`` >= 0. A lane count of 0 closes the link.
    priority : float or None
        Merge priority of this link at its downstream node. ``None`` (default) means
        capacity-proportional priority (Tampere et al. 2011). Read by the macro engine's node
        model and the SUMO export; the micro engine merges by zipper and ignores it.
    name : str
        Human-readable street name, for plots and cards.
    """

    id: str
    from_node: str
    to_node: str
    length_m: float
    lanes: int
    free_speed_kmh: float = 50.0
    capacity_vph_per_lane: float = 1800.0
    jam_density_vpkm_per_lane: float = 150.0
    lane_schedule: tuple[tuple[float, int], ...] = ()
    priority: float | None = None
    name: str = ""

    @property
    def critical_density_vpkm_per_lane(self) -> float:
        """Critical density ``k_c = q_c / v_f`` [veh/km/lane]."""
        return self.capacity_vph_per_lane / self.free_speed_kmh

    @property
    def wave_speed_kmh(self) -> float:
        """Backward wave speed ``w = q_c / (k_j - k_c)`` [km/h] (positive number, moving upstream)."""
        kc = self.critical_density_vpkm_per_lane
        return self.capacity_vph_per_lane / (self.jam_density_vpkm_per_lane - kc)

    @property
    def free_flow_time_s(self) -> float:
        """Free-flow travel time ``L / v_f`` [s]."""
        return self.length_m / (self.free_speed_kmh / 3.6)

    def lanes_at(self, t_s: float) -> int:
        """Lane count in force at time ``t_s`` [s] according to the lane schedule."""
        lanes = self.lanes
        for start, n in self.lane_schedule:
            if start <= t_s:
                lanes = n
            else:
                break
        return lanes

    @property
    def max_lanes(self) -> int:
        """Largest lane count the link ever has."""
        return max([self.lanes] + [n for _, n in self.lane_schedule])


def _validate_link(link: Link, nodes: dict[str, Node]) -> Link:
    el = f"link {link.id!r}"
    if not isinstance(link.id, str) or not link.id:
        raise NetworkError(f"link {link.id!r}: id must be a non-empty string")
    for name in ("from_node", "to_node"):
        nid = getattr(link, name)
        if nid not in nodes:
            raise NetworkError(f"{el}: {name} {nid!r} is not a node of the network (add_node it first)")
    if link.from_node == link.to_node:
        raise NetworkError(f"{el}: from_node and to_node are both {link.from_node!r}; self-loops are not allowed")
    length = _finite(el, "length_m", link.length_m)
    lanes = _lane_count(el, "lanes", link.lanes, minimum=1)
    vf = _finite(el, "free_speed_kmh", link.free_speed_kmh)
    cap = _finite(el, "capacity_vph_per_lane", link.capacity_vph_per_lane)
    kj = _finite(el, "jam_density_vpkm_per_lane", link.jam_density_vpkm_per_lane)
    kc = cap / vf
    if kc >= kj:
        raise NetworkError(
            f"{el}: capacity_vph_per_lane / free_speed_kmh = {kc:.1f} veh/km must be below "
            f"jam_density_vpkm_per_lane = {kj:g} (no congested branch otherwise)"
        )
    w = cap / (kj - kc)
    lo, hi = WAVE_SPEED_RANGE_KMH
    if not lo <= w <= hi:
        raise NetworkError(
            f"{el}: the backward wave speed q_c/(k_j - k_c) = {w:.1f} km/h is outside the physical "
            f"range {lo:g}-{hi:g} km/h; check capacity_vph_per_lane={cap:g}, "
            f"free_speed_kmh={vf:g}, jam_density_vpkm_per_lane={kj:g}"
        )
    schedule = []
    last = 0.0
    for i, entry in enumerate(link.lane_schedule):
        try:
            start, n = entry
        except (TypeError, ValueError):
            raise NetworkError(f"{el}: lane_schedule[{i}] must be a (start_s, lanes) pair, got {entry!r}") from None
        start = _finite(el, f"lane_schedule[{i}] start_s", start)
        if start <= last:
            raise NetworkError(
                f"{el}: lane_schedule start times must be strictly increasing and > 0, got {start:g} after {last:g}"
            )
        last = start
        schedule.append((start, _lane_count(el, f"lane_schedule[{i}] lanes", n, minimum=0)))
    priority = link.priority
    if priority is not None:
        priority = _finite(el, "priority", priority)
    return replace(
        link,
        length_m=length,
        lanes=lanes,
        free_speed_kmh=vf,
        capacity_vph_per_lane=cap,
        jam_density_vpkm_per_lane=kj,
        lane_schedule=tuple(schedule),
        priority=priority,
    )


@dataclass
class Network:
    """A directed road network of nodes and links.

    Build one with :meth:`add_node` and :meth:`add_link`; every field is validated on entry and
    errors name the element and the field. Network-wide: ``allow_u_turns`` (a link to its
    reverse link is allowed everywhere, not only where it is the only way on), ``left_hand``
    (traffic keeps left: the give-way geometry is mirrored, lane 0 stays the kerb lane), and
    ``banned_turns``, ``lane_connectors``, ``turn_speeds`` (see :meth:`ban_turn`,
    :meth:`connect_lanes`, :meth:`set_turn_speed`).

    Examples
    --------
    >>> net = Network()
    >>> net.add_node("A"); net.add_node("B")
    >>> net.add_link("up", "A", "B", length_m=1500, lanes=2)
    """

    nodes: dict[str, Node] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    banned_turns: set[tuple[str, str]] = field(default_factory=set)
    allow_u_turns: bool = False
    #: Explicit lane connectors: ``{(from_link, to_link): ((from_lane, to_lane), ...)}`` (lanes
    #: from the right, 0 = kerb). Engines with lanes (micro, SUMO export) use them instead of the
    #: derived ones for that movement; the macro engine fits the movements to their lanes' capacity.
    lane_connectors: dict = field(default_factory=dict)
    #: Speed limits through turns [km/h]: ``{(from_link, to_link): speed}`` (a turn's curvature;
    #: SUMO's internal lanes). The micro engine slows turning vehicles to it before the node; the
    #: macro engine has no speeds within a node and does not use it.
    turn_speeds: dict = field(default_factory=dict)
    #: Traffic keeps left (the United Kingdom, Japan, Hong Kong, India, ...): the give-way geometry
    #: (which way a movement turns, who comes from the right, which left turns cross the opposing
    #: stream) is mirrored. Lane 0 stays the kerb lane, as in SUMO's left-hand networks, so lane
    #: indices, lane changes (keep to the kerb side, overtake on the median side) and bus stops
    #: need no change.
    left_hand: bool = False

    # ------------------------------------------------------------------ building
    def add_node(self, id: str, x: float | None = None, y: float | None = None) -> Node:
        """Add a node; ``x``, ``y`` [m] are optional coordinates for plotting."""
        if not isinstance(id, str) or not id:
            raise NetworkError(f"node {id!r}: id must be a non-empty string")
        if id in self.nodes:
            raise NetworkError(f"node {id!r}: duplicate id")
        if (x is None) != (y is None):
            raise NetworkError(f"node {id!r}: give both x and y or neither")
        if x is not None:
            x = _finite(f"node {id!r}", "x", x, positive=False)
            y = _finite(f"node {id!r}", "y", y, positive=False)
        node = Node(id, x, y)
        self.nodes[id] = node
        return node

    def add_link(
        self,
        id: str,
        from_node: str,
        to_node: str,
        *,
        length_m: float,
        lanes: int,
        free_speed_kmh: float = 50.0,
        capacity_vph_per_lane: float = 1800.0,
        jam_density_vpkm_per_lane: float = 150.0,
        lane_schedule: Iterable[tuple[float, int]] = (),
        priority: float | None = None,
        name: str = "",
    ) -> Link:
        """Add a directed link; see :class:`Link` for the fields and their units."""
        if id in self.links:
            raise NetworkError(f"link {id!r}: duplicate id")
        link = Link(
            id=id,
            from_node=from_node,
            to_node=to_node,
            length_m=length_m,
            lanes=lanes,
            free_speed_kmh=free_speed_kmh,
            capacity_vph_per_lane=capacity_vph_per_lane,
            jam_density_vpkm_per_lane=jam_density_vpkm_per_lane,
            lane_schedule=tuple(tuple(e) if isinstance(e, list) else e for e in lane_schedule),
            priority=priority,
            name=name,
        )
        link = _validate_link(link, self.nodes)
        a, b = self.nodes[from_node], self.nodes[to_node]
        if a.x is not None and b.x is not None:
            straight = math.hypot(b.x - a.x, b.y - a.y)
            if link.length_m < SHORT_LENGTH_FACTOR * straight:
                warnings.warn(f"link {id!r}: length_m={link.length_m:g} is less than {SHORT_LENGTH_FACTOR:g} x the "
                              f"{straight:,.0f} m between its nodes' coordinates; lengths are in metres "
                              "(coordinates only draw the map, the engines use length_m)", UserWarning, stacklevel=2)
        self.links[id] = link
        return link

    def update_link(self, id: str, **fields) -> Link:
        """Replace fields of an existing link (validated like :meth:`add_link`)."""
        link = self.link(id)
        if "lane_schedule" in fields:
            fields["lane_schedule"] = tuple(tuple(e) for e in fields["lane_schedule"])
        unknown = set(fields) - set(Link.__dataclass_fields__) - {"id"}
        if unknown:
            raise NetworkError(f"link {id!r}: unknown field(s) {sorted(unknown)}")
        new = _validate_link(replace(link, **fields), self.nodes)
        self.links[id] = new
        return new

    def set_lane_schedule(self, link_id: str, schedule: Sequence[tuple[float, int]]) -> Link:
        """Set a piecewise-constant lane count after time 0: ``[(start_s, lanes), ...]``."""
        return self.update_link(link_id, lane_schedule=schedule)

    def remove_link(self, id: str) -> None:
        """Remove a link (and the turn bans and lane connectors that name it)."""
        self.link(id)
        del self.links[id]
        self.banned_turns = {t for t in self.banned_turns if id not in t}
        self.lane_connectors = {t: v for t, v in self.lane_connectors.items() if id not in t}
        self.turn_speeds = {t: v for t, v in self.turn_speeds.items() if id not in t}

    def split_link(self, id: str, at_m: float, *, node: str | None = None, tail: str | None = None) -> Link:
        """Cut link ``id`` at ``at_m`` [m] from its upstream end; returns the new downstream link.

        ``id`` keeps its upstream ``at_m`` metres and now ends at a new node ``node`` (default
        ``"<id>-cut"``, placed on the straight line between the link's nodes when both have
        coordinates); a new link ``tail`` (default ``"<id>-end"``) with the same lanes, lane
        schedule and fundamental diagram carries the rest to the old downstream node. What belongs
        to the downstream end moves to ``tail``: the merge ``priority``, the turn bans and the lane
        connectors at that node. Demand routes and controls that name ``id`` are not this
        method's business (a scenario-level edit fixes them, e.g.
        :class:`~trafficsim.measures.RampMetering`).
        """
        lk = self.link(id)
        at = _finite(f"link {id!r}", "split at_m", at_m)
        if at >= lk.length_m:
            raise NetworkError(f"link {id!r}: split at_m {at:g} m must lie inside the link (length {lk.length_m:g} m)")
        node = f"{id}-cut" if node is None else node
        tail = f"{id}-end" if tail is None else tail
        if tail in self.links:
            raise NetworkError(f"link {tail!r}: duplicate id (the tail of link {id!r} split at {at:g} m)")
        a, b = self.nodes[lk.from_node], self.nodes[lk.to_node]
        f = at / lk.length_m
        xy = (a.x + f * (b.x - a.x), a.y + f * (b.y - a.y)) if a.x is not None and b.x is not None else (None, None)
        self.add_node(node, *xy)
        new = self.add_link(tail, node, lk.to_node, length_m=lk.length_m - at, lanes=lk.lanes,
                            free_speed_kmh=lk.free_speed_kmh, capacity_vph_per_lane=lk.capacity_vph_per_lane,
                            jam_density_vpkm_per_lane=lk.jam_density_vpkm_per_lane, lane_schedule=lk.lane_schedule,
                            priority=lk.priority, name=lk.name)
        self.links[id] = _validate_link(replace(lk, to_node=node, length_m=at, priority=None), self.nodes)
        self.banned_turns = {(tail if s == id else s, t) for s, t in self.banned_turns}
        self.lane_connectors = {(tail if s == id else s, t): v for (s, t), v in self.lane_connectors.items()}
        self.turn_speeds = {(tail if s == id else s, t): v for (s, t), v in self.turn_speeds.items()}
        return new

    def set_turn_speed(self, from_link: str, to_link: str, speed_kmh: float) -> None:
        """Limit the speed through the turn ``from_link -> to_link`` to ``speed_kmh`` [km/h] (the
        turn's curvature). The micro engine's vehicles slow to it before the node, as they do for
        a slower next link; the macro engine ignores it. ``network_from_sumo`` sets it from
        SUMO's internal lanes."""
        a, b = self.link(from_link), self.link(to_link)
        el = f"turn speed {from_link!r} -> {to_link!r}"
        if a.to_node != b.from_node:
            raise NetworkError(f"{el}: link {from_link!r} ends at {a.to_node!r} but {to_link!r} starts at {b.from_node!r}")
        self.turn_speeds[(from_link, to_link)] = _finite(el, "speed_kmh", speed_kmh)

    def connect_lanes(self, from_link: str, to_link: str, lanes: Sequence[tuple[int, int]]) -> None:
        """Say which lane of ``from_link`` enters which lane of ``to_link`` (lanes from the right).

        ``lanes`` is a sequence of ``(from_lane, to_lane)`` pairs; the from-lanes must be
        contiguous (vehicles change into them before the node) and the to-lanes must not cross;
        several from-lanes may enter one to-lane (they merge by zipper at the node, e.g. the booth
        lanes of a toll plaza into one ramp lane). Replaces the connectors the engines would derive
        for this movement (see
        :mod:`trafficsim.engines.micro`); a lane closed by a lane schedule leaves its pairs unused
        while closed. The micro engine drives on them; the macro engine fits the movements of
        ``from_link`` to the lanes that serve them: a movement on ``k`` of ``n`` open lanes carries
        at most ``k/n`` of the link's capacity, movements sharing a lane share its capacity
        (:mod:`trafficsim.kernels.ctm`).

        Examples
        --------
        A 3-lane road whose right lane turns right, the other two go straight on::

            net.connect_lanes("approach", "right-turn", [(0, 0)])
            net.connect_lanes("approach", "through", [(1, 0), (2, 1)])

        Two booth lanes merging into a one-lane ramp::

            net.connect_lanes("toll", "ramp", [(0, 0), (1, 0)])
        """
        a, b = self.link(from_link), self.link(to_link)
        el = f"lane connector {from_link!r} -> {to_link!r}"
        if a.to_node != b.from_node:
            raise NetworkError(f"{el}: link {from_link!r} ends at {a.to_node!r} but {to_link!r} starts at {b.from_node!r}")
        if (from_link, to_link) in self.banned_turns:
            raise NetworkError(f"{el}: the turn is banned")
        pairs = []
        for k, pair in enumerate(lanes):
            if len(pair) != 2:
                raise NetworkError(f"{el}: lanes[{k}] must be a (from_lane, to_lane) pair, got {pair!r}")
            i = _lane_count(el, f"lanes[{k}][0]", pair[0], minimum=0)
            j = _lane_count(el, f"lanes[{k}][1]", pair[1], minimum=0)
            if i >= a.max_lanes:
                raise NetworkError(f"{el}: lanes[{k}]: from-lane {i} does not exist ({from_link!r} has {a.max_lanes})")
            if j >= b.max_lanes:
                raise NetworkError(f"{el}: lanes[{k}]: to-lane {j} does not exist ({to_link!r} has {b.max_lanes})")
            pairs.append((i, j))
        if not pairs:
            raise NetworkError(f"{el}: lanes is empty (ban the turn instead)")
        pairs.sort()
        src = [i for i, _ in pairs]
        if src != list(range(src[0], src[0] + len(src))):
            raise NetworkError(f"{el}: lanes: the from-lanes {src} must be contiguous, each once")
        dst = [j for _, j in pairs]
        if dst != sorted(dst):
            raise NetworkError(f"{el}: lanes: the to-lanes {dst} cross (a lane to the left must not enter a lane "
                               "to the right of where its right neighbour goes)")
        self.lane_connectors[(from_link, to_link)] = tuple(pairs)

    def lane_connections(self, t_s: float = 0.0, node: str | None = None):
        """The lanes that lead from each link to each next one at time ``t_s`` [s], as the micro
        engine drives them and the SUMO export writes the explicit ones: a
        :class:`pandas.DataFrame` with a row per allowed turn (``node`` alone: the turns there).

        Columns: ``node``, ``from_link``, ``to_link``, ``from_lanes`` and ``to_lanes`` (tuples of
        lane indices from the right, ``from_lanes[i]`` entering ``to_lanes[i]``; empty while the
        downstream link is closed) and ``explicit`` (set by :meth:`connect_lanes`, else derived
        by the rules of :mod:`trafficsim.engines.micro`). Look here to check that a network's
        lanes are those of the road before trusting a lane-level result.
        """
        import pandas as pd

        from .lanes import derive_connectors

        if node is not None:
            self.node(node)
        turns = [(a, b) for a, b in allowed_turn_pairs(self) if node is None or self.links[a].to_node == node]
        conn = derive_connectors(self, turns, {lid: lk.lanes_at(t_s) for lid, lk in self.links.items()})
        rows = []
        for a, b in turns:
            lo, hi, targets = conn[(a, b)]
            rows.append({"node": self.links[a].to_node, "from_link": a, "to_link": b,
                         "from_lanes": tuple(range(lo, hi + 1)) if lo <= hi else (),
                         "to_lanes": tuple(targets) if lo <= hi else (), "explicit": (a, b) in self.lane_connectors})
        return pd.DataFrame(rows, columns=["node", "from_link", "to_link", "from_lanes", "to_lanes", "explicit"])

    def ban_turn(self, from_link: str, to_link: str) -> None:
        """Forbid the movement ``from_link -> to_link`` at their common node."""
        a, b = self.link(from_link), self.link(to_link)
        if a.to_node != b.from_node:
            raise NetworkError(
                f"turn {from_link!r} -> {to_link!r}: link {from_link!r} ends at {a.to_node!r} "
                f"but {to_link!r} starts at {b.from_node!r}"
            )
        self.banned_turns.add((from_link, to_link))
        self.lane_connectors.pop((from_link, to_link), None)

    def copy(self) -> "Network":
        """A copy that can be edited without touching this network (links are immutable)."""
        return Network(dict(self.nodes), dict(self.links), set(self.banned_turns), self.allow_u_turns,
                       dict(self.lane_connectors), dict(self.turn_speeds), self.left_hand)

    # ------------------------------------------------------------------ queries
    def node(self, id: str) -> Node:
        """The node ``id``; a clear error when there is none."""
        try:
            return self.nodes[id]
        except KeyError:
            raise NetworkError(f"node {id!r}: not in the network") from None

    def link(self, id: str) -> Link:
        """The link ``id``; a clear error when there is none."""
        try:
            return self.links[id]
        except KeyError:
            raise NetworkError(f"link {id!r}: not in the network") from None

    def out_links(self, node_id: str) -> list[Link]:
        """Links leaving ``node_id``, in insertion order."""
        return [lk for lk in self.links.values() if lk.from_node == node_id]

    def in_links(self, node_id: str) -> list[Link]:
        """Links entering ``node_id``, in insertion order."""
        return [lk for lk in self.links.values() if lk.to_node == node_id]

    def turn_allowed(self, from_link: str, to_link: str) -> bool:
        """Whether vehicles may go from ``from_link`` onto ``to_link`` (adjacent links only)."""
        a, b = self.links[from_link], self.links[to_link]
        if a.to_node != b.from_node or (from_link, to_link) in self.banned_turns:
            return False
        if not self.allow_u_turns and b.to_node == a.from_node:
            # A U-turn onto the opposite carriageway; allowed only where it is the only way on.
            return len(self.out_links(a.to_node)) == 1
        return True

    def shortest_path(self, origin: str, destination: str, weight: str = "free_flow_time_s") -> list[str]:
        """Links of the least-``weight`` path from node ``origin`` to node ``destination``.

        Dijkstra over links (so that turn bans are respected), ties broken by link insertion order
        so the result is deterministic. ``weight`` names a :class:`Link` attribute (free-flow
        travel time by default). Raises :class:`NetworkError` if the destination is unreachable.
        """
        self.node(destination)
        paths = self.shortest_paths_from(origin, weight)
        if destination not in paths:
            raise NetworkError(f"destination {destination!r} is unreachable from origin {origin!r}")
        return paths[destination]

    def shortest_paths_from(self, origin: str, weight: str | dict = "free_flow_time_s") -> dict[str, list[str]]:
        """Least-cost link paths from node ``origin`` to every reachable node (one Dijkstra).

        ``weight`` is a :class:`Link` attribute name or a dict ``link id -> cost``. For many
        origins, :class:`PathFinder` builds the search arrays once.
        """
        return PathFinder(self, weight).paths_from(origin)

    def validate_route(self, links: Sequence[str], origin: str | None = None, destination: str | None = None) -> None:
        """Check that ``links`` is a connected, allowed path (from ``origin`` to ``destination``)."""
        if len(links) == 0:
            raise NetworkError("route: must contain at least one link")
        for lid in links:
            self.link(lid)
        if origin is not None and self.links[links[0]].from_node != origin:
            raise NetworkError(f"route {list(links)}: first link {links[0]!r} does not start at origin {origin!r}")
        if destination is not None and self.links[links[-1]].to_node != destination:
            raise NetworkError(
                f"route {list(links)}: last link {links[-1]!r} does not end at destination {destination!r}"
            )
        for a, b in zip(links[:-1], links[1:]):
            if self.links[a].to_node != self.links[b].from_node:
                raise NetworkError(f"route {list(links)}: link {a!r} does not lead to link {b!r}")
            if not self.turn_allowed(a, b):
                raise NetworkError(f"route {list(links)}: the turn {a!r} -> {b!r} is not allowed")

    def to_dict(self) -> dict:
        """Plain-data form (used by TOML serialisation)."""
        nodes = []
        for n in self.nodes.values():
            d = {"id": n.id}
            if n.x is not None:
                d["x"], d["y"] = n.x, n.y
            nodes.append(d)
        links = []
        for lk in self.links.values():
            d = {
                "id": lk.id,
                "from": lk.from_node,
                "to": lk.to_node,
                "length_m": lk.length_m,
                "lanes": lk.lanes,
                "free_speed_kmh": lk.free_speed_kmh,
                "capacity_vph_per_lane": lk.capacity_vph_per_lane,
                "jam_density_vpkm_per_lane": lk.jam_density_vpkm_per_lane,
            }
            if lk.lane_schedule:
                d["lane_schedule"] = [[s, n] for s, n in lk.lane_schedule]
            if lk.priority is not None:
                d["priority"] = lk.priority
            if lk.name:
                d["name"] = lk.name
            links.append(d)
        out = {"nodes": nodes, "links": links}
        if self.banned_turns:
            out["banned_turns"] = [list(t) for t in sorted(self.banned_turns)]
        if self.allow_u_turns:
            out["allow_u_turns"] = True
        if self.left_hand:
            out["left_hand"] = True
        if self.lane_connectors:
            out["lane_connectors"] = [{"from": a, "to": b, "lanes": [list(p) for p in pairs]}
                                      for (a, b), pairs in sorted(self.lane_connectors.items())]
        if self.turn_speeds:
            out["turn_speeds"] = [{"from": a, "to": b, "speed_kmh": v} for (a, b), v in sorted(self.turn_speeds.items())]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Network":
        """Inverse of :meth:`to_dict`, validating every field."""
        net = cls()
        known_node = {"id", "x", "y"}
        for i, d in enumerate(data.get("nodes", [])):
            extra = set(d) - known_node
            if extra:
                raise NetworkError(f"nodes[{i}] ({d.get('id')!r}): unknown field(s) {sorted(extra)}")
            if "id" not in d:
                raise NetworkError(f"nodes[{i}]: missing field 'id'")
            net.add_node(d["id"], d.get("x"), d.get("y"))
        known_link = {
            "id", "from", "to", "length_m", "lanes", "free_speed_kmh", "capacity_vph_per_lane",
            "jam_density_vpkm_per_lane", "lane_schedule", "priority", "name",
        }
        for i, d in enumerate(data.get("links", [])):
            extra = set(d) - known_link
            if extra:
                raise NetworkError(f"links[{i}] ({d.get('id')!r}): unknown field(s) {sorted(extra)}")
            for req in ("id", "from", "to", "length_m", "lanes"):
                if req not in d:
                    raise NetworkError(f"links[{i}] ({d.get('id')!r}): missing field {req!r}")
            kw = {k: v for k, v in d.items() if k not in ("id", "from", "to")}
            net.add_link(d["id"], d["from"], d["to"], **kw)
        for t in data.get("banned_turns", []):
            net.ban_turn(*t)
        u_turns = data.get("allow_u_turns", False)
        if not isinstance(u_turns, bool):
            raise NetworkError(f"allow_u_turns must be true or false, got {u_turns!r}")
        net.allow_u_turns = u_turns
        left = data.get("left_hand", False)
        if not isinstance(left, bool):
            raise NetworkError(f"left_hand must be true or false, got {left!r}")
        net.left_hand = left
        for i, d in enumerate(data.get("lane_connectors", [])):
            extra = set(d) - {"from", "to", "lanes"}
            if extra:
                raise NetworkError(f"lane_connectors[{i}]: unknown field(s) {sorted(extra)}")
            for req in ("from", "to", "lanes"):
                if req not in d:
                    raise NetworkError(f"lane_connectors[{i}]: missing field {req!r}")
            net.connect_lanes(d["from"], d["to"], [tuple(p) for p in d["lanes"]])
        for i, d in enumerate(data.get("turn_speeds", [])):
            if set(d) != {"from", "to", "speed_kmh"}:
                raise NetworkError(f"turn_speeds[{i}]: needs exactly the fields 'from', 'to', 'speed_kmh', got {sorted(d)}")
            net.set_turn_speed(d["from"], d["to"], d["speed_kmh"])
        return net

    @classmethod
    def from_sumo(cls, path, **options) -> "Network":
        """A network from a SUMO ``.net.xml`` (see :func:`trafficsim.sumo_io.network_from_sumo`)."""
        from .sumo_io import network_from_sumo

        return network_from_sumo(path, **options)


def allowed_turns(network: Network, ids: list[str], out_by_node: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The turns a route may take, as link indices into ``ids``: ``(t_from, t_to)``, ordered by
    ``t_from`` then by the order of ``out_by_node`` (node -> indices of the links leaving it).
    Banned turns are left out, and so are U-turns back to the node a link came from, unless the
    network allows them or the U-turn is the only way on."""
    links = [network.links[lid] for lid in ids]
    t_from: list[int] = []
    t_to: list[int] = []
    for i, lk in enumerate(links):
        outs = out_by_node.get(lk.to_node, [])
        for j in outs:
            if (lk.id, ids[j]) in network.banned_turns:
                continue
            if not network.allow_u_turns and links[j].to_node == lk.from_node and len(outs) > 1:
                continue
            t_from.append(i)
            t_to.append(j)
    return np.array(t_from, dtype=np.int64), np.array(t_to, dtype=np.int64)


def allowed_turn_pairs(network: Network) -> list[tuple[str, str]]:
    """Every turn a route may take, as ``(from_link, to_link)`` ids (the rule of :func:`allowed_turns`)."""
    ids = list(network.links)
    out_by_node: dict[str, list[int]] = {}
    for j, lid in enumerate(ids):
        out_by_node.setdefault(network.links[lid].from_node, []).append(j)
    t_from, t_to = allowed_turns(network, ids, out_by_node)
    return [(ids[i], ids[j]) for i, j in zip(t_from, t_to)]


class PathFinder:
    """Least-cost link paths in one network under one link cost, from any number of origins.

    The turn arrays are built once; each origin costs one compiled Dijkstra
    (:func:`trafficsim.kernels.paths.link_tree`) and is remembered. Links are the vertices of the
    search, so turn bans and the U-turn rule hold; ties go to the least cost, then to the link
    added first. The finder reads the network when it is made: make a new one after changing it.

    Parameters
    ----------
    network : Network
    weight : str or dict
        A :class:`Link` attribute name (free-flow travel time by default) or ``link id -> cost``.
    """

    def __init__(self, network: Network, weight: str | dict = "free_flow_time_s"):
        self.network = network
        self.ids = list(network.links)
        links = [network.links[lid] for lid in self.ids]
        self._node_ids = list(network.nodes)
        node_index = {n: i for i, n in enumerate(self._node_ids)}
        if isinstance(weight, dict):
            self.cost = np.array([float(weight[lid]) for lid in self.ids], dtype=np.float64)
        else:
            self.cost = np.array([float(getattr(lk, weight)) for lk in links], dtype=np.float64)
        self._out: dict[str, list[int]] = {}
        for i, lk in enumerate(links):
            self._out.setdefault(lk.from_node, []).append(i)
        t_from, self._turn_to = allowed_turns(network, self.ids, self._out)
        self._turn_off = np.concatenate([[0], np.cumsum(np.bincount(t_from, minlength=len(links)))]).astype(np.int64)
        self._link_to = np.array([node_index[lk.to_node] for lk in links], dtype=np.int64)
        self._node_index = node_index
        self._trees: dict[str, tuple] = {}

    def _tree(self, origin: str):
        if origin not in self._trees:
            from .kernels.paths import link_tree

            self.network.node(origin)
            first = np.array(self._out.get(origin, []), dtype=np.int64)
            self._trees[origin] = link_tree(first, self.cost, self._turn_off, self._turn_to, self._link_to,
                                            len(self._node_ids))
        return self._trees[origin]

    def path(self, origin: str, destination: str) -> list[str] | None:
        """Links of the least-cost path from node ``origin`` to node ``destination``, ``None`` if
        the destination cannot be reached (or is the origin)."""
        prev, last = self._tree(origin)
        self.network.node(destination)
        if destination == origin:
            return None
        i = int(last[self._node_index[destination]])
        if i < 0:
            return None
        path = [i]
        while prev[path[-1]] >= 0:
            path.append(int(prev[path[-1]]))
        return [self.ids[j] for j in reversed(path)]

    def paths_from(self, origin: str) -> dict[str, list[str]]:
        """Least-cost paths from ``origin`` to every reachable node (as
        :meth:`Network.shortest_paths_from`)."""
        _, last = self._tree(origin)
        return {node: self.path(origin, node) for k, node in enumerate(self._node_ids)
                if last[k] >= 0 and node != origin}
