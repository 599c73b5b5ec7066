"""The microscopic time loop: IDM car-following and MOBIL lane changing on a lane-level network.

This module owns the state layout and one step of the microscopic engine. Vehicles live in a
pool of slots (struct of arrays, about 100 bytes per vehicle). Every lane keeps its vehicles in
a doubly linked list sorted by position: ``lane_head`` is the most downstream vehicle, ``prv``
points upstream (to the follower), ``nxt`` downstream (to the leader). ``x`` is the front
bumper's distance from the link start [m].

One step of ``dt`` runs these passes, each over all lanes:

1. signal states per movement (green, amber, red) from the fixed-time windows; arrivals join
   the origin queues (drawn in Python from the seed and passed in);
2. node permissions: the lane a vehicle would enter at the end of its link (``tgt``), from the
   lane connectors in force, the signal (amber: go only when stopping needs more than
   ``amber_decel``) and lane closures; vehicles that must change lane near the end of their
   lane get a courteous follower in the target lane (``yld``, the zipper);
3. lane changes by MOBIL (:mod:`trafficsim.kernels.mobil`), alternately to the left and to the
   right, with a two-pointer sweep over each pair of adjacent lanes; mandatory changes (route,
   lane end, closed lane, blocked lane, bus stop) keep only the safety criterion;
4. IDM accelerations (:mod:`trafficsim.kernels.idm`) against the nearest of: the same-lane
   leader, a blocked segment, a bus's own stop, the stop line when the node is closed, a
   merging vehicle closer to the node on another feeder lane of the same target lane
   (zipper), and the tail of the downstream lane (looking ahead up to three links);
5. ballistic update; the new position never passes the leader's old rear (a last-resort clamp
   that is counted in ``counters[C_CLAMP]``: it stays 0 when the IDM resolves every situation);
6. node crossings and exits at the destination; buses dwell at their stops;
7. insertion from origin queues at the largest speed the downstream allows, and only when the
   inserted vehicle is no denser than the capacity state of the IDM, so sources do not lose
   capacity; otherwise the vehicle waits in the origin queue.

Everything is in SI units; nothing is allocated here. The engine
(:mod:`trafficsim.engines.micro`) compiles the arrays and draws the random numbers.
"""

from typing import NamedTuple

import numpy as np

from ._jit import jit
from .idm import FREE_GAP, ballistic_step, equilibrium_gap_scalar, idm_acceleration, max_speed_for_gap
from .mobil import mobil_incentive

__all__ = [
    "MicroNet", "MicroControls", "MicroState", "MicroRecord", "micro_advance",
    "STATUS_OK", "STATUS_POOL", "STATUS_NAN",
    "C_INSIDE", "C_CLAMP", "C_UID", "C_LC", "C_ENTERED", "C_EXITED",
]

STATUS_OK = 0
STATUS_POOL = 1
STATUS_NAN = 2

# indices of MicroNet.par
P_DELTA, P_POLITE, P_BSAFE, P_THR, P_BIAS, P_MINGAP, P_COOL, P_FREEDIST, P_YIELD, P_LOOK, P_AMBER, P_QFRAC, P_BINS = range(13)
# indices of MicroState.counters
C_INSIDE, C_CLAMP, C_UID, C_LC, C_ENTERED, C_EXITED = range(6)

RED = 0
GREEN = 1
AMBER = 2
SINK = -2
BLOCKED = -1
UNKNOWN = -3
F_COMMITTED = 1
F_BAY = 2


class MicroNet(NamedTuple):
    """Static arrays of a compiled scenario (see ``trafficsim.engines.micro.compile_micro``)."""

    link_len: np.ndarray      # (L,) [m]
    link_lane0: np.ndarray    # (L+1,) global lanes of link l: link_lane0[l]:link_lane0[l+1]
    lane_link: np.ndarray     # (NL,)
    lane_idx: np.ndarray      # (NL,) 0 = rightmost
    cls_len: np.ndarray       # (C,) vehicle length [m]
    cls_s0: np.ndarray        # (C,) jam distance [m]
    cls_a: np.ndarray         # (C,) max acceleration [m/s2]
    cls_b: np.ndarray         # (C,) comfortable deceleration [m/s2]
    cl_v0: np.ndarray         # (C*L,) desired speed of class c on link l [m/s]
    cl_T: np.ndarray          # (C*L,) time gap [s]
    cl_vcrit: np.ndarray      # (C*L,) speed of the capacity state [m/s]
    route_cls: np.ndarray     # (R,)
    route_off: np.ndarray     # (R+1,) slots (route, position) of route r
    route_src: np.ndarray     # (R,) source index, -1 for initial-vehicle routes
    slot_link: np.ndarray     # (NS,)
    slot_route: np.ndarray    # (NS,)
    slot_next: np.ndarray     # (NS,) next slot, -1 = destination (cyclic routes wrap)
    slot_move: np.ndarray     # (NS,) movement at the link end, -1 at the destination
    move_sig: np.ndarray      # (M,) signal or -1
    move_win_off: np.ndarray  # (M+1,)
    win_start: np.ndarray     # (W,) green start within the cycle [s]
    win_end: np.ndarray       # (W,) green end [s]
    win_amber: np.ndarray     # (W,) amber end [s]
    sig_cycle: np.ndarray     # (nsig,) [s]
    sig_offset: np.ndarray    # (nsig,) [s]
    feed_off: np.ndarray      # (NL+1,) lanes that may feed lane j across a node
    feed_lane: np.ndarray
    obs_off: np.ndarray       # (NL+1,) blocked segments of lane j
    obs_pos: np.ndarray       # segment start [m]
    obs_end: np.ndarray       # segment end [m]
    stop_off: np.ndarray      # (L+1,) bus stops of link l, by position
    stop_pos: np.ndarray      # where a bus's front stops [m]
    stop_bay: np.ndarray      # 1 = bay (off the running lane)
    det_off: np.ndarray       # (L+1,) point detectors of link l
    det_pos: np.ndarray       # [m]
    det_id: np.ndarray
    src_link: np.ndarray      # (S,) first link of source s
    par: np.ndarray           # model parameters, indices P_*
    maxl: int                 # largest lane count of any link


