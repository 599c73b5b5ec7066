"""The microscopic time loop: IDM car-following and MOBIL lane changing on a lane-level network.

This module owns the state layout and one step of the microscopic engine. Vehicles live in a
pool of slots (struct of arrays, 125 bytes per slot: slot indices are int32; a demand-driven run's
pool holds one to 1.5 slots per vehicle, see ``trafficsim.engines.micro._initial_pool``).
Every lane keeps its vehicles in a doubly linked list sorted by position: ``lane_head`` is the most downstream vehicle, ``prv``
points upstream (to the follower), ``nxt`` downstream (to the leader). ``x`` is the front
bumper's distance from the link start [m].

One step of ``dt`` runs these passes, each over all lanes:

1. signal states per movement (green, amber, red) from the fixed-time windows; a movement that
   gives way (a left turn sharing its green with the opposing stream, a minor stream at a
   priority junction) is held while a vehicle it gives way to would reach the node within the
   critical gap (``_give_way``); arrivals join
   the origin queues (drawn in Python from the seed and passed in);
2. the IDM free-road term of every vehicle (``afree``, shared by all accelerations of the step;
   above the desired speed the Improved IDM's, and lowered within the look-ahead of a node
   after which the route's next link is slower: ``idm.free_term``, ``idm.speed_drop_term``);
   node permissions: the lane a vehicle would enter at the end of its link (``tgt``), from the
   lane connectors in force, the signal (amber: go only when stopping needs more than
   ``amber_decel``) and lane closures, for the vehicles whose permission is read in the step
   (``UNKNOWN`` for followers far from the node); vehicles that must change lane near the end
   of their lane get a courteous follower in the target lane (``yld``, the zipper);
3. lane changes by MOBIL (:mod:`trafficsim.kernels.mobil`), alternately to the left and to the
   right, with a two-pointer sweep over each pair of adjacent lanes; mandatory changes (route,
   lane end, closed lane, blocked lane, bus stop) keep only the safety criterion; a
   discretionary change with no new follower on its link checks the vehicle about to enter the
   target lane across the node (``micro_base._entry_safe``);
4. IDM accelerations (:mod:`trafficsim.kernels.idm`) against the nearest of: the same-lane
   leader, a blocked segment, a bus's own stop, the stop line when the node is closed, a
   merging vehicle closer to the node on another feeder lane of the same target lane
   (zipper), and the tail of the downstream lane (looking ahead up to three links);
5. ballistic update; the new position never passes the same-lane leader's new rear (the walk
   moves it first) nor any other constraint's old position (a last-resort clamp that is counted
   in ``counters[C_CLAMP]``: it stays 0 when the IDM resolves every situation).
   Passes 4 and 5 are one walk of each lane: the new positions and speeds go into a second
   buffer (``MicroState.x_new``, ``v_new``) that is swapped with ``x``, ``v`` after the walk,
   so every acceleration reads the old ones;
6. node crossings and exits at the destination; buses dwell at their stops;
7. insertion from origin queues at the largest speed the downstream allows, and only when the
   inserted vehicle is no denser than the capacity state of the IDM, so sources do not lose
   capacity; otherwise the vehicle waits in the origin queue.

Everything is in SI units; nothing is allocated here, and the kernels are compiled without
numba's reference counting (see :mod:`trafficsim.kernels.micro_base` for why, and for the
argument conventions). The engine
(:mod:`trafficsim.engines.micro`) compiles the arrays and draws the random numbers.
"""

from typing import NamedTuple

import numpy as np

from .idm import ballistic_step
from .micro_base import kernel
from ._jit import unsigned
from .micro_base import (  # noqa: F401  (P_*, C_*, STATUS_* and the lane states are re-exported)
    AMBER, BLOCKED, C_CLAMP, C_ENTERED, C_EXITED, C_INSIDE, C_LC, C_UID, F_BAY, F_COMMITTED, GIVE_WAY, GIVE_WAY_DECEL,
    GREEN, JUNCTION_CLEAR_M, P_AMBER,
    P_ALLTGT, P_BIAS, P_BINS, P_BSAFE, P_COOL, P_DELTA, P_FREEDIST, P_LOOK, P_MINGAP, P_POLITE, P_QFRAC, P_RELAX,
    P_RELAXF,
    P_STRAT, P_THR, P_YIELD,
    F_QUEUED, F_SERVED, RED,
    SINK, STATUS_NAN, STATUS_OK, STATUS_POOL, UNKNOWN,
    _accel, _accel_f, _booth_limit, _crossing, _front, _link_between, _link_sorted, _rear_ahead, _relax_start, _unlink,
    _waits_to_leave, _zipper,
    ZIPPER_CAP, ZIPPER_SLACK, ZIPPER_ZONE,
)
from .micro_io import _draw_dwell, _enter_link, _free_vehicle, _insert, _serve_stop, _snapshot, _trajectories
from .micro_lanes import _lane_changes, _permissions
from .signals import cycle_time

