"""How the macro engine's time and memory grow with network size and demand (issue 8).

Run: ``pytest benchmarks/test_growth_bench.py --benchmark-only -s``. Kernel time on grids of
10x10, 20x20 and 50x50 nodes (400 m two-lane streets, OD demand between boundary nodes, dt 1 s,
30 min) and on the 20x20 grid at three demand levels; the exponent of a least-squares fit of
log(time) on log(cells x steps) says whether the cost is linear in the work (exponent ~1).
Peak memory allocated during a run (tracemalloc, after a warm-up) is reported per million cells.
"""

import time
import tracemalloc

import numpy as np
from cases import grid_city

import trafficsim as ts

from trafficsim.engines.macro import _new_record, _new_state, compile_macro
from trafficsim.kernels.ctm import ctm_advance


def _kernel_seconds(sc, repeats=2):
    c = compile_macro(sc, 1.0)
    ctl = c.controls_at(0.0)
    ctm_advance(0, 2, c.dt, c.steps_per_record, 0.0, c.net, ctl, _new_state(c), _new_record(c, False))
    best = np.inf
    for _ in range(repeats):
        st, rec = _new_state(c), _new_record(c, False)
        t = time.perf_counter()
        ctm_advance(0, c.n_steps, c.dt, c.steps_per_record, 0.0, c.net, ctl, st, rec)
        best = min(best, time.perf_counter() - t)
    return best, int(c.net.cell_off[-1]) * c.n_steps, int(c.net.cell_off[-1])


def _exponent(work, seconds):
    slope, _ = np.polyfit(np.log(work), np.log(seconds), 1)
    return float(slope)


def test_growth_with_network_size(benchmark):
    rows = []

    def run():
        rows.clear()
        for n in (10, 20, 50):
            sc = grid_city(n, trips_per_hour=50.0 * n * n / 4, n_od=min(400, 4 * n * n // 4), duration_s=1800.0)
            sec, work, cells = _kernel_seconds(sc)
            rows.append({"grid": f"{n}x{n}", "cells": cells, "cell_updates": work, "seconds": sec,
                         "cell_updates_per_s": work / sec})

    benchmark.pedantic(run, rounds=1, iterations=1)
    k = _exponent([r["cell_updates"] for r in rows], [r["seconds"] for r in rows])
    benchmark.extra_info.update({"rows": rows, "exponent_vs_cell_updates": k})
    for r in rows:
        print(f"\n{r['grid']}: {r['cells']} cells, {r['seconds']:.3f} s, {r['cell_updates_per_s']:.3g} cell-updates/s", end="")
    print(f"\ntime ~ (cells x steps)^{k:.2f}")


def test_growth_with_demand(benchmark):
    rows = []

    def run():
        rows.clear()
        for trips in (5000.0, 10000.0, 20000.0):
            sec, work, _ = _kernel_seconds(grid_city(20, trips_per_hour=trips, duration_s=1800.0))
            rows.append({"trips_per_hour": trips, "seconds": sec, "cell_updates_per_s": work / sec})

    benchmark.pedantic(run, rounds=1, iterations=1)
    k = _exponent([r["trips_per_hour"] for r in rows], [r["seconds"] for r in rows])
    benchmark.extra_info.update({"rows": rows, "exponent_vs_demand": k})
    for r in rows:
        print(f"\n20x20 at {r['trips_per_hour']:.0f} trips/h: {r['seconds']:.3f} s", end="")
    print(f"\ntime ~ demand^{k:.2f} at fixed network")


def test_peak_memory_per_million_cells(benchmark):
    """Peak memory the engine allocates during a run (tracemalloc sees numpy's buffers), after a
    warm-up run so that compilation is not counted."""
    out = {}

    def run():
        for n in (20, 50):
            sc = grid_city(n, n_od=400, duration_s=600.0)
            ts.simulate(sc.replace(duration_s=60.0), dt_s=1.0)       # compile / warm
            tracemalloc.start()
            res = ts.simulate(sc, dt_s=1.0, record_interval_s=300.0)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out[n] = {"cells": res.data.attrs["cells"], "peak_bytes": peak}

    benchmark.pedantic(run, rounds=1, iterations=1)
    per_million = {n: r["peak_bytes"] / 2**20 / (r["cells"] / 1e6) for n, r in out.items()}
    benchmark.extra_info.update({"runs": out, "peak_mb_per_million_cells": per_million})
    for n, r in out.items():
        print(f"\n{n}x{n}: {r['cells']} cells, peak {r['peak_bytes'] / 2**20:.1f} MB allocated during simulate, "
              f"{per_million[n]:.0f} MB per million cells", end="")
    print()