class MicroControls(NamedTuple):
    """Arrays constant over one call of :func:`micro_advance` (rebuilt by the engine per chunk)."""

    lane_open: np.ndarray     # (NL,) uint8
    slot_lo: np.ndarray       # (NS,) lowest lane index leading to the next link (lo > hi: none)
    slot_hi: np.ndarray       # (NS,)
    slot_map: np.ndarray      # (NS*maxl,) lane index -> global target lane, -1 = not connected
    obs_active: np.ndarray    # (NO,) uint8
    arrivals: np.ndarray      # (steps in chunk, R) vehicles joining each route's origin queue
    dwell: np.ndarray         # (NSTOP, P) dwell times [s] drawn for this chunk
    lanes_rec: np.ndarray     # (L,) lanes in force, for the record


class MicroState(NamedTuple):
    """Evolving state; per-vehicle arrays have the pool size N."""

    x: np.ndarray
    v: np.ndarray
    acc: np.ndarray
    lim: np.ndarray
    dwell: np.ndarray
    lc_until: np.ndarray
    cls: np.ndarray
    slot: np.ndarray
    lane: np.ndarray
    nxt: np.ndarray
    prv: np.ndarray
    tgt: np.ndarray
    yld: np.ndarray
    stop_next: np.ndarray
    flags: np.ndarray
    uid: np.ndarray
    free: np.ndarray          # (N,) stack of free slots
    n_free: np.ndarray        # (1,)
    lane_head: np.ndarray     # (NL,)
    lane_tail: np.ndarray     # (NL,)
    qbuf: np.ndarray          # origin-queue rings of route ids
    q_off: np.ndarray         # (S+1,)
    q_head: np.ndarray        # (S,)
    q_len: np.ndarray         # (S,)
    bay: np.ndarray           # (N,) buses dwelling in bays
    n_bay: np.ndarray         # (1,)
    cum_in: np.ndarray        # (L,)
    cum_out: np.ndarray       # (L,)
    sink_exits: np.ndarray    # (L,) vehicles that left the network at the end of link l
    route_gen: np.ndarray     # (R,)
    route_in: np.ndarray      # (R,)
    route_out: np.ndarray     # (R,)
    move_state: np.ndarray    # (M,) uint8
    stop_used: np.ndarray     # (NSTOP,) dwell draws used in this chunk
    counters: np.ndarray      # int64, indices C_*
    lc_v: np.ndarray          # scratch (N,)
    lc_f: np.ndarray
    lc_l: np.ndarray


class MicroRecord(NamedTuple):
    """Outputs per record interval (first axis); vehicle-metres and vehicle-seconds are SI."""

    vkt: np.ndarray           # (T, L) vehicle-metres
    vht: np.ndarray           # (T, L) vehicle-seconds
    cum_in: np.ndarray        # (T, L) snapshot
    cum_out: np.ndarray       # (T, L)
    queue_vs: np.ndarray      # (T, L) vehicle-seconds in the queued state
    queue_m: np.ndarray       # (T, L) snapshot: queue length from the downstream end [m]
    lanes: np.ndarray         # (T, L)
    route_in: np.ndarray      # (T, R)
    route_out: np.ndarray     # (T, R)
    route_gen: np.ndarray     # (T, R)
    src_queue: np.ndarray     # (T, S)
    wait: np.ndarray          # (T,) origin-queue vehicle-seconds
    det_count: np.ndarray     # (T, D, maxl)
    det_occ: np.ndarray       # (T, D, maxl) seconds occupied
    det_vsum: np.ndarray      # (T, D, maxl) sum of crossing speeds [m/s]
    traj_x: np.ndarray        # (K, V) float32, NaN when absent
    traj_v: np.ndarray        # (K, V)
    traj_link: np.ndarray     # (K, V) int32, -1 when absent
    traj_lane: np.ndarray     # (K, V) int8
    veh_cls: np.ndarray       # (V,) class of vehicle uid (first V vehicles)
    veh_route: np.ndarray     # (V,) route of vehicle uid
    veh_exit: np.ndarray      # (V,) link where vehicle uid left the network, -1 if it did not


# ---------------------------------------------------------------------------- list helpers
@jit
def _unlink(st, lane, w):
    p = st.prv[w]
    n = st.nxt[w]
    if p >= 0:
        st.nxt[p] = n
    else:
        st.lane_tail[lane] = n
    if n >= 0:
        st.prv[n] = p
    else:
        st.lane_head[lane] = p
    st.prv[w] = -1
    st.nxt[w] = -1


