"""Constants, lane-list primitives and per-vehicle queries of the microscopic engine.

Shared by :mod:`trafficsim.kernels.micro` (the time loop), :mod:`trafficsim.kernels.micro_lanes`
(permissions and lane changes) and :mod:`trafficsim.kernels.micro_io` (insertion, records).

Every helper here takes plain arrays and scalars, never the ``Micro*`` NamedTuples, and every
micro kernel is compiled with :func:`kernel` (no reference counting). With numba's reference
counting on, each extraction of an array from a tuple and each array argument of a jitted call
costs an atomic increment/decrement pair that is neither hoisted out of loops nor pruned in
callees with loops; called per vehicle, several times per step, that was 95% of the run time.
``micro_advance`` takes every array out of its tuple once and passes them down. A call that
passes many arrays still costs about 1 ns per array, so the per-vehicle hot paths avoid the
big calls in the common case (see ``_quick_gap`` and the sweep in ``micro_lanes``).

Naming in argument lists: per-vehicle state arrays keep their ``MicroState`` field names, except
``MicroState.lane`` which is ``vlane`` (``lane`` is always a lane index); positions passed as
scalars are ``xp``.
"""

from ._jit import kernel  # noqa: F401  (re-exported to the micro modules)
from .idm import FREE_GAP, idm_acceleration, idm_acceleration_sab


# indices of MicroNet.par
(P_DELTA, P_POLITE, P_BSAFE, P_THR, P_BIAS, P_MINGAP, P_COOL, P_FREEDIST, P_YIELD, P_LOOK, P_AMBER, P_QFRAC,
 P_BINS, P_STRAT, P_RELAX, P_RELAXF, P_ALLTGT) = range(17)
#: ``par[P_ALLTGT] > 0``: the permission pass computes every vehicle's node permission, not only
#: those the step reads (a test-only switch: the results must not change, see ``_permissions``)
# indices of MicroState.counters
C_INSIDE, C_CLAMP, C_UID, C_LC, C_ENTERED, C_EXITED = range(6)

STATUS_OK = 0
STATUS_POOL = 1
STATUS_NAN = 2

RED = 0
GREEN = 1
AMBER = 2
#: a permitted movement while an opposing vehicle is near (``micro._give_way``): as amber, but a
#: vehicle stops unless that needs more than ``GIVE_WAY_DECEL`` (it does not cross in front of the
#: opposing vehicle at a deceleration it would accept at amber)
GIVE_WAY = 3
#: hardest deceleration [m/s2] a vehicle of a movement that gives way uses to stop at the line
GIVE_WAY_DECEL = 5.0
#: A vehicle that crossed a node by a movement that gives way (it set off from the line) holds
#: the movements that give way to that movement until its rear is this far [m] into its link:
#: the node is a point, and without it streams that give way to each other in a cycle (a loaded
#: ``right_before_left`` junction) crossed through each other (``micro._give_way``)
JUNCTION_CLEAR_M = 10.0
SINK = -2
BLOCKED = -1
UNKNOWN = -3
F_COMMITTED = 1
F_BAY = 2
#: halted in the queue at its link's end; cleared when the vehicle leaves the link
F_QUEUED = 4
#: served at its link's toll booth (TollBooth); cleared when the vehicle enters a link
F_SERVED = 8

#: Length of the merge zone before a node, as a fraction of ``lookahead_m``: there the vehicles
#: of all feeder lanes of one target lane form one virtual queue (:func:`_zipper`); farther
#: upstream the feeders are separate roads.
ZIPPER_ZONE = 1.0 / 3.0
ZIPPER_SLACK = 0.3
ZIPPER_CAP = 1.0


# ---------------------------------------------------------------------------- list helpers
@kernel
def _unlink(prv, nxt, lane_head, lane_tail, lane, w):
    p = prv[w]
    n = nxt[w]
    if p >= 0:
        nxt[p] = n
    else:
        lane_tail[lane] = n
    if n >= 0:
        prv[n] = p
    else:
        lane_head[lane] = p
    prv[w] = -1
    nxt[w] = -1


@kernel
def _link_between(prv, nxt, lane_head, lane_tail, vlane, lane, w, fol, lead):
    """Insert ``w`` into ``lane`` between follower ``fol`` and leader ``lead`` (-1: none)."""
    prv[w] = fol
    nxt[w] = lead
    if fol >= 0:
        nxt[fol] = w
    else:
        lane_tail[lane] = w
    if lead >= 0:
        prv[lead] = w
    else:
        lane_head[lane] = w
    vlane[w] = lane


