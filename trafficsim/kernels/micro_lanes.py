"""Node permissions, the zipper and MOBIL lane changes of the microscopic engine (passes 2-3).

See :mod:`trafficsim.kernels.micro` for the step and :mod:`trafficsim.kernels.micro_base` for the
argument conventions (plain arrays, never the ``Micro*`` NamedTuples). The pass functions take
the same argument blocks in the same order: the vehicle state (``x`` ... ``counters``), the
network (``link_len`` ... ``stop_pos``), the controls (``obs_active`` ... ``move_state``) and the
parameters (``delta`` ... ``amber``).
"""

from .micro_base import kernel
from ._jit import unsigned
from .micro_base import (
    BLOCKED, C_LC, F_COMMITTED, FREE_GAP, GREEN, UNKNOWN, ZIPPER_ZONE,
    _accel_f, _blocked, _crossing, _entry_safe, _front, _link_between, _obstacle_gap, _relax_start, _unlink,
)
from .idm import free_term, speed_drop_term
from .mobil import mobil_incentive

#: A vehicle that must leave its lane adapts its speed to the gap it will merge into from this
#: many times ``yield_distance_m`` before the lane ends (the zipper courtesy of the followers
#: starts at ``yield_distance_m``).
ANTICIPATION = 2.0

#: Speed [m/s] below which a merger counts as standing (see the zipper in ``_permissions``).
STANDING = 0.5


@kernel(inline="always")
def _blocked_past_node(sl, lane, xp, link_len, lane_link, lane_idx, maxl, obs_off, obs_pos, obs_end, obs_active,
                       slot_lo, slot_hi, slot_map, lane_open, yield_d):
    """A blocked segment just past the node: ``(distance, direction)``.

    ``distance`` [m] from front position ``xp`` to the nearest active blocked segment on the lane
    that ``lane`` leads into on the next link of slot ``sl`` (``FREE_GAP`` when none starts within
    ``yield_d``); ``direction`` is +1 / -1 when the lane to the left / right also leads on and
    its next lane is clear over that stretch (the lane to take now), else 0."""
    dn = link_len[lane_link[lane]] - xp
    idx = lane_idx[lane]
    lo = slot_lo[sl]
    hi = slot_hi[sl]
    if dn >= yield_d or idx < lo or idx > hi:
        return FREE_GAP, 0
    tl = slot_map[sl * maxl + idx]
    if tl < 0 or obs_off[tl + 1] == obs_off[tl]:
        return FREE_GAP, 0
    og = dn + _obstacle_gap(tl, 0.0, obs_off, obs_pos, obs_active)
    if og >= yield_d:
        return FREE_GAP, 0
    reach = og - dn + 30.0
    for d in (1, -1):
        j = idx + d
        if lo <= j <= hi and lane_open[lane + d]:
            tj = slot_map[sl * maxl + j]
            if tj >= 0 and lane_open[tj] and not _blocked(tj, 0.0, reach, obs_off, obs_pos, obs_end, obs_active):
                return og, d
    return og, 0


@kernel(inline="always")
def _mandatory_dir(w, lane, xp, x, v, slot, stop_next, nxt, dwell, stop_off, link_len, link_lane0, lane_link,
                   lane_idx, maxl, obs_off, obs_pos, obs_end, obs_active, slot_lo, slot_hi, slot_map, lane_open,
                   yield_d):
    """+1 / -1 when vehicle ``w`` must move left / right (route, closure, blockage on this link or
    just past the node, a bus dwelling at an in-lane stop right ahead, its own bus stop), else 0."""
    sl = slot[w]
    idx = lane_idx[lane]
    if stop_next[w] >= 0:
        # a bus bound for a stop on this link needs the kerb lane first, the route's lanes after
        return -1 if idx > 0 else 0
    lo = slot_lo[sl]
    hi = slot_hi[sl]
    if lo <= hi:
        if idx < lo:
            return 1
        if idx > hi:
            return -1
    link = lane_link[lane]
    if link_len[link] - xp < yield_d:
        _, dn = _blocked_past_node(sl, lane, xp, link_len, lane_link, lane_idx, maxl, obs_off, obs_pos, obs_end,
                                   obs_active, slot_lo, slot_hi, slot_map, lane_open, yield_d)
        if dn != 0:
            return dn
    og = _obstacle_gap(lane, xp, obs_off, obs_pos, obs_active)
    if og < yield_d:
        n = link_lane0[link + 1] - link_lane0[link]
        reach = xp + og + 30.0
        if idx + 1 < n and lane_open[lane + 1] and not _blocked(lane + 1, xp - 20.0, reach, obs_off, obs_pos,
                                                                 obs_end, obs_active):
            return 1
        if idx >= 1 and lane_open[lane - 1] and not _blocked(lane - 1, xp - 20.0, reach, obs_off, obs_pos,
                                                             obs_end, obs_active):
            return -1
    if idx == 0 and stop_off[link + 1] > stop_off[link] and idx + 1 <= hi and lane_open[lane + 1]:
        if _held_bus_ahead(w, xp, yield_d, x, v, nxt, dwell, stop_next) < yield_d:
            return 1
    return 0


