"""The ``sumo`` engine: export a Scenario, run Eclipse SUMO through libsumo or TraCI, return the
common Result schema.

The run exports the scenario (:func:`trafficsim.sumo_io.export_scenario`), starts SUMO in
process (libsumo) or as a child process (TraCI), and steps it to the horizon. Time-varying
controls are applied at run time, only when they change:

* lane schedules and :class:`~trafficsim.control.Blocking` events close lanes with
  ``lane.setDisallowed(lane, ["all"])`` and reopen them with the disallow list the lane had
  (disallow lists, because ``setAllowed(lane, [])`` means *all* vehicles). A schedule that drops
  lanes closes the leftmost (median) lanes; a blocking event closes the kerbside ones;
* a :class:`~trafficsim.measures.TidalLane` is a lane schedule on two opposite links: the
  reversible strip is the median lane of each of the two edges (*coincident lanes*), of which
  the schedule opens at most one at a time, with the clearance interval in which both are
  closed. Every switch is logged with the vehicles on the lane and on its coincident lane, the
  permissions are read back from SUMO at every record instant, and ``laneData`` counts the
  vehicles entering each switched lane: ``final_state["switched_lanes"]``;
* a :class:`~trafficsim.measures.VariableLane` is pre-built connections: its pocket link is not
  a SUMO edge but the median lane(s) of its link that netconvert connects to the turn (routes
  via the pocket use the link's edge); while the lanes are dedicated, the junction-internal
  lanes of their other movements are closed (``setDisallowed``), so only the turn can use
  them, and ``laneData`` on those internal lanes counts who still passed;
* :class:`~trafficsim.control.FixedRateMeter` s and :class:`~trafficsim.control.AlineaMeter` s
  switch the metered link's connections at a ``traffic_light`` junction: a green of
  :data:`~trafficsim.sumo_io.METER_GREEN_S` per lane every ``3600 * lanes / rate`` seconds (one
  vehicle per lane per green, as field meters do). ALINEA's rate comes from the shared law
  (:class:`~trafficsim.engines._feedback.AlineaLaw`) fed with the vehicles in lane-area
  detectors over the detector zone and on the ramp edge, read by subscription at every sample;
  its log is ``final_state["controllers"]``;
* fixed-time signals run as the ``tlLogic`` programs written at export.

Measurements never ask SUMO about single vehicles: per-link VKT (``speed * sampledSeconds``),
VHT (``sampledSeconds``), counts in (``entered + departed``) and out (``left + arrived``) and the
time-mean queued vehicles (``waitingTime / period`` with the halting threshold set to
:data:`QUEUE_SPEED_FRACTION` of the link's free speed) come from SUMO's ``edgeData``
aggregates; the queue length at each record instant is the longest jam over the link's lanes
from lane-area detectors (same threshold) read through subscriptions; per route, the departed
and arrived id lists of each step are counted by the id prefix of their flow; the origin queue
is SUMO's insertion backlog (``simulation.getPendingVehicles``).

Node and link ids cross to SUMO through the export's :class:`~trafficsim.sumo_ids.SumoIds`
(``exp.ids``): TraCI calls name edges and traffic lights by their SUMO ids, and what comes back
(edgeData, laneData, road ids, lane ids in ``final_state``, SUMO's messages) is mapped to
trafficsim's ids.

A SUMO that fails raises :class:`~trafficsim.engines.SimulationError` quoting SUMO's error
log; one that runs longer than ``timeout_s`` of wall time is stopped (the TraCI child process is
killed by a watchdog; libsumo is checked between steps). SUMO is always closed and its child
process reaped; no partial Result is returned.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..control import AlineaMeter, Blocking, BusStop, FixedRateMeter, FixedTimeSignal
from ..results import Result, build_dataset
from ..scenario import Scenario
from ..sumo_io import PROGRAM_ID, SumoError, export_scenario, sumo_binary, variable_lane_dedicated
from ._common import SimulationError, build_routes, positive_seconds, progress_bar, steps_for
from ._feedback import AlineaLaw, ramp_storage_veh, release_cycle

__all__ = ["run_sumo", "DEFAULT_DT_S"]

#: Default SUMO step [s]: Krauss needs tau >= step; 0.5 s resolves signal and meter timing.
DEFAULT_DT_S = 0.5
#: A vehicle counts as queued below this share of its link's free speed.
QUEUE_SPEED_FRACTION = 0.5
_JAM_LENGTH_METERS = 0x19  # lane-area detector variable (traci.constants.JAM_LENGTH_METERS)
_VEHICLE_NUMBER = 0x10  # traci.constants.LAST_STEP_VEHICLE_NUMBER (lane-area detectors, edges)
#: SUMO classes of trafficsim's vehicles: a lane is open when it allows any of them.
_OUR_CLASSES = ("passenger", "bus", "truck")
_run_lock = threading.Lock()  # libsumo holds one simulation per process
#: The wall clock of ``timeout_s`` (a module attribute, so a test can run it faster than time).
_clock = time.monotonic


class _Session:
    """One running SUMO: libsumo in process or a TraCI child process; always cleaned up."""

    def __init__(self, backend: str, cmd: list[str], timeout_s: float, log: Path, ids=None):
        self.backend = backend
        self.ids = ids  # SumoIds: SUMO's messages name elements by their trafficsim ids
        self.cmd = cmd
        self.timeout_s = timeout_s
        self.log = log
        self.api = None
        self.proc: subprocess.Popen | None = None
        self.label = f"trafficsim-{id(self)}"
        self.killed = False
        self._watchdog: threading.Timer | None = None
        self.t0 = _clock()

    def start(self):
        if self.backend == "libsumo":
            import libsumo

            if libsumo.simulation.isLoaded():
                raise SimulationError("engine 'sumo': libsumo already runs a simulation in this process")
            libsumo.start(self.cmd)
            self.api = libsumo
            return
        import traci

        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        with open(self.log.with_suffix(".stdout"), "w") as out:
            self.proc = subprocess.Popen(self.cmd + ["--remote-port", str(port)], stdout=out, stderr=subprocess.STDOUT)
        self._watchdog = threading.Timer(self.timeout_s, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        traci.init(port, numRetries=60, label=self.label, proc=self.proc, doSwitch=False)
        self.api = traci.getConnection(self.label)

    def _kill(self):
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def check_time(self):
        if _clock() - self.t0 > self.timeout_s:
            self.killed = True
            raise SimulationError(f"engine 'sumo': SUMO did not finish within timeout_s={self.timeout_s:g} s of wall time")

    def close(self):
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.backend == "libsumo":
            import libsumo

            try:
                if libsumo.simulation.isLoaded():
                    libsumo.close()
            except Exception:  # noqa: BLE001 - closing after a SUMO error must not mask it
                pass
            return
        try:
            if self.api is not None:
                self.api.close(wait=False)
        except Exception:  # noqa: BLE001
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def failure(self, engine: str, during: str, exc: Exception, timeout_s: float) -> SimulationError:
        """The error to raise when SUMO failed ``during`` a phase: a timeout if the watchdog
        stopped it, else SUMO's own message with the last lines of its log."""
        if self.killed:
            return SimulationError(
                f"engine {engine!r}: SUMO did not finish {during} within timeout_s={timeout_s:g} s of wall "
                f"time and was stopped"
            )
        text = f"engine {engine!r}: SUMO failed {during}: {exc}\n{self.error_text()}"
        return SimulationError(self.ids.restore(text) if self.ids is not None else text)

    def error_text(self) -> str:
        parts = []
        for p in (self.log, self.log.with_suffix(".stdout")):
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        text = "\n".join(t.strip() for t in parts if t.strip())
        errs = [ln for ln in text.splitlines() if "Error" in ln]
        return "\n".join(errs[-5:] or text.splitlines()[-5:])