@jit
def _link_between(st, lane, w, fol, lead):
    """Insert ``w`` into ``lane`` between follower ``fol`` and leader ``lead`` (-1: none)."""
    st.prv[w] = fol
    st.nxt[w] = lead
    if fol >= 0:
        st.nxt[fol] = w
    else:
        st.lane_tail[lane] = w
    if lead >= 0:
        st.prv[lead] = w
    else:
        st.lane_head[lane] = w
    st.lane[w] = lane


@jit
def _link_sorted(st, lane, w):
    """Insert ``w`` at its position in ``lane``, searching from the tail (entries arrive there)."""
    fol = -1
    p = st.lane_tail[lane]
    while p >= 0 and st.x[p] <= st.x[w]:
        fol = p
        p = st.nxt[p]
    _link_between(st, lane, w, fol, p)


# ---------------------------------------------------------------------------- small queries
@jit
def _accel(net, st, w, link, gap, v_lead, v):
    c = st.cls[w]
    j = c * net.link_len.shape[0] + link
    return idm_acceleration(v, gap, v - v_lead, net.cl_v0[j], net.cl_T[j], net.cls_s0[c], net.cls_a[c],
                            net.cls_b[c], net.par[P_DELTA])


@jit
def _obstacle_gap(net, ctl, lane, x):
    """Distance [m] from front position ``x`` to the nearest active blocked segment ahead."""
    g = FREE_GAP
    for o in range(net.obs_off[lane], net.obs_off[lane + 1]):
        if ctl.obs_active[o] and net.obs_pos[o] >= x - 1e-9:
            d = net.obs_pos[o] - x
            if d < g:
                g = d
    return g


@jit
def _blocked(net, ctl, lane, x0, x1):
    """Whether an active blocked segment of ``lane`` overlaps ``[x0, x1]``."""
    for o in range(net.obs_off[lane], net.obs_off[lane + 1]):
        if ctl.obs_active[o] and net.obs_pos[o] < x1 and net.obs_end[o] > x0:
            return True
    return False


@jit
def _update_signals(net, st, t):
    for m in range(net.move_sig.shape[0]):
        s = net.move_sig[m]
        if s < 0:
            st.move_state[m] = GREEN
            continue
        tc = (t - net.sig_offset[s]) % net.sig_cycle[s]
        state = RED
        for w in range(net.move_win_off[m], net.move_win_off[m + 1]):
            if net.win_start[w] <= tc < net.win_end[w]:
                state = GREEN
                break
            if net.win_end[w] <= tc < net.win_amber[w]:
                state = AMBER
        st.move_state[m] = state


@jit
def _crossing(net, ctl, st, slot, lane, x, v, committed):
    """Lane entered at the end of the link (>= 0), ``SINK`` at the destination, or ``BLOCKED``."""
    if net.slot_next[slot] < 0:
        return SINK
    idx = net.lane_idx[lane]
    if idx < ctl.slot_lo[slot] or idx > ctl.slot_hi[slot]:
        return BLOCKED
    tg = ctl.slot_map[slot * net.maxl + idx]
    if tg < 0 or ctl.lane_open[tg] == 0:
        return BLOCKED
    state = st.move_state[net.slot_move[slot]]
    if state == GREEN or committed:
        return tg
    if state == AMBER:
        d = net.link_len[net.lane_link[lane]] - x
        if d < 1e-3:
            d = 1e-3
        if v * v > 2.0 * net.par[P_AMBER] * d:
            return tg
    return BLOCKED


@jit
def _ahead(net, ctl, st, w, slot, lane, x, tg):
    """Gap [m] and speed [m/s] of what a vehicle at front ``x`` in ``lane`` meets past its link's
    vehicles: the stop line, a zipper partner on another feeder lane, downstream tails."""
    dist = net.link_len[net.lane_link[lane]] - x
    if tg == SINK:
        return FREE_GAP, 0.0
    if tg == BLOCKED:
        return dist, 0.0
    best = FREE_GAP
    bv = 0.0
    # zipper: a vehicle on another feeder of the same target lane that is closer to the node
    for f in range(net.feed_off[tg], net.feed_off[tg + 1]):
        fl = net.feed_lane[f]
        if fl == lane:
            continue
        flen = net.link_len[net.lane_link[fl]]
        u = st.lane_head[fl]
        while u >= 0:
            du = flen - st.x[u]
            if du > dist or (du == dist and u >= w):
                break
            if st.tgt[u] == tg:
                g = dist - du - net.cls_len[st.cls[u]]
                if g < best:
                    best = g
                    bv = st.v[u]
            u = st.prv[u]
    s_on = net.slot_next[slot]
    lane_on = tg
    look = net.par[P_LOOK]
    for _ in range(3):
        tail = st.lane_tail[lane_on]
        cand = FREE_GAP
        cv = 0.0
        if tail >= 0:
            cand = dist + st.x[tail] - net.cls_len[st.cls[tail]]
            cv = st.v[tail]
        og = _obstacle_gap(net, ctl, lane_on, 0.0)
        if og < FREE_GAP and dist + og < cand:
            cand = dist + og
            cv = 0.0
        if cand < FREE_GAP:
            if cand < best:
                best = cand
                bv = cv
            break
        dist += net.link_len[net.slot_link[s_on]]
        s_nx = net.slot_next[s_on]
        if dist > look or s_nx < 0:
            break
        lo = ctl.slot_lo[s_on]
        hi = ctl.slot_hi[s_on]
        idx = net.lane_idx[lane_on]
        if idx < lo:
            idx = lo
        if idx > hi:
            idx = hi
        t2 = ctl.slot_map[s_on * net.maxl + idx] if lo <= hi else -1
        if t2 < 0 or ctl.lane_open[t2] == 0 or st.move_state[net.slot_move[s_on]] != GREEN:
            if dist < best:
                best = dist
                bv = 0.0
            break
        s_on = s_nx
        lane_on = t2
    return best, bv


