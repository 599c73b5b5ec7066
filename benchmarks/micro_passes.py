"""Where the micro engine's time goes: wall time of each pass of ``micro_advance`` per vehicle-update.

The step loop of :func:`trafficsim.kernels.micro.micro_advance` is re-run in Python, each pass
still a compiled call timed on its own; the Python loop adds a few microseconds per pass call,
so read the shares, not the total. The results are those of the compiled kernel (same passes,
same order).

Usage::

    python benchmarks/micro_passes.py               # the 10x10 grid of test_micro_bench.py, 1 h
    python benchmarks/micro_passes.py corridor 3600 # the on-ramp corridor, 1 h
    python benchmarks/micro_passes.py merge         # the library's merge, as benchmarks/peers/run_peers.py runs it
"""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import trafficsim as ts  # noqa: E402
import trafficsim.engines.micro as em  # noqa: E402
import trafficsim.kernels.micro as km  # noqa: E402
from test_micro_bench import corridor, grid  # noqa: E402

PASSES = ("_update_signals", "_permissions", "_lane_changes", "_move", "_bays", "_crossings",
          "_insert", "_snapshot")


def timed_advance(seconds: dict, calls: dict):
    """A Python copy of ``micro_advance`` whose pass calls add their wall time to ``seconds``."""
    def timer(name):
        f = getattr(km, name)

        def call(*args):
            t = time.perf_counter()
            out = f(*args)
            seconds[name] += time.perf_counter() - t
            calls[name] += 1
            return out
        return call

    src = textwrap.dedent(inspect.getsource(km.micro_advance.py_func)).replace("@kernel\n", "")
    src = re.sub(r"\b(" + "|".join(PASSES) + r")\(", r'_timer("\1")(', src)
    namespace = dict(vars(km), _timer=timer)
    exec(src, namespace)
    return namespace["micro_advance"]


def main(which: str = "grid", duration_s: float = 3600.0) -> None:
    cases = {"grid": grid, "corridor": corridor, "merge": lambda: ts.scenarios.load("merge")}  # merge: run_peers.py's
    sc = cases[which]().replace(duration_s=duration_s)
    ts.simulate(sc.replace(duration_s=30.0), engine="micro", seed=0)  # compile / load the cache
    seconds, calls = defaultdict(float), defaultdict(int)
    original = em.micro_advance
    em.micro_advance = timed_advance(seconds, calls)
    try:
        t = time.perf_counter()
        res = ts.simulate(sc, engine="micro", seed=0, dt_s=0.5, record_interval_s=300)
        wall = time.perf_counter() - t
    finally:
        em.micro_advance = original
    updates = float(res.data["vht"].sum()) * 3600.0 / 0.5
    print(f"{which}, {duration_s:g} s: {wall:.2f} s wall, {updates:.3g} vehicle-updates, "
          f"{updates / calls['_move']:.0f} vehicles per step")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {name:16s} {s:7.3f} s  {1e6 * s / calls[name]:8.1f} us/call  "
              f"{1e9 * s / updates:7.1f} ns/vehicle-update")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "grid", float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0)
