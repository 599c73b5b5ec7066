"""``simulate``: the one entry point that runs a scenario on an engine."""

from __future__ import annotations

import difflib
import inspect

import numpy as np

from .results import Result
from .scenario import Scenario

__all__ = ["simulate"]


def simulate(
    scenario: Scenario,
    engine: str = "macro",
    seed: int | None = 0,
    *,
    dt_s: float | None = None,
    record_interval_s: float = 60.0,
    progress: bool = False,
    **options,
) -> Result:
    """Run ``scenario`` on ``engine`` and return a :class:`~trafficsim.results.Result`.

    Parameters
    ----------
    scenario : Scenario
        What to simulate.
    engine : str
        ``"macro"`` (cell transmission model, :mod:`trafficsim.engines.macro`), ``"micro"``
        (IDM + MOBIL, :mod:`trafficsim.engines.micro`), ``"sumo"`` (Eclipse SUMO through
        libsumo/TraCI, :mod:`trafficsim.engines.sumo`) or ``"hybrid"`` (a region in SUMO, the
        rest in the CTM or the micro engine, :mod:`trafficsim.engines.hybrid`).
    seed : int or None
        Random seed (micro, sumo); the macro engine is deterministic.
    dt_s : float, optional
        Time step [s]; ``None`` takes the engine default (macro: the largest step that satisfies
        the CFL condition on every link, at most 5 s, 2 s with signals; micro: 0.5 s).
    record_interval_s : float
        Aggregation interval of the result [s], a whole multiple of ``dt_s``.
    progress : bool
        Show a progress bar.
    **options
        Engine options. macro: ``capacity_drop`` (fraction), ``record_cells`` (cell densities),
        ``lane_groups`` (default True: a link whose marked lanes split into disjoint groups queues
        per group, :mod:`trafficsim.engines._lane_groups`),
        ``route_choice`` (``"fixed"``, default; ``"dynamic"``: departures re-split among
        candidate routes every ``route_update_s`` from instantaneous travel times; ``"en-route"``:
        the vehicles on their way re-split too; also ``route_candidates``, ``route_smoothing``,
        ``route_logit_s``; see :mod:`trafficsim.routing`; micro takes the same ``route_*`` options).
        micro: ``vehicle_params``, ``lane_change``, ``capacity_preset``, ``detectors``,
        ``trajectories``, ``initial_vehicles``. sumo: ``backend`` ("auto", "libsumo", "traci"),
        ``arrivals``, ``sigma``, ``reference_link``, ``timeout_s``, ``keep_files``. hybrid:
        ``region`` (link ids run in SUMO), ``outer`` (``"macro"``, default, or ``"micro"``: the
        model of the other links), ``sumo_dt_s`` and the sumo options. Each engine's
        ``run_*`` function documents its own.
    """
    from .engines import SimulationError, get_engine

    if not isinstance(scenario, Scenario):
        raise TypeError(f"simulate: scenario must be a Scenario, got {type(scenario).__name__} {scenario!r:.60}; "
                        "load one with trafficsim.scenarios.load(ID) or Scenario.from_toml(PATH)")
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise SimulationError(f"simulate: seed must be a whole number >= 0 or None, got {seed!r}")
    run = get_engine(engine)   # (each engine checks dt_s and record_interval_s, naming them)
    _check_options(run, engine, options)
    return run(scenario, dt_s=dt_s, record_interval_s=record_interval_s, progress=progress, seed=seed, **options)


def _check_options(run, engine: str, options: dict) -> None:
    """A :class:`TypeError` naming ``simulate`` (not the engine's internal function) for an option
    the engine does not take, with the nearest known name."""
    params = inspect.signature(run).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"simulate: engine {engine!r} takes no option {name!r}{hint} (its options: {', '.join(known)})")
