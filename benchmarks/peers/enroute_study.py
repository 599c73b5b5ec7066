"""What en-route route choice would change on UXsim's grid: a prototype patched into macro (issue 8).

trafficsim's ``route_choice="dynamic"`` re-splits only *new departures*; a vehicle keeps the route
it departed on. UXsim's DUO lets every vehicle re-choose its next link at every node. This study
patches a prototype of en-route choice into the macro engine's route chooser, in this process
only (it is not a library feature): at every update after the first, the vehicles of each flow
on each link (every packet of the link's FIFO) are re-split among the flow's candidate routes
that pass that link, by the same rule as departures (weight ``route_smoothing``, all to the
routes whose remaining travel time from the link's end is least), and each packet's per-output
amounts are re-summed. Vehicles are conserved; per-route arrival counts then count a vehicle
under the route it ends on.

    /tmp/dev/bin/python benchmarks/peers/enroute_study.py        # ~30 s

It prints TTS [veh h], completed trips, and the most and the last vehicles in the network, with
and without the patch, on ``cases.uxsim_grid()``. It is a study, not a test: it asserts nothing
and times nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import trafficsim as ts  # noqa: E402
from trafficsim.engines import _route_choice as rc  # noqa: E402
from trafficsim.routing import update_shares  # noqa: E402

import cases  # noqa: E402

_INIT, _STEP = rc.MacroRouteChoice.__init__, rc.MacroRouteChoice.step


def _init(self, compiled, params, multi):
    """The unpatched set-up, then the index arrays of the re-split: every link slot of a
    multi-route flow that shares its link with another route of the flow, and every packet
    entry of those slots and of their links' per-output sums."""
    _INIT(self, compiled, params, multi)
    c, net = compiled, compiled.net
    L = len(c.link_ids)
    slot_off = np.asarray(net.slot_off, dtype=np.int64)
    slot_route = np.asarray(net.slot_route, dtype=np.int64)[:slot_off[-1]]
    slot_link = np.repeat(np.arange(L), np.diff(slot_off))
    flow_of = np.asarray(c.routes.flow, dtype=np.int64)
    is_multi = np.zeros(len(c.routes.links), dtype=bool)
    is_multi[multi] = True
    g = np.flatnonzero(is_multi[slot_route])
    lidx = {lid: i for i, lid in enumerate(c.link_ids)}
    paths = {r: [lidx[x] for x in c.routes.links[r]] for r in np.unique(slot_route[g]).tolist()}
    pos = np.array([paths[r].index(l) for r, l in zip(slot_route[g].tolist(), slot_link[g].tolist())], dtype=np.int64)
    key = slot_link[g] * (flow_of.max() + 1) + flow_of[slot_route[g]]
    order = np.lexsort((g, key))
    g, pos, key = g[order], pos[order], key[order]
    starts = np.flatnonzero(np.diff(key, prepend=-1))
    sizes = np.diff(np.append(starts, g.size))
    keep = np.repeat(sizes > 1, sizes)
    g, pos, key = g[keep], pos[keep], key[keep]
    self.er_start = np.flatnonzero(np.diff(key, prepend=-1))
    self.er_pos = pos
    midx = np.full(len(c.routes.links), -1)
    midx[multi] = np.arange(multi.size)
    self.er_m = midx[slot_route[g]]
    MO, P = int(net.max_out), int(net.n_packets)
    pk_base, m_l = np.asarray(net.pk_base, dtype=np.int64), np.diff(slot_off)
    sl = slot_link[g]
    self.er_idx = (pk_base[sl][:, None] + np.arange(P)[None, :] * (1 + MO + m_l[sl])[:, None] + 1 + MO
                   + (g - slot_off[sl])[:, None])
    allg = np.concatenate([np.arange(slot_off[lk], slot_off[lk + 1]) for lk in np.unique(sl)])
    al = slot_link[allg]
    rows = pk_base[al][:, None] + np.arange(P)[None, :] * (1 + MO + m_l[al])[:, None]
    self.er_amt = (rows + 1 + MO + (allg - slot_off[al])[:, None]).ravel()
    self.er_out = (rows + 1 + np.asarray(net.slot_out, dtype=np.int64)[allg][:, None]).ravel()
    self.er_outs = np.unique(self.er_out)


def _step(self, k, st, ctl):
    """The unpatched update of departures, then the re-split of the vehicles on their way."""
    first = not self.log_t
    if not self.update(k, st, ctl.lanes):
        return
    ctl.src_rate[:] = self.c.source_rates(k * self.dt)
    if first:
        return
    tt = self.link_times_s(st, ctl.lanes)[self.route_links]
    cum = np.cumsum(tt)
    ends = np.append(self.route_off[1:], tt.size)
    remaining = cum[ends[self.er_m] - 1] - cum[self.route_off[self.er_m] + self.er_pos]
    target = update_shares(np.zeros(remaining.size), remaining, self.er_start, 1.0, self.params.logit_s)
    w = self.params.smoothing
    amounts = st.pk[self.er_idx]
    sizes = np.diff(np.append(self.er_start, remaining.size))
    total = np.repeat(np.add.reduceat(amounts, self.er_start, axis=0), sizes, axis=0)
    st.pk[self.er_idx] = (1.0 - w) * amounts + w * target[:, None] * total
    sums = np.bincount(self.er_out, weights=st.pk[self.er_amt], minlength=st.pk.size)
    st.pk[self.er_outs] = sums[self.er_outs]


def run(sc, candidates, interval_s, en_route):
    rc.MacroRouteChoice.__init__, rc.MacroRouteChoice.step = (_init, _step) if en_route else (_INIT, _STEP)
    try:
        res = ts.simulate(sc, engine="macro", route_choice="dynamic", route_update_s=interval_s,
                          route_candidates=candidates, record_interval_s=60)
    finally:
        rc.MacroRouteChoice.__init__, rc.MacroRouteChoice.step = _INIT, _STEP
    k, d = res.kpis, res.data
    inside = (d["route_departed"] - d["route_arrived"]).sum("route").values
    return float(k["vht"] + k["origin_wait_vh"]), float(k["completed"]), float(inside.max()), float(inside[-1])


def main() -> int:
    sc = cases.uxsim_grid()
    print("| candidates | interval [s] | departure choice only (the library) | with en-route choice (prototype) |")
    print("|---:|---:|---|---|")
    for candidates in (5, 10):
        for interval_s in (300, 600, 1200):
            cells = []
            for en_route in (False, True):
                tts, done, peak, end = run(sc, candidates, interval_s, en_route)
                cells.append(f"{tts:,.0f} ({done:,.0f}; most {peak:,.0f}, last {max(end, 0.0):,.0f})")
            print(f"| {candidates} | {interval_s} | " + " | ".join(cells) + " |", flush=True)
    print("\nTTS [veh h] (completed trips of 60,984; most and last vehicles in the network)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
