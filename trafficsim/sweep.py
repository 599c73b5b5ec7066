"""Sweeps: the cross product of scenario parameters x variants x seeds, run on Dask or processes.

::

    import trafficsim as ts
    sw = ts.sweep("merge", params={"demand_scale": [0.8, 1.0, 1.2]}, seeds=3, out="study/")
    sw.data       # xarray.Dataset, dims (demand_scale, variant, seed[, time, link, kpi])
    sw.kpis       # pandas.DataFrame, one row per run, indexed by (demand_scale, variant, seed)
    sw.failed     # pandas.DataFrame of the runs that failed after their retries (empty if none)
    sw.plot("delay_vh")                       # KPI vs parameter per variant, with the seed spread

Every run is one *task*: build the scenario with its parameters (``scenarios.load(id,
**params)``, or ``Demand.scaled`` for a Scenario object), apply the variant's measures, simulate
with its seed, and keep the KPIs plus the ``time x link`` variables named in ``keep``. Tasks run
on Dask distributed (a :class:`~distributed.LocalCluster` by default, a running scheduler, or a
passed :class:`~distributed.Client`), on a local process pool (``backend="processes"``, no Dask)
or in this process (``backend="serial"``).

Incremental and resumable: with ``out``, the result of each task is written to its own netCDF
file (``out/tasks/task-<digest>.nc``, written to a temporary name and renamed, so a file is
either whole or absent) *as soon as it arrives*. The digest hashes everything that determines
the run (scenario, parameters, variant and its measures, seed, engine, options, kept variables),
so calling the same sweep again computes only the tasks without a file. The client, not the
worker, writes the files: a sweep on a remote scheduler needs no shared file system. A task that
raises is retried (``retries``; a worker that dies mid-task has its task rescheduled by Dask)
and, if it still fails, reported in ``failed`` and by a :class:`SweepTaskWarning`, without
losing the other results; rerun the sweep to retry only the failures.

The numbers are the serial ones bit for bit: every task is a plain :func:`trafficsim.simulate`
call, float64 results cross process boundaries and netCDF files unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .scenario import Scenario

__all__ = [
    "sweep", "SweepResult", "SweepError", "SweepTaskWarning", "plot_sweep", "parse_range", "add_command",
    "DEFAULT_KEEP",
]

#: The ``time x link`` result variables a sweep keeps by default (KPIs are always kept).
DEFAULT_KEEP = ("flow", "speed", "queue")
#: Dimension names a swept parameter may not take.
RESERVED_DIMS = ("variant", "seed", "time", "link", "kpi", "route", "origin")
#: Bumped when the task file layout changes, so old files are not resumed.
TASK_FORMAT = 1


class SweepError(RuntimeError):
    """A sweep cannot start (bad input) or, with ``errors="raise"``, some of its tasks failed."""


class SweepTaskWarning(RuntimeWarning):
    """Some tasks of a sweep failed after their retries; the others' results are kept."""


# ----------------------------------------------------------------------------- tasks
@dataclasses.dataclass(frozen=True)
class _Task:
    """One run of the cross product: its position in every sweep dimension and what it runs."""

    index: tuple[int, ...]
    params: dict
    variant: str
    seed: int
    digest: str


def _build_scenario(source: str | Scenario, params: Mapping[str, Any]) -> Scenario:
    if isinstance(source, str):
        from . import scenarios

        return scenarios.load(source, **params)
    sc = source
    if "demand_scale" in params:
        sc = sc.replace(demand=sc.demand.scaled(float(params["demand_scale"])))
    return sc