__all__ = [
    "MicroNet", "MicroControls", "MicroState", "MicroRecord", "micro_advance",
    "STATUS_OK", "STATUS_POOL", "STATUS_NAN",
    "C_INSIDE", "C_CLAMP", "C_UID", "C_LC", "C_ENTERED", "C_EXITED",
]


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
    cls_sab: np.ndarray       # (C,) 2 sqrt(a b) [m/s2], the IDM's braking scale (see idm_acceleration_sab)
    cl_v0: np.ndarray         # (C*L,) desired speed of class c on link l [m/s]
    cl_T: np.ndarray          # (C*L,) time gap [s]
    cl_vcrit: np.ndarray      # (C*L,) speed of the capacity state [m/s]
    route_cls: np.ndarray     # (R,)
    route_off: np.ndarray     # (R+1,) slots (route, position) of route r
    route_src: np.ndarray     # (R,) source index, -1 for initial-vehicle routes
    slot_link: np.ndarray     # (NS,)
    slot_route: np.ndarray    # (NS,)
    slot_next: np.ndarray     # (NS,) next slot, -1 = destination (cyclic routes wrap)
    slot_move: np.ndarray     # (NS,) movement at the link end (at the destination: the exit movement)
    slot_vturn: np.ndarray    # (NS,) speed limit through the turn at the link end [m/s] (inf: none)
    move_sig: np.ndarray      # (M,) signal or -1
    move_release: np.ndarray  # (M,) uint8: 1 = a ramp meter's movement (its green releases the vehicle at the line)
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
    stop_start: np.ndarray    # upstream end of the berth [m]: buses queued inside it dwell where they stand
    booth_pos: np.ndarray     # (NL,) toll-booth line of lane j [m] (every vehicle halts there), -1 = none
    booth_min: np.ndarray     # (NL,) shortest halt at the booth [s]
    booth_row: np.ndarray     # (NL,) row of the booth's service-time draws in MicroControls.dwell
    det_off: np.ndarray       # (L+1,) point detectors of link l
    det_pos: np.ndarray       # [m]
    det_id: np.ndarray
    src_link: np.ndarray      # (S,) first link of source s
    par: np.ndarray           # model parameters, indices P_*
    maxl: int                 # largest lane count of any link
    lane_order: np.ndarray    # (NL,) the move pass's walk: lanes after the lanes they feed (see _move)
    move_in: np.ndarray       # (M,) link the movement leaves from
    move_gw: np.ndarray       # (M,) uint8: 1 = the movement gives way on its green (see _give_way)
    move_out: np.ndarray      # (M,) link the movement enters, -1 = out of the network
    yld_move: np.ndarray      # (Y,) movements that give way (see _give_way), in the order of their critical gaps
    yld_off: np.ndarray       # (Y+1,) the movements yielding movement j gives way to: yld_opp[yld_off[j]:yld_off[j+1]]
    yld_opp: np.ndarray
    yld_tc: np.ndarray        # (Y,) critical gap [s] of yielding movement j (see _give_way)
    yld_lo: np.ndarray        # (Y,) first entry of j's block: the entries of its node with its critical gap
    yld_n: np.ndarray         # (Y,) length of j's block (see _give_way)


class MicroControls(NamedTuple):
    """Arrays constant over one call of :func:`micro_advance` (rebuilt by the engine per chunk)."""

    lane_open: np.ndarray     # (NL,) uint8
    slot_lo: np.ndarray       # (NS,) lowest lane index leading to the next link (lo > hi: none)
    slot_hi: np.ndarray       # (NS,)
    slot_map: np.ndarray      # (NS*maxl,) lane index -> global target lane, -1 = not connected
    obs_active: np.ndarray    # (NO,) uint8
    arrivals: np.ndarray      # (steps in chunk, R) vehicles joining each route's origin queue
    dwell: np.ndarray         # (NSTOP + booth lanes, P) dwell / booth service times [s] drawn for this chunk
    lanes_rec: np.ndarray     # (L,) lanes in force, for the record
    slot_plo: np.ndarray      # (NS,) preferred lanes (within slot_lo..slot_hi) that also lead to the
    slot_phi: np.ndarray      # (NS,) lanes the route needs further on
    slot_dpref: np.ndarray    # (NS,) distance [m] from the link end to the node that needs them


class MicroState(NamedTuple):
    """Evolving state; per-vehicle arrays have the pool size N."""

    x: np.ndarray
    v: np.ndarray
    x_new: np.ndarray         # scratch (N,): the move pass writes the new positions here, then swaps
    v_new: np.ndarray         # scratch (N,): the same for the speeds
    dwell: np.ndarray
    lc_until: np.ndarray
    cls: np.ndarray
    slot: np.ndarray
    lane: np.ndarray
    nxt: np.ndarray
    prv: np.ndarray
    tgt: np.ndarray           # lane entered at the node, SINK, BLOCKED, or UNKNOWN (not needed this step)
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
    stop_used: np.ndarray     # (NSTOP + booth lanes,) dwell draws used in this chunk
    booth_wait: np.ndarray    # (NL,) time [s] until lane j's booth may release its next vehicle
    counters: np.ndarray      # int64, indices C_*
    lc_v: np.ndarray          # scratch (N,)
    lc_f: np.ndarray
    lc_l: np.ndarray
    afree: np.ndarray         # (N,) IDM free-road term 1 - (v/v0)^delta of this step (cache)
    tfac: np.ndarray          # (N,) time-gap factor: 1, or below 1 while relaxing after a lane change
    sig_next: np.ndarray      # (nsig,) time [s] of signal s's next window boundary (see _update_signals)
    sig_tc: np.ndarray        # (nsig,) scratch: time in the cycle of the signals evaluated this step
    move_onset: np.ndarray    # (M,) int64: the step at which the movement's green last started (_update_signals)
    lane_md: np.ndarray       # (NL,) uint8 scratch: lanes where a vehicle may have to change lane (_permissions)
    ins_vfree: np.ndarray     # (C*L,) insertion speed on a free road of class c on link l, -1: not yet known
    yld_raw: np.ndarray       # (Y,) uint8: the signal's state of yielding movement j (move_state holds the effective one)


class MicroRecord(NamedTuple):
    """Outputs per record interval (first axis); vehicle-metres and vehicle-seconds are SI."""

    vkt: np.ndarray           # (T, L) vehicle-metres
    vht: np.ndarray           # (T, L) vehicle-seconds
    cum_in: np.ndarray        # (T, L) snapshot
    cum_out: np.ndarray       # (T, L)
    queue_vs: np.ndarray      # (T, L) vehicle-seconds in the queued state
    queue_m: np.ndarray       # (T, L) snapshot: queue length from the downstream end [m]
    queue_m_max: np.ndarray   # (T, L) its longest during the interval (the back of queue) [m]
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



