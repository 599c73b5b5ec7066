"""trafficsim on networks it was not built for: SUMO's generated networks and random trips, and
the networks and demand shipped with SUMO, imported through the public API and run against SUMO
itself on the original files.

Eight cases are made by SUMO's own tools (``netgenerate`` and ``tools/randomTrips.py`` from the
``eclipse-sumo`` package): a grid, a spider web and a random planar network with traffic lights
(``--tls.guess``), a grid and a random network without (priority junctions), a grid of
``right_before_left`` junctions, and the signalised and right-before-left grids built for
keep-left traffic (``--lefthand``), and trips between the fringe nodes
for 30 minutes (the routes ``duarouter`` validates; some turn round at dead ends or end where
they started). Five more are the networks and route files of SUMO's game (``tools/game`` in the
``eclipse-sumo`` wheel): an on-ramp, a corridor, a motorway, a small grid with route
distributions, and a part of Ingolstadt from OpenStreetMap; their demand runs all along. The
last is the OpenStreetMap town of the game's DRT example with random trips as above, at a third
of the rate.
trafficsim reads them with :func:`trafficsim.sumo_io.scenario_from_sumo` (default import
options: lane capacity by speed limit, 1,800 veh/h on streets to 2,400 on motorways, and 150
veh/km per lane; trips binned into 15-minute rates) and runs its macro and micro engines; SUMO
(libsumo, step 0.5 s) runs the original network and routes with their own vehicle types (its
default car where they give none), without teleporting and with its default (a vehicle stuck
for 300 s jumps ahead; teleports are counted).

    /tmp/dev/bin/python benchmarks/peers/sumo_networks.py                 # ~1.5 min; writes sumo_networks.json
    /tmp/dev/bin/python benchmarks/peers/sumo_networks.py --cases grid-tls game-ingolstadt --trips-per-s 0.9 --out /tmp/g.json

Reported per simulator: total time in system (TTS: vehicle-hours in the network plus
vehicle-hours waiting to enter, over the horizon), trips completed, vehicles left in the network
at the end, and wall time. The horizon is 40 minutes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import trafficsim as ts  # noqa: E402
from trafficsim.control import FixedTimeSignal, PriorityJunction  # noqa: E402
from trafficsim.sumo_io import scenario_from_sumo, sumo_binary, sumo_home  # noqa: E402

DEMAND_S = 1800.0
HORIZON_S = 2400.0
DT_SUMO = 0.5

#: netgenerate options of each case (2 lanes per direction, 50 km/h)
CASES = {
    "grid-tls": ["--grid", "--grid.number", "5", "--grid.length", "300", "--tls.guess"],
    "spider-tls": ["--spider", "--spider.arm-number", "6", "--spider.circle-number", "4",
                   "--spider.space-radius", "150", "--spider.omit-center", "--tls.guess"],
    "random-tls": ["--rand", "--rand.iterations", "120", "--rand.min-distance", "120", "--tls.guess"],
    "grid-priority": ["--grid", "--grid.number", "5", "--grid.length", "300"],
    "random-priority": ["--rand", "--rand.iterations", "120", "--rand.min-distance", "120"],
    "grid-right-before-left": ["--grid", "--grid.number", "5", "--grid.length", "300",
                               "--default-junction-type", "right_before_left"],
    # the same two grids built for keep-left traffic (imported as Network(left_hand=True))
    "grid-tls-lefthand": ["--grid", "--grid.number", "5", "--grid.length", "300", "--tls.guess", "--lefthand"],
    "grid-right-before-left-lefthand": ["--grid", "--grid.number", "5", "--grid.length", "300",
                                        "--default-junction-type", "right_before_left", "--lefthand"],
}
#: networks and demand shipped with SUMO (``tools/game`` of the eclipse-sumo wheel; the first
#: four drawn in netedit, ingolstadt cut from OpenStreetMap), run with their own route files
SHIPPED = {
    "game-ramp": ("ramp/ramp.net.xml", "ramp/ramp.rou.xml"),
    "game-corridor": ("corridor/corridor.net.xml", "corridor/corridor.rou.xml"),
    "game-highway": ("highway/highway.net.xml", "highway/highway.rou.xml"),
    "game-kuehne": ("kuehne/kuehne.net.xml", "kuehne/kuehne.rou.xml"),
    "game-ingolstadt": ("fkk_in/ingolstadt.net.xml.gz", "fkk_in/fkk_in.rou.xml"),
    "osm-drt": ("DRT/osm.net.xml", None),   # an OpenStreetMap town (its demand is DRT rides): random trips
}
#: random trips on a shipped network at this fraction of ``--trips-per-s`` (at 1.5 trips/s the
#: town locked up in all three simulators within 40 minutes)
TRIP_SCALE = {"osm-drt": 1.0 / 3.0}


def make_case(name: str, work: Path, trips_per_s: float, seed: int) -> tuple[Path, Path]:
    rou = work / f"{name}.rou.xml"
    if name in SHIPPED:
        game = sumo_home() / "tools" / "game"
        net_part, rou_part = SHIPPED[name]
        if rou_part is not None:
            return game / net_part, game / rou_part
        net = game / net_part
    else:
        net = work / f"{name}.net.xml"
        subprocess.run([sumo_binary("netgenerate"), *CASES[name], "-L", "2", "--default.speed", "13.89",
                        "--seed", str(seed), "-o", str(net)], check=True, capture_output=True)
    subprocess.run([sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", str(net),
                    "-e", f"{DEMAND_S:g}", "-p", f"{1.0 / (trips_per_s * TRIP_SCALE.get(name, 1.0)):g}", "--seed", str(seed),
                    "--fringe-factor", "5", "--validate", "-r", str(rou), "-o", str(work / f"{name}.trips.xml")],
                   check=True, capture_output=True)
    return net, rou


def run_sumo_original(net: Path, rou: Path, teleport_s: float = -1) -> dict:
    """SUMO on the original files, in a fresh process: successive libsumo runs in one process
    are not independent (Ingolstadt after the kuehne grid gave TTS 77.8 instead of 71.8 veh h)."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_sumo_run, (net, rou, teleport_s))


