"""Sweeps on a real Dask LocalCluster (2 worker processes) and on a process pool.

The sweep's numbers must be those of plain serial ``ts.simulate`` runs, bit for bit; a worker
that dies mid-task, a task that fails and an interrupted sweep must not lose the other results.
Failures are injected deterministically through measures that use marker files (no timing).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import trafficsim as ts  # noqa: E402
from trafficsim.sweep import SweepError, SweepTaskWarning, parse_range, plot_sweep  # noqa: E402

import distributed  # noqa: E402  (the dask extra installs it)

#: A short merge study: the queue builds and clears in 75 min; a run takes ~0.1 s.
SHORT = dict(peak_start_s=1200.0, peak_duration_s=1200.0, ramp_s=600.0, clearance_s=1200.0)


# ----------------------------------------------------------------------------- test measures
@dataclasses.dataclass(frozen=True)
class Widen:
    """Give ``link`` more lanes (a stand-in for trafficsim.measures while it is being written)."""

    link: str
    lanes: int

    def apply(self, sc: ts.Scenario) -> ts.Scenario:
        net = sc.network.copy()
        net.update_link(self.link, lanes=self.lanes)
        return sc.replace(network=net)


def _first_time(marker: str) -> bool:
    """True only for the first caller across processes (creates ``marker`` atomically)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class KillWorkerOnce:
    """Kill the process that applies it the first time (marker file), then act as a no-op."""

    marker: str

    def apply(self, sc):
        if _first_time(self.marker):
            os._exit(1)
        return sc


@dataclasses.dataclass(frozen=True)
class FailOnce:
    """Raise the first time it is applied (marker file), then act as a no-op."""

    marker: str

    def apply(self, sc):
        if _first_time(self.marker):
            raise RuntimeError("transient failure")
        return sc


@dataclasses.dataclass(frozen=True)
class Broken:
    def apply(self, sc):
        raise ValueError("this measure always fails")


def serial(params: dict, measures=(), seed: int = 0) -> ts.Result:
    sc = ts.scenarios.load("merge", **{**SHORT, **params})
    for m in measures:
        sc = m.apply(sc)
    return ts.simulate(sc, engine="macro", seed=seed)


def assert_run_equal(sw, selection: dict, res: ts.Result):
    """Every kept variable and KPI of one sweep slot equals the serial run, bit for bit."""
    run = sw.data.sel(selection)
    for name in ("flow", "speed", "queue"):
        np.testing.assert_array_equal(run[name].values, res.data[name].values, err_msg=f"{name} at {selection}")
    for kpi, value in res.kpis.items():
        if kpi == "bottleneck":
            assert str(run["bottleneck"].values) == value
        elif np.isnan(value):
            assert np.isnan(run["kpis"].sel(kpi=kpi).item())
        else:
            assert run["kpis"].sel(kpi=kpi).item() == value, kpi
    row = sw.kpis.loc[tuple(selection.values())]
    assert row["delay_vh"] == res.kpis["delay_vh"]


@pytest.fixture(scope="module")
def client():
    import logging

    # compile the kernels here once, so that the workers load them from numba's cache instead of
    # compiling them side by side
    ts.simulate(ts.scenarios.load("merge", **SHORT))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster, distributed.Client(cluster) as c:
        yield c


# ----------------------------------------------------------------------------- dask
def test_sweep_equals_serial_runs_bit_for_bit(client, tmp_path):
    variants = {"baseline": None, "wide": Widen("section", 3)}
    sw = ts.sweep("merge", params={"demand_scale": [0.9, 1.2], **SHORT}, variants=variants, seeds=2, client=client,
                  out=tmp_path / "s", progress=False)
    assert dict(sw.data["flow"].sizes) == {"demand_scale": 2, "variant": 2, "seed": 2, "time": 70, "link": 4}
    assert sw.computed == 8 and sw.resumed == 0 and sw.failed.empty and len(sw.kpis) == 8
    for scale in (0.9, 1.2):
        for name, measures in (("baseline", ()), ("wide", (Widen("section", 3),))):
            res = serial({"demand_scale": scale}, measures)
            for seed in (0, 1):
                assert_run_equal(sw, {"demand_scale": scale, "variant": name, "seed": seed}, res)
    # the remedy works, so the variants differ: the comparison is not vacuous
    assert sw.kpis.xs("wide", level="variant")["delay_vh"].max() < sw.kpis.xs("baseline", level="variant")["delay_vh"].max()
    # the combined file holds the same numbers
    on_disk = xr.load_dataset(sw.path)
    xr.testing.assert_identical(on_disk, sw.data)
    assert len(list((tmp_path / "s" / "tasks").glob("task-*.nc"))) == 8
    assert (tmp_path / "s" / "kpis.csv").exists()


