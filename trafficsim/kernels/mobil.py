"""MOBIL lane-change decisions (Kesting, Treiber & Helbing 2007, *TRR* 1999, 86-94).

This module owns the lane-change criterion of the microscopic engine. A vehicle ``c`` considers
moving to an adjacent lane where ``n`` would be its new follower; ``o`` is its old follower.
With accelerations ``a`` before and ``ã`` after the change (all from the IDM)::

    safety:     ã_n >= -b_safe            (and ã_c >= -b_safe)
    incentive:  ã_c - a_c + p [(ã_n - a_n) + (ã_o - a_o)] > Δa_th - Δa_bias

with politeness ``p``, threshold ``Δa_th`` [m/s^2] and a keep-right bias ``Δa_bias`` [m/s^2]
that is added for moves to the right and subtracted for moves to the left (the symmetric
criterion with a lane bias of Kesting et al. 2007, Eq. 4-5). A *mandatory* change (to reach a
lane that leads to the route's next link, to leave a closed or ending lane, to reach a bus stop)
skips the incentive and keeps only the safety criterion.
"""

from ._jit import jit

__all__ = ["mobil_incentive", "mobil_safe"]


@jit
def mobil_incentive(acc_c_new, acc_c_old, acc_n_new, acc_n_old, acc_o_new, acc_o_old, politeness, bias):
    """MOBIL incentive [m/s^2]: own advantage plus ``politeness`` times the followers' change.

    Parameters
    ----------
    acc_c_new, acc_c_old : float
        Acceleration of the changing vehicle in the target and current lane [m/s^2].
    acc_n_new, acc_n_old : float
        Acceleration of the new follower after and before the change [m/s^2] (0, 0 if none).
    acc_o_new, acc_o_old : float
        Acceleration of the old follower after and before the change [m/s^2] (0, 0 if none).
    politeness : float
        Politeness factor ``p`` (0: selfish, 1: altruistic).
    bias : float
        Lane bias [m/s^2]: positive favours the move (keep-right bias for moves to the right).
    """
    return acc_c_new - acc_c_old + politeness * ((acc_n_new - acc_n_old) + (acc_o_new - acc_o_old)) + bias


@jit
def mobil_safe(acc_n_new, acc_c_new, b_safe):
    """Safety criterion: neither the new follower nor the changer brakes harder than ``b_safe``."""
    return acc_n_new >= -b_safe and acc_c_new >= -b_safe