@kernel
def _link_sorted(x, prv, nxt, lane_head, lane_tail, vlane, lane, w):
    """Insert ``w`` at its position in ``lane``, searching from the tail (entries arrive there)."""
    fol = -1
    p = lane_tail[lane]
    while p >= 0 and x[p] <= x[w]:
        fol = p
        p = nxt[p]
    _link_between(prv, nxt, lane_head, lane_tail, vlane, lane, w, fol, p)


# ---------------------------------------------------------------------------- small queries
@kernel
def _accel(c, link, gap, v_lead, vw, L, cl_v0, cl_T, cls_s0, cls_a, cls_b, delta):
    """IDM acceleration of a vehicle of class ``c`` on ``link`` at speed ``vw``."""
    j = c * L + link
    return idm_acceleration(vw, gap, vw - v_lead, cl_v0[j], cl_T[j], cls_s0[c], cls_a[c], cls_b[c], delta)


@kernel
def _accel_f(free, tf, c, link, gap, v_lead, vw, L, cl_T, cls_s0, cls_a, cls_sab):
    """:func:`_accel` given the vehicle's free-road term ``free`` (``MicroState.afree``), its
    time-gap factor ``tf`` (``MicroState.tfac``: below 1 while it relaxes after a lane change) and
    the classes' ``2 sqrt(a b)`` (``MicroNet.cls_sab``) in place of ``b``."""
    j = c * L + link
    return idm_acceleration_sab(free, vw, gap, vw - v_lead, cl_T[j] * tf, cls_s0[c], cls_a[c], cls_sab[c])


@kernel(inline="always")
def _relax_start(w, f0, tfac):
    """Lane-change relaxation: vehicle ``w`` (a lane changer or its new follower) takes the time
    gap factor ``f0`` unless it already relaxes from a lower one (see ``MicroState.tfac``)."""
    if w >= 0 and tfac[w] > f0:
        tfac[w] = f0


@kernel(inline="always")
def _rear_ahead(lead, length, xpos, cls, cls_len):
    """Where the road ahead of a vehicle ends in its lane [m]: its leader ``lead``'s rear at
    positions ``xpos``, or the link's end ``length`` when it has no leader or the leader has
    passed the end (it is leaving the link)."""
    if lead < 0 or xpos[lead] > length:
        return length
    return xpos[lead] - cls_len[cls[lead]]


@kernel(inline="always")
def _booth_limit(g, vl, bpos, served, xp, s0):
    """``(g, vl)`` lowered to the toll-booth line ``bpos`` of the lane (``MicroNet.booth_pos``, < 0:
    none) where a vehicle with front ``xp`` and jam distance ``s0`` halts unless it has been
    ``served`` there (as a bus's front halts at its stop)."""
    if bpos >= 0.0 and not served:
        db = bpos + s0 - xp
        if db < g:
            return (db if db > 0.0 else 0.0), 0.0
    return g, vl


@kernel(inline="always")
def _waits_to_leave(gap, crit, idx, lo, hi):
    """Whether a queued (slow) vehicle in lane index ``idx``, whose route goes on from lanes
    ``lo..hi`` (``lo > hi``: any lane), waits to change out of its lane: the lane does not lead to
    its next link, and the road ahead of it in the lane is free, its ``gap`` to its leader's rear
    (to the link's end when it has none) wider than the critical one ``crit`` (``v0 T + s0``, as
    in the queue's runs), so what holds it back is the lane change, not its leader. A slow
    wrong-lane vehicle close behind its leader is slow with its lane (a platoon leaving a queue
    upstream), not waiting. The queue records start a run at it (``micro_io._snapshot``,
    ``micro._move``)."""
    return gap > crit and lo <= hi and (idx < lo or idx > hi)


@kernel(inline="always")
def _obstacle_gap(lane, xp, obs_off, obs_pos, obs_active):
    """Distance [m] from front position ``xp`` to the nearest active blocked segment ahead."""
    g = FREE_GAP
    for o in range(obs_off[lane], obs_off[lane + 1]):
        if obs_active[o] and obs_pos[o] >= xp - 1e-9:
            d = obs_pos[o] - xp
            if d < g:
                g = d
    return g


@kernel(inline="always")
def _blocked(lane, x0, x1, obs_off, obs_pos, obs_end, obs_active):
    """Whether an active blocked segment of ``lane`` overlaps ``[x0, x1]``."""
    for o in range(obs_off[lane], obs_off[lane + 1]):
        if obs_active[o] and obs_pos[o] < x1 and obs_end[o] > x0:
            return True
    return False