def _apply_measures(sc: Scenario, variant: str, measures: Sequence | None) -> Scenario:
    if measures is None:  # named after one of the scenario's own remedies: look it up as built
        available = dict(sc.measures or {})
        if variant not in available:
            raise KeyError(f"scenario {sc.name!r} has no measure {variant!r}; its measures: {', '.join(sorted(available)) or 'none'}")
        measures = available[variant]
        measures = measures if isinstance(measures, (list, tuple)) else [measures]
    for m in measures:
        sc = m.apply(sc) if hasattr(m, "apply") else m(sc)
    return sc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def run_task(source: str | Scenario, params: dict, variant: str, measures: Sequence | None, seed: int,
             engine: str, options: dict, keep: Sequence[str], digest: str) -> xr.Dataset:
    """Run one task of a sweep and return its result dataset (what its task file holds).

    This is what a worker executes; it is public so that a task can be rerun by hand.

    Returns
    -------
    xarray.Dataset
        The kept ``time x link`` variables, ``kpis`` (dim ``kpi``, float64) and each
        non-numeric KPI (e.g. ``bottleneck``) as a scalar string; attrs name the task.
    """
    from .simulation import simulate

    sc = _apply_measures(_build_scenario(source, params), variant, measures)
    res = simulate(sc, engine=engine, seed=seed, **options)
    missing = [v for v in keep if v not in res.data]
    if missing:
        raise KeyError(f"keep: variable(s) {missing} not in the {engine} result; it has: {', '.join(map(str, res.data.data_vars))}")
    ds = res.data[list(keep)].reset_coords(drop=True)
    kpis = res.kpis
    numeric = [k for k, v in kpis.items() if _is_number(v)]
    ds["kpis"] = xr.DataArray(np.array([float(kpis[k]) for k in numeric], dtype=np.float64), dims="kpi",
                              coords={"kpi": np.array(numeric, dtype=str)}, attrs={"long_name": "key performance indicators (see trafficsim.results.KPI_DESCRIPTIONS)"})
    for k, v in kpis.items():
        if k not in numeric:
            ds[str(k)] = xr.DataArray(np.array("" if v is None else str(v), dtype=str), attrs={"long_name": f"KPI {k}"})
    ds.attrs = {
        "engine": engine, "scenario": sc.name or "", "seed": int(seed), "variant": variant,
        "params": json.dumps(params, sort_keys=True, default=str), "task_digest": digest,
        "task_format": TASK_FORMAT, **{k: res.data.attrs[k] for k in ("dt_s", "record_interval_s", "duration_s") if k in res.data.attrs},
    }
    return ds


def _measure_token(m: Any) -> str:
    """A stable description of a measure for the task digest (its fields, if a dataclass)."""
    if dataclasses.is_dataclass(m) and not isinstance(m, type):
        return repr(m)
    kind = type(m)
    return f"{kind.__module__}.{kind.__qualname__}:{getattr(m, 'name', '')}"


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- inputs
def _check_params(source: str | Scenario, params: Mapping[str, Any] | None) -> tuple[dict[str, list], dict[str, Any]]:
    """(swept: name -> values, fixed: name -> value); a scalar value is fixed, not a dimension."""
    if params is None:
        return {}, {}
    if not isinstance(params, Mapping):
        raise SweepError(f"params must be a dict of parameter name -> list of values, got {type(params).__name__}")
    if isinstance(source, str):
        from . import scenarios

        valid = list(scenarios.parameters(source))
    else:
        valid = ["demand_scale"]
    out: dict[str, list] = {}
    fixed: dict[str, Any] = {}
    for name, values in params.items():
        if name not in valid:
            where = f"scenario {source!r}" if isinstance(source, str) else "a Scenario object (pass a scenario id for the others)"
            raise SweepError(f"unknown parameter {name!r} for {where}; valid: {', '.join(valid)}")
        if name in RESERVED_DIMS:
            raise SweepError(f"parameter name {name!r} clashes with a sweep dimension ({', '.join(RESERVED_DIMS)})")
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            fixed[name] = values.item() if isinstance(values, np.generic) else values
            continue
        values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if not values:
            raise SweepError(f"parameter {name!r}: no values to sweep")
        if len(set(map(repr, values))) != len(values):
            raise SweepError(f"parameter {name!r}: repeated values in {values}")
        out[name] = values
    return out, fixed


