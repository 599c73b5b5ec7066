"""The benchmark regression gate: compare a fresh quick run to the stored baseline by ratios.

Each quick case is timed against the calibration loop (``trafficsim.kernels.calibration``)
interleaved in the same process; the figure kept is the *ratio* case time / calibration time,
which survives machine noise that absolute seconds do not. A case regresses when its ratio
exceeds the baseline's by more than ``threshold`` (25%) plus the noise measured in this run
(the spread of the ratio over the repeats).

Commands::

    python benchmarks/gate.py              # check against benchmarks/baseline.json (exit 1 on regression)
    python benchmarks/gate.py --update     # measure (3 rounds) and store a new baseline, on purpose
    python benchmarks/gate.py --update --cases micro_kernel_corridor   # refresh (or add) some cases only

``--slowdown N`` is a test-only switch that runs every kernel N times, to show the gate trips.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from cases import grid_city, onramp_corridor, uxsim_grid  # noqa: E402

from trafficsim.engines.macro import _new_record, _new_state, compile_macro  # noqa: E402
from trafficsim.engines.micro import MicroStepper, compile_micro  # noqa: E402
from trafficsim.kernels.calibration import homogeneous_ctm  # noqa: E402
from trafficsim.kernels.ctm import ctm_advance  # noqa: E402

BASELINE = Path(__file__).with_name("baseline.json")
THRESHOLD = 0.25


def _calibration_seconds() -> float:
    n, y = np.zeros(10_000), np.zeros(10_000)
    t = time.perf_counter()
    homogeneous_ctm(n, y, 2000, 1.0, 0.25, 1.0, 5.0, 0.5)
    return time.perf_counter() - t


def _kernel_case(scenario, dt):
    c = compile_macro(scenario, dt)
    ctl = c.controls_at(0.0)

    def run(slowdown: int = 1) -> None:
        for _ in range(slowdown):
            ctm_advance(0, c.n_steps, c.dt, c.steps_per_record, 0.0, c.net, ctl, _new_state(c), _new_record(c, False))

    return run


def _micro_case(scenario, dt):
    """The micro kernel over the whole horizon from an empty network (compiled once; each run
    builds a fresh state and draws the same arrivals, seed 0)."""
    c = compile_micro(scenario, dt)

    def run(slowdown: int = 1) -> None:
        for _ in range(slowdown):
            MicroStepper(c, 0).advance(c.n_steps)

    return run


def quick_cases() -> dict:
    """Name -> callable(slowdown) of the cases the CI gate runs (a few seconds each)."""
    return {
        "ctm_kernel_corridor": _kernel_case(onramp_corridor(duration_s=3600.0), 0.5),
        "ctm_kernel_grid10": _kernel_case(grid_city(10, n_od=100), 1.0),
        "ctm_kernel_uxsim_grid": _kernel_case(uxsim_grid(duration_s=3600.0), None),
        "micro_kernel_corridor": _micro_case(onramp_corridor(duration_s=3600.0), 0.5),
        "micro_kernel_grid10": _micro_case(grid_city(10, n_od=100, duration_s=600.0), 0.5),
    }


def measure(cases: dict, repeats: int = 5, slowdown: int = 1) -> dict:
    """Ratio of each case's time to the calibration loop's, best of ``repeats``, and its noise."""
    _calibration_seconds()                       # compile
    out = {}
    for name, run in cases.items():
        run(1)                                   # compile / warm
        cal, case = [], []
        for _ in range(repeats):
            cal.append(_calibration_seconds())
            t = time.perf_counter()
            run(slowdown)
            case.append(time.perf_counter() - t)
        cal.append(_calibration_seconds())
        # best times are the least disturbed by other work on the machine
        ratio = min(case) / min(cal)
        spread = (np.median(case) / min(case)) * (min(cal) / np.median(cal))
        out[name] = {"ratio": float(ratio), "noise": float(abs(spread - 1.0))}
    return out


def compare(current: dict, baseline: dict, threshold: float = THRESHOLD) -> list[str]:
    """Regressions: cases whose ratio exceeds baseline * (1 + threshold + noise)."""
    problems = []
    for name, base in baseline["cases"].items():
        if name not in current:
            problems.append(f"{name}: missing from this run")
            continue
        now = current[name]
        noise = max(now["noise"], base.get("noise", 0.0))
        limit = base["ratio"] * (1.0 + threshold + noise)
        if now["ratio"] > limit:
            problems.append(
                f"{name}: {now['ratio']:.2f}x the calibration loop, baseline {base['ratio']:.2f}x "
                f"(limit {limit:.2f}x = +{threshold:.0%} + noise {noise:.0%})"
            )
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--update", action="store_true", help="store this run as the new baseline")
    p.add_argument("--slowdown", type=int, default=1, help="test-only: run every kernel N times")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--baseline", type=Path, default=BASELINE)
    p.add_argument("--cases", nargs="+", default=None, help="only these cases (check, or update into the baseline)")
    args = p.parse_args(argv)
    cases = quick_cases()
    if args.cases:
        unknown = sorted(set(args.cases) - set(cases))
        if unknown:
            p.error(f"unknown case(s) {unknown}; known: {sorted(cases)}")
        cases = {name: cases[name] for name in args.cases}
    current = measure(cases, args.repeats, args.slowdown)
    # the ratios move when the host's compute and memory speeds move apart (a faster core speeds
    # the in-cache calibration loop more than the kernels): print the loop's own speed with them
    cal = min(_calibration_seconds() for _ in range(5))
    print(f"calibration loop {2e7 / cal:.3g} cell-updates/s")
    for name, r in current.items():
        print(f"{name:28s} {r['ratio']:8.2f}x calibration  (noise {r['noise']:.0%})")
    if args.update:
        # a baseline records the run-to-run spread too: the slowest of three rounds, with the
        # spread between rounds as its noise
        rounds = [current] + [measure(cases, args.repeats) for _ in range(2)]
        current = {
            name: {"ratio": max(r[name]["ratio"] for r in rounds),
                   "noise": max(max(r[name]["noise"] for r in rounds),
                                max(r[name]["ratio"] for r in rounds) / min(r[name]["ratio"] for r in rounds) - 1.0)}
            for name in current
        }
        if args.cases and args.baseline.exists():  # refresh these cases, keep the others
            current = {**json.loads(args.baseline.read_text())["cases"], **current}
        args.baseline.write_text(json.dumps(
            {"machine": platform.machine(), "python": platform.python_version(), "cases": current}, indent=2) + "\n")
        print(f"baseline written to {args.baseline}")
        return 0
    baseline = json.loads(args.baseline.read_text())
    if args.cases:
        baseline["cases"] = {name: baseline["cases"][name] for name in args.cases if name in baseline["cases"]}
    problems = compare(current, baseline)
    for line in problems:
        print("REGRESSION", line)
    print("benchmark gate:", "FAILED" if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