@kernel(inline="always")
def _crossing(slot, lane, xp, vw, committed, slot_next, slot_move, lane_idx, lane_link, link_len, maxl,
              slot_lo, slot_hi, slot_map, lane_open, move_state, amber):
    """Lane entered at the end of the link (>= 0), ``SINK`` at the destination, or ``BLOCKED``."""
    if slot_next[slot] < 0:
        # leaving the network: the exit movement is green unless a meter times it
        tg = SINK
        if slot_move[slot] < 0:
            return tg
    else:
        idx = lane_idx[lane]
        if idx < slot_lo[slot] or idx > slot_hi[slot]:
            return BLOCKED
        tg = slot_map[slot * maxl + idx]
        if tg < 0 or lane_open[tg] == 0:
            return BLOCKED
    state = move_state[slot_move[slot]]
    if state == GREEN or committed:
        return tg
    if state >= AMBER:
        d = link_len[lane_link[lane]] - xp
        if d < 1e-3:
            d = 1e-3
        if vw * vw > 2.0 * (amber if state == AMBER else GIVE_WAY_DECEL) * d:
            return tg
    return BLOCKED


@kernel
def _zipper(w, lane, dist, tg, x, v, cls, prv, tgt, lane_head, link_len, lane_link, cls_len, feed_off, feed_lane):
    """Projected gap [m] and speed [m/s] of the zipper partner of vehicle ``w`` (front ``dist`` before
    the end of ``lane``, entering lane ``tg``): the last vehicle, on another feeder lane of ``tg``
    and also entering it, that is closer to the node than ``w`` (``FREE_GAP`` if none).

    The vehicles of all feeders of one target lane form a single virtual queue ordered by their
    distance to the node (ties by vehicle id)."""
    best = FREE_GAP
    bv = 0.0
    for f in range(feed_off[tg], feed_off[tg + 1]):
        fl = feed_lane[f]
        if fl == lane:
            continue
        flen = link_len[lane_link[fl]]
        u = lane_head[fl]
        while u >= 0:
            du = flen - x[u]
            if du > dist or (du == dist and u >= w):
                break
            if tgt[u] == tg:
                g = dist - du - cls_len[cls[u]]
                if g < best:
                    best = g
                    bv = v[u]
            u = prv[u]
    return best, bv


@kernel(inline="always")
def _entry_safe(dst, back, vw, afree, tfac, x, v, cls, prv, tgt, lane_head, link_len, lane_link, feed_off, feed_lane,
                cl_T, cls_s0, cls_a, cls_sab, bsafe, look):
    """Whether a vehicle (rear ``back`` metres past the start of lane ``dst``'s link, speed ``vw``)
    may change into ``dst`` where no vehicle of ``dst`` is behind it: the nearest vehicle about to
    enter ``dst`` across the node (a feeder lane's vehicle whose node permission is ``dst``) would
    not brake harder than ``bsafe`` behind it, MOBIL's safety criterion for the new follower seen
    across the node. Without it a change just past a node cut in front of a vehicle crossing into
    that lane, which stopped dead (a 2 -> 3 lane widening at 3,000 veh/h: 1,165 vehicle-steps
    braking harder than 8 m/s^2)."""
    L = link_len.shape[0]
    for f in range(feed_off[dst], feed_off[dst + 1]):
        fl = feed_lane[f]
        lf = lane_link[fl]
        flen = link_len[lf]
        u = lane_head[fl]
        while u >= 0:
            g = back + flen - x[u]
            if g > look:
                break
            if tgt[u] == dst:
                if _accel_f(afree[u], tfac[u], cls[u], lf, g, vw, v[u], L, cl_T, cls_s0, cls_a, cls_sab) < -bsafe:
                    return False
                break
            u = prv[u]
    return True