@jit
def _front(net, ctl, st, w, lane, x, lead, tg, use_yield):
    """Gap [m] and speed [m/s] of the nearest constraint ahead of vehicle ``w`` placed at ``x`` in
    ``lane`` with same-lane leader ``lead`` and node permission ``tg`` (``UNKNOWN``: compute)."""
    if tg == UNKNOWN:
        tg = _crossing(net, ctl, st, st.slot[w], lane, x, st.v[w], st.flags[w] & F_COMMITTED)
    if lead >= 0:
        g = st.x[lead] - net.cls_len[st.cls[lead]] - x
        vl = st.v[lead]
        if tg == BLOCKED:
            d = net.link_len[net.lane_link[lane]] - x
            if d < g:
                g = d
                vl = 0.0
    else:
        g, vl = _ahead(net, ctl, st, w, st.slot[w], lane, x, tg)
    og = _obstacle_gap(net, ctl, lane, x)
    if og < g:
        g = og
        vl = 0.0
    s = st.stop_next[w]
    if s >= 0:
        # the bus's front halts at the stop position: the IDM keeps s0 to a standing obstacle
        d = net.stop_pos[s] + net.cls_s0[st.cls[w]] - x
        if d < g:
            g = d if d > 0.0 else 0.0
            vl = 0.0
    if use_yield:
        y = st.yld[w]
        if y >= 0:
            d = st.x[y] - net.cls_len[st.cls[y]] - x
            if 0.0 <= d < g:
                g = d
                vl = st.v[y]
    return g, vl


@jit
def _mandatory_dir(net, ctl, st, w, lane, x):
    """+1 / -1 when vehicle ``w`` must move left / right (route, closure, blockage, bus stop), else 0."""
    slot = st.slot[w]
    idx = net.lane_idx[lane]
    lo = ctl.slot_lo[slot]
    hi = ctl.slot_hi[slot]
    if lo <= hi:
        if idx < lo:
            return 1
        if idx > hi:
            return -1
    if st.stop_next[w] >= 0 and idx > 0:
        return -1
    link = net.lane_link[lane]
    og = _obstacle_gap(net, ctl, lane, x)
    if og < net.par[P_YIELD]:
        n = net.link_lane0[link + 1] - net.link_lane0[link]
        reach = x + og + 30.0
        if idx + 1 < n and ctl.lane_open[lane + 1] and not _blocked(net, ctl, lane + 1, x - 20.0, reach):
            return 1
        if idx >= 1 and ctl.lane_open[lane - 1] and not _blocked(net, ctl, lane - 1, x - 20.0, reach):
            return -1
    return 0


@jit
def _swap(net, ctl, st, w, lane, j, md):
    """Two standing vehicles side by side, each needing the other's lane, trade places.

    Without this, a vehicle waiting at the end of its lane for the lane of a neighbour that
    waits for its lane would deadlock both (they see each other as the blocking vehicle)."""
    if st.v[w] > 0.5 or ctl.lane_open[j] == 0:
        return False
    lw = net.cls_len[st.cls[w]]
    u = st.lane_head[j]
    while u >= 0 and st.x[u] - net.cls_len[st.cls[u]] >= st.x[w]:
        u = st.prv[u]
    if u < 0 or st.x[u] <= st.x[w] - lw or st.v[u] > 0.5 or st.dwell[u] > 0.0:
        return False
    if _mandatory_dir(net, ctl, st, u, j, st.x[u]) != -md:
        return False
    lu = net.cls_len[st.cls[u]]
    a = st.nxt[u]
    b = st.prv[u]
    if (a >= 0 and st.x[a] - net.cls_len[st.cls[a]] < st.x[w]) or (b >= 0 and st.x[w] - lw < st.x[b]):
        return False
    a = st.nxt[w]
    b = st.prv[w]
    if (a >= 0 and st.x[a] - net.cls_len[st.cls[a]] < st.x[u]) or (b >= 0 and st.x[u] - lu < st.x[b]):
        return False
    fw = st.prv[w]
    lw_ = st.nxt[w]
    fu = st.prv[u]
    lu_ = st.nxt[u]
    _unlink(st, lane, w)
    _unlink(st, j, u)
    _link_between(st, j, w, fu, lu_)
    _link_between(st, lane, u, fw, lw_)
    for q in (w, u):
        st.tgt[q] = _crossing(net, ctl, st, st.slot[q], st.lane[q], st.x[q], st.v[q], 0)
        st.yld[q] = -1
    st.counters[C_LC] += 2
    return True


