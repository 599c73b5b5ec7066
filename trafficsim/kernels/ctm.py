"""Multi-commodity cell-transmission model on a general network (numba).

Links are chains of cells. Inside a link the Godunov/CTM scheme of Daganzo (1994) moves
vehicles between cells with the triangular sending and receiving functions::

    S_c = min(v_f dt/dx * n_c, Q dt)
    R_c = max(0, min(Q dt, w dt/dx * (N_jam - n_c)))
    y_c = min(S_c, R_{c+1})

Optional capacity drop (default off): at a queue head, where a congested cell (``n > n_crit``)
feeds an uncongested one, the flow is ``min(S_c, (1 - drop) R_{c+1})``, so an active bottleneck
discharges below its capacity once a queue stands behind it (Cassidy & Bertini 1999); the same
rule applies at nodes to every uncongested outgoing link fed by a congested incoming one.

with ``Q = lanes * q_lane`` and ``N_jam = lanes * k_j dx`` following the lane count in force,
and the CFL condition ``v_f dt <= dx``. Clipping ``R`` at 0 keeps the vehicles of a link whose
lanes drop below what it stores: they drain, they never vanish.

At every node the general node model of Tampere et al. (2011) (incremental transfer, the same
solution as Flotterod & Rohde 2011) splits the receiving flows of the outgoing links among the
incoming links with capacity-proportional (or user) priorities, the flow of each incoming link
respecting FIFO over its movements: one blocked movement holds back the whole link. Movements
under a red signal are taken out of the link's FIFO set (they wait in their turn pocket) and do
not flow.

Vehicles are tracked by route (the commodity). Each link keeps a FIFO ring of *packets*, each
holding the vehicles of every route on the link that entered together. A link sends the first
``S`` vehicles of its ring (the window), split by movement through the routes' next links; the
node model's flows leave the window proportionally per movement, so each route is conserved
exactly and vehicles go where their route says. Origin queues hold the demand that has not yet
entered; they are never dropped.

Units are SI: seconds, metres, vehicles. Everything here is unvalidated and allocation-free: the
engine (``trafficsim.engines.macro``) builds the arrays.
"""

from typing import NamedTuple

import numpy as np

from ._jit import jit

__all__ = [
    "CTMNetwork",
    "CTMControls",
    "CTMState",
    "CTMRecord",
    "ctm_advance",
    "STATUS_OK",
    "STATUS_NEGATIVE",
    "STATUS_NAN",
]

STATUS_OK = 0
STATUS_NEGATIVE = 1
STATUS_NAN = 2

_SINK = -1
_EPS = 1e-12


class CTMNetwork(NamedTuple):
    """Static arrays of a compiled network (see ``trafficsim.engines.macro.compile_macro``)."""

    cell_off: np.ndarray      # (L+1,) int64: cells of link l are cell_off[l]:cell_off[l+1]
    alpha: np.ndarray         # (L,) v_f dt / dx  (<= 1, CFL)
    beta: np.ndarray          # (L,) w dt / dx
    qstep_lane: np.ndarray    # (L,) capacity per lane per step [veh]
    njam_lane: np.ndarray     # (L,) jam storage of one cell per lane [veh]
    ncrit_lane: np.ndarray    # (L,) critical storage of one cell per lane [veh]
    dx: np.ndarray            # (L,) cell length [m]
    prio: np.ndarray          # (L,) merge priority, < 0 means capacity-proportional
    slot_off: np.ndarray      # (L+1,) int64: route slots of link l
    slot_next: np.ndarray     # (G,) next slot on the route, -1 = leaves the network
    slot_out: np.ndarray      # (G,) local output index at the downstream node (source: its link)
    slot_move: np.ndarray     # (G,) movement id
    slot_route: np.ndarray    # (G,) route id
    src_slot_off: np.ndarray  # (S+1,) global slot ranges of the sources
    src_link: np.ndarray      # (S,) first link fed by the source
    node_in_off: np.ndarray   # (N+1,)
    node_in: np.ndarray       # inputs: link id, or L + source id
    node_out_off: np.ndarray  # (N+1,)
    node_out: np.ndarray      # outputs: link id, or -1 for the node's sink
    move_sig: np.ndarray      # (M,) signal id or -1
    move_win_off: np.ndarray  # (M+1,) green windows of movement m
    win_start: np.ndarray     # (W,) [s] within the cycle
    win_end: np.ndarray       # (W,)
    sig_cycle: np.ndarray     # (nsig,) [s]
    sig_offset: np.ndarray    # (nsig,) [s]
    pk_base: np.ndarray       # (L,) int64 base index of link l's packet amounts
    pk_min: np.ndarray        # (L,) a new packet starts once the tail holds this many vehicles
    n_packets: int            # ring size per link
    max_in: int
    max_out: int


