"""Dynamic route choice in the macro run loop: instantaneous route costs from the CTM state.

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

from ..routing import MAX_COST_S, V_MIN_MPS, DynamicRouting, update_shares
from ._common import step_index

__all__ = ["MacroRouteChoice"]


class MacroRouteChoice:
    """Re-splits departures among each flow's routes every ``update_s`` (None from :meth:`build`
    when no flow has two routes, so the run is exactly the fixed-route one)."""

    def __init__(self, compiled, params: DynamicRouting, multi: np.ndarray):
        c = compiled
        net = c.net
        self.c = c
        self.params = params
        self.dt = c.dt
        cl = c.cell_link
        self.cell_link = cl
        self.cell_off = np.asarray(net.cell_off[:-1], dtype=np.int64)
        self.alpha = net.alpha[cl]
        self.beta = net.beta[cl]
        self.qstep_lane = net.qstep_lane[cl]
        self.njam_lane = net.njam_lane[cl]
        self.dx = net.dx[cl]
        lidx = {lid: i for i, lid in enumerate(c.link_ids)}
        # routes of multi-route flows: their links (flat) and their origin source
        self.multi = multi
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
        flow = np.asarray(c.routes.flow, dtype=np.int64)[multi]
        self.group_start = np.flatnonzero(np.diff(flow, prepend=-1)).astype(np.int64)
        n_steps = c.n_steps
        n_updates = int(math.ceil(c.scenario.duration_s / params.update_s - 1e-9))
        self.update_steps = sorted({step_index(j * params.update_s, c.dt) for j in range(n_updates)} - {n_steps})
        self._updates = set(self.update_steps)
        self.log_t: list[float] = []
        self.log_share: list[np.ndarray] = []

    @classmethod
    def build(cls, compiled, params: DynamicRouting | None) -> "MacroRouteChoice | None":
        """The route chooser of a compiled scenario, or None (fixed routes, or one route per flow)."""
        if params is None:
            return None
        flow = np.asarray(compiled.routes.flow, dtype=np.int64)
        counts = np.bincount(flow, minlength=len(compiled.scenario.demand.flows)) if flow.size else np.zeros(0, int)
        multi = np.flatnonzero(counts[flow] > 1) if flow.size else np.zeros(0, np.int64)
        return cls(compiled, params, multi) if multi.size else None

    def cut_steps(self) -> set[int]:
        """Steps at which the kernel must stop so that shares can change."""
        return set(self.update_steps)

    def link_times_s(self, st, lanes: np.ndarray) -> np.ndarray:
        """Instantaneous travel time [s] of every link from the cell counts and lanes in force."""
        n = st.n
        ln = lanes[self.cell_link]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_step = np.minimum(self.alpha * n, np.minimum(self.qstep_lane * ln, self.beta * (self.njam_lane * ln - n)))
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
        """Before the chunk starting at step ``k``: at an update, re-split and rewrite source rates."""
        if k not in self._updates:
            return
        c = self.c
        share = c.route_share[self.multi]
        weight = 1.0 if not self.log_t else self.params.smoothing
        update_shares(share, self.route_costs_s(st, ctl.lanes), self.group_start, weight, self.params.logit_s)
        c.route_share[self.multi] = share
        t = k * self.dt
        ctl.src_rate[:] = c.source_rates(t)
        self.log_t.append(t)
        self.log_share.append(c.route_share.copy())

    def log(self) -> dict[str, np.ndarray]:
        """Update times [s] and the shares of every route after each update (time x route)."""
        return {"time_s": np.array(self.log_t), "share": np.array(self.log_share),
                "route": np.array(self.c.routes.label, dtype=object)}