# ---------------------------------------------------------------------------- passes
# Every pass takes plain arrays (see the note in :mod:`trafficsim.kernels.micro_base`).
@kernel
def _update_signals(t, k, first, move_sig, move_win_off, win_start, win_end, win_amber, sig_cycle, sig_offset,
                    move_state, sig_next, sig_tc, move_onset):
    """Pass 1: the state of every movement (green, amber, red) at time ``t``.

    A signal's movements are evaluated only at the first step of a call (``first``) and at steps
    that reach ``sig_next``, the earliest window boundary after the last evaluation: in between
    no state can change (a city's signals change state a few times per cycle; the float modulo
    and the window scans of every movement were about 5% of a step on the 10 x 10 grid). The
    margin of 1 us on ``sig_next`` absorbs its rounding, so each evaluation is one that every
    step would make. ``sig_tc`` holds the time in the cycle of the signals evaluated now, -1 for
    the others. ``move_onset[m]`` is the step ``k`` at which movement ``m``'s green last started
    (no per-step reset: a reader compares it with the current step)."""
    for s in range(sig_cycle.shape[0]):
        if first or t >= sig_next[s] - 1e-6:
            tc = cycle_time(t - sig_offset[s], sig_cycle[s])
            sig_tc[s] = tc
            sig_next[s] = t + (sig_cycle[s] - tc)
        else:
            sig_tc[s] = -1.0
    for m in range(move_sig.shape[0]):
        s = move_sig[m]
        if s < 0:
            if first:
                move_state[m] = GREEN
            continue
        tc = sig_tc[s]
        if tc < 0.0:
            continue
        state = RED
        for w in range(move_win_off[m], move_win_off[m + 1]):
            for b in (win_start[w], win_end[w], win_amber[w]):
                if b > tc and t + (b - tc) < sig_next[s]:
                    sig_next[s] = t + (b - tc)
            if win_start[w] <= tc < win_end[w]:
                state = GREEN
            elif state == RED and win_end[w] <= tc < win_amber[w]:
                state = AMBER
        if state == GREEN and move_state[m] != GREEN:
            move_onset[m] = k
        move_state[m] = state


@kernel
def _give_way(k, move_state, yld_raw, yld_move, yld_off, yld_opp, move_in, move_gw, move_out, yld_tc, yld_lo, yld_n,
              amber, x, v, cls, flags, slot, tgt, lane_head, lane_tail, link_len, link_lane0, cls_len, cls_s0, cls_a,
              cl_v0, slot_move, slot_next):
    """Pass 1b: movements that give way (a left turn on a green shared with the opposing stream,
    the minor streams of a priority junction) wait for a gap.

    ``yld_raw`` keeps each such movement's signal state (``micro_advance`` puts it back into
    ``move_state`` before ``_update_signals``, so the signal's bookkeeping never sees the
    override; GREEN at an unsignalised junction). A movement ``j`` whose signal shows green is
    held for this step while the first vehicle of some lane of another approach, bound for a
    movement it gives way to that is not red, would reach the node within the critical gap
    ``yld_tc[j]``: its own speed, accelerating at its class's ``a`` up to its desired speed (an
    upper bound on how soon it can be there; the first vehicle of a lane bound elsewhere holds up
    the lane behind it). It is then ``GIVE_WAY``: as at amber, a vehicle that cannot stop goes
    on, but it brakes up to ``GIVE_WAY_DECEL`` (``micro_base._crossing``). No conflict: a
    vehicle at amber, or of a movement held to give way, that can stop (as ``_crossing`` decides
    it) and has not committed to crossing (``F_COMMITTED``: it set off into a gap), and a halted
    one with no room in the lane it enters, whose last vehicle stands too (one held in a lane
    that does not lead on may change lanes and go). A conflict too: a vehicle that crossed by a
    movement that gives way itself and whose rear is less than ``JUNCTION_CLEAR_M`` into its
    link (it set off from the line and is still in the junction). The table is in
    the order of the critical gaps, so a movement is decided before those that give way to it
    (a minor road's through movement sees whether the major road's left turn is held). Within a
    block of one node's entries with one critical gap the order rotates with the step ``k``:
    where they give way to each other in a cycle (every approach of a ``right_before_left``
    junction loaded), the one decided last sees the others held and goes, so each approach gets
    its turn instead of the first entry's waiting for ever."""
    L = link_len.shape[0]
    for jj in range(yld_move.shape[0]):
        lo = yld_lo[jj]
        j = lo + (jj - lo + k) % yld_n[jj]
        m = yld_move[j]
        raw = move_state[m]
        yld_raw[j] = raw
        if raw != GREEN:
            continue
        tc = yld_tc[j]
        blocked = False
        for o in range(yld_off[j], yld_off[j + 1]):
            mo = yld_opp[o]
            so = move_state[mo]
            if so == RED:
                continue
            out = move_out[mo]
            if move_gw[mo] and out >= 0:
                # a vehicle that set off from the line by it is still in the junction (its route's
                # slots are consecutive: the one before its own took it over the node)
                for lane in range(link_lane0[out], link_lane0[out + 1]):
                    u = lane_tail[lane]
                    if u >= 0 and x[u] - cls_len[cls[u]] < JUNCTION_CLEAR_M:
                        p = slot[u] - 1
                        if p >= 0 and slot_next[p] == slot[u] and slot_move[p] == mo:
                            blocked = True
                            break
                if blocked:
                    break
            c = move_in[mo]
            length = link_len[c]
            for lane in range(link_lane0[c], link_lane0[c + 1]):
                u = lane_head[lane]
                if u < 0 or slot_move[slot[u]] != mo:
                    continue
                d = length - x[u]
                vu = v[u]
                cu = cls[u]
                if so >= AMBER and not flags[u] & F_COMMITTED and vu * vu <= 2.0 * (
                        amber if so == AMBER else GIVE_WAY_DECEL) * (d if d > 1e-3 else 1e-3):
                    continue
                if vu < 0.1:
                    tg = tgt[u]
                    if tg >= 0:
                        tl = lane_tail[tg]
                        if tl >= 0 and v[tl] < 0.1 and x[tl] - cls_len[cls[tl]] < cls_len[cu] + cls_s0[cu]:
                            continue
                if d <= 0.0:
                    blocked = True
                    break
                a = cls_a[cu]
                v0 = cl_v0[cu * L + c]
                if vu >= v0:
                    tt = d / vu
                else:
                    t1 = (v0 - vu) / a
                    d1 = 0.5 * (vu + v0) * t1
                    if d <= d1:
                        tt = (np.sqrt(vu * vu + 2.0 * a * d) - vu) / a
                    else:
                        tt = t1 + (d - d1) / v0
                if tt < tc:
                    blocked = True
                    break
            if blocked:
                break
        if blocked:
            move_state[m] = GIVE_WAY