def _closed_lanes(scenario: Scenario, t_s: float, lanes_of: dict[str, list[str]],
                  groups: dict[str, dict] | None = None) -> set[str]:
    """SUMO lanes closed at ``t_s`` [s]: schedule drops close inner lanes, blocking kerbside ones.

    With variable-lane ``groups`` (:attr:`~trafficsim.sumo_io.SumoExport.lane_groups`) a link's
    dedicated lanes stay open while it gives them up, and the junction-internal lanes of their
    other movements are closed instead (a pocket link is no SUMO edge: it is skipped).
    """
    closed: set[str] = set()
    net = scenario.network
    for lid, lk in net.links.items():
        ids = lanes_of.get(lid)
        if ids is None:
            continue
        n_open = lk.lanes_at(t_s)
        if groups and lid in groups and variable_lane_dedicated(net, lid, t_s, groups):
            n_open = min(lk.max_lanes, n_open + groups[lid]["lanes"])
            closed.update(groups[lid]["via_close"])
        closed.update(ids[n_open:])  # SUMO lane 0 is the rightmost (kerbside) lane
    for c in scenario.controls:
        if isinstance(c, Blocking) and c.start_s <= t_s < c.end_s:
            closed.update(lanes_of.get(c.link, [])[: c.lanes])
    return closed


