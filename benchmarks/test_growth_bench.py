"""How the macro and micro engines' time and memory grow with network size and demand (issue 8).

Run: ``pytest benchmarks/test_growth_bench.py --benchmark-only -s`` (``-k micro`` for the micro
part only). Macro: kernel time on grids of 10x10, 20x20 and 50x50 nodes (400 m two-lane streets,
OD demand between boundary nodes, dt 1 s, 30 min) and on the 20x20 grid at three demand levels;
the exponent of a least-squares fit of log(time) on log(cells x steps) says whether the cost is
linear in the work (exponent ~1). Peak memory allocated during a run (tracemalloc, after a
warm-up) is reported per million cells.

Micro: the same grids (10x10, 15x15, 20x20, demand growing with the area; and the 20x20 grid at
three demand levels), 20 min at dt 0.5 s, timed as the CPU time of the ``micro_advance`` calls of
``simulate`` (the kernel; best of 3 rounds taken in turn; compile and dataset are reported beside
it) against vehicle-updates
(vehicle-seconds in the network / dt, from the result's VHT). Memory per 100,000 vehicles is in
``test_scale_bench.py``. Timings are reported, never asserted.
"""

import time
import tracemalloc

import numpy as np
from cases import grid_city
from conftest import run_with_peak_rss

import trafficsim as ts
import trafficsim.engines.micro as micro_engine

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
    """Peak memory of a run, after a warm-up run so that compilation is not counted: what the
    engine allocates (tracemalloc sees numpy's buffers) and how far the process's peak RSS rises
    above its RSS before the run (``conftest.run_with_peak_rss``)."""
    out = {}

    def run():
        for n in (20, 50):
            sc = grid_city(n, n_od=400, duration_s=600.0)
            ts.simulate(sc.replace(duration_s=60.0), dt_s=1.0)       # compile / warm
            opts = dict(dt_s=1.0, record_interval_s=300.0)
            res, rss_growth_kb, reset = run_with_peak_rss(lambda: ts.simulate(sc, **opts))
            del res
            tracemalloc.start()
            res = ts.simulate(sc, **opts)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out[n] = {"cells": res.data.attrs["cells"], "peak_bytes": peak, "rss_growth_bytes": rss_growth_kb * 1024,
                      "rss_peak_reset": reset}

    benchmark.pedantic(run, rounds=1, iterations=1)
    per_million = {n: r["peak_bytes"] / 2**20 / (r["cells"] / 1e6) for n, r in out.items()}
    rss_per_million = {n: r["rss_growth_bytes"] / 2**20 / (r["cells"] / 1e6) for n, r in out.items()}
    benchmark.extra_info.update({"runs": out, "peak_mb_per_million_cells": per_million,
                                 "rss_growth_mb_per_million_cells": rss_per_million})
    for n, r in out.items():
        print(f"\n{n}x{n}: {r['cells']} cells, peak {r['peak_bytes'] / 2**20:.1f} MB allocated during simulate, "
              f"{per_million[n]:.0f} MB per million cells; peak RSS +{r['rss_growth_bytes'] / 2**20:.1f} MB, "
              f"{rss_per_million[n]:.0f} MB per million cells", end="")
    print()


# ---- micro engine -------------------------------------------------------------------------------

MICRO_DT = 0.5
MICRO_DURATION_S = 1200.0


def _micro_runs(scenarios, repeats=3):
    """``simulate(engine="micro")`` of each scenario, ``repeats`` rounds taken in turn (a burst of
    other work on the machine hits every case alike), best round per case. Kernel time is the sum
    of the engine's ``micro_advance`` calls (timed by wrapping the name the engine calls), both
    as CPU time of the calling thread (``kernel_s``, used for the fits: it does not count the
    time other processes hold the core) and as wall time; ``simulate_s`` is the whole call's wall
    time. Vehicle-updates = network VHT / dt (the same in every round, seed 0)."""
    kernel = micro_engine.micro_advance
    spent = [0.0, 0.0]

    def timed(*args):
        c, w = time.thread_time(), time.perf_counter()
        try:
            return kernel(*args)
        finally:
            spent[0] += time.thread_time() - c
            spent[1] += time.perf_counter() - w

    rows = [{"kernel_s": np.inf, "kernel_wall_s": np.inf, "simulate_s": np.inf} for _ in scenarios]
    micro_engine.micro_advance = timed
    try:
        for _ in range(repeats):
            for sc, row in zip(scenarios, rows):
                spent[:] = [0.0, 0.0]
                t = time.perf_counter()
                res = ts.simulate(sc, engine="micro", seed=0, dt_s=MICRO_DT, record_interval_s=600.0, progress=False)
                row["simulate_s"] = min(row["simulate_s"], time.perf_counter() - t)
                row["kernel_s"] = min(row["kernel_s"], spent[0])
                row["kernel_wall_s"] = min(row["kernel_wall_s"], spent[1])
                k = res.kpis
                row.update(vehicle_updates=float(k["vht"]) * 3600.0 / MICRO_DT, entered=float(k["entered"]),
                           inside_at_end=float(k["inside"]), lanes=int(sum(lk.lanes for lk in sc.network.links.values())),
                           steps=int(round(sc.duration_s / MICRO_DT)))
    finally:
        micro_engine.micro_advance = kernel
    for row in rows:
        row["vehicle_updates_per_s"] = row["vehicle_updates"] / row["kernel_s"]
    return rows


