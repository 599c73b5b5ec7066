"""Scale: the Haizhu-size city for 24 h on the macro engine, parallel replications, and the micro
engine with 50,000 simultaneous vehicles and its memory per 100,000 vehicles.

Run one at a time (each is heavy), e.g.::

    pytest benchmarks/test_scale_bench.py -k city --benchmark-only -s
    pytest benchmarks/test_scale_bench.py -k replications --benchmark-only -s
    pytest benchmarks/test_scale_bench.py -k 50k --benchmark-only -s
    pytest benchmarks/test_scale_bench.py -k memory --benchmark-only -s      (micro, 100,000 vehicles)

(``-k micro`` runs both micro tests.)

Figures go to ``extra_info`` and stdout; docs/performance.md (``## Scale``) quotes them. Timings
are reported, never asserted.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import trafficsim as ts
from conftest import rss_kb, run_with_peak_rss
from trafficsim.citynet import haizhu_city


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@pytest.mark.parametrize("record_interval_s", [900.0, 60.0])
def test_city_24h_macro(benchmark, calibration, record_interval_s):
    """The generated Haizhu city (~3,300 links, ~1 million trips) for a whole day on one core."""
    ts.simulate(haizhu_city(duration_s=900.0), record_interval_s=900.0)  # kernels compiled / loaded
    out = {}

    def run():
        t0 = time.perf_counter()
        sc = haizhu_city()
        t1 = time.perf_counter()
        from trafficsim.engines.macro import compile_macro

        compiled = compile_macro(sc, record_interval_s=record_interval_s)
        t2 = time.perf_counter()
        res = ts.simulate(sc, record_interval_s=record_interval_s)
        t3 = time.perf_counter()
        kpis = res.kpis
        t4 = time.perf_counter()
        out.update(sc=sc, compiled=compiled, res=res, kpis=kpis,
                   build_s=t1 - t0, compile_s=t2 - t1, simulate_s=t3 - t2, kpis_s=t4 - t3)

    benchmark.pedantic(run, rounds=1, iterations=1)
    c, kpis = out["compiled"], out["kpis"]
    cells = len(c.cell_link)
    info = {
        "links": len(c.link_ids), "cells": cells, "od_flows": len(out["sc"].demand.flows), "dt_s": c.dt,
        "steps": c.n_steps, "build_s": out["build_s"], "compile_s": out["compile_s"],
        "simulate_s (compile + kernel + dataset)": out["simulate_s"], "kpis_s": out["kpis_s"],
        "cell_updates_per_s_whole_run": cells * c.n_steps / out["simulate_s"],
        "peak_rss_mb": _peak_rss_mb(), "dataset_mb": out["res"].data.nbytes / 1e6,
        "trips_completed": float(kpis["completed"]), "unserved": float(kpis["unserved"]),
        "travel_time_index": float(kpis["travel_time_index"]), "calibration_cell_updates_per_s": calibration,
    }
    benchmark.extra_info.update(info)
    print("\n" + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))
    assert out["res"].conservation_error() < 1e-3


#: Alternating serial / warm-pool rounds of the replication benchmark.
ROUNDS = 3


def test_parallel_replications_processes(benchmark):
    """Four independent runs (demand levels of a 6 h, ~2,200-link city) serially vs on 2 processes
    (no Dask): cold (a new pool: spawning and loading the kernels included) and warm (a kept pool).

    Serial and warm-pool sweeps alternate for ``ROUNDS`` rounds and the speed-up is the ratio of
    their best times, so a burst of load from other work on the machine hits both alike."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    levels = {"demand_scale": [0.9, 1.0, 1.1, 1.2]}
    sc = haizhu_city(cols=33, duration_s=6 * 3600.0)
    opts = dict(keep=(), progress=False, record_interval_s=900.0)
    ts.simulate(sc.replace(duration_s=900.0), record_interval_s=900.0)
    out = {"serial_s": np.inf, "warm_s": np.inf}
    t0 = time.perf_counter()
    cold = ts.sweep(sc, levels, backend="processes", n_workers=2, **opts)
    out["cold_s"] = time.perf_counter() - t0
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        ts.sweep(sc.replace(duration_s=900.0), {"demand_scale": [0.5, 0.6]}, backend="processes", client=pool, **opts)

        def run():
            t = time.perf_counter()
            out["serial"] = ts.sweep(sc, levels, backend="serial", **opts)
            out["serial_s"] = min(out["serial_s"], time.perf_counter() - t)
            t = time.perf_counter()
            out["warm"] = ts.sweep(sc, levels, backend="processes", client=pool, **opts)
            out["warm_s"] = min(out["warm_s"], time.perf_counter() - t)

        benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    serial = out["serial"]
    info = dict(serial_s=out["serial_s"], cold_pool_s=out["cold_s"], warm_pool_s=out["warm_s"],
                speedup_cold=out["serial_s"] / out["cold_s"], speedup_warm=out["serial_s"] / out["warm_s"],
                runs=4, links=len(sc.network.links))
    benchmark.extra_info.update(info)
    print("\n" + ", ".join(f"{k}={v:.3g}" for k, v in info.items()))
    for other in (cold, out["warm"]):
        np.testing.assert_array_equal(serial.data["kpis"].values, other.data["kpis"].values)


