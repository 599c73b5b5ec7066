"""The Intelligent Driver Model: acceleration, ballistic update and steady-state relations.

This module owns the car-following law of the microscopic engine (Treiber, Hennecke & Helbing
2000, *Phys. Rev. E* 62, 1805)::

    a_IDM(v, s, dv) = a [1 - (v / v0)^delta - (s*(v, dv) / s)^2]
    s*(v, dv)       = s0 + max(0, v T + v dv / (2 sqrt(a b)))

with speed ``v`` [m/s], bumper-to-bumper gap ``s`` [m] to the leader, approach rate
``dv = v - v_leader`` [m/s], desired speed ``v0``, time gap ``T`` [s], jam distance ``s0`` [m],
maximum acceleration ``a`` and comfortable deceleration ``b`` [m/s^2]. Positions advance with the
ballistic scheme (Treiber & Kanagaraj 2015)::

    v(t+dt) = max(0, v + a dt)
    x(t+dt) = x + v dt + a dt^2 / 2          (or x - v^2 / (2a) when the vehicle stops in the step)

The steady state (``dv = 0``, ``a_IDM = 0``) gives the equilibrium gap and the flow per lane::

    s_e(v) = (s0 + v T) / sqrt(1 - (v / v0)^delta)
    q_e(v) = v / (s_e(v) + l)                (l: vehicle length)

whose maximum ``q_max`` is the static lane capacity. :func:`headway_for_capacity` inverts
``q_max(T)`` numerically so that a link's ``capacity_vph_per_lane`` fixes ``T``.

The jitted functions are scalar leaves used by :mod:`trafficsim.kernels.micro`; the numpy
functions (``equilibrium_gap``, ``steady_state_capacity``, ...) are the analytic references used
by the engine to build parameters and by the tests.
"""

import math

import numpy as np

from ._jit import jit

__all__ = [
    "idm_acceleration",
    "idm_free_term",
    "free_term",
    "speed_drop_term",
    "idm_acceleration_free",
    "idm_acceleration_sab",
    "ballistic_step",
    "equilibrium_gap",
    "steady_state_capacity",
    "critical_speed",
    "headway_for_capacity",
    "max_speed_for_gap",
]

#: Gap [m] used when nothing is ahead.
FREE_GAP = 1.0e9


@jit
def idm_acceleration(v, gap, dv, v0, T, s0, a, b, delta):
    """IDM acceleration [m/s^2] (Treiber, Hennecke & Helbing 2000).

    Parameters
    ----------
    v : float
        Speed [m/s].
    gap : float
        Bumper-to-bumper gap to the leader [m]; :data:`FREE_GAP` or more for a free road.
    dv : float
        Approach rate ``v - v_leader`` [m/s].
    v0, T, s0, a, b, delta : float
        Desired speed [m/s], time gap [s], jam distance [m], maximum acceleration [m/s^2],
        comfortable deceleration [m/s^2], free-acceleration exponent.
    """
    return idm_acceleration_free(idm_free_term(v, v0, delta), v, gap, dv, T, s0, a, b)


@jit
def idm_free_term(v, v0, delta):
    """``1 - (v / v0)^delta``, the free-road part of the IDM (``-1`` when ``v0 <= 0``).

    The microscopic kernel computes it once per vehicle and step (it depends on the vehicle's own
    speed and link only) and passes it to :func:`idm_acceleration_free`: MOBIL evaluates up to six
    accelerations per vehicle and the power is their largest cost."""
    if v0 <= 0.0:
        return -1.0
    r = v / v0
    if delta == 4.0:
        r2 = r * r  # the usual exponent: two products instead of pow (~10x cheaper)
        return 1.0 - r2 * r2
    return 1.0 - r ** delta


