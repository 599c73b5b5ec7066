"""Where trafficsim's macro engine and UXsim part on a congested grid: small cases, both simulators.

Issue 8 asks for macro's total time in system (TTS) within 5% of UXsim's on UXsim's 11x11 grid;
macro gives about half. This script runs small cases through both simulators' public APIs, with
the same translation as ``run_peers.py`` (same links, lanes, free speed, jam density, capacity as
``capacity_in``/``capacity_out``, merge priority = lanes, demand as ``adddemand``), and prints the
discharge of every approach of the node under test and the TTS:

- ``merge2``/``merge3``: 2 or 3 congested one-lane links merging into one;
- ``node4``: one 4-leg node, every approach congested (turning traffic, outgoing links of lower
  capacity, so every outgoing link is oversubscribed);
- ``origin``: through traffic meets vehicles departing at the same node onto the same link (the
  grid's boundary nodes are origins and through nodes at once);
- ``node4-free``/``node4-over``: the same node with outgoing links that take all that arrives
  (2,880 veh/h) or less (1,500 veh/h);
- ``grid3``..``grid11``: UXsim's grid (``cases.uxsim_grid``) at other sizes, each boundary node
  loaded as in the 11x11 grid, with each simulator's own route choice and with both held to the
  same fixed routes;
- ``order3``/``order11``: UXsim (Python mode, the only one that can be patched) on the grid with
  its own order within a step (every node's departures before any node's transfers) and with each
  node's departures after its transfers (through traffic first), with and without
  ``capacity_in``/``capacity_out``.

Every UXsim run is shown with and without ``capacity_in``/``capacity_out`` (``run_peers.py`` gives
UXsim the link capacity through them; UXsim's own triangular diagram has the same capacity here).

    /tmp/dev/bin/python benchmarks/peers/node_compare.py                 # every case
    /tmp/dev/bin/python benchmarks/peers/node_compare.py --cases merge2 origin
    /tmp/dev/bin/python benchmarks/peers/node_compare.py --cases order11   # ~15 min (UXsim Python)

It is a study, not a test: it asserts nothing and times nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import trafficsim as ts  # noqa: E402

import cases  # noqa: E402
from run_peers import DYNAMIC, build_uxsim  # noqa: E402

#: UXsim's grid link: 1 km, one lane, 20 m/s, jam 0.2 veh/m, capacity 0.8 veh/s (wave 5 m/s)
FD = dict(free_speed_kmh=72, capacity_vph_per_lane=2880, jam_density_vpkm_per_lane=200)


def _link(net, a, b, length=1000.0, **kw):
    fd = dict(FD)
    fd.update(kw)
    net.add_link(f"{a}-{b}", a, b, length_m=length, lanes=1, **fd)


def merge(k: int, rate_vps: float = 0.6, duration_s: float = 3600.0, demand_s: float = 1800.0) -> ts.Scenario:
    """``k`` one-lane 1 km links merging into one one-lane link; each fed ``rate_vps``."""
    net = ts.Network()
    net.add_node("M", 0, 0)
    net.add_node("D", 1000, 0)
    _link(net, "M", "D")
    d = ts.Demand()
    for i in range(k):
        o = f"O{i}"
        net.add_node(o, -1000, 1000 * (i - (k - 1) / 2))
        _link(net, o, "M")
        d.add(o, "D", [(0, rate_vps * 3600), (demand_s, 0)])
    return ts.Scenario(net, d, duration_s, name=f"merge{k}")


def node4(duration_s: float = 3600.0, demand_s: float = 1800.0, out_capacity_vph: float = 1800.0,
          rates=(0.7, 0.3, 0.7, 0.3)) -> ts.Scenario:
    """One 4-leg node C; approach X (W, S, E, N) sends ``rates[X]`` veh/s, half straight, a quarter
    to each side; the outgoing links take ``out_capacity_vph`` (below what arrives for them)."""
    net = ts.Network()
    net.add_node("C", 0, 0)
    legs = {"W": (-1, 0), "S": (0, -1), "E": (1, 0), "N": (0, 1)}
    for leg, (x, y) in legs.items():
        net.add_node(f"{leg}in", 1000 * x, 1000 * y)
        net.add_node(f"{leg}out", 1000 * x + 10 * y, 1000 * y + 10 * x)
        _link(net, f"{leg}in", "C")
        _link(net, "C", f"{leg}out", capacity_vph_per_lane=out_capacity_vph)
    d = ts.Demand()
    order = list(legs)
    for i, leg in enumerate(order):
        straight = order[(i + 2) % 4]
        for j, share in ((straight, 0.5), (order[(i + 1) % 4], 0.25), (order[(i + 3) % 4], 0.25)):
            d.add(f"{leg}in", f"{j}out", [(0, rates[i] * share * 3600), (demand_s, 0)])
    return ts.Scenario(net, d, duration_s, name="node4")


def origin(through_vps: float = 0.6, local_vps: float = 0.6, duration_s: float = 3600.0,
           demand_s: float = 1800.0) -> ts.Scenario:
    """Through traffic U -> M -> D meets vehicles departing at M onto the same link M -> D."""
    net = ts.Network()
    for n, x in (("U", -1000), ("M", 0), ("D", 1000)):
        net.add_node(n, x, 0)
    _link(net, "U", "M")
    _link(net, "M", "D")
    d = ts.Demand()
    d.add("U", "D", [(0, through_vps * 3600), (demand_s, 0)])
    d.add("M", "D", [(0, local_vps * 3600), (demand_s, 0)])
    return ts.Scenario(net, d, duration_s, name="origin")


# --------------------------------------------------------------------------------------------

def run_macro(sc: ts.Scenario, **kw):
    res = ts.simulate(sc, engine="macro", **kw)
    k = res.kpis
    out = res.data["outflow"].values * float(res.data.attrs["record_interval_s"]) / 3600.0   # veh per interval
    cum = dict(zip(res.data.link.values.tolist(), np.cumsum(out, axis=0).T))
    t = res.data["time"].values.astype(float)
    return dict(tts=float(k["vht"] + k["origin_wait_vh"]), completed=float(k["completed"]), t=t, cum=cum)


def run_ux(sc: ts.Scenario, deltan: int, cpp: bool = True, fixed_routes: bool = False, caps: bool = True):
    W = build_uxsim(sc, deltan=deltan, cpp=cpp, fixed_routes=fixed_routes, caps=caps)
    W.exec_simulation()
    T = sc.duration_s
    tts = 0.0
    done = 0
    for veh in W.VEHICLES.values():
        if veh.state == "abort":
            continue
        fin = veh.state == "end" and veh.arrival_time >= 0
        end = min(veh.arrival_time * W.DELTAT, T) if fin else T
        tts += max(end - float(veh.departure_time_in_second), 0.0) * W.DELTAN
        done += W.DELTAN if fin else 0
    cum = {}
    for lk in W.LINKS:
        cd = np.asarray(lk.cum_departure, float)
        cum[lk.name] = cd
    t = np.arange(len(next(iter(cum.values())))) * W.DELTAT
    return dict(tts=tts / 3600.0, completed=float(done), t=t, cum=cum)


def run_ux_through_first(sc: ts.Scenario, deltan: int, caps: bool = True):
    """UXsim in Python mode with each node's departures after its transfers (through traffic
    first). UXsim itself runs ``Node.generate`` for every node before any ``Node.transfer``, so a
    departing vehicle takes a link's entry ahead of the vehicles arriving from upstream."""
    import uxsim.uxsim as ux

    generate, transfer = ux.Node.generate, ux.Node.transfer

    def transfer_then_generate(node):
        transfer(node)
        generate(node)

    ux.Node.generate, ux.Node.transfer = (lambda node: None), transfer_then_generate
    try:
        return run_ux(sc, deltan, cpp=False, caps=caps)
    finally:
        ux.Node.generate, ux.Node.transfer = generate, transfer


