"""Vehicles in and out of the microscopic engine, and what it records (pass 7 and the records).

Insertion from the origin queues, entering a link (next bus stop), freeing a slot, bus-stop
bookkeeping, record-interval snapshots and trajectory samples. Argument conventions as in
:mod:`trafficsim.kernels.micro_base` (plain arrays, never the ``Micro*`` NamedTuples).
"""

from .idm import FREE_GAP, equilibrium_gap_scalar, idm_acceleration, max_speed_for_gap
from .micro_base import kernel
from .micro_base import (C_ENTERED, C_INSIDE, C_UID, F_COMMITTED, F_QUEUED, F_SERVED, _ahead, _crossing, _link_between,
                         _obstacle_gap, _waits_to_leave)


@kernel
def chunk_needs(arrivals, route_src, n_demand, q_len, q_off, need_q):
    """What a kernel call's arrivals ask of the origin queues, for the engine's pool check.

    Fills ``need_q`` (per source) with the arrivals of the first ``n_demand`` routes over the
    chunk (``arrivals``: steps x routes) and returns ``(queued, fits)``: the vehicles queued now
    and arriving in all, and whether every source's ring (``q_off``) holds its queue
    (``q_len``) plus its arrivals. One compiled call instead of half a dozen numpy ones per
    chunk: with one-minute records a 1 h run makes 60 calls."""
    for s in range(need_q.shape[0]):
        need_q[s] = 0
    for k in range(arrivals.shape[0]):
        for r in range(n_demand):
            need_q[route_src[r]] += arrivals[k, r]
    queued = 0
    fits = True
    for s in range(need_q.shape[0]):
        queued += q_len[s] + need_q[s]
        if q_len[s] + need_q[s] > q_off[s + 1] - q_off[s]:
            fits = False
    return queued, fits


@kernel
def _enter_link(w, sl, x, cls, slot, stop_next, flags, slot_link, stop_off, stop_pos):
    """Set the vehicle's slot and its next bus stop on the new link."""
    slot[w] = sl
    stop_next[w] = -1
    flags[w] &= ~(F_COMMITTED | F_QUEUED | F_SERVED)
    if cls[w] == 1:  # bus
        link = slot_link[sl]
        for s in range(stop_off[link], stop_off[link + 1]):
            if stop_pos[s] >= x[w]:
                stop_next[w] = s
                break


@kernel
def _free_vehicle(w, vlane, free, n_free):
    vlane[w] = -1
    free[n_free[0]] = w
    n_free[0] += 1


@kernel
def _serve_stop(w, slot, stop_next, slot_link, stop_off):
    s = stop_next[w]
    if s < 0:
        return  # served at a toll booth, not at a bus stop
    link = slot_link[slot[w]]
    stop_next[w] = s + 1 if s + 1 < stop_off[link + 1] else -1


@kernel
def _draw_dwell(s, dwell_draw, stop_used):
    P = dwell_draw.shape[1]
    i = stop_used[s] % P
    stop_used[s] += 1
    return dwell_draw[s, i]


