"""A generated Haizhu-size city network with a whole day (24 h) of demand, for scale studies.

::

    from trafficsim.citynet import haizhu_city
    sc = haizhu_city()                 # ~3,500 links, ~600 OD flows, 24 h with AM and PM peaks
    res = ts.simulate(sc, engine="macro", record_interval_s=900)

The layout follows Haizhu District (Guangzhou), an island in the Pearl River about 14 km east-west
by 5 km north-south, at the resolution of its road grid, not its exact geometry:

- **Road grid**: ``cols x rows`` junctions ``spacing_m`` apart, every junction pair joined both
  ways. Every ``arterial_every``-th row and column is a 3-lane arterial (50 km/h, 1800 veh/h/lane:
  the black-spot scenarios' arterial class), the rest 2-lane secondary roads (40 km/h, 1600
  veh/h/lane, a kerbside-parking-reduced arterial).
- **Bridges to the north bank** (Tianhe/Yuexiu, where the morning trips go): ``bridges`` river
  crossings of 3 lanes each way (60 km/h, 1900 veh/h/lane, the bridge class) from the top row of
  the grid to a bank road along the north shore, the way Renmin, Haizhu, Jiefang, Haiyin,
  Jiangwan, Guangzhou, Liede and Huanan bridges tie the island to the city centre.
- **Inner Ring Road**: a 3-lane-each-way urban expressway loop (80 km/h, 2000 veh/h/lane) over
  the west part of the island with an on- and an off-ramp (2 lanes, 1600 veh/h/lane) every other ring
  node; like the real elevated ring it carries through traffic above the grid.
- **Demand**: zones on a coarse lattice of the grid (every ``zone_every``-th junction) and at
  the north end of every bridge. Three families of OD flows, each with its own daily curve
  (piecewise constant per 15 min over 24 h): island -> north bank (AM peak 07:30-09:00 at full
  rate, PM peak at ``counter_peak_ratio``), north bank -> island (the mirror: PM peak at full
  rate) and trips within the island (both peaks). Night (22:00-06:00) runs at ``night_ratio``
  of the peak rate, the daytime between peaks at ``shoulder_ratio``; peaks ramp up and down over
  ``ramp_s``. Peak rates are scaled so the busiest bridges are loaded near their capacity.

Junctions are unsignalised (the CTM node model shares supply in proportion to capacity); a
scale study measures the engine, not a signal plan. Routes are free-flow shortest paths.
"""

from __future__ import annotations


import numpy as np

from .demand import Demand
from .network import Network
from .scenario import Scenario

__all__ = ["haizhu_city", "daily_profile", "DAY_S", "RING_OFFSET_M"]

DAY_S = 86400.0
"""One day [s]."""
PROFILE_STEP_S = 900.0
"""Resolution of the daily demand curve [s]."""

_ARTERIAL = dict(free_speed_kmh=50.0, capacity_vph_per_lane=1800.0, jam_density_vpkm_per_lane=150.0)
_SECONDARY = dict(free_speed_kmh=40.0, capacity_vph_per_lane=1600.0, jam_density_vpkm_per_lane=150.0)
_BRIDGE = dict(free_speed_kmh=60.0, capacity_vph_per_lane=1900.0, jam_density_vpkm_per_lane=140.0)
_RING = dict(free_speed_kmh=80.0, capacity_vph_per_lane=2000.0, jam_density_vpkm_per_lane=140.0)
_RAMP = dict(free_speed_kmh=40.0, capacity_vph_per_lane=1600.0, jam_density_vpkm_per_lane=150.0)

RING_OFFSET_M = (10.0, 20.0)
"""Where a ring node is drawn from the junction under it [m] (east, north). Only directions
depend on it (the ring's and the ramps' lengths are given): the ramps leave the junction at
about 63 degrees from east, so no ramp runs parallel to a street or to the ring, and every turn
between the ring, its ramps and the streets is a turn of 27-153 degrees, never a straight-on
tie or a U-turn (which the lane rules of :mod:`trafficsim.lanes` read from the angles)."""


def _bump(t_s: float, start_s: float, duration_s: float, ramp_s: float) -> float:
    """1 on the plateau ``[start, start + duration)``, linear ramps of ``ramp_s`` either side, else 0."""
    end = start_s + duration_s
    if start_s <= t_s < end:
        return 1.0
    if ramp_s > 0 and start_s - ramp_s <= t_s < start_s:
        return (t_s - (start_s - ramp_s)) / ramp_s
    if ramp_s > 0 and end <= t_s < end + ramp_s:
        return 1.0 - (t_s - end) / ramp_s
    return 0.0


