"""The ``sumo`` engine: export a Scenario, run Eclipse SUMO through libsumo or TraCI, return the
common Result schema.

The run exports the scenario (:func:`trafficsim.sumo_io.export_scenario`), starts SUMO in
process (libsumo) or as a child process (TraCI), and steps it to the horizon. Time-varying
controls are applied at run time, only when they change:

* lane schedules and :class:`~trafficsim.control.Blocking` events close lanes with
  ``lane.setAllowed(lane, ["authority"])`` and reopen them with the permissions the lane had
  (note that ``setAllowed(lane, [])`` means *all* vehicles). A schedule that drops lanes closes
  the leftmost (inner) lanes, as a tidal lane does; a blocking event closes the kerbside ones;
* :class:`~trafficsim.control.FixedRateMeter` s switch the metered link's connections at a
  ``traffic_light`` junction: a green of :data:`~trafficsim.sumo_io.METER_GREEN_S` per lane
  every ``3600 * lanes / rate`` seconds (one vehicle per lane per green, as field meters do);
* fixed-time signals run as the ``tlLogic`` programs written at export.

Measurements never ask SUMO about single vehicles: per-link VKT (``speed * sampledSeconds``),
VHT (``sampledSeconds``), counts in (``entered + departed``) and out (``left + arrived``) and the
time-mean queued vehicles (``waitingTime / period`` with the halting threshold set to
:data:`QUEUE_SPEED_FRACTION` of the link's free speed) come from SUMO's ``edgeData``
aggregates; the queue length at each record instant is the longest jam over the link's lanes
from lane-area detectors (same threshold) read through subscriptions; per route, the departed
and arrived id lists of each step are counted by the id prefix of their flow; the origin queue
is SUMO's insertion backlog (``simulation.getPendingVehicles``).

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

from ..control import Blocking, FixedRateMeter, FixedTimeSignal
from ..results import Result, build_dataset
from ..scenario import Scenario
from ..sumo_io import METER_GREEN_S, PROGRAM_ID, SumoError, export_scenario, sumo_binary
from ._common import SimulationError, build_routes, progress_bar, steps_for

__all__ = ["run_sumo", "DEFAULT_DT_S"]

#: Default SUMO step [s]: Krauss needs tau >= step; 0.5 s resolves signal and meter timing.
DEFAULT_DT_S = 0.5
#: A vehicle counts as queued below this share of its link's free speed.
QUEUE_SPEED_FRACTION = 0.5
_JAM_LENGTH_METERS = 0x19  # lane-area detector variable (traci.constants.JAM_LENGTH_METERS)
_run_lock = threading.Lock()  # libsumo holds one simulation per process


class _Session:
    """One running SUMO: libsumo in process or a TraCI child process; always cleaned up."""

    def __init__(self, backend: str, cmd: list[str], timeout_s: float, log: Path):
        self.backend = backend
        self.cmd = cmd
        self.timeout_s = timeout_s
        self.log = log
        self.api = None
        self.proc: subprocess.Popen | None = None
        self.label = f"trafficsim-{id(self)}"
        self.killed = False
        self._watchdog: threading.Timer | None = None
        self.t0 = time.monotonic()

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
        if time.monotonic() - self.t0 > self.timeout_s:
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
        return SimulationError(f"engine {engine!r}: SUMO failed {during}: {exc}\n{self.error_text()}")

    def error_text(self) -> str:
        parts = []
        for p in (self.log, self.log.with_suffix(".stdout")):
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        text = "\n".join(t.strip() for t in parts if t.strip())
        errs = [ln for ln in text.splitlines() if "Error" in ln]
        return "\n".join(errs[-5:] or text.splitlines()[-5:])


def _closed_lanes(scenario: Scenario, t_s: float, lanes_of: dict[str, list[str]]) -> set[str]:
    """SUMO lanes closed at ``t_s`` [s]: schedule drops close inner lanes, blocking kerbside ones."""
    closed: set[str] = set()
    for lid, lk in scenario.network.links.items():
        ids = lanes_of[lid]
        n_open = lk.lanes_at(t_s)
        closed.update(ids[n_open:])  # SUMO lane 0 is the rightmost (kerbside) lane
    for c in scenario.controls:
        if isinstance(c, Blocking) and c.start_s <= t_s < c.end_s:
            closed.update(lanes_of[c.link][: c.lanes])
    return closed


def _meter_plan(scenario: Scenario, exp, t_s: float) -> dict[str, str]:
    """Traffic-light states at metered junctions at ``t_s`` [s] (mainline ``G``, ramp per cycle)."""
    states: dict[str, str] = {}
    net = scenario.network
    for c in scenario.controls:
        if not isinstance(c, FixedRateMeter):
            continue
        node = net.links[c.link].to_node
        links = exp.tls_links[node]
        rate = c.rate_at(t_s)
        lanes = max(1, net.links[c.link].lanes_at(t_s))
        if math.isinf(rate):
            release = True
        elif rate <= 0:
            release = False
        else:
            cycle = 3600.0 * lanes / rate
            start = max((s for s, _ in c.profile if s <= t_s), default=0.0)
            green = max(METER_GREEN_S, cycle - 2.0) if cycle < 2 * METER_GREEN_S else METER_GREEN_S
            release = ((t_s - start) % cycle) < green
        prev = states.get(node, "G" * len(links))
        states[node] = "".join(
            ("G" if release else "r") if a == c.link else prev[i] for i, (a, _) in enumerate(links)
        )
    return states


def _read_edge_data(paths: list[Path], link_ids: list[str], T: int, record_interval_s: float):
    """Per-interval arrays from SUMO's edgeData output."""
    L = len(link_ids)
    idx = {lid: i for i, lid in enumerate(link_ids)}
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
    signal_nodes = {c.node for c in controls if isinstance(c, FixedTimeSignal)}
    for c in controls:
        if isinstance(c, FixedRateMeter) and net.links[c.link].to_node in signal_nodes:
            raise SimulationError(
                f"engine 'sumo': meter on link {c.link!r} ends at signalised node {net.links[c.link].to_node!r}; "
                f"put the meter on a link that ends at an unsignalised node"
            )
    dt = DEFAULT_DT_S if dt_s is None else float(dt_s)
    n_steps, spr = steps_for(scenario, dt, record_interval_s)
    T = int(math.ceil(n_steps / spr))
    routes = build_routes(scenario)
    R = len(routes)
    link_ids = list(net.links)
    L = len(link_ids)
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
            )
        except SumoError as exc:
            raise SimulationError(f"engine 'sumo': export failed: {exc}") from None
        for c in controls:
            if isinstance(c, FixedTimeSignal):
                links = exp.tls_links[c.node]
                green = {mv for p in c.phases for mv in p.movements}
                for path in routes.links:
                    for a, b in zip(path[:-1], path[1:]):
                        if net.links[a].to_node == c.node and (a, b) not in green:
                            raise SimulationError(
                                f"signal at node {c.node!r}: movement {a!r} -> {b!r} is used by demand but has "
                                f"green in no phase; add it to a phase"
                            )
                del links
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
        vkt, vht, cum_in, cum_out, wait_edge, span = _read_edge_data(exp.edge_data_files, link_ids, T, record_interval_s)
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
    session = _Session(backend, cmd, timeout_s, log)
    bar = progress_bar(progress, n_steps, "sumo", scenario)
    lanes_of = exp.lanes
    all_lanes = [ln for lid in link_ids for ln in lanes_of[lid]]
    meters = any(isinstance(c, FixedRateMeter) for c in scenario.controls)
    signal_nodes = [c.node for c in scenario.controls if isinstance(c, FixedTimeSignal)]
    try:
        try:
            session.start()
        except SimulationError:
            raise
        except Exception as exc:  # noqa: BLE001 - libsumo/traci raise their own exception types
            raise session.failure("sumo", "to start", exc, timeout_s) from None
        api = session.api
        try:
            for node in signal_nodes:
                api.trafficlight.setProgram(node, PROGRAM_ID)
            allowed0 = {ln: list(api.lane.getAllowed(ln)) for ln in all_lanes}
            for ln in all_lanes:
                api.lanearea.subscribe("q_" + ln, [_JAM_LENGTH_METERS])
            closed: set[str] = set()
            meter_state: dict[str, str] = {}
            for k in range(n_steps):
                t = k * dt
                want = _closed_lanes(scenario, t, lanes_of)
                if want != closed:
                    for ln in want - closed:
                        api.lane.setAllowed(ln, ["authority"])
                    for ln in closed - want:
                        api.lane.setAllowed(ln, allowed0[ln])  # [] restores "all vehicles"
                    closed = want
                if meters:
                    for node, state in _meter_plan(scenario, exp, t).items():
                        if meter_state.get(node) != state:
                            api.trafficlight.setRedYellowGreenState(node, state)
                            meter_state[node] = state
                api.simulationStep((k + 1) * dt)
                for vid in api.simulation.getDepartedIDList():
                    dep[int(vid.split("_", 1)[0])] += 1
                for vid in api.simulation.getArrivedIDList():
                    arr[int(vid.split("_", 1)[0])] += 1
                teleports += api.simulation.getStartingTeleportNumber()
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
                        max(subs["q_" + ln][_JAM_LENGTH_METERS] for ln in lanes_of[lid]) for lid in link_ids
                    ]
                    t_end = (k + 1) * dt
                    cl = _closed_lanes(scenario, t_end, lanes_of)
                    lanes_end[i] = [sum(ln not in cl for ln in lanes_of[lid]) for lid in link_ids]
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
    final = {"vehicles_inside": float(inside), "teleports": teleports, "pending": float(src_queue[-1].sum())}
    return jam_end, lanes_end, route_in, route_out, route_gen, src_queue, wait_s, final