@kernel(inline="always")
def _held_bus_ahead(w, xp, reach, x, v, nxt, dwell, stop_next):
    """Distance [m] to the first bus ahead of ``w`` in its lane (within ``reach``) that dwells at an
    in-lane stop or stands in the queue for it, ``FREE_GAP`` if none: drivers pass it."""
    u = nxt[w]
    while u >= 0 and x[u] - xp < reach:
        if dwell[u] > 0.0 or (stop_next[u] >= 0 and v[u] < STANDING):
            return x[u] - xp
        u = nxt[u]
    return FREE_GAP


@kernel(inline="always")
def _quick_gap(w, lead, xp, no_obs, len_link, x, v, cls, cls_len, stop_next):
    """``(True, gap, speed)`` when ``_front(w, lane, xp, lead, tg)`` reduces to the
    same-lane leader, whatever ``tg``: a leader, no blocked segment in the lane, no bus stop
    ahead, and the stop line not closer than the leader (then ``tg == BLOCKED`` changes nothing).
    ``(False, 0, 0)`` otherwise: call ``_front``."""
    if lead < 0 or not no_obs or stop_next[w] >= 0:
        return False, 0.0, 0.0
    g = x[lead] - cls_len[cls[lead]] - xp
    if len_link - xp < g:
        return False, 0.0, 0.0
    return True, g, v[lead]


