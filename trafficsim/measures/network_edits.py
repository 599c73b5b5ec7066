"""Network edits: one-way loops (micro-circulation) and new links, with re-routing.

Both change which paths exist, so demand is re-routed on the changed network: explicit routes
that are no longer valid (or that a new link could shorten, when ``reroute`` is true) are
dropped and the flows take the free-flow shortest path (Dijkstra over links, so turn bans hold).
``meta["assignment"] = "msa"`` asks :func:`trafficsim.evaluate` for the iterative dynamic
assignment of :mod:`trafficsim.assignment` instead (drivers adapt to congestion). Every OD pair
must stay reachable; otherwise the error names the OD that is cut.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..control import FixedTimeSignal, PriorityJunction
from ..scenario import Scenario
from ._base import Measure, check_reachable, finite, opposite_roads, reroute_flows

__all__ = ["OneWayLoop", "NewLink"]


@dataclass(frozen=True)
class OneWayLoop(Measure):
    """Two-way streets become one-way couplets.

    Parameters
    ----------
    keep : tuple of str
        For each street, the link whose direction stays; its opposite link is removed. A road a
        measure cut in parts (``meta["split_links"]``, e.g. a ramp that
        :class:`~trafficsim.measures.RampMetering` metered) is one direction of a street as a
        whole: naming it or any of its parts keeps (and widens) every part, and an opposite road
        cut in parts is removed in all its parts, with the nodes between them.
    widen : bool
        Give the kept direction the removed direction's lanes (a one-way street uses the whole
        carriageway).
    assignment : str
        ``"free-flow"`` (shortest paths on the changed network) or ``"msa"`` (ask evaluate for
        the dynamic assignment).
    label : str
        Name of the variant in reports.
    """

    keep: tuple = ()
    widen: bool = True
    assignment: str = "free-flow"
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        if isinstance(self.keep, str) or not self.keep:
            raise self.error("keep", "must be a non-empty sequence of link ids")
        if self.assignment not in ("free-flow", "msa"):
            raise self.error("assignment", f"must be 'free-flow' or 'msa', got {self.assignment!r}")
        net = sc.network
        opposite: dict[str, str] = {}     # kept road -> removed road, each by the id naming it whole
        for lid in self.keep:
            self.need_link(sc, "keep", lid)
            road = sc.road_of(lid)
            opp = opposite_roads(sc, road)
            if not opp:
                raise self.error("keep", f"link {lid!r} has no opposite link: the street is already one-way")
            if opp[0] in {sc.road_of(k) for k in self.keep}:
                raise self.error("keep", f"links {lid!r} and {opp[0]!r} are the two directions of one street; keep one")
            opposite[road] = opp[0]
        removed = set()
        for road, opp in opposite.items():
            opp_parts = sc.link_parts([opp])
            if self.widen:
                # the carriageway is as wide as the removed direction's narrowest part
                add = min(net.links[p].lanes for p in opp_parts)
                for part in sc.link_parts([road]):
                    lk = net.links[part]
                    net.update_link(part, lanes=lk.lanes + add,
                                    lane_schedule=[(t, n + add) for t, n in lk.lane_schedule])
            removed.update(opp_parts)
        for c in sc.controls:
            if getattr(c, "link", None) in removed:
                raise self.error("keep", f"a {type(c).__name__} stands on link {c.link!r}, which the loop removes")
        split = sc.meta.get("split_links", {})
        cut = [opp for opp in dict.fromkeys(opposite.values()) if opp in split]
        # the nodes between the parts of a removed road (a part cut again included) belonged to it alone
        inner = {net.links[p].to_node for opp in cut for p in sc.link_parts([opp])[:-1]}
        for lid in sorted(removed):
            net.remove_link(lid)
        # a priority junction's major road loses a removed approach (none left: its default); a
        # signal's phases lose the movements from or onto a removed link (the times stay)
        for i, c in enumerate(sc.controls):
            if isinstance(c, PriorityJunction):
                sc.controls[i] = replace(c, major=tuple(a for a in c.major if a not in removed))
            elif isinstance(c, FixedTimeSignal):
                sc.controls[i] = replace(c, phases=tuple(
                    replace(p, movements=tuple(mv for mv in p.movements if not set(mv) & removed))
                    for p in c.phases))
        used = {n for lk in net.links.values() for n in (lk.from_node, lk.to_node)}
        for node in inner - used:
            del net.nodes[node]
        if cut:
            left = {k: v for k, v in split.items() if k not in removed}
            if left:
                sc.meta["split_links"] = left
            else:
                del sc.meta["split_links"]
        reroute_flows(sc, removed)
        check_reachable(sc, type(self).__name__)
        sc.meta["assignment"] = self.assignment
        sc.meta["one_way_removed"] = sorted(removed)

    def describe(self) -> str:
        """One line for tables and plots: how many streets become one-way, and whether at full width."""
        return f"OneWayLoop: {len(self.keep)} street(s) made one-way{' (full width)' if self.widen else ''}, demand re-routed"


@dataclass(frozen=True)
class NewLink(Measure):
    """A missing link or a new crossing, with re-routing.

    Parameters
    ----------
    id, from_node, to_node : str
        The new link; both nodes must exist (or be listed in ``new_nodes``).
    length_m : float
        Length [m].
    lanes : int
        Lanes.
    free_speed_kmh, capacity_vph_per_lane, jam_density_vpkm_per_lane : float
        Fundamental diagram [km/h, veh/h/lane, veh/km/lane] (urban arterial by default).
    new_nodes : tuple of (str, float, float)
        Nodes to add first: ``(id, x_m, y_m)``.
    reroute : bool
        Drop every explicit route so all flows take the free-flow shortest path on the new
        network (otherwise only routes made invalid are dropped).
    assignment : str
        ``"free-flow"`` or ``"msa"`` (see :mod:`trafficsim.assignment`).
    street_name, label : str
        Street name; variant name in reports.
    """

    id: str = ""
    from_node: str = ""
    to_node: str = ""
    length_m: float = 0.0
    lanes: int = 2
    free_speed_kmh: float = 50.0
    capacity_vph_per_lane: float = 1800.0
    jam_density_vpkm_per_lane: float = 150.0
    new_nodes: tuple = ()
    reroute: bool = True
    assignment: str = "free-flow"
    street_name: str = ""
    label: str = ""

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        if not self.id:
            raise self.error("id", "the new link needs an id")
        if self.id in sc.network.links:
            raise self.error("id", f"link {self.id!r} already exists")
        if self.assignment not in ("free-flow", "msa"):
            raise self.error("assignment", f"must be 'free-flow' or 'msa', got {self.assignment!r}")
        for nid, x, y in self.new_nodes:
            sc.network.add_node(nid, x, y)
        for field in ("from_node", "to_node"):
            if getattr(self, field) not in sc.network.nodes:
                raise self.error(field, f"node {getattr(self, field)!r} is not in the network (list it in new_nodes)")
        sc.network.add_link(self.id, self.from_node, self.to_node, length_m=finite(owner, "length_m", self.length_m, strict=True),
                            lanes=self.lanes, free_speed_kmh=self.free_speed_kmh,
                            capacity_vph_per_lane=self.capacity_vph_per_lane,
                            jam_density_vpkm_per_lane=self.jam_density_vpkm_per_lane, name=self.street_name)
        if self.reroute:
            reroute_flows(sc, set(sc.network.links))
        check_reachable(sc, owner)
        sc.meta["assignment"] = self.assignment

    def describe(self) -> str:
        """One line for tables and plots: the new link's ends, length, lanes and re-routing method."""
        return (f"NewLink: {self.street_name or self.id} {self.from_node!r} -> {self.to_node!r}, {self.length_m:g} m, "
                f"{self.lanes} lane(s); demand re-routed ({self.assignment})")
