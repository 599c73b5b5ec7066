"""Feedback controllers shared by the engines: they read detector aggregates, write meter rates.

A controller sees only what a field controller would: the occupancy of a detector zone sampled
during its last control interval and the vehicles stored on its ramp. Each engine measures these
its own way and hands them to the one control law here, :class:`AlineaLaw`:

* macro (:class:`MacroFeedback`): occupancy of the detector cells, ``100 n / (lanes n_jam)``;
  the rate caps the chunk's ``meter`` array;
* micro (:class:`MicroMeters`): vehicles whose front lies in the detector zone, from the
  vehicle state between kernel chunks; the rate becomes a ramp signal (below);
* sumo (:mod:`trafficsim.engines.sumo`): vehicles in a lane-area detector over the zone, read by
  subscription; the rate becomes the ramp's traffic-light states.
* hybrid (:mod:`trafficsim.engines.hybrid`): the macro measurement for a meter in the CTM part,
  the sumo one for a meter in the SUMO region.

The run loops cut their chunks at every sample and interval boundary (``cut_steps``). Occupancy
is ``o = 100 k / k_j`` with ``k`` the vehicles per km and lane in the zone and ``k_j`` the
detector link's jam density, the definition :class:`~trafficsim.control.AlineaMeter` states.

ALINEA (Papageorgiou, Hadj-Salem & Blosseville 1991)::

    r(k) = r(k-1) + K_R (o_set - o_out(k)),   r in [r_min, r_max]

with the queue override ``r = r_max`` while the ramp holds more than ``queue_override`` of its
storage.

A ramp signal (micro and SUMO) releases a rate ``r`` [veh/h] on ``n`` lanes as one vehicle per
lane per green: a green of :data:`~trafficsim.sumo_io.METER_GREEN_S` every ``3600 n / r`` s
(:func:`release_cycle`), as field meters do.
"""

from __future__ import annotations

import math

import numpy as np

from ..control import AlineaMeter, FixedRateMeter, FixedTimeSignal
from ..sumo_io import METER_GREEN_S
from ._common import SimulationError

__all__ = ["AlineaLaw", "MacroFeedback", "MicroMeters", "SAMPLES_PER_INTERVAL", "add_movement_signals", "release_cycle",
           "critical_occupancy_pct"]

#: Occupancy samples per control interval (the aggregate is their mean).
SAMPLES_PER_INTERVAL = 6


def release_cycle(rate_vph: float, lanes: int) -> tuple[float, float] | None:
    """Cycle and green [s] of a ramp signal releasing ``rate_vph`` [veh/h] on ``lanes`` lanes.

    One vehicle per lane per green of :data:`~trafficsim.sumo_io.METER_GREEN_S`; a cycle shorter
    than two greens keeps a 2 s red at most. ``None`` means no red at all (rate ``inf``); a rate
    of 0 gives a green of 0 (red throughout).
    """
    if math.isinf(rate_vph):
        return None
    if rate_vph <= 0:
        return (3600.0, 0.0)
    cycle = 3600.0 * max(1, lanes) / rate_vph
    green = max(METER_GREEN_S, cycle - 2.0) if cycle < 2 * METER_GREEN_S else METER_GREEN_S
    return cycle, min(green, cycle)