def _check_variants(source: str | Scenario, variants: Any) -> dict[str, list | None]:
    """name -> list of measures (None: the scenario's own measure of that name, looked up on the worker)."""
    if variants is None:
        return {"baseline": []}
    own = None

    def scenario_measures() -> dict:
        nonlocal own
        if own is None:
            own = dict((_build_scenario(source, {}).measures if isinstance(source, str) else source.measures) or {})
        return own

    if isinstance(variants, str):
        if variants != "all":
            raise SweepError(f"variants must be None, 'all', a dict or a list, got {variants!r}")
        return {"baseline": [], **{name: None for name in scenario_measures()}}
    if isinstance(variants, Mapping):
        items = list(variants.items())
    else:
        items = []
        for v in variants:
            if isinstance(v, str):
                items.append((v, None))
            else:
                items.append((getattr(v, "name", None) or type(v).__name__, v))
        if "baseline" not in [name for name, _ in items]:
            items.insert(0, ("baseline", []))
    out: dict[str, list | None] = {}
    for name, measures in items:
        name = str(name)
        if name in out:
            raise SweepError(f"variant {name!r} given twice; name the variants with a dict")
        if measures is None and name != "baseline":
            if name not in scenario_measures():
                raise SweepError(f"scenario has no measure {name!r}; its measures: {', '.join(sorted(scenario_measures())) or 'none'}")
            out[name] = None
        elif measures is None:
            out[name] = []
        else:
            out[name] = list(measures) if isinstance(measures, (list, tuple)) else [measures]
    return out


def _check_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"seeds must be >= 1 (the number of replications), got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise SweepError(f"seeds must be a count or a list of distinct integers, got {seeds!r}")
    return out


def _task_dir(out: str | os.PathLike) -> tuple[Path, Path]:
    """(task directory, combined file) for ``out`` (a directory, or a path ending in .nc)."""
    path = Path(out)
    if path.suffix == ".nc":
        return path.with_suffix(".tasks"), path
    return path / "tasks", path / "sweep.nc"