@kernel
def _insert(t, dt,
            x, v, tfac, dwell, lc_until, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, uid,
            lane_head, lane_tail, free, n_free, qbuf, q_off, q_head, q_len, cum_in, route_in, counters, ins_vfree,
            link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cl_v0, cl_T, cl_vcrit,
            route_cls, route_off, src_link, slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off,
            obs_pos, stop_off, stop_pos,
            obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state,
            rec_veh_cls, rec_veh_route,
            delta, b_ins, freedist, look, amber):
    """Pass 7: origin queues release vehicles where the capacity state of the IDM allows.

    On a free road the speed bound of ``max_speed_for_gap`` (a 40-step bisection) depends only on
    the class and the link; ``ins_vfree`` (-1: not yet known) keeps it for the run."""
    L = link_len.shape[0]
    for s in range(src_link.shape[0]):
        link = src_link[s]
        tries = link_lane0[link + 1] - link_lane0[link]
        while q_len[s] > 0 and tries > 0:
            tries -= 1
            cap = q_off[s + 1] - q_off[s]
            r = qbuf[q_off[s] + q_head[s]]
            c = route_cls[r]
            sl = route_off[r]
            lc = cls_len[c]
            j = c * L + link
            v0 = cl_v0[j]
            T = cl_T[j]
            s0 = cls_s0[c]
            best_lane = -1
            best_v = -1.0
            best_x = lc
            lo = slot_lo[sl]
            hi = slot_hi[sl]
            if link_len[link] > freedist + lc:
                # far enough from the link end to change into the route's lanes later
                lo = 0
                hi = link_lane0[link + 1] - link_lane0[link] - 1
            for idx in range(lo, hi + 1):
                ln = link_lane0[link] + idx
                if lane_open[ln] == 0:
                    continue
                tail = lane_tail[ln]
                if tail >= 0:
                    g = x[tail] - cls_len[cls[tail]] - lc
                    vl = v[tail]
                else:
                    tg = _crossing(sl, ln, lc, 0.0, 0, slot_next, slot_move, lane_idx, lane_link, link_len, maxl,
                                   slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
                    g, vl = _ahead(-1, sl, ln, lc, tg, x, v, cls, prv, tgt, lane_head, lane_tail,
                                   link_len, lane_link, lane_idx, cls_len, slot_link, slot_next, slot_move,
                                   feed_off, feed_lane, obs_off, obs_pos, obs_active, slot_lo, slot_hi, slot_map,
                                   lane_open, move_state, look)
                og = _obstacle_gap(ln, lc, obs_off, obs_pos, obs_active)
                if og < g:
                    g = og
                    vl = 0.0
                if g < s0:
                    continue
                need = cl_vcrit[j]
                if g < FREE_GAP and vl < need:
                    need = vl
                # both conditions of max_speed_for_gap are monotone in v: when they fail at just
                # under `need`, its bisection ends below need - 1e-9 and the lane is rejected;
                # checking one speed first skips the 40-step bisection on most steps of a queue
                vq = need - 2e-9
                if vq > 0.0 and not (equilibrium_gap_scalar(vq, v0, T, s0, delta) <= g and idm_acceleration(
                        vq, g, vq - vl, v0, T, s0, cls_a[c], cls_b[c], delta) >= -b_ins):
                    continue
                # the gap opened during this step: the vehicle entered part of a step ago, at the
                # capacity state; placing it where it would be now keeps the source's headway
                # continuous (no loss of capacity to the step size)
                opened = False
                thr = 0.0
                if g < FREE_GAP:
                    thr = equilibrium_gap_scalar(need, v0, T, s0, delta)
                    opened = g - thr < need * dt
                if opened:
                    # the vehicle enters at `need`: the bisection only decides whether the lane is
                    # admissible, which the check above already did when it ran (vq > 0)
                    if vq <= 0.0 and max_speed_for_gap(g, vl, v0, T, s0, cls_a[c], cls_b[c], delta,
                                                       b_ins) + 1e-9 < need:
                        continue
                    v_ins = need
                    x_ins = lc + (g - thr if g > thr else 0.0)
                else:
                    if g >= FREE_GAP:
                        # nothing ahead: the leader's speed does not enter the bound
                        v_ins = ins_vfree[j]
                        if v_ins < 0.0:
                            v_ins = ins_vfree[j] = max_speed_for_gap(g, vl, v0, T, s0, cls_a[c], cls_b[c], delta,
                                                                     b_ins)
                    else:
                        # the bisection's speed keeps s_e(v) <= g, so v <= (g - s0) / T: a lane
                        # whose bound (widened past any rounding) cannot beat the best one so far
                        # is skipped without the 40 steps (the choice and its speed are unchanged)
                        if (g - s0) / T * (1.0 + 1e-9) + 1e-9 < best_v:
                            continue
                        v_ins = max_speed_for_gap(g, vl, v0, T, s0, cls_a[c], cls_b[c], delta, b_ins)
                    if v_ins + 1e-9 < need:
                        continue
                    x_ins = lc
                if v_ins > best_v:
                    best_v = v_ins
                    best_x = x_ins
                    best_lane = ln
            if best_lane < 0:
                break
            n_free[0] -= 1
            w = free[n_free[0]]
            x[w] = best_x
            v[w] = best_v
            tfac[w] = 1.0
            dwell[w] = 0.0
            lc_until[w] = t
            cls[w] = c
            flags[w] = 0
            u = counters[C_UID]
            uid[w] = u
            counters[C_UID] += 1
            if u < rec_veh_cls.shape[0]:
                rec_veh_cls[u] = c
                rec_veh_route[u] = r
            _link_between(prv, nxt, lane_head, lane_tail, vlane, best_lane, w, -1, lane_tail[best_lane])
            _enter_link(w, sl, x, cls, slot, stop_next, flags, slot_link, stop_off, stop_pos)
            tgt[w] = _crossing(sl, best_lane, best_x, best_v, 0, slot_next, slot_move, lane_idx, lane_link, link_len,
                               maxl, slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
            yld[w] = -1
            q_head[s] = (q_head[s] + 1) % cap
            q_len[s] -= 1
            route_in[r] += 1
            cum_in[link] += 1
            counters[C_INSIDE] += 1
            counters[C_ENTERED] += 1


@kernel
def _snapshot(ti, x, v, dwell, cls, flags, prv, lane_head, cum_in, cum_out, route_in, route_out, route_gen, q_len,
              link_len, link_lane0, cls_len, cls_s0, cl_v0, cl_T, lanes_rec, qfrac,
              rec_cum_in, rec_cum_out, rec_lanes, rec_queue_m, rec_queue_m_max, rec_route_in, rec_route_out,
              rec_route_gen, rec_src_queue, slot, slot_lo, slot_hi, lane_idx):
    """Record-interval snapshot: cumulative counts, lanes in force, queue lengths, origin queues.

    A lane's queue is its run of queued vehicles from the link's end: slower than ``qfrac`` x the
    desired speed, dwelling at a stop, or flagged ``F_QUEUED`` (halted in the queue at the link's
    end and not yet past it, so a queue discharging at green still reaches back to its standing
    part); a gap wider than the critical one (free-speed equilibrium gap ``v0 T + s0``, the
    spacing of the critical density less a length; the first vehicle's gap is to the link's end)
    ends the run, as a stretch below the critical density ends a CTM queue: queued vehicles with
    free road between them (the back of a red's queue and the slow start of the platoon released
    upstream) are not one queue. A queued vehicle that waits to change out of its lane starts
    such a run too when the lane's vehicles ahead of it flow: its lane does not lead to its next
    link (the lane ends there for it) and the road ahead of it in the lane is free, its gap to its
    leader's rear (to the link's end when it has none) wider than the critical one, so the lane
    change holds it back, not its leader (``micro_base._waits_to_leave``; ``micro._move`` reads
    the interval's longest by the same rule). The queue behind it is measured from the link's end,
    as the queue of a lane that ended there would be. A slow wrong-lane vehicle close behind its
    leader is slow with its lane (a platoon accelerating out of a queue upstream: at
    guangzhou-ave-south the U-turners just past the approach's queue, their lane change 130 m
    ahead, made the 150 m section read full while its end flowed) and starts no run."""
    L = link_len.shape[0]
    for link in range(L):
        rec_cum_in[ti, link] = cum_in[link]
        rec_cum_out[ti, link] = cum_out[link]
        rec_lanes[ti, link] = lanes_rec[link]
        length = link_len[link]
        qmax = 0.0
        for lane in range(link_lane0[link], link_lane0[link + 1]):
            w = lane_head[lane]
            qlen = 0.0
            c = 0
            back = length
            while w >= 0:
                c = cls[w]
                k = c * L + link
                if dwell[w] <= 0.0 and ((flags[w] & F_QUEUED) == 0 and v[w] >= qfrac * cl_v0[k]
                                        or back - x[w] > cl_v0[k] * cl_T[k] + cls_s0[c]):
                    break
                back = x[w] - cls_len[c]
                qlen = length - back
                w = prv[w]
            if w >= 0:
                # the lane flows at the link's end: find a queued vehicle waiting for a mandatory
                # change out of a lane that does not lead on (free road ahead of it in the lane;
                # ahead: its leader's rear, the link's end for the lane's first), and the run
                # behind it
                idx = lane_idx[lane]
                u = w
                ahead = back
                while u >= 0:
                    cu = cls[u]
                    sl = slot[u]
                    ku = cu * L + link
                    crit = cl_v0[ku] * cl_T[ku] + cls_s0[cu]
                    if v[u] < qfrac * cl_v0[ku] and _waits_to_leave(ahead - x[u], crit, idx, slot_lo[sl], slot_hi[sl]):
                        w = u
                        back = x[u]
                        while w >= 0:
                            c = cls[w]
                            k = c * L + link
                            if dwell[w] <= 0.0 and (v[w] >= qfrac * cl_v0[k]
                                                    or back - x[w] > cl_v0[k] * cl_T[k] + cls_s0[c]):
                                break
                            back = x[w] - cls_len[c]
                            qlen = length - back
                            w = prv[w]
                        break
                    ahead = x[u] - cls_len[cu]
                    u = prv[u]
            if w < 0 and qlen > 0.0:
                # every vehicle of the lane is queued and the last one's rear is less than one
                # critical spacing (free-speed equilibrium spacing, ~1/k_crit) from the link's
                # start: the lane is full, as a CTM link whose every cell is congested
                k = c * L + link
                if length - qlen < cl_v0[k] * cl_T[k] + cls_s0[c] + cls_len[c]:
                    qlen = length
            if qlen > length:
                qlen = length
            if qlen > qmax:
                qmax = qlen
        rec_queue_m[ti, link] = qmax
        if qmax > rec_queue_m_max[ti, link]:
            # the per-step maxima come from the move pass (before crossings and insertions)
            rec_queue_m_max[ti, link] = qmax
    for r in range(route_in.shape[0]):
        rec_route_in[ti, r] = route_in[r]
        rec_route_out[ti, r] = route_out[r]
        rec_route_gen[ti, r] = route_gen[r]
    for s in range(q_len.shape[0]):
        rec_src_queue[ti, s] = q_len[s]


@kernel
def _trajectories(si, x, v, vlane, uid, prv, lane_head, bay, n_bay, lane_link, lane_idx,
                  traj_x, traj_v, traj_link, traj_lane):
    """Sample position, speed, link and lane of the recorded vehicles into row ``si``."""
    V = traj_x.shape[1]
    NL = lane_link.shape[0]
    for lane in range(NL):
        w = lane_head[lane]
        while w >= 0:
            u = uid[w]
            if u < V:
                traj_x[si, u] = x[w]
                traj_v[si, u] = v[w]
                traj_link[si, u] = lane_link[lane]
                traj_lane[si, u] = lane_idx[lane]
            w = prv[w]
    for i in range(n_bay[0]):
        w = bay[i]
        u = uid[w]
        if u < V:
            traj_x[si, u] = x[w]
            traj_v[si, u] = 0.0
            traj_link[si, u] = lane_link[vlane[w]]
            traj_lane[si, u] = -1
