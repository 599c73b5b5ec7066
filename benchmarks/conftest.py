"""Benchmark fixtures: the calibration loop measured in the same run, and figure reporting.

Every benchmark reports its throughput (cell-updates/s or vehicle-updates/s) and the ratio of
its speed to the calibration kernel (a homogeneous one-link numba CTM loop) measured in the same
process, so that figures can be compared across noisy runs and machines.
"""

import resource
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from trafficsim.kernels.calibration import homogeneous_ctm  # noqa: E402

_CAL: dict[str, float] = {}


def calibration_rate() -> float:
    """Cell-updates/s of the calibration loop (best of 5 repeats), measured once per process."""
    if "rate" not in _CAL:
        n, y = np.zeros(10_000), np.zeros(10_000)
        homogeneous_ctm(n, y, 2, 1.0, 0.25, 1.0, 5.0, 0.5)
        best = np.inf
        for _ in range(5):
            t = time.perf_counter()
            homogeneous_ctm(n, y, 500, 1.0, 0.25, 1.0, 5.0, 0.5)
            best = min(best, time.perf_counter() - t)
        _CAL["rate"] = 10_000 * 500 / best
    return _CAL["rate"]


@pytest.fixture
def calibration():
    """The calibration loop's cell-updates/s in this process."""
    return calibration_rate()


def report(benchmark, *, updates: float, unit: str, calibration: float, **extra) -> dict:
    """Attach throughput, its ratio to the calibration loop, and extras to the benchmark record."""
    best = benchmark.stats.stats.min
    rate = updates / best
    info = {unit: rate, "calibration_cell_updates_per_s": calibration,
            "slowdown_vs_calibration": calibration / rate, **extra}
    benchmark.extra_info.update(info)
    print(f"\n{benchmark.name}: {rate:.3g} {unit}, {calibration / rate:.1f}x slower than the calibration loop "
          f"({calibration:.3g} cell-updates/s); " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    return info


def rss_kb(field: str = "VmRSS") -> int:
    """A memory field of this process from ``/proc/self/status`` in kB (``VmRSS``, ``VmHWM``), -1 if absent."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def run_with_peak_rss(fn):
    """``(fn(), growth_kb, reset)``: how far the process's peak RSS rose during ``fn`` above its
    RSS just before. The peak (``VmHWM``) is reset to the current RSS first (Linux >= 4.0,
    ``/proc/self/clear_refs``); where it cannot be (``reset`` False) the growth is measured from
    the process's lifetime peak and is a lower bound."""
    before = rss_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    out = fn()
    peak = rss_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out, peak - before, reset