def _sumo_run(net: Path, rou: Path, teleport_s: float) -> dict:
    import libsumo

    libsumo.start([sumo_binary("sumo"), "-n", str(net), "-r", str(rou), "--step-length", f"{DT_SUMO:g}",
                   "--end", f"{HORIZON_S:g}", "--seed", "0", "--time-to-teleport", f"{teleport_s:g}",
                   "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
                   "--max-depart-delay", "-1"])
    veh_steps = wait_steps = teleports = 0
    departed = arrived = 0
    t0 = time.perf_counter()
    for _ in range(int(round(HORIZON_S / DT_SUMO))):
        libsumo.simulationStep()
        veh_steps += libsumo.vehicle.getIDCount()
        departed += libsumo.simulation.getDepartedNumber()
        arrived += libsumo.simulation.getArrivedNumber()
        teleports += libsumo.simulation.getStartingTeleportNumber()
        # vehicles past their departure time and not yet inserted (SUMO loads a route file's
        # vehicles ahead of their departure, so loaded - departed would count those too)
        wait_steps += len(libsumo.simulation.getPendingVehicles())
    wall = time.perf_counter() - t0
    inside = libsumo.vehicle.getIDCount()
    pending = len(libsumo.simulation.getPendingVehicles())
    libsumo.close()
    return dict(tts_vh=(veh_steps + wait_steps) * DT_SUMO / 3600.0, completed=arrived, inside=inside,
                demand=departed + pending, wall_s=wall, teleports=teleports)


