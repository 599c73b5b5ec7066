"""Evaluate measures: the baseline and each variant on identical demand, compared by KPIs.

``evaluate(sc)`` runs the baseline and every measure of ``sc.measures`` (the seed's remedies
for the spot) on one engine and returns a :class:`Comparison`: ``kpis`` has one row per
variant with each KPI, its change from the baseline (``<kpi>_delta``) and the relative change
(``<kpi>_pct`` [%]). Stochastic engines (micro, sumo) run several seeds with common random
numbers (the same seeds for every variant), so deltas are paired; the table then also holds
the 95 % confidence half-width of each KPI and of each delta (``_ci95``, Student t over seeds).

Variants that change the network may ask (``meta["assignment"] = "msa"``, or
``assignment="msa"`` here) for the dynamic assignment of :mod:`trafficsim.assignment`; its final
relative gap is reported in the ``assignment_gap`` column.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .scenario import Scenario

__all__ = ["evaluate", "Comparison", "KPI_COLUMNS", "spillback", "measure_named", "summary_table"]

#: KPIs of the comparison table (results.KPI_DESCRIPTIONS names, plus throughput and spillback).
KPI_COLUMNS = (
    "travel_time_index", "delay_vh", "vht", "vkt", "mean_speed_kmh", "completed", "throughput_vph",
    "unserved", "origin_wait_vh", "max_queue_m", "max_queue_veh", "spillback_m", "spillback_links",
    "bottleneck_discharge_vph",
)

#: Seeds of stochastic engines when none are given.
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
_STOCHASTIC = {"micro", "sumo", "hybrid"}

# two-sided 95 % Student t quantiles by degrees of freedom
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def spillback(ds: xr.Dataset, *, full: float = 0.95) -> tuple[float, int]:
    """Spillback onto other roads: the largest total length [m] of links whose queue fills at
    least ``full`` of their length at one record time, and how many links were ever so filled."""
    ql = ds["queue_length"].values
    length = ds["length_m"].values
    filled = ql >= full * length[None, :]
    total = (filled * length[None, :]).sum(axis=1)
    return float(total.max() if total.size else 0.0), int(filled.any(axis=0).sum())


def _row(result) -> dict[str, float]:
    k = result.kpis
    ds = result.data
    row = {c: float(k[c]) for c in KPI_COLUMNS if c in k.index}
    row["throughput_vph"] = float(k["completed"]) / float(ds.attrs.get("duration_s", np.nan)) * 3600.0
    row["spillback_m"], row["spillback_links"] = spillback(ds)
    return row


@dataclass
class Comparison:
    """Baseline and variants, run on identical demand.

    Attributes
    ----------
    kpis : pandas.DataFrame
        One row per variant (index ``variant``, ``"baseline"`` first): the KPIs of
        :data:`KPI_COLUMNS` (seed means), ``<kpi>_delta`` and ``<kpi>_pct`` [%] from the
        baseline, and with several seeds ``<kpi>_ci95`` and ``<kpi>_delta_ci95``; and
        ``bottleneck``, the link whose discharge ``bottleneck_discharge_vph`` is (the most
        frequent over the seeds). Where a variant's bottleneck is another link than the
        baseline's, its discharge delta and percentage are NaN: they would compare two links.
    data : xarray.Dataset
        The result datasets (first seed) stacked along a ``variant`` dimension (outer join on
        links and routes: a link a variant adds is NaN elsewhere).
    results : dict of str to list of Result
        Every run, per variant, in seed order.
    descriptions : dict of str to str
        What each variant does.
    engine : str
    seeds : list of int
    """

    kpis: pd.DataFrame
    data: xr.Dataset
    results: dict
    descriptions: dict
    engine: str
    seeds: list
    scenario: Scenario | None = None
    errors: dict = field(default_factory=dict)

    def plot(self, kind: str = "kpis", ax=None, **kwargs):
        """Draw the comparison with :mod:`trafficsim.plot`.

        ``kind="kpis"``: before/after bars (:func:`trafficsim.plot.kpi_bars`), returns the axes;
        ``kind="time-space"``: side-by-side time-space diagrams
        (:func:`trafficsim.plot.compare_time_space`), ``ax`` a sequence of axes, one per variant.
        """
        from . import plot

        if kind == "kpis":
            return plot.kpi_bars(self.kpis, ax=ax, **kwargs)
        if kind in ("time-space", "time_space"):
            links = kwargs.pop("links", None)
            if links is None and self.scenario is not None:
                links = plot.default_path(self.data.isel(variant=0), self.scenario)
            return plot.compare_time_space(self.data, links=links, axes=ax, **kwargs)
        raise ValueError(f"Comparison.plot: kind must be 'kpis' or 'time-space', got {kind!r}")

    def summary(self) -> pd.DataFrame:
        """The KPIs as text, one row per KPI and one column per variant, each value with its
        change from the baseline (:func:`summary_table`)."""
        return summary_table(self.kpis)

    def _repr_html_(self) -> str:
        """A notebook's view: :meth:`summary` and what each variant does."""
        import html

        head = (f"<p><b>Comparison</b> on {html.escape(str(self.engine))}, {len(self.kpis)} variants, "
                f"seeds {html.escape(str(list(self.seeds)))}</p>")
        what = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in self.descriptions.items())
        return head + self.summary().to_html() + (f"<ul>{what}</ul>" if what else "")

    def __repr__(self) -> str:
        cols = [c for c in ("travel_time_index", "delay_vh", "completed", "max_queue_m") if c in self.kpis]
        return f"<Comparison {self.engine}, {len(self.kpis)} variants, seeds {self.seeds}>\n{self.kpis[cols].round(2)}"