def _switched_lanes(scenario: Scenario, lanes_of: dict[str, list[str]], groups: dict | None = None) -> set[str]:
    """SUMO lanes (and junction-internal lanes) that some lane schedule, variable lane or blocking
    event closes at some time of the run."""
    times = {0.0}
    for lk in scenario.network.links.values():
        times.update(t for t, _ in lk.lane_schedule)
    times.update(c.start_s for c in scenario.controls if isinstance(c, Blocking))
    out: set[str] = set()
    for t in times:
        if t < scenario.duration_s:
            out |= _closed_lanes(scenario, t, lanes_of, groups)
    return out


def _coincident_lanes(scenario: Scenario, lanes_of: dict[str, list[str]], switched: set[str]) -> dict[str, str]:
    """Reversible lanes: each scheduled median lane of a link and the one of its opposite link.

    A tidal lane is one strip of road that serves either direction; in SUMO it is the leftmost
    scheduled lane(s) of each of the two opposite edges, paired from the median outwards, of
    which at most one is open at a time. Returns ``{lane: coincident lane}`` both ways.
    """
    net = scenario.network
    pairs: dict[str, str] = {}
    for a in net.links.values():
        for b in net.links.values():
            if a.id >= b.id or b.from_node != a.to_node or b.to_node != a.from_node:
                continue
            if not a.lane_schedule or not b.lane_schedule:
                continue
            la = [ln for ln in reversed(lanes_of.get(a.id, [])) if ln in switched]
            lb = [ln for ln in reversed(lanes_of.get(b.id, [])) if ln in switched]
            for x, y in zip(la, lb):
                pairs[x], pairs[y] = y, x
    return pairs


def _switch_lanes(api, want: set[str], closed: set[str], disallowed0: dict[str, list[str]]) -> None:
    """Close the lanes of ``want - closed`` and reopen those of ``closed - want``.

    Closing disallows every class (``setDisallowed(lane, ["all"])``); reopening restores the
    lane's own disallow list (usually empty, i.e. everything allowed). Disallow lists never hit
    the trap of ``setAllowed(lane, [])``, which means *all* vehicles.
    """
    for ln in want - closed:
        api.lane.setDisallowed(ln, ["all"])
    for ln in closed - want:
        api.lane.setDisallowed(ln, disallowed0[ln])


def _is_open(api, lane: str) -> bool:
    """Whether SUMO lets trafficsim's vehicles onto ``lane`` (read back from SUMO)."""
    allowed = set(api.lane.getAllowed(lane))
    return bool(allowed & set(_OUR_CLASSES))


def _meter_plan(scenario: Scenario, exp, t_s: float, alinea: dict | None = None) -> dict[str, str]:
    """Traffic-light states at metered junctions at ``t_s`` [s] (mainline ``G``, ramp per cycle).

    Fixed-rate meters follow their profile; ALINEA meters the ``(rate_vph, since_s)`` that
    ``alinea`` gives for their link (the release cycle restarts when the rate changes).
    """
    states: dict[str, str] = {}
    net = scenario.network
    for c in scenario.controls:
        if isinstance(c, FixedRateMeter):
            rate = c.rate_at(t_s)
            start = max((s for s, _ in c.profile if s <= t_s), default=0.0)
        elif isinstance(c, AlineaMeter) and alinea is not None:
            rate, start = alinea[c.link]
        else:
            continue
        node = net.links[c.link].to_node
        links = exp.tls_links[node]
        rc = release_cycle(rate, max(1, net.links[c.link].lanes_at(t_s)))
        release = rc is None or ((t_s - start) % rc[0]) < rc[1]
        prev = states.get(node, "G" * len(links))
        states[node] = "".join(
            ("G" if release else "r") if a == c.link else prev[i] for i, (a, _) in enumerate(links)
        )
    return states