@kernel
def _bound_across_node(w, lane, xo, tg, xpos, v, cls, slot, flags, stop_next, prv, tgt, lane_head, lane_tail, link_len,
                       lane_link, lane_idx, cls_len, cls_s0, slot_link, slot_next, slot_move, maxl, feed_off,
                       feed_lane, obs_off, obs_pos, obs_active, stop_pos, slot_lo, slot_hi, slot_map, lane_open,
                       move_state, look, amber, bpos):
    """The gap [m] that bounds the step of vehicle ``w`` (front ``xo`` in ``lane``, no leader in it,
    entering lane ``tg``) with what lies across the node at positions ``xpos``: ``_front`` and its
    lane's toll booth, as the move pass's acceleration takes them.

    The move pass calls it, rarely (a step past the bound at the old positions), with the
    positions of its output buffer, new where the lanes ahead were walked already: a vehicle
    following a faster one over the node was held back at the old rear (most clamps left after
    the same-lane fix). It is never nearer than the old bound: vehicles do not move back, and the
    zipper partners at the new positions include those at the old ones. Not inlined: it keeps
    a second copy of ``_front`` out of the move pass's loop."""
    g, _ = _front(w, lane, xo, -1, tg, xpos, v, cls, slot, flags, stop_next, prv, tgt, lane_head, lane_tail, link_len,
                  lane_link, lane_idx, cls_len, cls_s0, slot_link, slot_next, slot_move, maxl, feed_off, feed_lane,
                  obs_off, obs_pos, obs_active, stop_pos, slot_lo, slot_hi, slot_map, lane_open, move_state, look,
                  amber=amber)
    g, _ = _booth_limit(g, 0.0, bpos, (flags[w] & F_SERVED) != 0, xo, cls_s0[cls[w]])
    return g


