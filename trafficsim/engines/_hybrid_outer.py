"""The outer model of the ``hybrid`` engine: the links outside the SUMO region, in the CTM or the micro engine.

:func:`trafficsim.engines.hybrid.run_hybrid` owns SUMO and the coupling loop; an outer model
owns the links outside the region and answers the loop's four questions every coupling step:

* :meth:`limit` - SUMO's entry space (``supply`` [veh] per entry node, the vehicles ``pending``
  insertion there) holds back the outer links that feed each entry node;
* :meth:`advance` - one step; returns the whole vehicles per original route that reached an
  entry node and are handed to SUMO;
* :meth:`receive` - a vehicle that left SUMO joins the origin queue of its suffix route at the
  exit node (the *exit buffer*);
* :meth:`totals`, :meth:`exit_queue`, :meth:`conservation`, :meth:`records` - the bookkeeping.

:class:`MacroOuter` (the CTM) caps the discharge of the feeding links by the region's receiving
flow through the kernel's per-link ``meter`` array and turns the fractional vehicles reaching
the entry node into whole ones with a per-route accumulator. :class:`MicroOuter` (IDM + MOBIL)
moves whole vehicles: a prefix route ends at the entry node with an exit movement, and the
coupling times that movement with a *gate* signal of its own, green while SUMO inserts what it
was given and there is room on the entry stretch, amber otherwise (a vehicle stops at the end
of its link when it comfortably can, so the queue stands in the micro links); vehicles leaving
SUMO join the suffix route's origin queue, from which the kernel inserts them at the speed the
downstream allows.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..control import AlineaMeter, FixedRateMeter
from ..kernels.ctm import STATUS_NAN, STATUS_NEGATIVE, ctm_advance
from ._lane_groups import fold_links, fold_records, split_lane_groups
from ._common import SimulationError, breakpoints, step_index
from ._feedback import MacroFeedback, add_movement_signals

__all__ = ["MacroOuter", "MicroOuter", "OUTER_MODELS"]

#: Outer models of the hybrid engine, by the value of its ``outer`` option.
OUTER_MODELS = ("macro", "micro")
#: A time [s] beyond any horizon: the gate signals' green/amber windows are [0, _FOREVER).
_FOREVER = 1.0e9
#: Amber [s] of a gate that closes (then red until SUMO takes vehicles again).
GATE_AMBER_S = 2.0


class _Outer:
    """Route maps shared by both outer models (see :class:`~trafficsim.engines.hybrid.HybridSplit`)."""

    name = ""

    def __init__(self, split, R: int):
        self.first = np.array(split.macro_first)
        self.last = np.array(split.macro_last)
        self.pre_r = [r for r in range(R) if split.parts[r][0] and split.parts[r][1]]   # outer -> SUMO
        self.suf_r = [r for r in range(R) if split.parts[r][1] and split.parts[r][2]]   # SUMO -> outer
        self.ends_in_region = np.array([bool(split.parts[r][1]) and not split.parts[r][2] for r in range(R)])
        self.R = R
        self.wall_s = 0.0
        # suffix routes grouped by the outer link after their exit (they share its origin)
        self.down_groups: dict[str, list[int]] = {}
        for i, r in enumerate(self.suf_r):
            self.down_groups.setdefault(split.parts[r][2][0], []).append(i)
        self.down_links = {lid: split.scenario.network.links[lid] for lid in self.down_groups}

    def exit_blocked(self, t: float) -> set:
        """Original routes whose exit buffer is backed up at time ``t`` [s]: the vehicles waiting
        for an outer link after an exit exceed :meth:`_exit_slack` (what that link can take in
        one step, plus one vehicle), so SUMO should hold that link's vehicles at their exit."""
        buf = self._waiting()
        out = set()
        for lid, idx in self.down_groups.items():
            if buf[idx].sum() > self._exit_slack(self.down_links[lid], t):
                out.update(self.suf_r[i] for i in idx)
        return out

    def totals(self, gen, dep_sumo, arr_sumo):
        """Cumulative (demanded, departed, arrived) per original route from both engines."""
        st = self.st
        g, i, o = np.array(gen, float), np.array(dep_sumo, float), np.array(arr_sumo, float)
        has_first = self.first >= 0
        g[has_first] = st.route_gen[self.first[has_first]]
        i[has_first] = st.route_in[self.first[has_first]]
        has_last = (self.last >= 0) & ~self.ends_in_region
        o[has_last] = st.route_out[self.last[has_last]]
        return g, i, o


