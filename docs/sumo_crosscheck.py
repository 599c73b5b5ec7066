"""Cross-check macro and micro against SUMO on three canonical cases; writes docs/img/sumo_*.png
and prints the table in docs/validation_sumo.md.  Run: python docs/sumo_crosscheck.py  (about a
minute)."""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import trafficsim as ts  # noqa: E402
from trafficsim.control import FixedTimeSignal, Phase  # noqa: E402

OUT = Path(__file__).parent / "img"


def on_ramp():
    net = ts.Network()
    net.add_node("A", 0, 0); net.add_node("B", 2000, 0); net.add_node("C", 3500, 0); net.add_node("R", 1500, -300)
    net.add_link("main", "A", "B", length_m=2000, lanes=2, free_speed_kmh=80)
    net.add_link("ramp", "R", "B", length_m=600, lanes=1, free_speed_kmh=60)
    net.add_link("down", "B", "C", length_m=1500, lanes=2, free_speed_kmh=80)
    d = ts.Demand()
    d.add("A", "C", [(0, 2800), (1200, 1800)], name="main")
    d.add("R", "C", [(0, 1100), (1200, 600)], name="ramp")
    return ts.Scenario(net, d, 2400, name="on-ramp merge"), "down", ["main", "down"]


def lane_drop():
    net = ts.Network()
    for n, x in zip("ABC", (0, 1500, 3500)):
        net.add_node(n, x, 0)
    net.add_link("up", "A", "B", length_m=1500, lanes=6, free_speed_kmh=60)
    net.add_link("bridge", "B", "C", length_m=2000, lanes=2, free_speed_kmh=60)
    d = ts.Demand()
    d.add("A", "C", [(0, 4500), (1200, 2000)])
    return ts.Scenario(net, d, 2400, name="lane drop 6->2"), "bridge", ["up", "bridge"]


def corridor():
    net = ts.Network()
    n = 6
    for i in range(n + 1):
        net.add_node(f"N{i}", 300.0 * i, 0)
    for i in range(n):
        net.add_link(f"c{i}", f"N{i}", f"N{i + 1}", length_m=300, lanes=2, free_speed_kmh=50)
    d = ts.Demand()
    d.add("N0", f"N{n}", [(0, 1900), (1200, 1000)])
    controls = []
    for i in range(1, n):
        # corridor green 35 s of a 70 s cycle, the cross street's 30 s shown as a phase without
        # corridor movements; offsets form a green wave at 50 km/h
        controls.append(FixedTimeSignal(
            f"N{i}", (Phase(35, ((f"c{i - 1}", f"c{i}"),), 3, 2), Phase(25, (), 3, 2)), offset_s=(i * 300 / (50 / 3.6)) % 70,
        ))
    return ts.Scenario(net, d, 2400, controls, name="5-signal corridor"), "c0", [f"c{i}" for i in range(n)]


ENGINES = ("macro", "micro", "sumo")


def time_space(ax, res, links, title):
    ds = res.data
    speed = np.concatenate([ds.speed.sel(link=lk).values[:, None] for lk in links], axis=1)
    edges = np.concatenate([[0], np.cumsum([float(ds.length_m.sel(link=lk)) for lk in links])])
    t = np.concatenate([[0], ds.time.values])
    m = ax.pcolormesh(t / 60, edges / 1000, speed.T, vmin=0, vmax=80, cmap="RdYlGn", shading="flat")
    ax.set_title(title)
    ax.set_xlabel("time [min]")
    ax.set_ylabel("distance [km]")
    return m


def main():
    rows = []
    OUT.mkdir(exist_ok=True)
    for build in (on_ramp, lane_drop, corridor):
        sc, bottleneck, path = build()
        runs = {}
        for eng in ENGINES:
            t0 = time.perf_counter()
            runs[eng] = ts.simulate(sc, engine=eng)
            runs[eng].wall_s = time.perf_counter() - t0
        fig, axes = plt.subplots(1, 4, figsize=(20, 4), constrained_layout=True)
        for ax, eng in zip(axes[:3], ENGINES):
            m = time_space(ax, runs[eng], path, f"{sc.name}: {eng} speed [km/h]")
        fig.colorbar(m, ax=axes[:3])
        for eng, style in zip(ENGINES, ("-", ":", "--")):
            ds = runs[eng].data
            axes[3].plot(ds.time / 60, ds.outflow.sel(link=bottleneck), style, label=f"{eng} outflow {bottleneck}")
        axes[3].set_xlabel("time [min]"); axes[3].set_ylabel("veh/h"); axes[3].legend()
        slug = sc.name.split()[0].replace("-", "").lower()
        fig.savefig(OUT / f"sumo_{slug}.png", dpi=90)
        plt.close(fig)
        # discharge while saturated: the first 20 min, after the first 5 (demand above capacity)
        sat = slice(5, 20)
        q = {e: float(runs[e].data.outflow.sel(link=bottleneck)[sat].mean()) for e in ENGINES}
        rows.append((sc.name, bottleneck, q, {e: runs[e].kpis for e in ENGINES}, {e: runs[e].wall_s for e in ENGINES}))
    print("| case | bottleneck | discharge macro / micro / SUMO [veh/h] | micro, SUMO vs macro | "
          "delay macro / micro / SUMO [veh h] | completed macro / micro / SUMO | wall macro / micro / SUMO [s] |")
    print("|---|---|---|---|---|---|---|")
    for name, bn, q, k, w in rows:
        print(f"| {name} | {bn} | {q['macro']:.0f} / {q['micro']:.0f} / {q['sumo']:.0f} | "
              f"{100 * (q['micro'] / q['macro'] - 1):+.1f}%, {100 * (q['sumo'] / q['macro'] - 1):+.1f}% | "
              + " / ".join(f"{k[e]['delay_vh']:.1f}" for e in ENGINES) + " | "
              + " / ".join(f"{k[e]['completed']:.0f}" for e in ENGINES) + " | "
              + " / ".join(f"{w[e]:.1f}" for e in ENGINES) + " |")

if __name__ == "__main__":
    main()
