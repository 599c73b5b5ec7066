"""Dynamic route choice: candidate routes per OD flow and how departures split among them.

With ``route_choice="dynamic"`` (an option of :func:`trafficsim.simulate`, macro and micro
engines) every OD flow gets a small *choice set* of routes when the scenario is compiled, and
the engine re-splits each flow's **new departures** among them every ``route_update_s`` from
the *instantaneous* route travel times of that moment. Vehicles already on their way (or
waiting in an origin queue) keep the route they chose: this is dynamic user optimum (DUO) route
choice at departure, the reactive assignment of UXsim's ``homogeneous_DUO`` (Seo 2023) except
that UXsim's vehicles may also change their next link at every node.

Choice set of a flow
    Its explicit routes, if it has any; otherwise up to ``route_candidates`` distinct paths from
    the link-penalty method: the free-flow shortest path, then the shortest paths with the
    free-flow time of every link used by an earlier path *from the same origin* multiplied by
    ``1 + OVERLAP_PENALTY x uses`` (one shortest-path tree per origin and candidate, by a
    Bellman-Ford over turns vectorised over origins; turn bans respected, the same paths and
    tie-break as ``Network.shortest_paths_from``).

Update at ``t = 0, u, 2u, ...`` (``u = route_update_s``)::

    c_r      = sum over the links of r of  sum_cells dx / max(v_c, V_MIN)  +  W_s(r)
    target_r = 1 / |argmin_r' c_r'|  if r is a cheapest route (ties within TIE_S), else 0   (theta = 0)
    target_r = exp(-(c_r - c_min) / theta) / sum_r' exp(-(c_r' - c_min) / theta)            (theta > 0)
    p_r     <- (1 - w) p_r + w target_r        (w = route_smoothing; w = 1 at t = 0)

``v_c`` is the speed of the engine's current state (macro: the cell's triangular fundamental
diagram, ``q(k) / k``; micro: the mean speed of the vehicles on the link, free speed when
empty), ``W_s(r)`` the wait in the origin queue of the route's first link (queued vehicles /
that link's capacity), ``theta = route_logit_s``. With ``w = 0.5`` and ``theta = 0`` this is
UXsim's DUO update with its default weight; ``theta > 0`` gives a logit split that spreads
flow over near-equal routes. A flow with a single route keeps it: ``route_choice="dynamic"``
on a scenario whose flows each have one route gives exactly the fixed-route result.

En-route choice (``route_choice="en-route"``)
    Everything above, and at every update after the first the vehicles of each flow on each
    link re-split among the flow's candidate routes that pass that link, by the same rule with
    the *remaining* cost (the links after the current one)::

        a_r  <- (1 - w) a_r + w target_r  sum_r' a_r'      (r, r' the flow's routes through the link)

    packet by packet on the macro engine, so the vehicles keep their place in the link's FIFO;
    on the micro engine each vehicle at least ``free_distance_m`` (or half its link) before its
    link's end and not committed at the node re-chooses with probability ``w``, drawing from
    the target split. This is UXsim's DUO with the choice restricted to the candidate routes
    (UXsim's vehicles re-choose their next link at every node among all paths). Vehicles in an
    origin queue keep their route. A vehicle's arrival counts under the route it arrives on
    (``route_arrived``), its departure under the route it departed on (``route_departed``).

This module is core: plain Python and numpy, no engine imports; the engines call it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .network import Network, allowed_turns

__all__ = [
    "DynamicRouting", "candidate_routes", "update_shares", "OVERLAP_PENALTY", "V_MIN_MPS", "TIE_S",
    "MAX_COST_S", "ROUTE_CHOICES",
]

#: Route choice models known to the engines: ``"fixed"`` (the flows' routes and shares as given),
#: ``"dynamic"`` (departures re-split at every update) and ``"en-route"`` (as ``"dynamic"``, and
#: at every update the vehicles on their way re-choose too).
ROUTE_CHOICES = ("fixed", "dynamic", "en-route")
#: Cost factor per earlier use of a link when generating candidate routes (link-penalty method).
OVERLAP_PENALTY = 1.0
#: Speed floor [m/s] (1 km/h) of the travel-time estimate, so a jammed link costs a lot, not inf.
V_MIN_MPS = 1.0 / 3.6
#: Route costs within this many seconds of the cheapest count as tied (all-to-best splits evenly).
TIE_S = 1e-6
#: Cap [s] of any route cost (a closed link or an origin queue behind zero capacity).
MAX_COST_S = 1e7


@dataclass(frozen=True)
class DynamicRouting:
    """Validated parameters of dynamic route choice (see the module docstring).

    Parameters
    ----------
    update_s : float
        Interval between share updates [s].
    candidates : int
        Largest number of generated routes per flow (flows with explicit routes use those).
    smoothing : float
        Weight ``w`` in (0, 1] of the new target split at each update.
    logit_s : float
        Logit scale ``theta`` [s]; 0 sends each update's share to the cheapest route(s).
    en_route : bool
        Vehicles on their way re-choose too (``route_choice="en-route"``).
    """

    update_s: float = 300.0
    candidates: int = 5
    smoothing: float = 0.5
    logit_s: float = 0.0
    en_route: bool = False

    @classmethod
    def from_options(cls, route_choice: str = "fixed", update_s=None, candidates=None, smoothing=None,
                     logit_s=None) -> "DynamicRouting | None":
        """Check the engine options; None for fixed routes, else the parameters.

        Raises :class:`ValueError` naming the option when one is out of range or given for
        ``route_choice="fixed"``.
        """
        if route_choice not in ROUTE_CHOICES:
            raise ValueError(f"route_choice must be one of {ROUTE_CHOICES}, got {route_choice!r}")
        given = {"route_update_s": update_s, "route_candidates": candidates, "route_smoothing": smoothing,
                 "route_logit_s": logit_s}
        if route_choice == "fixed":
            extra = [k for k, v in given.items() if v is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply with route_choice='dynamic' (route_choice='fixed')")
            return None
        d = cls()
        update_s = d.update_s if update_s is None else update_s
        candidates = d.candidates if candidates is None else candidates
        smoothing = d.smoothing if smoothing is None else smoothing
        logit_s = d.logit_s if logit_s is None else logit_s
        if not (_is_number(update_s) and math.isfinite(update_s) and update_s > 0):
            raise ValueError(f"route_update_s must be a finite number > 0 [s], got {update_s!r}")
        if isinstance(candidates, bool) or not isinstance(candidates, (int, np.integer)) or candidates < 1:
            raise ValueError(f"route_candidates must be an integer >= 1, got {candidates!r}")
        if not (_is_number(smoothing) and 0.0 < smoothing <= 1.0):
            raise ValueError(f"route_smoothing must be in (0, 1], got {smoothing!r}")
        if not (_is_number(logit_s) and math.isfinite(logit_s) and logit_s >= 0):
            raise ValueError(f"route_logit_s must be a finite number >= 0 [s], got {logit_s!r}")
        return cls(float(update_s), int(candidates), float(smoothing), float(logit_s), route_choice == "en-route")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


class _LinkGraph:
    """Links as the vertices of a shortest-path search (so turn bans hold), with integer turn
    arrays built once. :meth:`trees` is a Bellman-Ford over all turns, vectorised over many
    origins at once; its tie-break (least cost, then lowest link insertion index, for the link
    before and for the last link into a node) is the one of
    :meth:`trafficsim.network.Network.shortest_paths_from`, so both give the same paths."""

    #: Largest number of (origin, turn) pairs held at once (memory bound of :meth:`trees`).
    BATCH_ELEMENTS = 4_000_000

    def __init__(self, network: Network):
        self.ids = list(network.links)
        links = [network.links[lid] for lid in self.ids]
        out_by_node: dict[str, list[int]] = {}
        in_by_node: dict[str, list[int]] = {}
        for i, lk in enumerate(links):
            out_by_node.setdefault(lk.from_node, []).append(i)
            in_by_node.setdefault(lk.to_node, []).append(i)
        self.out_by_node = out_by_node
        self.in_by_node = {n: np.array(v, dtype=np.int64) for n, v in in_by_node.items()}
        t_from, t_to = allowed_turns(network, self.ids, out_by_node)
        order = np.lexsort((t_from, t_to))
        self.t_from = t_from[order]
        self.t_to = t_to[order]
        self.with_in, self.in_start = np.unique(self.t_to, return_index=True)
        # the turns into each link of with_in as a padded matrix of the links before (ascending;
        # padding points at column L, which holds +inf), so a Bellman-Ford sweep is a gather and
        # a min along one short axis
        L = len(links)
        counts = np.diff(np.append(self.in_start, self.t_to.shape[0]))
        K = int(counts.max()) if counts.size else 0
        self.pad_from = np.full((self.with_in.shape[0], K), L, dtype=np.int64)
        if K:
            row = np.repeat(np.arange(self.with_in.shape[0]), counts)
            col = np.arange(self.t_to.shape[0]) - np.repeat(self.in_start, counts)
            self.pad_from[row, col] = self.t_from
        self.free = np.array([lk.free_flow_time_s for lk in links], dtype=np.float64)

    def trees(self, origins: list[str], cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least costs ``(O, L)`` from each origin to the end of every link, and each link's
        predecessor on its least-cost path (-1: leaves the origin, or unreachable)."""
        O, L = cost.shape
        dist = np.full((O, L), np.inf)
        pred = np.full((O, L), -1, dtype=np.int64)
        W, K = self.pad_from.shape
        batch = max(1, self.BATCH_ELEMENTS // max(W * max(K, 1), 1))
        w = self.with_in
        for b0 in range(0, O, batch):
            rows = slice(b0, min(O, b0 + batch))
            c = cost[rows]
            d = np.full((c.shape[0], L + 1), np.inf)       # column L: +inf, the padding's target
            for r, o in enumerate(origins[rows]):
                first = self.out_by_node.get(o, [])
                d[r, first] = c[r, first]
            if W == 0:
                dist[rows] = d[:, :L]
                continue
            c_in = c[:, w]
            # min over turns of (cost to the link before + cost of this link) equals (min over turns
            # of the cost to the link before) + cost of this link: rounding is monotonic
            for _ in range(L):
                best = np.minimum(d[:, w], d[:, self.pad_from].min(axis=2) + c_in)
                if np.array_equal(best, d[:, w]):
                    break
                d[:, w] = best
            cand = d[:, self.pad_from] + c_in[:, :, None]
            tie = (cand == d[:, w][:, :, None]) & np.isfinite(cand)
            k = tie.argmax(axis=2)                          # the first tie: lowest link before
            p = np.where(tie.any(axis=2), self.pad_from[np.arange(W)[None, :], k], -1)
            pr = pred[rows]
            pr[:, w] = p
            for r, o in enumerate(origins[rows]):
                pr[r, self.out_by_node.get(o, [])] = -1
            dist[rows] = d[:, :L]
        return dist, pred


def candidate_routes(network: Network, flows, k: int) -> list[list[tuple[str, ...]]]:
    """Up to ``k`` distinct routes for every flow without explicit routes (link-penalty method).

    Returns one list per flow of ``flows`` (empty for flows with explicit routes, which keep
    theirs); the first route of each list is the free-flow shortest path, the one fixed routing
    uses. Deterministic: ties are broken by link insertion order. Raises
    :class:`~trafficsim.demand.DemandError` naming the flow when a node is missing or the
    destination is unreachable.
    """
    from .demand import DemandError

    graph = _LinkGraph(network)
    by_origin: dict[str, list[int]] = {}
    for i, f in enumerate(flows):
        if f.routes:
            continue
        for end in ("origin", "destination"):
            if getattr(f, end) not in network.nodes:
                raise DemandError(f"flow {f.label()}: {end} {getattr(f, end)!r} is not a node of the network")
        by_origin.setdefault(f.origin, []).append(i)
    origins = np.array(list(by_origin), dtype=object)
    out: list[list[tuple[str, ...]]] = [[] for _ in flows]
    L = len(graph.free)
    uses = np.zeros((len(origins), L))
    # every (origin, flow) pair, and the links into each flow's destination padded with L (cost inf)
    pair_o = np.array([o for o, origin in enumerate(origins) for _ in by_origin[origin]], dtype=np.int64)
    pair_flow = [i for origin in origins for i in by_origin[origin]]
    into = [graph.in_by_node.get(flows[i].destination, np.zeros(0, np.int64)) for i in pair_flow]
    into_pad = np.full((len(pair_flow), max([len(x) for x in into] + [1])), L, dtype=np.int64)
    for f, x in enumerate(into):
        into_pad[f, :len(x)] = x
    rows = np.arange(len(pair_flow))
    for j in range(k):
        dist, pred = graph.trees(origins, graph.free[None, :] * (1.0 + OVERLAP_PENALTY * uses))
        dist_pad = np.concatenate([dist, np.full((dist.shape[0], 1), np.inf)], axis=1)
        # each flow's last link: the least-cost link into its destination (the first on ties)
        d_into = dist_pad[pair_o[:, None], into_pad]
        last = into_pad[rows, np.argmin(d_into, axis=1)]
        bad = ~np.isfinite(d_into[rows, np.argmin(d_into, axis=1)])
        if bad.any():
            i = pair_flow[int(np.flatnonzero(bad)[0])]
            raise DemandError(f"flow {flows[i].label()}: destination {flows[i].destination!r} is "
                              f"unreachable from origin {flows[i].origin!r}")
        # walk the predecessors of all flows at once, from the last link back to the origin
        steps = [last]
        cur = last
        while True:
            cur = np.where(cur >= 0, pred[pair_o, np.maximum(cur, 0)], -1)
            if not (cur >= 0).any():
                break
            steps.append(cur)
        back = np.stack(steps, axis=1)                      # (pairs, longest path), -1 padded
        used = np.zeros((len(origins), L + 1), dtype=bool)
        used[np.repeat(pair_o, back.shape[1]), np.where(back >= 0, back, L).ravel()] = True
        uses += used[:, :L]
        ids = graph.ids
        for f, i in enumerate(pair_flow):
            path = tuple(ids[x] for x in back[f, ::-1].tolist() if x >= 0)
            if path not in out[i]:
                out[i].append(path)
    return out


def update_shares(share: np.ndarray, cost_s: np.ndarray, group_start: np.ndarray, weight: float,
                  logit_s: float) -> np.ndarray:
    """New route shares after one update (in place on ``share``, also returned).

    Parameters
    ----------
    share : ndarray (R,)
        Current shares; the routes of one flow are contiguous and sum to 1.
    cost_s : ndarray (R,)
        Instantaneous route costs [s].
    group_start : ndarray (F,) int
        Index of the first route of each flow (increasing, starting at 0).
    weight : float
        Weight of the target split, in (0, 1].
    logit_s : float
        Logit scale [s]; 0 for all-to-best.
    """
    R = share.shape[0]
    if R == 0:
        return share
    cost = np.minimum(np.nan_to_num(cost_s, nan=MAX_COST_S, posinf=MAX_COST_S), MAX_COST_S)
    sizes = np.diff(np.append(group_start, R))
    c_min = np.repeat(np.minimum.reduceat(cost, group_start), sizes)
    if logit_s > 0:
        e = np.exp(-(cost - c_min) / logit_s)
    else:
        e = (cost <= c_min + TIE_S).astype(float)
    target = e / np.repeat(np.add.reduceat(e, group_start), sizes)
    share *= 1.0 - weight
    share += weight * target
    return share