@kernel
def _move(ti, dt,
          x, v, xn_buf, vn_buf, afree, tfac, dwell, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, lane_head,
          lane_tail, bay, n_bay, stop_used, counters,
          link_len, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cls_sab, cl_v0, cl_T, slot_link, slot_next,
          slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos, stop_off, stop_pos, stop_bay, stop_start, det_off,
          det_pos, det_id, lane_order,
          obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, dwell_draw,
          booth_pos, booth_min, booth_row, booth_wait,
          rec_vkt, rec_vht, rec_queue_vs, rec_queue_m_max, rec_det_count, rec_det_occ, rec_det_vsum,
          delta, qfrac, look, amber):
    """Passes 4-5: each vehicle's acceleration from the old positions and speeds (``x``, ``v``),
    its ballistic update into ``xn_buf``, ``vn_buf`` (the caller swaps the buffers after the
    pass), and the detectors, in one walk of each lane.

    Every acceleration reads only old positions and speeds, and the lanes' lists change only
    after the walk (buses turning into a bay are unlinked at its end), so one walk computes
    what an acceleration walk over all lanes followed by an update walk did; it saves the second
    walk of every lane (most lanes of a city network hold one or two vehicles) and the stores
    and reloads between the two."""
    NL = lane_link.shape[0]
    L = link_len.shape[0]
    zip_d = ZIPPER_ZONE * look
    n_bay0 = n_bay[0]
    # xn_buf holds the old positions (copied by _permissions) until a vehicle's lane is walked,
    # its new one after: the bound of a step by what lies across the node (the next lane's tail,
    # a zipper partner) is taken at these positions, so at the new ones where the lanes ahead
    # were walked first (lane_order walks every lane after the lanes it feeds, cycles aside)
    for li in range(NL):
        lane = lane_order[li]
        if booth_wait[lane] > 0.0:
            booth_wait[lane] -= dt
        w = lane_head[lane]
        if w < 0:
            continue
        link = lane_link[lane]
        length = link_len[link]
        no_obs = obs_off[lane + 1] == obs_off[lane]
        # the lane's run of queued vehicles from the link's end; its halted vehicles are flagged
        # (F_QUEUED) while the lane's first vehicle stands at the end
        at_end = True
        first = True
        head_halted = False
        d0 = det_off[link]
        d1 = det_off[link + 1]
        kerb = lane_idx[lane] == 0
        bpos = booth_pos[lane]
        # the lane's vehicle-steps, queued vehicle-steps and metres, added to the records once
        n_veh = 0
        n_queued = 0
        metres = 0.0
        # the lane's queue as _snapshot measures it, after this step's moves, for the interval's
        # longest (queue_m_max): qrun 0 in the run from the link's end, 1 looking for a vehicle
        # waiting to change out of a lane that does not lead on (_waits_to_leave), 2 in that
        # one's run, 3 done; qback: the run's last rear [m], qc: its class
        qrun = 0
        qback = length
        qc = 0
        lidx = lane_idx[lane]
        while w >= 0:
            uw = unsigned(w)
            nw = prv[uw]
            n_veh += 1
            xo = x[uw]
            if dwell[uw] > 0.0:
                # a bus stop is not the link's end: vehicles queued behind a dwelling bus are not flagged
                xn_buf[uw] = xo
                vn_buf[uw] = v[uw]
                at_end = False
                n_queued += 1
                if qrun == 1:
                    # its leader's new rear (the link's end when it has none or leaves the link)
                    ql = _rear_ahead(nxt[uw], length, xn_buf, cls, cls_len)
                    qk = cls[uw] * L + link
                    sl = slot[uw]
                    if _waits_to_leave(ql - xo, cl_v0[qk] * cl_T[qk] + cls_s0[cls[uw]], lidx, slot_lo[sl],
                                       slot_hi[sl]):
                        qrun = 2
                if qrun == 0 or qrun == 2:
                    qc = cls[uw]
                    qback = xo - cls_len[qc]
                dwell[uw] -= dt
                if dwell[uw] <= 0.0:
                    dwell[uw] = 0.0
                    _serve_stop(w, slot, stop_next, slot_link, stop_off)
                w = nw
                continue
            # ---- the acceleration, from old positions and speeds
            vo = v[uw]
            c = cls[uw]
            lead = nxt[uw]
            tg = tgt[uw]
            if lead >= 0 and no_obs and stop_next[uw] < 0:
                # the common case: what _front returns for it, without its branches (a closed
                # node matters only when the stop line is nearer than the leader's rear)
                g = x[lead] - cls_len[cls[lead]] - xo
                vl = v[lead]
                if tg == BLOCKED:
                    dn = length - xo
                    if dn < g:
                        g = dn
                        vl = 0.0
            else:
                if tg == UNKNOWN:
                    # not computed by the permission pass (a follower then; it may lead its lane
                    # now, after a lane change ahead of it): the node bound below reads it too
                    tg = _crossing(slot[uw], lane, xo, vo, flags[uw] & F_COMMITTED, slot_next, slot_move, lane_idx,
                                   lane_link, link_len, maxl, slot_lo, slot_hi, slot_map, lane_open, move_state,
                                   amber)
                g, vl = _front(w, lane, xo, lead, tg, x, v, cls, slot, flags, stop_next, prv, tgt,
                               lane_head, lane_tail, link_len, lane_link, lane_idx, cls_len, cls_s0, slot_link,
                               slot_next, slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos, obs_active,
                               stop_pos, slot_lo, slot_hi, slot_map, lane_open, move_state, look, amber=amber)
            g, vl = _booth_limit(g, vl, bpos, (flags[uw] & F_SERVED) != 0, xo, cls_s0[c])
            a_w = _accel_f(afree[uw], tfac[uw], c, link, g, vl, vo, L, cl_T, cls_s0, cls_a, cls_sab)
            if lead >= 0 and tg >= 0 and feed_off[tg + 1] - feed_off[tg] > 1:
                dist = length - xo
                if dist < zip_d:
                    # merge zone: the feeders of one target lane form one virtual queue, so
                    # the gaps open before the node rather than at it (the queue head's
                    # partner is in _front, hard); behind the head, brake at most b for it
                    gz, vz = _zipper(w, lane, dist, tg, x, v, cls, prv, tgt, lane_head, link_len, lane_link,
                                     cls_len, feed_off, feed_lane)
                    gz += ZIPPER_SLACK * dist
                    if gz < g:
                        a_z = _accel_f(afree[uw], tfac[uw], c, link, gz if gz > 0.0 else 0.0, vz, vo, L, cl_T,
                                       cls_s0, cls_a, cls_sab)
                        if a_z < -ZIPPER_CAP * cls_b[c]:
                            a_z = -ZIPPER_CAP * cls_b[c]
                        if a_z < a_w:
                            a_w = a_z
            y = yld[uw]
            if y >= 0:
                # cooperative yielding (zipper): follow the merger in the next lane as a leader,
                # but never brake harder than the comfortable b for it; the merger is in another
                # lane, so it does not bound the position
                d = x[y] - cls_len[cls[y]] - xo
                if d < g:
                    # (d < 0: side by side, the one behind falls back, braking at most b)
                    a_y = _accel_f(afree[uw], tfac[uw], c, link, d if d > 0.0 else 0.0, v[y], vo, L, cl_T, cls_s0,
                                   cls_a, cls_sab)
                    if a_y < -cls_b[c]:
                        a_y = -cls_b[c]
                    if a_y < a_w:
                        a_w = a_y
            # ---- the update
            lim = xo + g
            xn, vn = ballistic_step(xo, vo, a_w, dt)
            if xn > lim and lead >= 0 and g == x[lead] - cls_len[cls[lead]] - xo:
                # the same-lane leader bounds the step: it has moved already (the walk runs from
                # the lane's head), so the bound is its new rear; its old one held back a vehicle
                # closing in on a faster leader (most clamps, after lane changes)
                lim = xn_buf[lead] - cls_len[cls[lead]]
            elif xn > lim and lead < 0 and tg >= 0:
                # bounded across the node (the next lane's tail or a zipper partner): the same
                # limits at the positions in xn_buf, new where the lanes were walked already
                gb = _bound_across_node(w, lane, xo, tg, xn_buf, v, cls, slot, flags, stop_next, prv, tgt, lane_head,
                                        lane_tail, link_len, lane_link, lane_idx, cls_len, cls_s0, slot_link,
                                        slot_next, slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos, obs_active,
                                        stop_pos, slot_lo, slot_hi, slot_map, lane_open, move_state, look, amber,
                                        bpos)
                if xo + gb > lim:
                    lim = xo + gb
            if xn > lim:
                # an emergency stop by the IDM travels ~1e-4 m; only a real overshoot is counted
                if xn > lim + 0.01 and xn > xo + 0.01:
                    counters[C_CLAMP] += 1
                xn = lim if lim > xo else xo
                vmax = (xn - xo) / dt
                if vn > vmax:
                    vn = vmax
            xn_buf[uw] = xn
            vn_buf[uw] = vn
            metres += (xn if xn < length else length) - xo
            ck = unsigned(c * L + link)
            if first:
                # the lane's first vehicle halted within one critical spacing of the link's end
                head_halted = vn < 0.5 and length - xn < cl_v0[ck] * cl_T[ck] + cls_s0[c] + cls_len[c]
                first = False
            if (qrun == 0 or qrun == 2) and qback - xn > cl_v0[ck] * cl_T[ck] + cls_s0[c]:
                qrun += 1             # a gap wider than the critical one ends the run (see _snapshot)
            if vn < qfrac * cl_v0[ck]:
                n_queued += 1
                if at_end and head_halted and vn < 0.5:
                    # halted in the queue at the link's end (a stop line, a node): it stays in that
                    # queue, moving or not, until it leaves the link (the HCM's queue; the CTM's
                    # discharging cells stay congested too)
                    flags[uw] |= F_QUEUED
                if qrun == 0 or qrun == 2:
                    qback = xn - cls_len[c]
                    qc = c
                elif qrun == 1:
                    sl = slot[uw]
                    ql = _rear_ahead(lead, length, xn_buf, cls, cls_len)
                    if _waits_to_leave(ql - xn, cl_v0[ck] * cl_T[ck] + cls_s0[c], lidx, slot_lo[sl], slot_hi[sl]):
                        qrun = 2
                        qback = xn - cls_len[c]
                        qc = c
            elif (flags[uw] & F_QUEUED) == 0:
                at_end = False
                if qrun == 0 or qrun == 2:
                    qrun += 1
            elif qrun == 0:
                qback = xn - cls_len[c]
                qc = c
            elif qrun == 2:
                qrun = 3
            for k in range(d0, d1):
                pos = det_pos[k]
                if xo < pos <= xn:
                    rec_det_count[ti, det_id[k], lidx] += 1
                    rec_det_vsum[ti, det_id[k], lidx] += vn
                if xn - cls_len[c] < pos <= xn:
                    rec_det_occ[ti, det_id[k], lidx] += dt
            s = stop_next[uw]
            # a bus serves its stop when it halts in the kerb lane with its whole length inside
            # the berth: at the front, or queued behind buses already dwelling there
            if (s >= 0 and kerb and vn < 0.5 and xn >= stop_start[s] + cls_len[c] - 1.0
                    and xn <= stop_pos[s] + 1.0):
                vn_buf[uw] = 0.0
                dwell[uw] = _draw_dwell(s, dwell_draw, stop_used)
                if stop_bay[s]:
                    # into the bay: unlinked from the lane after the walk (the other lanes'
                    # accelerations still see it where it stood)
                    vlane[uw] = lane
                    flags[uw] |= F_BAY
                    bay[n_bay[0]] = w
                    n_bay[0] += 1
            elif bpos >= 0.0 and (flags[uw] & F_SERVED) == 0 and vn < 0.5 and xn >= bpos - 1.0:
                # halted at its toll booth: released when the booth is free again (one drawn
                # service time after its last release), after min_stop at least
                flags[uw] |= F_SERVED
                vn_buf[uw] = 0.0
                hold = booth_min[lane] if booth_min[lane] > booth_wait[lane] else booth_wait[lane]
                dwell[uw] = hold
                booth_wait[lane] = hold + _draw_dwell(booth_row[lane], dwell_draw, stop_used)
            w = nw
        if n_veh > 0:
            rec_vht[ti, link] += n_veh * dt
            rec_queue_vs[ti, link] += n_queued * dt
            rec_vkt[ti, link] += metres
        if qback < length:
            if qrun == 0 or qrun == 2:
                # the whole lane queued, its last rear within one critical spacing of the start: full
                k = qc * L + link
                if qback < cl_v0[k] * cl_T[k] + cls_s0[qc] + cls_len[qc]:
                    qback = 0.0
            if length - qback > rec_queue_m_max[ti, link]:
                rec_queue_m_max[ti, link] = length - qback if qback > 0.0 else length
    for i in range(n_bay0):
        # buses already in a bay keep their place and speed
        w = bay[i]
        xn_buf[w] = x[w]
        vn_buf[w] = v[w]
    for i in range(n_bay0, n_bay[0]):
        w = bay[i]
        _unlink(prv, nxt, lane_head, lane_tail, vlane[w], w)