def test_killed_worker_loses_no_results(client, tmp_path):
    marker = str(tmp_path / "killed")
    variants = {"baseline": None, "killer": KillWorkerOnce(marker)}
    sw = ts.sweep("merge", params={"demand_scale": [0.9, 1.1, 1.2]}, variants=variants, client=client,
                  out=tmp_path / "k.nc", progress=False)
    assert Path(marker).exists()  # a worker did die mid-task
    assert sw.failed.empty and len(sw.kpis) == 6
    for scale in (0.9, 1.1, 1.2):
        res = ts.simulate(ts.scenarios.load("merge", demand_scale=scale))
        for name in ("baseline", "killer"):
            run = sw.data.sel(demand_scale=scale, variant=name, seed=0)
            np.testing.assert_array_equal(run["flow"].values, res.data["flow"].values)
    assert len(list((tmp_path / "k.tasks").glob("task-*.nc"))) == 6
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it: leave the cluster whole


def test_failing_task_is_retried_then_reported_without_losing_others(client, tmp_path):
    variants = {"baseline": None, "flaky": FailOnce(str(tmp_path / "once")), "broken": Broken()}
    with pytest.warns(SweepTaskWarning, match="1 of 3 sweep runs failed"):
        sw = ts.sweep("merge", params={"demand_scale": [1.0], **SHORT}, variants=variants, retries=1, client=client,
                      out=tmp_path / "f", progress=False)
    assert list(sw.failed.index) == [(1.0, "broken", 0)]
    assert "ValueError: this measure always fails" in sw.failed["error"].iloc[0]
    assert "Traceback" in sw.failed["traceback"].iloc[0]
    # the transient failure was retried; the baseline and flaky results are kept and on disk
    assert sorted(sw.kpis.index.get_level_values("variant")) == ["baseline", "flaky"]
    assert len(list((tmp_path / "f" / "tasks").glob("task-*.nc"))) == 2
    assert np.isnan(sw.data["flow"].sel(variant="broken")).all()
    assert sw.path is None  # no combined file while runs are missing


def test_failures_raise_on_request_after_keeping_the_others(tmp_path):
    with pytest.raises(SweepError, match="this measure always fails"):
        ts.sweep("merge", params=SHORT, variants={"baseline": None, "broken": Broken()}, retries=0, errors="raise",
                 backend="serial", out=tmp_path, progress=False)
    assert len(list((tmp_path / "tasks").glob("task-*.nc"))) == 1


def test_default_local_cluster_and_resume_computes_only_missing(tmp_path):
    out = tmp_path / "study"
    params = {"demand_scale": [0.9, 1.0, 1.2], **SHORT}
    first = ts.sweep("merge", params=params, out=out, progress=False, keep=("flow",))  # own LocalCluster
    assert first.computed == 3 and first.resumed == 0
    files = sorted((out / "tasks").glob("task-*.nc"))
    for f in files[:2]:  # as if the sweep had been interrupted before these two arrived
        f.unlink()
    again = ts.sweep("merge", params=params, out=out, progress=False, keep=("flow",), backend="serial")
    assert again.computed == 2 and again.resumed == 1
    xr.testing.assert_identical(again.data, first.data)
    # more seeds: only the new runs are computed
    more = ts.sweep("merge", params=params, seeds=2, out=out, progress=False, keep=("flow",), backend="serial")
    assert more.computed == 3 and more.resumed == 3
    # a changed option is a different run, never a stale file
    other = ts.sweep("merge", params=params, out=out, progress=False, keep=("flow",), backend="serial",
                     record_interval_s=120)
    assert other.computed == 3 and other.resumed == 0


# ----------------------------------------------------------------------------- processes (no dask)
def test_process_pool_equals_serial():
    sw = ts.sweep("merge", params={"demand_scale": [0.9, 1.2], **SHORT}, seeds=[3], backend="processes", n_workers=2,
                  progress=False)
    for scale in (0.9, 1.2):
        assert_run_equal(sw, {"demand_scale": scale, "variant": "baseline", "seed": 3}, serial({"demand_scale": scale}, seed=3))


