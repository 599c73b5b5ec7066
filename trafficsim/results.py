"""Results: one ``xarray.Dataset`` schema for every engine, and the KPIs computed from it.

Per link and record interval (dims ``time`` x ``link``), the dataset holds Edie's generalised
definitions over the link and the interval (Edie 1963)::

    flow    = VKT / (L T)         [veh/h]
    density = VHT / (L T)         [veh/km]
    speed   = VKT / VHT           [km/h]   (free-flow speed when the link was empty)

Engines count a step's vehicle-time with the vehicles present at the start of the step, the same
vehicles whose moves make the step's VKT, so the speed never exceeds the free-flow speed.

plus the queue (vehicles in congested state, time-mean), the queue length (congested length
from the link's downstream end at the interval's end) and its longest during the interval (the
back of queue, HCM: at a signal it peaks once a cycle, mostly between two records), cumulative
counts in and out, inflow and outflow rates at the link ends, and the lanes in force. ``time`` labels the *end* of each interval [s]; snapshots
(cumulative counts, lanes) are taken at that instant.
Per route: cumulative vehicles demanded, departed (entered the network) and arrived. Per origin:
the origin queue (demand that could not enter yet). Units and descriptions live in each
variable's CF ``units`` / ``long_name`` attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .scenario import Scenario

__all__ = [
    "Result", "build_dataset", "compute_kpis", "queue_chains", "bottleneck_series", "conservation_error", "KPI_DESCRIPTIONS",
]

#: KPI name -> (unit, description); the rows of ``Result.kpis``.
KPI_DESCRIPTIONS = {
    "vkt": ("veh km", "vehicle-kilometres travelled in the network"),
    "vht": ("veh h", "vehicle-hours spent in the network"),
    "vht_free_flow": ("veh h", "vehicle-hours the same kilometres take at free-flow speed"),
    "origin_wait_vh": ("veh h", "vehicle-hours waited in origin queues before entering"),
    "delay_vh": ("veh h", "vht + origin_wait_vh - vht_free_flow"),
    "travel_time_index": ("1", "(vht + origin_wait_vh) / vht_free_flow: the congestion index (1 without traffic)"),
    "mean_speed_kmh": ("km/h", "vkt / vht (NaN without traffic)"),
    "demand": ("veh", "vehicles demanded during the run"),
    "entered": ("veh", "vehicles that entered the network"),
    "completed": ("veh", "vehicles that reached their destination"),
    "inside": ("veh", "vehicles still in the network at the end"),
    "unserved": ("veh", "vehicles still waiting in origin queues at the end"),
    "max_queue_m": ("m", "longest queue (spilling back over links) at any record time, within the network (vehicles that cannot enter wait in origin queues: origin_wait_vh, unserved)"),
    "max_queue_veh": ("veh", "largest number of vehicles queued in the network at any record time"),
    "bottleneck": ("", "link where the longest queue's head stood most often"),
    "bottleneck_discharge_vph": ("veh/h", "mean outflow of that link while it was the active bottleneck"),
}

#: A queue must be at least this long [m] to place an active bottleneck.
MIN_QUEUE_FOR_BOTTLENECK_M = 50.0


def _attrs(units: str, long_name: str) -> dict:
    return {"units": units, "long_name": long_name}


def build_dataset(
    scenario: Scenario,
    *,
    engine: str,
    dt_s: float,
    record_interval_s: float,
    n_steps: int,
    link_ids: Sequence[str],
    route_labels: Sequence[str],
    route_links: Sequence[Sequence[str]],
    origins: Sequence[str],
    vkt_m: np.ndarray,
    vht_s: np.ndarray,
    cum_in: np.ndarray,
    cum_out: np.ndarray,
    queue_veh: np.ndarray,
    queue_m: np.ndarray,
    lanes: np.ndarray,
    route_in: np.ndarray,
    route_out: np.ndarray,
    route_gen: np.ndarray,
    origin_queue: np.ndarray,
    wait_s: np.ndarray,
    extra_attrs: dict | None = None,
    queue_m_max: np.ndarray | None = None,
) -> xr.Dataset:
    """Assemble the common result schema from per-interval engine arrays (SI units in).

    Every engine calls this so that every KPI means the same on every engine. ``queue_m_max``
    (the longest queue length during each interval [m]) defaults to ``queue_m`` for an engine
    that does not track it (a lower bound of the back of queue).
    """
    net = scenario.network
    T = vkt_m.shape[0]
    ends = np.minimum((np.arange(T) + 1) * record_interval_s, n_steps * dt_s)
    starts = np.arange(T) * record_interval_s
    span = (ends - starts)[:, None]
    links = [net.links[lid] for lid in link_ids]
    length = np.array([lk.length_m for lk in links])
    vf = np.array([lk.free_speed_kmh for lk in links])
    with np.errstate(invalid="ignore", divide="ignore"):
        flow = vkt_m / (length[None, :] * span) * 3600.0
        density = vht_s / (length[None, :] * span) * 1000.0
        speed = np.where(vht_s > 0, vkt_m / np.where(vht_s > 0, vht_s, 1.0) * 3.6, vf[None, :])
    prev_in = np.vstack([np.zeros((1, cum_in.shape[1])), cum_in[:-1]])
    prev_out = np.vstack([np.zeros((1, cum_out.shape[1])), cum_out[:-1]])
    # several origins may share a node: report per origin node
    origin_nodes = list(dict.fromkeys(origins))
    oq = np.zeros((T, len(origin_nodes)))
    for s, o in enumerate(origins):
        oq[:, origin_nodes.index(o)] += origin_queue[:, s]
    flows = scenario.demand.flows
    qmax_name = "longest congested length from the link's downstream end during the interval (back of queue)"
    if queue_m_max is None:
        queue_m_max = queue_m
        qmax_name = "congested length from the link's downstream end at interval end (engine does not track the interval's longest)"
    route_flow = [int(lbl.split(":", 1)[0]) for lbl in route_labels]
    ds = xr.Dataset(
        {
            "flow": (("time", "link"), flow, _attrs("veh/h", "space-mean flow over the link (Edie)")),
            "density": (("time", "link"), density, _attrs("veh/km", "space-mean density over the link, all lanes (Edie)")),
            "speed": (("time", "link"), speed, _attrs("km/h", "space-mean speed VKT/VHT (free-flow speed when empty)")),
            "queue": (("time", "link"), queue_veh, _attrs("veh", "time-mean vehicles in congested state on the link")),
            "queue_length": (("time", "link"), queue_m, _attrs("m", "congested length from the link's downstream end at interval end")),
            "queue_length_max": (("time", "link"), queue_m_max, _attrs("m", qmax_name)),
            "inflow": (("time", "link"), (cum_in - prev_in) / span * 3600.0, _attrs("veh/h", "rate of vehicles entering the link")),
            "outflow": (("time", "link"), (cum_out - prev_out) / span * 3600.0, _attrs("veh/h", "rate of vehicles leaving the link at its downstream end")),
            "cum_in": (("time", "link"), cum_in, _attrs("veh", "cumulative vehicles that entered the link")),
            "cum_out": (("time", "link"), cum_out, _attrs("veh", "cumulative vehicles that left the link")),
            "vkt": (("time", "link"), vkt_m / 1000.0, _attrs("veh km", "vehicle-kilometres travelled in the interval")),
            "vht": (("time", "link"), vht_s / 3600.0, _attrs("veh h", "vehicle-hours spent in the interval")),
            "lanes": (("time", "link"), lanes, _attrs("1", "lanes in force at interval end")),
            "route_demand": (("time", "route"), route_gen, _attrs("veh", "cumulative vehicles demanded on the route")),
            "route_departed": (("time", "route"), route_in, _attrs("veh", "cumulative vehicles of the route that entered the network")),
            "route_arrived": (("time", "route"), route_out, _attrs("veh", "cumulative vehicles of the route that reached the destination")),
            "origin_queue": (("time", "origin"), oq, _attrs("veh", "vehicles waiting to enter at the origin at interval end")),
            "origin_wait": (("time",), wait_s / 3600.0, _attrs("veh h", "vehicle-hours waited in origin queues in the interval")),
        },
        coords={
            "time": ("time", ends, _attrs("s", "end of the record interval since simulation start")),
            "link": ("link", np.array(link_ids, dtype=str)),
            "route": ("route", np.array(route_labels, dtype=str)),
            "origin": ("origin", np.array(origin_nodes, dtype=str)),
            "from_node": ("link", np.array([lk.from_node for lk in links], dtype=str)),
            "to_node": ("link", np.array([lk.to_node for lk in links], dtype=str)),
            "length_m": ("link", length, _attrs("m", "link length")),
            "free_speed_kmh": ("link", vf, _attrs("km/h", "free-flow speed")),
            "capacity_vph_per_lane": ("link", np.array([lk.capacity_vph_per_lane for lk in links]), _attrs("veh/h/lane", "lane capacity")),
            "jam_density_vpkm_per_lane": ("link", np.array([lk.jam_density_vpkm_per_lane for lk in links]), _attrs("veh/km/lane", "jam density")),
            "route_origin": ("route", np.array([flows[f].origin for f in route_flow], dtype=str)),
            "route_destination": ("route", np.array([flows[f].destination for f in route_flow], dtype=str)),
            "route_path": ("route", np.array([" ".join(p) for p in route_links], dtype=str)),
        },
        attrs={
            "engine": engine,
            "scenario": scenario.name,
            "dt_s": float(dt_s),
            "record_interval_s": float(record_interval_s),
            "duration_s": float(scenario.duration_s),
            "Conventions": "CF-1.8",
            **(extra_attrs or {}),
        },
    )
    return ds


def queue_chains(ds: xr.Dataset, at: int) -> tuple[dict[str, float], dict[str, float]]:
    """Queue lengths that spill back over links in record interval ``at``.

    Returns ``(chain, head)``: ``chain[l]`` is the queue length [m] ending at link ``l``'s
    downstream end, including the upstream links it has spilled onto (longest branch);
    ``head`` holds the links where a queue's head stands (its downstream link is not itself
    queued over its whole length), with their chain length.

    Lengths are read at the interval's end (``queue_length``), all links at one instant, so a
    chain is a queue that stood. The interval's longest (``queue_length_max``, the back of
    queue) serves one purpose: spill-back between two records. A link is *filled* when it is
    full at the interval's end, or was full during the interval and still holds a queue at its
    end (at a signal, the back of the critical approach's queue reaches the link upstream only
    while the start-up wave travels up it, part of each cycle); the links upstream of a filled
    link are not heads (their discharge was blocked: the head stood further on), and a filled
    link's queue is at least its length. A queue that filled a link and was gone by the
    interval's end is a transient (booth departures merging, gap acceptance at a U-turn), not a
    spill-back. The maxima are not added into chains (each link's happens at its own instant:
    adding them would chain queues that never touched) nor used as a head's length (an
    undersaturated signal's cyclic back of queue is not an active bottleneck).
    """
    links = [str(x) for x in ds["link"].values]
    qlen = dict(zip(links, ds["queue_length"].values[at]))
    qmax_var = ds["queue_length_max"] if "queue_length_max" in ds else ds["queue_length"]
    qmax = dict(zip(links, np.maximum(qmax_var.values[at], ds["queue_length"].values[at])))
    length = dict(zip(links, ds["length_m"].values))
    frm = dict(zip(links, (str(x) for x in ds["from_node"].values)))
    to = dict(zip(links, (str(x) for x in ds["to_node"].values)))
    into: dict[str, list[str]] = {}
    outof: dict[str, list[str]] = {}
    for lid in links:
        into.setdefault(to[lid], []).append(lid)
        outof.setdefault(frm[lid], []).append(lid)
    full = {lid: qlen[lid] >= 0.999 * length[lid] for lid in links}
    chain: dict[str, float] = {}

    def walk(lid: str, seen: frozenset) -> float:
        if lid in chain:
            return chain[lid]
        total = qlen[lid]
        if full[lid]:
            ups = [walk(u, seen | {lid}) for u in into.get(frm[lid], []) if u not in seen and frm[u] != to[lid]]
            total += max(ups, default=0.0)
        chain[lid] = total
        return total

    for lid in links:
        walk(lid, frozenset())
    filled = {lid: full[lid] or (qmax[lid] >= 0.999 * length[lid] and qlen[lid] > 0) for lid in links}
    for lid in links:
        if filled[lid]:
            chain[lid] = max(chain[lid], length[lid])
    head = {
        lid: chain[lid]
        for lid in links
        if qlen[lid] > 0 and not any(filled[d] for d in outof.get(to[lid], []) if to[d] != frm[lid])
    }
    return chain, head


def conservation_error(ds: xr.Dataset, inside_final: float | None = None) -> float:
    """|demanded - (arrived + in network + waiting)| at the end of the run [veh].

    ``inside_final`` defaults to ``entered - arrived`` summed over routes, in which case the
    check is demanded = departed + waiting.
    """
    last = ds.isel(time=-1)
    demanded = float(last["route_demand"].sum())
    departed = float(last["route_departed"].sum())
    arrived = float(last["route_arrived"].sum())
    waiting = float(last["origin_queue"].sum())
    inside = departed - arrived if inside_final is None else inside_final
    return abs(demanded - (arrived + inside + waiting))


def compute_kpis(ds: xr.Dataset) -> pd.Series:
    """The KPIs of :data:`KPI_DESCRIPTIONS` from a result dataset (any engine)."""
    vkt = float(ds["vkt"].sum())
    vht = float(ds["vht"].sum())
    vht_ff = float((ds["vkt"].sum("time") / ds["free_speed_kmh"]).sum())
    wait = float(ds["origin_wait"].sum())
    delay = vht + wait - vht_ff
    last = ds.isel(time=-1)
    entered = float(last["route_departed"].sum())
    completed = float(last["route_arrived"].sum())
    T = ds.sizes["time"]
    longest, heads = 0.0, []
    for t in range(T):
        chain, head = queue_chains(ds, t)
        longest = max(longest, max(chain.values(), default=0.0))
        if head:
            lid, length = max(head.items(), key=lambda kv: kv[1])
            heads.append(lid if length >= MIN_QUEUE_FOR_BOTTLENECK_M else "")
        else:
            heads.append("")
    active = [h for h in heads if h]
    bottleneck = max(set(active), key=active.count) if active else ""
    discharge = float("nan")
    if bottleneck:
        mask = np.array([h == bottleneck for h in heads])
        discharge = float(ds["outflow"].sel(link=bottleneck).values[mask].mean())
    kpis = {
        "vkt": vkt,
        "vht": vht,
        "vht_free_flow": vht_ff,
        "origin_wait_vh": wait,
        # VKT <= v_f VHT holds step by step, so a delay within rounding of 0 is 0
        "delay_vh": delay if delay > 1e-9 * max(vht, 1.0) else 0.0,
        # no traffic at all is no congestion (1); vehicles that only waited have no free-flow time
        "travel_time_index": (vht + wait) / vht_ff if vht_ff > 0 else (1.0 if vht + wait == 0 else float("inf")),
        "mean_speed_kmh": vkt / vht if vht > 0 else float("nan"),
        "demand": float(last["route_demand"].sum()),
        "entered": entered,
        "completed": completed,
        "inside": entered - completed,
        "unserved": float(last["origin_queue"].sum()),
        "max_queue_m": longest,
        "max_queue_veh": float(ds["queue"].sum("link").max()),
        "bottleneck": bottleneck,
        "bottleneck_discharge_vph": discharge,
    }
    return pd.Series(kpis, dtype=object, name=ds.attrs.get("scenario", "") or "run")


def bottleneck_series(ds: xr.Dataset) -> xr.DataArray:
    """The link where the longest queue's head stands at each record time ("" when none)."""
    out = []
    for t in range(ds.sizes["time"]):
        _, head = queue_chains(ds, t)
        lid, length = max(head.items(), key=lambda kv: kv[1]) if head else ("", 0.0)
        out.append(lid if length >= MIN_QUEUE_FOR_BOTTLENECK_M else "")
    return xr.DataArray(np.array(out, dtype=str), coords={"time": ds["time"]}, dims="time", name="bottleneck")