class CTMControls(NamedTuple):
    """Arrays constant over one call of :func:`ctm_advance` (set by the engine per chunk)."""

    lanes: np.ndarray         # (L,) lanes in force (schedule minus blocking), float
    meter: np.ndarray         # (L,) cap on the link's discharge per step [veh], inf = none
    src_rate: np.ndarray      # (G,) arrivals per step into each source slot's queue [veh]


class CTMState(NamedTuple):
    """Evolving state and scratch space."""

    n: np.ndarray             # (C,) vehicles per cell
    pk_amt: np.ndarray        # packet amounts per route slot
    pk_total: np.ndarray      # (L*P,) packet totals
    pk_head: np.ndarray       # (L,) ring head
    pk_count: np.ndarray      # (L,) packets in use
    queue: np.ndarray         # (G,) origin-queue vehicles per source slot
    cum_in: np.ndarray        # (L,) vehicles that entered link l
    cum_out: np.ndarray       # (L,) vehicles that left link l
    route_in: np.ndarray      # (R,) vehicles of route r that entered the network
    route_out: np.ndarray     # (R,) vehicles of route r that left the network
    route_gen: np.ndarray     # (R,) vehicles of route r demanded so far
    y: np.ndarray             # scratch (C,) cell outflows this step
    link_inflow: np.ndarray   # scratch (L,)
    slot_flow: np.ndarray     # scratch (G,)
    green: np.ndarray         # scratch (M,) uint8
    s_io: np.ndarray          # scratch (max_in*max_out,)
    s_i: np.ndarray           # scratch (max_in,)
    a_i: np.ndarray           # scratch (max_in,)
    f_i: np.ndarray           # scratch (max_in,)
    act: np.ndarray           # scratch (max_in,) uint8
    r_o: np.ndarray           # scratch (max_out,)


class CTMRecord(NamedTuple):
    """Outputs aggregated per record interval (first axis)."""

    vkt: np.ndarray           # (T, L) vehicle-metres travelled
    vht: np.ndarray           # (T, L) vehicle-seconds spent
    cum_in: np.ndarray        # (T, L) snapshot at interval end
    cum_out: np.ndarray       # (T, L)
    queue_veh: np.ndarray     # (T, L) time-mean vehicles in congested cells
    queue_m: np.ndarray       # (T, L) snapshot: congested length from the downstream end [m]
    lanes: np.ndarray         # (T, L) lanes in force at interval end
    route_in: np.ndarray      # (T, R) snapshot
    route_out: np.ndarray     # (T, R)
    route_gen: np.ndarray     # (T, R)
    src_queue: np.ndarray     # (T, S) snapshot of each source's queue
    wait: np.ndarray          # (T,) origin-queue vehicle-seconds in the interval
    cell_veh: np.ndarray      # (T, C) time-mean vehicles per cell, or (0, C) when not recorded


@jit
def _congested(net, ctl, st, c, l):
    """Whether cell ``c`` of link ``l`` is on the congested branch of the diagram."""
    return st.n[c] > net.ncrit_lane[l] * ctl.lanes[l] * 1.0000001