def _measure_key(name: str) -> str:
    """A measure's name as matched when given as text: case, hyphens, underscores and spaces
    ignored (``"tidal-lane"``, ``"tidal_lane"`` and ``"TidalLane"`` name the same measure)."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def measure_named(sc: Scenario, name: str) -> tuple[str, Any]:
    """``(name, measures)`` of the scenario's measure called ``name`` (``sc.measures``; case,
    hyphens, underscores and spaces ignored); a :class:`ValueError` naming the scenario's measures,
    and the nearest one, when there is none."""
    available = dict(sc.measures or {})
    if name in available:
        return name, available[name]
    by_key = {_measure_key(k): k for k in available}
    key = by_key.get(_measure_key(name))
    if key is None:
        close = difflib.get_close_matches(_measure_key(name), list(by_key), n=1)
        hint = f"did you mean {by_key[close[0]]!r}? " if close else ""
        raise ValueError(f"scenario {sc.name or 'scenario'!r} has no measure {name!r}; {hint}its measures: "
                         f"{', '.join(sorted(available)) or 'none'}")
    return key, available[key]


def _variants(sc: Scenario, variants) -> dict[str, Any]:
    if variants is None:
        variants = dict(sc.measures or {})
    if isinstance(variants, str):
        variants = [variants]
    if isinstance(variants, Mapping):
        return {k: (measure_named(sc, v)[1] if isinstance(v, str) else v) for k, v in variants.items()}
    out: dict[str, Any] = {}
    for v in variants:
        if isinstance(v, str):   # a measure of the scenario, by name
            v_name, v = measure_named(sc, v)
            out[v_name] = v
            continue
        name = getattr(v, "name", None) or type(v).__name__
        base, i = name, 2
        while name in out:
            name, i = f"{base} ({i})", i + 1
        out[name] = v
    return out


def _apply(sc: Scenario, variant) -> Scenario:
    if isinstance(variant, Scenario):
        return variant
    measures = variant if isinstance(variant, (list, tuple)) else [variant]
    for m in measures:
        sc = m.apply(sc) if hasattr(m, "apply") else m(sc)
    return sc


def _describe(variant) -> str:
    if isinstance(variant, Scenario):
        return variant.description or variant.name
    measures = variant if isinstance(variant, (list, tuple)) else [variant]
    return "; ".join(m.describe() if hasattr(m, "describe") else repr(m) for m in measures)


def evaluate(
    scenario: Scenario,
    variants: Mapping[str, Any] | Sequence[Any] | None = None,
    engine: str = "macro",
    *,
    seeds: Sequence[int] | None = None,
    seed: int | None = None,
    assignment: str | None = None,
    msa_iterations: int = 8,
    progress: bool = False,
    workers: int = 1,
    executor=None,
    **options,
) -> Comparison:
    """Run the baseline and each variant on identical demand and compare their KPIs.

    Parameters
    ----------
    scenario : Scenario
        The baseline.
    variants : dict or sequence, optional
        ``name -> measure | [measures] | Scenario``, or a sequence of measures (named by their
        ``name``); ``None`` takes ``scenario.measures`` (the seed's remedies for the spot).
    engine : str
        ``"macro"``, ``"micro"``, ``"sumo"``.
    seeds : sequence of int, optional
        Seeds, shared by every variant (common random numbers). Default: ``(seed,)`` on the
        deterministic macro engine, :data:`DEFAULT_SEEDS` on stochastic engines.
    seed : int, optional
        One seed (shorthand for ``seeds=(seed,)``).
    assignment : str, optional
        ``"msa"`` re-assigns every variant dynamically; ``None`` follows each variant's
        ``meta["assignment"]`` (free-flow shortest paths otherwise).
    msa_iterations : int
        Iterations of the MSA assignment.
    progress : bool
        A progress bar over the runs (variants x seeds).
    workers : int
        Processes to run the variants and seeds in (default 1: this process). With more, each
        (variant, seed) run is a task on a new pool of ``workers`` spawned processes (a variant
        that needs the MSA assignment is one task: the assignment, then its seeds); each
        process loads the cached kernels once, about 2 s, so it pays off from a few seconds of
        work per worker (micro, SUMO, long or large scenarios). The comparison is the same as
        in one process, bit for bit: each run depends only on its scenario and seed.
    executor : concurrent.futures.Executor, optional
        A pool to run the tasks on instead (e.g. a ``ProcessPoolExecutor`` kept warm across
        evaluations, or a Dask ``Client``'s ``get_executor()``); ``workers`` is then ignored.
    **options
        Passed to :func:`trafficsim.simulate` (``dt_s``, ``record_interval_s``, engine options).

    Returns
    -------
    Comparison
    """
    if not isinstance(scenario, Scenario):
        raise TypeError(f"evaluate: scenario must be a Scenario, got {type(scenario).__name__} {scenario!r:.60}; "
                        "load one with trafficsim.scenarios.load(ID) or Scenario.from_toml(PATH)")
    if assignment not in (None, "msa"):
        raise ValueError(f"evaluate: assignment must be 'msa' or None, got {assignment!r}")
    if seeds is None:
        seeds = [0 if seed is None else seed] if engine not in _STOCHASTIC or seed is not None else list(DEFAULT_SEEDS)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"evaluate: seeds must be a sequence of seeds, e.g. range({seeds!r}), got {seeds!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate: seeds is empty")
    if not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise ValueError(f"evaluate: workers must be an integer >= 1, got {workers!r}")
    table = {"baseline": scenario, **_variants(scenario, variants)}
    if not len(table) > 1:
        if variants is not None:
            raise ValueError(f"evaluate: variants is empty ({variants!r}); give measures, or None for the "
                             f"scenario's own ({', '.join(scenario.measures or {}) or 'it has none'})")
        raise ValueError(f"evaluate: scenario {scenario.name or 'scenario'!r} has no measures and no variants were given")
    descriptions: dict[str, str] = {}
    # the tasks: (variant, its scenario, seeds, MSA first); a variant's seeds are separate tasks
    tasks: list[tuple[str, Scenario, list[int], bool]] = []
    for name, variant in table.items():
        try:
            sc = scenario if name == "baseline" else _apply(scenario, variant)
        except ValueError as exc:      # a MeasureError: say which variant, before anything runs
            raise type(exc)(f"evaluate: variant {name!r}: {exc}") from None
        descriptions[name] = "no measure" if name == "baseline" else _describe(variant)
        msa_first = name != "baseline" and (assignment or sc.meta.get("assignment")) == "msa"
        tasks += [(name, sc, seeds, True)] if msa_first else [(name, sc, [s], False) for s in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(table) * len(seeds), desc=f"evaluate {scenario.name or 'scenario'}", unit="run")
    done: dict[int, tuple[list, float]] = {}
    try:
        for i, (runs, gap) in _run_tasks(tasks, engine, msa_iterations, options, workers, executor):
            done[i] = (runs, gap)
            if bar is not None:
                bar.set_postfix_str(tasks[i][0])
                bar.update(len(runs))
    finally:
        if bar is not None:
            bar.close()
    results: dict[str, list] = {name: [] for name in table}
    gaps: dict[str, float] = {}
    for i, (name, *_rest) in enumerate(tasks):  # in table and seed order, however they finished
        runs, gap = done[i]
        results[name] += runs
        if gap is not None:
            gaps[name] = gap
    rows = {name: [_row(r) for r in results[name]] for name in table}
    kpis = _table(rows, gaps)
    _bottleneck_links(kpis, results)
    data = _stack([results[n][0].data for n in table], list(table))
    return Comparison(kpis, data, results, descriptions, engine, seeds, scenario)


def _evaluate_task(sc: Scenario, engine: str, seeds: list[int], msa_first: bool, msa_iterations: int,
                   options: dict) -> tuple[list, float | None]:
    """One task of :func:`evaluate`: the runs of ``sc`` at ``seeds`` (after the MSA assignment when
    ``msa_first``) and the assignment's gap (None without it). A module-level function, so that
    a process pool can run it."""
    from .simulation import simulate

    gap = None
    if msa_first:
        from .assignment import msa

        assigned = msa(sc, engine, iterations=msa_iterations, seed=seeds[0], **options)
        sc, gap = assigned.scenario, assigned.gap
    return [simulate(sc, engine=engine, seed=s, **options) for s in seeds], gap


def _run_tasks(tasks, engine, msa_iterations, options, workers, executor):
    """Yield ``(task index, (runs, gap))`` as the tasks finish: in this process when ``workers``
    is 1 and no ``executor`` is given, otherwise on the executor or on a new pool of ``workers``
    spawned processes (closed afterwards). A task's exception is raised here."""
    if executor is None and workers == 1:
        for i, (_, sc, seeds, msa_first) in enumerate(tasks):
            yield i, _evaluate_task(sc, engine, seeds, msa_first, msa_iterations, options)
        return
    from concurrent.futures import as_completed

    pool = executor
    if pool is None:
        from .sweep import spawn_pool

        pool = spawn_pool(min(workers, len(tasks)))
    try:
        futures = {pool.submit(_evaluate_task, sc, engine, seeds, msa_first, msa_iterations, options): i
                   for i, (_, sc, seeds, msa_first) in enumerate(tasks)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        if executor is None:
            pool.shutdown(cancel_futures=True)


def _stack(datasets: list[xr.Dataset], names: list[str]) -> xr.Dataset:
    """Datasets along a ``variant`` dim; links and routes are the union in first-seen order and
    each per-link coordinate is taken from the first variant that has the link."""
    # cell-level fields stack only when every variant has the same cells (same links, same
    # cutting); otherwise they stay in Comparison.results
    cells = [ds["cell_link"].values if "cell_link" in ds.coords else None for ds in datasets]
    same_cells = cells[0] is not None and all(
        c is not None and len(c) == len(cells[0]) and (c == cells[0]).all() for c in cells)
    cell_coords = {k: datasets[0][k] for k in ("cell_link", "cell_x") if k in datasets[0].coords}
    datasets = [ds.drop_dims("cell") if "cell" in ds.dims else ds for ds in datasets] if not same_cells else datasets
    union = {}
    for dim in ("link", "route", "origin"):
        seen: dict[str, None] = {}
        for ds in datasets:
            seen.update(dict.fromkeys(str(v) for v in ds[dim].values))
        union[dim] = list(seen)
    aligned = []
    for ds in datasets:
        bare = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
        aligned.append(bare.reindex({d: union[d] for d in union}))
    out = xr.concat(aligned, dim="variant", combine_attrs="drop_conflicts")
    for name in datasets[0].coords:
        dims = datasets[0][name].dims
        if name in datasets[0].dims or len(dims) != 1 or dims[0] not in union:
            continue
        dim = dims[0]
        values: dict[str, Any] = {}
        for ds in datasets:
            if name in ds.coords:
                for key, v in zip(ds[dim].values, ds[name].values):
                    values.setdefault(str(key), v)
        arr = np.array([values.get(k, np.nan) for k in union[dim]], dtype=datasets[0][name].dtype
                       if datasets[0][name].dtype.kind == "f" else object)
        if arr.dtype == object:
            arr = arr.astype(str)
        out = out.assign_coords({name: (dim, arr, datasets[0][name].attrs)})
    if same_cells:
        out = out.assign_coords(cell_coords)
    return out.assign_coords(variant=("variant", np.array(names, dtype=str)))


def _jsonable(value: Any) -> Any:
    """A plain Python value (numpy scalars unboxed); ``None`` for NaN and infinities."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: Any) -> str:
    """A KPI value for a table: thousands separators from 100 on, 3 significant digits below 1,
    ``-`` for NaN."""
    value = _jsonable(value)
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    return str(value)


def summary_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """A comparison's KPIs as text to read: one row per KPI (index ``(kpi, unit)``, in the order
    of :data:`~trafficsim.results.KPI_DESCRIPTIONS`), one column per variant, each value with its
    95 % confidence half-width over the seeds where the table has one (``±``) and its change from
    the baseline in % (none where the comparison gives none: a zero baseline, a discharge of
    another link). What ``trafficsim evaluate`` prints and a notebook shows."""
    from .results import KPI_DESCRIPTIONS

    rows_kpis = [k for k in KPI_DESCRIPTIONS if k in kpis.columns] or [str(c) for c in kpis.columns]
    variants = list(kpis.index)
    base = "baseline" if "baseline" in variants else variants[0]
    cells = {}
    for kpi in rows_kpis:
        ref = _jsonable(kpis.loc[base, kpi])
        row = []
        for v in variants:
            value = _jsonable(kpis.loc[v, kpi])
            text = _fmt(value)
            ci = _jsonable(kpis.loc[v, f"{kpi}_ci95"]) if f"{kpi}_ci95" in kpis.columns else None
            if isinstance(ci, (int, float)) and ci > 0:
                text += f" \u00b1{_fmt(ci)}"
            if v != base:
                if f"{kpi}_pct" in kpis.columns:
                    pct = _jsonable(kpis.loc[v, f"{kpi}_pct"])
                    if isinstance(pct, (int, float)):
                        text += f" ({pct:+.0f}%)"
                elif isinstance(value, (int, float)) and isinstance(ref, (int, float)) and ref:
                    text += f" ({(value - ref) / abs(ref) * 100:+.0f}%)"
            row.append(text)
        cells[(kpi, KPI_DESCRIPTIONS.get(kpi, ("", ""))[0])] = row
    out = pd.DataFrame.from_dict(cells, orient="index", columns=[str(v) for v in variants])
    out.index = pd.MultiIndex.from_tuples(out.index, names=["kpi", "unit"])
    return out


def _bottleneck_links(kpis: pd.DataFrame, results: dict[str, list]) -> None:
    """Add the ``bottleneck`` column (each variant's most frequent over its runs) and blank the
    discharge deltas of variants whose bottleneck is another link than the baseline's (a ramp
    metered to 270 veh/h read as a 90 % loss of the merge's discharge)."""
    links = {}
    for name, runs in results.items():
        named = [str(r.kpis["bottleneck"]) for r in runs]
        links[name] = max(sorted(set(named)), key=named.count) if named else ""
    kpis.insert(kpis.columns.get_loc("bottleneck_discharge_vph"), "bottleneck", pd.Series(links))
    for name, link in links.items():
        if link != links["baseline"]:
            for c in ("bottleneck_discharge_vph_delta", "bottleneck_discharge_vph_pct", "bottleneck_discharge_vph_delta_ci95"):
                if c in kpis.columns:
                    kpis.loc[name, c] = float("nan")


def _table(rows: dict[str, list[dict]], gaps: dict[str, float]) -> pd.DataFrame:
    names = list(rows)
    cols = [c for c in KPI_COLUMNS if c in rows[names[0]][0]]
    n = len(rows[names[0]])
    base = np.array([[r[c] for c in cols] for r in rows["baseline"]])
    out = {}
    for name in names:
        vals = np.array([[r[c] for c in cols] for r in rows[name]])
        mean = vals.mean(axis=0)
        delta = vals - base          # paired: same seed, common random numbers
        rec = dict(zip(cols, mean))
        for j, c in enumerate(cols):
            d = float(delta[:, j].mean())
            ref = float(base[:, j].mean())
            if abs(d) <= 1e-9 * max(abs(ref), 1.0):
                d = 0.0     # rounding noise of two sums (-5.7e-05 veh h) is no change
            rec[f"{c}_delta"] = d
            rec[f"{c}_pct"] = 100.0 * d / abs(ref) if ref and math.isfinite(ref) else float("nan")
            if n > 1:
                t = _T95.get(n - 1, 1.96)
                rec[f"{c}_ci95"] = float(t * vals[:, j].std(ddof=1) / math.sqrt(n))
                rec[f"{c}_delta_ci95"] = float(t * delta[:, j].std(ddof=1) / math.sqrt(n))
        rec["assignment_gap"] = gaps.get(name, float("nan"))
        out[name] = rec
    df = pd.DataFrame.from_dict(out, orient="index")
    df.index.name = "variant"
    return df
