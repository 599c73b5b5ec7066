"""Naive pure-numpy reference of the CTM on a chain of links (no commodities, no node model).

Slow and obvious on purpose: the kernel must agree with it on every cell at every step.
"""

import math

import numpy as np


def chain_ctm(links, demand_vph, dt, n_steps):
    """Cell vehicles after each step for a chain of links fed by a constant demand.

    ``links``: list of dicts with length_m, lanes, free_speed_kmh, capacity_vph_per_lane,
    jam_density_vpkm_per_lane. Returns an array (n_steps, n_cells) and the origin queue.
    """
    vf, w, q, kj, dx, owner = [], [], [], [], [], []
    for li, lk in enumerate(links):
        v = lk["free_speed_kmh"] / 3.6
        n = int(math.floor(lk["length_m"] / (v * dt) + 1e-9))
        cap = lk["capacity_vph_per_lane"] / 3600 * lk["lanes"]
        jam = lk["jam_density_vpkm_per_lane"] / 1000 * lk["lanes"]
        wave = cap / (jam - cap / v)
        for _ in range(n):
            vf.append(v), w.append(wave), q.append(cap), kj.append(jam), dx.append(lk["length_m"] / n), owner.append(li)
    vf, w, q, kj, dx = map(np.array, (vf, w, q, kj, dx))
    n = np.zeros(len(dx))
    queue = 0.0
    out = np.zeros((n_steps, len(dx)))
    for k in range(n_steps):
        queue += demand_vph / 3600 * dt
        send = np.minimum(vf * dt / dx * n, q * dt)
        recv = np.maximum(0.0, np.minimum(q * dt, w * dt / dx * (kj * dx - n)))
        y = np.minimum(send[:-1], recv[1:])
        entry = min(queue, recv[0])
        exit_ = send[-1]
        queue -= entry
        n = n + np.concatenate([[entry], y]) - np.concatenate([y, [exit_]])
        out[k] = n
    return out, queue