def _read_edge_data(paths: list[Path], link_ids: list[str], T: int, record_interval_s: float, ids=None):
    """Per-interval arrays from SUMO's edgeData output (edges named by ``ids``, a
    :class:`~trafficsim.sumo_ids.SumoIds`, when given; else by the link ids)."""
    L = len(link_ids)
    if ids is None:
        idx = {lid: i for i, lid in enumerate(link_ids)}
    else:
        idx = {ids.edge(lid): i for i, lid in enumerate(link_ids) if ids.is_edge(lid)}
    vkt = np.zeros((T, L))
    vht = np.zeros((T, L))
    d_in = np.zeros((T, L))
    d_out = np.zeros((T, L))
    wait = np.zeros((T, L))
    span = np.zeros(T)
    intervals = [iv for p in paths for iv in ET.parse(str(p)).getroot().iter("interval")]
    for interval in intervals:
        b, e = float(interval.get("begin")), float(interval.get("end"))
        t = int(round(b / record_interval_s))
        if t >= T or e <= b:
            continue
        span[t] = e - b
        for ed in interval.iter("edge"):
            i = idx.get(ed.get("id"))
            if i is None:
                continue
            ss = float(ed.get("sampledSeconds", 0.0))
            vht[t, i] = ss
            vkt[t, i] = ss * float(ed.get("speed", 0.0))
            d_in[t, i] = float(ed.get("entered", 0)) + float(ed.get("departed", 0))
            d_out[t, i] = float(ed.get("left", 0)) + float(ed.get("arrived", 0))
            wait[t, i] = float(ed.get("waitingTime", 0.0))
    return vkt, vht, np.cumsum(d_in, axis=0), np.cumsum(d_out, axis=0), wait, span


def _read_lane_data(path: Path | None, lanes: list[str], T: int, record_interval_s: float, ids=None):
    """Vehicles entering and leaving each of ``lanes`` per record interval, from ``laneData``
    (``lanes`` written with trafficsim's ids when ``ids``, a :class:`~trafficsim.sumo_ids.SumoIds`,
    is given: see :meth:`~trafficsim.sumo_ids.SumoIds.lane`; else SUMO lane ids)."""
    entered = np.zeros((T, len(lanes)))
    left = np.zeros((T, len(lanes)))
    if path is None or not lanes or not Path(path).exists():
        return entered, left
    idx = {ln: i for i, ln in enumerate(lanes)}
    for interval in ET.parse(str(path)).getroot().iter("interval"):
        t = int(round(float(interval.get("begin")) / record_interval_s))
        if t >= T:
            continue
        for el in interval.iter("lane"):
            i = idx.get(el.get("id") if ids is None else ids.lane(el.get("id")))
            if i is not None:
                entered[t, i] = float(el.get("entered", 0)) + float(el.get("departed", 0))
                left[t, i] = float(el.get("left", 0)) + float(el.get("arrived", 0))
    return entered, left