def test_scenario_object_sweeps_demand_scale():
    sc = ts.scenarios.load("merge", **SHORT)
    sw = ts.sweep(sc, params={"demand_scale": [0.5, 1.3]}, backend="serial", progress=False)
    for scale in (0.5, 1.3):
        ref = ts.simulate(sc.replace(demand=sc.demand.scaled(scale)))
        np.testing.assert_array_equal(sw.data["flow"].sel(demand_scale=scale, variant="baseline", seed=0).values, ref.data["flow"].values)


# ----------------------------------------------------------------------------- input errors
def test_unknown_parameter_lists_valid_ones():
    with pytest.raises(SweepError, match=r"unknown parameter 'lanes'.*valid: demand_scale, peak_start_s"):
        ts.sweep("merge", params={"lanes": [1, 2]}, backend="serial")
    sc = ts.scenarios.load("merge")
    with pytest.raises(SweepError, match="valid: demand_scale"):
        ts.sweep(sc, params={"section_lanes": [1, 2]}, backend="serial")
    with pytest.raises(SweepError, match="unknown scenario 'nope'"):
        ts.sweep("nope", backend="serial")
    with pytest.raises(SweepError, match="unknown engine"):
        ts.sweep("merge", engine="warp", backend="serial")
    with pytest.raises(SweepError, match="no measure 'Tidal'"):
        ts.sweep("merge", variants=["Tidal"], backend="serial")
    with pytest.raises(SweepError, match="seeds must be >= 1"):
        ts.sweep("merge", seeds=0, backend="serial")


def test_parse_range():
    assert parse_range("demand_scale=0.8:1.2:3") == ("demand_scale", [0.8, 1.0, 1.2])
    assert parse_range("section_lanes=1,2,3") == ("section_lanes", [1, 2, 3])
    with pytest.raises(ValueError, match="NAME=START:STOP:N"):
        parse_range("demand_scale=0.8:1.2")


# ----------------------------------------------------------------------------- plot and CLI
def test_summary_plot_draws_one_line_per_variant_with_seed_band():
    sw = ts.sweep("merge", params={"demand_scale": [0.9, 1.2], **SHORT}, variants={"baseline": None, "wide": Widen("section", 3)},
                  seeds=[0, 1], backend="serial", progress=False, keep=())
    ax = plot_sweep(sw, "delay_vh")
    try:
        assert [line.get_label() for line in ax.get_lines()] == ["baseline", "wide"]
        np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), sw.kpis.xs("baseline", level="variant")["delay_vh"].groupby("demand_scale").mean())
        assert len(ax.collections) == 2  # the seed bands
        assert ax.get_ylabel() == "delay_vh [veh h]" and ax.get_xlabel() == "demand_scale"
        with pytest.raises(ValueError, match="not in the sweep's table"):
            plot_sweep(sw, "nope", ax=ax)
    finally:
        plt.close(ax.figure)


def test_cli_sweep(tmp_path, capsys):
    from trafficsim.cli import main

    out, png = tmp_path / "s.nc", tmp_path / "s.png"
    code = main(["sweep", "merge", "--param", "demand_scale=0.9:1.1:2", "--seeds", "1", "--backend", "serial",
                 "--out", str(out), "--plot", str(png), "-q"])
    assert code == 0
    assert out.exists() and png.exists() and len(list((tmp_path / "s.tasks").glob("*.nc"))) == 2
    assert "delay_vh" in capsys.readouterr().out
    assert xr.load_dataset(out).sizes["demand_scale"] == 2
    assert main(["sweep", "merge", "--param", "lanes=1:2:2", "--backend", "serial", "-q"]) == 2
    # the route choice reaches every run (it is part of each run's recorded options)
    out2 = tmp_path / "r.nc"
    assert main(["sweep", "merge", "--param", "demand_scale=1:1:1", "--backend", "serial", "--route-choice", "en-route",
                 "--out", str(out2), "-q"]) == 0
    assert "en-route" in xr.load_dataset(out2).attrs["options"]
    assert main(["sweep", "merge", "--param", "demand_scale=1:1:1", "--backend", "serial", "--engine", "sumo",
                 "--route-choice", "dynamic", "-q"]) == 2