@jit
def _sending(net, ctl, st, l):
    """Vehicles link ``l`` can send this step from its last cell."""
    c = net.cell_off[l + 1] - 1
    q = net.qstep_lane[l] * ctl.lanes[l]
    s = net.alpha[l] * st.n[c]
    if s > q:
        s = q
    if s > ctl.meter[l]:
        s = ctl.meter[l]
    return s


@jit
def _receiving(net, ctl, st, l):
    """Vehicles link ``l`` can receive this step into its first cell (never negative)."""
    c = net.cell_off[l]
    lanes = ctl.lanes[l]
    q = net.qstep_lane[l] * lanes
    r = net.beta[l] * (net.njam_lane[l] * lanes - st.n[c])
    if r > q:
        r = q
    if r < 0.0:
        r = 0.0
    return r


@jit
def _window_by_output(net, st, l, window, i, max_out):
    """Split the first ``window`` vehicles of link ``l``'s FIFO by local output into ``s_io``."""
    P = net.n_packets
    s0 = net.slot_off[l]
    m = net.slot_off[l + 1] - s0
    base = net.pk_base[l]
    left = window
    p = st.pk_head[l]
    for _ in range(st.pk_count[l]):
        tot = st.pk_total[l * P + p]
        if tot > _EPS:
            frac = 1.0 if tot <= left else left / tot
            off = base + p * m
            for j in range(m):
                a = st.pk_amt[off + j]
                if a > 0.0:
                    st.s_io[i * max_out + net.slot_out[s0 + j]] += a * frac
            left -= tot * frac
            if left <= _EPS:
                break
        p += 1
        if p == P:
            p = 0


@jit
def _take_from_window(net, st, l, window, ratio_of_output, i, max_out):
    """Remove from link ``l``'s window the share ``ratio_of_output[o]`` of each output's vehicles.

    The removed vehicles are added to ``st.slot_flow`` per route slot; returns the total removed.
    """
    P = net.n_packets
    s0 = net.slot_off[l]
    m = net.slot_off[l + 1] - s0
    base = net.pk_base[l]
    left = window
    p = st.pk_head[l]
    removed = 0.0
    for _ in range(st.pk_count[l]):
        idx = l * P + p
        tot = st.pk_total[idx]
        if tot > _EPS:
            frac = 1.0 if tot <= left else left / tot
            off = base + p * m
            took = 0.0
            for j in range(m):
                a = st.pk_amt[off + j]
                if a > 0.0:
                    r = ratio_of_output[i * max_out + net.slot_out[s0 + j]]
                    if r > 0.0:
                        d = a * frac * r
                        st.pk_amt[off + j] = a - d
                        st.slot_flow[s0 + j] += d
                        took += d
            st.pk_total[idx] = tot - took
            removed += took
            left -= tot * frac
            if left <= _EPS:
                break
        p += 1
        if p == P:
            p = 0
    # pop packets that emptied at the head, folding any rounding residue into the next one
    while st.pk_count[l] > 1:
        h = st.pk_head[l]
        if st.pk_total[l * P + h] > 1e-9:
            break
        nxt = h + 1
        if nxt == P:
            nxt = 0
        offh = base + h * m
        offn = base + nxt * m
        res = 0.0
        for j in range(m):
            st.pk_amt[offn + j] += st.pk_amt[offh + j]
            res += st.pk_amt[offh + j]
            st.pk_amt[offh + j] = 0.0
        st.pk_total[l * P + nxt] += res
        st.pk_total[l * P + h] = 0.0
        st.pk_head[l] = nxt
        st.pk_count[l] -= 1
    return removed


