"""The luoxi-bridge tidal lane on every engine: the table and figures of docs/validation_sumo.md
("Measures on SUMO"). Run: python docs/tidal_crosscheck.py  (about a minute; needs eclipse-sumo)."""

import sys
from pathlib import Path

import trafficsim as ts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_measures import direction_delay_vh  # noqa: E402  (delay of one direction, links + origin)

NORTH, SOUTH = ["ground-feeder", "ground-approach", "bridge"], ["bridge-south", "ground-south"]


def main():
    sc = ts.scenarios.load("luoxi-bridge")
    (tidal,) = sc.measures["TidalLane"]
    variants = {"base": sc, "tidal": tidal.apply(sc)}
    print("| engine | northbound delay base -> tidal [veh h] | TTI | longest queue [m] | southbound delay "
          "| bridge inflow 3600-6300 s [veh/h] |")
    print("|---|---|---|---|---|---|")
    for engine in ("macro", "sumo", "micro"):
        cols = {}
        for name, s in variants.items():
            res = ts.simulate(s, engine=engine, seed=0)
            k, d = res.kpis, res.data
            inflow = d["inflow"].sel(link="bridge")
            cols[name] = (direction_delay_vh(res, NORTH, "P0"), float(k["travel_time_index"]), float(k["max_queue_m"]),
                          direction_delay_vh(res, SOUTH, "N"),
                          float(inflow.where((d.time > 3600) & (d.time <= 6300)).dropna("time").mean()))
        b, t = cols["base"], cols["tidal"]
        print(f"| {engine} | {round(b[0])} -> {round(t[0])} | {b[1]:.2f} -> {t[1]:.2f} | {round(b[2])} -> {round(t[2])} | "
              f"{round(b[3])} -> {round(t[3])} | {b[4]:,.0f} -> {t[4]:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