def _micro_ring(n_vehicles: int, links: int = 50, length_m: float = 5000.0, lanes: int = 4):
    """A closed ring of ``links`` x ``length_m`` x ``lanes`` with ``n_vehicles`` on cyclic routes."""
    net = ts.Network()
    for k in range(links):
        ang = 2 * np.pi * k / links
        net.add_node(f"c{k}", x=1e5 * np.cos(ang), y=1e5 * np.sin(ang))
    ids = [f"ring{k}" for k in range(links)]
    for k in range(links):
        net.add_link(ids[k], f"c{k}", f"c{(k + 1) % links}", length_m=length_m, lanes=lanes, free_speed_kmh=60,
                     capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    per_lane = n_vehicles // (links * lanes)
    gap = length_m / per_lane
    vehicles = []
    for k in range(links):
        route = ids[k:] + ids[:k]
        for lane in range(lanes):
            for v in range(per_lane):
                vehicles.append({"link": ids[k], "lane": lane, "x_m": v * gap + 10.0, "speed_kmh": 30.0,
                                 "route": route, "cyclic": True})
    d = ts.Demand()
    return ts.Scenario(net, d, 60.0, name="micro-ring"), vehicles


def test_micro_50k_simultaneous_vehicles(benchmark):
    """50,000 vehicles at once on a 1,000 lane-km ring (50 veh/km/lane), 60 s at dt 0.5 s."""
    sc, vehicles = _micro_ring(50_000)
    small, few = _micro_ring(2_000, links=5, length_m=2000.0)
    ts.simulate(small.replace(duration_s=5.0), engine="micro", initial_vehicles=few, record_interval_s=5.0)
    out = {}

    def run():
        t = time.perf_counter()
        out["res"] = ts.simulate(sc, engine="micro", seed=0, dt_s=0.5, record_interval_s=60.0, initial_vehicles=vehicles)
        out["wall"] = time.perf_counter() - t

    benchmark.pedantic(run, rounds=1, iterations=1)
    from trafficsim.engines.micro import compile_micro

    t = time.perf_counter()
    compile_micro(sc, 0.5, 60.0, initial_vehicles=vehicles)
    compile_s = time.perf_counter() - t
    res = out["res"]
    steps = int(round(sc.duration_s / 0.5))
    inside = res.final_state.get("inside", len(vehicles))
    updates = float(len(vehicles)) * steps
    benchmark.extra_info.update(vehicles=len(vehicles), inside_at_end=inside, steps=steps, wall_s=out["wall"],
                                vehicle_updates_per_s_incl_compile=updates / out["wall"], compile_s=compile_s,
                                vehicle_updates_per_s_run_only=updates / max(out["wall"] - compile_s, 1e-9),
                                peak_rss_mb=_peak_rss_mb())
    print(f"\nmicro: {len(vehicles)} vehicles x {steps} steps in {out['wall']:.1f} s "
          f"(of which compile_micro {compile_s:.1f} s): {updates / out['wall']:.3g} vehicle-updates/s overall, "
          f"{updates / max(out['wall'] - compile_s, 1e-9):.3g} without the compile; inside at end {inside}")


def _micro_memory_probe(n_vehicles: int = 100_000, duration_s: float = 60.0) -> dict:
    """Memory of one micro run holding ``n_vehicles`` at once (meant for a fresh process: see
    ``test_micro_memory_per_100k_vehicles``). After a warm-up run and building the vehicle list:
    (1) a plain run, with the process's peak RSS (VmHWM) reset just before it, so the growth of
    the high-water mark over the RSS before the run is the run's own; (2) the same run under
    tracemalloc (Python and numpy allocations: the compiled arrays, the vehicle pool, the records
    and the dataset; not numba's own). Also the vehicle pool's state bytes per slot, counted from
    the engine's state arrays."""
    from trafficsim.engines.micro import _new_state, _pool_bytes, compile_micro, _initial_pool

    small, few = _micro_ring(2_000, links=5, length_m=2000.0)
    ts.simulate(small.replace(duration_s=5.0), engine="micro", initial_vehicles=few, record_interval_s=5.0)
    rss_warm_kb = rss_kb("VmRSS")
    sc, vehicles = _micro_ring(n_vehicles, links=100)   # 2,000 lane-km: 50 veh/km/lane, as the 50k run
    sc = sc.replace(duration_s=duration_s)
    opts = dict(engine="micro", seed=0, dt_s=0.5, record_interval_s=duration_s, initial_vehicles=vehicles)
    rss_before_kb = rss_kb("VmRSS")
    t = time.perf_counter()
    res, growth_kb, hwm_reset = run_with_peak_rss(lambda: ts.simulate(sc, **opts))
    wall = time.perf_counter() - t
    hwm_kb = rss_before_kb + growth_kb
    inside = int(res.final_state["inside"])
    del res
    tracemalloc.start()
    res = ts.simulate(sc, **opts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del res
    tracemalloc.start()
    c = compile_micro(sc, 0.5, duration_s, initial_vehicles=vehicles)
    _, compile_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    st = _new_state(c, 1000)
    per_slot = _pool_bytes(st) / 1000
    pool = _initial_pool(len(c.init))                    # the engine's first pool for initial vehicles
    return {"vehicles": len(vehicles), "inside_at_end": inside, "steps": int(round(duration_s / 0.5)),
            "wall_s": wall, "rss_before_mb": rss_before_kb / 1024, "peak_rss_mb": hwm_kb / 1024,
            "rss_growth_mb": (hwm_kb - rss_before_kb) / 1024, "hwm_reset": hwm_reset,
            "tracemalloc_peak_mb": peak / 2**20, "compile_micro_peak_mb": compile_peak / 2**20,
            "vehicle_list_rss_mb": (rss_before_kb - rss_warm_kb) / 1024, "state_bytes_per_slot": per_slot, "pool_slots": pool,
            "pool_state_mb": per_slot * pool / 2**20, "lanes": int(c.lane0[-1])}


def test_micro_memory_per_100k_vehicles(benchmark):
    """Peak memory of a micro run with 100,000 simultaneous vehicles (a closed 100-link ring, 500 km
    x 4 lanes, 50 veh/km/lane, 60 s at dt 0.5 s), in a fresh process so that nothing else this
    session allocated (other benchmarks, compilation) sets the high-water mark."""
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import test_scale_bench as m; "
            "print('PROBE' + json.dumps(m._micro_memory_probe(100_000)))")
    out = {}

    def run():
        p = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                           check=True)
        out.update(json.loads(p.stdout.split("PROBE", 1)[1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    per100k = 100_000 / out["vehicles"]
    info = {**out, "rss_growth_mb_per_100k_vehicles": out["rss_growth_mb"] * per100k,
            "tracemalloc_peak_mb_per_100k_vehicles": out["tracemalloc_peak_mb"] * per100k}
    benchmark.extra_info.update(info)
    print(f"\nmicro, {out['vehicles']} vehicles ({out['inside_at_end']} inside at the end), {out['steps']} steps in "
          f"{out['wall_s']:.1f} s: RSS {out['rss_before_mb']:.0f} MB before the run, peak {out['peak_rss_mb']:.0f} MB "
          f"(+{info['rss_growth_mb_per_100k_vehicles']:.0f} MB per 100,000 vehicles); tracemalloc peak "
          f"{info['tracemalloc_peak_mb_per_100k_vehicles']:.0f} MB per 100,000 vehicles (compile_micro alone "
          f"{out['compile_micro_peak_mb']:.0f} MB; the input vehicle list {out['vehicle_list_rss_mb']:.0f} MB of RSS); "
          f"vehicle state "
          f"{out['state_bytes_per_slot']:.0f} bytes per pool slot x {out['pool_slots']} slots = "
          f"{out['pool_state_mb']:.1f} MB")
    assert out["inside_at_end"] == out["vehicles"]
