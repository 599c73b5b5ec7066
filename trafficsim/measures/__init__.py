"""Measures: the remedies of the black-spot table as pure ``Scenario -> Scenario`` transforms.

Each measure is a frozen dataclass with ``name``, ``apply(scenario) -> Scenario`` (returns a new
scenario, never mutates its input, validates and raises :class:`MeasureError` naming the
measure and field) and ``describe()``. Measures import only the core (network, demand, control,
scenario), never an engine; every engine that supports lane schedules, signal plans, meters and
demand profiles supports every measure. Equations and citations: ``docs/measures.md``.

::

    import trafficsim as ts
    sc = ts.scenarios.load("jiangwan-bridge")
    sc.measures                       # {"Widening": [Widening(...)], ...}
    wide = ts.measures.Widening(links=("bridge",)).apply(sc)
"""

from ._base import Measure, MeasureError, peak_window
from .demand_measures import DemandRestriction
from .lanes import TidalLane, VariableLane, Widening
from .library import SPOT_MEASURES, measures_for
from .metering import MergeMetering, PeakControl, RampMetering
from .network_edits import NewLink, OneWayLoop
from .operations import BusBay, Enforcement, StopRelocation
from .signals import (
    BusPriority, GreenWave, NewSignal, OffRampKeepClear, SignalRetiming, corridor_bandwidth_s, webster,
)

__all__ = [
    "Measure", "MeasureError", "peak_window", "measures_for", "SPOT_MEASURES",
    "TidalLane", "VariableLane", "Widening", "OneWayLoop", "NewLink",
    "RampMetering", "MergeMetering", "PeakControl", "SignalRetiming", "NewSignal", "GreenWave", "BusPriority",
    "OffRampKeepClear", "DemandRestriction", "BusBay", "StopRelocation", "Enforcement",
    "corridor_bandwidth_s", "webster", "evaluate",
]


def __getattr__(name):
    # the CLI imports ``evaluate`` from here; it lives in trafficsim.evaluation (it runs engines,
    # which measures themselves never do), so it is resolved lazily
    if name == "evaluate":
        from ..evaluation import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
