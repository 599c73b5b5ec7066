"""Dynamic route choice in the run loops: instantaneous route costs from the engine's state.

The run loop cuts its kernel chunks at every update step (:meth:`MacroRouteChoice.cut_steps`)
and calls :meth:`MacroRouteChoice.step` before each chunk; at an update it estimates every
route's travel time from the cell counts of that moment, re-splits each multi-route flow's
departures (:func:`trafficsim.routing.update_shares`) and rewrites the chunk's source rates.
Vehicles already in the network or in an origin queue keep their route (their commodity).

Speed of a cell from its count ``n`` under the triangular fundamental diagram (lanes in force)::

    v = dx/dt * min(alpha, Q dt / n, beta (N_jam - n) / n),   v = v_f when n = 0,  v = 0 when lanes = 0

and the route cost is ``sum dx / max(v, V_MIN)`` over its cells plus the origin-queue wait of
its first link (queued vehicles / capacity of that link).
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.ctm import resplit_packets
from ..kernels.micro_base import F_COMMITTED, P_FREEDIST
from ..routing import MAX_COST_S, V_MIN_MPS, DynamicRouting, update_shares
from ._common import step_index

__all__ = ["MacroRouteChoice", "MicroRouteChoice"]


class _RouteChoice:
    """What both engines share: the multi-route flows, the update steps, the share update and
    its log. Subclasses give :meth:`route_costs_s` from their state."""

    def __init__(self, compiled, params: DynamicRouting, multi: np.ndarray):
        c = compiled
        self.c = c
        self.params = params
        self.dt = c.dt
        # routes of multi-route flows (the only ones whose split can change)
        self.multi = multi
        flow = np.asarray(c.routes.flow, dtype=np.int64)[multi]
        self.group_start = np.flatnonzero(np.diff(flow, prepend=-1)).astype(np.int64)
        n_updates = int(math.ceil(c.scenario.duration_s / params.update_s - 1e-9))
        self.update_steps = sorted({step_index(j * params.update_s, c.dt) for j in range(n_updates)} - {c.n_steps})
        self._updates = set(self.update_steps)
        self.log_t: list[float] = []
        self.log_share: list[np.ndarray] = []

    @classmethod
    def build(cls, compiled, params: DynamicRouting | None):
        """The route chooser of a compiled scenario, or None (fixed routes, or one route per flow)."""
        if params is None:
            return None
        flow = np.asarray(compiled.routes.flow, dtype=np.int64)
        if not flow.size:
            return None
        counts = np.bincount(flow, minlength=len(compiled.scenario.demand.flows))
        multi = np.flatnonzero(counts[flow] > 1)
        return cls(compiled, params, multi) if multi.size else None

    def cut_steps(self) -> set[int]:
        """Steps at which the kernel must stop so that shares can change."""
        return set(self.update_steps)

    def route_costs_s(self, st, lanes: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def update(self, k: int, st, lanes: np.ndarray) -> bool:
        """At an update step ``k``: re-split ``compiled.route_share``; False between updates."""
        if k not in self._updates:
            return False
        c = self.c
        share = c.route_share[self.multi]
        weight = 1.0 if not self.log_t else self.params.smoothing
        update_shares(share, self.route_costs_s(st, lanes), self.group_start, weight, self.params.logit_s)
        c.route_share[self.multi] = share
        self.log_t.append(k * self.dt)
        self.log_share.append(c.route_share.copy())
        return True

    def _en_route_now(self) -> bool:
        """After an update: whether the vehicles on their way re-choose now (en-route choice, at
        every update but the first, when the network is still empty)."""
        return self.params.en_route and len(self.log_t) > 1

    def _pairs(self, multi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every (route, link) pair of ``route_links`` (the multi-route flows' routes): its
        route, its place on the route, and the index of the route's last pair."""
        sizes = np.diff(np.append(self.route_off, self.route_links.shape[0]))
        m = np.repeat(np.arange(multi.shape[0]), sizes)
        return multi[m], np.arange(self.route_links.shape[0]) - self.route_off[m], (self.route_off + sizes - 1)[m]

    def _en_route_groups(self, multi: np.ndarray, pair_slot: np.ndarray) -> None:
        """The groups of en-route choice, from the engine's slot of every pair of ``route_links``:
        for every link and multi-route flow with two or more routes through the link, the routes'
        slots on it (``er_slot``, group offsets ``er_off``, starts ``er_start``, links
        ``er_link``), and each entry's pair and its route's last pair (``er_pair``, ``er_end``,
        for the remaining cost)."""
        pair_route, _, last = self._pairs(multi)
        flow = np.asarray(self.c.routes.flow, dtype=np.int64)[pair_route]
        group = self.route_links * (int(flow.max()) + 1) + flow
        order = np.lexsort((pair_slot, group))
        start = np.flatnonzero(np.diff(group[order], prepend=-1))
        keep = np.repeat(np.diff(np.append(start, order.shape[0])) > 1, np.diff(np.append(start, order.shape[0])))
        order = order[keep]
        group = group[order]
        start = np.flatnonzero(np.diff(group, prepend=-1)).astype(np.int64)
        self.er_pair = order
        self.er_slot = np.asarray(pair_slot, dtype=np.int64)[order]
        self.er_start = start
        self.er_off = np.append(start, order.shape[0]).astype(np.int64)
        self.er_link = self.route_links[order][start].astype(np.int64)
        self.er_end = last[order]

    def _en_route_targets(self, link_tt: np.ndarray) -> np.ndarray:
        """The target split of every en-route group's routes by their remaining cost (the links
        after the group's link; ``link_tt`` [s] per link): all to the cheapest, or logit."""
        cum = np.cumsum(link_tt[self.route_links])
        remaining = cum[self.er_end] - cum[self.er_pair]
        return update_shares(np.zeros(remaining.shape[0]), remaining, self.er_start, 1.0, self.params.logit_s)

    def log(self) -> dict[str, np.ndarray]:
        """Update times [s] and the shares of every route after each update (time x route)."""
        return {"time_s": np.array(self.log_t), "share": np.array(self.log_share),
                "route": np.array(self.c.routes.label[:len(self.c.route_share)], dtype=object)}


