"""Feedback controllers for the macro engine: they read detector aggregates, write meter rates.

A controller sees only what a field controller would: the occupancy of detector cells sampled
during its last control interval and the vehicles stored on its ramp. The run loop cuts its
kernel chunks at every sample and interval boundary (:meth:`MacroFeedback.cut_steps`), calls
:meth:`MacroFeedback.step` before each chunk, and the controller writes the metering cap into the
chunk's ``meter`` array. Controllers are plain Python between kernel calls, never inside one.

ALINEA (Papageorgiou, Hadj-Salem & Blosseville 1991)::

    r(k) = r(k-1) + K_R (o_set - o_out(k)),   r in [r_min, r_max]

with the queue override ``r = r_max`` while the ramp holds more than ``queue_override`` of its
storage.
"""

from __future__ import annotations

import math

import numpy as np

from ..control import AlineaMeter

__all__ = ["MacroFeedback", "SAMPLES_PER_INTERVAL"]

#: Occupancy samples per control interval (the aggregate is their mean).
SAMPLES_PER_INTERVAL = 6


class _Alinea:
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
        ramp = c.scenario.network.links[meter.link]
        self.ramp_storage = ramp.lanes * ramp.jam_density_vpkm_per_lane * ramp.length_m / 1000.0
        self.interval_steps = max(1, int(round(meter.interval_s / c.dt)))
        self.sample_steps = max(1, self.interval_steps // SAMPLES_PER_INTERVAL)
        self.rate = meter.max_rate_vph
        self.samples: list[float] = []
        self.log_t: list[float] = []
        self.log_rate: list[float] = []
        self.log_occ: list[float] = []
        self.log_override: list[bool] = []

    def occupancy_pct(self, st, ctl, njam_lane) -> float:
        lanes = max(float(ctl.lanes[self.det_link]), 1e-9)
        cap = lanes * njam_lane[self.det_link] * len(self.det_cells)
        return 100.0 * float(st.n[self.det_cells].sum()) / cap

    def step(self, k: int, t: float, st, ctl, njam_lane) -> None:
        m = self.meter
        if k % self.sample_steps == 0:
            self.samples.append(self.occupancy_pct(st, ctl, njam_lane))
        if k > 0 and k % self.interval_steps == 0 and self.samples:
            occ = float(np.mean(self.samples))
            self.samples = []
            override = m.queue_override > 0 and float(st.n[self.ramp_cells].sum()) > m.queue_override * self.ramp_storage
            if override:
                self.rate = m.max_rate_vph
            else:
                self.rate = min(m.max_rate_vph, max(m.min_rate_vph, self.rate + m.gain_vph_per_pct * (m.setpoint_pct - occ)))
            self.log_t.append(t)
            self.log_rate.append(self.rate)
            self.log_occ.append(occ)
            self.log_override.append(bool(override))

    def write(self, t: float, ctl, dt: float) -> None:
        if self.meter.start_s <= t < self.meter.end_s:
            ctl.meter[self.link] = min(ctl.meter[self.link], self.rate / 3600.0 * dt)


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
        return {
            c.meter.link: {"time_s": np.array(c.log_t), "rate_vph": np.array(c.log_rate),
                           "occupancy_pct": np.array(c.log_occ), "override": np.array(c.log_override, bool)}
            for c in self.controllers
        }


def critical_occupancy_pct(capacity_vph_per_lane: float, free_speed_kmh: float, jam_density_vpkm_per_lane: float) -> float:
    """Critical occupancy ``100 k_c / k_j`` [%] of a triangular fundamental diagram."""
    return 100.0 * capacity_vph_per_lane / free_speed_kmh / jam_density_vpkm_per_lane if math.isfinite(free_speed_kmh) else math.nan