@jit
def _push_inflow(net, st, l):
    """Append this step's inflow of link ``l`` (in ``slot_flow``) to its packet ring."""
    P = net.n_packets
    s0 = net.slot_off[l]
    m = net.slot_off[l + 1] - s0
    total = 0.0
    for j in range(m):
        total += st.slot_flow[s0 + j]
    if total <= 0.0:
        return
    base = net.pk_base[l]
    cnt = st.pk_count[l]
    if cnt > 0:
        tail = st.pk_head[l] + cnt - 1
        if tail >= P:
            tail -= P
        if cnt == P or st.pk_total[l * P + tail] < net.pk_min[l]:
            off = base + tail * m
            for j in range(m):
                st.pk_amt[off + j] += st.slot_flow[s0 + j]
                st.slot_flow[s0 + j] = 0.0
            st.pk_total[l * P + tail] += total
            return
        tail += 1
        if tail == P:
            tail = 0
    else:
        tail = st.pk_head[l]
    off = base + tail * m
    for j in range(m):
        st.pk_amt[off + j] = st.slot_flow[s0 + j]
        st.slot_flow[s0 + j] = 0.0
    st.pk_total[l * P + tail] = total
    st.pk_count[l] = cnt + 1


@jit
def _node_model(net, ctl, st, nd, capacity_drop):
    """Tampere et al. (2011) node model at node ``nd``; moves vehicles between links."""
    L = net.alpha.shape[0]
    max_out = net.max_out
    i0 = net.node_in_off[nd]
    ni = net.node_in_off[nd + 1] - i0
    o0 = net.node_out_off[nd]
    no = net.node_out_off[nd + 1] - o0
    if ni == 0:
        return
    s_io = st.s_io
    for k in range(ni * max_out):
        s_io[k] = 0.0
    # --- demand per movement
    for i in range(ni):
        inp = net.node_in[i0 + i]
        if inp < L:
            s = _sending(net, ctl, st, inp)
            if s > 0.0:
                _window_by_output(net, st, inp, s, i, max_out)
            st.a_i[i] = net.prio[inp] if net.prio[inp] >= 0.0 else net.qstep_lane[inp] * ctl.lanes[inp]
            st.s_i[i] = s
            # red movements wait in their turn pocket: drop them from the FIFO set
            g0 = net.slot_off[inp]
            g1 = net.slot_off[inp + 1]
            for g in range(g0, g1):
                if st.green[net.slot_move[g]] == 0:
                    s_io[i * max_out + net.slot_out[g]] = 0.0
        else:
            src = inp - L
            g0 = net.src_slot_off[src]
            g1 = net.src_slot_off[src + 1]
            q = 0.0
            o = -1
            for g in range(g0, g1):
                q += st.queue[g]
                o = net.slot_out[g]
            if o >= 0 and st.green[net.slot_move[g0]] != 0:
                s_io[i * max_out + o] = q
            lk = net.src_link[src]
            st.a_i[i] = net.qstep_lane[lk] * ctl.lanes[lk]
            st.s_i[i] = q
    # --- supply per output
    for o in range(no):
        out = net.node_out[o0 + o]
        st.r_o[o] = np.inf if out == _SINK else _receiving(net, ctl, st, out)
        if capacity_drop > 0.0 and out != _SINK and not _congested(net, ctl, st, net.cell_off[out], out):
            for i in range(ni):
                inp = net.node_in[i0 + i]
                if inp < L and s_io[i * max_out + o] > 0.0 and _congested(net, ctl, st, net.cell_off[inp + 1] - 1, inp):
                    st.r_o[o] *= 1.0 - capacity_drop
                    break
    # --- incremental transfer
    for i in range(ni):
        tot = 0.0
        for o in range(no):
            tot += s_io[i * max_out + o]
        st.s_i[i] = tot
        st.f_i[i] = 0.0
        st.act[i] = 1 if (tot > _EPS and st.a_i[i] > 0.0) else 0
    while True:
        best = np.inf
        ostar = -1
        for o in range(no):
            w = 0.0
            for i in range(ni):
                if st.act[i] and s_io[i * max_out + o] > 0.0:
                    w += st.a_i[i] * s_io[i * max_out + o] / st.s_i[i]
            if w > 0.0:
                a = max(st.r_o[o], 0.0) / w
                if a < best:
                    best = a
                    ostar = o
        if ostar < 0:
            break
        constrained_by_demand = False
        for i in range(ni):
            if st.act[i] and s_io[i * max_out + ostar] > 0.0 and st.s_i[i] <= best * st.a_i[i]:
                constrained_by_demand = True
                st.f_i[i] = st.s_i[i]
                st.act[i] = 0
                for o in range(no):
                    st.r_o[o] -= s_io[i * max_out + o]
        if constrained_by_demand:
            continue
        for i in range(ni):
            if st.act[i] and s_io[i * max_out + ostar] > 0.0:
                f = best * st.a_i[i]
                st.f_i[i] = f
                st.act[i] = 0
                for o in range(no):
                    st.r_o[o] -= f * s_io[i * max_out + o] / st.s_i[i]
    # inputs left active only feed sinks (infinite supply): they send all they have
    for i in range(ni):
        if st.act[i]:
            st.f_i[i] = st.s_i[i]
            st.act[i] = 0
    # --- move vehicles: s_io becomes the ratio of each movement's demand that flows (FIFO: one
    # ratio per input)
    for i in range(ni):
        inp = net.node_in[i0 + i]
        ratio = st.f_i[i] / st.s_i[i] if st.s_i[i] > _EPS else 0.0
        if ratio > 1.0:
            ratio = 1.0
        for o in range(no):
            k = i * max_out + o
            s_io[k] = ratio if s_io[k] > 0.0 else 0.0
        if inp < L:
            if ratio > 0.0:
                # window = what the link could send; remove the flowing share of each movement
                window = _sending(net, ctl, st, inp)
                moved = _take_from_window(net, st, inp, window, s_io, i, max_out)
                st.y[net.cell_off[inp + 1] - 1] = moved
                st.cum_out[inp] += moved
        elif ratio > 0.0:
            src = inp - L
            for g in range(net.src_slot_off[src], net.src_slot_off[src + 1]):
                d = st.queue[g] * ratio
                st.queue[g] -= d
                st.slot_flow[g] += d
    # --- hand moved vehicles to the next link of their route (or out of the network)
    for i in range(ni):
        inp = net.node_in[i0 + i]
        if inp < L:
            g0 = net.slot_off[inp]
            g1 = net.slot_off[inp + 1]
        else:
            g0 = net.src_slot_off[inp - L]
            g1 = net.src_slot_off[inp - L + 1]
        for g in range(g0, g1):
            d = st.slot_flow[g]
            if d > 0.0:
                st.slot_flow[g] = 0.0
                nxt = net.slot_next[g]
                r = net.slot_route[g]
                if inp >= L:
                    st.route_in[r] += d
                if nxt < 0:
                    st.route_out[r] += d
                else:
                    st.slot_flow[nxt] += d
    for o in range(no):
        out = net.node_out[o0 + o]
        if out != _SINK:
            total = 0.0
            for g in range(net.slot_off[out], net.slot_off[out + 1]):
                total += st.slot_flow[g]
            if total > 0.0:
                st.link_inflow[out] = total
                st.cum_in[out] += total
                _push_inflow(net, st, out)