def _two_term_fit(rows):
    """Least squares of kernel time = a x (lanes x steps) + b x vehicle-updates: every pass of a
    micro step walks all lanes, empty or not, so a light network pays ``a`` per lane and step
    whatever its vehicles; ``b`` is the cost per vehicle. Returns (a, b) in seconds. Only
    well-conditioned at a fixed network (lanes fixed, vehicles varying)."""
    A = np.array([[r["lanes"] * r["steps"], r["vehicle_updates"]] for r in rows], dtype=float)
    (a, b), *_ = np.linalg.lstsq(A, np.array([r["kernel_s"] for r in rows]), rcond=None)
    return float(a), float(b)


def _micro_warm():
    ts.simulate(grid_city(5, trips_per_hour=500.0, n_od=20, duration_s=60.0), engine="micro", seed=0,
                dt_s=MICRO_DT, progress=False)


def _print_micro(r, label):
    print(f"\n{label}: {r['lanes']} lanes, {r['vehicle_updates']:.3g} vehicle-updates, kernel {r['kernel_s']:.2f} s CPU "
          f"({r['kernel_wall_s']:.2f} s wall; simulate {r['simulate_s']:.2f} s), {r['vehicle_updates_per_s']:.3g} vehicle-updates/s", end="")


def test_micro_growth_with_network_size(benchmark, calibration):
    """Grids of 10x10, 15x15 and 20x20 with demand proportional to the area (20 trips/h per node,
    as many OD pairs as nodes), so vehicle-updates grow about with the number of lanes too."""
    _micro_warm()
    rows = []

    def run():
        sizes = (10, 15, 20)
        scs = [grid_city(n, trips_per_hour=25.0 * n * n, n_od=n * n, duration_s=MICRO_DURATION_S) for n in sizes]
        rows[:] = [{"grid": f"{n}x{n}", **r} for n, r in zip(sizes, _micro_runs(scs))]

    benchmark.pedantic(run, rounds=1, iterations=1)
    work = [r["vehicle_updates"] for r in rows]
    k = _exponent(work, [r["kernel_s"] for r in rows])
    k_sim = _exponent(work, [r["simulate_s"] for r in rows])
    k_lanes = _exponent([r["lanes"] * r["steps"] for r in rows], [r["kernel_s"] for r in rows])
    rate = max(r["vehicle_updates_per_s"] for r in rows)
    benchmark.extra_info.update({"rows": rows, "exponent_vs_vehicle_updates": k,
                                 "exponent_simulate_vs_vehicle_updates": k_sim, "exponent_vs_lane_steps": k_lanes,
                                 "calibration_cell_updates_per_s": calibration,
                                 "best_slowdown_vs_calibration": calibration / rate})
    for r in rows:
        _print_micro(r, r["grid"])
    print(f"\nkernel time ~ (vehicles x steps)^{k:.2f} (whole simulate ^{k_sim:.2f}; vs lanes x steps ^{k_lanes:.2f}); "
          f"calibration {calibration:.3g} cell-updates/s, best rate {calibration / rate:.0f}x slower")


def test_micro_growth_with_demand(benchmark, calibration):
    """The 20x20 grid (3,040 lanes) at 5,000, 10,000 and 20,000 trips/h."""
    _micro_warm()
    rows = []

    def run():
        levels = (5000.0, 10000.0, 20000.0)
        scs = [grid_city(20, trips_per_hour=trips, duration_s=MICRO_DURATION_S) for trips in levels]
        rows[:] = [{"trips_per_hour": trips, **r} for trips, r in zip(levels, _micro_runs(scs))]

    benchmark.pedantic(run, rounds=1, iterations=1)
    secs = [r["kernel_s"] for r in rows]
    k_demand = _exponent([r["trips_per_hour"] for r in rows], secs)
    k_work = _exponent([r["vehicle_updates"] for r in rows], secs)
    a, b = _two_term_fit(rows)
    benchmark.extra_info.update({"rows": rows, "exponent_vs_demand": k_demand, "exponent_vs_vehicle_updates": k_work,
                                 "s_per_lane_step": a, "s_per_vehicle_update": b,
                                 "calibration_cell_updates_per_s": calibration})
    for r in rows:
        _print_micro(r, f"20x20 at {r['trips_per_hour']:.0f} trips/h")
    print(f"\nkernel time ~ demand^{k_demand:.2f}, ~ (vehicles x steps)^{k_work:.2f} at fixed network; "
          f"fit time = {a * 1e9:.0f} ns x lane-steps + {b * 1e9:.0f} ns x vehicle-updates; "
          f"calibration {calibration:.3g} cell-updates/s")
