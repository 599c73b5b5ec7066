"""The ``trafficsim`` command: list, show, run and evaluate scenarios from a terminal.

::

    trafficsim list [--json]
    trafficsim show ID [--json]
    trafficsim run SCENARIO|FILE.toml [--engine E] [--measure NAME]... [--param K=V]...
                   [--seed N] [--dt S] [--record-interval S] [--route-choice C]
                   [--out RESULT.nc] [--kpis K.csv] [--plot P.png] [--json]
    trafficsim evaluate SCENARIO|FILE.toml [--engine E] [--param K=V]... [--seed S] [--seeds N]
                   [--route-choice C] [--workers N] [--out K.csv] [--plot P.png] [--json]
    trafficsim from-sumo NET.net.xml [ROUTES.rou.xml]... --out FILE.toml [--duration S]
                   [--no-junctions] [--json]

Global options (before or after the command): ``-q/--quiet`` (no progress bars, no
informational lines), ``--debug`` (full traceback on errors), ``--version``.

Results go to stdout, progress and informational lines to stderr. Exit codes: 0 ok; 2 a usage
error or bad input (unknown scenario id, bad ``--param``, malformed TOML), with one line on
stderr saying what is wrong and how to fix it; 1 a simulation error.

Other modules may add a command: a module listed in :data:`EXTENSIONS` that defines
``add_command(subparsers, common)`` registers its sub-parser there (``common`` is the parent
parser holding ``-q`` and ``--debug``) and sets ``handler=func(args) -> int`` as its default.
``trafficsim.sweep`` is listed: when it exists and defines ``add_command``, ``trafficsim
sweep`` appears; keep that module's import light (import dask inside the handler).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import json
import math
import os
import shutil
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Sequence

from .evaluation import _fmt, _jsonable

__all__ = ["main", "build_parser", "CLIError", "EXTENSIONS"]

#: Modules that may contribute a sub-command through ``add_command(subparsers, common)``.
EXTENSIONS = ("trafficsim.sweep",)


class CLIError(Exception):
    """Bad input from the command line; the message says what is wrong and how to fix it."""


# ----------------------------------------------------------------------------- helpers
def _info(args, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr)


def _parse_value(text: str) -> Any:
    """A --param value: a TOML literal (number, bool, array, quoted string) or a bare string."""
    from .scenario import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not key.isidentifier():
            raise CLIError(f"bad --param {pair!r}: write it as NAME=VALUE, e.g. --param demand_scale=1.2")
        params[key] = _parse_value(value.strip())
    return params


def _scenario_library():
    """The scenario registry module, or None if it is not installed yet."""
    try:
        mod = importlib.import_module("trafficsim.scenarios")
    except ImportError:
        return None
    if not (callable(getattr(mod, "names", None)) and callable(getattr(mod, "load", None))):
        return None
    return mod


def _require_library():
    lib = _scenario_library()
    if lib is None:
        raise CLIError("the scenario library (trafficsim.scenarios) is not available in this install; pass a scenario .toml file instead")
    return lib


def _looks_like_file(target: str) -> bool:
    return target.endswith(".toml") or "/" in target or "\\" in target or Path(target).is_file()


def _load_scenario(target: str, params: dict[str, Any]):
    """A Scenario from a TOML path or a library id, with ``params`` applied."""
    from .scenario import Scenario

    if _looks_like_file(target):
        if not Path(target).is_file():
            raise CLIError(f"scenario file {target!r} does not exist; check the path")
        sc = Scenario.from_toml(target)
        unknown = set(params) - {"demand_scale"}
        if unknown:
            raise CLIError(f"--param {sorted(unknown)} not understood for a TOML scenario; only demand_scale applies (edit the file for the rest)")
        if "demand_scale" in params:
            scale = params["demand_scale"]
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0:
                raise CLIError(f"--param demand_scale must be a number >= 0, got {scale!r}")
            sc = sc.replace(demand=sc.demand.scaled(float(scale)))
        return sc
    lib = _require_library()
    names = list(lib.names())
    if target not in names:
        close = difflib.get_close_matches(target, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CLIError(f"unknown scenario {target!r}; {hint}run `trafficsim list` for the ids, or pass a .toml file")
    try:
        return lib.load(target, **params)
    except (TypeError, ValueError) as exc:
        if params:
            raise CLIError(f"bad --param: {exc}; `trafficsim show {target}` lists the parameters") from None
        raise


def _apply_measures(sc, names: Sequence[str]):
    from .evaluation import measure_named

    for name in names or ():
        try:
            _, measures = measure_named(sc, name)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        for measure in measures:
            sc = measure.apply(sc) if hasattr(measure, "apply") else measure(sc)
    return sc


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, align: str | None = None) -> str:
    """A plain-text table; on a terminal the last column is cut to fit it (output to a file or a
    pipe is never cut)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    width = shutil.get_terminal_size((120, 24)).columns
    used = sum(widths[:-1]) + 2 * (len(widths) - 1)
    if len(widths) > 1 and used + widths[-1] > width and sys.stdout.isatty():
        widths[-1] = max(len(headers[-1]), width - used)
    align = align or "l" * len(headers)

    def line(values):
        out = []
        for v, w, a in zip(values, widths, align):
            v = v if len(v) <= w else v[: max(w - 1, 0)] + "\u2026"
            out.append(v.rjust(w) if a == "r" else v.ljust(w))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def _figure(ncols: int = 1, nrows: int = 1, size=(10, 4.5)):
    """A figure not attached to pyplot (the CLI only saves; no display needed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _check_output(path: str | None, option: str, suffixes: Sequence[str] = ()) -> None:
    """Check an output file option before the run, so that a bad path does not throw a finished
    simulation away: its directory exists and is writable, its suffix is one of ``suffixes``."""
    if not path:
        return
    where = Path(path).expanduser().resolve().parent
    if not where.is_dir():
        raise CLIError(f"{option} {path!r}: directory {str(where)!r} does not exist")
    if not os.access(where, os.W_OK):
        raise CLIError(f"{option} {path!r}: directory {str(where)!r} is not writable")
    if suffixes and Path(path).suffix.lower() not in suffixes:
        raise CLIError(f"{option} {path!r}: give a file ending in one of {', '.join(suffixes)}")


def _check_plot(path: str | None) -> None:
    """``--plot``: a writable place and an image format matplotlib can write."""
    if not path:
        return
    from matplotlib.figure import Figure

    formats = sorted(Figure().canvas.get_supported_filetypes())
    _check_output(path, "--plot", [f".{f}" for f in formats])


def _save(fig, path: str, args) -> None:
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot write plot {path!r}: {exc}") from None
    _info(args, f"wrote {path}")


def _accepts(func, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


# ----------------------------------------------------------------------------- commands
def _cmd_list(args) -> int:
    lib = _require_library()
    rows = []
    for sid in lib.names():
        try:
            sc = lib.load(sid)
        except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
            if args.debug:
                raise
            print(f"trafficsim: warning: scenario {sid!r} cannot be built: {type(exc).__name__}: {exc}", file=sys.stderr)
            rows.append({"id": sid, "name": "?", "original_name": "", "cause_class": "", "symptom": "(unavailable)"})
            continue
        meta = sc.meta or {}
        rows.append({
            "id": sid,
            "name": meta.get("english_name") or sc.name or sid,
            "original_name": meta.get("original_name", ""),
            "cause_class": meta.get("cause_class", ""),
            "symptom": meta.get("symptom", "") or sc.description.split("\n")[0],
        })
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(_table([[r["id"], r["name"], r["cause_class"], r["symptom"]] for r in rows], ["id", "name", "cause", "symptom"]))
    return 0


def _card(sid: str, sc) -> dict[str, Any]:
    net, meta = sc.network, dict(sc.meta or {})
    peak = sum(max((r for _, r in f.profile), default=0.0) for f in sc.demand.flows)
    return {
        "id": sid,
        "name": meta.get("english_name") or sc.name or sid,
        "original_name": meta.get("original_name", ""),
        "cause_class": meta.get("cause_class", ""),
        "symptom": meta.get("symptom", ""),
        "description": sc.description,
        "bottleneck_link": meta.get("bottleneck_link", ""),
        "corridor": list(meta.get("corridor", []) or []),
        "duration_s": sc.duration_s,
        "nodes": len(net.nodes),
        "links": len(net.links),
        "network_length_km": sum(lk.length_m for lk in net.links.values()) / 1000.0,
        "od_flows": len(sc.demand.flows),
        "peak_demand_vph": peak,
        "controls": [type(c).__name__ for c in sc.controls],
        "measures": sorted((sc.measures or {}).keys()),
        "remedies": list(meta.get("remedies", []) or []),
        "parameters": dict(meta.get("parameters", {}) or {}),
        "seed": meta.get("seed", ""),
    }


def _plain(markdown: str) -> str:
    """Card text for a terminal: drop the emphasis and code markers of markdown."""
    return markdown.replace("**", "").replace("``", "").replace("`", "")


def _cmd_show(args) -> int:
    sc = _load_scenario(args.scenario, {})
    card = _card(args.scenario, sc)
    lib = None if _looks_like_file(args.scenario) else _scenario_library()
    text = _plain(lib.card(args.scenario)) if lib is not None and callable(getattr(lib, "card", None)) else ""
    if args.json:
        print(json.dumps({**card, "card": text}, ensure_ascii=False, indent=2, default=str))
        return 0
    if text:
        lines = [text.strip(), ""]
    else:
        title = card["name"] + (f"  ({card['original_name']})" if card["original_name"] else "")
        lines = [title, "=" * min(len(title) + 4, 100)]
        if card["description"]:
            lines += [card["description"].strip(), ""]
    facts = [
        ("id", card["id"]),
        ("cause", card["cause_class"]),
        ("symptom", card["symptom"]),
        ("bottleneck link", card["bottleneck_link"]),
        ("corridor", " \u2192 ".join(card["corridor"])),
        ("network", f"{card['nodes']} nodes, {card['links']} links, {card['network_length_km']:.1f} km of road"),
        ("demand", f"{card['od_flows']} OD flows, {card['peak_demand_vph']:,.0f} veh/h at their peaks"),
        ("horizon", f"{card['duration_s'] / 60:.0f} min"),
        ("controls", ", ".join(card["controls"])),
        ("seed remedies", ", ".join(card["remedies"])),
        ("measures", ", ".join(card["measures"])),
        ("source", card["seed"]),
    ]
    lines += [f"{k:>15}: {v}" for k, v in facts if v]
    if card["parameters"]:
        lines += ["", f"parameters (trafficsim run {card['id']} --param NAME=VALUE):"]
        lines += [f"  {k} = {v}" for k, v in card["parameters"].items()]
    print("\n".join(lines))
    return 0


def _kpi_rows(kpis) -> list[list[str]]:
    from .results import KPI_DESCRIPTIONS

    rows = []
    for name, value in kpis.items():
        unit, desc = KPI_DESCRIPTIONS.get(name, ("", ""))
        rows.append([name, _fmt(value), unit, desc])
    return rows


def _check_engine(name: str) -> None:
    from .engines import ENGINES

    if name not in ENGINES:
        raise CLIError(f"unknown engine {name!r}; choose one of: {', '.join(sorted(ENGINES))}")


def _route_options(args) -> dict[str, str]:
    """``route_choice`` for the engine, or nothing for fixed routes (every engine's default)."""
    if args.route_choice == "fixed":
        return {}
    if args.engine not in ("macro", "micro"):
        raise CLIError(f"--route-choice {args.route_choice} needs the macro or micro engine; "
                       f"{args.engine} runs fixed routes")
    return {"route_choice": args.route_choice}


def _simulate(sc, args, **extra):
    from . import simulate

    options = dict(extra)
    return simulate(
        sc, engine=args.engine, seed=args.seed, dt_s=args.dt, record_interval_s=args.record_interval,
        progress=not args.quiet, **options,
    )


def _cmd_run(args) -> int:
    _check_engine(args.engine)
    _check_output(args.out, "--out", [".nc"])
    _check_output(args.kpis, "--kpis", [".csv"])
    _check_plot(args.plot)
    params = _parse_params(args.param)
    sc = _load_scenario(args.scenario, params)
    sc = _apply_measures(sc, args.measure)
    extra = {"record_cells": True} if args.plot and args.engine == "macro" else {}
    extra.update(_route_options(args))
    _info(args, f"running {sc.name or args.scenario} on {args.engine} ({sc.duration_s / 60:.0f} min simulated)")
    res = _simulate(sc, args, **extra)
    kpis = res.kpis
    outputs = {}
    if args.out:
        res.to_netcdf(args.out)
        outputs["result"] = args.out
        _info(args, f"wrote {args.out}")
    if args.kpis:
        kpis.to_frame("value").rename_axis("kpi").to_csv(args.kpis)
        outputs["kpis"] = args.kpis
        _info(args, f"wrote {args.kpis}")
    if args.plot:
        from . import plot

        fig, axes = _figure(2, size=(13, 4.8))
        plot.time_space(res, ax=axes[0, 0])
        link = (sc.meta or {}).get("bottleneck_link") or kpis.get("bottleneck") or plot.default_path(res.data, sc)[-1]
        plot.cumulative_curves(res, link, ax=axes[0, 1])
        fig.suptitle(f"{sc.name or args.scenario} ({args.engine})")
        _save(fig, args.plot, args)
        outputs["plot"] = args.plot
    if args.json:
        doc = {
            "scenario": sc.name or args.scenario, "engine": args.engine, "seed": args.seed,
            "measures": list(args.measure or []), "params": params,
            "kpis": {k: _jsonable(v) for k, v in kpis.items()}, "outputs": outputs,
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print(_table(_kpi_rows(kpis), ["kpi", "value", "unit", "meaning"], align="lrll"))
    return 0


def _cmd_from_sumo(args) -> int:
    for path in (args.net, *args.routes):
        if not Path(path).is_file():
            raise CLIError(f"SUMO file {path!r} does not exist; check the path")
    if not args.out.endswith(".toml"):
        raise CLIError(f"--out must name a .toml file, got {args.out!r}")
    try:
        import sumolib  # noqa: F401
    except ModuleNotFoundError:
        raise CLIError("reading SUMO files needs sumolib: pip install 'trafficsim[sumo]'") from None
    from .control import FixedTimeSignal, PriorityJunction
    from .sumo_io import scenario_from_sumo

    if not args.duration > 0:
        raise CLIError(f"--duration must be > 0 s, got {args.duration:g}")
    sc = scenario_from_sumo(args.net, args.routes, duration_s=args.duration, junctions=not args.no_junctions)
    out = sc.to_toml(args.out)
    signals = sum(isinstance(c, FixedTimeSignal) for c in sc.controls)
    junctions = sum(isinstance(c, PriorityJunction) and c.rule == "priority" for c in sc.controls)
    rbl = sum(isinstance(c, PriorityJunction) and c.rule == "right_before_left" for c in sc.controls)
    summary = {"scenario": str(out), "nodes": len(sc.network.nodes), "links": len(sc.network.links),
               "flows": len(sc.demand.flows), "vehicles": round(sc.demand.total(sc.duration_s), 1),
               "signals": signals, "priority_junctions": junctions, "right_before_left_junctions": rbl,
               "duration_s": sc.duration_s}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {out}: {summary['nodes']} nodes, {summary['links']} links, {summary['flows']} flows "
              f"({summary['vehicles']:,.0f} vehicles in {sc.duration_s:g} s), {signals} signals, "
              f"{junctions} priority junctions, {rbl} right-before-left junctions")
        _info(args, f"run it with: trafficsim run {out} --engine micro")
    return 0


def _variant_table(table) -> str:
    """KPIs as rows, variants as columns (:func:`trafficsim.evaluation.summary_table`)."""
    from .evaluation import summary_table

    cells = summary_table(table)
    rows = [[kpi, unit, *cells.loc[(kpi, unit)]] for kpi, unit in cells.index]
    return _table(rows, ["kpi", "unit"] + [str(v) for v in cells.columns], align="ll" + "r" * len(cells.columns))


def _cmd_evaluate(args) -> int:
    try:
        from .measures import evaluate
    except ImportError:
        raise CLIError("trafficsim.measures (evaluate) is not available in this install; use `trafficsim run --measure NAME` per variant") from None
    _check_engine(args.engine)
    _check_output(args.out, "--out", [".csv"])
    _check_plot(args.plot)
    params = _parse_params(args.param)
    sc = _load_scenario(args.scenario, params)
    if not sc.measures:
        raise CLIError(f"scenario {args.scenario!r} has no measures to evaluate; `trafficsim show {args.scenario}` lists them")
    kwargs: dict[str, Any] = {"engine": args.engine, **_route_options(args)}
    if args.workers < 1:
        raise CLIError(f"--workers must be >= 1, got {args.workers}")
    seeds = None
    if args.seeds is not None:
        if args.seeds < 1:
            raise CLIError(f"--seeds must be >= 1, got {args.seeds}")
        first = 0 if args.seed is None else args.seed
        seeds = list(range(first, first + args.seeds))
    for name, value in (("seeds", seeds), ("seed", args.seed if seeds is None else None), ("progress", not args.quiet),
                        ("dt_s", args.dt), ("record_interval_s", args.record_interval), ("workers", args.workers)):
        if _accepts(evaluate, name) and value is not None:
            kwargs[name] = value
    _info(args, f"evaluating {sc.name or args.scenario}: baseline + {len(sc.measures)} measure(s) on {args.engine}")
    cmp = evaluate(sc, None, **kwargs)
    table = cmp.kpis
    if args.out:
        table.rename_axis(table.index.name or "variant").to_csv(args.out)
        _info(args, f"wrote {args.out}")
    if args.plot:
        from . import plot

        variants = [str(v) for v in table.index]
        fig, axes = _figure(len(variants), 2, size=(max(4.2 * len(variants), 9), 9))
        data = getattr(cmp, "data", None)
        if data is not None and "variant" in getattr(data, "dims", {}):
            plot.compare_time_space(data, links=plot.default_path(data.isel(variant=0), sc), axes=axes[0])
        for ax in axes[1, 1:]:
            ax.remove()
        gs = axes[1, 0].get_subplotspec().get_gridspec()
        axes[1, 0].remove()
        plot.kpi_bars(table, ax=fig.add_subplot(gs[1, :]))
        fig.suptitle(f"{sc.name or args.scenario}: variants on {args.engine}")
        _save(fig, args.plot, args)
    if args.json:
        records = {str(v): {str(k): _jsonable(x) for k, x in row.items()} for v, row in table.iterrows()}
        print(json.dumps({"scenario": sc.name or args.scenario, "engine": args.engine, "kpis": records}, ensure_ascii=False, indent=2))
    else:
        print(_variant_table(table))
    return 0


# ----------------------------------------------------------------------------- parser
def _non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (random seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (time steps, intervals)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trafficsim`` command."""
    from . import __version__
    from .engines import ENGINES
    from .routing import ROUTE_CHOICES

    def common(default):
        p = argparse.ArgumentParser(add_help=False)
        p.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars or informational lines")
        p.add_argument("--debug", action="store_true", default=default, help="show the full traceback on errors")
        return p

    parser = argparse.ArgumentParser(
        prog="trafficsim", parents=[common(False)],
        description="Reproduce congestion black spots in simulation and measure what each remedy would do.",
        epilog="exit codes: 0 ok, 1 simulation error, 2 usage error or bad input",
    )
    parser.add_argument("--version", action="version", version=f"trafficsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    shared = common(argparse.SUPPRESS)

    p = sub.add_parser("list", parents=[shared], help="list the scenario library (id, name, cause, symptom)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_list)

    p = sub.add_parser("show", parents=[shared], help="print a scenario's card")
    p.add_argument("scenario", metavar="ID", help="scenario id (see `trafficsim list`) or a .toml file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_cmd_show)

    def run_options(p, seed_default=0, seed_help="random seed (default 0)"):
        p.add_argument("scenario", metavar="SCENARIO", help="scenario id (see `trafficsim list`) or a scenario .toml file")
        p.add_argument("--engine", "-e", default="macro", help=f"simulation engine: {', '.join(ENGINES)} (default: macro)")
        p.add_argument("--param", "-p", action="append", default=[], metavar="K=V", help="scenario parameter, e.g. demand_scale=1.2 (repeatable)")
        p.add_argument("--seed", type=_non_negative_int, default=seed_default, help=seed_help)
        p.add_argument("--dt", type=_positive_float, default=None, metavar="S", help="time step [s] (default: the engine's)")
        p.add_argument("--record-interval", type=_positive_float, default=60.0, metavar="S",
                       help="aggregation interval of results [s] (default 60)")
        p.add_argument("--json", action="store_true", help="print KPIs as JSON")
        p.add_argument("--route-choice", default="fixed", choices=ROUTE_CHOICES,
                       help="fixed: the scenario's routes (default); dynamic: departures re-split among candidate "
                            "routes by current travel times; en-route: vehicles on their way re-choose too "
                            "(macro, micro; see docs/models/routing.md)")

    p = sub.add_parser("run", parents=[shared], help="simulate one scenario (optionally with measures) and print its KPIs")
    run_options(p)
    p.add_argument("--measure", "-m", action="append", default=[], metavar="NAME", help="apply the scenario's measure NAME (repeatable)")
    p.add_argument("--out", metavar="RESULT.nc", help="write the result dataset to netCDF")
    p.add_argument("--kpis", metavar="K.csv", help="write the KPIs to CSV")
    p.add_argument("--plot", metavar="P.png", help="save a time-space diagram and N-curves at the bottleneck")
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser("evaluate", parents=[shared], help="run the baseline and each of the scenario's measures; compare KPIs")
    run_options(p, None, "random seed: the only one, or the first of --seeds (default: 0 on macro; seeds 0-4 on the "
                         "stochastic engines micro, sumo, hybrid)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="replications: seeds SEED .. SEED+N-1, shared by every variant (common random numbers); "
                        "the table then shows each KPI's 95%% confidence half-width")
    p.add_argument("--out", metavar="K.csv", help="write the KPI table (one row per variant) to CSV")
    p.add_argument("--plot", metavar="P.png", help="save time-space diagrams per variant and KPI bars")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run the variants in N processes (default 1; worth it for micro and SUMO runs)")
    p.set_defaults(handler=_cmd_evaluate)

    p = sub.add_parser("from-sumo", parents=[shared],
                       help="convert a SUMO network and its route files into a scenario .toml (docs/sumo.md, Import)")
    p.add_argument("net", metavar="NET.net.xml", help="SUMO network (.net.xml or .net.xml.gz)")
    p.add_argument("routes", nargs="*", metavar="ROUTES.rou.xml",
                   help="SUMO route files (flows, vehicles, trips) and additional files with their <taz> zones")
    p.add_argument("--out", "-o", required=True, metavar="FILE.toml", help="the scenario file to write")
    p.add_argument("--duration", type=float, default=3600.0, metavar="S", help="scenario horizon [s] (default 3600)")
    p.add_argument("--no-junctions", action="store_true",
                   help="leave SUMO's priority and right-before-left junctions without give-way rules (streams cross freely)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_cmd_from_sumo)

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not installed: the command is simply absent
                continue
            raise
        hook = getattr(module, "add_command", None)
        if callable(hook):
            hook(sub, shared)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on the command line: one line, ``trafficsim: warning: ...`` (no source path or code
    line, which read like a crash; ``--debug`` shows Python's own form)."""
    print(f"trafficsim: warning: {message}", file=sys.stderr if file is None else file)


def _error(args, exc: BaseException, code: int, *, name_type: bool = False) -> int:
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    text = str(exc).strip()
    msg = text.splitlines()[0] if text else ""
    if name_type or not msg:
        msg = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    hint = "" if getattr(args, "debug", False) or code == 2 else " (run with --debug for the traceback)"
    print(f"trafficsim: error: {msg}{hint}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trafficsim`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    from .control import ControlError
    from .demand import DemandError
    from .engines import SimulationError
    from .network import NetworkError
    from .scenario import ScenarioError

    try:
        with warnings.catch_warnings():
            if not args.debug:
                warnings.showwarning = _show_warning
            return int(args.handler(args) or 0)
    except (CLIError, ScenarioError, NetworkError, DemandError, ControlError) as exc:
        return _error(args, exc, 2)
    except SimulationError as exc:
        return _error(args, exc, 1)
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except KeyboardInterrupt:
        print("trafficsim: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a CLI reports every failure as one line
        return _error(args, exc, 1, name_type=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
