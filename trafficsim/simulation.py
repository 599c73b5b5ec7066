"""``simulate``: the one entry point that runs a scenario on an engine."""

from __future__ import annotations

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
        ``"macro"`` (cell transmission model).
    seed : int or None
        Random seed (stochastic engines); the macro engine is deterministic.
    dt_s : float, optional
        Time step [s]; ``None`` takes the engine default (macro: the largest step that satisfies
        the CFL condition on every link, at most 5 s, 2 s with signals).
    record_interval_s : float
        Aggregation interval of the result [s], a whole multiple of ``dt_s``.
    progress : bool
        Show a progress bar.
    **options
        Engine options, e.g. ``capacity_drop=0.1`` or ``record_cells=True`` for macro.
    """
    from .engines import get_engine

    run = get_engine(engine)
    return run(scenario, dt_s=dt_s, record_interval_s=record_interval_s, progress=progress, seed=seed, **options)