# ---------------------------------------------------------------------------- passes
@jit
def _permissions(net, ctl, st):
    """Pass 2: node permission of every vehicle, then the courteous followers (zipper)."""
    NL = net.lane_link.shape[0]
    for lane in range(NL):
        w = st.lane_head[lane]
        while w >= 0:
            committed = st.flags[w] & F_COMMITTED
            tg = _crossing(net, ctl, st, st.slot[w], lane, st.x[w], st.v[w], committed)
            if tg >= 0 and not committed and st.move_state[net.slot_move[st.slot[w]]] != GREEN:
                st.flags[w] |= F_COMMITTED
            st.tgt[w] = tg
            st.yld[w] = -1
            w = st.prv[w]
    for lane in range(NL):
        link = net.lane_link[lane]
        length = net.link_len[link]
        has_obs = net.obs_off[lane + 1] > net.obs_off[lane]
        w = st.lane_head[lane]
        while w >= 0:
            near = length - st.x[w] < net.par[P_YIELD]
            if not near and has_obs:
                near = _obstacle_gap(net, ctl, lane, st.x[w]) < net.par[P_YIELD]
            if not near:
                w = st.prv[w]
                continue
            md = _mandatory_dir(net, ctl, st, w, lane, st.x[w])
            nw = st.prv[w]
            if md != 0 and st.dwell[w] <= 0.0 and _swap(net, ctl, st, w, lane, lane + md, md):
                w = nw
                continue
            if md != 0 and st.dwell[w] <= 0.0:
                j = lane + md
                rear = st.x[w] - net.cls_len[st.cls[w]]
                f = st.lane_head[j]
                while f >= 0 and st.x[f] > rear - 0.5 * net.cls_s0[st.cls[f]]:
                    f = st.prv[f]
                if f >= 0:
                    a_f = _accel(net, st, f, link, rear - st.x[f], st.v[w], st.v[f])
                    if a_f >= -net.cls_b[st.cls[f]]:
                        y = st.yld[f]
                        if y < 0 or st.x[w] < st.x[y]:
                            st.yld[f] = w
            w = st.prv[w]


@jit
def _consider(net, ctl, st, w, src, dst, d, fol, lead, t):
    """MOBIL decision for vehicle ``w`` moving from lane ``src`` to ``dst`` (direction ``d``)."""
    if st.dwell[w] > 0.0 or t < st.lc_until[w]:
        return False
    xw = st.x[w]
    md = _mandatory_dir(net, ctl, st, w, src, xw)
    if md != 0 and md != d:
        return False
    link = net.lane_link[src]
    slot = st.slot[w]
    if md == 0:
        if st.stop_next[w] >= 0:
            return False
        di = net.lane_idx[dst]
        if (di < ctl.slot_lo[slot] or di > ctl.slot_hi[slot]) and net.link_len[link] - xw < net.par[P_FREEDIST]:
            return False
    lw = net.cls_len[st.cls[w]]
    mg = net.par[P_MINGAP]
    if lead >= 0 and st.x[lead] - net.cls_len[st.cls[lead]] - xw < mg:
        return False
    if fol >= 0 and xw - lw - st.x[fol] < mg:
        return False
    if _blocked(net, ctl, dst, xw - lw - mg, xw + mg):
        return False
    vw = st.v[w]
    bsafe = net.par[P_BSAFE]
    g2, vl2 = _front(net, ctl, st, w, dst, xw, lead, UNKNOWN, False)
    acn = _accel(net, st, w, link, g2, vl2, vw)
    an_new = 0.0
    if fol >= 0:
        an_new = _accel(net, st, fol, link, xw - lw - st.x[fol], vw, st.v[fol])
        if an_new < -bsafe:
            return False
    if md != 0:
        return acn >= -bsafe or vw < 1.0
    if acn < -bsafe:
        return False
    g, vl = _front(net, ctl, st, w, src, xw, st.nxt[w], st.tgt[w], False)
    ac = _accel(net, st, w, link, g, vl, vw)
    an_old = 0.0
    if fol >= 0:
        gf, vf = _front(net, ctl, st, fol, dst, st.x[fol], lead, UNKNOWN, False)
        an_old = _accel(net, st, fol, link, gf, vf, st.v[fol])
    ao_new = 0.0
    ao_old = 0.0
    o = st.prv[w]
    if o >= 0:
        ao_old = _accel(net, st, o, link, xw - lw - st.x[o], vw, st.v[o])
        go, vo = _front(net, ctl, st, o, src, st.x[o], st.nxt[w], st.tgt[o], False)
        ao_new = _accel(net, st, o, link, go, vo, st.v[o])
    bias = net.par[P_BIAS] if d < 0 else -net.par[P_BIAS]
    inc = mobil_incentive(acn, ac, an_new, an_old, ao_new, ao_old, net.par[P_POLITE], bias)
    return inc > net.par[P_THR]


@jit
def _sweep(net, ctl, st, src, dst, d, t):
    """Decide and apply the lane changes from ``src`` to the adjacent ``dst`` (two-pointer sweep)."""
    if ctl.lane_open[dst] == 0 or st.lane_tail[src] < 0:
        return
    nd = 0
    fol = -1
    p = st.lane_tail[dst]
    last_lead = -2
    w = st.lane_tail[src]
    while w >= 0:
        while p >= 0 and st.x[p] <= st.x[w]:
            fol = p
            p = st.nxt[p]
        if p != last_lead and _consider(net, ctl, st, w, src, dst, d, fol, p, t):
            st.lc_v[nd] = w
            st.lc_f[nd] = fol
            st.lc_l[nd] = p
            nd += 1
            last_lead = p
        w = st.nxt[w]
    for q in range(nd):
        w = st.lc_v[q]
        _unlink(st, src, w)
        _link_between(st, dst, w, st.lc_f[q], st.lc_l[q])
        st.lc_until[w] = t + net.par[P_COOL]
        st.flags[w] &= ~F_COMMITTED
        st.tgt[w] = _crossing(net, ctl, st, st.slot[w], dst, st.x[w], st.v[w], 0)
        st.yld[w] = -1
    st.counters[C_LC] += nd


