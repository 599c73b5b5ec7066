"""The one place that configures numba for every kernel.

Kernels are compiled lazily on first call and cached on disk (``cache=True``) so that a second
process starts warm. ``fastmath`` stays off: conservation tests compare sums to 1e-6 vehicles and
reassociation would make results depend on the compiler. Set ``TRAFFICSIM_NO_CACHE=1`` to disable
the on-disk cache (e.g. on a read-only install). numba keys a cache entry on its own function's
file only; :mod:`trafficsim._kernel_cache` drops the cache when any kernel source changed.
"""

import os

import numba
import numpy as np

__all__ = ["jit", "kernel", "unsigned"]

_CACHE = os.environ.get("TRAFFICSIM_NO_CACHE", "") not in ("1", "true", "yes")


def jit(fn=None, **overrides):
    """``numba.njit`` with the project's settings (cache, no fastmath, numpy error model)."""
    options = dict(cache=_CACHE, fastmath=False, error_model="numpy", boundscheck=False, nogil=True)
    options.update(overrides)
    if fn is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(fn)


def kernel(fn=None, **overrides):
    """:func:`jit` without numba's reference counting (``_nrt=False``), for kernels that
    allocate nothing.

    With reference counting on, numba increfs every array it extracts from a tuple or receives
    as an argument, and decrefs it after (atomic operations); the LLVM pass that prunes those
    pairs gives up in functions with loops and branches. Measured here: 12 ns per array per call
    in the micro helpers, and 1.8x on the whole CTM grid kernel. Any array allocation in a
    ``kernel`` function fails to compile, which keeps the "kernels allocate nothing" rule honest.
    """
    return jit(fn, _nrt=False, **overrides)


@kernel(inline="always")
def unsigned(i):
    """An index known to be non-negative, as unsigned: numba then indexes without its check for a
    negative (wrap-around) index, three instructions per array access in the hot loops."""
    return np.uint64(i)


if _CACHE:
    from .._kernel_cache import check  # outside kernels/, which imports only numpy, numba and math

    check(unsigned.py_func)  # numba says where it caches a function of this directory