@jit
def free_term(v, v0, delta, a, b):
    """The free-road term of the engine's car-following law: :func:`idm_free_term` up to the
    desired speed; above it (a vehicle that has entered a link with a lower desired speed) the
    Improved IDM's ``-(b / a) [1 - (v0 / v)^(a delta / b)]`` (Treiber & Kesting 2013, Eq. 11.24),
    so the acceleration ``a x free`` brakes at most ``b`` instead of the plain IDM's
    ``a [1 - (v / v0)^delta]`` (-76 m/s^2 at 50 km/h on a 20 km/h link). The two agree to first
    order at ``v0``."""
    if v <= v0 or v0 <= 0.0:
        return idm_free_term(v, v0, delta)
    return -(b / a) * (1.0 - (v0 / v) ** (a * delta / b))


@jit
def speed_drop_term(free, v, v_next, dist, a, b, dt):
    """``free`` (:func:`free_term`, in units of ``a``) lowered so that a vehicle at speed ``v``
    that will enter a link with the lower desired speed ``v_next`` after ``dist`` [m] slows
    towards it before the node: with ``bk = (v^2 - v_next^2) / 2 dist``, the constant
    deceleration that would reach ``v_next`` at the node, it brakes at ``bk^2 / b`` (IDM's
    intelligent braking: gentle while ``bk`` is small, and ``bk`` grows towards ``b`` while it
    brakes at less; a continuous law, so nothing switches on and off from step to step), at most
    at ``b`` and never below ``v_next`` within the step ``dt`` [s]. What is left above ``v_next``
    at the node the Improved IDM branch of :func:`free_term` takes off."""
    if v <= v_next:
        return free
    d = dist if dist > 1.0 else 1.0
    bk = (v * v - v_next * v_next) / (2.0 * d)
    db = bk * bk / b
    if db > b:
        db = b
    dv = (v - v_next) / dt
    if db > dv:
        db = dv
    fb = -db / a
    return fb if fb < free else free


@jit
def idm_acceleration_free(free, v, gap, dv, T, s0, a, b):
    """:func:`idm_acceleration` given its free-road term ``free`` (:func:`idm_free_term`)."""
    return idm_acceleration_sab(free, v, gap, dv, T, s0, a, 2.0 * math.sqrt(a * b))


@jit
def idm_acceleration_sab(free, v, gap, dv, T, s0, a, sab):
    """:func:`idm_acceleration_free` given ``sab = 2 sqrt(a b)`` [m/s^2] in place of ``b``.

    The microscopic kernel keeps ``sab`` per vehicle class (``MicroNet.cls_sab``): the square
    root lay on the latency chain of every acceleration (up to six per MOBIL decision), and a
    product computed once gives the same bits."""
    if gap >= FREE_GAP:
        return a * free
    inter = v * T + v * dv / sab
    s_star = s0 + (inter if inter > 0.0 else 0.0)
    g = gap if gap > 0.01 else 0.01
    return a * (free - (s_star / g) ** 2)


@jit
def ballistic_step(x, v, acc, dt):
    """Ballistic update of position [m] and speed [m/s] over ``dt`` [s] (speeds never negative).

    Returns ``(x_new, v_new)``.
    """
    v_new = v + acc * dt
    if v_new < 0.0:
        # the vehicle stops inside the step: travel only the stopping distance
        x_new = x - v * v / (2.0 * acc) if acc < 0.0 else x
        return x_new, 0.0
    return x + v * dt + 0.5 * acc * dt * dt, v_new


@jit
def equilibrium_gap_scalar(v, v0, T, s0, delta):
    """``s_e(v)`` [m] for one speed; ``inf`` at or above ``v0``."""
    r = idm_free_term(v, v0, delta)  # 1 - (v / v0)^delta, without pow for delta = 4
    if r <= 0.0:
        return np.inf
    return (s0 + v * T) / math.sqrt(r)