def run_sumo(
    scenario: Scenario,
    *,
    dt_s: float | None = None,
    record_interval_s: float = 60.0,
    progress: bool = False,
    seed: int | None = 0,
    backend: str = "auto",
    arrivals: str = "uniform",
    sigma: float = 0.0,
    reference_link: str | None = None,
    time_to_teleport_s: float = -1.0,
    timeout_s: float = 600.0,
    keep_files: str | Path | None = None,
) -> Result:
    """Run ``scenario`` in Eclipse SUMO; see :func:`trafficsim.simulate` for the common options.

    Parameters
    ----------
    dt_s : float, optional
        SUMO step length [s]; default :data:`DEFAULT_DT_S`.
    seed : int or None
        SUMO's random seed (matters with ``arrivals="poisson"`` or ``sigma > 0``).
    backend : {"auto", "libsumo", "traci"}
        ``auto`` takes libsumo (in process) when importable, else TraCI.
    arrivals : {"uniform", "poisson"}
        Insertion headways (see :func:`trafficsim.sumo_io.export_scenario`).
    sigma : float
        Krauss driver imperfection; 0 keeps the matched capacity.
    reference_link : str, optional
        Link on which the vehicle type matches capacity and jam density.
    time_to_teleport_s : float
        SUMO's ``--time-to-teleport`` [s]; ``-1`` (default) never teleports, so blocked
        vehicles wait as they do in the other engines.
    timeout_s : float
        Wall-clock limit [s] for the whole run.
    keep_files : path, optional
        Directory to keep the exported SUMO files and outputs in (a temporary one otherwise).
    """
    if backend == "auto":
        try:
            import libsumo  # noqa: F401

            backend = "libsumo"
        except ImportError:
            backend = "traci"
    if backend not in ("libsumo", "traci"):
        raise SimulationError(f"engine 'sumo': backend must be 'auto', 'libsumo' or 'traci', got {backend!r}")
    scenario.validate()
    controls = [c.validate(scenario.network) for c in scenario.controls]
    scenario = scenario.replace(controls=controls)
    net = scenario.network
    check_meters(scenario, "sumo")
    dt = DEFAULT_DT_S if dt_s is None else positive_seconds("dt_s", dt_s)
    n_steps, spr = steps_for(scenario, dt, record_interval_s)
    T = int(math.ceil(n_steps / spr))
    routes = build_routes(scenario)
    link_ids = list(net.links)
    src_key: dict[tuple[str, str], int] = {}
    route_src = []
    for r, path in enumerate(routes.links):
        key = (scenario.demand.flows[routes.flow[r]].origin, path[0])
        route_src.append(src_key.setdefault(key, len(src_key)))
    route_src = np.array(route_src, dtype=np.int64)
    S = len(src_key)

    work = Path(keep_files) if keep_files is not None else Path(tempfile.mkdtemp(prefix="trafficsim-sumo-"))
    work.mkdir(parents=True, exist_ok=True)
    edge_data = work / "edgedata"
    try:
        try:
            exp = export_scenario(
                scenario, work, routes=routes, arrivals=arrivals, sigma=sigma, reference_link=reference_link,
                edge_data_file=edge_data, record_interval_s=record_interval_s,
                queue_speed_fraction=QUEUE_SPEED_FRACTION,
                lane_data_edges=sorted({lid for lid, lk in net.links.items() if lk.lane_schedule}
                                       | {c.link for c in controls if isinstance(c, Blocking)}),
            )
        except SumoError as exc:
            raise SimulationError(f"engine 'sumo': export failed: {exc}") from None
        for c in controls:
            if isinstance(c, FixedTimeSignal):
                green = {mv for p in c.phases for mv in p.movements}
                for path in routes.links:
                    for a, b in zip(path[:-1], path[1:]):
                        if net.links[a].to_node == c.node and (a, b) not in green:
                            raise SimulationError(
                                f"signal at node {c.node!r}: movement {a!r} -> {b!r} is used by demand but has "
                                f"green in no phase; add it to a phase"
                            )
        log = work / "sumo.log"
        cmd = [
            sumo_binary("sumo"), "-n", str(exp.net_file), "-r", str(exp.route_file), "-a", str(exp.additional_file),
            "--step-length", f"{dt:g}", "--begin", "0", "--seed", str(0 if seed is None else int(seed)),
            "--time-to-teleport", f"{time_to_teleport_s:g}", "--no-step-log", "true", "--duration-log.disable", "true",
            "--error-log", str(log), "--no-warnings", "true", "--collision.action", "warn",
            "--max-depart-delay", "-1", "--precision", "4", "--xml-validation", "never",
        ]
        result = _simulate(
            scenario, exp, cmd, backend, timeout_s, log, dt, n_steps, spr, T, routes, route_src, S, link_ids,
            progress,
        )
        vkt, vht, cum_in, cum_out, wait_edge, span = _read_edge_data(exp.edge_data_files, link_ids, T, record_interval_s,
                                                                     exp.ids)
        # a bus parking in a bay leaves its edge for edgeData ("left") and re-enters it ("entered")
        park_in, park_out = result[-1].pop("parking_counts")
        cum_in -= np.cumsum(park_in, axis=0)
        cum_out -= np.cumsum(park_out, axis=0)
        sw = result[-1]["switched_lanes"]
        sw["entered"], sw["left"] = _read_lane_data(exp.lane_data_file, sw["lanes"], T, record_interval_s, exp.ids)
    finally:
        if keep_files is None:
            shutil.rmtree(work, ignore_errors=True)
    jam_end, lanes_end, route_in, route_out, route_gen, src_queue, wait_s, final = result
    length = np.array([net.links[lid].length_m for lid in link_ids])
    queue_m = np.minimum(length[None, :], jam_end)
    with np.errstate(invalid="ignore", divide="ignore"):
        queue_veh = np.where(span[:, None] > 0, wait_edge / np.where(span[:, None] > 0, span[:, None], 1.0), 0.0)
    ds = build_dataset(
        scenario, engine="sumo", dt_s=dt, record_interval_s=record_interval_s, n_steps=n_steps,
        link_ids=link_ids, route_labels=routes.label, route_links=routes.links,
        origins=[o for (o, _) in src_key], vkt_m=vkt, vht_s=vht, cum_in=cum_in, cum_out=cum_out,
        queue_veh=queue_veh, queue_m=queue_m, lanes=lanes_end, route_in=route_in, route_out=route_out,
        route_gen=route_gen, origin_queue=src_queue, wait_s=wait_s,
        extra_attrs={
            "sumo_backend": backend, "sumo_reference_link": exp.reference_link,
            "sumo_tau_s": exp.vtypes["car"]["tau"], "sumo_car_length_m": exp.vtypes["car"]["length"],
            "sumo_sigma": float(sigma), "sumo_arrivals": arrivals, "sumo_teleports": int(final["teleports"]),
        },
    )
    return Result(ds, scenario=scenario, engine="sumo", final_state=final)


