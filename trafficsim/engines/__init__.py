"""Engines: each compiles a Scenario into flat arrays once, runs its kernels, returns a Result.

``macro`` is the cell-transmission model (:mod:`trafficsim.engines.macro`). Engines import the
core (network, demand, scenario, control, results) and the kernels; nothing in the core imports
an engine.
"""

from ._common import SimulationError

__all__ = ["SimulationError", "ENGINES", "get_engine"]

#: engine name -> "module:function" that runs it (imported on first use).
ENGINES = {
    "macro": "trafficsim.engines.macro:run_macro",
    "micro": "trafficsim.engines.micro:run_micro",
    "sumo": "trafficsim.engines.sumo:run_sumo",
    "hybrid": "trafficsim.engines.hybrid:run_hybrid",
}


def get_engine(name: str):
    """The run function of engine ``name``; a clear error names the known engines."""
    import importlib

    if name not in ENGINES:
        raise SimulationError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    module, func = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), func)
