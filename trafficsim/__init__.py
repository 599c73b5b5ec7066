"""trafficsim: discrete traffic simulation for congestion black spots and their remedies.

The public names::

    import trafficsim as ts
    net = ts.Network(); demand = ts.Demand()
    sc = ts.Scenario(network=net, demand=demand, duration_s=7200)
    res = ts.simulate(sc, engine="macro")
    res.data      # xarray.Dataset (time x link)
    res.kpis      # pandas.Series

Importing this package compiles nothing and does not import matplotlib.
"""

from .control import Blocking, BusStop, FixedRateMeter, FixedTimeSignal, Phase, PriorityJunction, TollBooth
from .demand import Demand, DemandError, ODFlow
from .engines import SimulationError
from .network import Link, Network, NetworkError, Node
from .results import Result
from .scenario import Scenario, ScenarioError
from .simulation import simulate
from .sweep import sweep
from . import measures, scenarios
from .evaluation import Comparison, evaluate

__version__ = "0.1.0"

__all__ = [
    "Blocking",
    "BusStop",
    "TollBooth",
    "Comparison",
    "Demand",
    "DemandError",
    "FixedRateMeter",
    "FixedTimeSignal",
    "PriorityJunction",
    "Link",
    "Network",
    "NetworkError",
    "Node",
    "ODFlow",
    "Phase",
    "Result",
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "evaluate",
    "measures",
    "scenarios",
    "simulate",
    "sweep",
    "__version__",
]