def run_trafficsim(sc: ts.Scenario, engine: str) -> dict:
    ts.simulate(sc.replace(duration_s=60.0), engine=engine, seed=0)  # JIT compile / cache load, not timed
    t0 = time.perf_counter()
    res = ts.simulate(sc, engine=engine, seed=0)
    wall = time.perf_counter() - t0
    k = res.kpis
    return dict(tts_vh=float(k["vht"] + k["origin_wait_vh"]), completed=float(k["completed"]),
                inside=float(k["inside"]), demand=float(k["demand"]), wall_s=wall)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=[*CASES, *SHIPPED], choices=[*CASES, *SHIPPED])
    ap.add_argument("--trips-per-s", type=float, default=1.5, help="randomTrips' insertion rate (default 1.5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "sumo_networks.json"))
    ap.add_argument("--import-turn-speeds", action="store_true",
                    help="import SUMO's turn speeds (network_from_sumo(turn_speeds=True)): micro slows for turns")
    ap.add_argument("--turn-speeds", action="store_true",
                    help="also run SUMO on the network rebuilt without its turn-speed limits "
                         "(netconvert --junctions.limit-turn-speed -1): trafficsim's engines have none")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sumo-networks-") as tmp:
        for name in args.cases:
            net, rou = make_case(name, Path(tmp), args.trips_per_s, args.seed)
            sc = scenario_from_sumo(net, [rou], duration_s=HORIZON_S, turn_speeds=args.import_turn_speeds)
            info = dict(case=name, nodes=len(sc.network.nodes), links=len(sc.network.links),
                        routes=len(sc.demand.flows),
                        signals=sum(isinstance(c, FixedTimeSignal) for c in sc.controls),
                        priority_junctions=sum(isinstance(c, PriorityJunction) for c in sc.controls),
                        round_trips=sum(f.origin == f.destination for f in sc.demand.flows))
            print(f"{name}: {info['nodes']} nodes, {info['links']} links, {info['routes']} routes "
                  f"({info['round_trips']} round trips), {info['signals']} signals, "
                  f"{info['priority_junctions']} priority junctions", flush=True)
            runs = [("SUMO (original files)", lambda: run_sumo_original(net, rou)),
                    ("SUMO, teleporting after 300 s", lambda: run_sumo_original(net, rou, 300.0)),
                    ("trafficsim macro", lambda: run_trafficsim(sc, "macro")),
                    ("trafficsim micro", lambda: run_trafficsim(sc, "micro"))]
            if args.turn_speeds:
                flat = Path(tmp) / f"{name}.no-turn-speeds.net.xml"
                subprocess.run([sumo_binary("netconvert"), "-s", str(net), "--junctions.limit-turn-speed", "-1",
                                "--no-warnings", "-o", str(flat)], check=True, capture_output=True)
                runs.insert(2, ("SUMO, no turn-speed limits", lambda: run_sumo_original(flat, rou)))
            for sim, fn in runs:
                r = dict(info, simulator=sim, **fn())
                rows.append(r)
                print(f"  {sim:29s} TTS {r['tts_vh']:7.1f} veh h  completed {r['completed']:6.0f} / "
                      f"{r['demand']:6.0f}  inside {r['inside']:5.0f}  wall {r['wall_s']:6.2f} s"
                      + (f"  teleports {r['teleports']}" if "teleports" in r else ""), flush=True)
    print()
    print("| case | simulator | TTS [veh h] | TTS / SUMO | completed / demand | inside at 40 min | teleports | wall [s] |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    ref = {r["case"]: r["tts_vh"] for r in rows if r["simulator"] == "SUMO (original files)"}
    for r in rows:
        print(f"| {r['case']} | {r['simulator']} | {r['tts_vh']:,.1f} | {r['tts_vh'] / ref[r['case']]:.2f} | "
              f"{r['completed']:,.0f} / {r['demand']:,.0f} | {r['inside']:,.0f} | {r.get('teleports', '')} | "
              f"{r['wall_s']:.2f} |")
    Path(args.out).write_text(json.dumps(dict(trips_per_s=args.trips_per_s, seed=args.seed, rows=rows), indent=1))
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