def order_study(name: str, sc: ts.Scenario, deltan: int = 5):
    print(f"\n## {name}: UXsim Python deltan={deltan}, order within a step [TTS veh h, completed]")
    print("| UXsim run | departures first (UXsim) | through traffic first |")
    print("|---|---:|---:|")
    for caps in (True, False):
        a = run_ux(sc, deltan, cpp=False, caps=caps)
        b = run_ux_through_first(sc, deltan, caps=caps)
        print(f"| {'with' if caps else 'without'} capacity_in/out | {a['tts']:,.0f} ({a['completed']:,.0f}) | "
              f"{b['tts']:,.0f} ({b['completed']:,.0f}) |", flush=True)


def discharge(r, link: str, t0: float, t1: float) -> float:
    """Mean outflow [veh/h] of ``link`` between ``t0`` and ``t1`` [s] from the cumulative count."""
    t, c = r["t"], r["cum"][link]
    return float((np.interp(t1, t, c) - np.interp(t0, t, c)) / (t1 - t0) * 3600.0)


def compare(name: str, sc: ts.Scenario, links: list[str], window: tuple[float, float], uxsim_modes=((5, True),),
            macro_kw=None, fixed_too: bool = False):
    runs = {"macro": run_macro(sc, **(macro_kw or {}))}
    for deltan, cpp in uxsim_modes:
        runs[f"UXsim {'C++' if cpp else 'Py'} dn={deltan}"] = run_ux(sc, deltan, cpp)
        runs[f"UXsim {'C++' if cpp else 'Py'} dn={deltan}, no capacity_in/out"] = run_ux(sc, deltan, cpp, caps=False)
    if fixed_too:
        runs["macro fixed"] = run_macro(sc)
        for deltan, cpp in uxsim_modes:
            runs[f"UXsim {'C++' if cpp else 'Py'} dn={deltan} fixed"] = run_ux(sc, deltan, cpp, fixed_routes=True)
    if links:
        print(f"\n## {name}: discharge {window[0]:g}-{window[1]:g} s [veh/h] and TTS [veh h]")
        print("| run | " + " | ".join(links) + " | sum | TTS | completed |")
        print("|" + "---|" * (len(links) + 4))
    else:
        print(f"\n## {name}: TTS [veh h]")
        print("| run | TTS | completed |\n|---|---:|---:|")
    for label, r in runs.items():
        q = [discharge(r, lk, *window) for lk in links]
        cols = " | ".join(f"{v:,.0f}" for v in q) + f" | {sum(q):,.0f} | " if links else ""
        print(f"| {label} | {cols}{r['tts']:,.1f} | {r['completed']:,.0f} |", flush=True)
    return runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=["merge2", "merge3", "origin", "node4", "node4-free", "node4-over",
                                                   "grid3", "grid5", "grid11", "order3"])
    ap.add_argument("--deltan", nargs="*", type=int, default=[5, 1])
    args = ap.parse_args(argv)
    modes = tuple((d, True) for d in args.deltan)
    for name in args.cases:
        if name in ("merge2", "merge3"):
            k = int(name[-1])
            compare(name, merge(k, rate_vps=1.2 / k), [f"O{i}-M" for i in range(k)] + ["M-D"], (600, 1800), modes)
        elif name in ("node4", "node4-free", "node4-over"):
            out_cap = {"node4": 1800.0, "node4-free": 2880.0, "node4-over": 1500.0}[name]
            compare(name, node4(out_capacity_vph=out_cap), [f"{x}in-C" for x in "WSEN"], (600, 1800), modes)
        elif name.startswith("order"):
            n = int(name[5:])
            order_study(name, cases.uxsim_grid(n=n, rate_vps=0.035 * 11 / n), deltan=5)
        elif name == "origin":
            compare(name, origin(), ["U-M", "M-D"], (600, 1800), modes)
        elif name.startswith("grid"):
            n = int(name[4:])
            # the demand per OD pair that loads each boundary node like the 11x11 grid's 0.035 veh/s
            sc = cases.uxsim_grid(n=n, rate_vps=0.035 * 11 / n)
            # both simulators re-choose routes every ROUTE_UPDATE_S (run_peers.py, UXsim's default)
            compare(name, sc, [], (600, 1800), modes, macro_kw=DYNAMIC, fixed_too=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
