"""The one place that configures numba for every kernel.

Kernels are compiled lazily on first call and cached on disk (``cache=True``) so that a second
process starts warm. ``fastmath`` stays off: conservation tests compare sums to 1e-6 vehicles and
reassociation would make results depend on the compiler. Set ``TRAFFICSIM_NO_CACHE=1`` to disable
the on-disk cache (e.g. on a read-only install).

numba keys each cached kernel on its own source file only: a change in a function it calls from
another file (``micro.micro_advance`` calls ``micro_lanes``, ``idm``, ``mobil`` ...) would load
the old machine code (numba issue #1833). :func:`invalidate_stale_cache` therefore drops the
package's cached kernels whenever any kernel source file (or numba's version) changed since they
were written; it runs once, when this module is imported.
"""

import hashlib
import os
from pathlib import Path

import numba
import numpy as np

__all__ = ["jit", "kernel", "unsigned", "invalidate_stale_cache"]

_CACHE = os.environ.get("TRAFFICSIM_NO_CACHE", "") not in ("1", "true", "yes")
_STAMP = "trafficsim-kernels.sha256"


def invalidate_stale_cache(cache_dir: Path, sources: list[Path]) -> bool:
    """Delete numba's cache files (``*.nbi``, ``*.nbc``) in ``cache_dir`` unless they were
    written for exactly these ``sources`` and this numba version (a digest kept in ``cache_dir``).
    Returns True when it deleted them. Errors of a read-only or vanished directory are ignored
    (numba then recompiles or cannot cache, as without this check)."""
    h = hashlib.sha256(numba.__version__.encode())
    for f in sorted(sources):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    digest = h.hexdigest()
    stamp = cache_dir / _STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        for p in list(cache_dir.glob("*.nbi")) + list(cache_dir.glob("*.nbc")):
            p.unlink(missing_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return True


def _probe():  # a cached function of this package: numba says where the package's cache lives
    return 0


if _CACHE:
    try:
        _dir = Path(numba.njit(cache=True)(_probe)._cache._cache_path)
    except Exception:  # numba internals moved: fall back to the in-tree cache
        _dir = Path(__file__).parent / "__pycache__"
    invalidate_stale_cache(_dir, list(Path(__file__).parent.glob("*.py")))


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