class MacroOuter(_Outer):
    """The CTM outside the region (``outer="macro"``)."""

    name = "macro"

    def __init__(self, split, R: int, dt: float, record_interval_s: float, capacity_drop: float, net):
        from .macro import _new_record, _new_state, compile_macro

        super().__init__(split, R)
        self.dt, self.capacity_drop = dt, capacity_drop
        # lane groups as on the macro engine: the links into entry nodes end the prefix flows,
        # so they stay whole and keep the ids the coupling uses
        macro_sc, self.parts = split_lane_groups(split.macro)
        cm = self.cm = compile_macro(macro_sc, dt, record_interval_s)
        self.st = _new_state(cm)
        self.rec = _new_record(cm, False)
        self.link_ids = list(split.macro.network.links)
        self.members = fold_links(cm.link_ids, self.parts, self.link_ids)[0] if self.parts else None
        m_index = {lid: i for i, lid in enumerate(cm.link_ids)}
        G = cm.net.slot_route.shape[0]
        first_src = int(cm.net.slot_off[-1])
        src_slot_of_route = {int(cm.net.slot_route[g]): g for g in range(first_src, G)}
        self.cuts = sorted({step_index(t, dt) for t in breakpoints(split.macro)} | {0})
        self.feedback = MacroFeedback.build(cm)  # ALINEA meters of the macro part
        self._ctl_cache: dict = {}
        self.suffix_slot = np.array([src_slot_of_route[int(self.last[r])] for r in self.suf_r], dtype=np.int64)
        self.feeders = {n: [m_index[lk.id] for lk in net.in_links(n) if lk.id in m_index] for n in split.entry_nodes}
        self.cell_last = cm.net.cell_off[1:] - 1
        self._slot_of = dict(zip(self.suf_r, self.suffix_slot.tolist()))
        self.acc = np.zeros(R)      # fractional vehicles reaching the entry node, per prefix route
        self.ctl_k = None

    def _controls(self, k: int):
        key = max(c for c in self.cuts if c <= k)
        if key not in self._ctl_cache:
            self._ctl_cache[key] = self.cm.controls_at(key * self.dt)
        return self._ctl_cache[key]

    def limit(self, k: int, supply: dict, pending: dict) -> None:
        """Cap the discharge of the links feeding each entry node by the node's ``supply``
        (split among several feeders by their sending flows)."""
        cm, st = self.cm, self.st
        base = self._controls(k)
        meter = base.meter.copy()
        self.ctl_k = base._replace(meter=meter)
        if self.feedback is not None:  # macro-part ALINEA writes its rate into ctl_k.meter (= meter)
            self.feedback.step(k, st, self.ctl_k)
        for n, s_n in supply.items():
            fl = self.feeders[n]
            if len(fl) == 1:
                meter[fl[0]] = min(meter[fl[0]], s_n)
            elif fl:
                lanes = base.lanes[fl]
                s = np.minimum(cm.net.alpha[fl] * st.n[self.cell_last[fl]],
                               np.minimum(cm.net.qstep_lane[fl] * lanes, meter[fl]))
                tot = s.sum()
                share = s / tot if tot > 1e-12 else np.full(len(fl), 1.0 / len(fl))
                meter[fl] = np.minimum(meter[fl], s_n * share)

    def advance(self, k: int) -> np.ndarray:
        """One CTM step; whole vehicles per original route handed to SUMO (the remainder, < 1
        per route, stays in the accumulator)."""
        st, pre = self.st, self.pre_r
        t0 = time.perf_counter()
        out_before = st.route_out[self.first[pre]].copy() if pre else None
        status = ctm_advance(k, k + 1, self.dt, self.cm.steps_per_record, self.capacity_drop, self.cm.net,
                             self.ctl_k, st, self.rec)
        self.wall_s += time.perf_counter() - t0
        if status == STATUS_NEGATIVE:
            raise SimulationError(f"engine 'hybrid': CTM produced a negative cell count at t={k * self.dt:g} s")
        if status == STATUS_NAN:
            raise SimulationError(f"engine 'hybrid': CTM produced NaN at t={k * self.dt:g} s")
        whole = np.zeros(self.R, np.int64)
        if pre:
            self.acc[pre] += st.route_out[self.first[pre]] - out_before
            w = np.floor(self.acc[pre] + 1e-9)
            self.acc[pre] -= w
            whole[pre] = w.astype(np.int64)
        return whole

    def region_demand(self, r: int, veh: float, acc: np.ndarray) -> int:
        """Demand [veh] of a route that starts in the region this step: accumulated, whole vehicles out."""
        acc[r] += veh
        whole = int(math.floor(acc[r] + 1e-9))
        acc[r] -= whole
        return whole

    def receive(self, r: int) -> None:
        """A vehicle of original route ``r`` left SUMO: into the exit buffer of its suffix route."""
        self.st.queue[self._slot_of[r]] += 1.0
        self.st.route_gen[int(self.last[r])] += 1.0

    def exit_queue(self) -> np.ndarray:
        """Vehicles in the exit buffer of each suffix route (order of ``suf_r``)."""
        return self.st.queue[self.suffix_slot] if self.suf_r else np.zeros(0)

    def _waiting(self) -> np.ndarray:
        return self.exit_queue()

    def _exit_slack(self, lk, t: float) -> float:
        """One vehicle more than the CTM origin can send into ``lk`` in a step at capacity."""
        return 1.0 + lk.capacity_vph_per_lane * lk.lanes_at(t) / 3600.0 * self.dt

    def conservation(self) -> dict:
        return {"macro_links": float(self.st.n.sum()),
                "transfer_fraction": float(self.acc[self.pre_r].sum()) if self.pre_r else 0.0}

    def records(self) -> dict:
        rec = self.rec
        out = {"vkt": rec.vkt, "vht": rec.vht, "cum_in": rec.cum_in, "cum_out": rec.cum_out,
               "queue_veh": rec.queue_veh, "queue_m": rec.queue_m, "lanes": rec.lanes}
        return fold_records(out, self.members) if self.members is not None else out

    def controller_logs(self) -> dict:
        return self.feedback.log() if self.feedback is not None else {}