@jit
def max_speed_for_gap(gap, v_leader, v0, T, s0, a, b, delta, b_insert):
    """Largest speed [m/s] a vehicle may have at ``gap`` [m] behind a leader at ``v_leader``.

    The speed satisfies both ``s_e(v) <= gap`` (no denser than the steady state) and
    ``a_IDM(v, gap, v - v_leader) >= -b_insert`` (no hard braking right after insertion).
    Both conditions are monotone in ``v``, so a bisection finds the bound. Returns 0 when even a
    standing vehicle does not fit (``gap < s0``).
    """
    if gap < s0:
        return 0.0
    lo = 0.0
    hi = v0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        ok = equilibrium_gap_scalar(mid, v0, T, s0, delta) <= gap and (
            idm_acceleration(mid, gap, mid - v_leader, v0, T, s0, a, b, delta) >= -b_insert
        )
        if ok:
            lo = mid
        else:
            hi = mid
    return lo


def equilibrium_gap(v, v0, T, s0, delta=4.0):
    """Steady-state gap ``s_e(v) = (s0 + v T) / sqrt(1 - (v/v0)^delta)`` [m] (numpy, vectorised).

    Parameters
    ----------
    v : array_like
        Speed [m/s], ``0 <= v < v0``.
    v0, T, s0, delta : float
        Desired speed [m/s], time gap [s], jam distance [m], exponent.
    """
    v = np.asarray(v, dtype=float)
    return (s0 + v * T) / np.sqrt(1.0 - (v / v0) ** delta)


def _flow_curve(v0, T, s0, length, delta, n=20001):
    v = np.linspace(1e-6, v0 * (1.0 - 1e-9), n)
    return v, v / (equilibrium_gap(v, v0, T, s0, delta) + length)


def steady_state_capacity(v0, T, s0, length, delta=4.0):
    """Static lane capacity ``max_v v / (s_e(v) + l)`` [veh/s] of the IDM steady state.

    Parameters
    ----------
    v0 : float
        Desired speed [m/s].
    T : float
        Time gap [s].
    s0 : float
        Jam distance [m].
    length : float
        Vehicle length [m].
    delta : float
        Free-acceleration exponent.
    """
    v, q = _flow_curve(v0, T, s0, length, delta)
    i = int(np.argmax(q))
    # refine around the grid maximum
    lo, hi = v[max(i - 1, 0)], v[min(i + 1, len(v) - 1)]
    vv = np.linspace(lo, hi, 2001)
    return float(np.max(vv / (equilibrium_gap(vv, v0, T, s0, delta) + length)))


def critical_speed(v0, T, s0, length, delta=4.0):
    """Speed [m/s] at which the steady-state flow is largest (the capacity state)."""
    v, q = _flow_curve(v0, T, s0, length, delta)
    return float(v[int(np.argmax(q))])


def headway_for_capacity(capacity_vps, v0, s0, length, delta=4.0, t_range=(0.3, 8.0)):
    """Time gap ``T`` [s] whose steady-state capacity equals ``capacity_vps`` [veh/s].

    ``q_max`` decreases monotonically in ``T``; a bisection to 1e-6 s inverts it. Raises
    ``ValueError`` when the capacity cannot be reached within ``t_range``. Time gaps above about
    3 s are not car-following any more: they stand for a section whose processing rate sets the
    headways (a toll plaza: 450 veh/h per booth at 30 km/h needs ``T`` of about 7 s).
    """
    lo, hi = t_range
    q_lo = steady_state_capacity(v0, lo, s0, length, delta)
    q_hi = steady_state_capacity(v0, hi, s0, length, delta)
    if not (q_hi <= capacity_vps <= q_lo):
        raise ValueError(
            f"capacity {capacity_vps * 3600:.0f} veh/h/lane is outside what IDM reaches with T in "
            f"[{lo}, {hi}] s at v0={v0 * 3.6:.0f} km/h, s0={s0} m, l={length} m "
            f"({q_hi * 3600:.0f}-{q_lo * 3600:.0f} veh/h/lane)"
        )
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if steady_state_capacity(v0, mid, s0, length, delta) > capacity_vps:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6:
            break
    return 0.5 * (lo + hi)
