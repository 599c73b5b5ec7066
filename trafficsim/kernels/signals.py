"""Fixed-time signal arithmetic shared by the macro and micro kernels."""

import numpy as np

from ._jit import jit

__all__ = ["cycle_time"]


@jit(inline="always")
def cycle_time(dt, cycle):
    """``dt % cycle`` [s] for ``cycle > 0``, without the float modulo.

    numba's numpy error model lets LLVM hoist ``%`` (a libm ``fmod`` call, about 80 ns) out of the
    branch that needs it, so a modulo in a rarely taken branch costs on every iteration; this
    form is a division, a floor and a product."""
    r = dt - cycle * np.floor(dt / cycle)
    if r < 0.0:
        r += cycle
    if r >= cycle:
        r -= cycle
    return r