class MacroRouteChoice(_RouteChoice):
    """Dynamic route choice on the CTM state (cell counts)."""

    def __init__(self, compiled, params: DynamicRouting, multi: np.ndarray):
        super().__init__(compiled, params, multi)
        c = compiled
        net = c.net
        cl = c.cell_link
        self.cell_link = cl
        self.cell_off = np.asarray(net.cell_off[:-1], dtype=np.int64)
        self.alpha = net.alpha[cl]
        self.beta = net.beta[cl]
        self.qstep_lane = net.qstep_lane[cl]
        self.njam_lane = net.njam_lane[cl]
        self.dx = net.dx[cl]
        lidx = {lid: i for i, lid in enumerate(c.link_ids)}
        paths = [c.routes.links[r] for r in multi]
        self.route_links = np.array([lidx[l] for p in paths for l in p], dtype=np.int64)
        self.route_off = np.concatenate([[0], np.cumsum([len(p) for p in paths])[:-1]]).astype(np.int64)
        first_src = int(net.slot_off[-1])
        route_src = np.full(len(c.routes), -1, dtype=np.int64)
        for s in range(len(net.src_link)):
            for g in range(int(net.src_slot_off[s]), int(net.src_slot_off[s + 1])):
                route_src[int(net.slot_route[g])] = s
        self.route_src = route_src[multi]
        self.src_starts = np.asarray(net.src_slot_off[:-1], dtype=np.int64) - first_src
        self.first_src = first_src
        if params.en_route:
            self._build_en_route(multi)

    def _build_en_route(self, multi: np.ndarray) -> None:
        """En-route groups (:meth:`_RouteChoice._en_route_groups`) with the CTM's slot of each
        (route, link) pair: slots are sorted by link, output and route, so looked up by key."""
        c = self.c
        net = c.net
        L = len(c.link_ids)
        n_pairs = int(net.slot_off[-1])
        slot_link = np.repeat(np.arange(L, dtype=np.int64), np.diff(np.asarray(net.slot_off, dtype=np.int64)))
        slot_route = np.asarray(net.slot_route, dtype=np.int64)[:n_pairs]
        # a route passes a link once, so (route, link) names one slot
        slot_key = slot_route * L + slot_link
        by_key = np.argsort(slot_key, kind="stable")
        pair_route, _, _ = self._pairs(multi)
        self._en_route_groups(multi, by_key[np.searchsorted(slot_key, pair_route * L + self.route_links, sorter=by_key)])
        self.er_links = np.unique(self.er_link)

    def resplit_en_route(self, st, lanes: np.ndarray) -> None:
        """Re-split the vehicles on their way among the routes through their link (en-route
        choice), by the remaining cost of each route from the link's end."""
        if not self.er_slot.shape[0]:
            return
        target = self._en_route_targets(self.link_times_s(st, lanes))
        resplit_packets(self.c.net, st, self.er_link, self.er_off, self.er_slot, target, self.params.smoothing,
                        self.er_links)

    def link_times_s(self, st, lanes: np.ndarray) -> np.ndarray:
        """Instantaneous travel time [s] of every link from the cell counts and lanes in force."""
        n = st.n
        ln = lanes[self.cell_link]
        with np.errstate(divide="ignore", invalid="ignore"):
            sending = np.minimum(self.alpha * n, self.qstep_lane * ln)
            per_step = np.minimum(sending, self.beta * (self.njam_lane * ln - n))
            frac = np.where(n > 1e-9, np.maximum(per_step, 0.0) / n, self.alpha)
        v = np.where(ln > 0, frac * self.dx / self.dt, 0.0)
        return np.add.reduceat(self.dx / np.maximum(v, V_MIN_MPS), self.cell_off)

    def route_costs_s(self, st, lanes: np.ndarray) -> np.ndarray:
        """Instantaneous cost [s] of every route of a multi-route flow (links + origin wait)."""
        link_tt = self.link_times_s(st, lanes)
        cost = np.add.reduceat(link_tt[self.route_links], self.route_off)
        net = self.c.net
        src_queue = np.add.reduceat(st.queue[self.first_src:], self.src_starts)
        cap_vps = net.qstep_lane[net.src_link] * lanes[net.src_link] / self.dt
        with np.errstate(divide="ignore", invalid="ignore"):
            wait = np.where(src_queue > 1e-9, src_queue / cap_vps, 0.0)
        return np.minimum(cost + np.minimum(wait[self.route_src], MAX_COST_S), MAX_COST_S)

    def step(self, k: int, st, ctl) -> None:
        """Before the chunk starting at step ``k``: at an update, re-split and rewrite source
        rates; with en-route choice, after the first update, also re-split the vehicles on their way."""
        if self.update(k, st, ctl.lanes):
            ctl.src_rate[:] = self.c.source_rates(k * self.dt)
            if self._en_route_now():
                self.resplit_en_route(st, ctl.lanes)


