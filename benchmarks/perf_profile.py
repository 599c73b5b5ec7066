"""Sampled profile of the micro kernel with Linux ``perf``: time per compiled function and its hot spots.

``perf`` cannot name numba's JIT code by itself (llvmlite's LLVM writes no perf map). This script
compiles the kernels in-process (no on-disk cache: a cached kernel carries no symbols), writes
``/tmp/perf-PID.map`` from numba's function addresses and a copy of each function's machine code,
records the timed runs with ``perf record -p PID``, and prints the share of samples per function
and, for the busiest ones, the instruction windows that hold the most samples (disassembled with
``objdump`` to ``/tmp/trafficsim_perf/annot_<function>.txt``, samples in the first column).

It reads the compiled functions' addresses through numba internals (``CodeLibrary`` and its
codegen's engine; written against numba 0.68). Needs ``perf`` and ``objdump`` (Debian: linux-perf, binutils) and the right to profile the process
(root, or ``kernel.perf_event_paranoid`` <= 1). Compiling takes about 1.5 minutes.

Usage::

    python benchmarks/perf_profile.py              # the 10x10 grid of test_micro_bench.py, 1 h, 3 runs
    python benchmarks/perf_profile.py corridor 2   # the on-ramp corridor, 2 runs
    python benchmarks/perf_profile.py merge 10     # the library's merge (benchmarks/peers/run_peers.py), 10 runs
"""

from __future__ import annotations

import os

os.environ["TRAFFICSIM_NO_CACHE"] = "1"  # before trafficsim is imported: compile in-process

import collections  # noqa: E402
import ctypes  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

import trafficsim as ts  # noqa: E402
import trafficsim.kernels.micro as km  # noqa: E402
from test_micro_bench import corridor, grid  # noqa: E402

OUT = Path("/tmp/trafficsim_perf")


def symbols(dispatcher) -> list[tuple[int, int, str]]:
    """(address, size, short name) of every compiled function linked into ``dispatcher``'s code."""
    found = []
    for cres in dispatcher.overloads.values():
        lib = cres.library
        engine = lib._codegen._engine
        for fn in lib.get_defined_functions():
            address = engine.get_function_address(fn.name)
            if address:
                found.append((address, fn.name))
    found.sort()
    out, seen = [], collections.Counter()
    for i, (address, name) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else address + 0x10000
        short = demangled_tail(name)
        seen[short] += 1
        out.append((address, min(end - address, 0x60000), short if seen[short] == 1 else f"{short}.{seen[short]}"))
    return out


def demangled_tail(name: str) -> str:
    """The function's own name in numba's mangled symbol (``_ZN10trafficsim7kernels5micro5_moveB4...``
    -> ``_move``); numba's wrappers get a prefix (``cpython.``, ``cfunc.``)."""
    rest = name.split("_ZN", 1)[-1]
    parts = []
    while rest[:1].isdigit():
        digits = re.match(r"\d+", rest).group(0)
        n = int(digits)
        parts.append(rest[len(digits):len(digits) + n])
        rest = rest[len(digits) + n:]
    if not parts:
        return name[:60]
    prefix = "cfunc." if name.startswith("cfunc.") else "cpython." if parts[0] == "cpython" else ""
    return prefix + parts[-1]


def main(which: str = "grid", runs: int = 3) -> None:
    sc = {"grid": grid, "corridor": corridor, "merge": lambda: ts.scenarios.load("merge")}[which]()
    ts.simulate(sc.replace(duration_s=60.0), engine="micro", seed=0)  # compile
    OUT.mkdir(exist_ok=True)
    syms = symbols(km.micro_advance)
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as f:
        for address, size, name in syms:
            f.write(f"{address:x} {size:x} {name}\n")
            (OUT / f"{name}.bin").write_bytes(ctypes.string_at(address, size))
    data = OUT / "perf.data"
    rec = subprocess.Popen(["perf", "record", "-F", "4000", "-p", str(os.getpid()), "-o", str(data)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    t0 = time.perf_counter()
    for _ in range(runs):
        ts.simulate(sc, engine="micro", seed=0, dt_s=0.5, record_interval_s=300)
    wall = time.perf_counter() - t0
    rec.send_signal(2)
    rec.wait()
    ips = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip"], capture_output=True, text=True).stdout
    count = collections.Counter(int(x, 16) for x in ips.split())
    total = sum(count.values())
    print(f"{which}: {runs} runs, {wall:.2f} s, {total} samples")
    per = []
    for address, size, name in syms:
        n = sum(c for ip, c in count.items() if address <= ip < address + size)
        per.append((n, address, size, name))
    for n, address, size, name in sorted(per, reverse=True):
        if n < 0.01 * total:
            continue
        print(f"  {name:24s} {100 * n / total:5.1f}% of all samples")
        asm = subprocess.run(["objdump", "-D", "-b", "binary", "-mi386:x86-64", f"--adjust-vma={address:#x}",
                              str(OUT / f"{name}.bin")], capture_output=True, text=True).stdout
        lines = []
        for line in asm.splitlines():
            head = line.split(":", 1)[0].strip()
            if re.fullmatch(r"[0-9a-f]+", head):
                lines.append((int(head, 16), line))
        (OUT / f"annot_{name}.txt").write_text("\n".join(f"{count.get(ip, 0):6d} {line}" for ip, line in lines))
        window = 24
        hits = [count.get(ip, 0) for ip, _ in lines]
        sums = [sum(hits[i:i + window]) for i in range(len(hits))]
        shown: list[int] = []
        for i in sorted(range(len(sums)), key=lambda i: -sums[i]):
            if len(shown) == 3 or sums[i] < 0.02 * n:
                break
            if all(abs(i - j) >= window for j in shown):
                shown.append(i)
                print(f"      {100 * sums[i] / n:4.1f}% in instructions {i}-{i + window} "
                      f"(annot_{name}.txt)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "grid", int(sys.argv[2]) if len(sys.argv) > 2 else 3)