def _write_atomic(ds: xr.Dataset, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    ds.to_netcdf(tmp)
    os.replace(tmp, path)


def _read_task(path: Path, digest: str) -> xr.Dataset | None:
    try:
        ds = xr.load_dataset(path)
    except (OSError, ValueError, RuntimeError):  # unreadable: compute it again
        return None
    if ds.attrs.get("task_digest") != digest or int(ds.attrs.get("task_format", -1)) != TASK_FORMAT:
        return None
    return ds


# ----------------------------------------------------------------------------- runners
class _DaskRunner:
    """Submits tasks to a Dask client; owns (and closes) the client and cluster it made."""

    def __init__(self, client, scheduler, n_workers: int, retries: int):
        from distributed import Client, LocalCluster

        self.retries = retries
        self._owned: list = []
        if client is not None:
            self.client = client
        elif scheduler is not None:
            self.client = Client(scheduler)
            self._owned = [self.client]
        else:
            import logging

            # dashboard on a free port: a fixed one clashes with any other cluster on the machine
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(cluster)
            self._owned = [self.client, cluster]

    def run(self, calls: dict[str, tuple]) -> Iterable[tuple[str, xr.Dataset | None, str | None]]:
        from distributed import as_completed

        futures = {self.client.submit(run_task, *args, key=f"trafficsim-sweep-{key}", retries=self.retries): key
                   for key, args in calls.items()}
        for fut in as_completed(list(futures)):
            key = futures.pop(fut)
            if fut.status == "error":
                exc, tb = fut.exception(), fut.traceback()
                text = "".join(traceback.format_exception(type(exc), exc, tb))
                yield key, None, f"{type(exc).__name__}: {exc}\n{text}"
            else:
                yield key, fut.result(), None
            fut.release()

    def close(self) -> None:
        for obj in self._owned:
            obj.close()


def spawn_pool(max_workers: int):
    """A ``ProcessPoolExecutor`` of ``max_workers`` spawned processes (a clean interpreter per
    worker, no fork of a process that runs threads); used by sweeps and by ``evaluate``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context("spawn"))


class _PoolRunner:
    """Runs tasks on a local process pool (no Dask) or, with ``max_workers=0``, in this process."""

    def __init__(self, max_workers: int, retries: int, executor=None):
        self.max_workers = max_workers
        self.retries = retries
        self._pool = executor
        self._owned = executor is None

    def _new_pool(self):
        return spawn_pool(self.max_workers)

    def run(self, calls: dict[str, tuple]):
        if self.max_workers == 0:
            for key, args in calls.items():
                yield key, *self._serial(args)
            return
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        self._pool = self._pool or self._new_pool()
        attempts = dict.fromkeys(calls, 0)
        pending = {self._pool.submit(run_task, *args): key for key, args in calls.items()}
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                exc = fut.exception()
                if exc is None:
                    yield key, fut.result(), None
                    continue
                attempts[key] += 1
                if isinstance(exc, BrokenProcessPool):  # a worker died: every task in flight is lost
                    self._pool.shutdown(cancel_futures=True)
                    self._pool, self._owned = self._new_pool(), True
                    lost = [pending.pop(f) for f in list(pending)]
                    for other in lost:
                        pending[self._pool.submit(run_task, *calls[other])] = other
                if attempts[key] <= self.retries:
                    pending[self._pool.submit(run_task, *calls[key])] = key
                else:
                    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                    yield key, None, f"{type(exc).__name__}: {exc}\n{text}"

    def _serial(self, args):
        for attempt in range(self.retries + 1):
            try:
                return run_task(*args), None
            except Exception as exc:  # noqa: BLE001 - a failed task is reported, the sweep goes on
                if attempt == self.retries:
                    return None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"

    def close(self) -> None:
        if self._pool is not None and self._owned:
            self._pool.shutdown()
        self._pool = None


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass
class SweepResult:
    """The outcome of :func:`sweep`.

    Attributes
    ----------
    data : xarray.Dataset
        Dims: one per swept parameter, ``variant``, ``seed``, then those of the kept variables
        (``time``, ``link``) and ``kpi``. Runs that failed are NaN (``""`` for string KPIs).
    kpis : pandas.DataFrame
        One row per completed run, indexed by (parameters..., variant, seed); KPI columns.
    failed : pandas.DataFrame
        One row per failed run (same index): ``error`` (one line) and ``traceback``.
    computed, resumed : int
        Runs computed by this call, and runs read back from task files of an earlier call.
    path : pathlib.Path or None
        The combined netCDF file written (with ``out``), else None.
    """

    data: xr.Dataset
    kpis: pd.DataFrame
    failed: pd.DataFrame
    computed: int
    resumed: int
    path: Path | None = None

    def plot(self, kpi: str = "delay_vh", x: str | None = None, ax=None):
        """Draw ``kpi`` against a swept parameter, one line per variant (see :func:`plot_sweep`)."""
        return plot_sweep(self, kpi, x, ax=ax)

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}: {n}" for d, n in self.data.sizes.items() if d not in ("time", "link", "kpi"))
        return f"<SweepResult ({dims}): {len(self.kpis)} runs ({self.computed} computed, {self.resumed} resumed), {len(self.failed)} failed>"


def _combine(dims: dict[str, list], tasks: Sequence[_Task], results: Mapping[str, xr.Dataset], attrs: dict) -> xr.Dataset:
    """One dataset over the sweep dims, filling each completed task's slot (union of inner coords)."""
    shape = tuple(len(v) for v in dims.values())
    inner: dict[str, list] = {}
    templates: dict[str, xr.DataArray] = {}
    for task in tasks:
        ds = results.get(task.digest)
        if ds is None:
            continue
        for name, var in ds.data_vars.items():
            templates.setdefault(name, var)
        for dim, coord in ds.coords.items():
            seen = inner.setdefault(dim, [])
            known = set(seen)
            seen.extend(v for v in coord.values.tolist() if v not in known)
    if "time" in inner:
        inner["time"] = sorted(inner["time"])
    data_vars = {}
    for name, tmpl in templates.items():
        vshape = shape + tuple(len(inner[d]) for d in tmpl.dims)
        is_str = tmpl.dtype.kind in "US"
        arr = np.full(vshape, "" if is_str else np.nan, dtype=object if is_str else np.float64)
        for task in tasks:
            ds = results.get(task.digest)
            if ds is None or name not in ds:
                continue
            var = ds[name]
            if any(var.sizes[d] != len(inner[d]) or var[d].values.tolist() != inner[d] for d in var.dims):
                var = var.reindex({d: inner[d] for d in var.dims})
            arr[task.index] = var.values
        if is_str:
            arr = arr.astype(str)
        data_vars[name] = (tuple(dims) + tmpl.dims, arr, dict(tmpl.attrs))
    coords = {d: (d, np.asarray(v)) for d, v in dims.items()}
    for d, v in inner.items():
        first = next(ds for ds in results.values() if d in ds.coords)
        coords[d] = (d, np.asarray(v), dict(first[d].attrs))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _kpi_frame(dims: dict[str, list], tasks: Sequence[_Task], results: Mapping[str, xr.Dataset]) -> pd.DataFrame:
    rows, index = [], []
    for task in tasks:
        ds = results.get(task.digest)
        if ds is None:
            continue
        row = dict(zip(ds["kpi"].values.tolist(), ds["kpis"].values.tolist())) if "kpis" in ds else {}
        for name, var in ds.data_vars.items():
            if var.ndim == 0 and var.dtype.kind in "US":
                row[name] = str(var.values)
        rows.append(row)
        index.append(tuple(dims[d][i] for d, i in zip(dims, task.index)))
    mi = pd.MultiIndex.from_tuples(index, names=list(dims)) if index else pd.MultiIndex.from_arrays([[]] * len(dims), names=list(dims))
    return pd.DataFrame(rows, index=mi)


# ----------------------------------------------------------------------------- the sweep
def sweep(
    scenario: str | Scenario,
    params: Mapping[str, Sequence] | None = None,
    variants: None | str | Mapping[str, Any] | Sequence[Any] = None,
    seeds: int | Sequence[int] = 1,
    *,
    engine: str = "macro",
    client=None,
    scheduler: str | None = None,
    backend: str = "dask",
    n_workers: int = 2,
    out: str | os.PathLike | None = None,
    keep: Sequence[str] = DEFAULT_KEEP,
    retries: int = 2,
    errors: str = "warn",
    progress: bool = True,
    **options,
) -> SweepResult:
    """Run the cross product parameters x variants x seeds and gather the results.

    Parameters
    ----------
    scenario : str or Scenario
        A scenario id of :mod:`trafficsim.scenarios` (parameters go to ``scenarios.load``), or
        a Scenario (only ``demand_scale`` can be swept, through ``Demand.scaled``).
    params : dict of str to sequence, optional
        Parameter name -> values; each list becomes a dimension of the result, a scalar value
        is fixed for every run. Unknown names raise :class:`SweepError` listing the valid ones.
    variants : None, "all", dict or list, optional
        None: the baseline only. ``"all"``: the baseline and each of the scenario's own
        ``measures``. A dict: variant name -> measure, list of measures, or None (the baseline,
        or the scenario's own measure of that name). A list: measures (named by their ``name``
        attribute or class) or names of the scenario's measures; the baseline comes first.
        A measure is anything with ``apply(scenario) -> Scenario``, or such a callable.
    seeds : int or sequence of int
        Number of replications (seeds ``0 .. seeds - 1``) or the seeds themselves.
    engine : str
        Simulation engine (``"macro"``, ``"micro"``, ``"sumo"``).
    client : distributed.Client or concurrent.futures.Executor, optional
        Run on this client (left open). Otherwise ``scheduler`` or a new LocalCluster. With
        ``backend="processes"``, an executor (e.g. a ``ProcessPoolExecutor`` kept warm across
        sweeps) to run on instead of a new pool.
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``; its workers need
        trafficsim installed. Ignored when ``client`` is given.
    backend : {"dask", "processes", "serial"}
        ``"processes"`` runs on a local process pool of ``n_workers`` (no Dask needed);
        ``"serial"`` runs here, one task after another.
    n_workers : int
        Worker processes of the LocalCluster or process pool (1 thread each).
    out : path, optional
        Directory for the task files (``out/tasks/``) and the combined ``out/sweep.nc`` and
        ``out/kpis.csv``; a path ending in ``.nc`` names the combined file, its tasks going to
        ``<stem>.tasks/``. Existing task files of the same runs are reused (resume).
    keep : sequence of str
        ``time x link`` result variables to keep per run (memory: runs x time x links x 8 bytes
        each); ``()`` keeps the KPIs only.
    retries : int
        Times a failing task is retried before it is reported.
    errors : {"warn", "raise"}
        After all tasks ran, failures raise a :class:`SweepTaskWarning` or a :class:`SweepError`
        (the results of the others are written and, with "warn", returned).
    progress : bool
        Show a progress bar (stderr).
    **options
        Passed to :func:`trafficsim.simulate` (``dt_s``, ``record_interval_s``, engine options).

    Returns
    -------
    SweepResult
        ``data`` (xarray), ``kpis`` (pandas), ``failed``, counts and the combined file.
    """
    if not isinstance(scenario, (str, Scenario)):
        raise SweepError(f"scenario must be a scenario id or a Scenario, got {type(scenario).__name__}")
    if isinstance(scenario, str):
        from . import scenarios

        if scenario not in scenarios.names():
            raise SweepError(f"unknown scenario {scenario!r}; valid ids: {', '.join(scenarios.names())}")
    from .engines import ENGINES

    if engine not in ENGINES:
        raise SweepError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if backend not in ("dask", "processes", "serial"):
        raise SweepError(f"backend must be 'dask', 'processes' or 'serial', got {backend!r}")
    if errors not in ("warn", "raise"):
        raise SweepError(f"errors must be 'warn' or 'raise', got {errors!r}")
    if int(retries) < 0 or int(n_workers) < 1:
        raise SweepError(f"retries must be >= 0 and n_workers >= 1, got {retries} and {n_workers}")
    options.pop("progress", None)
    swept, fixed = _check_params(scenario, params)
    variant_table = _check_variants(scenario, variants)
    seed_list = _check_seeds(seeds)
    keep = tuple(keep)
    dims: dict[str, list] = {**swept, "variant": list(variant_table), "seed": seed_list}

    source_token = scenario if isinstance(scenario, str) else _digest(scenario.to_dict(), scenario.name)
    tasks: list[_Task] = []
    for index in itertools.product(*(range(len(v)) for v in dims.values())):
        values = {d: dims[d][i] for d, i in zip(dims, index)}
        task_params = {**fixed, **{k: values[k] for k in swept}}
        variant, seed = values["variant"], values["seed"]
        measures = variant_table[variant]
        token = None if measures is None else [_measure_token(m) for m in measures]
        digest = _digest(TASK_FORMAT, source_token, task_params, variant, token, seed, engine, options, keep)
        tasks.append(_Task(index, task_params, variant, seed, digest))

    task_dir = combined = None
    results: dict[str, xr.Dataset] = {}
    if out is not None:
        task_dir, combined = _task_dir(out)
        task_dir.mkdir(parents=True, exist_ok=True)
        for task in tasks:
            path = task_dir / f"task-{task.digest}.nc"
            if path.exists():
                ds = _read_task(path, task.digest)
                if ds is not None:
                    results[task.digest] = ds
    resumed = len(results)
    todo = {t.digest: (scenario, t.params, t.variant, variant_table[t.variant], t.seed, engine, options, keep, t.digest)
            for t in tasks if t.digest not in results}

    failures: dict[str, str] = {}
    if todo:
        if progress:
            from tqdm.auto import tqdm
        else:   # tqdm.auto warns in a notebook without ipywidgets even when the bar is disabled
            from tqdm import tqdm

        if backend == "dask":
            runner = _DaskRunner(client, scheduler, int(n_workers), int(retries))
        else:
            runner = _PoolRunner(0 if backend == "serial" else int(n_workers), int(retries),
                                 executor=client if backend == "processes" else None)
        bar = tqdm(total=len(tasks), initial=resumed, desc="sweep", unit="run", disable=not progress, file=sys.stderr)
        try:
            for digest, ds, error in runner.run(todo):
                if error is not None:
                    failures[digest] = error
                else:
                    results[digest] = ds
                    if task_dir is not None:
                        _write_atomic(ds, task_dir / f"task-{digest}.nc")
                bar.update(1)
        finally:
            bar.close()
            runner.close()

    attrs = {
        "title": f"trafficsim sweep of {scenario if isinstance(scenario, str) else scenario.name or 'scenario'}",
        "engine": engine, "sweep_dims": " ".join(dims), "options": json.dumps(options, sort_keys=True, default=str),
        "Conventions": "CF-1.8",
    }
    data = _combine(dims, tasks, results, attrs)
    kpis = _kpi_frame(dims, tasks, results)
    failed_tasks = [t for t in tasks if t.digest in failures]
    failed = pd.DataFrame(
        {"error": [failures[t.digest].split("\n", 1)[0] for t in failed_tasks],
         "traceback": [failures[t.digest] for t in failed_tasks]},
        index=pd.MultiIndex.from_tuples([tuple(dims[d][i] for d, i in zip(dims, t.index)) for t in failed_tasks], names=list(dims))
        if failed_tasks else pd.MultiIndex.from_arrays([[]] * len(dims), names=list(dims)),
    )
    path = None
    if combined is not None and not failures:
        _write_atomic(data, combined)
        kpis.to_csv(combined.with_name("kpis.csv") if combined.name == "sweep.nc" else combined.with_suffix(".csv"))
        path = combined
    result = SweepResult(data, kpis, failed, computed=len(todo) - len(failures), resumed=resumed, path=path)
    if failures:
        first = failed.iloc[0]
        msg = (f"{len(failures)} of {len(tasks)} sweep runs failed after {retries} retries; first: {dict(zip(dims, failed.index[0]))}: "
               f"{first['error']}. See .failed; rerun the sweep (with out=) to retry only those.")
        if errors == "raise":
            raise SweepError(msg)
        warnings.warn(msg, SweepTaskWarning, stacklevel=2)
    return result


# ----------------------------------------------------------------------------- summary plot
def plot_sweep(result: SweepResult | pd.DataFrame, kpi: str = "delay_vh", x: str | None = None, ax=None):
    """KPI against a swept parameter: one line per variant (seed mean), band = seed min..max.

    Parameters
    ----------
    result : SweepResult or pandas.DataFrame
        A sweep or its ``kpis`` table.
    kpi : str
        Column to draw (see :data:`trafficsim.results.KPI_DESCRIPTIONS`).
    x : str, optional
        Swept parameter on the x axis; default the first. Other swept parameters split the
        lines further (one per combination).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None. Never shown, saved or closed.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = result.kpis if isinstance(result, SweepResult) else result
    if kpi not in table.columns:
        raise ValueError(f"KPI {kpi!r} not in the sweep's table; columns: {', '.join(map(str, table.columns))}")
    levels = [n for n in table.index.names if n not in ("variant", "seed")]
    if x is None:
        if not levels:
            raise ValueError("the sweep has no swept parameter to draw against; give params=")
        x = levels[0]
    if x not in levels:
        raise ValueError(f"x must be a swept parameter: {', '.join(levels)}; got {x!r}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    values = pd.to_numeric(table[kpi], errors="coerce").astype(float)
    frame = values.reset_index()
    groups = ["variant"] + [n for n in levels if n != x]
    for key, part in frame.groupby(groups, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        stats = part.groupby(x, sort=True)[kpi].agg(["mean", "min", "max"])
        label = ", ".join([str(key[0])] + [f"{g}={v}" for g, v in zip(groups[1:], key[1:])])
        (line,) = ax.plot(stats.index, stats["mean"], marker="o", label=label)
        if part["seed"].nunique() > 1:
            ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2, lw=0)
    from .results import KPI_DESCRIPTIONS

    unit = KPI_DESCRIPTIONS.get(kpi, ("", ""))[0]
    ax.set_xlabel(x)
    ax.set_ylabel(f"{kpi} [{unit}]" if unit else kpi)
    ax.set_title(f"{kpi} vs {x} (band: seed min..max)")
    ax.legend(fontsize="small", loc="best")
    return ax


# ----------------------------------------------------------------------------- command line
def parse_range(text: str) -> tuple[str, list[float]]:
    """``NAME=START:STOP:N`` (N values, both ends included) or ``NAME=V1,V2,...`` -> (name, values)."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValueError(f"bad --param {text!r}: write NAME=START:STOP:N, e.g. demand_scale=0.8:1.2:5, or NAME=V1,V2")
    try:
        if ":" in spec:
            start, stop, n = spec.split(":")
            n = int(n)
            if n < 1:
                raise ValueError
            values = np.linspace(float(start), float(stop), n).tolist()
            return name, [round(v, 12) for v in values]
        return name, [_number(v) for v in spec.split(",")]
    except ValueError:
        raise ValueError(f"bad --param {text!r}: write NAME=START:STOP:N (N >= 1 values) or NAME=V1,V2") from None


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def add_command(subparsers, common) -> None:
    """Register ``trafficsim sweep`` with the CLI (the hook of :data:`trafficsim.cli.EXTENSIONS`)."""
    from .routing import ROUTE_CHOICES

    p = subparsers.add_parser("sweep", parents=[common], help="run parameters x variants x seeds on Dask; write a result dataset")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario id (see `trafficsim list`) or a scenario .toml file")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=START:STOP:N",
                   help="swept parameter: N values from START to STOP, or NAME=V1,V2,... (repeatable)")
    p.add_argument("--variants", choices=["baseline", "all"], default="baseline", help="baseline only, or baseline + each of the scenario's measures")
    p.add_argument("--seeds", type=int, default=1, help="replications per combination (default 1)")
    p.add_argument("--engine", "-e", default="macro", help="simulation engine (default: macro)")
    p.add_argument("--route-choice", default="fixed", choices=ROUTE_CHOICES,
                   help="route choice of every run (macro, micro; see `trafficsim run --help`; default fixed)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    p.add_argument("--workers", type=int, default=2, help="workers of the local cluster (default 2)")
    p.add_argument("--backend", choices=["dask", "processes", "serial"], default="dask", help="where tasks run (default dask)")
    p.add_argument("--retries", type=int, default=2, help="retries of a failing run (default 2)")
    p.add_argument("--keep", default=",".join(DEFAULT_KEEP), help="time x link variables to keep, comma-separated ('' for KPIs only)")
    p.add_argument("--out", metavar="S.nc", help="combined result file; per-run files go to S.tasks/ and make the sweep resumable")
    p.add_argument("--kpis", metavar="K.csv", help="write the KPI table (one row per run) to CSV")
    p.add_argument("--plot", metavar="P.png", help="save the KPI-vs-parameter summary plot")
    p.add_argument("--kpi", default="delay_vh", help="KPI of the summary plot (default delay_vh)")
    p.set_defaults(handler=_cmd_sweep)


def _cmd_sweep(args) -> int:
    from .cli import CLIError, _check_output, _check_plot, _figure, _info, _load_scenario, _looks_like_file, _route_options, _save
    from .results import KPI_DESCRIPTIONS

    # everything that can be checked before the runs is: a typo must not cost the sweep
    _check_output(args.kpis, "--kpis", [".csv"])
    _check_plot(args.plot)
    if args.plot and args.kpi not in KPI_DESCRIPTIONS:
        raise CLIError(f"--kpi {args.kpi!r} is not a KPI; known: {', '.join(KPI_DESCRIPTIONS)}")
    try:
        params = dict(parse_range(t) for t in args.param)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    source: str | Scenario = args.scenario
    if _looks_like_file(args.scenario):
        source = _load_scenario(args.scenario, {})
    keep = tuple(k for k in args.keep.split(",") if k.strip())
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SweepTaskWarning)
            sw = sweep(source, params, "all" if args.variants == "all" else None, args.seeds, engine=args.engine,
                       scheduler=args.scheduler, backend=args.backend, n_workers=args.workers, out=args.out, keep=keep,
                       retries=args.retries, progress=not args.quiet, **_route_options(args))
    except SweepError as exc:
        raise CLIError(str(exc)) from None
    for w in caught:
        print(f"trafficsim: warning: {w.message}", file=sys.stderr)
    if sw.path is not None:
        _info(args, f"wrote {sw.path} ({sw.computed} runs computed, {sw.resumed} resumed)")
    if args.kpis:
        sw.kpis.to_csv(args.kpis)
        _info(args, f"wrote {args.kpis}")
    if args.plot:
        fig, axes = _figure(1, size=(8, 4.5))
        plot_sweep(sw, args.kpi, ax=axes[0, 0])
        _save(fig, args.plot, args)
    cols = [c for c in ("delay_vh", "travel_time_index", "completed", "unserved", "max_queue_m") if c in sw.kpis.columns]
    print(sw.kpis[cols].to_string(float_format=lambda v: f"{v:,.4g}") if cols else sw.kpis.to_string())
    return 1 if len(sw.failed) else 0