@kernel
def _bays(ti, dt, x, v, tfac, dwell, cls, slot, vlane, nxt, prv, tgt, stop_next, flags, lane_head, lane_tail, bay,
          n_bay, link_len, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cl_v0, cl_T, slot_link, slot_next,
          slot_move, maxl, stop_off, slot_lo, slot_hi, slot_map, lane_open, move_state, rec_vht,
          delta, bsafe, mingap, amber, rf0):
    """Buses in bays count down their dwell, then rejoin lane 0 when MOBIL safety allows (a lane
    change: the bus and its new follower relax, see ``MicroState.tfac``)."""
    L = link_len.shape[0]
    i = 0
    while i < n_bay[0]:
        w = bay[i]
        lane = vlane[w]
        link = lane_link[lane]
        rec_vht[ti, link] += dt
        if dwell[w] > 0.0:
            dwell[w] -= dt
        if dwell[w] > 0.0:
            i += 1
            continue
        dwell[w] = 0.0
        fol = -1
        p = lane_tail[lane]
        while p >= 0 and x[p] <= x[w]:
            fol = p
            p = nxt[p]
        lw = cls_len[cls[w]]
        mg = mingap
        ok = p < 0 or x[p] - cls_len[cls[p]] - x[w] >= cls_s0[cls[w]]
        if ok and fol >= 0:
            gap = x[w] - lw - x[fol]
            ok = gap >= mg and _accel(cls[fol], link, gap, 0.0, v[fol], L, cl_v0, cl_T, cls_s0, cls_a, cls_b,
                                      delta) >= -bsafe
        if not ok:
            i += 1
            continue
        _link_between(prv, nxt, lane_head, lane_tail, vlane, lane, w, fol, p)
        _relax_start(w, rf0, tfac)
        _relax_start(fol, rf0, tfac)
        flags[w] &= ~F_BAY
        _serve_stop(w, slot, stop_next, slot_link, stop_off)
        tgt[w] = _crossing(slot[w], lane, x[w], 0.0, 0, slot_next, slot_move, lane_idx, lane_link, link_len, maxl,
                           slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
        n_bay[0] -= 1
        bay[i] = bay[n_bay[0]]


@kernel
def _crossings(ti, x, v, tfac, cls, slot, vlane, nxt, prv, tgt, stop_next, flags, uid, lane_head, lane_tail, free,
               n_free, cum_in, cum_out, sink_exits, route_out, counters,
               link_len, lane_link, cl_T, slot_link, slot_next, slot_route, stop_off, stop_pos,
               rec_vkt, rec_veh_exit):
    """Pass 6: vehicles past their link's end enter the next link or leave at the destination.

    A lane-change relaxation (``tfac``) carries over to a next link with the same or a shorter
    time gap ``T`` and ends before one with a longer ``T``: there ``T`` stands for a lower capacity
    (friction, a booth's processing rate) that a lane change upstream must not lift."""
    NL = lane_link.shape[0]
    L = link_len.shape[0]
    for lane in range(NL):
        link = lane_link[lane]
        length = link_len[link]
        while True:
            h = lane_head[lane]
            if h < 0 or x[h] <= length:
                break
            tg = tgt[h]
            if tg == BLOCKED:
                # cannot happen while the stop line bounds the update; keep the vehicle, count it
                counters[C_CLAMP] += 1
                x[h] = length
                v[h] = 0.0
                break
            _unlink(prv, nxt, lane_head, lane_tail, lane, h)
            cum_out[link] += 1
            sl = slot[h]
            if tg == SINK:
                route_out[slot_route[sl]] += 1
                if uid[h] < rec_veh_exit.shape[0]:
                    rec_veh_exit[uid[h]] = link
                sink_exits[link] += 1
                counters[C_INSIDE] -= 1
                counters[C_EXITED] += 1
                _free_vehicle(h, vlane, free, n_free)
                continue
            nslot = slot_next[sl]
            x[h] -= length
            nl = lane_link[tg]
            cum_in[nl] += 1
            rec_vkt[ti, nl] += x[h]
            _link_sorted(x, prv, nxt, lane_head, lane_tail, vlane, tg, h)
            _enter_link(h, nslot, x, cls, slot, stop_next, flags, slot_link, stop_off, stop_pos)
            if tfac[h] < 1.0 and cl_T[cls[h] * L + nl] > cl_T[cls[h] * L + link]:
                tfac[h] = 1.0
            tgt[h] = BLOCKED


@kernel(inline="always")
def _settle(flipped, x0, v0, x, v, status):
    """``status``, with the positions and speeds copied back into the state's ``x``, ``v`` when
    the last move pass left them in the other buffer."""
    if flipped:
        for i in range(x.shape[0]):
            x0[i] = x[i]
            v0[i] = v[i]
    return status


@kernel
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
    # every array is taken out of its tuple once, here; the passes get plain arrays
    link_len, link_lane0, lane_link, lane_idx = net.link_len, net.link_lane0, net.lane_link, net.lane_idx
    cls_len, cls_s0, cls_a, cls_b, cls_sab = net.cls_len, net.cls_s0, net.cls_a, net.cls_b, net.cls_sab
    cl_v0, cl_T, cl_vcrit = net.cl_v0, net.cl_T, net.cl_vcrit
    route_cls, route_off, route_src = net.route_cls, net.route_off, net.route_src
    slot_link, slot_route, slot_next, slot_move = net.slot_link, net.slot_route, net.slot_next, net.slot_move
    move_sig, move_win_off, win_start, win_end, win_amber = (net.move_sig, net.move_win_off, net.win_start,
                                                             net.win_end, net.win_amber)
    sig_cycle, sig_offset = net.sig_cycle, net.sig_offset
    feed_off, feed_lane = net.feed_off, net.feed_lane
    obs_off, obs_pos, obs_end = net.obs_off, net.obs_pos, net.obs_end
    stop_off, stop_pos, stop_bay, stop_start = net.stop_off, net.stop_pos, net.stop_bay, net.stop_start
    booth_pos, booth_min, booth_row, booth_wait = net.booth_pos, net.booth_min, net.booth_row, st.booth_wait
    det_off, det_pos, det_id = net.det_off, net.det_pos, net.det_id
    src_link, par, maxl = net.src_link, net.par, net.maxl
    lane_open, slot_lo, slot_hi, slot_map = ctl.lane_open, ctl.slot_lo, ctl.slot_hi, ctl.slot_map
    obs_active, arrivals, dwell_draw, lanes_rec = ctl.obs_active, ctl.arrivals, ctl.dwell, ctl.lanes_rec
    slot_plo, slot_phi, slot_dpref = ctl.slot_plo, ctl.slot_phi, ctl.slot_dpref
    x, v, xn_buf, vn_buf, dwell, lc_until = st.x, st.v, st.x_new, st.v_new, st.dwell, st.lc_until
    cls, slot, vlane, nxt, prv, tgt, yld = st.cls, st.slot, st.lane, st.nxt, st.prv, st.tgt, st.yld
    stop_next, flags, uid, free, n_free = st.stop_next, st.flags, st.uid, st.free, st.n_free
    lane_head, lane_tail = st.lane_head, st.lane_tail
    qbuf, q_off, q_head, q_len, bay, n_bay = st.qbuf, st.q_off, st.q_head, st.q_len, st.bay, st.n_bay
    cum_in, cum_out, sink_exits = st.cum_in, st.cum_out, st.sink_exits
    route_gen, route_in, route_out = st.route_gen, st.route_in, st.route_out
    move_state, stop_used, counters = st.move_state, st.stop_used, st.counters
    lc_v, lc_f, lc_l, afree, tfac = st.lc_v, st.lc_f, st.lc_l, st.afree, st.tfac
    sig_next, sig_tc, lane_md, ins_vfree = st.sig_next, st.sig_tc, st.lane_md, st.ins_vfree
    yld_move, yld_raw = net.yld_move, st.yld_raw
    rec_vkt, rec_vht, rec_cum_in, rec_cum_out = rec.vkt, rec.vht, rec.cum_in, rec.cum_out
    rec_queue_vs, rec_queue_m, rec_queue_m_max, rec_lanes = rec.queue_vs, rec.queue_m, rec.queue_m_max, rec.lanes
    rec_route_in, rec_route_out, rec_route_gen = rec.route_in, rec.route_out, rec.route_gen
    rec_src_queue, rec_wait = rec.src_queue, rec.wait
    rec_det_count, rec_det_occ, rec_det_vsum = rec.det_count, rec.det_occ, rec.det_vsum
    traj_x, traj_v, traj_link, traj_lane = rec.traj_x, rec.traj_v, rec.traj_link, rec.traj_lane
    rec_veh_cls, rec_veh_route, rec_veh_exit = rec.veh_cls, rec.veh_route, rec.veh_exit
    delta, polite, bsafe, thr, bias = par[P_DELTA], par[P_POLITE], par[P_BSAFE], par[P_THR], par[P_BIAS]
    mingap, cool, freedist, yield_d, look = par[P_MINGAP], par[P_COOL], par[P_FREEDIST], par[P_YIELD], par[P_LOOK]
    amber, qfrac, b_ins, strat = par[P_AMBER], par[P_QFRAC], par[P_BINS], par[P_STRAT]
    # lane-change relaxation (relaxation_s = 0: off, every factor stays exactly 1)
    rrate = dt / par[P_RELAX] if par[P_RELAX] > 0.0 else 0.0
    rf0 = par[P_RELAXF] if par[P_RELAX] > 0.0 else 1.0
    all_tgt = par[P_ALLTGT] > 0.0
    if rrate > 1.0:
        rrate = 1.0

    R = route_gen.shape[0]
    flipped = False  # whether x, v are st.x_new, st.v_new (the move pass swaps the buffers)
    for k in range(k0, k1):
        t = k * dt
        ti = k // spr
        for j in range(yld_move.shape[0]):
            move_state[yld_move[j]] = yld_raw[j]
        _update_signals(t, k, k == k0, move_sig, move_win_off, win_start, win_end, win_amber, sig_cycle, sig_offset,
                        move_state, sig_next, sig_tc, st.move_onset)
        if yld_move.shape[0] > 0:
            _give_way(k, move_state, yld_raw, yld_move, net.yld_off, net.yld_opp, net.move_in, net.move_gw,
                      net.move_out, net.yld_tc, net.yld_lo, net.yld_n, amber, x, v, cls, flags, slot, tgt, lane_head,
                      lane_tail, link_len, link_lane0, cls_len, cls_s0, cls_a, cl_v0, slot_move, net.slot_next)
        for r in range(R):
            n = arrivals[k - k0, r]
            if n > 0:
                s = route_src[r]
                cap = q_off[s + 1] - q_off[s]
                if q_len[s] + n > cap:
                    return _settle(flipped, st.x, st.v, x, v, STATUS_POOL)
                for _ in range(n):
                    qbuf[q_off[s] + (q_head[s] + q_len[s]) % cap] = r
                    q_len[s] += 1
                route_gen[r] += n
        _permissions(x, v, xn_buf, afree, tfac, dwell, lc_until, cls, slot, vlane, nxt, prv, tgt, yld, stop_next,
                     flags, lane_head, lane_tail, counters, lane_md,
                     link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cl_v0, cl_T, slot_link,
                     slot_next, slot_move, net.slot_vturn, maxl, feed_off, feed_lane, obs_off, obs_pos, obs_end, stop_off,
                     stop_pos, obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, net.move_release, st.move_onset,
                     net.move_gw,
                     delta, polite, bsafe, thr, bias, mingap, cool, freedist, yield_d, look, amber, rrate, rf0, dt,
                     all_tgt, k)
        d = 1 if k % 2 == 0 else -1
        _lane_changes(t, d, lc_v, lc_f, lc_l,
                      x, v, afree, tfac, dwell, lc_until, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags,
                      lane_head, lane_tail, counters, lane_md,
                      link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_sab, cl_v0, cl_T,
                      slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos, obs_end, stop_off,
                      stop_pos,
                      obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, slot_plo, slot_phi, slot_dpref,
                      delta, polite, bsafe, thr, bias, mingap, cool, freedist, yield_d, look, amber, strat, rf0)
        _move(ti, dt,
              x, v, xn_buf, vn_buf, afree, tfac, dwell, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, lane_head,
              lane_tail, bay, n_bay, stop_used, counters,
              link_len, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cls_sab, cl_v0, cl_T, slot_link,
              slot_next, slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos, stop_off, stop_pos, stop_bay,
              stop_start, det_off, det_pos, det_id, net.lane_order, obs_active, slot_lo, slot_hi, slot_map, lane_open,
              move_state, dwell_draw,
              booth_pos, booth_min, booth_row, booth_wait,
              rec_vkt, rec_vht, rec_queue_vs, rec_queue_m_max, rec_det_count, rec_det_occ, rec_det_vsum,
              delta, qfrac, look, amber)
        x, xn_buf = xn_buf, x
        v, vn_buf = vn_buf, v
        flipped = not flipped
        _bays(ti, dt, x, v, tfac, dwell, cls, slot, vlane, nxt, prv, tgt, stop_next, flags, lane_head, lane_tail, bay,
              n_bay, link_len, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cl_v0, cl_T, slot_link, slot_next,
              slot_move, maxl, stop_off, slot_lo, slot_hi, slot_map, lane_open, move_state, rec_vht,
              delta, bsafe, mingap, amber, rf0)
        _crossings(ti, x, v, tfac, cls, slot, vlane, nxt, prv, tgt, stop_next, flags, uid, lane_head, lane_tail, free,
                   n_free, cum_in, cum_out, sink_exits, route_out, counters,
                   link_len, lane_link, cl_T, slot_link, slot_next, slot_route, stop_off, stop_pos,
                   rec_vkt, rec_veh_exit)
        # insertion places at most one vehicle per lane of each source's first link per step
        ins_max = 0
        for s in range(q_len.shape[0]):
            nl = link_lane0[src_link[s] + 1] - link_lane0[src_link[s]]
            ins_max += q_len[s] if q_len[s] < nl else nl
        if ins_max > n_free[0]:
            return _settle(flipped, st.x, st.v, x, v, STATUS_POOL)
        _insert(t + dt, dt,
                x, v, tfac, dwell, lc_until, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, uid,
                lane_head, lane_tail, free, n_free, qbuf, q_off, q_head, q_len, cum_in, route_in, counters, ins_vfree,
                link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cl_v0, cl_T, cl_vcrit,
                route_cls, route_off, src_link, slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off,
                obs_pos, stop_off, stop_pos,
                obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state,
                rec_veh_cls, rec_veh_route,
                delta, b_ins, freedist, look, amber)
        q_total = 0
        for s in range(q_len.shape[0]):
            q_total += q_len[s]
        rec_wait[ti] += q_total * dt
        if traj_every > 0 and (k + 1) % traj_every == 0:
            si = (k + 1) // traj_every - 1
            if si < traj_x.shape[0]:
                _trajectories(si, x, v, vlane, uid, prv, lane_head, bay, n_bay, lane_link, lane_idx,
                              traj_x, traj_v, traj_link, traj_lane)
        if (k + 1) % spr == 0 or k + 1 == n_steps:
            _snapshot(ti, x, v, dwell, cls, flags, prv, lane_head, cum_in, cum_out, route_in, route_out, route_gen,
                      q_len, link_len, link_lane0, cls_len, cls_s0, cl_v0, cl_T, lanes_rec, qfrac,
                      rec_cum_in, rec_cum_out, rec_lanes, rec_queue_m, rec_queue_m_max, rec_route_in, rec_route_out,
                      rec_route_gen,
                      rec_src_queue, slot, slot_lo, slot_hi, lane_idx)
    return _settle(flipped, st.x, st.v, x, v, STATUS_OK)
