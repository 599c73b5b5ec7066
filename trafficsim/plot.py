"""Plots of results: the pictures a traffic engineer draws to read a bottleneck.

Every function takes ``ax=None`` (a new figure is made only then) and returns what it drew on:
the ``Axes`` (or an array of them). None of them shows, saves or closes a figure; that is the
caller's decision. matplotlib is imported inside each function, so ``import trafficsim`` stays
light.

Functions accept a result dataset (``Result.data``) or a :class:`~trafficsim.results.Result`;
passing the ``Result`` lets a plot read what the dataset does not carry (node coordinates, the
scenario's corridor, jam densities).

- ``time_space``: speed or density along a path of links over time; the queue growing
  upstream of a bottleneck and its wave moving back.
- ``cumulative_curves``: N-curves at a link's two ends; the vertical gap is the vehicles held,
  the area between them the delay.
- ``fundamental_diagram``: flow-density scatter of the links with their triangular FD.
- ``network_map``: links coloured by speed (or any variable) at one time.
- ``animate_network``: the same map over the run, as an animation to save as GIF or MP4.
- ``kpi_bars``: KPIs of variants side by side, relative to the baseline.
- ``compare_time_space``: one time-space diagram per variant, on a shared colour scale.
- ``trajectories``: vehicle positions over time from a micro trajectory dataset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import xarray as xr

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

__all__ = [
    "time_space",
    "cumulative_curves",
    "fundamental_diagram",
    "network_map",
    "animate_network",
    "kpi_bars",
    "compare_time_space",
    "trajectories",
    "default_path",
]

#: KPIs drawn by :func:`kpi_bars` when no columns are given (those present are used).
DEFAULT_KPI_COLUMNS = ("delay_vh", "travel_time_index", "max_queue_m", "unserved")

_LABELS = {
    "speed": ("speed", "km/h"),
    "density": ("density", "veh/km"),
    "flow": ("flow", "veh/h"),
    "queue": ("queue", "veh"),
    "queue_length": ("queue length", "m"),
}


# ----------------------------------------------------------------------------- helpers
def _split(obj: Any) -> tuple[xr.Dataset | None, Any]:
    """(dataset, scenario) from a Dataset, a Result or a Scenario."""
    from .scenario import Scenario

    if isinstance(obj, xr.Dataset):
        return obj, None
    if isinstance(obj, Scenario):
        return None, obj
    if hasattr(obj, "data") and isinstance(obj.data, xr.Dataset):
        return obj.data, getattr(obj, "scenario", None)
    raise TypeError(f"expected an xarray.Dataset, a trafficsim Result or a Scenario, got {type(obj).__name__}")


def _axes(ax: "Axes | None") -> "Axes":
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    return ax


def _label(name: str, ds: xr.Dataset | None = None) -> str:
    if name in _LABELS:
        text, unit = _LABELS[name]
    elif ds is not None and name in ds:
        text, unit = ds[name].attrs.get("long_name", name), ds[name].attrs.get("units", "")
    else:
        text, unit = name, ""
    return f"{text} [{unit}]" if unit else text


def _link_ids(ds: xr.Dataset) -> list[str]:
    return [str(x) for x in ds["link"].values]


def _check_links(ds: xr.Dataset, links: Sequence[str]) -> list[str]:
    if isinstance(links, str):
        links = [links]
    known = set(_link_ids(ds))
    for lid in links:
        if lid not in known:
            raise ValueError(f"link {lid!r} is not in the result; links: {', '.join(sorted(known))}")
    if not links:
        raise ValueError("links is empty; give at least one link id")
    return list(links)


def _check_path(ds: xr.Dataset, links: list[str]) -> list[str]:
    """``links`` as a path: each link starts where the one before it ends (from the result's
    ``from_node``/``to_node``), else a :class:`ValueError` naming the pair; a diagram stacked
    over links that do not connect draws one distance axis through a gap."""
    if "from_node" in ds.coords and "to_node" in ds.coords:
        to = dict(zip(ds["link"].values.tolist(), ds["to_node"].values.tolist()))
        frm = dict(zip(ds["link"].values.tolist(), ds["from_node"].values.tolist()))
        for a, b in zip(links[:-1], links[1:]):
            if to[a] != frm[b]:
                nxt = [lid for lid, n in frm.items() if n == to[a]]
                raise ValueError(f"links {a!r} and {b!r} do not connect: {a!r} ends at node {to[a]!r}, {b!r} starts "
                                 f"at {frm[b]!r} (links from {to[a]!r}: {', '.join(nxt) or 'none'}); a path is a "
                                 "chain of links in travel order")
    return links


def _corridor(scenario: Any) -> list[str]:
    """The scenario's ``meta["corridor"]``, a link a measure cut in parts (``meta["split_links"]``,
    a meter's stop line) or any of its parts (``"<link>-merge"``) standing for the whole road, so
    the path has no gap."""
    return scenario.link_parts([scenario.road_of(lid) for lid in scenario.meta["corridor"]])


def default_path(ds: xr.Dataset, scenario: Any = None) -> list[str]:
    """The links a time-space diagram follows when none are given.

    In order of preference: the scenario's ``meta["corridor"]`` (a road a measure cut in parts,
    named by any part, followed end to end), a ``corridor`` attribute of
    the dataset (link ids separated by spaces), the longest route of the demand (by length
    [m]), and finally every link in the dataset's order.
    """
    if scenario is not None and scenario.meta.get("corridor"):
        return _corridor(scenario)
    if ds.attrs.get("corridor"):
        return str(ds.attrs["corridor"]).split()
    if "route_path" in ds.coords and ds.sizes.get("route", 0):
        length = dict(zip(_link_ids(ds), ds["length_m"].values))
        paths = [str(p).split() for p in ds["route_path"].values]
        return max(paths, key=lambda p: sum(length.get(lid, 0.0) for lid in p))
    return _link_ids(ds)


def _jam_density(ds: xr.Dataset, scenario: Any, links: Sequence[str]) -> np.ndarray | None:
    """Jam density per lane [veh/km/lane] of ``links``, or None when nothing says it."""
    if "jam_density_vpkm_per_lane" in ds.coords:
        return ds["jam_density_vpkm_per_lane"].sel(link=list(links)).values.astype(float)
    if scenario is not None:
        return np.array([scenario.network.links[lid].jam_density_vpkm_per_lane for lid in links], dtype=float)
    return None


def _time_edges_min(ds: xr.Dataset) -> np.ndarray:
    """Record interval edges [min] (``time`` labels interval ends)."""
    t = ds["time"].values.astype(float)
    step = float(ds.attrs.get("record_interval_s", t[0] if t.size else 60.0))
    return np.concatenate([[max(t[0] - step, 0.0)], t]) / 60.0


def _equilibrium_speed(k_vpkm: np.ndarray, lanes: np.ndarray, vf: np.ndarray, qc: np.ndarray, kj: np.ndarray) -> np.ndarray:
    """Speed [km/h] of the triangular FD at density ``k`` (all lanes): min(v_f, w (k_j/k - 1))."""
    kc = qc / vf
    w = qc / (kj - kc)
    with np.errstate(divide="ignore", invalid="ignore"):
        cong = w * (kj * lanes / k_vpkm - 1.0)
    v = np.where(k_vpkm > 1e-9, np.minimum(vf, cong), vf)
    return np.clip(np.nan_to_num(v, nan=0.0), 0.0, None)


def _space_time_field(ds: xr.Dataset, scenario: Any, links: list[str], variable: str):
    """(distance edges [km], field (space x time), link boundaries [km]) along ``links``."""
    length = dict(zip(_link_ids(ds), ds["length_m"].values.astype(float)))
    bounds = np.concatenate([[0.0], np.cumsum([length[lid] for lid in links])]) / 1000.0
    kj = _jam_density(ds, scenario, links)
    cells = "cell_density" in ds and (variable == "density" or kj is not None)
    if not cells:
        if variable not in ds:
            raise ValueError(f"variable {variable!r} is not in the result; use 'speed' or 'density'")
        field = ds[variable].sel(link=links).values.T.astype(float)
        return bounds, field, bounds
    cell_link = np.array([str(x) for x in ds["cell_link"].values])
    cell_x = ds["cell_x"].values.astype(float)
    edges, rows = [0.0], []
    for i, lid in enumerate(links):
        idx = np.flatnonzero(cell_link == lid)
        n = idx.size
        dx = length[lid] / n
        k = ds["cell_density"].values[:, idx].T.astype(float)  # cell x time [veh/km]
        if variable == "speed":
            lk = ds.sel(link=lid)
            lanes = lk["lanes"].values.astype(float)[None, :]
            vf, qc = float(lk["free_speed_kmh"]), float(lk["capacity_vph_per_lane"])
            k = _equilibrium_speed(k, lanes, vf, qc, kj[i])
        order = np.argsort(cell_x[idx])
        rows.append(k[order])
        edges.extend(bounds[i] + (np.arange(1, n + 1) * dx) / 1000.0)
    return np.array(edges), np.vstack(rows), bounds


def _colour_scale(variable: str, ds: xr.Dataset, links: Sequence[str]) -> tuple[str, float, float | None]:
    """Colour map and limits: speed red (stopped) to green (free-flow speed); others 0 to data max."""
    if variable == "speed":
        return "RdYlGn", 0.0, float(ds["free_speed_kmh"].sel(link=list(links)).max())
    return "viridis_r", 0.0, None


# ----------------------------------------------------------------------------- plots
def time_space(
    ds,
    links: Sequence[str] | None = None,
    variable: str = "speed",
    ax: "Axes | None" = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
) -> "Axes":
    """Time-space diagram of speed or density along a path of links.

    Time runs left to right, distance along the path bottom (upstream) to top (downstream),
    so a queue behind a bottleneck shows as a low-speed band growing downwards in time and its
    tail as the backward wave. With cell data (``simulate(..., record_cells=True)``) each CTM
    cell is one row; speed per cell then follows from its density through the link's
    triangular fundamental diagram. Otherwise each link is one row.

    Parameters
    ----------
    ds : xarray.Dataset or Result
        A result dataset, or the Result (which also supplies the scenario's corridor).
    links : sequence of str, optional
        Link ids in travel order. Default: see :func:`default_path`.
    variable : {"speed", "density"}
        Speed [km/h] (red slow, green free) or density over all lanes [veh/km].
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    vmin, vmax : float, optional
        Colour scale limits in the variable's unit (speed: 0 to the highest free-flow speed
        [km/h]; density: data range [veh/km]).
    colorbar : bool
        Add a colour bar labelled with the variable and unit.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the diagram is its first ``QuadMesh`` in ``ax.collections``.
    """
    if variable not in ("speed", "density"):
        raise ValueError(f"variable must be 'speed' or 'density', got {variable!r}")
    ds, scenario = _split(ds)
    links = _check_path(ds, _check_links(ds, default_path(ds, scenario) if links is None else links))
    ax = _axes(ax)
    dist, field, bounds = _space_time_field(ds, scenario, links, variable)
    cmap, lo, hi = _colour_scale(variable, ds, links)
    mesh = ax.pcolormesh(
        _time_edges_min(ds), dist, field, cmap=cmap, shading="flat",
        vmin=lo if vmin is None else vmin, vmax=hi if vmax is None else vmax,
    )
    for b in bounds[1:-1]:
        ax.axhline(b, color="0.3", lw=0.5, ls=":")
    ax.set_xlabel("time [min]")
    ax.set_ylabel("distance along path [km]")
    ax.set_title(f"{_label(variable).split(' [')[0]} along {links[0]} \u2192 {links[-1]}")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=_label(variable))
    return ax


def cumulative_curves(ds, link: str, ax: "Axes | None" = None, *, virtual_arrivals: bool = True) -> "Axes":
    """Cumulative vehicle counts (N-curves) at the upstream and downstream end of a link.

    The vertical distance between the arrival and departure curves is the number of vehicles
    on the link [veh]; with ``virtual_arrivals`` the arrival curve is also drawn shifted by the
    free-flow travel time, so the gap between it and the departures is the vehicles *delayed*
    and the area between them the delay [veh h] (Newell 1993; Daganzo 1997, ch. 2).

    Parameters
    ----------
    ds : xarray.Dataset or Result
        A result dataset.
    link : str
        Link id, typically the bottleneck.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    virtual_arrivals : bool
        Also draw the arrival curve shifted by the free-flow time ``L / v_f`` [s] (dashed).

    Returns
    -------
    matplotlib.axes.Axes
        The axes, with 2 lines (3 with ``virtual_arrivals``) and a legend.
    """
    ds, _ = _split(ds)
    (link,) = _check_links(ds, [link])
    ax = _axes(ax)
    lk = ds.sel(link=link)
    t = np.concatenate([[0.0], ds["time"].values.astype(float)]) / 60.0
    n_in = np.concatenate([[0.0], lk["cum_in"].values.astype(float)])
    n_out = np.concatenate([[0.0], lk["cum_out"].values.astype(float)])
    ax.plot(t, n_in, color="C0", label="arrivals (upstream end)")
    if virtual_arrivals:
        tff = float(lk["length_m"]) / (float(lk["free_speed_kmh"]) / 3.6) / 60.0
        ax.plot(t + tff, n_in, color="C0", ls="--", label=f"arrivals + free-flow time ({tff:.1f} min)")
    ax.plot(t, n_out, color="C3", label="departures (downstream end)")
    ax.set_xlabel("time [min]")
    ax.set_ylabel("cumulative vehicles [veh]")
    ax.set_title(f"cumulative curves, link {link}")
    ax.set_xlim(t[0], t[-1])
    ax.legend(loc="upper left")
    return ax


def fundamental_diagram(ds, links: Sequence[str] | None = None, ax: "Axes | None" = None, *, per_lane: bool = True) -> "Axes":
    """Flow-density scatter of the links' record intervals, with their triangular FD.

    Each point is one link and record interval (Edie's flow and density). The line is the
    triangular fundamental diagram from the link parameters: free-flow branch ``q = v_f k`` up
    to capacity ``q_c`` at ``k_c = q_c / v_f``, congested branch down to jam density ``k_j``.
    When the jam density is not known (a bare dataset without a
    ``jam_density_vpkm_per_lane`` coordinate) only the free-flow branch and capacity are drawn.

    Parameters
    ----------
    ds : xarray.Dataset or Result
        A result dataset, or the Result (which also supplies jam densities).
    links : sequence of str, optional
        Link ids; default all links.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    per_lane : bool
        Divide flow and density by the lanes in force, so links of different width share one
        diagram [veh/h/lane, veh/km/lane]; otherwise whole-link values [veh/h, veh/km] (then
        the FD line is drawn for the links' initial lane count).

    Returns
    -------
    matplotlib.axes.Axes
        The axes: one scatter collection per link and one line per distinct FD.
    """
    ds, scenario = _split(ds)
    links = _check_links(ds, _link_ids(ds) if links is None else links)
    ax = _axes(ax)
    kj = _jam_density(ds, scenario, links)
    drawn = set()
    for i, lid in enumerate(links):
        lk = ds.sel(link=lid)
        lanes = lk["lanes"].values.astype(float)
        q, k = lk["flow"].values.astype(float), lk["density"].values.astype(float)
        ok = lanes > 0
        div = lanes[ok] if per_lane else 1.0
        ax.scatter(k[ok] / div, q[ok] / div, s=10, alpha=0.6, label=lid)
        vf, qc = float(lk["free_speed_kmh"]), float(lk["capacity_vph_per_lane"])
        scale = 1.0 if per_lane else float(lanes[0] if lanes[0] > 0 else lanes.max())
        jam = None if kj is None else float(kj[i])
        key = (vf, qc, jam, scale)
        if key in drawn:
            continue
        drawn.add(key)
        kc = qc / vf
        if jam is None:
            ax.plot([0, kc * scale], [0, qc * scale], color="k", lw=1)
            ax.axhline(qc * scale, color="k", lw=0.8, ls=":")
        else:
            ax.plot([0, kc * scale, jam * scale], [0, qc * scale, 0], color="k", lw=1)
    unit = "/lane" if per_lane else ""
    ax.set_xlabel(f"density [veh/km{unit}]")
    ax.set_ylabel(f"flow [veh/h{unit}]")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title("fundamental diagram")
    if len(links) <= 10:
        ax.legend(title="link", fontsize="small")
    return ax


def _peak_index(ds: xr.Dataset) -> int:
    return int(np.argmax(ds["queue"].sum("link").values)) if ds.sizes["time"] else 0


#: :func:`network_map` writes the link ids on networks of at most this many links by default.
MAP_LABEL_MAX_LINKS = 20


def network_map(
    obj,
    time: float | None = None,
    variable: str = "speed",
    ax: "Axes | None" = None,
    *,
    scenario=None,
    colorbar: bool = True,
    labels: bool | None = None,
) -> "Axes":
    """The network drawn from its node coordinates, links coloured by a variable at one time.

    Each link is a segment from its upstream to its downstream node, offset a little to its
    right so that the two directions of a street show side by side; line width grows with the
    lanes in force.

    Parameters
    ----------
    obj : Result, Scenario or xarray.Dataset
        A Result (dataset and scenario), a Scenario (the network alone, coloured by lanes), or
        a dataset together with ``scenario=``.
    time : float, optional
        Simulation time [s]; the record interval that contains it is drawn. Default: the
        interval with the most vehicles queued in the network.
    variable : str
        A ``time x link`` variable of the result, e.g. ``"speed"`` [km/h] (red slow, green
        free), ``"density"`` [veh/km] or ``"queue"`` [veh].
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    scenario : Scenario, optional
        Supplies node coordinates when ``obj`` is a dataset.
    colorbar : bool
        Add a colour bar labelled with the variable and unit.
    labels : bool, optional
        Write each link's id at its middle; default for networks of at most
        :data:`MAP_LABEL_MAX_LINKS` links (beyond that the ids cover the map).

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the links are its first ``LineCollection``.

    Raises
    ------
    ValueError
        If a node has no coordinates (give ``x=``, ``y=`` [m] to ``Network.add_node``).
    """
    from matplotlib.collections import LineCollection

    ds, sc = _split(obj)
    sc = scenario if scenario is not None else sc
    if sc is None:
        raise ValueError("network_map needs node coordinates: pass the Result, or the dataset with scenario=")
    net = sc.network
    missing = [n.id for n in net.nodes.values() if n.x is None or n.y is None]
    if missing:
        raise ValueError(
            f"nodes {missing[:5]}{' ...' if len(missing) > 5 else ''} have no coordinates; "
            "give x=, y= [m] to Network.add_node (or in the TOML [[nodes]] table) to draw a map"
        )
    link_ids = list(net.links) if ds is None else [lid for lid in _link_ids(ds) if lid in net.links]
    xy = np.array([[net.nodes[n].x, net.nodes[n].y] for n in net.nodes], dtype=float) / 1000.0
    span = float(np.ptp(xy, axis=0).max()) if len(xy) > 1 else 1.0
    offset = 0.012 * (span or 1.0)
    segments = []
    for lid in link_ids:
        lk = net.links[lid]
        a = np.array([net.nodes[lk.from_node].x, net.nodes[lk.from_node].y], dtype=float) / 1000.0
        b = np.array([net.nodes[lk.to_node].x, net.nodes[lk.to_node].y], dtype=float) / 1000.0
        d = b - a
        norm = float(np.hypot(*d)) or 1.0
        right = np.array([d[1], -d[0]]) / norm * offset
        segments.append([a + right, b + right])
    ax = _axes(ax)
    if ds is None:
        values = np.array([net.links[lid].lanes for lid in link_ids], dtype=float)
        lanes, label, cmap, lo, hi, when = values, "lanes", "Blues", 0.0, values.max(), ""
    else:
        if variable not in ds or ds[variable].dims != ("time", "link"):
            raise ValueError(f"variable {variable!r} is not a time x link variable of the result")
        i = _peak_index(ds) if time is None else int(np.searchsorted(ds["time"].values, float(time)).clip(0, ds.sizes["time"] - 1))
        snap = ds.isel(time=i).sel(link=link_ids)
        values = snap[variable].values.astype(float)
        lanes = snap["lanes"].values.astype(float)
        label = _label(variable, ds)
        cmap, lo, hi = _colour_scale(variable, ds, link_ids)
        hi = hi if hi is not None else float(np.nanmax(values)) if values.size else 1.0
        when = f" at {float(ds['time'].values[i]) / 60.0:.0f} min"
    lc = LineCollection(segments, cmap=cmap, linewidths=1.0 + 1.2 * np.clip(lanes, 0.3, None), capstyle="round")
    lc.set_array(values)
    lc.set_clim(lo, hi)
    ax.add_collection(lc)
    ax.scatter(xy[:, 0], xy[:, 1], s=8, color="k", zorder=3)
    if labels or (labels is None and len(link_ids) <= MAP_LABEL_MAX_LINKS):
        # each id beside its link, on the link's right (where the link is drawn), so that the
        # ids of a street's two directions and of links meeting at a node stand apart
        for lid, (a, b) in zip(link_ids, segments):
            side = (b - a)[::-1] * np.array([1.0, -1.0])
            side = side / (float(np.hypot(*side)) or 1.0)
            ax.annotate(lid, (a + b) / 2.0 + side * 2.0 * offset, fontsize="x-small", color="0.15",
                        ha="left" if side[0] > 0.3 else "right" if side[0] < -0.3 else "center",
                        va="bottom" if side[1] > 0.3 else "top" if side[1] < -0.3 else "center",
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    ax.set_aspect("equal", adjustable="datalim")
    ax.autoscale_view()
    ax.set_xlabel("x [km]")
    ax.set_ylabel("y [km]")
    ax.set_title(f"{label.split(' [')[0]}{when}")
    if colorbar:
        ax.figure.colorbar(lc, ax=ax, label=label, shrink=0.8)
    return ax


def animate_network(result, variable: str = "speed", ax: "Axes | None" = None, *, scenario=None, interval_ms: int = 200, step: int = 1):
    """The network map over the run, one frame per record interval.

    Parameters
    ----------
    result : Result or xarray.Dataset
        The run (a dataset needs ``scenario=`` for node coordinates).
    variable : str
        A ``time x link`` variable, e.g. ``"speed"`` [km/h].
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    scenario : Scenario, optional
        Supplies node coordinates when ``result`` is a dataset.
    interval_ms : int
        Delay between frames when played [ms].
    step : int
        Draw every ``step``-th record interval.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        Save it with ``anim.save("run.gif", writer="pillow")`` (or ``"run.mp4"`` with ffmpeg
        installed); in a notebook, ``IPython.display.HTML(anim.to_jshtml())`` plays it.
    """
    from matplotlib.animation import FuncAnimation

    ds, sc = _split(result)
    if ds is None:
        raise ValueError("animate_network needs a result (a Scenario has no time to animate)")
    times = ds["time"].values[:: max(int(step), 1)]
    ax = network_map(result, time=float(times[0]), variable=variable, ax=ax, scenario=scenario)
    lc = ax.collections[0]
    links = [lid for lid in _link_ids(ds) if lid in (scenario or sc).network.links]
    values = ds[variable].sel(link=links).values.astype(float)
    index = {float(t): i for i, t in enumerate(ds["time"].values)}
    name = ax.get_title().rsplit(" at ", 1)[0]

    def draw(t):
        lc.set_array(values[index[float(t)]])
        ax.set_title(f"{name} at {float(t) / 60.0:.0f} min")
        return (lc,)

    return FuncAnimation(ax.figure, draw, frames=list(times), interval=interval_ms, blit=False)


def kpi_bars(kpis, columns: Sequence[str] | None = None, ax: "Axes | None" = None, *, baseline: str | None = None, relative: bool = True) -> "Axes":
    """Before/after bars: KPIs of each variant, grouped by KPI.

    Parameters
    ----------
    kpis : pandas.DataFrame
        One row per variant (index: variant names, e.g. ``Comparison.kpis``), KPI columns.
    columns : sequence of str, optional
        KPIs to draw; default those of ``DEFAULT_KPI_COLUMNS`` present (delay [veh h], travel
        time index [1], longest queue [m], unserved vehicles [veh]).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    baseline : str, optional
        Row the others are compared with; default the row named ``"baseline"`` if present,
        else the first row.
    relative : bool
        Bars show each value as a percentage of the baseline's [%] (KPIs of different units
        share one axis); each bar is labelled with its absolute value. A KPI whose baseline is 0
        shows each value as a percentage of the largest one instead (its tick says so), so a
        variant that makes it worse from nothing still has a bar. With False, raw values (best
        for a single KPI). Where the table has ``<kpi>_ci95`` columns (a comparison over several
        seeds) each bar carries its 95 % confidence half-width as an error bar.

    Returns
    -------
    matplotlib.axes.Axes
        The axes, with one bar patch per variant and KPI.
    """
    import pandas as pd

    if not isinstance(kpis, pd.DataFrame):
        raise TypeError(f"kpis must be a pandas DataFrame (one row per variant), got {type(kpis).__name__}")
    if columns is None:
        columns = [c for c in DEFAULT_KPI_COLUMNS if c in kpis.columns]
    missing = [c for c in columns if c not in kpis.columns]
    if missing or not columns:
        raise ValueError(f"KPI columns {missing or list(columns)} not in the table; columns: {', '.join(map(str, kpis.columns))}")
    table = kpis[list(columns)].apply(pd.to_numeric, errors="coerce").astype(float)
    base = baseline if baseline is not None else ("baseline" if "baseline" in table.index else table.index[0])
    if base not in table.index:
        raise ValueError(f"baseline {base!r} is not a row; rows: {', '.join(map(str, table.index))}")
    ax = _axes(ax)
    n = len(table.index)
    width = 0.8 / n
    x = np.arange(len(columns))
    ref = table.loc[base].values
    largest = table.abs().max(axis=0).values
    # a KPI whose baseline is 0 (no queue, no delay) has no percentage of it: its bars are each
    # variant's share of the largest value (the baseline's is 0), so a variant that makes things
    # worse from nothing still shows, and its tick says so. ``unit``: the value drawn as 100 %;
    # ``flat``: every variant 0, all bars at 100 %, equal to the baseline
    zero_base = (ref == 0) & (largest > 0) if relative else np.zeros(len(columns), bool)
    flat = (ref == 0) & ~zero_base
    unit = np.where(zero_base, largest, ref)
    for j, variant in enumerate(table.index):
        raw = table.loc[variant].values
        # the 95 % confidence half-width over the seeds, where the comparison has one (micro,
        # SUMO): a difference within it is noise, not an effect of the measure
        ci = np.array([float(kpis.loc[variant, f"{c}_ci95"]) if f"{c}_ci95" in kpis.columns else np.nan
                       for c in columns])
        if relative:
            with np.errstate(divide="ignore", invalid="ignore"):
                height = np.where(flat, 100.0, raw / unit * 100.0)
                ci = np.where(flat, 0.0, ci / np.abs(unit) * 100.0)
        else:
            height = raw
        yerr = np.where(np.isfinite(ci) & (ci > 0), ci, 0.0) if np.isfinite(ci).any() else None
        bars = ax.bar(x + (j - (n - 1) / 2) * width, height, width, label=str(variant), yerr=yerr,
                      error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.25"})
        # vertical labels once bars get narrow, so that neighbours' labels do not overlap
        ax.bar_label(bars, labels=[_value_label(v) for v in raw], fontsize="x-small", padding=2,
                     rotation=90 if n >= 4 else 0)
    ax.set_xticks(x, [_kpi_label(c).replace(" [", "\n[", 1) + ("\n(baseline 0: % of largest)" if z else "")
                      for c, z in zip(columns, zero_base)])
    if relative:
        ax.axhline(100.0, color="0.3", lw=0.8, ls="--")
        ax.set_ylabel(f"relative to {base} [%]")
    else:
        ax.set_ylabel(_kpi_label(columns[0]) if len(columns) == 1 else "value")
    ax.set_title("KPIs by variant")
    ax.margins(y=0.15)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return ax


def _value_label(v: float) -> str:
    """A short bar label: rounding noise shows as 0, large values with thousands separators."""
    if not np.isfinite(v):
        return "-"
    if abs(v) < 1e-6:
        return "0"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


#: Units of the KPIs a comparison adds to a result's (``trafficsim.evaluation.KPI_COLUMNS``).
_COMPARISON_UNITS = {"throughput_vph": "veh/h", "spillback_m": "m", "spillback_links": "links"}


def _kpi_label(name: str) -> str:
    """``name [unit]``; a comparison's ``<kpi>_delta`` has the KPI's unit, ``<kpi>_pct`` %."""
    from .results import KPI_DESCRIPTIONS

    base = name
    for suffix in ("_delta_ci95", "_ci95", "_delta"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            break
    unit = "%" if name.endswith("_pct") else KPI_DESCRIPTIONS.get(base, ("", ""))[0] or _COMPARISON_UNITS.get(base, "")
    return f"{name} [{unit}]" if unit else name


def compare_time_space(datasets_by_variant, links: Sequence[str] | None = None, axes=None, *, variable: str = "speed"):
    """Time-space diagrams of several variants side by side, on one colour scale.

    Parameters
    ----------
    datasets_by_variant : mapping of str to Dataset or Result, or xarray.Dataset
        Variant name to result; or one dataset with a ``variant`` dimension
        (``Comparison.data``).
    links : sequence of str, optional
        Link ids in travel order; default: see :func:`default_path` (of the first variant).
    axes : sequence of matplotlib.axes.Axes, optional
        One axes per variant; a new figure with a row of panels sharing the distance axis when
        None.
    variable : {"speed", "density"}
        What to colour by [km/h or veh/km].

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        One axes per variant, titled with the variant's name.
    """
    if isinstance(datasets_by_variant, xr.Dataset):
        if "variant" not in datasets_by_variant.dims:
            raise ValueError("a dataset given to compare_time_space needs a 'variant' dimension")
        datasets_by_variant = {
            str(v): datasets_by_variant.sel(variant=v) for v in datasets_by_variant["variant"].values
        }
    if not isinstance(datasets_by_variant, Mapping) or not datasets_by_variant:
        raise ValueError("datasets_by_variant must be a non-empty mapping of variant name to result")
    names = list(datasets_by_variant)
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 1.5, 4.5), sharey=True, squeeze=False, layout="constrained")
        axes = axes[0]
    axes = np.atleast_1d(np.asarray(axes, dtype=object))
    if axes.size != len(names):
        raise ValueError(f"got {axes.size} axes for {len(names)} variants")
    first_ds, first_sc = _split(datasets_by_variant[names[0]])
    if links is None:
        links = default_path(first_ds, first_sc)
    hi = None
    if variable == "density":
        hi = max(float(np.nanmax(_split(r)[0][variable].sel(link=list(links)).values)) for r in datasets_by_variant.values())
    for ax, name in zip(axes, names):
        time_space(datasets_by_variant[name], links, variable, ax=ax, vmax=hi, colorbar=False)
        ax.set_title(str(name))
    for ax in axes[1:]:
        ax.set_ylabel("")
    mesh = axes[0].collections[0]
    axes[0].figure.colorbar(mesh, ax=list(axes), label=_label(variable))
    return axes


def _lengths(source) -> dict[str, float]:
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {str(k): float(v) for k, v in source.items()}
    sc = getattr(source, "scenario", source)
    return {lid: lk.length_m for lid, lk in sc.network.links.items()}


def _trajectory_links(traj_ds: xr.Dataset) -> np.ndarray:
    """The link id of each (time, vehicle) sample, "" where the vehicle is not in the network."""
    if "link_index" in traj_ds and "link_ids" in traj_ds.coords:
        ids = np.array([str(x) for x in traj_ds["link_ids"].values] + [""], dtype=object)
        idx = traj_ds["link_index"].transpose("time", "vehicle").values.astype(int)
        return ids[np.where(idx >= 0, idx, len(ids) - 1)].astype(str)
    if "link" in traj_ds:
        on = traj_ds["link"].transpose("time", "vehicle").values.astype(str)
        return np.where(np.isin(on, ["nan", "None"]), "", on)
    raise ValueError("a trajectory dataset needs 'link_index' with a 'link_ids' coordinate, or 'link' (see trafficsim.plot.trajectories)")


def trajectories(
    traj_ds,
    ax: "Axes | None" = None,
    *,
    links: Sequence[str] | None = None,
    lengths_m=None,
    max_vehicles: int | None = 500,
    colorbar: bool = True,
) -> "Axes":
    """Vehicle trajectories (position over time) from a micro trajectory dataset.

    The layout is the micro engine's (``simulate(sc, engine="micro",
    trajectories={"every_s": 1.0})`` puts it in ``result.final_state["trajectories"]``), an
    ``xarray.Dataset`` over ``("time", "vehicle")``:

    - ``time`` coordinate [s];
    - ``link_index`` (int, -1 when absent) into the ``link_ids`` coordinate, or ``link`` (str,
      ``""`` when absent);
    - ``x`` (or ``position``) [m]: front position from that link's upstream end;
    - optional ``speed``, in the unit of its ``units`` attribute (``km/h``, or ``m/s``): colours
      the lines.

    Positions are drawn as distance along ``links``, stacked end to end with the link lengths;
    samples on other links are left out.

    Parameters
    ----------
    traj_ds : xarray.Dataset or Result
        Trajectories in the layout above, or a micro Result that holds them (which also gives
        link lengths and, from the scenario's ``meta["corridor"]``, the default path).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    links : sequence of str, optional
        Path of link ids in travel order. Default: the scenario's corridor, or the only link
        the vehicles use.
    lengths_m : mapping of str to float, or Scenario or Result, optional
        Link lengths [m], needed when the path has more than one link.
    max_vehicles : int or None
        Draw at most this many vehicles (every n-th), to keep long runs readable.
    colorbar : bool
        Add a speed colour bar [km/h] when speed is present.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the trajectories are its first ``LineCollection`` (one segment per vehicle
        and sample interval).
    """
    from matplotlib.collections import LineCollection

    if not isinstance(traj_ds, xr.Dataset):
        result = traj_ds
        traj_ds = getattr(result, "final_state", {}).get("trajectories")
        if traj_ds is None:
            raise ValueError("the result holds no trajectories; run the micro engine with trajectories={'every_s': 1.0}")
        lengths_m = result if lengths_m is None else lengths_m
        scenario = getattr(result, "scenario", None)
        corridor = getattr(scenario, "meta", {}).get("corridor")
        links = _corridor(scenario) if links is None and corridor else links
    if "vehicle" not in traj_ds.dims or "time" not in traj_ds.dims:
        raise ValueError("a trajectory dataset needs dims ('time', 'vehicle'); see trafficsim.plot.trajectories")
    t = traj_ds["time"].values.astype(float) / 60.0
    on = _trajectory_links(traj_ds)
    if links is None:
        present = sorted(set(on.ravel()) - {""})
        if len(present) != 1:
            raise ValueError(f"trajectories on several links {present[:5]}: give links= in travel order")
        links = present
    lengths = _lengths(lengths_m)
    offset, start = {}, 0.0
    for lid in links:
        offset[lid] = start
        if lid not in lengths and lid != links[-1]:
            raise ValueError(f"link {lid!r}: its length is needed to stack the path; pass lengths_m= (a mapping or the Scenario)")
        start += float(lengths.get(lid, 0.0))
    name = "x" if "x" in traj_ds else "position"
    if name not in traj_ds:
        raise ValueError("a trajectory dataset needs an 'x' (or 'position') variable [m]")
    raw = traj_ds[name].transpose("time", "vehicle").values.astype(float)
    base = np.vectorize(lambda s: offset.get(s, np.nan), otypes=[float])(on) if on.size else np.zeros_like(raw)
    pos = raw + base
    speed = None
    if "speed" in traj_ds:
        factor = 1.0 if traj_ds["speed"].attrs.get("units", "m/s") == "km/h" else 3.6
        speed = traj_ds["speed"].transpose("time", "vehicle").values.astype(float) * factor
    n_veh = pos.shape[1]
    keep = np.arange(n_veh)
    if max_vehicles is not None and n_veh > max_vehicles:
        keep = keep[:: int(np.ceil(n_veh / max_vehicles))]
    p = pos[:, keep] / 1000.0
    # a segment joins two consecutive samples of one vehicle that are both on the path and
    # moving forward (a jump back means the vehicle left the path and came round again)
    ok = np.isfinite(p[:-1]) & np.isfinite(p[1:]) & (p[1:] >= p[:-1] - 1e-9)
    i, v = np.nonzero(ok)  # sample index, kept-vehicle index
    segments = np.stack([np.column_stack([t[i], p[i, v]]), np.column_stack([t[i + 1], p[i + 1, v]])], axis=1)
    colours = speed[i, keep[v]] if speed is not None else None
    ax = _axes(ax)
    lc = LineCollection(segments, linewidths=0.8, colors="C0" if speed is None else None, cmap="RdYlGn" if speed is not None else None)
    if speed is not None:
        lc.set_array(np.asarray(colours))
        lc.set_clim(0.0, float(np.nanmax(speed)) if np.isfinite(speed).any() else 1.0)
    ax.add_collection(lc)
    ax.autoscale_view()
    ax.set_xlabel("time [min]")
    ax.set_ylabel("distance along path [km]")
    created = int(traj_ds.attrs.get("vehicles_created", n_veh))
    ax.set_title(f"trajectories ({keep.size} of {n_veh} vehicles)" if created <= n_veh else
                 f"trajectories ({keep.size} of the first {n_veh} of {created:,} vehicles: "
                 "raise trajectories max_vehicles for more)")
    if speed is not None and colorbar:
        ax.figure.colorbar(lc, ax=ax, label="speed [km/h]")
    return ax
