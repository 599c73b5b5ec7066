"""Naive references for the microscopic kernels (plain numpy, written for clarity, not speed).

``idm_platoon`` steps a single-lane platoon with the IDM and the ballistic update exactly as
the equations in :mod:`trafficsim.kernels.idm` state them; ``gaps_from_trajectories`` rebuilds
every follower-leader gap of a sampled trajectory dataset so that tests can check invariants.
"""

import numpy as np


def idm_accel(v, gap, dv, v0, T, s0, a, b, delta=4.0):
    """IDM acceleration, vectorised; ``gap=inf`` for a free road."""
    s_star = s0 + np.maximum(0.0, v * T + v * dv / (2.0 * np.sqrt(a * b)))
    with np.errstate(divide="ignore"):
        inter = np.where(np.isfinite(gap), (s_star / np.maximum(gap, 0.01)) ** 2, 0.0)
    return a * (1.0 - (v / v0) ** delta - inter)


def idm_platoon(x, v, length, steps, dt, v0, T, s0, a, b, delta=4.0):
    """Positions and speeds [steps+1, n] of a platoon (index 0 leads) on an open road."""
    x = np.array(x, float)
    v = np.array(v, float)
    xs, vs = [x.copy()], [v.copy()]
    for _ in range(steps):
        gap = np.empty_like(x)
        gap[0] = np.inf
        gap[1:] = x[:-1] - length - x[1:]
        dv = np.zeros_like(v)
        dv[1:] = v[1:] - v[:-1]
        acc = idm_accel(v, gap, dv, v0, T, s0, a, b, delta)
        vn = v + acc * dt
        stop = vn < 0
        xn = np.where(stop, x - v * v / (2 * np.where(acc < 0, acc, -1.0)), x + v * dt + 0.5 * acc * dt * dt)
        x, v = xn, np.where(stop, 0.0, vn)
        xs.append(x.copy())
        vs.append(v.copy())
    return np.array(xs), np.array(vs)


def gaps_from_trajectories(tr):
    """All bumper-to-bumper gaps [m] between consecutive vehicles of the same (link, lane) per sample."""
    X = tr["x"].values
    K = tr["link_index"].values
    N = tr["lane"].values
    length = tr["length_m"].values
    out = []
    for k in range(X.shape[0]):
        ok = K[k] >= 0
        ok &= N[k] >= 0
        idx = np.flatnonzero(ok)
        if idx.size < 2:
            continue
        key = K[k, idx].astype(np.int64) * 64 + N[k, idx]
        order = np.lexsort((X[k, idx], key))
        idx, key = idx[order], key[order]
        same = key[1:] == key[:-1]
        g = X[k, idx[1:]] - length[idx[1:]] - X[k, idx[:-1]]
        out.append(g[same])
    return np.concatenate(out) if out else np.zeros(0)
