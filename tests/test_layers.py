"""The import direction of the house style: kernels are leaves, the core never imports an engine."""

import ast
import pathlib
import subprocess
import sys

PKG = pathlib.Path(__file__).resolve().parents[1] / "trafficsim"
CORE = ["network.py", "lanes.py", "demand.py", "scenario.py", "control.py", "results.py"]


def _imports(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_kernels_import_only_numpy_numba_math():
    # heapq: the standard library's binary heap, which numba compiles (the Dijkstra of kernels/paths.py)
    allowed = {"numpy", "numba", "math", "heapq", "typing", "os", "__future__"}
    for path in (PKG / "kernels").glob("*.py"):
        for name in _imports(path):
            root = name.lstrip(".").split(".")[0]
            assert name.startswith(".") or root in allowed, f"{path.name} imports {name}"


def test_core_never_imports_engines_or_front_ends():
    for f in CORE:
        for name in _imports(PKG / f):
            assert "engines" not in name and "plot" not in name and "cli" not in name, f"{f} imports {name}"


def test_import_is_light():
    code = "import sys, trafficsim; print('numba' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