class Result:
    """The outcome of one run.

    Attributes
    ----------
    data : xarray.Dataset
        The common schema (see module docstring).
    scenario : Scenario
        What was simulated.
    engine : str
        Which engine ran it.
    final_state : dict
        Engine-specific end state (e.g. cell contents), for checks and warm starts.
    """

    def __init__(self, data: xr.Dataset, *, scenario: Scenario, engine: str, final_state: dict | None = None):
        self.data = data
        self.scenario = scenario
        self.engine = engine
        self.final_state = final_state or {}
        self._kpis: pd.Series | None = None

    @property
    def kpis(self) -> pd.Series:
        """KPIs (see :data:`KPI_DESCRIPTIONS`), computed once."""
        if self._kpis is None:
            self._kpis = compute_kpis(self.data)
        return self._kpis

    @property
    def bottleneck(self) -> xr.DataArray:
        """Active bottleneck link per record time (see :func:`bottleneck_series`)."""
        return bottleneck_series(self.data)

    def conservation_error(self) -> float:
        """Vehicles created or lost over the run [veh] (should be ~1e-9): the demand against the
        vehicles arrived, waiting to enter and in the network at the end, the last counted by the
        engine itself where it reports them (macro: the cells; micro: its vehicle counter, when
        the run started empty), so that the check does not reduce to the routes' own
        bookkeeping."""
        fs = self.final_state or {}
        if "cells" in fs:
            inside = float(fs["cells"].sum())
        elif "inside" in fs and not fs.get("initial", 0):
            inside = float(fs["inside"])
        else:
            inside = None
        return conservation_error(self.data, inside)

    def to_netcdf(self, path: str | Path) -> Path:
        """Write ``data`` to a netCDF file."""
        path = Path(path)
        self.data.to_netcdf(path)
        return path

    def __repr__(self) -> str:
        k = self.kpis
        return (
            f"<Result {self.engine} {self.scenario.name or 'scenario'}: "
            f"{self.data.sizes['time']} x {self.data.sizes['link']} links, "
            f"completed={k['completed']:.0f} veh, delay={k['delay_vh']:.1f} veh h, TTI={k['travel_time_index']:.2f}>"
        )