class MicroRouteChoice(_RouteChoice):
    """Dynamic route choice on the micro state: a link's speed is the mean speed of the vehicles
    on it (free speed when empty, as UXsim's instantaneous travel time), 0 when it has no lane."""

    def __init__(self, compiled, params: DynamicRouting, multi: np.ndarray):
        super().__init__(compiled, params, multi)
        c = compiled
        mn = c.net
        net = c.scenario.network
        self.length = np.array([net.links[lid].length_m for lid in c.link_ids])
        self.free_time = np.array([net.links[lid].free_flow_time_s for lid in c.link_ids])
        self.cap_vps = np.array([net.links[lid].capacity_vph_per_lane / 3600.0 for lid in c.link_ids])
        lidx = {lid: i for i, lid in enumerate(c.link_ids)}
        paths = [c.route_links[r] for r in multi]
        self.route_links = np.array([lidx[l] for p in paths for l in p], dtype=np.int64)
        self.route_off = np.concatenate([[0], np.cumsum([len(p) for p in paths])[:-1]]).astype(np.int64)
        self.route_src = np.asarray(mn.route_src, dtype=np.int64)[multi]
        self.src_link = np.asarray(mn.src_link, dtype=np.int64)
        self.blockings = c.blockings
        #: random stream of the en-route draws (set by the stepper from its seed)
        self.rng = np.random.default_rng(0)
        if params.en_route:
            # a micro slot is (route, position): the pair's slot is its route's first slot + its place
            pair_route, place, _ = self._pairs(multi)
            self._en_route_groups(multi, np.asarray(mn.route_off, dtype=np.int64)[pair_route] + place)
            self.er_of_slot = np.full(int(mn.slot_link.shape[0]), -1, dtype=np.int64)
            self.er_of_slot[self.er_slot] = np.arange(self.er_slot.shape[0])
            self.er_group = np.repeat(np.arange(self.er_start.shape[0]), np.diff(self.er_off))
            # how far before its link's end a vehicle may still re-choose: free_distance_m, or half
            # the link where that is shorter (a 200 m street would otherwise never allow it)
            link_len = np.asarray(c.net.link_len, dtype=np.float64)
            self.rechoose_m = np.minimum(float(c.net.par[P_FREEDIST]), 0.5 * link_len)

    def lanes_at(self, t_s: float) -> np.ndarray:
        """Lanes in force per link at ``t_s`` [s]: the schedule minus blocked lanes."""
        net = self.c.scenario.network
        lanes = np.array([float(net.links[lid].lanes_at(t_s)) for lid in self.c.link_ids])
        idx = {lid: i for i, lid in enumerate(self.c.link_ids)}
        for b in self.blockings:
            if b.start_s <= t_s < b.end_s:
                lanes[idx[b.link]] = max(0.0, lanes[idx[b.link]] - b.lanes)
        return lanes

    def step(self, k: int, st) -> None:
        """Before the chunk starting at step ``k`` (and before its arrivals are drawn): at an
        update, re-split ``compiled.route_share``; with en-route choice, after the first update,
        also let the vehicles on their way re-choose (:meth:`rechoose_en_route`)."""
        if k in self._updates:
            lanes = self.lanes_at(k * self.dt)
            self.update(k, st, lanes)
            if self._en_route_now():
                self.rechoose_en_route(st, lanes)

    def _active(self, st) -> np.ndarray:
        """Pool slots holding a vehicle in the network."""
        active = np.ones(st.x.shape[0], dtype=bool)
        active[st.free[:int(st.n_free[0])]] = False
        return active & (st.slot >= 0)

    def link_times_s(self, st, lanes: np.ndarray) -> np.ndarray:
        """Instantaneous travel time [s] of every link: length / mean speed of its vehicles (free
        speed when empty, ``V_MIN`` floor; ``length / V_MIN`` without a lane)."""
        L = self.length.shape[0]
        active = self._active(st)
        link = np.asarray(self.c.net.slot_link, dtype=np.int64)[st.slot[active]]
        count = np.bincount(link, minlength=L)
        vsum = np.bincount(link, weights=st.v[active], minlength=L)
        with np.errstate(divide="ignore", invalid="ignore"):
            tt = np.where(count > 0, self.length / np.maximum(vsum / np.maximum(count, 1), V_MIN_MPS), self.free_time)
        return np.where(lanes > 0, tt, self.length / V_MIN_MPS)

    def rechoose_en_route(self, st, lanes: np.ndarray) -> None:
        """En-route choice: each vehicle on a link where its flow has two or more routes, at
        least ``free_distance_m`` (or half the link, if shorter) from the link's end (nearer, it
        is already sorting into its route's lanes) and not committed to its movement at the node,
        re-chooses with probability ``route_smoothing``, drawing its route from the target split
        of the remaining costs: the discrete counterpart of the macro engine's re-split."""
        if not self.er_slot.shape[0]:
            return
        target = self._en_route_targets(self.link_times_s(st, lanes))
        veh = np.flatnonzero(self._active(st))
        entry = self.er_of_slot[st.slot[veh]]
        link_len = np.asarray(self.c.net.link_len)
        ok = (entry >= 0) & ((st.flags[veh] & F_COMMITTED) == 0)
        veh, entry = veh[ok], entry[ok]
        link = self.er_link[self.er_group[entry]]
        ok = link_len[link] - st.x[veh] >= self.rechoose_m[link]
        veh, entry = veh[ok], entry[ok]
        if not veh.shape[0]:
            return
        u = self.rng.random((2, veh.shape[0]))
        moves = u[0] < self.params.smoothing
        veh, entry, pick = veh[moves], entry[moves], u[1][moves]
        g = self.er_group[entry]
        cum = np.cumsum(target)
        below = np.where(self.er_off[g] > 0, cum[np.maximum(self.er_off[g] - 1, 0)], 0.0)
        new = np.searchsorted(cum, below + pick * (cum[self.er_off[g + 1] - 1] - below), side="right")
        new = np.minimum(np.maximum(new, self.er_off[g]), self.er_off[g + 1] - 1)
        st.slot[veh] = self.er_slot[new]

    def route_costs_s(self, st, lanes: np.ndarray) -> np.ndarray:
        """Instantaneous cost [s] of every route of a multi-route flow (links + origin wait)."""
        tt = self.link_times_s(st, lanes)
        cost = np.add.reduceat(tt[self.route_links], self.route_off)
        cap = self.cap_vps[self.src_link] * lanes[self.src_link]
        with np.errstate(divide="ignore", invalid="ignore"):
            wait = np.where(st.q_len > 0, st.q_len / cap, 0.0)
        return np.minimum(cost + np.minimum(wait[self.route_src], MAX_COST_S), MAX_COST_S)