def daily_profile(peak_vph: float, *, am_weight: float, pm_weight: float, am_start_s: float = 27000.0,
                  pm_start_s: float = 63000.0, peak_duration_s: float = 5400.0, ramp_s: float = 3600.0,
                  shoulder_ratio: float = 0.45, night_ratio: float = 0.08) -> list[tuple[float, float]]:
    """A 24 h piecewise-constant demand profile ``[(start_s, veh/h), ...]`` in 15-min steps.

    Parameters
    ----------
    peak_vph : float
        Rate at a peak of weight 1 [veh/h].
    am_weight, pm_weight : float
        Height of the AM and PM peaks as a share of ``peak_vph``.
    am_start_s, pm_start_s : float
        Start of the AM and PM peak plateaus [s since midnight] (07:30, 17:30).
    peak_duration_s, ramp_s : float
        Plateau length and the length of each ramp [s].
    shoulder_ratio, night_ratio : float
        Daytime (06:00-22:00, one-hour transitions) and night rates as shares of ``peak_vph``.
    """
    out: list[tuple[float, float]] = []
    for k in range(int(DAY_S / PROFILE_STEP_S)):
        t = (k + 0.5) * PROFILE_STEP_S
        day = night_ratio + (shoulder_ratio - night_ratio) * min(_bump(t, 6 * 3600.0, 16 * 3600.0, 3600.0), 1.0)
        g = max(day, am_weight * _bump(t, am_start_s, peak_duration_s, ramp_s),
                pm_weight * _bump(t, pm_start_s, peak_duration_s, ramp_s))
        rate = round(peak_vph * g, 6)
        if not out or out[-1][1] != rate:
            out.append((k * PROFILE_STEP_S, rate))
    return out