@jit
def _update_green(net, st, t):
    for m in range(net.move_sig.shape[0]):
        s = net.move_sig[m]
        if s < 0:
            st.green[m] = 1
            continue
        cyc = net.sig_cycle[s]
        tc = (t - net.sig_offset[s]) % cyc
        g = 0
        for w in range(net.move_win_off[m], net.move_win_off[m + 1]):
            if net.win_start[w] <= tc < net.win_end[w]:
                g = 1
                break
        st.green[m] = g


@jit
def ctm_advance(k0, k1, dt, steps_per_record, capacity_drop, net, ctl, st, rec):
    """Advance the network from step ``k0`` to ``k1`` (exclusive), time step ``dt`` [s].

    Each step: demand joins the origin queues; cell flows inside links; the node model at every
    node (which also moves vehicles between links and out of the network); cell update; and
    accumulation into ``rec`` row ``k // steps_per_record``. Returns a status code.
    """
    L = net.alpha.shape[0]
    N = net.node_in_off.shape[0] - 1
    G = st.queue.shape[0]
    record_cells = rec.cell_veh.shape[0] > 0
    has_signals = net.sig_cycle.shape[0] > 0
    if not has_signals:
        _update_green(net, st, 0.0)
    for k in range(k0, k1):
        t = k * dt
        row = k // steps_per_record
        if has_signals:
            _update_green(net, st, t)
        # demand arrives in the origin queues (waiting counted from the step after arrival)
        waiting = 0.0
        for g in range(net.slot_off[L], G):
            waiting += st.queue[g]
            a = ctl.src_rate[g]
            if a > 0.0:
                st.queue[g] += a
                st.route_gen[net.slot_route[g]] += a
        rec.wait[row] += waiting * dt
        # phase 1: flows between cells inside links, from the state at the start of the step
        for l in range(L):
            lanes = ctl.lanes[l]
            q = net.qstep_lane[l] * lanes
            njam = net.njam_lane[l] * lanes
            ncrit = net.ncrit_lane[l] * lanes * 1.0000001
            a = net.alpha[l]
            b = net.beta[l]
            c1 = net.cell_off[l + 1] - 1
            for c in range(net.cell_off[l], c1):
                s = a * st.n[c]
                if s > q:
                    s = q
                r = b * (njam - st.n[c + 1])
                if r > q:
                    r = q
                if r < 0.0:
                    r = 0.0
                if capacity_drop > 0.0 and st.n[c] > ncrit and st.n[c + 1] <= ncrit:
                    r *= 1.0 - capacity_drop
                st.y[c] = s if s < r else r
            st.y[c1] = 0.0
            st.link_inflow[l] = 0.0
        # phase 2: node model everywhere (reads only the start-of-step cell state)
        for nd in range(N):
            _node_model(net, ctl, st, nd, capacity_drop)
        # phase 3: update cells and accumulate the record
        for l in range(L):
            c0 = net.cell_off[l]
            c1 = net.cell_off[l + 1]
            dxl = net.dx[l]
            ncrit = net.ncrit_lane[l] * ctl.lanes[l] * 1.05
            inflow = st.link_inflow[l]
            veh = 0.0
            moved = 0.0
            queued = 0.0
            for c in range(c0, c1):
                out = st.y[c]
                nc = st.n[c] + inflow - out
                if nc < 0.0:
                    if nc < -1e-9:
                        return STATUS_NEGATIVE
                    nc = 0.0
                st.n[c] = nc
                inflow = out
                veh += nc
                moved += out
                if nc > ncrit:
                    queued += nc
                if record_cells:
                    rec.cell_veh[row, c] += nc / steps_per_record
            rec.vkt[row, l] += moved * dxl
            rec.vht[row, l] += veh * dt
            rec.queue_veh[row, l] += queued / steps_per_record
        if (k + 1) % steps_per_record == 0 or k + 1 == k1:
            _snapshot(net, ctl, st, rec, row)
            for l in range(L):
                if not (st.n[net.cell_off[l]] == st.n[net.cell_off[l]]):
                    return STATUS_NAN
    return STATUS_OK


@jit
def _snapshot(net, ctl, st, rec, row):
    L = net.alpha.shape[0]
    for l in range(L):
        rec.cum_in[row, l] = st.cum_in[l]
        rec.cum_out[row, l] = st.cum_out[l]
        rec.lanes[row, l] = ctl.lanes[l]
        ncrit = net.ncrit_lane[l] * ctl.lanes[l] * 1.05
        qlen = 0.0
        for c in range(net.cell_off[l + 1] - 1, net.cell_off[l] - 1, -1):
            if st.n[c] > ncrit:
                qlen += net.dx[l]
            else:
                break
        rec.queue_m[row, l] = qlen
    for r in range(st.route_in.shape[0]):
        rec.route_in[row, r] = st.route_in[r]
        rec.route_out[row, r] = st.route_out[r]
        rec.route_gen[row, r] = st.route_gen[r]
    S = net.src_link.shape[0]
    for s in range(S):
        q = 0.0
        for g in range(net.src_slot_off[s], net.src_slot_off[s + 1]):
            q += st.queue[g]
        rec.src_queue[row, s] = q
