"""Lane measures: tidal (reversible) lanes, variable lanes, widening.

All three are lane schedules, the primitive every engine reads (``Link.lane_schedule``).

TidalLane
    ``lanes`` lanes of the road move from the ``opposite`` link to ``link`` during each window.
    At the window start the lanes close on ``opposite`` (entry closed, vehicles already there
    drain); ``clearance_s`` later they open on ``link``. At the window end they close on
    ``link`` and reopen on ``opposite`` after the same clearance. The clearance must be at
    least the free-flow traversal time of the section so that a vehicle that entered the
    reversed lane just before closure has left before opposing traffic is admitted. A reversed
    lane has the per-lane fundamental diagram of the link it serves (Lambert & Wolshon 2010:
    reversed lanes flow like normal lanes).

VariableLane
    A lane whose permitted movement changes by time of day. In the macro engine a lane group
    per movement is a parallel link: the measure splits ``link`` into the through link and a
    pocket link (same end nodes) dedicated to the movement onto ``turn_to``. During each window
    ``lanes`` lanes leave the through link for the pocket and the turning flows use the pocket;
    outside the windows the lane is general-purpose again (the through link has all lanes and
    the turning flows use it, as in the baseline). The demand of each turning flow is split
    into its in-window and out-of-window parts so each part has its own route.

Widening
    More lanes on links (added to the lane count and every schedule entry).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..control import AlineaMeter, FixedRateMeter, FixedTimeSignal
from ..scenario import Scenario
from ._base import Measure, add_lane_delta, finite, opposite_roads, road_ends

__all__ = ["TidalLane", "VariableLane", "Widening"]


def _windows(m: Measure, sc: Scenario, merge_gap_s: float = 0.0) -> tuple[tuple[float, float], ...]:
    """``m.windows`` validated one by one as :meth:`Measure.time_window` does (a pair, ``0 <=
    start < end``, starting before the end of the run: else the measure would do nothing), in
    order and not overlapping, each end clipped to the horizon, and windows less than (or
    exactly) ``merge_gap_s`` apart joined into one: the lanes do not change back for a gap
    shorter than it takes to change them (a tidal lane's clearance; for a variable lane windows
    that touch), where the two changes would overwrite each other (two windows 1,000 s and
    1,000-2,000 s gave a tidal lane to both directions at once)."""
    windows = m.windows
    if isinstance(windows, (str, bytes)) or not hasattr(windows, "__iter__"):
        raise m.error("windows", f"must be a sequence of (start_s, end_s) pairs, got {windows!r}")
    out: list[list[float]] = []
    last = -1.0
    for i, w in enumerate(windows):
        a, b = m.time_window(sc, f"windows[{i}]", w)
        if a < last:
            raise m.error(f"windows[{i}]", f"windows must be in order and not overlap, got {w!r} after one ending at {last:g} s")
        if out and a - out[-1][1] <= merge_gap_s:
            out[-1][1] = min(b, sc.duration_s)
        else:
            out.append([a, min(b, sc.duration_s)])
        last = b
    if not out:
        raise m.error("windows", "empty")
    return tuple((a, b) for a, b in out)


@dataclass(frozen=True)
class TidalLane(Measure):
    """Reversible lanes: ``lanes`` lanes of ``opposite`` serve ``link`` during ``windows``.

    Parameters
    ----------
    link : str
        The peak-direction link that gains lanes. A road a measure cut in parts
        (``meta["split_links"]``, e.g. a metered approach and its ``"<link>-merge"``) gains them
        in every part, whichever part names it: a reversed lane runs between the road's ends,
        where the opposite road runs, never along one part alone.
    windows : tuple of (float, float)
        ``((start_s, end_s), ...)`` [s] during which the lanes are reversed (e.g. the AM peak).
    lanes : int
        Lanes reversed, >= 1; ``opposite`` keeps at least one lane.
    opposite : str, optional
        The opposing road (its ends those of ``link``'s road swapped), named by any of its parts;
        found from the network when None.
    clearance_s : float, optional
        Closure of the reversed lanes in both directions at each change [s]; default the
        free-flow traversal time of the longer of the two links, rounded up to 10 s. Must be at
        least that traversal time.
    label : str
        Name of the variant in reports.
    """

    link: str
    windows: tuple = ((0.0, float("inf")),)
    lanes: int = 1
    opposite: str | None = None
    clearance_s: float | None = None
    label: str = ""

    def opposite_of(self, sc: Scenario) -> str:
        """The opposing road's id (validated). A road an earlier measure cut in parts
        (``meta["split_links"]``, e.g. at a meter's stop line) runs, and is named, as a whole:
        ``link`` or ``opposite`` naming one of its parts (``"<ramp>-merge"``) stands for the road."""
        self.need_link(sc, "link", self.link)
        road = sc.road_of(self.link)
        start, end = road_ends(sc, road)
        cands = opposite_roads(sc, road)
        named = repr(self.link) if road == self.link else f"{self.link!r} (part of the road {road!r})"
        if self.opposite is not None:
            self.need_link(sc, "opposite", self.opposite)
            opp = sc.road_of(self.opposite)
            if opp not in cands:
                raise self.error("opposite", f"link {self.opposite!r} does not run opposite to {named} "
                                             f"({end!r} -> {start!r})")
            return opp
        if not cands:
            raise self.error("link", f"link {named} has no opposite link ({end!r} -> {start!r}): "
                                     "a tidal lane needs a two-way road, this one is one-way")
        return cands[0]

    def schedule(self, sc: Scenario) -> dict[str, list[tuple[float, int]]]:
        """Lane deltas per link: ``{link: [(t, delta)], opposite: [(t, delta)]}`` (and the same for
        every part of either when a measure cut it in parts, ``meta["split_links"]``)."""
        opp = self.opposite_of(sc)
        net = sc.network
        # the peak direction as a whole, whichever of its parts ``link`` names
        parts_a, parts_b = sc.link_parts([sc.road_of(self.link)]), sc.link_parts([opp])
        traverse = max(sum(net.links[p].free_flow_time_s for p in parts_a),
                       sum(net.links[p].free_flow_time_s for p in parts_b))
        clear = self.clearance_s
        if clear is None:
            clear = 10.0 * -(-traverse // 10.0)
        clear = finite(type(self).__name__, "clearance_s", clear)
        if clear < traverse - 1e-9:
            raise self.error("clearance_s", f"{clear:g} s is shorter than the free-flow traversal time {traverse:.1f} s "
                                            f"of {self.link!r}/{opp!r}: the reversed lane would not empty before reversal")
        if isinstance(self.lanes, bool) or int(self.lanes) != self.lanes or self.lanes < 1:
            raise self.error("lanes", f"must be a whole number >= 1, got {self.lanes!r}")
        k = int(self.lanes)
        for b in (net.links[p] for p in parts_b):
            for t in (0.0,) + tuple(s for s, _ in b.lane_schedule):
                if b.lanes_at(t) - k < 1:
                    raise self.error("lanes", f"reversing {k} lane(s) leaves {b.id!r} with {b.lanes_at(t) - k} lanes "
                                              f"at t={t:g} s; the opposite direction must keep >= 1")
        wins = _windows(self, sc, merge_gap_s=clear)
        gain, lose = [], []
        for s, e in wins:
            lose.append((s, -k))
            # a window from time 0 starts reversed: no clearance at the start of the run
            gain.append((s + clear if s > 0 else 0.0, k))
            gain.append((e, 0))
            lose.append((e + clear, 0))
        # every part of a road cut in parts reverses with it
        return {**{p: sorted(gain) for p in parts_a}, **{p: sorted(lose) for p in parts_b}}

    def _edit(self, sc: Scenario) -> None:
        for lid, deltas in self.schedule(sc).items():
            add_lane_delta(sc.network, lid, [(t, d) for t, d in deltas if t < sc.duration_s], owner=type(self).__name__)

    def describe(self) -> str:
        """One line for tables and plots: the lanes reversed, the link they serve and the windows."""
        w = ", ".join(f"{a:g}-{b:g} s" for a, b in self.windows)
        return f"TidalLane: {self.lanes} lane(s) of the opposite road serve {self.link!r} during {w}"


@dataclass(frozen=True)
class VariableLane(Measure):
    """A lane that serves only the movement ``link -> turn_to`` during ``windows``.

    The lane is marked at the junction it leads to. On a road a measure cut in parts
    (``meta["split_links"]``, e.g. at the stop line of a
    :class:`~trafficsim.measures.RampMetering`) it therefore lies beside the last part, the one
    that reaches the junction (``"<link>-merge"``, between the stop line and the junction): the
    pocket is ``"<link>-merge:pocket"`` (:meth:`pocket_link`), and the part upstream of the stop
    line keeps all its lanes. A pocket beside the whole road would let the turning traffic pass
    the meter unmetered. For the same reason a variable lane on a link whose own downstream end
    carries a meter (``RampMetering(stop_line_m=0)``, a ``PeakControl`` gate) is an error, and
    ``RampMetering`` refuses a ramp that already has a pocket: with a meter, the meter comes
    first and this measure after it.

    Parameters
    ----------
    link : str
        The approach whose lane changes use (a road cut in parts: see above).
    turn_to : str
        The downstream link of the movement the lane is dedicated to (a left turn, a U-turn).
    windows : tuple of (float, float)
        ``((start_s, end_s), ...)`` [s] when the lane is dedicated.
    lanes : int
        Lanes dedicated, >= 1, fewer than the link has.
    pocket_capacity_vph_per_lane, through_capacity_vph_per_lane : float, optional
        Per-lane capacity [veh/h/lane] of the dedicated lane and of the remaining lanes (e.g.
        restored once turners no longer block the through lanes); default the link's.
    label : str
        Name of the variant in reports.
    """

    link: str
    turn_to: str
    windows: tuple = ((0.0, float("inf")),)
    lanes: int = 1
    pocket_capacity_vph_per_lane: float | None = None
    through_capacity_vph_per_lane: float | None = None
    label: str = ""

    @property
    def pocket_id(self) -> str:
        """Id of the pocket link the measure creates on a link no measure cut in parts; in
        general :meth:`pocket_link`."""
        return f"{self.link}:pocket"

    def pocket_link(self, sc: Scenario) -> str:
        """Id of the pocket link the measure creates on ``sc``: ``"<part>:pocket"`` beside the
        part of the road ``link`` that reaches the junction (``link`` itself unless a measure cut
        it in parts)."""
        return f"{self.need_road_end(sc, 'link', self.link).id}:pocket"

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        # the lane is marked at the junction: on a road cut in parts, beside its last part
        lk = self.need_road_end(sc, "link", self.link)
        part, pocket = lk.id, self.pocket_link(sc)
        out = self.need_link(sc, "turn_to", self.turn_to)
        if out.from_node != lk.to_node:
            raise self.error("turn_to", f"link {self.turn_to!r} does not start where {part!r} ends ({lk.to_node!r})")
        meters = [c for c in sc.controls if isinstance(c, (FixedRateMeter, AlineaMeter)) and c.link == part]
        if meters:
            raise self.error("link", f"a {type(meters[0]).__name__} stands at the end of link {part!r}: the turning "
                                     "traffic in a pocket beside it would pass the meter unmetered (a RampMetering "
                                     "with stop_line_m > 0 puts the stop line upstream of the lane)")
        k = self.lanes
        if isinstance(k, bool) or int(k) != k or not (1 <= k < lk.lanes):
            raise self.error("lanes", f"must be a whole number in [1, {lk.lanes - 1}] (link {part!r} has {lk.lanes}), got {k!r}")
        wins = _windows(self, sc)
        net = sc.network
        pocket_cap = lk.capacity_vph_per_lane if self.pocket_capacity_vph_per_lane is None else finite(
            owner, "pocket_capacity_vph_per_lane", self.pocket_capacity_vph_per_lane, strict=True)
        net.add_link(pocket, lk.from_node, lk.to_node, length_m=lk.length_m, lanes=int(k),
                     free_speed_kmh=lk.free_speed_kmh, capacity_vph_per_lane=pocket_cap,
                     jam_density_vpkm_per_lane=lk.jam_density_vpkm_per_lane, name=f"{lk.name or lk.id} (dedicated lane)")
        if self.through_capacity_vph_per_lane is not None:
            net.update_link(part, capacity_vph_per_lane=finite(owner, "through_capacity_vph_per_lane",
                                                               self.through_capacity_vph_per_lane, strict=True))
        deltas = []
        for s, e in wins:
            deltas += [(s, -int(k)), (e, 0)]
        add_lane_delta(net, part, [(t, d) for t, d in deltas if t < sc.duration_s], owner=owner)
        for (a, b) in list(net.banned_turns):
            if a == part:
                net.ban_turn(pocket, b)
        # the pocket serves only the dedicated movement; the through link keeps the other ones
        for o in net.out_links(lk.to_node):
            if o.id != self.turn_to:
                net.ban_turn(pocket, o.id)
        # at a signal the pocket's movement is the dedicated one: it has the same green (without
        # it no engine could run the variant: the pocket's movement had green in no phase)
        mv = (part, self.turn_to)
        for i, c in enumerate(sc.controls):
            if isinstance(c, FixedTimeSignal) and c.node == lk.to_node:
                c = c.validate(net)
                sc.controls[i] = replace(c, phases=tuple(
                    replace(p, movements=p.movements + ((pocket, self.turn_to),)) if mv in p.movements else p
                    for p in c.phases))
        # split each turning flow into its in-window part (via the pocket) and the rest
        resolved = sc.demand.resolve_routes(net)
        flows = []
        for f, routes in zip(sc.demand.flows, resolved):
            turning = any(_turns(path, part, self.turn_to) for path, _ in routes)
            if not turning:
                flows.append(f)
                continue
            inside = _mask_profile(f.profile, wins, inside=True)
            outside = _mask_profile(f.profile, wins, inside=False)
            pocket_routes = tuple((_via_pocket(path, part, self.turn_to, pocket), share) for path, share in routes)
            if outside:
                flows.append(replace(f, profile=outside, routes=tuple((tuple(p), s) for p, s in routes)))
            if inside:
                flows.append(replace(f, profile=inside, routes=pocket_routes,
                                     name=f"{f.label()} (dedicated lane)"))
        sc.demand.flows[:] = flows

    def describe(self) -> str:
        """One line for tables and plots: the lanes given to one movement, the link and the windows."""
        w = ", ".join(f"{a:g}-{b:g} s" for a, b in self.windows)
        return f"VariableLane: {self.lanes} lane(s) of {self.link!r} serve only the movement to {self.turn_to!r} during {w}"


def _turns(path, link: str, turn_to: str) -> bool:
    return any(a == link and b == turn_to for a, b in zip(path[:-1], path[1:]))


def _via_pocket(path, link: str, turn_to: str, pocket: str) -> tuple[str, ...]:
    out = list(path)
    for i in range(len(out) - 1):
        if out[i] == link and out[i + 1] == turn_to:
            out[i] = pocket
    return tuple(out)


def _mask_profile(profile, windows, *, inside: bool) -> tuple[tuple[float, float], ...]:
    """The profile kept only inside (or only outside) the windows; () when it is all zero."""
    times = sorted({s for s, _ in profile} | {t for w in windows for t in w if t != float("inf")} | {0.0})

    def rate(t):
        q = 0.0
        for s, v in profile:
            if s <= t:
                q = v
        return q

    out = []
    for t in times:
        in_w = any(a <= t < b for a, b in windows)
        q = rate(t) if in_w == inside else 0.0
        if not out or out[-1][1] != q:
            out.append((t, q))
    if all(q == 0.0 for _, q in out):
        return ()
    return tuple(out)


@dataclass(frozen=True)
class Widening(Measure):
    """More lanes on links (a wider deck, an extra approach lane, more toll booths).

    Parameters
    ----------
    links : tuple of str
        Links to widen; a link a measure cut in parts (``meta["split_links"]``, e.g. a ramp that
        :class:`~trafficsim.measures.RampMetering` metered) is widened in all its parts.
    add_lanes : int
        Lanes added to each, >= 1 (also to every lane-schedule entry).
    label : str
        Name of the variant in reports.
    """

    links: tuple = ()
    add_lanes: int = 1
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        if isinstance(self.links, str):
            raise self.error("links", "must be a sequence of link ids, got a string")
        if not self.links:
            raise self.error("links", "empty")
        if isinstance(self.add_lanes, bool) or int(self.add_lanes) != self.add_lanes or self.add_lanes < 1:
            raise self.error("add_lanes", f"must be a whole number >= 1, got {self.add_lanes!r}")
        for lid in self.links:
            self.need_link(sc, "links", lid)
        # a road an earlier measure cut in parts is widened to its end (both parts, once each)
        for lid in sc.link_parts(self.links):
            add_lane_delta(sc.network, lid, [(0.0, int(self.add_lanes))], owner=type(self).__name__)

    def describe(self) -> str:
        """One line for tables and plots: the lanes added and the links that get them."""
        return f"Widening: +{self.add_lanes} lane(s) on {', '.join(self.links)}"