def haizhu_city(
    *,
    cols: int = 49,
    rows: int = 17,
    spacing_m: float = 300.0,
    arterial_every: int = 4,
    bridges: int = 8,
    river_m: float = 400.0,
    ring: bool = True,
    zone_every: int = 4,
    demand_scale: float = 1.0,
    counter_peak_ratio: float = 0.6,
    shoulder_ratio: float = 0.45,
    night_ratio: float = 0.08,
    ramp_s: float = 3600.0,
    duration_s: float = DAY_S,
    seed: int = 0,
) -> Scenario:
    """Generate the Haizhu-size city scenario (see the module docstring for the layout).

    Parameters
    ----------
    cols, rows : int
        Junctions of the road grid east-west and north-south.
    spacing_m : float
        Distance between neighbouring junctions [m].
    arterial_every : int
        Every this many rows and columns is an arterial (others secondary roads).
    bridges : int
        Bridges to the north bank (spread evenly along the north shore).
    river_m : float
        Length of each bridge [m] (river width plus approaches).
    ring : bool
        Build the Inner Ring Road and its ramps.
    zone_every : int
        Zones sit on every this many junctions of the grid (both directions).
    demand_scale : float
        Multiplies every rate (1.0 loads the busiest bridges near capacity at the peaks).
    counter_peak_ratio : float
        Height of the counter-direction peak (e.g. northbound in the PM) [share of the peak].
    shoulder_ratio, night_ratio : float
        Daytime and night demand as shares of the peak rate.
    ramp_s : float
        Length of each peak's ramp up and down [s].
    duration_s : float
        Simulated horizon [s]; a day by default.
    seed : int
        Seed of the zone weights (fixed default: the same city every time).

    Returns
    -------
    Scenario
        Named ``"haizhu-city"``; ``meta`` holds the counts and the layout parameters.
    """
    if cols < 3 or rows < 3:
        raise ValueError(f"haizhu_city: cols and rows must be >= 3, got {cols} x {rows}")
    if not 1 <= bridges <= cols:
        raise ValueError(f"haizhu_city: bridges must be in 1..cols={cols}, got {bridges}")
    if not (spacing_m > 0 and river_m > 0 and demand_scale >= 0):
        raise ValueError("haizhu_city: spacing_m and river_m must be > 0 and demand_scale >= 0")
    rng = np.random.default_rng(seed)
    net = Network()
    top = (rows - 1) * spacing_m

    def g(i: int, j: int) -> str:  # junction in column i (west->east), row j (south->north)
        return f"g{i}_{j}"

    for j in range(rows):
        for i in range(cols):
            net.add_node(g(i, j), x=i * spacing_m, y=j * spacing_m)
    for j in range(rows):
        for i in range(cols):
            for di, dj in ((1, 0), (0, 1)):
                a, b = i + di, j + dj
                if a >= cols or b >= rows:
                    continue
                arterial = (j % arterial_every == 0) if dj == 0 else (i % arterial_every == 0)
                kw = _ARTERIAL if arterial else _SECONDARY
                lanes = 3 if arterial else 2
                net.add_link(f"{g(i, j)}-{g(a, b)}", g(i, j), g(a, b), length_m=spacing_m, lanes=lanes, **kw)
                net.add_link(f"{g(a, b)}-{g(i, j)}", g(a, b), g(i, j), length_m=spacing_m, lanes=lanes, **kw)

    # bridges and the north bank road
    bridge_cols = sorted({int(round(c)) for c in np.linspace(1, cols - 2, bridges)}) if cols > 2 else [0]
    north = []
    for k, i in enumerate(bridge_cols):
        n = f"n{k}"
        net.add_node(n, x=i * spacing_m, y=top + river_m)
        north.append(n)
        net.add_link(f"bridge{k}-north", g(i, rows - 1), n, length_m=river_m, lanes=3, **_BRIDGE)
        net.add_link(f"bridge{k}-south", n, g(i, rows - 1), length_m=river_m, lanes=3, **_BRIDGE)
    for k in range(len(north) - 1):
        dx = (bridge_cols[k + 1] - bridge_cols[k]) * spacing_m
        net.add_link(f"bank{k}-east", north[k], north[k + 1], length_m=dx, lanes=3, **_ARTERIAL)
        net.add_link(f"bank{k + 1}-west", north[k + 1], north[k], length_m=dx, lanes=3, **_ARTERIAL)

    # the Inner Ring Road: an elevated loop over the west part of the island
    ring_nodes: list[tuple[str, int, int]] = []
    if ring and cols >= 8 and rows >= 6:
        i0, i1 = max(1, cols // 12), max(3, cols * 5 // 12)
        j0, j1 = max(1, rows // 5), rows - 1 - max(1, rows // 5)
        step = 2
        loop = ([(i, j0) for i in range(i0, i1, step)] + [(i1, j) for j in range(j0, j1, step)]
                + [(i, j1) for i in range(i1, i0, -step)] + [(i0, j) for j in range(j1, j0, -step)])
        for k, (i, j) in enumerate(loop):
            r = f"r{k}"
            net.add_node(r, x=i * spacing_m + RING_OFFSET_M[0], y=j * spacing_m + RING_OFFSET_M[1])
            ring_nodes.append((r, i, j))
        m = len(ring_nodes)
        for k in range(m):
            (a, ia, ja), (b, ib, jb) = ring_nodes[k], ring_nodes[(k + 1) % m]
            length = (abs(ia - ib) + abs(ja - jb)) * spacing_m
            net.add_link(f"ring{k}-cw", a, b, length_m=length, lanes=3, **_RING)
            net.add_link(f"ring{k}-ccw", b, a, length_m=length, lanes=3, **_RING)
            if k % 2 == 0:
                net.add_link(f"ramp{k}-on", g(ia, ja), a, length_m=200.0, lanes=2, **_RAMP)
                net.add_link(f"ramp{k}-off", a, g(ia, ja), length_m=200.0, lanes=2, **_RAMP)

    # zones and demand
    island = [g(i, j) for j in range(0, rows, zone_every) for i in range(0, cols, zone_every)]
    weight = {z: w for z, w in zip(island, rng.uniform(0.5, 1.5, len(island)))}
    bridge_capacity = 3 * _BRIDGE["capacity_vph_per_lane"] * len(north)
    # the whole bridge capacity at the AM peak, shared over zones by weight and bridge heads equally
    to_north = 0.9 * bridge_capacity * demand_scale
    internal = 0.5 * bridge_capacity * demand_scale
    total_w = sum(weight.values())
    shape = dict(ramp_s=ramp_s, shoulder_ratio=shoulder_ratio, night_ratio=night_ratio)
    d = Demand()
    for z in island:
        zi, zj = (int(v) for v in z[1:].split("_"))
        # each zone sends to the two nearest bridge heads (by column), as drivers pick a bridge
        near = sorted(range(len(north)), key=lambda k: (abs(bridge_cols[k] - zi), k))[:2]
        for k in near:
            q = to_north * weight[z] / total_w / len(near)
            d.add(z, north[k], daily_profile(q, am_weight=1.0, pm_weight=counter_peak_ratio, **shape), name=f"{z}>n{k}")
            d.add(north[k], z, daily_profile(q, am_weight=counter_peak_ratio, pm_weight=1.0, **shape), name=f"n{k}>{z}")
        # trips within the island: to three other zones drawn once (fixed seed)
        others = [o for o in island if o != z]
        for dest in rng.choice(len(others), size=min(3, len(others)), replace=False):
            q = internal * weight[z] / total_w / 3
            d.add(z, others[dest], daily_profile(q, am_weight=0.8, pm_weight=0.8, **shape), name=f"{z}>{others[dest]}")
    length_km = sum(lk.length_m for lk in net.links.values()) / 1000.0
    meta = {
        "links": len(net.links), "nodes": len(net.nodes), "od_flows": len(d.flows), "network_length_km": length_km,
        "bridges": [f"bridge{k}-north" for k in range(len(north))], "ring_links": 2 * len(ring_nodes),
        "parameters": dict(cols=cols, rows=rows, spacing_m=spacing_m, arterial_every=arterial_every, bridges=bridges,
                           river_m=river_m, ring=ring, zone_every=zone_every, demand_scale=demand_scale,
                           counter_peak_ratio=counter_peak_ratio, shoulder_ratio=shoulder_ratio,
                           night_ratio=night_ratio, ramp_s=ramp_s, duration_s=duration_s, seed=seed),
    }
    description = (f"Generated Haizhu-size city: {cols} x {rows} grid at {spacing_m:g} m, {len(north)} bridges to the "
                   f"north bank, {'an Inner Ring Road, ' if ring_nodes else ''}{len(d.flows)} OD flows over "
                   f"{duration_s / 3600:g} h with AM and PM peaks.")
    return Scenario(net, d, duration_s, name="haizhu-city", description=description, meta=meta)