def _alinea_occupancy(api, exp, meter: AlineaMeter, net, t: float) -> float:
    """Occupancy [%] of an ALINEA detector zone: vehicles in its lane-area detectors (read by
    subscription) per lane-km open, over the detector link's jam density (``100 k / k_j``)."""
    lk = net.links[meter.detector_link]
    n = sum(api.lanearea.getSubscriptionResults(d)[_VEHICLE_NUMBER] for d in exp.alinea_detectors[meter.link])
    zone_km = max(lk.lanes_at(t), 1) * min(meter.detector_length_m, lk.length_m) / 1000.0
    return 100.0 * n / (zone_km * lk.jam_density_vpkm_per_lane)


def check_meters(scenario: Scenario, engine: str) -> None:
    """A SUMO meter switches its link's connections at a traffic light: the link must not end at
    a signalised node, and it must lead on to another link (SUMO has no traffic light, nor any
    connection to switch, where the network ends)."""
    net = scenario.network
    signal_nodes = {c.node for c in scenario.controls if isinstance(c, FixedTimeSignal)}
    starts = {lk.from_node for lk in net.links.values()}
    for c in scenario.controls:
        if not isinstance(c, (FixedRateMeter, AlineaMeter)):
            continue
        node = net.links[c.link].to_node
        if node in signal_nodes:
            raise SimulationError(
                f"engine {engine!r}: meter on link {c.link!r} ends at signalised node {node!r}; "
                f"put the meter on a link that ends at an unsignalised node"
            )
        if node not in starts:
            raise SimulationError(
                f"engine {engine!r}: meter on link {c.link!r} ends at node {node!r}, where the network ends; SUMO "
                f"meters a link's connections to the next link: add a short link after {node!r} or meter the link "
                f"before it (the macro and micro engines meter an exit as it is)"
            )