@jit
def _lane_changes(net, st, ctl, t, d):
    L = net.link_len.shape[0]
    for link in range(L):
        a0 = net.link_lane0[link]
        n = net.link_lane0[link + 1] - a0
        if n < 2:
            continue
        if d > 0:
            for i in range(n - 2, -1, -1):
                _sweep(net, ctl, st, a0 + i, a0 + i + 1, 1, t)
        else:
            for i in range(1, n):
                _sweep(net, ctl, st, a0 + i, a0 + i - 1, -1, t)


@jit
def _enter_link(net, st, w, slot):
    """Set the vehicle's slot and its next bus stop on the new link."""
    st.slot[w] = slot
    st.stop_next[w] = -1
    st.flags[w] &= ~F_COMMITTED
    if st.cls[w] == 1:  # bus
        link = net.slot_link[slot]
        for s in range(net.stop_off[link], net.stop_off[link + 1]):
            if net.stop_pos[s] >= st.x[w]:
                st.stop_next[w] = s
                break


@jit
def _free_vehicle(st, w):
    st.lane[w] = -1
    st.free[st.n_free[0]] = w
    st.n_free[0] += 1


@jit
def _serve_stop(net, st, w):
    s = st.stop_next[w]
    link = net.slot_link[st.slot[w]]
    st.stop_next[w] = s + 1 if s + 1 < net.stop_off[link + 1] else -1


@jit
def _draw_dwell(ctl, st, s):
    P = ctl.dwell.shape[1]
    i = st.stop_used[s] % P
    st.stop_used[s] += 1
    return ctl.dwell[s, i]


@jit
def _move(net, ctl, st, rec, ti, dt):
    """Passes 4-5: accelerations from old positions, then the ballistic update and the detectors."""
    NL = net.lane_link.shape[0]
    L = net.link_len.shape[0]
    qfrac = net.par[P_QFRAC]
    for lane in range(NL):
        w = st.lane_head[lane]
        while w >= 0:
            if st.dwell[w] > 0.0:
                st.acc[w] = 0.0
                st.lim[w] = st.x[w]
            else:
                g, vl = _front(net, ctl, st, w, lane, st.x[w], st.nxt[w], st.tgt[w], True)
                link = net.lane_link[lane]
                st.acc[w] = _accel(net, st, w, link, g, vl, st.v[w])
                st.lim[w] = st.x[w] + g
            w = st.prv[w]
    for lane in range(NL):
        link = net.lane_link[lane]
        length = net.link_len[link]
        w = st.lane_head[lane]
        while w >= 0:
            nw = st.prv[w]
            rec.vht[ti, link] += dt
            if st.dwell[w] > 0.0:
                rec.queue_vs[ti, link] += dt
                st.dwell[w] -= dt
                if st.dwell[w] <= 0.0:
                    st.dwell[w] = 0.0
                    _serve_stop(net, st, w)
                w = nw
                continue
            xo = st.x[w]
            xn, vn = ballistic_step(xo, st.v[w], st.acc[w], dt)
            if xn > st.lim[w]:
                # an emergency stop by the IDM travels ~1e-4 m; only a real overshoot is counted
                if xn > st.lim[w] + 0.01 and xn > xo + 0.01:
                    st.counters[C_CLAMP] += 1
                xn = st.lim[w] if st.lim[w] > xo else xo
                vmax = (xn - xo) / dt
                if vn > vmax:
                    vn = vmax
            st.x[w] = xn
            st.v[w] = vn
            rec.vkt[ti, link] += (xn if xn < length else length) - xo
            c = st.cls[w]
            if vn < qfrac * net.cl_v0[c * L + link]:
                rec.queue_vs[ti, link] += dt
            for k in range(net.det_off[link], net.det_off[link + 1]):
                pos = net.det_pos[k]
                if xo < pos <= xn:
                    rec.det_count[ti, net.det_id[k], net.lane_idx[lane]] += 1
                    rec.det_vsum[ti, net.det_id[k], net.lane_idx[lane]] += vn
                if xn - net.cls_len[c] < pos <= xn:
                    rec.det_occ[ti, net.det_id[k], net.lane_idx[lane]] += dt
            s = st.stop_next[w]
            if s >= 0 and net.lane_idx[lane] == 0 and xn >= net.stop_pos[s] - 1.0 and vn < 0.5:
                st.v[w] = 0.0
                st.dwell[w] = _draw_dwell(ctl, st, s)
                if net.stop_bay[s]:
                    _unlink(st, lane, w)
                    st.lane[w] = lane
                    st.flags[w] |= F_BAY
                    st.bay[st.n_bay[0]] = w
                    st.n_bay[0] += 1
            w = nw