@kernel
def _swap(w, lane, j, md,
          x, v, tfac, dwell, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, lane_head, lane_tail, counters,
          link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, slot_next, slot_move, maxl, obs_off, obs_pos,
          obs_end, stop_off, obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, yield_d, amber, rf0):
    """Two standing vehicles side by side, each needing the other's lane, trade places.

    Without this, a vehicle waiting at the end of its lane for the lane of a neighbour that
    waits for its lane would deadlock both (they see each other as the blocking vehicle).
    "Side by side" includes two vehicles one just behind the other, nearer than the rear one's
    jam distance ``s0``: neither then fits into the other's lane either (the one in front would
    stand within ``s0`` of the other, the one behind would have to pass it), and both would wait
    for good. The trade keeps every position; it is made only where it overlaps no one."""
    if v[w] > 0.5 or lane_open[j] == 0:
        return False
    lw = cls_len[cls[w]]
    # partners in lane j: from the first vehicle whose rear is less than w's s0 ahead of w's
    # front, upstream to the last whose front is less than its own s0 behind w's rear
    u = lane_head[j]
    while u >= 0 and x[u] - cls_len[cls[u]] >= x[w] + cls_s0[cls[w]]:
        u = prv[u]
    while u >= 0 and x[u] > x[w] - lw - cls_s0[cls[u]]:
        if v[u] <= 0.5 and dwell[u] <= 0.0 and _mandatory_dir(
                u, j, x[u], x, v, slot, stop_next, nxt, dwell, stop_off, link_len, link_lane0, lane_link, lane_idx,
                maxl, obs_off, obs_pos, obs_end, obs_active, slot_lo, slot_hi, slot_map, lane_open, yield_d) == -md:
            break
        u = prv[u]
    if u < 0 or x[u] <= x[w] - lw - cls_s0[cls[u]]:
        return False
    lu = cls_len[cls[u]]
    a = nxt[u]
    b = prv[u]
    if (a >= 0 and x[a] - cls_len[cls[a]] < x[w]) or (b >= 0 and x[w] - lw < x[b]):
        return False
    a = nxt[w]
    b = prv[w]
    if (a >= 0 and x[a] - cls_len[cls[a]] < x[u]) or (b >= 0 and x[u] - lu < x[b]):
        return False
    fw = prv[w]
    lw_ = nxt[w]
    fu = prv[u]
    lu_ = nxt[u]
    _unlink(prv, nxt, lane_head, lane_tail, lane, w)
    _unlink(prv, nxt, lane_head, lane_tail, j, u)
    _link_between(prv, nxt, lane_head, lane_tail, vlane, j, w, fu, lu_)
    _link_between(prv, nxt, lane_head, lane_tail, vlane, lane, u, fw, lw_)
    for q in (w, u):
        tgt[q] = _crossing(slot[q], vlane[q], x[q], v[q], 0, slot_next, slot_move, lane_idx, lane_link, link_len,
                           maxl, slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
        yld[q] = -1
    for q in (w, u, fu, fw):
        _relax_start(q, rf0, tfac)
    counters[C_LC] += 2
    return True


#: A ramp meter's green releases the first vehicle of its lane within this distance [m] of the line
METER_RELEASE_M = 10.0
#: A vehicle of a movement that gives way (``micro._give_way``) commits to crossing once it is the
#: first of its lane, its movement is free and its front is within its jam distance plus this [m]
#: of the line: it has started into the gap and is not stopped again by the next opposing vehicle
GIVE_WAY_COMMIT_M = 1.0


@kernel
def _permissions(x, v, xn_buf, afree, tfac, dwell, lc_until, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags,
                 lane_head, lane_tail, counters, lane_md,
                 link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_b, cl_v0, cl_T, slot_link,
                 slot_next, slot_move, slot_vturn, maxl, feed_off, feed_lane, obs_off, obs_pos, obs_end, stop_off,
                 stop_pos, obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, move_release, move_onset, move_gw,
                 delta, polite, bsafe, thr, bias, mingap, cool, freedist, yield_d, look, amber, rrate, rf0, dt,
                 all_tgt, k):
    """Pass 2: the IDM free-road term, the lane-change relaxation and the node permission of
    every vehicle that needs one, then the courteous followers (zipper).

    Relaxation: a time-gap factor below 1 (``tfac``, set by a lane change) moves towards 1 by
    ``rrate = dt / relaxation_s`` of the difference per step, exponentially as the LMRS's time
    gap (Schakel et al. 2012), and snaps to 1 within 0.1% of it.

    The free-road term (``afree``) depends on the vehicle's own speed at the start of the step
    and its link only; speeds change only in the move pass, so lane changes and the accelerations
    of the move pass share it (MOBIL evaluates up to six accelerations per vehicle).

    The first walk also copies every position into ``xn_buf``, where the move pass bounds steps
    across nodes (``micro._bound_across_node``), and marks the lanes where a vehicle may have to
    change lane (``lane_md``): a blocked segment or a bus stop in the lane, a bus, a vehicle in a
    lane that does not lead on along its route, or one within ``yield_d`` of a node whose next
    lane has a blocked segment; everywhere else ``_mandatory_dir`` is 0 for every vehicle, and the second walk
    skips the lane (most lanes of a city network).

    The onset of a ramp meter's green (``move_release``, ``move_onset``) releases the first
    vehicle of the lane within ``METER_RELEASE_M`` of the line, one per green: it is committed,
    so it enters when the merge beyond lets it,
    after the green if need be, as a vehicle released by a ramp signal does. (Held back by the
    zipper until the amber, it was stopped again: a meter at a merge node passed less than half
    its rate.)
    A vehicle of a movement that gives way (``move_gw``) commits once it sets off from the line
    into an accepted gap (``GIVE_WAY_COMMIT_M``), so the next opposing vehicle does not stop it
    inside the junction.

    The node permission (``tgt``) is computed for the vehicles whose permission someone reads
    this step: a lane's first vehicle (its look past the node, the node bound of the move pass,
    the crossing), a vehicle committed to the node, one in the merge zone (the zipper reads the
    permissions there), one that cannot stop before the line at ``amber`` (it commits at amber)
    and one that may reach the node within the step. Every other vehicle has a leader in its
    lane whose rear lies before the stop line, so the line never binds it, and its ``tgt`` is
    ``UNKNOWN``; whoever reads it then computes it (``_front``, the move pass for a vehicle that
    leads its lane after a lane change ahead of it; ``all_tgt``, a test-only switch, computes every
    permission, which must give the same results). On long links most vehicles are such followers:
    on the on-ramp corridor skipping their permission (a dozen scattered loads and branches
    each) took about a quarter off this pass's time; records are unchanged."""
    NL = lane_link.shape[0]
    L = link_len.shape[0]
    ant_d = ANTICIPATION * yield_d
    zip_d = ZIPPER_ZONE * look
    for lane in range(NL):
        w = lane_head[lane]
        if w < 0:
            lane_md[lane] = 0
            continue
        link = lane_link[lane]
        idx = lane_idx[lane]
        length = link_len[link]
        md_here = obs_off[lane + 1] > obs_off[lane] or (idx == 0 and stop_off[link + 1] > stop_off[link])
        first = True
        while w >= 0:
            # the vehicle's fields are read once, before any store: the compiler cannot tell the
            # arrays apart, so a field read after a store to another array is loaded again
            uw = unsigned(w)
            sl = slot[uw]
            xw = x[uw]
            vw = v[uw]
            fl = flags[uw]
            nw = prv[uw]
            xn_buf[uw] = xw
            if not md_here:
                lo = slot_lo[sl]
                hi = slot_hi[sl]
                if stop_next[uw] >= 0:
                    md_here = True
                elif lo <= hi:
                    if idx < lo or idx > hi:
                        md_here = True
                    elif length - xw < yield_d:
                        tl = slot_map[sl * maxl + idx]
                        md_here = tl >= 0 and obs_off[tl + 1] > obs_off[tl]
            c = cls[uw]
            ca = cls_a[c]
            fr = free_term(vw, cl_v0[c * L + link], delta, ca, cls_b[c])
            dn = length - xw
            if dn < look:
                # a lower desired speed on a link ahead, or through a turn, is anticipated within
                # the look-ahead (slowing before the node; over short links, before the one before)
                s_at = sl
                ns = slot_next[sl]
                dist = dn
                while ns >= 0 and dist < look:
                    vn = cl_v0[c * L + slot_link[ns]]
                    vt = slot_vturn[s_at]
                    if vt < vn:
                        vn = vt
                    fr = speed_drop_term(fr, vw, vn, dist, ca, cls_b[c], dt)
                    dist += link_len[slot_link[ns]]
                    s_at = ns
                    ns = slot_next[ns]
            afree[uw] = fr
            # (branch-free: a factor of 1 stays exactly 1, and most vehicles are not relaxing)
            f = tfac[uw]
            f += (1.0 - f) * rrate
            tfac[uw] = f if f < 0.999 else 1.0
            committed = fl & F_COMMITTED
            if (all_tgt or first or committed or dn < zip_d or vw * vw > 2.0 * amber * dn
                    or dn < (vw + ca * dt) * dt + 1.0):
                tg = _crossing(sl, lane, xw, vw, committed, slot_next, slot_move, lane_idx, lane_link, link_len,
                               maxl, slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
                if tg != BLOCKED and not committed:
                    mv = slot_move[sl]
                    if mv >= 0 and (move_state[mv] != GREEN or (move_release[mv] and move_onset[mv] == k and first
                                                            and dn < METER_RELEASE_M)
                                    or (move_gw[mv] and first and dn < cls_s0[c] + GIVE_WAY_COMMIT_M)):
                        flags[uw] = fl | F_COMMITTED
            else:
                tg = UNKNOWN
            tgt[uw] = tg
            first = False
            yld[uw] = -1
            w = nw
        lane_md[lane] = md_here
    for lane in range(NL):
        if not lane_md[lane]:
            continue
        link = lane_link[lane]
        length = link_len[link]
        has_obs = obs_off[lane + 1] > obs_off[lane]
        stops_here = lane_idx[lane] == 0 and stop_off[link + 1] > stop_off[link]
        w = lane_head[lane]
        while w >= 0:
            if length - x[w] >= ant_d and not has_obs and stop_next[w] < 0 and not stops_here:
                # nothing brings its lane's end (dist below) within ant_d
                w = prv[w]
                continue
            md = _mandatory_dir(w, lane, x[w], x, v, slot, stop_next, nxt, dwell, stop_off, link_len, link_lane0,
                                lane_link, lane_idx, maxl, obs_off, obs_pos, obs_end, obs_active, slot_lo, slot_hi,
                                slot_map, lane_open, yield_d)
            if md == 0:
                w = prv[w]
                continue
            # where the vehicle must be out of its lane: the link's end, a blocked segment, the
            # bus's stop, a bus held at an in-lane stop ahead
            dist = length - x[w]
            if has_obs:
                og = _obstacle_gap(lane, x[w], obs_off, obs_pos, obs_active)
                if og < dist:
                    dist = og
            if length - x[w] < yield_d:
                og, _ = _blocked_past_node(slot[w], lane, x[w], link_len, lane_link, lane_idx, maxl, obs_off,
                                           obs_pos, obs_end, obs_active, slot_lo, slot_hi, slot_map, lane_open,
                                           yield_d)
                if og < dist:
                    dist = og
            s = stop_next[w]
            if s >= 0 and stop_pos[s] - x[w] < dist:
                # a bus must reach the kerb lane by its stop, not by the end of the link
                dist = stop_pos[s] - x[w] if stop_pos[s] > x[w] else 0.0
            if stops_here and stop_next[w] < 0:
                db = _held_bus_ahead(w, x[w], dist, x, v, nxt, dwell, stop_next)
                if db < dist:
                    dist = db  # buses held at an in-lane stop ahead: pass them
            if dist >= ant_d:
                w = prv[w]
                continue
            nw = prv[w]
            if dwell[w] <= 0.0 and yld[w] < 0:
                # anticipation: before its lane ends the vehicle adapts its speed to the gap it
                # will merge into, behind the first vehicle of the target lane whose front is
                # level with or ahead of its own (micro._move, braking at most b), as the
                # follower does for it (zipper below). Side by side, the merger drops behind:
                # with both waiting for the other, two queues would crawl abreast for good.
                # (walked from the nearer end of the target lane: a vehicle whose lane ends is
                # near the link's end, behind a long queue of the lane it joins)
                j = lane + md
                xw = x[w]
                l = lane_head[j]
                if l >= 0 and x[l] - xw < xw - x[lane_tail[j]]:
                    found = -1
                    while l >= 0 and x[l] >= xw:
                        found = l
                        l = prv[l]
                    l = found
                else:
                    l = lane_tail[j]
                    while l >= 0 and x[l] < xw:
                        l = nxt[l]
                yld[w] = l
            if dwell[w] <= 0.0 and _swap(
                    w, lane, lane + md, md,
                    x, v, tfac, dwell, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, lane_head, lane_tail,
                    counters, link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, slot_next, slot_move, maxl,
                    obs_off, obs_pos, obs_end, stop_off, obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state,
                    yield_d, amber, rf0):
                # the vehicle swapped into lane + md is walked there (when that lane comes later)
                lane_md[lane + md] = 1
                w = nw
                continue
            if dist >= yield_d:
                w = nw
                continue
            if dwell[w] <= 0.0:
                j = lane + md
                rear = x[w] - cls_len[cls[w]]
                # the follower: the first vehicle whose front is behind the merger's; one that
                # overlaps it falls back only while the merger moves (a merger standing at its
                # lane end cannot move up: then the first vehicle wholly behind it yields)
                xf = x[w] if v[w] > STANDING else rear - 0.5 * cls_s0[cls[w]]
                f = lane_head[j]
                while f >= 0 and x[f] >= xf:
                    f = prv[f]
                if f >= 0:
                    # the follower yields when it can match the merger's speed behind its rear
                    # braking at most b (it then brakes at most b, see micro._move); the IDM
                    # acceleration towards the merger would refuse every yield in a dense queue
                    gf = rear - x[f]
                    dv = v[f] - v[w]
                    if dv <= 0.0 or dv * dv <= 2.0 * cls_b[cls[f]] * gf:
                        y = yld[f]
                        if y < 0 or x[w] < x[y]:
                            yld[f] = w
            w = prv[w]


@kernel
def _lane_changes(t, d, lc_v, lc_f, lc_l,
                  x, v, afree, tfac, dwell, lc_until, cls, slot, vlane, nxt, prv, tgt, yld, stop_next, flags, lane_head,
                  lane_tail, counters, lane_md,
                  link_len, link_lane0, lane_link, lane_idx, cls_len, cls_s0, cls_a, cls_sab, cl_v0, cl_T,
                  slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos, obs_end, stop_off,
                  stop_pos,
                  obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, slot_plo, slot_phi, slot_dpref,
                  delta, polite, bsafe, thr, bias, mingap, cool, freedist, yield_d, look, amber, strat, rf0):
    """Pass 3: MOBIL sweeps over every pair of adjacent lanes, all to the left (``d = 1``) or all
    to the right (``d = -1``).

    Each sweep decides and applies the lane changes from ``src`` to the adjacent ``dst`` (two
    pointers along both lanes). The MOBIL decision of each vehicle ``w`` (new follower ``fol``,
    new leader ``lead`` in ``dst``) is written out in the loop rather than called: a call with this
    many arguments costs about 40 ns per vehicle, more than the decision itself in free flow; for
    the same reason the sweep is not a function of its own (a call per lane pair passed ~60
    arrays, and most lanes of a city network hold one or two vehicles).

    ``_mandatory_dir`` is asked only in the lanes that ``_permissions`` marked in ``lane_md``: a
    source lane is swept before it receives any vehicle in this pass, so it holds the vehicles
    that pass saw."""
    L = link_len.shape[0]
    for link in range(L):
        a0 = link_lane0[link]
        n = link_lane0[link + 1] - a0
        if n < 2:
            continue
        # d > 0: source lanes n - 2 down to 0, each into the lane on its left; d < 0: source
        # lanes 1 up to n - 1, each into the lane on its right
        for k in range(n - 1):
            src = a0 + (n - 2 - k if d > 0 else k + 1)
            dst = src + d
            if lane_tail[src] < 0 or lane_open[dst] == 0:
                continue
            nd = 0
            fol = -1
            p = lane_tail[dst]
            last_lead = -2
            w = lane_tail[src]
            while w >= 0:
                while p >= 0 and x[p] <= x[w]:
                    fol = p
                    p = nxt[p]
                lead = p
                ok = False
                for _ in range(1 if lead != last_lead else 0):
                    # ---- MOBIL decision for w from src to dst (direction d); `break` = no change
                    if dwell[w] > 0.0 or t < lc_until[w]:
                        break
                    xw = x[w]
                    # the cheap tests first (every test here only ends the decision, so their order
                    # does not change it): room beside w in dst, then why w would change
                    lw = cls_len[cls[w]]
                    mg = mingap
                    if lead >= 0 and x[lead] - cls_len[cls[lead]] - xw < mg:
                        break
                    if fol >= 0 and xw - lw - x[fol] < mg:
                        break
                    if _blocked(dst, xw - lw - mg, xw + mg, obs_off, obs_pos, obs_end, obs_active):
                        break
                    md = 0
                    if lane_md[src]:
                        md = _mandatory_dir(w, src, xw, x, v, slot, stop_next, nxt, dwell, stop_off, link_len,
                                            link_lane0, lane_link, lane_idx, maxl, obs_off, obs_pos, obs_end,
                                            obs_active, slot_lo, slot_hi, slot_map, lane_open, yield_d)
                    if md != 0 and md != d:
                        break
                    link = lane_link[src]
                    sl = slot[w]
                    if md == 0:
                        if stop_next[w] >= 0:
                            break
                        di = lane_idx[dst]
                        if (di < slot_lo[sl] or di > slot_hi[sl]) and link_len[link] - xw < freedist:
                            break
                        # strategic lane choice: within `strat` of the node that needs them, the lanes
                        # that lead on along the route are sought like a mandatory change (safety only)
                        # and never left for a discretionary gain
                        if link_len[link] - xw + slot_dpref[sl] < strat:
                            plo = slot_plo[sl]
                            phi = slot_phi[sl]
                            si = lane_idx[src]
                            if si < plo or si > phi:
                                if (si < plo) != (d > 0):
                                    break
                                md = d
                            elif di < plo or di > phi:
                                break
                    vw = v[w]
                    cw = cls[w]
                    no_obs_dst = obs_off[dst + 1] == obs_off[dst]
                    no_obs_src = obs_off[src + 1] == obs_off[src]
                    len_link = link_len[link]
                    # the new follower's safety before w's own acceleration in dst, which may need the
                    # look-ahead past the node: in dense traffic it ends most decisions
                    an_new = 0.0
                    if fol >= 0:
                        gfol = xw - lw - x[fol]
                        an_new = _accel_f(afree[fol], tfac[fol], cls[fol], link, gfol, vw, v[fol], L, cl_T, cls_s0,
                                          cls_a, cls_sab)
                        if an_new < -bsafe:
                            if md == 0:
                                break
                            # urgency: close to where the lane ends the IDM braking of the new follower
                            # (which is large for any gap below s0, even standing still) gives way to the
                            # kinematic criterion: the follower can match the merger's speed braking at
                            # most b_safe. Without it a yielding follower that stopped less than s0
                            # behind a standing merger locks both for good.
                            dist = len_link - xw
                            if not no_obs_src:
                                og = _obstacle_gap(src, xw, obs_off, obs_pos, obs_active)
                                if og < dist:
                                    dist = og
                            sn = stop_next[w]
                            if sn >= 0 and stop_pos[sn] - xw < dist:
                                dist = stop_pos[sn] - xw
                            if dist >= yield_d:
                                break
                            dvf = v[fol] - vw
                            if dvf > 0.0 and dvf * dvf > 2.0 * bsafe * gfol:
                                break
                    ac = 0.0
                    an_old = 0.0
                    ao_new = 0.0
                    ao_old = 0.0
                    ao_hi = 0.0
                    o = prv[w]
                    b = bias if d < 0 else -bias
                    if md == 0:
                        # w's own acceleration in src and the followers' before the change first: w's
                        # acceleration in dst is at most its free-road one (cls_a x afree), so when even
                        # that bound leaves the incentive at or below the threshold the change is refused
                        # without the look-ahead past the node in dst, which most lane leaders need (a
                        # city network's lanes hold one or two vehicles). Every test here only ends the
                        # decision, so the order does not change it.
                        # When _front reduces to the same-lane leader (no blocked segment in the lane, no
                        # bus stop ahead, the stop line behind the leader) the gap is taken here, with the
                        # same arithmetic and without _front's node permission (see _quick_gap)
                        qk, g, vl = _quick_gap(w, nxt[w], xw, no_obs_src, len_link, x, v, cls, cls_len, stop_next)
                        if not qk:
                            g, vl = _front(w, src, xw, nxt[w], tgt[w], x, v, cls, slot, flags, stop_next, prv, tgt,
                                           lane_head, lane_tail, link_len, lane_link, lane_idx, cls_len, cls_s0,
                                           slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off,
                                           obs_pos, obs_active, stop_pos, slot_lo, slot_hi, slot_map, lane_open,
                                           move_state, look, amber=amber)
                        ac = _accel_f(afree[w], tfac[w], cw, link, g, vl, vw, L, cl_T, cls_s0, cls_a, cls_sab)
                        if fol >= 0:
                            qk, gf, vf = _quick_gap(fol, lead, x[fol], no_obs_dst, len_link, x, v, cls, cls_len,
                                                    stop_next)
                            if not qk:
                                gf, vf = _front(fol, dst, x[fol], lead, UNKNOWN, x, v, cls, slot, flags, stop_next,
                                                prv, tgt, lane_head, lane_tail, link_len, lane_link, lane_idx, cls_len,
                                                cls_s0, slot_link, slot_next, slot_move, maxl, feed_off, feed_lane,
                                                obs_off, obs_pos, obs_active, stop_pos, slot_lo, slot_hi, slot_map,
                                                lane_open, move_state, look, amber=amber)
                            an_old = _accel_f(afree[fol], tfac[fol], cls[fol], link, gf, vf, v[fol], L, cl_T,
                                              cls_s0, cls_a, cls_sab)
                        if o >= 0:
                            ao_old = _accel_f(afree[o], tfac[o], cls[o], link, xw - lw - x[o], vw, v[o], L, cl_T,
                                              cls_s0, cls_a, cls_sab)
                            # the old follower's acceleration behind w's leader is at most its free-road
                            # one too, and the incentive does not decrease with it (politeness >= 0)
                            ao_hi = cls_a[cls[o]] * afree[o]
                        if polite >= 0.0 and not mobil_incentive(cls_a[cw] * afree[w], ac, an_new, an_old, ao_hi,
                                                                 ao_old, polite, b) > thr:
                            break
                    qk, g2, vl2 = _quick_gap(w, lead, xw, no_obs_dst, len_link, x, v, cls, cls_len, stop_next)
                    if not qk:
                        g2, vl2 = _front(w, dst, xw, lead, UNKNOWN, x, v, cls, slot, flags, stop_next, prv, tgt,
                                         lane_head, lane_tail, link_len, lane_link, lane_idx, cls_len, cls_s0,
                                         slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off, obs_pos,
                                         obs_active, stop_pos, slot_lo, slot_hi, slot_map, lane_open, move_state,
                                         look, amber=amber)
                    acn = _accel_f(afree[w], tfac[w], cw, link, g2, vl2, vw, L, cl_T, cls_s0, cls_a, cls_sab)
                    if md != 0:
                        ok = acn >= -bsafe or vw < 1.0
                        break
                    if acn < -bsafe:
                        break
                    if o >= 0:
                        # the same bound with w's acceleration in dst: refused without the old
                        # follower's look-ahead
                        if polite >= 0.0 and not mobil_incentive(acn, ac, an_new, an_old, ao_hi, ao_old, polite,
                                                                 b) > thr:
                            break
                        qk, go, vo = _quick_gap(o, nxt[w], x[o], no_obs_src, len_link, x, v, cls, cls_len, stop_next)
                        if not qk:
                            go, vo = _front(o, src, x[o], nxt[w], tgt[o], x, v, cls, slot, flags, stop_next, prv, tgt,
                                            lane_head, lane_tail, link_len, lane_link, lane_idx, cls_len, cls_s0,
                                            slot_link, slot_next, slot_move, maxl, feed_off, feed_lane, obs_off,
                                            obs_pos, obs_active, stop_pos, slot_lo, slot_hi, slot_map, lane_open,
                                            move_state, look, amber=amber)
                        ao_new = _accel_f(afree[o], tfac[o], cls[o], link, go, vo, v[o], L, cl_T, cls_s0, cls_a, cls_sab)
                    inc = mobil_incentive(acn, ac, an_new, an_old, ao_new, ao_old, polite, b)
                    ok = inc > thr
                    if ok and fol < 0 and xw - lw < look:
                        # no follower in dst on this link: the one about to enter it across the node
                        ok = _entry_safe(dst, xw - lw, vw, afree, tfac, x, v, cls, prv, tgt, lane_head, link_len,
                                         lane_link, feed_off, feed_lane, cl_T, cls_s0, cls_a, cls_sab, bsafe, look)
                    break
                if ok:
                    lc_v[nd] = w
                    lc_f[nd] = fol
                    lc_l[nd] = p
                    nd += 1
                    last_lead = p
                w = nxt[w]
            for q in range(nd):
                w = lc_v[q]
                _unlink(prv, nxt, lane_head, lane_tail, src, w)
                _link_between(prv, nxt, lane_head, lane_tail, vlane, dst, w, lc_f[q], lc_l[q])
                lc_until[w] = t + cool
                # relaxation: the changer and its new follower accept the gap they have and
                # return to their time gap over relaxation_s
                _relax_start(w, rf0, tfac)
                _relax_start(lc_f[q], rf0, tfac)
                flags[w] &= ~F_COMMITTED
                tgt[w] = _crossing(slot[w], dst, x[w], v[w], 0, slot_next, slot_move, lane_idx, lane_link, link_len,
                                   maxl, slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
                yld[w] = -1
            counters[C_LC] += nd
