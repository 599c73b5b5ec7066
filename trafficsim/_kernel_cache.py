"""A guard against stale cached kernels, run once when the first kernel module is imported.

numba keys each cached kernel (``cache=True``, see :mod:`trafficsim.kernels._jit`) on its own
source file only: a change in a function it calls from another file (``micro.micro_advance``
calls ``micro_lanes``, ``idm``, ``mobil`` ...) would load the old machine code (numba issue
#1833). :func:`invalidate_stale_cache` drops the kernels' cache whenever any kernel source file
(or numba's version) changed since it was written, so an edit, a ``git pull`` or an upgrade
recompiles once. It lives outside ``kernels/``, which imports only numpy, numba and math.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

__all__ = ["invalidate_stale_cache"]

_STAMP = "trafficsim-kernels.sha256"
_KERNELS = Path(__file__).parent / "kernels"


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


def check(probe) -> None:
    """Run the guard for the package's kernels; ``probe`` is the Python function of any kernel
    (numba says where it would cache it: the in-tree ``__pycache__``, ``NUMBA_CACHE_DIR`` ...).
    Called by :mod:`trafficsim.kernels._jit` when the cache is on."""
    try:
        cache_dir = Path(numba.njit(cache=True)(probe)._cache._cache_path)
    except Exception:  # numba internals moved: fall back to the in-tree cache
        cache_dir = _KERNELS / "__pycache__"
    invalidate_stale_cache(cache_dir, list(_KERNELS.glob("*.py")))