@jit
def _bays(net, ctl, st, rec, ti, dt, t):
    """Buses in bays count down their dwell, then rejoin lane 0 when MOBIL safety allows."""
    i = 0
    while i < st.n_bay[0]:
        w = st.bay[i]
        lane = st.lane[w]
        link = net.lane_link[lane]
        rec.vht[ti, link] += dt
        if st.dwell[w] > 0.0:
            st.dwell[w] -= dt
        if st.dwell[w] > 0.0:
            i += 1
            continue
        st.dwell[w] = 0.0
        fol = -1
        p = st.lane_tail[lane]
        while p >= 0 and st.x[p] <= st.x[w]:
            fol = p
            p = st.nxt[p]
        lw = net.cls_len[st.cls[w]]
        mg = net.par[P_MINGAP]
        ok = p < 0 or st.x[p] - net.cls_len[st.cls[p]] - st.x[w] >= net.cls_s0[st.cls[w]]
        if ok and fol >= 0:
            gap = st.x[w] - lw - st.x[fol]
            ok = gap >= mg and _accel(net, st, fol, link, gap, 0.0, st.v[fol]) >= -net.par[P_BSAFE]
        if not ok:
            i += 1
            continue
        _link_between(st, lane, w, fol, p)
        st.flags[w] &= ~F_BAY
        _serve_stop(net, st, w)
        st.tgt[w] = _crossing(net, ctl, st, st.slot[w], lane, st.x[w], 0.0, 0)
        st.n_bay[0] -= 1
        st.bay[i] = st.bay[st.n_bay[0]]


@jit
def _crossings(net, st, rec, ti):
    """Pass 6: vehicles past their link's end enter the next link or leave at the destination."""
    NL = net.lane_link.shape[0]
    for lane in range(NL):
        link = net.lane_link[lane]
        length = net.link_len[link]
        while True:
            h = st.lane_head[lane]
            if h < 0 or st.x[h] <= length:
                break
            tg = st.tgt[h]
            if tg == BLOCKED:
                # cannot happen while the stop line bounds the update; keep the vehicle, count it
                st.counters[C_CLAMP] += 1
                st.x[h] = length
                st.v[h] = 0.0
                break
            _unlink(st, lane, h)
            st.cum_out[link] += 1
            slot = st.slot[h]
            if tg == SINK:
                st.route_out[net.slot_route[slot]] += 1
                if st.uid[h] < rec.veh_exit.shape[0]:
                    rec.veh_exit[st.uid[h]] = link
                st.sink_exits[link] += 1
                st.counters[C_INSIDE] -= 1
                st.counters[C_EXITED] += 1
                _free_vehicle(st, h)
                continue
            nslot = net.slot_next[slot]
            st.x[h] -= length
            nl = net.lane_link[tg]
            st.cum_in[nl] += 1
            rec.vkt[ti, nl] += st.x[h]
            _link_sorted(st, tg, h)
            _enter_link(net, st, h, nslot)
            st.tgt[h] = BLOCKED


@jit
def _insert(net, ctl, st, rec, t, dt):
    """Pass 7: origin queues release vehicles where the capacity state of the IDM allows."""
    L = net.link_len.shape[0]
    b_ins = net.par[P_BINS]
    delta = net.par[P_DELTA]
    for s in range(net.src_link.shape[0]):
        link = net.src_link[s]
        tries = net.link_lane0[link + 1] - net.link_lane0[link]
        while st.q_len[s] > 0 and tries > 0:
            tries -= 1
            cap = st.q_off[s + 1] - st.q_off[s]
            r = st.qbuf[st.q_off[s] + st.q_head[s]]
            c = net.route_cls[r]
            slot = net.route_off[r]
            lc = net.cls_len[c]
            j = c * L + link
            v0 = net.cl_v0[j]
            T = net.cl_T[j]
            s0 = net.cls_s0[c]
            best_lane = -1
            best_v = -1.0
            best_x = lc
            lo = ctl.slot_lo[slot]
            hi = ctl.slot_hi[slot]
            if net.link_len[link] > net.par[P_FREEDIST] + lc:
                # far enough from the link end to change into the route's lanes later
                lo = 0
                hi = net.link_lane0[link + 1] - net.link_lane0[link] - 1
            for idx in range(lo, hi + 1):
                ln = net.link_lane0[link] + idx
                if ctl.lane_open[ln] == 0:
                    continue
                tail = st.lane_tail[ln]
                if tail >= 0:
                    g = st.x[tail] - net.cls_len[st.cls[tail]] - lc
                    vl = st.v[tail]
                else:
                    tg = _crossing(net, ctl, st, slot, ln, lc, 0.0, 0)
                    g, vl = _ahead(net, ctl, st, -1, slot, ln, lc, tg)
                og = _obstacle_gap(net, ctl, ln, lc)
                if og < g:
                    g = og
                    vl = 0.0
                if g < s0:
                    continue
                vmax = max_speed_for_gap(g, vl, v0, T, s0, net.cls_a[c], net.cls_b[c], delta, b_ins)
                need = net.cl_vcrit[j]
                if g < FREE_GAP and vl < need:
                    need = vl
                if vmax + 1e-9 < need:
                    continue
                v_ins = vmax
                x_ins = lc
                if g < FREE_GAP:
                    # the gap opened during this step: the vehicle entered part of a step ago, at
                    # the capacity state; placing it where it would be now keeps the source's
                    # headway continuous (no loss of capacity to the step size)
                    thr = equilibrium_gap_scalar(need, v0, T, s0, delta)
                    if g - thr < need * dt:
                        v_ins = need
                        x_ins = lc + (g - thr if g > thr else 0.0)
                if v_ins > best_v:
                    best_v = v_ins
                    best_x = x_ins
                    best_lane = ln
            if best_lane < 0:
                break
            st.n_free[0] -= 1
            w = st.free[st.n_free[0]]
            st.x[w] = best_x
            st.v[w] = best_v
            st.acc[w] = 0.0
            st.dwell[w] = 0.0
            st.lc_until[w] = t
            st.cls[w] = c
            st.flags[w] = 0
            u = st.counters[C_UID]
            st.uid[w] = u
            st.counters[C_UID] += 1
            if u < rec.veh_cls.shape[0]:
                rec.veh_cls[u] = c
                rec.veh_route[u] = r
            _link_between(st, best_lane, w, -1, st.lane_tail[best_lane])
            _enter_link(net, st, w, slot)
            st.tgt[w] = _crossing(net, ctl, st, slot, best_lane, best_x, best_v, 0)
            st.yld[w] = -1
            st.q_head[s] = (st.q_head[s] + 1) % cap
            st.q_len[s] -= 1
            st.route_in[r] += 1
            st.cum_in[link] += 1
            st.counters[C_INSIDE] += 1
            st.counters[C_ENTERED] += 1