@kernel(inline="always")
def _ahead(w, slot, lane, xp, tg,
           x, v, cls, prv, tgt, lane_head, lane_tail,
           link_len, lane_link, lane_idx, cls_len, slot_link, slot_next, slot_move, feed_off, feed_lane,
           obs_off, obs_pos, obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state, look):
    """Gap [m] and speed [m/s] of what a vehicle at front ``xp`` in ``lane`` meets past its link's
    vehicles: the stop line, a zipper partner on another feeder lane, downstream tails.

    30 arguments, so that numba inlines it (``maxl`` follows from ``slot_map``, an integer
    division computed only when the look goes past the next link)."""
    dist = link_len[lane_link[lane]] - xp
    if tg == SINK:
        return FREE_GAP, 0.0
    if tg == BLOCKED:
        return dist, 0.0
    best = FREE_GAP
    bv = 0.0
    if dist < ZIPPER_ZONE * look:
        best, bv = _zipper(w, lane, dist, tg, x, v, cls, prv, tgt, lane_head, link_len, lane_link, cls_len, feed_off,
                           feed_lane)
        best += ZIPPER_SLACK * dist
    s_on = slot_next[slot]
    lane_on = tg
    for _ in range(3):
        tail = lane_tail[lane_on]
        cand = FREE_GAP
        cv = 0.0
        if tail >= 0:
            cand = dist + x[tail] - cls_len[cls[tail]]
            cv = v[tail]
        og = _obstacle_gap(lane_on, 0.0, obs_off, obs_pos, obs_active)
        if og < FREE_GAP and dist + og < cand:
            cand = dist + og
            cv = 0.0
        if cand < FREE_GAP:
            if cand < best:
                best = cand
                bv = cv
            break
        dist += link_len[slot_link[s_on]]
        s_nx = slot_next[s_on]
        if dist > look or s_nx < 0:
            break
        lo = slot_lo[s_on]
        hi = slot_hi[s_on]
        maxl = slot_map.shape[0] // slot_next.shape[0]
        idx = lane_idx[lane_on]
        if idx < lo:
            idx = lo
        if idx > hi:
            idx = hi
        t2 = slot_map[s_on * maxl + idx] if lo <= hi else -1
        if t2 < 0 or lane_open[t2] == 0 or move_state[slot_move[s_on]] != GREEN:
            if dist < best:
                best = dist
                bv = 0.0
            break
        s_on = s_nx
        lane_on = t2
    return best, bv


@kernel(inline="always")
def _own_lane_limits(w, lane, xp, g, vl, cls, stop_next, cls_s0, obs_off, obs_pos, obs_active, stop_pos):
    """``(g, vl)`` lowered to a blocked segment ahead in ``lane`` and to the bus stop where vehicle
    ``w`` (front ``xp``) halts, both standing obstacles."""
    og = _obstacle_gap(lane, xp, obs_off, obs_pos, obs_active)
    if og < g:
        g = og
        vl = 0.0
    s = stop_next[w]
    if s >= 0:
        # the bus's front halts at the stop position: the IDM keeps s0 to a standing obstacle
        d = stop_pos[s] + cls_s0[cls[w]] - xp
        if d < g:
            g = d if d > 0.0 else 0.0
            vl = 0.0
    return g, vl


@kernel(inline="always")
def _front(w, lane, xp, lead, tg,
           x, v, cls, slot, flags, stop_next, prv, tgt, lane_head, lane_tail,
           link_len, lane_link, lane_idx, cls_len, cls_s0, slot_link, slot_next, slot_move, maxl, feed_off, feed_lane,
           obs_off, obs_pos, obs_active, stop_pos, slot_lo, slot_hi, slot_map, lane_open, move_state, look, amber):
    """Gap [m] and speed [m/s] of the nearest constraint ahead of vehicle ``w`` placed at ``xp`` in
    ``lane`` with same-lane leader ``lead`` and node permission ``tg`` (``UNKNOWN``: compute).

    Inlined into its callers, which pass the last argument by keyword (``amber=amber``): CPython
    compiles a call with more than 30 positional arguments as ``f(*args)``, which numba cannot
    inline, and a keyword argument makes numba rewrite it back into a plain call. Called, it cost
    about 40 ns (37 arrays and scalars passed) per vehicle in the lane-change sweeps and the move
    pass."""
    if tg == UNKNOWN:
        tg = _crossing(slot[w], lane, xp, v[w], flags[w] & F_COMMITTED, slot_next, slot_move, lane_idx, lane_link,
                       link_len, maxl, slot_lo, slot_hi, slot_map, lane_open, move_state, amber)
    if lead >= 0:
        g = x[lead] - cls_len[cls[lead]] - xp
        vl = v[lead]
        if tg == BLOCKED:
            d = link_len[lane_link[lane]] - xp
            if d < g:
                g = d
                vl = 0.0
    else:
        g, vl = _ahead(w, slot[w], lane, xp, tg, x, v, cls, prv, tgt, lane_head, lane_tail,
                       link_len, lane_link, lane_idx, cls_len, slot_link, slot_next, slot_move, feed_off,
                       feed_lane, obs_off, obs_pos, obs_active, slot_lo, slot_hi, slot_map, lane_open, move_state,
                       look)
    g, vl = _own_lane_limits(w, lane, xp, g, vl, cls, stop_next, cls_s0, obs_off, obs_pos, obs_active, stop_pos)
    return g, vl
