"""Plots render (Agg) and contain what they claim: labels with units, data ranges, artists."""

from __future__ import annotations

import subprocess
import types
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.collections import LineCollection, QuadMesh  # noqa: E402

import trafficsim as ts  # noqa: E402
from trafficsim import plot  # noqa: E402


def lane_drop(coords: bool = True, duration_s: float = 3600.0) -> ts.Scenario:
    """Six lanes into two: a queue forms on 'up' behind the bridge."""
    net = ts.Network()
    for nid, x in (("A", 0.0), ("B", 1500.0), ("C", 3500.0)):
        net.add_node(nid, x=x if coords else None, y=0.0 if coords else None)
    net.add_link("up", "A", "B", length_m=1500, lanes=6, free_speed_kmh=60, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    net.add_link("bridge", "B", "C", length_m=2000, lanes=2, free_speed_kmh=60, capacity_vph_per_lane=1800, jam_density_vpkm_per_lane=150)
    demand = ts.Demand()
    demand.add("A", "C", [(0, 4500), (1800, 1000)])
    return ts.Scenario(network=net, demand=demand, duration_s=duration_s, name="lane-drop")


@pytest.fixture(scope="module")
def result():
    return ts.simulate(lane_drop(), record_cells=True)


@pytest.fixture(scope="module")
def result_links():
    return ts.simulate(lane_drop())


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_import_trafficsim_does_not_import_matplotlib():
    code = "import sys, trafficsim, trafficsim.plot, trafficsim.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_time_space_cells_shows_queue_upstream_of_bottleneck(result):
    ax = plot.time_space(result)
    meshes = [c for c in ax.collections if isinstance(c, QuadMesh)]
    assert len(meshes) == 1
    assert ax.get_xlabel() == "time [min]"
    assert ax.get_ylabel() == "distance along path [km]"
    assert ax.get_ylim() == pytest.approx((0.0, 3.5))
    assert ax.get_xlim()[1] == pytest.approx(60.0)
    field = np.asarray(meshes[0].get_array()).reshape(-1, result.data.sizes["time"])
    n_up = int((result.data["cell_link"] == "up").sum())
    # the queue stands on 'up' (slow cells) and never on the bridge (free flow)
    assert field[:n_up].min() < 15.0
    assert field[n_up:].min() == pytest.approx(60.0)
    cbar = ax.figure.axes[-1]
    assert cbar.get_ylabel() == "speed [km/h]"


def test_time_space_link_level_density(result_links):
    ax = plot.time_space(result_links.data, links=["up", "bridge"], variable="density")
    mesh = ax.collections[0]
    assert np.asarray(mesh.get_array()).size == 2 * result_links.data.sizes["time"]
    assert ax.figure.axes[-1].get_ylabel() == "density [veh/km]"


def test_time_space_rejects_unknown_link(result):
    with pytest.raises(ValueError, match="link 'nowhere' is not in the result"):
        plot.time_space(result, links=["up", "nowhere"])


def test_default_path_prefers_corridor_then_longest_route(result):
    sc = lane_drop()
    sc.meta["corridor"] = ["bridge"]
    assert plot.default_path(result.data, sc) == ["bridge"]
    assert plot.default_path(result.data) == ["up", "bridge"]


def test_cumulative_curves(result):
    ax = plot.cumulative_curves(result, "up")
    assert len(ax.lines) == 3
    assert ax.get_ylabel() == "cumulative vehicles [veh]"
    arrivals, _, departures = ax.lines
    final_in = float(result.data["cum_in"].sel(link="up")[-1])
    assert arrivals.get_ydata()[-1] == pytest.approx(final_in)
    # departures never lead arrivals
    assert np.all(departures.get_ydata() <= arrivals.get_ydata() + 1e-9)
    assert len(plot.cumulative_curves(result, "up", virtual_arrivals=False).lines) == 2


def test_fundamental_diagram_scatter_and_triangle(result):
    ax = plot.fundamental_diagram(result)
    assert ax.get_xlabel() == "density [veh/km/lane]"
    assert ax.get_ylabel() == "flow [veh/h/lane]"
    assert len(ax.collections) == 2  # one scatter per link
    (line,) = ax.lines  # both links share one FD
    assert list(line.get_xdata()) == pytest.approx([0.0, 30.0, 150.0])
    assert list(line.get_ydata()) == pytest.approx([0.0, 1800.0, 0.0])
    for coll in ax.collections:
        q = coll.get_offsets()[:, 1]
        assert q.max() <= 1800.0 * 1.001


def test_fundamental_diagram_without_jam_density_draws_capacity(result):
    ax = plot.fundamental_diagram(result.data, links=["bridge"], per_lane=False)
    assert ax.get_ylabel() == "flow [veh/h]"
    assert max(ax.lines[0].get_ydata()) == pytest.approx(3600.0)


def test_network_map_colours_links_at_time(result):
    ax = plot.network_map(result, time=1800, variable="speed")
    (lc,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    speeds = np.asarray(lc.get_array())
    assert speeds.shape == (2,)
    assert speeds[0] < speeds[1]  # queued 'up' slower than the free bridge
    assert ax.get_xlabel() == "x [km]" and ax.get_ylabel() == "y [km]"
    assert "30 min" in ax.get_title()
    assert ax.figure.axes[-1].get_ylabel() == "speed [km/h]"


def test_network_map_of_scenario_and_missing_coordinates():
    ax = plot.network_map(lane_drop())
    assert np.asarray(ax.collections[0].get_array()).tolist() == [6.0, 2.0]
    with pytest.raises(ValueError, match="have no coordinates; give x=, y="):
        plot.network_map(lane_drop(coords=False))


def test_network_map_of_dataset_needs_scenario(result):
    with pytest.raises(ValueError, match="scenario="):
        plot.network_map(result.data)
    ax = plot.network_map(result.data, scenario=result.scenario, variable="queue")
    assert ax.figure.axes[-1].get_ylabel() == "queue [veh]"


def test_kpi_bars_relative_to_baseline():
    kpis = pd.DataFrame(
        {"delay_vh": [400.0, 100.0, 300.0], "max_queue_m": [1200.0, 300.0, 1200.0], "bottleneck": ["up", "up", ""]},
        index=["baseline", "tidal-lane", "metering"],
    )
    ax = plot.kpi_bars(kpis)
    bars = ax.patches
    assert len(bars) == 6
    heights = sorted(round(b.get_height(), 6) for b in bars)
    assert heights == [25.0, 25.0, 75.0, 100.0, 100.0, 100.0]
    assert ax.get_ylabel() == "relative to baseline [%]"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["delay_vh\n[veh h]", "max_queue_m\n[m]"]
    ax = plot.kpi_bars(kpis, columns=["delay_vh"], relative=False)
    assert [b.get_height() for b in ax.patches] == [400.0, 100.0, 300.0]
    assert ax.get_ylabel() == "delay_vh [veh h]"
    with pytest.raises(ValueError, match="not in the table"):
        plot.kpi_bars(kpis, columns=["nope"])


def test_kpi_bars_carry_the_seeds_confidence_half_widths():
    """A micro comparison over seeds: +55 veh h of delay within a 95 % half-width of 65 read as a
    loss when drawn without it; each bar now has its error bar, scaled as the bar is."""
    kpis = pd.DataFrame({"delay_vh": [400.0, 455.0], "delay_vh_ci95": [20.0, 65.0]}, index=["baseline", "meter"])
    ax = plot.kpi_bars(kpis, columns=["delay_vh"])
    segs = [seg for lc in ax.collections for seg in lc.get_segments()]
    halves = sorted(round((s[1][1] - s[0][1]) / 2.0, 6) for s in segs)
    assert halves == [5.0, 16.25]          # 20 / 400 and 65 / 400 of the baseline, in %


def test_kpi_bars_show_a_variant_that_makes_a_zero_baseline_worse():
    """A harsh meter raising delay from 0 to 620 veh h had no bar (0 % of nothing is NaN): the
    chart read as if no variant changed anything. A zero baseline's bars are now shares of the
    largest value, and the tick says so."""
    kpis = pd.DataFrame({"delay_vh": [0.0, 620.0, 0.0], "unserved": [0.0, 0.0, 0.0]},
                        index=["baseline", "harsh meter", "widening"])
    ax = plot.kpi_bars(kpis)
    heights = [round(b.get_height(), 6) for b in ax.patches]   # variant by variant, KPI by KPI
    assert heights == [0.0, 100.0, 100.0, 100.0, 0.0, 100.0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[0].endswith("(baseline 0: % of largest)") and "baseline 0" not in ticks[1]


def test_compare_time_space_shared_scale(result_links):
    other = ts.simulate(lane_drop().replace(demand=lane_drop().demand.scaled(0.5)))
    axes = plot.compare_time_space({"baseline": result_links, "half demand": other}, ["up", "bridge"])
    assert [ax.get_title() for ax in axes] == ["baseline", "half demand"]
    clims = {ax.collections[0].get_clim() for ax in axes}
    assert len(clims) == 1
    stacked = xr.concat([result_links.data, other.data], dim=pd.Index(["a", "b"], name="variant"))
    axes = plot.compare_time_space(stacked, ["up", "bridge"], variable="density")
    assert [ax.get_title() for ax in axes] == ["a", "b"]


def synthetic_trajectories() -> xr.Dataset:
    """Three vehicles at 36 km/h over two links of 100 m, entering 5 s apart."""
    time = np.arange(0.0, 31.0, 1.0)
    link = np.full((time.size, 3), "", dtype=object)
    pos = np.full((time.size, 3), np.nan)
    for v in range(3):
        travelled = (time - 5.0 * v) * 10.0
        inside = (travelled >= 0) & (travelled < 200)
        link[inside, v] = np.where(travelled[inside] < 100, "a", "b")
        pos[inside, v] = np.where(travelled[inside] < 100, travelled[inside], travelled[inside] - 100)
    return xr.Dataset(
        {
            "link": (("time", "vehicle"), link.astype(str)),
            "position": (("time", "vehicle"), pos, {"units": "m"}),
            "speed": (("time", "vehicle"), np.where(np.isnan(pos), np.nan, 10.0), {"units": "m/s"}),
        },
        coords={"time": time, "vehicle": [0, 1, 2]},
    )


def test_trajectories_along_path():
    ds = synthetic_trajectories()
    ax = plot.trajectories(ds, links=["a", "b"], lengths_m={"a": 100.0, "b": 100.0})
    (lc,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = lc.get_segments()
    assert len(segments) == 3 * 19  # 20 samples inside per vehicle
    ys = np.concatenate([s[:, 1] for s in segments])
    assert ys.min() == pytest.approx(0.0) and ys.max() == pytest.approx(0.19)
    assert np.asarray(lc.get_array()) == pytest.approx(36.0)
    assert ax.get_ylabel() == "distance along path [km]"
    assert ax.figure.axes[-1].get_ylabel() == "speed [km/h]"
    ax = plot.trajectories(ds, links=["a", "b"], lengths_m={"a": 100.0, "b": 100.0}, max_vehicles=1)
    assert "1 of 3" in ax.get_title()
    # a run that recorded only its first vehicles (micro's trajectories max_vehicles) says so
    ds.attrs["vehicles_created"] = 8809
    ax = plot.trajectories(ds, links=["a", "b"], lengths_m={"a": 100.0, "b": 100.0})
    assert "3 of the first 3 of 8,809 vehicles" in ax.get_title()


def test_network_map_names_the_links_of_a_small_network():
    """A map of coloured segments without ids could not tell which line is which link."""
    res = ts.simulate(ts.scenarios.load("jiangwan-bridge").replace(duration_s=600.0))
    ax = plot.network_map(res)
    assert sorted(t.get_text() for t in ax.texts) == sorted(res.data.link.values.tolist())
    assert len(plot.network_map(res, labels=False).texts) == 0


def test_a_time_space_path_must_connect():
    """Two links that do not connect drew one distance axis through the gap; the error names the
    pair and the links that do go on."""
    res = ts.simulate(ts.scenarios.load("jiangwan-bridge").replace(duration_s=600.0))
    with pytest.raises(ValueError, match=r"links 'bridge' and 'ring-feeder' do not connect: 'bridge' ends at node "
                                         r"'N', 'ring-feeder' starts at 'R0' \(links from 'N': deck\)"):
        plot.time_space(res, links=["bridge", "ring-feeder"])
    plot.time_space(res, links=["ring-feeder", "ring-approach", "bridge"])


def test_trajectories_errors():
    ds = synthetic_trajectories()
    with pytest.raises(ValueError, match="give links="):
        plot.trajectories(ds)
    with pytest.raises(ValueError, match="pass lengths_m="):
        plot.trajectories(ds, links=["a", "b"])
    with pytest.raises(ValueError, match="dims"):
        plot.trajectories(ds.isel(vehicle=0))


def test_plots_draw_on_given_axes_and_never_close(result):
    fig, axes = plt.subplots(1, 3)
    assert plot.time_space(result, ax=axes[0], colorbar=False) is axes[0]
    assert plot.cumulative_curves(result, "bridge", ax=axes[1]) is axes[1]
    assert plot.fundamental_diagram(result, ax=axes[2]) is axes[2]
    assert plt.fignum_exists(fig.number)


def test_animate_network_saves_a_gif(result, tmp_path):
    _, ax = plt.subplots()
    anim = plot.animate_network(result, step=10, ax=ax)
    path = tmp_path / "run.gif"
    anim.save(path, writer="pillow", fps=4)
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames == len(result.data["time"].values[::10])
    assert ax.get_title() == f"speed at {float(result.data['time'].values[::10][-1]) / 60:.0f} min"


def test_trajectories_micro_engine_layout():
    """The micro engine's layout: link_index into a link_ids coordinate, x [m], speed [km/h]."""
    simple = synthetic_trajectories()
    on = simple["link"].values
    index = np.select([on == "a", on == "b"], [0, 1], default=-1).astype(np.int32)
    ds = xr.Dataset(
        {
            "x": (("time", "vehicle"), simple["position"].values.astype(np.float32), {"units": "m"}),
            "speed": (("time", "vehicle"), (simple["speed"].values * 3.6).astype(np.float32), {"units": "km/h"}),
            "link_index": (("time", "vehicle"), index),
        },
        coords={"time": simple["time"], "vehicle": simple["vehicle"], "link_ids": ("link_id", np.array(["a", "b"]))},
    )
    sc = ts.Scenario(network=ts.Network(), demand=ts.Demand(), duration_s=30.0)
    sc.network.add_node("A"); sc.network.add_node("B"); sc.network.add_node("C")
    sc.network.add_link("a", "A", "B", length_m=100.0, lanes=1)
    sc.network.add_link("b", "B", "C", length_m=100.0, lanes=1)
    result = types.SimpleNamespace(final_state={"trajectories": ds}, scenario=sc)
    sc.meta["corridor"] = ["a", "b"]
    ax = plot.trajectories(result)
    (lc,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lc.get_segments()) == 3 * 19
    assert np.asarray(lc.get_array()) == pytest.approx(36.0)
    with pytest.raises(ValueError, match="holds no trajectories"):
        plot.trajectories(types.SimpleNamespace(final_state={}, scenario=sc))


def test_default_path_runs_through_both_parts_of_a_metered_corridor_link():
    """A corridor naming a link RampMetering cut at its stop line follows both parts (no 100 m
    gap before the merge in the time-space diagram)."""
    from trafficsim.measures import RampMetering

    sc = ts.scenarios.load("merge")
    sc.meta["corridor"] = ["ramp", "section"]
    v = RampMetering(link="ramp", mode="fixed", rate_vph=600).apply(sc)
    assert ts.plot.default_path(xr.Dataset(), v) == ["ramp", "ramp-merge", "section"]


def test_default_path_from_a_corridor_naming_the_merge_part_expands_to_the_whole_road():
    """'ramp-merge' is the last 100 m of the metered ramp: a corridor naming it draws the whole
    ramp (no 300 m gap upstream of the stop line), as one naming 'ramp' does."""
    from trafficsim.measures import RampMetering

    v = RampMetering(link="ramp", mode="fixed", rate_vph=600).apply(ts.scenarios.load("merge"))
    v.meta["corridor"] = ["ramp-merge", "section"]
    assert ts.plot.default_path(xr.Dataset(), v) == ["ramp", "ramp-merge", "section"]
