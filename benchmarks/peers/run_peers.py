"""trafficsim against its peers, side by side, in one process on one machine (issue 8).

Every case is built once as a trafficsim :class:`~trafficsim.Scenario` and translated to
UXsim (Python and C++ modes, per-vehicle ``deltan=1`` and default platoons ``deltan=5``) and to
SUMO (trafficsim's export, then a bare libsumo step loop), so that every simulator sees the same
network, lanes, free speeds, capacities, jam densities, demand profile and signal timings. Runs
are sequential (one simulator at a time); each runs once, or ``--repeat N`` times keeping its
fastest run (every simulator alike: a 0.1 s run timed once on a shared machine is one noisy sample).
Repeats go round-robin, one run of every simulator of the case per round, so that all of them
sample the same phases of a shared machine (whose speed drifts by up to 2x over tens of
seconds); back to back, a simulator's five 0.1 s runs fell in one phase and a peer's five 4 s
runs in others.

    /tmp/dev/bin/python benchmarks/peers/run_peers.py            # all cases, ~8 min on 2 cores
    /tmp/dev/bin/python benchmarks/peers/run_peers.py --cases merge lane-drop --out /tmp/peers.json
    /tmp/dev/bin/python benchmarks/peers/run_peers.py --cases merge signals --only micro sumo --repeat 3

Figures per run (see README.md for the definitions): wall time of the simulation proper,
updates per second in the simulator's own unit, simulated vehicle-seconds in the network per
wall second (the unit-free figure that compares across models), total time in system (TTS,
vehicle-hours in the network plus vehicle-hours waiting to enter, over the horizon, for every
vehicle, finished or not), UXsim's own ``total_travel_time`` (completed trips only) where it
applies, completed trips and the peak 15-minute outflow of the case's bottleneck link.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import trafficsim as ts  # noqa: E402
from trafficsim.engines._common import build_routes  # noqa: E402
from trafficsim.routing import DynamicRouting  # noqa: E402

import cases  # noqa: E402
from test_micro_bench import corridor as micro_corridor  # noqa: E402

PEAK_WINDOW_S = 900.0


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------

def lane_drop_6_2() -> ts.Scenario:
    """2 km of 6 lanes dropping to 2 lanes for 2 km (60 km/h, 1,800 veh/h/lane, 150 veh/km/lane);
    4,500 veh/h for 30 min, then 2,000 veh/h: a queue forms behind the drop and clears."""
    net = ts.Network()
    for n, x in zip("ABC", (0, 2000, 4000)):
        net.add_node(n, x, 0)
    kw = dict(free_speed_kmh=60, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    net.add_link("up", "A", "B", length_m=2000, lanes=6, **kw)
    net.add_link("bridge", "B", "C", length_m=2000, lanes=2, **kw)
    d = ts.Demand()
    d.add("A", "C", [(0, 4500), (1800, 2000)])
    return ts.Scenario(net, d, 5400, name="lane-drop-6-2")


def build_cases(quick: bool) -> dict[str, dict]:
    """name -> scenario, bottleneck link (measured in every simulator), simulator options."""
    grid_trips = 20000.0 / 0.75  # grid_city halves the rate after 30 min: 0.75 x this = 20,000 trips/h
    hour = 3600.0
    out = {
        "merge": dict(sc=ts.scenarios.load("merge").replace(duration_s=hour), bottleneck="section",
                      what="library `merge` (3-lane motorway + 1-lane ramp into a 2-lane section), first hour"),
        "onramp-corridor": dict(sc=micro_corridor(), bottleneck="m2",
                                what="issue 3's on-ramp corridor (`benchmarks/test_micro_bench.py::corridor`: 3-lane "
                                     "motorway, 1-lane ramp onto a 300 m acceleration lane, 4,700 + 1,000 veh/h), 2 h"),
        "lane-drop": dict(sc=lane_drop_6_2().replace(duration_s=hour), bottleneck="bridge",
                          what="6 -> 2 lanes (2 km each), 4,500 veh/h for 30 min then 2,000, 1 h"),
        "signals": dict(sc=ts.scenarios.load("changgang-corridor").replace(duration_s=hour),
                        bottleneck="changgang-to-J5",
                        what="library `changgang-corridor` (5 fixed-time signals, 120 s cycles), first hour"),
        "grid-city": dict(sc=cases.grid_city(n=10, trips_per_hour=grid_trips, n_od=400, duration_s=hour)
                          .replace(duration_s=1800.0), bottleneck=None, capture_routes=True,
                          what="10x10 grid of 400 m 2-lane streets, 400 OD pairs, 20,000 trips in the hour (26,667/h in the first 30 min, then half), first 30 min"),
        "grid-city-priority": dict(
            sc=cases.grid_city(n=10, trips_per_hour=grid_trips, n_od=400, duration_s=hour, priority_junctions=True)
            .replace(duration_s=1800.0), bottleneck=None, capture_routes=True,
            what="the grid city with a PriorityJunction at every node of 3 or more legs (the streets along the "
                 "first index are the major roads; SUMO: the same major roads), first 30 min"),
        "uxsim-grid": dict(sc=cases.uxsim_grid(), bottleneck=None, capture_routes=True,
                           what="UXsim demo 11: 11x11 grid of 1 km 1-lane links, 60,984 veh in 1 h, 2 h"),
    }
    if quick:
        for c in out.values():
            c["sc"] = c["sc"].replace(duration_s=min(c["sc"].duration_s, 1800.0))
    return out


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def cum_demand(sc: ts.Scenario, t: np.ndarray) -> np.ndarray:
    """Vehicles demanded by time ``t`` [s] (piecewise-constant profiles, clipped to the horizon)."""
    total = np.zeros_like(t, dtype=float)
    for f in sc.demand.flows:
        prof = list(f.profile)
        for i, (start, q) in enumerate(prof):
            end = prof[i + 1][0] if i + 1 < len(prof) else sc.duration_s
            total += q / 3600.0 * np.clip(np.minimum(t, end) - start, 0.0, None)
    return total


def peak_rate(times_s: np.ndarray, cum: np.ndarray, window_s: float = PEAK_WINDOW_S) -> float:
    """Highest mean rate [veh/h] over a sliding window of a cumulative count sampled at ``times_s``."""
    best = 0.0
    j = 0
    for i in range(len(times_s)):
        while times_s[i] - times_s[j] > window_s + 1e-9:
            j += 1
        if times_s[i] - times_s[j] >= window_s - 1e-9:
            best = max(best, (cum[i] - cum[j]) / (times_s[i] - times_s[j]) * 3600.0)
    return best


def row(case, sim, mode, wall, updates, unit, tts_vh, net_vh, completed, demand, thr, note="", **extra):
    return dict(case=case, simulator=sim, mode=mode, wall_s=wall, updates=updates, unit=unit,
                updates_per_s=updates / wall if wall > 0 else math.nan,
                veh_s_per_wall_s=net_vh * 3600.0 / wall if wall > 0 else math.nan,
                tts_vh=tts_vh, network_vh=net_vh, completed=completed, demand=demand,
                bottleneck_peak15_vph=thr, note=note, **extra)


# --------------------------------------------------------------------------------------------
# trafficsim
# --------------------------------------------------------------------------------------------

def with_uxsim_routes(sc: ts.Scenario, counts) -> ts.Scenario:
    """``sc`` with every OD flow split over the routes UXsim's DUO used, in UXsim's proportions."""
    d = ts.Demand()
    for f in sc.demand.flows:
        od = counts.get((f.origin, f.destination))
        routes = [(list(p), c / sum(od.values())) for p, c in od.items()] if od else None
        d.add(f.origin, f.destination, list(f.profile), routes=routes, name=f.name)
    return sc.replace(demand=d)


#: Route-choice update interval [s] of both simulators' reactive route choice: UXsim's default
#: ``duo_update_time``, given to trafficsim's ``route_update_s`` (whose default is 300 s) so that both
#: re-choose as often; on UXsim's grid the TTS of both depends strongly on it (``route_interval.py``)
ROUTE_UPDATE_S = 600.0
#: Weight of the new choice at each update: UXsim's default ``duo_update_weight``, trafficsim's default
#: ``route_smoothing``
ROUTE_WEIGHT = 0.5
#: trafficsim's dynamic route choice as run here (docs/models/routing.md), matched to UXsim's DUO
DYNAMIC = dict(route_choice="dynamic", route_update_s=ROUTE_UPDATE_S, route_smoothing=ROUTE_WEIGHT)


def run_trafficsim(name, case, engine, uxsim_routes=False, **options):
    sc = case["sc"]
    if uxsim_routes:
        sc = with_uxsim_routes(sc, case["uxsim_routes"])
    ts.simulate(sc.replace(duration_s=60.0), engine=engine, seed=0, **options)  # JIT compile / cache load, not timed
    t0 = time.perf_counter()
    res = ts.simulate(sc, engine=engine, seed=0, record_interval_s=60, **options)
    wall = time.perf_counter() - t0
    k = res.kpis
    dt = float(res.data.attrs["dt_s"])
    if engine == "macro":
        updates, unit = float(res.data.attrs["cells"]) * round(sc.duration_s / dt), "cell-updates"
    else:
        updates, unit = float(res.data["vht"].sum()) * 3600.0 / dt, "veh-updates"
    bn = case["bottleneck"] or str(k["bottleneck"])
    case.setdefault("bottleneck_resolved", bn)
    bn = case["bottleneck_resolved"]
    thr = math.nan
    if bn:
        out = res.data["outflow"].sel(link=bn).values  # veh/h per record interval
        t = np.concatenate([[0.0], res.data["time"].values])
        thr = peak_rate(t, np.concatenate([[0.0], np.cumsum(out * 60.0 / 3600.0)]))
    mode = f"{engine} (dt {dt:g} s)" + (", UXsim's DUO routes" if uxsim_routes else "")
    if options.get("route_choice") in ("dynamic", "en-route"):
        p = DynamicRouting.from_options(options["route_choice"], options.get("route_update_s"),
                                        options.get("route_candidates"), options.get("route_smoothing"),
                                        options.get("route_logit_s"))
        mode += (f", {'en-route choice' if p.en_route else 'dynamic routes'} ({p.candidates} candidates, "
                 f"every {p.update_s:g} s)")
    return row(name, "trafficsim", mode, wall, updates, unit,
               float(k["vht"] + k["origin_wait_vh"]), float(k["vht"]), float(k["completed"]), float(k["demand"]),
               thr, bottleneck=bn, kpi_bottleneck=str(k["bottleneck"]),
               kpi_discharge_vph=float(k["bottleneck_discharge_vph"]), dt_s=dt, routes=int(res.data.sizes["route"]))


# --------------------------------------------------------------------------------------------
# UXsim
# --------------------------------------------------------------------------------------------

def build_uxsim(sc: ts.Scenario, *, deltan: int, cpp: bool, fixed_routes: bool = False, caps: bool = True,
                **world_options):
    """The scenario in UXsim (:func:`trafficsim.uxsim_io.world_from_scenario`: same lanes, free
    speed, jam density per lane, the link's capacity as ``capacity_in`` and ``capacity_out``,
    signals as groups, merge priority = lanes), with UXsim's DUO at ``ROUTE_UPDATE_S`` and
    ``ROUTE_WEIGHT`` and no cyclic routing. ``fixed_routes``: every vehicle on trafficsim's
    free-flow route. ``caps=False`` leaves out ``capacity_in``/``capacity_out`` (UXsim's own
    diagram alone; see ``node_compare.py``). ``world_options`` go to UXsim's ``World`` (e.g.
    ``duo_update_time``, ``random_seed``)."""
    from trafficsim.uxsim_io import world_from_scenario

    W = world_from_scenario(sc, deltan=deltan, cpp=cpp, caps=caps, **{
        **dict(name="", no_cyclic_routing=True, duo_update_time=ROUTE_UPDATE_S, duo_update_weight=ROUTE_WEIGHT),
        **world_options})
    if fixed_routes:
        paths = {(sc.demand.flows[fi].origin, sc.demand.flows[fi].destination): path
                 for fi, path in zip(build_routes(sc).flow, build_routes(sc).links)}
        for veh in list(W.VEHICLES.values()):
            veh.enforce_route(list(paths[(veh.orig.name, veh.dest.name)]))
    return W


def uxsim_tts(W, horizon_s: float) -> tuple[float, float, float]:
    """Total time in system [s] of a run UXsim World, from every vehicle (platoon) record:
    scheduled departure to arrival or the horizon; and the vehicles completed and demanded."""
    tts_s = 0.0
    done = 0
    n = 0
    for veh in W.VEHICLES.values():
        if veh.state == "abort":
            continue
        dep = float(veh.departure_time_in_second)
        arr = veh.arrival_time
        fin = veh.state == "end" and arr >= 0
        end = min(arr * W.DELTAT, horizon_s) if fin else horizon_s
        tts_s += max(end - dep, 0.0) * W.DELTAN
        done += W.DELTAN if fin else 0
        n += W.DELTAN
    return tts_s, float(done), float(n)


def run_uxsim(name, case, *, deltan, cpp, fixed_routes=False):
    sc = case["sc"]
    W = build_uxsim(sc, deltan=deltan, cpp=cpp, fixed_routes=fixed_routes)
    t0 = time.perf_counter()
    W.exec_simulation()
    wall = time.perf_counter() - t0
    tts_s, done, n = uxsim_tts(W, sc.duration_s)
    # vehicle-seconds in the network from the links' cumulative counts
    net_s = 0.0
    for lk in W.LINKS:
        ca, cd = np.asarray(lk.cum_arrival, float), np.asarray(lk.cum_departure, float)
        m = min(len(ca), len(cd))
        net_s += float(np.sum(ca[:m] - cd[:m])) * W.DELTAT
    bn = case.get("bottleneck_resolved") or case["bottleneck"]
    thr = math.nan
    if bn:
        cd = np.asarray(W.get_link(bn).cum_departure, float)
        thr = peak_rate(np.arange(len(cd)) * W.DELTAT, cd)
    if case.get("capture_routes") and cpp and not fixed_routes and deltan == 5:
        # the routes UXsim's DUO actually used, as static shares per OD (for the route-matched macro run)
        counts: dict[tuple[str, str], dict[tuple[str, ...], int]] = {}
        for veh in W.VEHICLES.values():
            if veh.state == "end":
                path = tuple(lk.name for lk in veh.traveled_route()[0].links)
                nodes = [veh.orig.name] + [lk.split("-")[1] if "-" in lk else lk for lk in path]
                if len(set(nodes)) < len(nodes):
                    continue  # a loop or U-turn (rare in UXsim's DUO): not a valid trafficsim route
                od = counts.setdefault((veh.orig.name, veh.dest.name), {})
                od[path] = od.get(path, 0) + 1
        case["uxsim_routes"] = counts
    W.analyzer.basic_analysis()
    ux_ttt_vh = float(W.analyzer.total_travel_time) / 3600.0
    updates = net_s / W.DELTAT / W.DELTAN  # one update per platoon (vehicle when deltan=1) per step
    mode = f"{'C++' if cpp else 'Python'}, deltan={deltan}" + (", trafficsim's routes" if fixed_routes else "")
    return row(name, "UXsim", mode, wall, updates, "veh-updates" if deltan == 1 else "platoon-updates",
               tts_s / 3600.0, net_s / 3600.0, float(done), float(n), thr, uxsim_total_travel_time_vh=ux_ttt_vh,
               dt_s=float(W.DELTAT))


# --------------------------------------------------------------------------------------------
# SUMO (trafficsim's export, bare libsumo loop)
# --------------------------------------------------------------------------------------------

def run_sumo(name, case, *, dt=0.5, horizon_s=None):
    import libsumo

    from trafficsim.sumo_io import export_scenario, sumo_binary

    sc = case["sc"]
    if horizon_s is not None:
        sc = sc.replace(duration_s=horizon_s)
    bn = case.get("bottleneck_resolved") or case["bottleneck"]
    with tempfile.TemporaryDirectory(prefix="peers-sumo-") as tmp:
        work = Path(tmp)
        exp = export_scenario(sc, work, routes=build_routes(sc))
        adds = [str(exp.additional_file)]
        if bn:
            (work / "bn.add.xml").write_text(
                f'<additional><edgeData id="bn" period="60" file="{work / "bn.xml"}" edges="{exp.ids.edge(bn)}"/></additional>\n')
            adds.append(str(work / "bn.add.xml"))
        cmd = [sumo_binary("sumo"), "-n", str(exp.net_file), "-r", str(exp.route_file), "-a", ",".join(adds),
               "--step-length", f"{dt:g}", "--begin", "0", "--end", f"{sc.duration_s:g}", "--seed", "0",
               "--time-to-teleport", "-1", "--no-step-log", "true", "--duration-log.disable", "true",
               "--no-warnings", "true", "--max-depart-delay", "-1", "--xml-validation", "never"]
        libsumo.start(cmd)
        n_steps = int(round(sc.duration_s / dt))
        veh_steps = 0
        loaded = departed = arrived = 0
        wait_steps = 0
        t0 = time.perf_counter()
        for _ in range(n_steps):
            libsumo.simulationStep()
            veh_steps += libsumo.vehicle.getIDCount()
            loaded += libsumo.simulation.getLoadedNumber()
            departed += libsumo.simulation.getDepartedNumber()
            arrived += libsumo.simulation.getArrivedNumber()
            wait_steps += loaded - departed
        wall = time.perf_counter() - t0
        libsumo.close()
        thr = math.nan
        if bn:
            t, c = [0.0], [0.0]
            for iv in ET.parse(work / "bn.xml").getroot().iter("interval"):
                for e in iv.iter("edge"):
                    t.append(float(iv.get("end")))
                    c.append(c[-1] + float(e.get("left", 0)) + float(e.get("arrived", 0)))
            thr = peak_rate(np.array(t), np.array(c))
    net_vh = veh_steps * dt / 3600.0
    demand = float(cum_demand(sc, np.array([sc.duration_s]))[0])
    tts = net_vh + wait_steps * dt / 3600.0
    note = f"horizon {sc.duration_s:g} s" if horizon_s is not None else ""
    return row(name, "SUMO 1.28 libsumo", f"Krauss (dt {dt:g} s)", wall, float(veh_steps), "veh-updates", tts, net_vh,
               float(arrived), demand, thr, note=note, dt_s=dt)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

PLAN = {
    # case: list of (label, callable(name, case)); UXsim Python deltan=1 only where it stays under ~1 min
    "merge": ["macro", "micro", "sumo", "ux-cpp-1", "ux-cpp-5", "ux-py-1", "ux-py-5"],
    "onramp-corridor": ["macro", "micro", "sumo", "ux-cpp-1", "ux-cpp-5"],
    "lane-drop": ["macro", "micro", "sumo", "ux-cpp-1", "ux-cpp-5", "ux-py-1", "ux-py-5"],
    "signals": ["macro", "micro", "sumo", "ux-cpp-1", "ux-cpp-5", "ux-py-1", "ux-py-5"],
    "grid-city": ["macro", "macro-dynamic", "micro", "sumo", "ux-cpp-1", "ux-cpp-5", "macro-uxroutes", "ux-cpp-5-fixed",
                  "ux-py-5"],
    # UXsim has no crossing conflicts at its nodes: nothing to compare it with here
    "grid-city-priority": ["macro", "micro", "sumo"],
    # micro and SUMO skipped here: ~3e8 vehicle-updates, well over the script's time budget
    "uxsim-grid": ["macro-dynamic", "macro-dynamic-default", "macro-en-route", "macro", "ux-cpp-5", "macro-uxroutes", "ux-cpp-5-fixed",
                   "ux-cpp-1", "ux-py-5"],
}

RUNNERS = {
    "macro": lambda n, c: run_trafficsim(n, c, "macro"),
    "macro-dynamic": lambda n, c: run_trafficsim(n, c, "macro", **DYNAMIC),
    # the library's defaults (route_update_s 300 s): what a user gets without matching UXsim
    "macro-dynamic-default": lambda n, c: run_trafficsim(n, c, "macro", route_choice="dynamic"),
    # vehicles on their way re-choose too, as UXsim's do (among the candidate routes)
    "macro-en-route": lambda n, c: run_trafficsim(n, c, "macro", **{**DYNAMIC, "route_choice": "en-route"}),
    "macro-uxroutes": lambda n, c: run_trafficsim(n, c, "macro", uxsim_routes=True),
    "micro": lambda n, c: run_trafficsim(n, c, "micro"),
    "sumo": lambda n, c: run_sumo(n, c),
    "ux-cpp-1": lambda n, c: run_uxsim(n, c, deltan=1, cpp=True),
    "ux-cpp-5": lambda n, c: run_uxsim(n, c, deltan=5, cpp=True),
    "ux-cpp-5-fixed": lambda n, c: run_uxsim(n, c, deltan=5, cpp=True, fixed_routes=True),
    "ux-py-1": lambda n, c: run_uxsim(n, c, deltan=1, cpp=False),
    "ux-py-5": lambda n, c: run_uxsim(n, c, deltan=5, cpp=False),
}


def fmt(rows: list[dict]) -> str:
    lines = ["| case | simulator | mode | wall [s] | updates/s | veh-s simulated / wall-s | TTS [veh h] | "
             "completed / demand | bottleneck peak 15 min [veh/h] | note |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['simulator']} | {r['mode']} | — | — | — | — | — | — | {r['error']} |")
            continue
        thr = "—" if not np.isfinite(r["bottleneck_peak15_vph"]) else f"{r['bottleneck_peak15_vph']:,.0f}"
        note = r["note"]
        if "uxsim_total_travel_time_vh" in r:
            note = (note + "; " if note else "") + f"UXsim TTT (completed) {r['uxsim_total_travel_time_vh']:,.0f} veh h"
        lines.append(
            f"| {r['case']} | {r['simulator']} | {r['mode']} | {r['wall_s']:.3g} | {r['updates_per_s']:.3g} "
            f"{r['unit'].split('-')[0]} | {r['veh_s_per_wall_s']:.3g} | {r['tts_vh']:,.0f} | "
            f"{r['completed']:,.0f} / {r['demand']:,.0f} | {thr} | {note} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=list(PLAN))
    ap.add_argument("--only", nargs="*", default=None, help="runner labels to run (default: the plan)")
    ap.add_argument("--quick", action="store_true", help="30-minute horizons (smoke run)")
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each simulator this many times and keep its fastest run (default 1); "
                         "the same for every simulator, so short runs are not ranked by one noisy sample")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")

    sys.path.insert(0, str(HERE.parent))
    from conftest import calibration_rate

    cal = calibration_rate()
    print(f"calibration loop: {cal:.3g} cell-updates/s", flush=True)
    all_cases = build_cases(args.quick)
    rows = []
    t_start = time.perf_counter()
    for name in args.cases:
        case = all_cases[name]
        labels = [label for label in PLAN[name] if not args.only or label in args.only]
        runs = {label: [] for label in labels}
        failed = {}
        spent = dict.fromkeys(labels, 0.0)
        for _ in range(args.repeat):
            for label in labels:  # round-robin: every simulator once per round
                if label in failed:
                    continue
                t = time.perf_counter()
                try:
                    runs[label].append(RUNNERS[label](name, case))
                except Exception as exc:  # noqa: BLE001 - a peer failing is a result, not a crash
                    failed[label] = dict(case=name, simulator=label, mode="",
                                         error=f"{type(exc).__name__}: {exc}"[:200])
                spent[label] += time.perf_counter() - t
        for label in labels:
            if label in failed:
                r = failed[label]
            else:
                r = min(runs[label], key=lambda x: x["wall_s"])
                r["walls_s"] = [x["wall_s"] for x in runs[label]]
            r["total_call_s"] = spent[label]
            rows.append(r)
            print(fmt([r]).splitlines()[-1], flush=True)
    table = fmt(rows)
    print("\n" + table)
    meta = dict(calibration_cell_updates_per_s=cal, python=platform.python_version(), cpus=os.cpu_count(),
                total_s=time.perf_counter() - t_start, quick=args.quick, repeat=args.repeat,
                cases={n: all_cases[n]["what"] for n in args.cases},
                bottlenecks={n: all_cases[n].get("bottleneck_resolved") for n in args.cases})
    try:
        import uxsim

        meta["uxsim"] = getattr(uxsim, "__version__", "?")
    except ImportError:
        pass
    Path(args.out).write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, default=float))
    print(f"\nwritten {args.out}; total {meta['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
