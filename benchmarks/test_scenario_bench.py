"""End to end: every library scenario on the macro and micro engines, and ``evaluate`` of a black
spot with all its measures (issue 8, *End-to-end*).

What a user waits for once the kernels are compiled or cached: ``trafficsim run ID`` (load the
scenario, ``simulate`` with the engine's defaults and seed 0, the KPIs) and ``trafficsim evaluate
ID`` (the baseline and every measure of the scenario). The first ``simulate`` of a new process adds
the kernel cache's load (``test_macro_bench.py::test_warm_second_process_first_simulate``). Each
figure is the best of three rounds, also given as vehicle-seconds simulated per wall second and as
a ratio to the calibration loop; a table of all of them is printed at the end of the module.

Run with ``pytest benchmarks/test_scenario_bench.py --benchmark-only -s`` (about two minutes).
"""

import time

import pytest
from conftest import report

import trafficsim as ts
from trafficsim.measures import evaluate

ENGINES = ("macro", "micro")
EVALUATED = "jiangwan-bridge"  # the README's main job
_ROWS: dict[tuple[str, str], dict] = {}


@pytest.fixture(scope="module", autouse=True)
def summary():
    """Compile or load every engine's kernels once, and print the module's table at its end."""
    warm = ts.scenarios.load("merge")
    for engine in ENGINES:
        ts.simulate(warm.replace(duration_s=60.0), engine=engine, seed=0)
    yield
    if not _ROWS:
        return
    print("\n\n| scenario | simulated | macro [s] | micro [s] | micro veh-s / wall-s |")
    print("|---|---:|---:|---:|---:|")
    for sid in sorted({s for s, _ in _ROWS if s != "evaluate"}):
        ma, mi = _ROWS.get((sid, "macro"), {}), _ROWS.get((sid, "micro"), {})
        print(f"| {sid} | {ma.get('hours', mi.get('hours', 0)):.1f} h | {ma.get('wall_s', float('nan')):.3f} "
              f"| {mi.get('wall_s', float('nan')):.3f} | {mi.get('veh_s_per_wall_s', float('nan')):.3g} |")
    for engine in ENGINES:
        row = _ROWS.get(("evaluate", engine))
        if row:
            print(f"\nevaluate {EVALUATED} on {engine} ({row['variants']} variants): {row['wall_s']:.2f} s")


def _best_of_three(benchmark, fn):
    out = {"walls": []}

    def run():
        t = time.perf_counter()
        out["value"] = fn()
        out["walls"].append(round(time.perf_counter() - t, 3))

    benchmark.pedantic(run, rounds=3, iterations=1)
    return out["value"], min(out["walls"])


@pytest.mark.parametrize("sid", ts.scenarios.names())
@pytest.mark.parametrize("engine", ENGINES)
def test_run_scenario(benchmark, calibration, engine, sid):
    """``trafficsim run ID`` without its printing: load, simulate, KPIs."""

    def run():
        sc = ts.scenarios.load(sid)
        res = ts.simulate(sc, engine=engine, seed=0)
        return sc, res, res.kpis

    (sc, res, kpis), wall = _best_of_three(benchmark, run)
    veh_s = float(kpis["vht"]) * 3600.0
    info = report(benchmark, updates=veh_s, unit="veh_s_per_wall_s", calibration=calibration,
                  wall_s=wall, simulated_h=round(sc.duration_s / 3600.0, 2))
    _ROWS[(sid, engine)] = {"wall_s": wall, "hours": sc.duration_s / 3600.0,
                            "veh_s_per_wall_s": info["veh_s_per_wall_s"]}
    assert float(kpis["completed"]) > 0
    if engine == "micro":
        fs = res.final_state
        assert fs["entered"] == fs["exited"] + fs["inside"]


@pytest.mark.parametrize("engine", ENGINES)
def test_evaluate_scenario(benchmark, calibration, engine):
    """``trafficsim evaluate jiangwan-bridge``: the baseline and each of its measures."""
    sc = ts.scenarios.load(EVALUATED)
    cmp, wall = _best_of_three(benchmark, lambda: evaluate(sc, None, engine=engine, seed=0))
    table = cmp.kpis
    veh_s = float(table["vht"].sum()) * 3600.0
    report(benchmark, updates=veh_s, unit="veh_s_per_wall_s", calibration=calibration, wall_s=wall,
           variants=len(table))
    _ROWS[("evaluate", engine)] = {"wall_s": wall, "variants": len(table)}
    assert list(table.index)[0] == "baseline" and len(table) == 1 + len(sc.measures)
