"""The ``trafficsim`` command, run in-process through ``main(argv) -> int``.

The scenario library and ``evaluate`` are replaced by small fakes so that these tests check the
command line's behaviour (output, files, exit codes, messages) quickly and on their own; one
test at the end runs the real library when it is installed.
"""

from __future__ import annotations

import json
import sys
import types

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import trafficsim as ts  # noqa: E402
from trafficsim import cli  # noqa: E402


def lane_drop(demand_scale: float = 1.0, bridge_lanes: int = 2) -> ts.Scenario:
    net = ts.Network()
    for nid, x in (("A", 0.0), ("B", 1500.0), ("C", 3500.0)):
        net.add_node(nid, x=x, y=0.0)
    net.add_link("up", "A", "B", length_m=1500, lanes=6, free_speed_kmh=60, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    net.add_link("bridge", "B", "C", length_m=2000, lanes=bridge_lanes, free_speed_kmh=60, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    demand = ts.Demand()
    demand.add("A", "C", [(0, 4500 * demand_scale), (1200, 1000 * demand_scale)])
    return ts.Scenario(network=net, demand=demand, duration_s=2400, name="lane-drop")


class Widen:
    """A stand-in measure: one more bridge lane."""

    def apply(self, sc):
        sc = sc.copy()
        sc.network.update_link("bridge", lanes=3)
        return sc


def fake_load(id, demand_scale=1.0, bridge_lanes=2):
    if id != "lane-drop":
        raise KeyError(id)
    if not demand_scale >= 0:   # as the library's builders do (scenarios._build.PeakShape)
        raise ValueError(f"peak shape: demand_scale must be a finite number >= 0, got {demand_scale!r}")
    sc = lane_drop(demand_scale, bridge_lanes)
    sc.meta.update(
        english_name="Lane drop", original_name="车道减少", cause_class="road condition",
        symptom="6 lanes squeeze into 2", bottleneck_link="up", corridor=["up", "bridge"],
        remedies=["Widening"], parameters={"demand_scale": demand_scale, "bridge_lanes": bridge_lanes},
    )
    sc.measures = {"widen": [Widen()]}
    return sc


@pytest.fixture
def library(monkeypatch):
    lib = types.SimpleNamespace(names=lambda: ["lane-drop"], load=fake_load, card=lambda id: "Lane drop\n\n**Mechanism.** six into two.")
    monkeypatch.setattr(cli, "_scenario_library", lambda: lib)
    return lib


@pytest.fixture
def no_library(monkeypatch):
    monkeypatch.setattr(cli, "_scenario_library", lambda: None)


@pytest.fixture
def toml_file(tmp_path):
    return str(lane_drop().to_toml(tmp_path / "lane_drop.toml"))


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- run
def test_run_toml_prints_kpis_and_writes_files(capsys, tmp_path, toml_file):
    nc, csv, png = tmp_path / "r.nc", tmp_path / "k.csv", tmp_path / "p.png"
    code, out, err = run(capsys, "run", toml_file, "--out", str(nc), "--kpis", str(csv), "--plot", str(png), "-q")
    assert code == 0, err
    assert err == ""  # -q: no progress bar, no informational lines
    assert "delay_vh" in out and "veh h" in out
    ds = xr.open_dataset(nc)
    assert set(ds["link"].values) == {"up", "bridge"} and "cell_density" in ds
    ds.close()
    kpis = pd.read_csv(csv, index_col="kpi")["value"]
    assert float(kpis["completed"]) > 0
    assert png.stat().st_size > 10_000


def test_run_json_is_machine_readable_and_scales_demand(capsys, toml_file):
    code, out, _ = run(capsys, "run", toml_file, "--json", "-q")
    full = json.loads(out)["kpis"]
    code, out, _ = run(capsys, "run", toml_file, "--json", "-q", "--param", "demand_scale=0.5")
    assert code == 0
    doc = json.loads(out)
    assert doc["engine"] == "macro" and doc["params"] == {"demand_scale": 0.5}
    assert doc["kpis"]["demand"] == pytest.approx(0.5 * full["demand"])
    assert doc["kpis"]["delay_vh"] < full["delay_vh"]


def test_run_shows_progress_and_info_unless_quiet(capsys, toml_file):
    code, out, err = run(capsys, "run", toml_file, "--record-interval", "120")
    assert code == 0
    assert "running lane-drop on macro" in err


def test_run_library_scenario_with_param_and_measure(capsys, library):
    code, out, _ = run(capsys, "run", "lane-drop", "--json", "-q")
    base = json.loads(out)["kpis"]
    code, out, _ = run(capsys, "run", "lane-drop", "--json", "-q", "-m", "widen")
    assert code == 0
    widened = json.loads(out)
    assert widened["measures"] == ["widen"]
    assert widened["kpis"]["delay_vh"] < base["delay_vh"]
    code, out, _ = run(capsys, "run", "lane-drop", "--json", "-q", "-p", "bridge_lanes=3")
    assert json.loads(out)["kpis"]["delay_vh"] == pytest.approx(widened["kpis"]["delay_vh"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "lane-drp"], "unknown scenario 'lane-drp'; did you mean 'lane-drop'?"),
        (["run", "lane-drop", "--param", "demand_scale"], "bad --param 'demand_scale': write it as NAME=VALUE"),
        (["run", "lane-drop", "--param", "lanes=3"], "bad --param"),
        (["run", "lane-drop", "--measure", "teleport"], "has no measure 'teleport'; its measures: widen"),
        (["run", "lane-drop", "--engine", "warp"], "unknown engine 'warp'; choose one of: hybrid, macro, micro, sumo"),
        (["run", "missing.toml"], "scenario file 'missing.toml' does not exist"),
        (["run", "lane-drop", "--engine", "sumo", "--route-choice", "en-route"],
         "--route-choice en-route needs the macro or micro engine; sumo runs fixed routes"),
        (["show", "nope"], "unknown scenario 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, library, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("trafficsim: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--param", "demand_scale=-1"], "bad --param: peak shape: demand_scale must be a finite number >= 0, got -1"),
    (["--measure", "widn"], "has no measure 'widn'; did you mean 'widen'? its measures: widen"),
    (["--out", "/nonexistent-dir/r.nc"], "--out '/nonexistent-dir/r.nc': directory '/nonexistent-dir' does not exist"),
    (["--out", "r.csv"], "--out 'r.csv': give a file ending in one of .nc"),
    (["--kpis", "k.txt"], "--kpis 'k.txt': give a file ending in one of .csv"),
    (["--plot", "p.xyz"], "--plot 'p.xyz': give a file ending in one of"),
])
def test_bad_input_is_refused_before_the_run(capsys, library, monkeypatch, argv, message):
    """A bad --param value, a misspelt measure, an output path that cannot be written: exit 2 and
    one line, before anything is simulated (they used to throw a finished run away, or exit 1
    with a raw ValueError)."""
    import trafficsim

    monkeypatch.setattr(trafficsim, "simulate", lambda *a, **k: pytest.fail("simulated before checking the input"))
    code, out, err = run(capsys, "run", "lane-drop", "-q", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("trafficsim: error: ")
    assert message in err


@pytest.mark.parametrize("option, value", [("--seed", "-3"), ("--dt", "0"), ("--dt", "-1"), ("--record-interval", "nan")])
def test_bad_numbers_are_usage_errors_naming_the_option(capsys, library, option, value):
    code, _, err = run(capsys, "run", "lane-drop", option, value)
    assert code == 2 and f"argument {option}: must be" in err


@pytest.mark.parametrize("name", ["widen", "WIDEN", "Widen", "w-i_d en"])
def test_measures_match_without_case_or_separators(capsys, library, name):
    code, out, err = run(capsys, "run", "lane-drop", "--json", "-q", "-m", name)
    assert code == 0, err
    assert json.loads(out)["kpis"]["delay_vh"] < json.loads(run(capsys, "run", "lane-drop", "--json", "-q")[1])["kpis"]["delay_vh"]


def test_warnings_are_one_line_without_source_code(capsys, toml_file, monkeypatch):
    import warnings

    import trafficsim

    def warns(*a, **k):
        warnings.warn("micro engine: merge priorities are not modelled", UserWarning)
        raise trafficsim.SimulationError("stop here")

    monkeypatch.setattr(trafficsim, "simulate", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        code, _, err = run(capsys, "run", toml_file, "-q")
    assert err.splitlines()[0] == "trafficsim: warning: micro engine: merge priorities are not modelled"
    assert ".py" not in err


def test_tables_are_not_cut_when_the_output_is_not_a_terminal(capsys, library, monkeypatch):
    """Piped into a file, the last column is whole (on a terminal it is cut to its width)."""
    import os

    monkeypatch.setattr(cli.shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((40, 24)))
    code, out, _ = run(capsys, "list")
    assert code == 0 and "6 lanes squeeze into 2" in out and "\u2026" not in out


def test_malformed_toml_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario]\nduration_s = 60\n[[links]]\nid = 'x'\nfrom = 'A'\n")
    code, _, err = run(capsys, "run", str(bad))
    assert code == 2
    assert "bad.toml" in err and "missing field" in err and err.count("\n") == 1
    bad.write_text("[scenario\n")
    code, _, err = run(capsys, "run", str(bad))
    assert code == 2 and "malformed TOML" in err


def test_toml_rejects_library_params(capsys, toml_file):
    code, _, err = run(capsys, "run", toml_file, "-p", "bridge_lanes=3")
    assert code == 2 and "only demand_scale applies" in err


def test_simulation_error_exit_1_and_debug_traceback(capsys, toml_file, monkeypatch):
    import trafficsim

    def broken(*args, **kwargs):
        raise trafficsim.SimulationError("kernel status 3 on link 'up': reduce dt_s")

    monkeypatch.setattr(trafficsim, "simulate", broken)
    code, _, err = run(capsys, "run", toml_file, "-q")
    assert code == 1
    assert err.strip() == "trafficsim: error: kernel status 3 on link 'up': reduce dt_s (run with --debug for the traceback)"
    code, _, err = run(capsys, "--debug", "run", toml_file, "-q")
    assert code == 1 and "Traceback" in err


def test_unexpected_error_names_its_type(capsys, toml_file, monkeypatch):
    import trafficsim

    monkeypatch.setattr(trafficsim, "simulate", lambda *a, **k: 1 / 0)
    code, _, err = run(capsys, "run", toml_file, "-q")
    assert code == 1 and "ZeroDivisionError" in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    assert run(capsys, )[0] == 2
    assert run(capsys, "run")[0] == 2
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "run", "x", "--seed", "abc")[0] == 2
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "evaluate" in out and "sweep" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and ts.__version__ in out


# ----------------------------------------------------------------------------- list / show
def test_list_table_and_json(capsys, library):
    code, out, _ = run(capsys, "list")
    assert code == 0
    header, _, row = out.splitlines()[:3]
    assert header.split() == ["id", "name", "cause", "symptom"]
    assert row.startswith("lane-drop") and "road condition" in row
    code, out, _ = run(capsys, "list", "--json")
    (entry,) = json.loads(out)
    assert entry == {
        "id": "lane-drop", "name": "Lane drop", "original_name": "车道减少",
        "cause_class": "road condition", "symptom": "6 lanes squeeze into 2",
    }


def test_list_keeps_going_when_one_scenario_is_broken(capsys, library):
    library.names = lambda: ["lane-drop", "broken"]
    code, out, err = run(capsys, "list")
    assert code == 0
    assert "broken" in out and "(unavailable)" in out
    assert "scenario 'broken' cannot be built" in err


def test_show_card(capsys, library):
    code, out, _ = run(capsys, "show", "lane-drop")
    assert code == 0
    assert "Mechanism. six into two." in out  # markdown emphasis dropped
    assert "bottleneck link: up" in out
    assert "corridor: up \u2192 bridge" in out
    assert "measures: widen" in out
    assert "bridge_lanes = 2" in out
    code, out, _ = run(capsys, "show", "lane-drop", "--json")
    card = json.loads(out)
    assert card["links"] == 2 and card["measures"] == ["widen"]


def test_show_toml_file(capsys, toml_file, no_library):
    code, out, _ = run(capsys, "show", toml_file)
    assert code == 0
    assert "3 nodes, 2 links, 3.5 km of road" in out


def test_library_missing_is_one_clear_line(capsys, no_library):
    for argv in (["list"], ["show", "jiangwan-bridge"], ["run", "jiangwan-bridge"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert "scenario library (trafficsim.scenarios) is not available" in err and "pass a scenario .toml file" in err


# ----------------------------------------------------------------------------- evaluate
@pytest.fixture
def fake_evaluate(monkeypatch):
    calls = {}

    def evaluate(sc, variants=None, engine="macro", seed=0, progress=False, workers=1, seeds=None, **options):
        calls.update(engine=engine, seed=seed, progress=progress, workers=workers, seeds=seeds, **options)
        results = {"baseline": ts.simulate(sc, engine)}
        for name, measures in sc.measures.items():
            variant = sc
            for m in measures:
                variant = m.apply(variant)
            results[name] = ts.simulate(variant, engine)
        kpis = pd.DataFrame({k: r.kpis for k, r in results.items()}).T
        data = xr.concat([r.data for r in results.values()], dim=pd.Index(list(results), name="variant"))
        return types.SimpleNamespace(kpis=kpis, data=data)

    module = types.ModuleType("trafficsim.measures")
    module.evaluate = evaluate
    monkeypatch.setitem(sys.modules, "trafficsim.measures", module)
    return calls


def test_evaluate_table_csv_plot(capsys, tmp_path, library, fake_evaluate):
    csv, png = tmp_path / "k.csv", tmp_path / "e.png"
    code, out, err = run(capsys, "evaluate", "lane-drop", "--out", str(csv), "--plot", str(png), "-q")
    assert code == 0, err
    assert fake_evaluate == {"engine": "macro", "seed": 0, "progress": False, "workers": 1, "seeds": None,
                             "record_interval_s": 60.0}
    header = out.splitlines()[0].split()
    assert header == ["kpi", "unit", "baseline", "widen"]
    (delay,) = [line for line in out.splitlines() if line.startswith("delay_vh ")]
    assert "veh h" in delay and "%)" in delay  # the change from the baseline
    table = pd.read_csv(csv, index_col=0)
    assert list(table.index) == ["baseline", "widen"]
    assert table.loc["widen", "delay_vh"] < table.loc["baseline", "delay_vh"]
    assert png.stat().st_size > 10_000


def test_evaluate_json(capsys, library, fake_evaluate):
    code, out, _ = run(capsys, "evaluate", "lane-drop", "--json", "-q")
    doc = json.loads(out)
    assert set(doc["kpis"]) == {"baseline", "widen"}
    assert doc["kpis"]["widen"]["delay_vh"] < doc["kpis"]["baseline"]["delay_vh"]


def test_evaluate_passes_the_route_choice(capsys, library, fake_evaluate):
    code, _, err = run(capsys, "evaluate", "lane-drop", "--route-choice", "en-route", "-q")
    assert code == 0, err
    assert fake_evaluate["route_choice"] == "en-route"
    code, _, err = run(capsys, "evaluate", "lane-drop", "--route-choice", "dynamic", "--engine", "sumo", "-q")
    assert code == 2 and "--route-choice dynamic needs the macro or micro engine" in err


def test_evaluate_workers(capsys, library, fake_evaluate):
    code, _, err = run(capsys, "evaluate", "lane-drop", "--workers", "3", "-q")
    assert code == 0, err
    assert fake_evaluate["workers"] == 3
    code, _, err = run(capsys, "evaluate", "lane-drop", "--workers", "0", "-q")
    assert code == 2 and "--workers must be >= 1" in err


def test_evaluate_seeds(capsys, library, fake_evaluate):
    """Without --seed/--seeds evaluate picks its own default (5 seeds on stochastic engines);
    --seeds N runs SEED .. SEED+N-1; bad counts are usage errors."""
    code, _, err = run(capsys, "evaluate", "lane-drop", "--seeds", "3", "--seed", "2", "-q")
    assert code == 0, err
    assert fake_evaluate["seeds"] == [2, 3, 4]
    code, _, err = run(capsys, "evaluate", "lane-drop", "--seed", "7", "-q")
    assert code == 0 and fake_evaluate["seeds"] is None and fake_evaluate["seed"] == 7
    code, _, err = run(capsys, "evaluate", "lane-drop", "--seeds", "0", "-q")
    assert code == 2 and "--seeds must be >= 1" in err


def test_evaluate_table_shows_confidence_half_widths(capsys, library, monkeypatch):
    """With several seeds the printed table gives each KPI's 95% half-width (micro, 2 seeds)."""
    code, out, err = run(capsys, "evaluate", "lane-drop", "--engine", "micro", "--seeds", "2", "-q")
    assert code == 0, err
    (delay,) = [line for line in out.splitlines() if line.startswith("delay_vh ")]
    assert delay.count("±") == 2  # baseline and the variant


def test_evaluate_without_measures_module(capsys, library, monkeypatch):
    monkeypatch.setitem(sys.modules, "trafficsim.measures", None)
    code, _, err = run(capsys, "evaluate", "lane-drop")
    assert code == 2 and "trafficsim.measures (evaluate) is not available" in err


# ----------------------------------------------------------------------------- the real library
def test_real_library_show_and_run(capsys):
    code, out, _ = run(capsys, "show", "jiangwan-bridge")
    assert code == 0 and "Jiangwan" in out
    code, out, _ = run(capsys, "run", "jiangwan-bridge", "--json", "-q")
    assert code == 0
    assert json.loads(out)["kpis"]["completed"] > 0


def test_python_dash_m(capsys):
    import subprocess

    out = subprocess.run([sys.executable, "-m", "trafficsim", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and ts.__version__ in out.stdout


def test_extension_module_adds_a_command(capsys, monkeypatch):
    module = types.ModuleType("fake_sweep")

    def add_command(subparsers, common):
        p = subparsers.add_parser("sweep", parents=[common], help="sweep parameters")
        p.add_argument("scenario")
        p.set_defaults(handler=lambda args: print(f"swept {args.scenario} quiet={args.quiet}") or 0)

    module.add_command = add_command
    monkeypatch.setitem(sys.modules, "fake_sweep", module)
    monkeypatch.setattr(cli, "EXTENSIONS", ("fake_sweep", "trafficsim.not_there"))
    code, out, _ = run(capsys, "sweep", "merge", "-q")
    assert code == 0 and out.strip() == "swept merge quiet=True"


def test_run_route_choice_reroutes_around_a_bottleneck(capsys, tmp_path):
    """Two routes, the short one through a one-lane bottleneck: fixed routes queue at it; with
    ``--route-choice dynamic`` or ``en-route`` departures take the long way too and the delay
    falls; an unknown choice is a usage error."""
    from test_routing_dynamic import two_routes

    path = str(two_routes().to_toml(tmp_path / "two.toml"))
    delay = {}
    for choice in ("fixed", "dynamic", "en-route"):
        code, out, err = run(capsys, "run", path, "--route-choice", choice, "--json", "-q")
        assert code == 0, err
        delay[choice] = json.loads(out)["kpis"]["delay_vh"]
    assert delay["dynamic"] < 0.5 * delay["fixed"] and delay["en-route"] < 0.5 * delay["fixed"]
    code, _, err = run(capsys, "run", path, "--route-choice", "sometimes")
    assert code == 2 and "--route-choice" in err


def test_from_sumo_writes_a_scenario_that_runs_as_the_import_does(capsys, tmp_path):
    from test_sumo_io import DEAD_END_EDGES, DEAD_END_NODES, _netconvert

    from trafficsim.sumo_io import scenario_from_sumo

    net_file = _netconvert(tmp_path, DEAD_END_NODES, DEAD_END_EDGES, None, "--no-turnarounds.except-deadend")
    rou = tmp_path / "r.rou.xml"
    rou.write_text('<routes><flow id="loop" begin="0" end="600" vehsPerHour="300"><route edges="ab bc cb ba"/></flow>'
                   '<trip id="t" depart="30" fromJunction="D" toJunction="A"/></routes>')
    out = tmp_path / "city.toml"
    code, text, _ = run(capsys, "from-sumo", str(net_file), str(rou), "-o", str(out), "--duration", "900", "--json")
    assert code == 0
    summary = json.loads(text)
    assert summary["links"] == 6 and summary["flows"] == 2 and summary["duration_s"] == 900
    assert summary["right_before_left_junctions"] == 0       # netconvert made B a priority junction
    code, text, _ = run(capsys, "run", str(out), "--json", "-q")
    assert code == 0
    direct = ts.simulate(scenario_from_sumo(net_file, [rou], duration_s=900)).kpis
    assert json.loads(text)["kpis"]["vht"] == pytest.approx(direct["vht"], rel=1e-9)
    code, _, err = run(capsys, "from-sumo", str(tmp_path / "missing.net.xml"), "-o", str(out))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "from-sumo", str(net_file), "-o", str(tmp_path / "x.json"))
    assert code == 2 and ".toml" in err