@jit
def _snapshot(net, ctl, st, rec, ti):
    L = net.link_len.shape[0]
    for link in range(L):
        rec.cum_in[ti, link] = st.cum_in[link]
        rec.cum_out[ti, link] = st.cum_out[link]
        rec.lanes[ti, link] = ctl.lanes_rec[link]
        length = net.link_len[link]
        qmax = 0.0
        for lane in range(net.link_lane0[link], net.link_lane0[link + 1]):
            w = st.lane_head[lane]
            qlen = 0.0
            while w >= 0:
                c = st.cls[w]
                if st.v[w] >= net.par[P_QFRAC] * net.cl_v0[c * L + link] and st.dwell[w] <= 0.0:
                    break
                qlen = length - (st.x[w] - net.cls_len[c])
                w = st.prv[w]
            if qlen > length:
                qlen = length
            if qlen > qmax:
                qmax = qlen
        rec.queue_m[ti, link] = qmax
    for r in range(st.route_in.shape[0]):
        rec.route_in[ti, r] = st.route_in[r]
        rec.route_out[ti, r] = st.route_out[r]
        rec.route_gen[ti, r] = st.route_gen[r]
    for s in range(st.q_len.shape[0]):
        rec.src_queue[ti, s] = st.q_len[s]


@jit
def _trajectories(net, st, rec, si):
    V = rec.traj_x.shape[1]
    NL = net.lane_link.shape[0]
    for lane in range(NL):
        w = st.lane_head[lane]
        while w >= 0:
            u = st.uid[w]
            if u < V:
                rec.traj_x[si, u] = st.x[w]
                rec.traj_v[si, u] = st.v[w]
                rec.traj_link[si, u] = net.lane_link[lane]
                rec.traj_lane[si, u] = net.lane_idx[lane]
            w = st.prv[w]
    for i in range(st.n_bay[0]):
        w = st.bay[i]
        u = st.uid[w]
        if u < V:
            rec.traj_x[si, u] = st.x[w]
            rec.traj_v[si, u] = 0.0
            rec.traj_link[si, u] = net.lane_link[st.lane[w]]
            rec.traj_lane[si, u] = -1


@jit
def micro_advance(k0, k1, n_steps, dt, spr, traj_every, net, ctl, st, rec):
    """Advance the microscopic state from step ``k0`` to ``k1`` (exclusive); returns a status.

    Parameters
    ----------
    k0, k1 : int
        Step range; step ``k`` covers ``[k dt, (k+1) dt)``.
    n_steps : int
        Steps in the whole run (the last record interval may be short).
    dt : float
        Time step [s].
    spr : int
        Steps per record interval.
    traj_every : int
        Sample trajectories every this many steps (0: never).
    net, ctl, st, rec : MicroNet, MicroControls, MicroState, MicroRecord
    """
    R = st.route_gen.shape[0]
    for k in range(k0, k1):
        t = k * dt
        ti = k // spr
        _update_signals(net, st, t)
        for r in range(R):
            n = ctl.arrivals[k - k0, r]
            if n > 0:
                s = net.route_src[r]
                cap = st.q_off[s + 1] - st.q_off[s]
                if st.q_len[s] + n > cap:
                    return STATUS_POOL
                for _ in range(n):
                    st.qbuf[st.q_off[s] + (st.q_head[s] + st.q_len[s]) % cap] = r
                    st.q_len[s] += 1
                st.route_gen[r] += n
        _permissions(net, ctl, st)
        _lane_changes(net, st, ctl, t, 1 if k % 2 == 0 else -1)
        _move(net, ctl, st, rec, ti, dt)
        _bays(net, ctl, st, rec, ti, dt, t)
        _crossings(net, st, rec, ti)
        q_total = 0
        for s in range(st.q_len.shape[0]):
            q_total += st.q_len[s]
        if q_total > st.n_free[0]:
            return STATUS_POOL
        _insert(net, ctl, st, rec, t + dt, dt)
        q_total = 0
        for s in range(st.q_len.shape[0]):
            q_total += st.q_len[s]
        rec.wait[ti] += q_total * dt
        if traj_every > 0 and (k + 1) % traj_every == 0:
            si = (k + 1) // traj_every - 1
            if si < rec.traj_x.shape[0]:
                _trajectories(net, st, rec, si)
        if (k + 1) % spr == 0 or k + 1 == n_steps:
            _snapshot(net, ctl, st, rec, ti)
    return STATUS_OK