class Controls:
    """The time-varying controls of one SUMO run, applied between steps only when they change.

    Used by the ``sumo`` engine and by the ``hybrid`` engine's SUMO region: signal programs,
    lane switching (schedules, blocking, tidal and variable lanes, :func:`_switch_lanes`, every
    switch logged), ALINEA laws fed by lane-area detectors and the ramp meters' traffic-light
    states. ``dt`` is the SUMO step [s] at which :meth:`apply` is called.
    """

    def __init__(self, scenario: Scenario, exp, dt: float):
        self.scenario = scenario
        self.exp = exp
        self.net = net = scenario.network
        self.lanes_of = exp.lanes
        self.groups = exp.lane_groups
        self.switched = sorted(_switched_lanes(scenario, self.lanes_of, self.groups))
        self.coincident = _coincident_lanes(scenario, self.lanes_of, set(self.switched))
        self.signal_nodes = [c.node for c in scenario.controls if isinstance(c, FixedTimeSignal)]
        self.meters = any(isinstance(c, (FixedRateMeter, AlineaMeter)) for c in scenario.controls)
        self.laws = {c.link: AlineaLaw(c, dt, ramp_storage_veh(net.links[c.link]))
                     for c in scenario.controls if isinstance(c, AlineaMeter)}
        self.alinea = {lid: (math.inf, 0.0) for lid in self.laws}
        self.closed: set[str] = set()
        self.meter_state: dict[str, str] = {}
        self.switch_log: list[dict] = []
        self.disallowed0: dict[str, list[str]] = {}

    def start(self, api) -> None:
        """After SUMO started: signal programs, the lanes' own disallow lists, subscriptions."""
        ids = self.exp.ids
        for node in self.signal_nodes:
            api.trafficlight.setProgram(ids.node(node), PROGRAM_ID)
        self.disallowed0 = {ln: list(api.lane.getDisallowed(ln)) for ln in self.switched}
        for lid in self.laws:
            for did in self.exp.alinea_detectors[lid]:
                api.lanearea.subscribe(did, [_VEHICLE_NUMBER])
            api.edge.subscribe(ids.edge(lid), [_VEHICLE_NUMBER])

    def apply(self, api, k: int, t: float) -> None:
        """Before SUMO step ``k`` (time ``t`` [s]): switch lanes, step ALINEA, set meter lights."""
        want = _closed_lanes(self.scenario, t, self.lanes_of, self.groups)
        if want != self.closed:
            _switch_lanes(api, want, self.closed, self.disallowed0)
            for ln in sorted(want ^ self.closed):
                ev = {"time_s": t, "lane": ln, "action": "close" if ln in want else "open",
                      "vehicles": api.lane.getLastStepVehicleNumber(ln), "open_after": _is_open(api, ln)}
                if ln in self.coincident:
                    co = self.coincident[ln]
                    ev.update(coincident=co, coincident_open=_is_open(api, co),
                              coincident_vehicles=api.lane.getLastStepVehicleNumber(co))
                self.switch_log.append(ev)
            self.closed = want
        net, exp, alinea = self.net, self.exp, self.alinea
        for lid, law in self.laws.items():
            if law.step(k, t, lambda: _alinea_occupancy(api, exp, law.meter, net, t),
                        lambda: api.edge.getSubscriptionResults(exp.ids.edge(lid))[_VEHICLE_NUMBER]):
                rate = law.rate_at(t)
                if rate != alinea[lid][0]:
                    alinea[lid] = (rate, t)
            elif law.rate_at(t) != alinea[lid][0]:  # the active window opens or closes
                alinea[lid] = (law.rate_at(t), t)
        if self.meters:
            for node, state in _meter_plan(self.scenario, exp, t, alinea).items():
                if self.meter_state.get(node) != state:
                    api.trafficlight.setRedYellowGreenState(exp.ids.node(node), state)
                    self.meter_state[node] = state

    def lanes_open(self, t_s: float, link_ids: list[str]) -> np.ndarray:
        """Open lanes of each link at ``t_s`` [s]; variable lanes count for their pocket while
        dedicated, as in macro."""
        cl = _closed_lanes(self.scenario, t_s, self.lanes_of, self.groups)
        out = np.array([sum(ln not in cl for ln in self.lanes_of.get(lid, ())) for lid in link_ids], float)
        for main, g in self.groups.items():
            if variable_lane_dedicated(self.net, main, t_s, self.groups):
                out[link_ids.index(main)] -= g["lanes"]
                out[link_ids.index(g["pocket"])] = g["lanes"]
        return out

    def read_open(self, api) -> list[bool]:
        """Whether each switched lane is open, read back from SUMO."""
        return [_is_open(api, ln) for ln in self.switched]

    def final(self, lane_open: np.ndarray) -> dict:
        """``switched_lanes`` (and ``controllers`` with ALINEA) entries of ``final_state``, lanes
        written with trafficsim's link and node ids (:meth:`~trafficsim.sumo_ids.SumoIds.lane`)."""
        lane = self.exp.ids.lane
        switches = [{k: lane(v) if k in ("lane", "coincident") else v for k, v in ev.items()}
                    for ev in self.switch_log]
        out = {"switched_lanes": {"lanes": [lane(ln) for ln in self.switched], "open": lane_open,
                                  "coincident": {lane(a): lane(b) for a, b in self.coincident.items()},
                                  "switches": switches}}
        if self.laws:
            out["controllers"] = {lid: law.log() for lid, law in self.laws.items()}
        return out