class AlineaLaw:
    """The ALINEA law of one :class:`~trafficsim.control.AlineaMeter`, its samples and its log.

    Parameters
    ----------
    meter : AlineaMeter
        The validated control.
    dt : float
        Engine step [s]; the interval and sampling period are whole numbers of steps.
    ramp_storage_veh : float
        Vehicles the ramp holds at jam density (lanes x jam density x length) [veh].
    """

    def __init__(self, meter: AlineaMeter, dt: float, ramp_storage_veh: float):
        self.meter = meter
        self.ramp_storage = ramp_storage_veh
        self.interval_steps = max(1, int(round(meter.interval_s / dt)))
        self.sample_steps = max(1, self.interval_steps // SAMPLES_PER_INTERVAL)
        self.rate = meter.max_rate_vph
        self.samples: list[float] = []
        self.log_t: list[float] = []
        self.log_rate: list[float] = []
        self.log_occ: list[float] = []
        self.log_override: list[bool] = []

    def cut_steps(self, n_steps: int) -> set[int]:
        """Steps at which the engine must stop its kernel so this law can sample and act."""
        return set(range(0, n_steps, self.sample_steps)) | set(range(0, n_steps, self.interval_steps))

    def step(self, k: int, t: float, occupancy_pct, ramp_vehicles) -> bool:
        """At step ``k`` (time ``t`` [s]): sample ``occupancy_pct()`` when due, update the rate at
        an interval end (calling ``ramp_vehicles()`` for the override). True if the rate was updated."""
        m = self.meter
        if k % self.sample_steps == 0:
            self.samples.append(float(occupancy_pct()))
        if not (k > 0 and k % self.interval_steps == 0 and self.samples):
            return False
        occ = float(np.mean(self.samples))
        self.samples = []
        override = m.queue_override > 0 and float(ramp_vehicles()) > m.queue_override * self.ramp_storage
        if override:
            self.rate = m.max_rate_vph
        else:
            self.rate = min(m.max_rate_vph, max(m.min_rate_vph, self.rate + m.gain_vph_per_pct * (m.setpoint_pct - occ)))
        self.log_t.append(t)
        self.log_rate.append(self.rate)
        self.log_occ.append(occ)
        self.log_override.append(bool(override))
        return True

    def rate_at(self, t: float) -> float:
        """Metering rate [veh/h] in force at ``t`` [s]; ``inf`` outside the active window."""
        return self.rate if self.meter.start_s <= t < self.meter.end_s else math.inf

    def log(self) -> dict[str, np.ndarray]:
        """Control times [s], rates [veh/h], measured occupancy [%], overrides."""
        return {"time_s": np.array(self.log_t), "rate_vph": np.array(self.log_rate),
                "occupancy_pct": np.array(self.log_occ), "override": np.array(self.log_override, bool)}


def ramp_storage_veh(link) -> float:
    """Vehicles a link holds at jam density [veh]."""
    return link.lanes * link.jam_density_vpkm_per_lane * link.length_m / 1000.0


class _Alinea:
    """Macro measurement for one ALINEA law: detector cells and ramp cells of the CTM."""

    def __init__(self, meter: AlineaMeter, compiled):
        c = compiled
        idx = {lid: i for i, lid in enumerate(c.link_ids)}
        self.meter = meter
        self.link = idx[meter.link]
        d = idx[meter.detector_link]
        c0, c1 = int(c.net.cell_off[d]), int(c.net.cell_off[d + 1])
        x = c.cell_x[c0:c1]
        n_det = max(1, int(np.sum(x < meter.detector_length_m)))
        self.det_cells = np.arange(c0, c0 + n_det)
        self.det_link = d
        self.ramp_cells = np.arange(int(c.net.cell_off[self.link]), int(c.net.cell_off[self.link + 1]))
        self.law = AlineaLaw(meter, c.dt, ramp_storage_veh(c.scenario.network.links[meter.link]))
        self.sample_steps = self.law.sample_steps
        self.interval_steps = self.law.interval_steps

    def occupancy_pct(self, st, ctl, njam_lane) -> float:
        lanes = max(float(ctl.lanes[self.det_link]), 1e-9)
        cap = lanes * njam_lane[self.det_link] * len(self.det_cells)
        return 100.0 * float(st.n[self.det_cells].sum()) / cap

    def step(self, k: int, t: float, st, ctl, njam_lane) -> None:
        self.law.step(k, t, lambda: self.occupancy_pct(st, ctl, njam_lane), lambda: st.n[self.ramp_cells].sum())

    def write(self, t: float, ctl, dt: float) -> None:
        if self.meter.start_s <= t < self.meter.end_s:
            ctl.meter[self.link] = min(ctl.meter[self.link], self.law.rate / 3600.0 * dt)


class MacroFeedback:
    """All feedback controllers of a compiled macro scenario (None from :meth:`build` if none)."""

    def __init__(self, controllers: list[_Alinea], dt: float, njam_lane: np.ndarray):
        self.controllers = controllers
        self.dt = dt
        self.njam_lane = njam_lane

    @classmethod
    def build(cls, compiled) -> "MacroFeedback | None":
        """Controllers for the compiled scenario's feedback controls, or None."""
        ctrl = [_Alinea(m, compiled) for m in compiled.scenario.controls if isinstance(m, AlineaMeter)]
        return cls(ctrl, compiled.dt, compiled.net.njam_lane) if ctrl else None

    def cut_steps(self, n_steps: int) -> set[int]:
        """Steps at which the kernel must stop so the controllers can sample and act."""
        out: set[int] = set()
        for c in self.controllers:
            out.update(range(0, n_steps, c.sample_steps))
            out.update(range(0, n_steps, c.interval_steps))
        return out

    def step(self, k: int, st, ctl) -> None:
        """Before the chunk starting at step ``k``: sample, update at interval ends, write meters."""
        t = k * self.dt
        for c in self.controllers:
            c.step(k, t, st, ctl, self.njam_lane)
            c.write(t, ctl, self.dt)

    def log(self) -> dict[str, dict[str, np.ndarray]]:
        """Per metered link: control times [s], rates [veh/h], measured occupancy [%], overrides."""
        return {c.meter.link: c.law.log() for c in self.controllers}


def add_movement_signals(c, sig_of_move: dict, window: tuple, cycle_s: float, release: bool = False) -> dict:
    """Put movements of the compiled micro network ``c.net`` under new signals of their own.

    ``sig_of_move`` maps a movement index to its new signal (numbered on from the existing
    ``len(c.net.sig_cycle)`` ones); each such movement gets the single green window ``window`` =
    ``(start, end, amber end)`` [s] in a cycle of ``cycle_s``; the windows' values are then set
    between kernel calls by the caller. Returns ``{movement: index of its window}`` in the new
    window arrays. ``release``: the signals are ramp meters (``MicroNet.move_release``: a green
    releases the vehicle at the line). Replaces ``c.net``.
    """
    mn = c.net
    move_sig, win_off, ws, we, wa, at = [], [0], [], [], [], {}
    for k in range(len(mn.move_sig)):
        if k in sig_of_move:
            move_sig.append(sig_of_move[k])
            at[k] = len(ws)
            ws.append(window[0])
            we.append(window[1])
            wa.append(window[2])
        else:
            move_sig.append(int(mn.move_sig[k]))
            w0, w1 = int(mn.move_win_off[k]), int(mn.move_win_off[k + 1])
            ws.extend(mn.win_start[w0:w1])
            we.extend(mn.win_end[w0:w1])
            wa.extend(mn.win_amber[w0:w1])
        win_off.append(len(ws))
    n_new = max(sig_of_move.values(), default=len(mn.sig_cycle) - 1) - len(mn.sig_cycle) + 1
    move_release = mn.move_release.copy()
    if release:
        move_release[list(sig_of_move)] = 1
    c.net = mn._replace(
        move_sig=np.array(move_sig, dtype=mn.move_sig.dtype), move_release=move_release,
        move_win_off=np.array(win_off, dtype=mn.move_win_off.dtype),
        win_start=np.array(ws, dtype=np.float64), win_end=np.array(we, dtype=np.float64),
        win_amber=np.array(wa, dtype=np.float64),
        sig_cycle=np.concatenate([mn.sig_cycle, np.full(n_new, float(cycle_s))]),
        sig_offset=np.concatenate([mn.sig_offset, np.zeros(n_new)]),
    )
    return at


class MicroMeters:
    """Ramp meters of a compiled micro scenario as ramp signals of the micro kernel.

    Every :class:`~trafficsim.control.FixedRateMeter` and :class:`~trafficsim.control.AlineaMeter`
    gets a signal of its own that controls every movement out of its link (one green window per
    cycle, then a short amber and red); :meth:`step`, called before each kernel chunk, sets the
    cycle and green for the rate in force (:func:`release_cycle`) and, for ALINEA, samples the
    detector zone from the vehicle state and updates the rate at interval ends. A cycle restarts
    only when the rate changes. A metered link must not end at a signalised node.
    """

    def __init__(self, compiled, meters: list, signal_of: list[int]):
        c = compiled
        self.c = c
        self.meters = meters
        self.signal_of = signal_of
        self.lidx = {lid: i for i, lid in enumerate(c.link_ids)}
        net = c.scenario.network
        self.laws = {i: AlineaLaw(m, c.dt, ramp_storage_veh(net.links[m.link]))
                     for i, m in enumerate(meters) if isinstance(m, AlineaMeter)}
        self.release: dict[int, tuple] = {}

    @classmethod
    def build(cls, compiled) -> "MicroMeters | None":
        """Add the meters' signals to ``compiled.net`` (replaced) and return the controller, or None."""
        c = compiled
        net = c.scenario.network
        meters = [m for m in c.scenario.controls if isinstance(m, (FixedRateMeter, AlineaMeter))]
        if not meters:
            return None
        signal_nodes = {s.node for s in c.scenario.controls if isinstance(s, FixedTimeSignal)}
        mn = c.net
        nsig = len(mn.sig_cycle)
        signal_of, by_link = [], {}
        for i, m in enumerate(meters):
            node = net.links[m.link].to_node
            if node in signal_nodes:
                raise SimulationError(f"engine 'micro': meter on link {m.link!r} ends at signalised node {node!r}; "
                                      f"put the meter on a link that ends at an unsignalised node")
            if m.link in by_link:
                raise SimulationError(f"engine 'micro': link {m.link!r} has more than one meter")
            by_link[m.link] = nsig + i
            signal_of.append(nsig + i)
        add_movement_signals(c, {k: by_link[a] for k, (a, _b) in enumerate(c.movements) if a in by_link},
                             (0.0, 1.0, 1.0), 1.0, release=True)
        return cls(c, meters, signal_of)

    def cut_steps(self, n_steps: int) -> set[int]:
        """Steps at which the kernel must stop so the ALINEA laws can sample and act."""
        out: set[int] = set()
        for law in self.laws.values():
            out |= law.cut_steps(n_steps)
        return out

    def occupancy_pct(self, meter: AlineaMeter, st, t: float) -> float:
        """Occupancy [%] of the detector zone: fronts on its first ``detector_length_m``."""
        lk = self.c.scenario.network.links[meter.detector_link]
        lanes = lk.lanes_at(t)
        l = self.lidx[meter.detector_link]
        n = 0
        for gl in range(int(self.c.lane0[l]), int(self.c.lane0[l]) + lanes):
            w = int(st.lane_tail[gl])  # upstream-most vehicle; nxt runs downstream
            while w >= 0 and st.x[w] <= meter.detector_length_m:
                n += 1
                w = int(st.nxt[w])
        zone_km = max(lanes, 1) * meter.detector_length_m / 1000.0
        return 100.0 * n / (zone_km * lk.jam_density_vpkm_per_lane)

    def step(self, k: int, st) -> None:
        """Before the chunk starting at step ``k``: sample and update ALINEA, write the ramp signals."""
        c = self.c
        t = k * c.dt
        net = c.scenario.network
        mn = c.net
        for i, m in enumerate(self.meters):
            law = self.laws.get(i)
            if law is not None:
                l = self.lidx[m.link]
                law.step(k, t, lambda: self.occupancy_pct(m, st, t), lambda: st.cum_in[l] - st.cum_out[l])
                rate = law.rate_at(t)
            else:
                rate = m.rate_at(t)
            rc = release_cycle(rate, net.links[m.link].lanes_at(t))
            if self.release.get(i) == rc:
                continue
            self.release[i] = rc
            s = self.signal_of[i]
            cycle, green = (1.0, 1.0) if rc is None else rc
            mn.sig_cycle[s] = cycle
            mn.sig_offset[s] = t  # the release cycle restarts when its rate changes
            for mv in np.flatnonzero(mn.move_sig == s):
                w = int(mn.move_win_off[mv])
                mn.win_end[w] = green
                mn.win_amber[w] = min(cycle, green + 1.0) if green > 0 else 0.0

    def log(self) -> dict[str, dict[str, np.ndarray]]:
        """Per ALINEA-metered link: control times [s], rates [veh/h], occupancy [%], overrides."""
        return {self.meters[i].link: law.log() for i, law in self.laws.items()}


def critical_occupancy_pct(capacity_vph_per_lane: float, free_speed_kmh: float, jam_density_vpkm_per_lane: float) -> float:
    """Critical occupancy ``100 k_c / k_j`` [%] of a triangular fundamental diagram."""
    return 100.0 * capacity_vph_per_lane / free_speed_kmh / jam_density_vpkm_per_lane if math.isfinite(free_speed_kmh) else math.nan
