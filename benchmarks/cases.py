"""Benchmark networks built with the public API (shared by the benchmark suites and peers)."""

from __future__ import annotations

import numpy as np

import trafficsim as ts

__all__ = ["onramp_corridor", "grid_city", "uxsim_grid"]


def onramp_corridor(duration_s: float = 7200.0, mainline_vph: float = 4800.0, ramp_vph: float = 900.0) -> ts.Scenario:
    """5 km 3-lane expressway with an on-ramp at 2.5 km (about 5,700 veh/h in the peak)."""
    net = ts.Network()
    for nid, x, y in [("W", 0, 0), ("M", 2500, 0), ("E", 5000, 0), ("R", 2000, -300)]:
        net.add_node(nid, x=x, y=y)
    kw = dict(free_speed_kmh=80, capacity_vph_per_lane=1900, jam_density_vpkm_per_lane=140)
    net.add_link("main_up", "W", "M", length_m=2500, lanes=3, **kw)
    net.add_link("main_down", "M", "E", length_m=2500, lanes=3, **kw)
    net.add_link("ramp", "R", "M", length_m=400, lanes=1, free_speed_kmh=50, capacity_vph_per_lane=1800,
                 jam_density_vpkm_per_lane=150)
    d = ts.Demand()
    d.add("W", "E", [(0, mainline_vph * 0.6), (1800, mainline_vph), (5400, mainline_vph * 0.6)])
    d.add("R", "E", [(0, ramp_vph * 0.6), (1800, ramp_vph), (5400, ramp_vph * 0.6)])
    return ts.Scenario(net, d, duration_s, name="onramp-corridor")


def _grid_network(n: int, spacing_m: float, lanes: int, **fd) -> ts.Network:
    net = ts.Network()
    for i in range(n):
        for j in range(n):
            net.add_node(f"{i}_{j}", x=j * spacing_m, y=i * spacing_m)
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                a, b = i + di, j + dj
                if 0 <= a < n and 0 <= b < n:
                    net.add_link(f"{i}_{j}-{a}_{b}", f"{i}_{j}", f"{a}_{b}", length_m=spacing_m, lanes=lanes, **fd)
    return net


def grid_city(n: int = 20, spacing_m: float = 400.0, trips_per_hour: float = 20000.0, n_od: int = 400,
              duration_s: float = 3600.0, seed: int = 0, priority_junctions: bool = False) -> ts.Scenario:
    """An n x n grid of 2-lane 50 km/h streets with random OD demand between boundary nodes;
    ``priority_junctions``: every node where three or more streets meet is a
    :class:`~trafficsim.PriorityJunction` (``trafficsim.control.priority_junctions``; its major
    road the default one: the streets along the first index), else crossing streams pass through
    each other."""
    net = _grid_network(n, spacing_m, 2, free_speed_kmh=50, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    rng = np.random.default_rng(seed)
    boundary = [f"{i}_{j}" for i in range(n) for j in range(n) if i in (0, n - 1) or j in (0, n - 1)]
    d = ts.Demand()
    pairs = set()
    while len(pairs) < n_od:
        o, dest = rng.choice(len(boundary), 2, replace=False)
        pairs.add((boundary[o], boundary[dest]))
    for o, dest in sorted(pairs):
        d.add(o, dest, [(0, trips_per_hour / n_od), (duration_s / 2, 0.5 * trips_per_hour / n_od)])
    controls = ts.control.priority_junctions(net) if priority_junctions else []
    return ts.Scenario(net, d, duration_s, controls=controls, name=f"grid-{n}x{n}")


def uxsim_grid(n: int = 11, duration_s: float = 7200.0, rate_vps: float = 0.035) -> ts.Scenario:
    """UXsim's large benchmark (demo notebook 11): n x n grid of 1 km one-lane links, 20 m/s,
    jam density 0.2 veh/m, capacity 0.8 veh/s (wave speed 5 m/s), ``rate_vps`` from every node on
    one side to every node on the opposite side for an hour (484 OD pairs, ~61,000 vehicles)."""
    net = _grid_network(n, 1000.0, 1, free_speed_kmh=72, capacity_vph_per_lane=2880, jam_density_vpkm_per_lane=200)
    d = ts.Demand()
    west = [f"{i}_0" for i in range(n)]
    east = [f"{i}_{n - 1}" for i in range(n)]
    south = [f"0_{j}" for j in range(n)]
    north = [f"{n - 1}_{j}" for j in range(n)]
    for side_a, side_b in ((west, east), (south, north)):
        for a in side_a:
            for b in side_b:
                d.add(a, b, [(0, rate_vps * 3600), (3600, 0)])
                d.add(b, a, [(0, rate_vps * 3600), (3600, 0)])
    return ts.Scenario(net, d, duration_s, name=f"uxsim-grid-{n}")