def _simulate(scenario, exp, cmd, backend, timeout_s, log, dt, n_steps, spr, T, routes, route_src, S, link_ids, progress):
    """Step SUMO to the horizon; returns the per-record arrays that do not come from edgeData."""
    R = len(routes)
    L = len(link_ids)
    jam_end = np.zeros((T, L))
    lanes_end = np.zeros((T, L))
    route_in = np.zeros((T, R))
    route_out = np.zeros((T, R))
    route_gen = np.zeros((T, R))
    src_queue = np.zeros((T, S))
    wait_s = np.zeros(T)
    dep = np.zeros(R)
    arr = np.zeros(R)
    teleports = 0
    session = _Session(backend, cmd, timeout_s, log, exp.ids)
    bar = progress_bar(progress, n_steps, "sumo", scenario)
    lanes_of = exp.lanes
    all_lanes = [ln for lid in link_ids for ln in lanes_of.get(lid, ())]
    ctl = Controls(scenario, exp, dt)
    lane_open = np.zeros((T, len(ctl.switched)), bool)
    # buses parking in bays, per record interval and link: (ending = re-entering, starting = leaving)
    bays = any(isinstance(c, BusStop) and c.bay for c in scenario.controls)
    link_col = {exp.ids.edge(lid): i for i, lid in enumerate(link_ids) if exp.ids.is_edge(lid)}  # by SUMO edge
    park_in = np.zeros((T, L))
    park_out = np.zeros((T, L))
    try:
        try:
            session.start()
        except SimulationError:
            raise
        except Exception as exc:  # noqa: BLE001 - libsumo/traci raise their own exception types
            raise session.failure("sumo", "to start", exc, timeout_s) from None
        api = session.api
        try:
            ctl.start(api)
            for ln in all_lanes:
                api.lanearea.subscribe("q_" + ln, [_JAM_LENGTH_METERS])
            for k in range(n_steps):
                t = k * dt
                ctl.apply(api, k, t)
                api.simulationStep((k + 1) * dt)
                for vid in api.simulation.getDepartedIDList():
                    dep[int(vid.split("_", 1)[0])] += 1
                for vid in api.simulation.getArrivedIDList():
                    arr[int(vid.split("_", 1)[0])] += 1
                teleports += api.simulation.getStartingTeleportNumber()
                if bays:
                    for counts, ids in ((park_out, api.simulation.getParkingStartingVehiclesIDList()),
                                        (park_in, api.simulation.getParkingEndingVehiclesIDList())):
                        for vid in ids:
                            col = link_col.get(api.vehicle.getRoadID(vid))
                            if col is not None:
                                counts[k // spr, col] += 1
                last = (k + 1) % spr == 0 or k + 1 == n_steps
                pending = api.simulation.getPendingVehicles()
                wait_s[k // spr] += len(pending) * dt
                if last:
                    i = k // spr
                    pend = np.zeros(R)
                    for vid in pending:
                        pend[int(vid.split("_", 1)[0])] += 1
                    subs = api.lanearea.getAllSubscriptionResults()
                    jam_end[i] = [
                        max((subs["q_" + ln][_JAM_LENGTH_METERS] for ln in lanes_of.get(lid, ())), default=0.0)
                        for lid in link_ids
                    ]
                    lanes_end[i] = ctl.lanes_open((k + 1) * dt, link_ids)
                    lane_open[i] = ctl.read_open(api)
                    route_in[i] = dep
                    route_out[i] = arr
                    route_gen[i] = dep + pend
                    src_queue[i] = np.bincount(route_src, weights=pend, minlength=S)
                    session.check_time()
                    if bar is not None:
                        bar.update(spr)
            inside = api.vehicle.getIDCount()
        except SimulationError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise session.failure("sumo", f"at t={k * dt:g} s", exc, timeout_s) from None
    finally:
        session.close()
        if bar is not None:
            bar.close()
    final = {"vehicles_inside": float(inside), "teleports": teleports, "pending": float(src_queue[-1].sum()),
             **ctl.final(lane_open), "parking_counts": (park_in, park_out)}
    return jam_end, lanes_end, route_in, route_out, route_gen, src_queue, wait_s, final
