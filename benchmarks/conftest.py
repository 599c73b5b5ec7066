"""Benchmark fixtures: the calibration loop measured in the same run, and figure reporting.

Every benchmark reports its throughput (cell-updates/s or vehicle-updates/s) and the ratio of
its speed to the calibration kernel (a homogeneous one-link numba CTM loop) measured in the same
process, so that figures can be compared across noisy runs and machines.
"""

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
