"""A fixed reference kernel: a homogeneous one-link CTM loop, to calibrate benchmarks.

Benchmarks report every figure also as a ratio to this loop's speed measured in the same run,
since ratios survive machine noise and absolute seconds do not.
"""

from ._jit import jit

__all__ = ["homogeneous_ctm"]


@jit
def homogeneous_ctm(n, y, n_steps, alpha, beta, q, njam, inflow):
    """Advance one homogeneous link of ``n.size`` cells for ``n_steps`` steps; returns the outflow.

    ``alpha = v_f dt/dx``, ``beta = w dt/dx``, ``q`` capacity per step [veh], ``njam`` jam
    storage per cell [veh], ``inflow`` offered at the upstream end per step [veh].
    """
    C = n.shape[0]
    total_out = 0.0
    for _ in range(n_steps):
        for c in range(C - 1):
            s = min(alpha * n[c], q)
            r = max(0.0, min(q, beta * (njam - n[c + 1])))
            y[c] = min(s, r)
        y[C - 1] = min(alpha * n[C - 1], q)
        first = min(inflow, max(0.0, min(q, beta * (njam - n[0]))))
        for c in range(C):
            inc = first if c == 0 else y[c - 1]
            n[c] += inc - y[c]
        total_out += y[C - 1]
    return total_out
