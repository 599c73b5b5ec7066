"""Route choice for measures that change the network: free-flow shortest paths and MSA.

``free_flow(sc)`` gives every flow without explicit routes its free-flow shortest path
(Dijkstra over links, turn bans respected). ``msa(sc, engine)`` is an iterative dynamic
assignment by the method of successive averages (Sheffi 1985, ch. 12): simulate, measure each
link's experienced travel time (vehicle-hours / vehicle-kilometres x length, flow-weighted over
the run), find each OD's shortest path on those times, and move ``1 / (n + 1)`` of every flow
onto it. The relative gap::

    gap = sum_f q_f (sum_r p_fr c_fr - c_f*) / sum_f q_f c_f*

(``c_fr`` experienced cost of route ``r`` of flow ``f``, ``p_fr`` its share, ``c_f*`` the
shortest) is reported every iteration; 0 means user equilibrium on experienced times. A route's
cost includes the mean wait in the origin queue of its first link (:func:`origin_waits`): an
entry that cannot take its demand queues vehicles outside the network, where no link time
shows it.

This module runs engines, so it sits beside :mod:`trafficsim.evaluation`, above the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .scenario import Scenario

__all__ = ["free_flow", "msa", "AssignmentResult", "experienced_link_times", "origin_waits"]


def free_flow(sc: Scenario) -> Scenario:
    """A copy whose flows all carry explicit free-flow shortest-path routes."""
    out = sc.copy()
    resolved = out.demand.resolve_routes(out.network)
    out.demand.flows[:] = [replace(f, routes=tuple((tuple(p), s) for p, s in r)) for f, r in zip(out.demand.flows, resolved)]
    return out


def experienced_link_times(data) -> dict[str, float]:
    """Mean experienced travel time [s] per link: ``length / (vkt / vht)``, free flow when unused."""
    vkt = data["vkt"].sum("time").values
    vht = data["vht"].sum("time").values
    length = data["length_m"].values
    vf = data["free_speed_kmh"].values
    speed = np.where(vht > 1e-9, vkt / np.maximum(vht, 1e-12), vf)
    tt = length / (np.maximum(speed, 1.0) / 3.6)
    return {str(l): float(t) for l, t in zip(data["link"].values, tt)}


def origin_waits(data) -> dict[tuple[str, str], float]:
    """Mean wait [s] in the origin queue per (origin, first link), over the vehicles demanded.

    ``integral (demanded - departed) dt / demanded`` summed over the routes that start there, from
    the cumulative ``route_demand`` and ``route_departed`` (vehicles still waiting at the end
    count with their wait so far).
    """
    t = np.concatenate([[0.0], data["time"].values.astype(float)])
    waiting = data["route_demand"].values - data["route_departed"].values
    waiting = np.vstack([np.zeros((1, waiting.shape[1])), waiting])
    area = np.sum(0.5 * (waiting[1:] + waiting[:-1]) * np.diff(t)[:, None], axis=0)
    demanded = data["route_demand"].values[-1]
    num: dict[tuple[str, str], float] = {}
    den: dict[tuple[str, str], float] = {}
    for r, (origin, path) in enumerate(zip(data["route_origin"].values, data["route_path"].values)):
        key = (str(origin), str(path).split()[0])
        num[key] = num.get(key, 0.0) + float(area[r])
        den[key] = den.get(key, 0.0) + float(demanded[r])
    return {k: num[k] / den[k] if den[k] > 0 else 0.0 for k in num}


@dataclass
class AssignmentResult:
    """The assigned scenario, the relative gap of every iteration and the last result."""

    scenario: Scenario
    gaps: list[float] = field(default_factory=list)
    result: object = None

    @property
    def gap(self) -> float:
        """Relative gap of the last iteration."""
        return self.gaps[-1] if self.gaps else float("nan")


def msa(sc: Scenario, engine: str = "macro", *, iterations: int = 8, tolerance: float = 0.01, seed: int | None = 0,
        **options) -> AssignmentResult:
    """Method-of-successive-averages dynamic assignment on experienced travel times.

    Parameters
    ----------
    sc : Scenario
        Scenario to assign (flows with explicit routes keep them as starting route sets).
    engine : str
        Engine that measures the experienced times.
    iterations : int
        Largest number of simulate-and-average iterations.
    tolerance : float
        Stop when the relative gap falls below this.
    seed : int or None
        Seed of every run (common random numbers for stochastic engines).
    **options
        Passed to :func:`trafficsim.simulate`.
    """
    from .simulation import simulate

    cur = free_flow(sc)
    out = AssignmentResult(cur)
    for n in range(1, int(iterations) + 1):
        res = simulate(cur, engine=engine, seed=seed, **options)
        tt = experienced_link_times(res.data)
        wait = origin_waits(res.data)
        trees: dict[str, dict[str, list[str]]] = {}
        num = den = 0.0
        flows = []

        def cost(origin, path):
            return wait.get((origin, path[0]), 0.0) + sum(tt[l] for l in path)

        for f in cur.demand.flows:
            if f.origin not in trees:
                # the wait at the origin counts on the links that leave it (first links only)
                w = dict(tt)
                for lk in cur.network.out_links(f.origin):
                    w[lk.id] += wait.get((f.origin, lk.id), 0.0)
                trees[f.origin] = cur.network.shortest_paths_from(f.origin, w)
            best = tuple(trees[f.origin][f.destination])
            c_best = cost(f.origin, best)
            q = f.total(cur.duration_s)
            c_avg = sum(s * cost(f.origin, p) for p, s in f.routes)
            num += q * (c_avg - c_best)
            den += q * c_best
            step = 1.0 / (n + 1)
            shares = {tuple(p): s * (1.0 - step) for p, s in f.routes}
            shares[best] = shares.get(best, 0.0) + step
            flows.append(replace(f, routes=tuple((p, s) for p, s in shares.items() if s > 1e-6)))
        gap = num / den if den > 0 else 0.0
        out.gaps.append(max(0.0, gap))
        out.result = res
        if gap < tolerance:
            break
        cur = cur.copy()
        cur.demand.flows[:] = flows
    cur.meta["assignment_gap"] = list(out.gaps)
    out.scenario = cur
    return out