class MicroOuter(_Outer):
    """The micro engine outside the region (``outer="micro"``), stepped by
    :class:`~trafficsim.engines.micro.MicroStepper`."""

    name = "micro"

    def __init__(self, split, R: int, dt: float, record_interval_s: float, seed, net, *,
                 vehicle_params=None, lane_change=None):
        from .micro import MicroStepper, compile_micro

        super().__init__(split, R)
        self.dt = dt
        c = compile_micro(split.macro, dt, record_interval_s, vehicle_params=vehicle_params, lane_change=lane_change)
        self.run = MicroStepper(c, seed)
        self.link_ids = list(c.link_ids)
        self.rng = np.random.default_rng(None if seed is None else [int(seed), 1])  # region-origin arrivals
        self.incoming = np.zeros(len(c.route_links), np.int64)   # left SUMO, join the origin queues next step
        # one gate signal per exit movement (feeder, None) at an entry node
        feeder_links = {n: [lk.id for lk in net.in_links(n) if lk.id in set(c.link_ids)] for n in split.entry_nodes}
        metered = {m.link for m in split.macro.controls if isinstance(m, (FixedRateMeter, AlineaMeter))}
        for n, fl in feeder_links.items():
            for lid in fl:
                if lid in metered:
                    raise SimulationError(
                        f"engine 'hybrid' (outer='micro'): the meter on link {lid!r} times the movement into the "
                        f"region at node {n!r}, which the coupling gates; put the meter's link in the region"
                    )
        self.gates = {n: [] for n in feeder_links}
        gate_of_move = {}
        for mi, (a, b) in enumerate(c.movements):
            if b is None:
                for n, fl in feeder_links.items():
                    if a in fl:
                        gate_of_move[mi] = n
        nsig = len(c.net.sig_cycle)
        gate_moves = sorted(gate_of_move)
        window_at = add_movement_signals(c, {mi: nsig + i for i, mi in enumerate(gate_moves)},
                                         (0.0, _FOREVER, _FOREVER), 4.0 * _FOREVER)
        for mi in gate_moves:
            self.gates[gate_of_move[mi]].append(window_at[mi])
        self.gate_green = {n: True for n in self.gates}

    @property
    def st(self):
        return self.run.st

    @property
    def rec(self):
        return self.run.rec

    def limit(self, k: int, supply: dict, pending: dict) -> None:
        """Gate of each entry node: green while SUMO has inserted every vehicle handed over there
        and its entry stretch has room (``supply > 0``); when that ends, amber for
        :data:`GATE_AMBER_S` (a vehicle goes on only if stopping would need more than the amber
        deceleration), then red until it holds again: the vehicles wait at the end of their link."""
        t = k * self.dt
        mn = self.run.c.net
        for n, ws in self.gates.items():
            is_open = pending.get(n, 0) == 0 and supply.get(n, 0.0) > 0.0
            was_open = self.gate_green[n]
            if is_open == was_open:
                continue
            self.gate_green[n] = is_open
            for w in ws:
                if is_open:
                    mn.win_end[w] = mn.win_amber[w] = _FOREVER
                else:
                    mn.win_end[w] = t
                    mn.win_amber[w] = t + GATE_AMBER_S

    def advance(self, k: int) -> np.ndarray:
        """One micro step; whole vehicles per original route that left at an entry node."""
        st0 = self.run.st
        pre = self.pre_r
        before = st0.route_out[self.first[pre]].copy() if pre else None
        t0 = time.perf_counter()
        self.run.advance(k + 1, arrivals=self.incoming)
        self.wall_s += time.perf_counter() - t0
        self.incoming[:] = 0
        whole = np.zeros(self.R, np.int64)
        if pre:
            whole[pre] = self.run.st.route_out[self.first[pre]] - before
        return whole

    def region_demand(self, r: int, veh: float, acc: np.ndarray) -> int:
        """Demand [veh] of a route that starts in the region this step: Poisson arrivals (as the
        micro engine's own origins)."""
        return int(self.rng.poisson(veh)) if veh > 0 else 0

    def receive(self, r: int) -> None:
        self.incoming[int(self.last[r])] += 1

    def exit_queue(self) -> np.ndarray:
        """Vehicles in the exit buffer of each suffix route: waiting to be inserted by the micro
        origin, or arrived from SUMO this step."""
        if not self.suf_r:
            return np.zeros(0)
        st = self.run.st
        m = self.last[self.suf_r]
        return (st.route_gen[m] - st.route_in[m] + self.incoming[m]).astype(float)

    def _waiting(self) -> np.ndarray:
        """Vehicles that left SUMO and the micro origin failed to insert at least once."""
        st = self.run.st
        m = self.last[self.suf_r]
        return (st.route_gen[m] - st.route_in[m]).astype(float) if self.suf_r else np.zeros(0)

    def _exit_slack(self, lk, t: float) -> float:
        """One waiting vehicle per open lane of ``lk``."""
        return float(max(lk.lanes_at(t), 1))

    def conservation(self) -> dict:
        from ..kernels.micro import C_INSIDE

        return {"micro_links": float(self.run.st.counters[C_INSIDE])}

    def records(self) -> dict:
        rec, c = self.run.rec, self.run.c
        T = rec.vkt.shape[0]
        span = np.minimum((np.arange(T) + 1) * c.steps_per_record, c.n_steps) * c.dt - np.arange(T) * c.steps_per_record * c.dt
        return {"vkt": rec.vkt, "vht": rec.vht, "cum_in": rec.cum_in, "cum_out": rec.cum_out,
                "queue_veh": rec.queue_vs / span[:, None], "queue_m": rec.queue_m, "lanes": rec.lanes}

    def controller_logs(self) -> dict:
        m = self.run.meters
        return m.log() if m is not None and m.laws else {}
