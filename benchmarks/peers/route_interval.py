"""How UXsim's grid reacts to the route-choice update interval, in both simulators (issue 8, TTS).

Issue 8 compares macro's total time in system (TTS) with UXsim's on UXsim's 11x11 grid
(``cases.uxsim_grid``). Both simulators re-choose routes on the instantaneous travel times at a
fixed interval, with the same smoothing weight (0.5): UXsim's DUO every ``duo_update_time``
(600 s by default), trafficsim's ``route_choice="dynamic"`` every ``route_update_s`` (300 s by
default). This script runs both over a range of intervals, the same interval on both sides
(UXsim C++ mode, ``deltan=5``, several random seeds; macro with 5 and with 10 candidate routes per
OD, choosing at departure, and with 5 choosing also en route, ``route_choice="en-route"``), and
prints TTS and completed trips per run; ``--plot`` draws TTS and the vehicles in the network over
time.

    /tmp/dev/bin/python benchmarks/peers/route_interval.py                       # ~2 min
    /tmp/dev/bin/python benchmarks/peers/route_interval.py --plot docs/img/peers_route_interval.png

TTS here is what ``run_peers.py`` reports: vehicle-hours from each vehicle's scheduled departure to
its arrival or the horizon (2 h), finished or not, origin queues included. It is a study, not a
test: it asserts nothing and times nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import trafficsim as ts  # noqa: E402

import cases  # noqa: E402
from run_peers import ROUTE_WEIGHT, build_uxsim, uxsim_tts  # noqa: E402

INTERVALS_S = (150, 300, 450, 600, 900, 1200)
RECORD_S = 60.0


#: the macro runs: label -> (route_choice, candidate routes per OD)
MACRO_RUNS = {"macro, 5 candidates": ("dynamic", 5), "macro, 10 candidates": ("dynamic", 10),
              "macro en-route, 5 candidates": ("en-route", 5)}


def run_macro(sc: ts.Scenario, interval_s: float, candidates: int, choice: str = "dynamic") -> dict:
    """TTS [veh h], completed trips and vehicles in the network per minute, macro engine."""
    res = ts.simulate(sc, engine="macro", route_choice=choice, route_update_s=interval_s,
                      route_candidates=candidates, route_smoothing=ROUTE_WEIGHT, record_interval_s=RECORD_S)
    k = res.kpis
    d = res.data
    inside = (d["route_departed"] - d["route_arrived"]).sum("route").values  # both cumulative
    return dict(tts_vh=float(k["vht"] + k["origin_wait_vh"]), completed=float(k["completed"]),
                demand=float(k["demand"]), time_s=d["time"].values.tolist(), inside=inside.tolist())


def run_uxsim(sc: ts.Scenario, interval_s: float, seed: int) -> dict:
    """The same figures from UXsim (C++ mode, deltan=5), with ``run_peers.py``'s translation."""
    W = build_uxsim(sc, deltan=5, cpp=True, duo_update_time=float(interval_s), duo_update_weight=ROUTE_WEIGHT,
                    random_seed=seed)
    W.exec_simulation()
    T = sc.duration_s
    tts_s, done, n = uxsim_tts(W, T)
    steps = int(round(T / W.DELTAT))
    inside = np.zeros(steps + 1)
    for lk in W.LINKS:
        ca, cd = np.asarray(lk.cum_arrival, float), np.asarray(lk.cum_departure, float)
        m = min(len(ca), len(cd), steps + 1)
        inside[:m] += ca[:m] - cd[:m]
    every = int(round(RECORD_S / W.DELTAT))
    t = np.arange(every, steps + 1, every)
    return dict(tts_vh=tts_s / 3600.0, completed=float(done), demand=float(n), time_s=(t * W.DELTAT).tolist(),
                inside=inside[t].tolist())


def plot(results: dict, path: str) -> None:
    """TTS against the interval (left) and vehicles in the network over time at 600 s (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, style in zip(MACRO_RUNS, ("o-", "s-", "^-")):
        runs = results[key]
        ax.plot(list(runs), [r["tts_vh"] / 1000 for r in runs.values()], style, label=f"trafficsim {key}")
    ux = results["uxsim"]
    for i, (iv, runs) in enumerate(ux.items()):
        ax.plot([iv] * len(runs), [r["tts_vh"] / 1000 for r in runs], "kx", label="UXsim C++ deltan=5, one seed each"
                if i == 0 else None)
    ax.plot(list(ux), [np.mean([r["tts_vh"] for r in runs]) / 1000 for runs in ux.values()], "k--", lw=1,
            label="UXsim, mean of the seeds")
    ax.set_xlabel("route-choice update interval [s] (both simulators)")
    ax.set_ylabel("total time in system [1,000 veh h]")
    ax.set_title("UXsim's 11x11 grid, 60,984 trips, 2 h")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    at = 600
    for key in MACRO_RUNS:
        r = results[key][at]
        bx.plot(np.array(r["time_s"]) / 60, np.array(r["inside"]) / 1000, label=f"trafficsim {key}")
    for seed, r in enumerate(ux[at]):
        bx.plot(np.array(r["time_s"]) / 60, np.array(r["inside"]) / 1000, "k-", lw=0.8, alpha=0.7,
                label="UXsim, seeds 0-%d" % (len(ux[at]) - 1) if seed == 0 else None)
    bx.set_xlabel("time [min]")
    bx.set_ylabel("vehicles in the network [1,000]")
    bx.set_title(f"update interval {at} s (UXsim's default)")
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intervals", nargs="*", type=float, default=list(INTERVALS_S), help="update intervals [s]")
    ap.add_argument("--seeds", type=int, default=3, help="UXsim random seeds per interval (default 3)")
    ap.add_argument("--plot", default=None, help="write the figure here (PNG)")
    ap.add_argument("--out", default=None, help="write every run's figures here (JSON)")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.plot and 600 not in args.intervals:
        ap.error("--plot draws the 600 s runs over time: include 600 in --intervals")
    sc = cases.uxsim_grid()
    ts.simulate(sc.replace(duration_s=60.0), engine="macro", route_choice="dynamic")  # compile or load the kernels
    results: dict = {key: {} for key in MACRO_RUNS}
    results["uxsim"] = {}
    print("| interval [s] | " + " | ".join(MACRO_RUNS) + " | UXsim C++ deltan=5, per seed |")
    print("|---:|" + "---:|" * len(MACRO_RUNS) + "---|")
    cell = "{:,.0f} ({:,.0f})".format
    for iv in args.intervals:
        iv = int(iv) if float(iv).is_integer() else iv
        macro = [results[key].setdefault(iv, run_macro(sc, iv, cand, choice))
                 for key, (choice, cand) in MACRO_RUNS.items()]
        ux = results["uxsim"][iv] = [run_uxsim(sc, iv, seed) for seed in range(args.seeds)]
        print(f"| {iv:g} | " + " | ".join(cell(m["tts_vh"], m["completed"]) for m in macro) + " | "
              + " / ".join(cell(r["tts_vh"], r["completed"]) for r in ux) + " |", flush=True)
    print(f"\nTTS [veh h] (completed trips of {macro[0]['demand']:,.0f})")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=float))
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
