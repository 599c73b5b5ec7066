"""Multi-commodity cell-transmission model on a general network (numba).

Links are chains of cells. Inside a link the Godunov/CTM scheme of Daganzo (1994) moves
vehicles between cells with the triangular sending and receiving functions::

    S_c = min(v_f dt/dx * n_c, Q dt)
    R_c = max(0, min(Q dt, w dt/dx * (N_jam - n_c)))
    y_c = min(S_c, R_{c+1})

Optional capacity drop (default off): at a queue head, where a congested cell (``n > n_crit``)
feeds an uncongested one, the flow is ``min(S_c, (1 - drop) R_{c+1})``, so an active bottleneck
discharges below its capacity once a queue stands behind it (Cassidy & Bertini 1999); the same
rule applies at nodes to every uncongested outgoing link fed by a congested incoming one whose
discharge is not held by its own meter.

with ``Q = lanes * q_lane`` and ``N_jam = lanes * k_j dx`` following the lane count in force,
and the CFL condition ``v_f dt <= dx``. Clipping ``R`` at 0 keeps the vehicles of a link whose
lanes drop below what it stores: they drain, they never vanish.

At every node the general node model of Tampere et al. (2011) (incremental transfer, the same
solution as Flotterod & Rohde 2011) splits the receiving flows of the outgoing links among the
incoming links with capacity-proportional (or user) priorities, the flow of each incoming link
respecting FIFO over its movements: one blocked movement holds back the whole link. Movements
under a red signal are taken out of the link's FIFO set (they wait in their turn pocket) and do
not flow: while some of a link's movements are red, the link sends, first in first out among
themselves, the vehicles of its green movements in its last cell (``min(alpha n_green, Q dt)``),
past those waiting at red, which keep their place in the FIFO. Each movement is served by a
block of its link's lanes (the lane connectors), each lane carrying ``1/n`` of the link's
capacity: the link's sending flow is lowered, FIFO, by the largest common factor that lets every
movement's demand fit its lanes, i.e. for every run of adjacent lanes the demand of the
movements served only by them within the run's capacity (by Hall's theorem, for blocks of
adjacent lanes this is exactly when the demands can be spread over their lanes); a demand
constraint before the node model, as a lane-blocked movement holds back the link's queue.

Vehicles are tracked by route (the commodity). Each link keeps a FIFO ring of *packets*, each
holding the vehicles of every route on the link that entered together. A link sends the first
``S`` vehicles of its ring (the window), split by movement through the routes' next links; the
node model's flows leave the window proportionally per movement, so each route is conserved
exactly and vehicles go where their route says. A link's route slots are grouped by their
output at the downstream node and every packet also keeps its amount per output (the sum of
its slots of that output), so the split of a window by movement costs one pass over outputs,
not over routes. Origin queues hold the demand that has not yet
entered; they are never dropped.

Units are SI: seconds, metres, vehicles. Everything here is unvalidated and allocation-free: the
engine (``trafficsim.engines.macro``) builds the arrays.
"""

from typing import NamedTuple

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import kernel
from ._jit import unsigned as _u
from .signals import cycle_time

__all__ = [
    "CTMNetwork",
    "CTMControls",
    "CTMState",
    "CTMRecord",
    "ctm_advance",
    "resplit_packets",
    "STATUS_OK",
    "STATUS_NEGATIVE",
    "STATUS_NAN",
]

STATUS_OK = 0
STATUS_NEGATIVE = 1
STATUS_NAN = 2

_SINK = -1
_EPS = 1e-12
#: A head packet holding at most this many vehicles after a take is popped, its contents (every
#: route's amount) folded into the next packet: a residue of at most 1e-4 vehicles moves one
#: packet back in the FIFO, nothing is lost. Head packets that shrink geometrically (an approach
#: held to a ratio below 1 step after step) would otherwise stay in the window for tens of steps;
#: at 1e-9 they made the general take 15% slower on UXsim's congested grid, with the same TTS to
#: 0.1 veh h.
_POP_VEH = 1e-4


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
    slot_off: np.ndarray      # (L+1,) int64: route slots of link l, grouped by output at its downstream node
    out_slot_off: np.ndarray  # (L*(max_out+1),) int64: slots of link l bound for output o start at [l*(max_out+1)+o]
    grp_lo: np.ndarray        # (L,) int64: first output of link l with slots
    grp_hi: np.ndarray        # (L,) int64: one past its last output with slots (grp_lo = grp_hi: no slots)
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
    move_yield_off: np.ndarray  # (M+1,) movements movement m gives way to (a permitted left turn, a minor stream) are
    move_yield: np.ndarray    # (Y,) move_yield[move_yield_off[m]:...]: their node-local demand index in*max_out+out
    yield_tc: np.ndarray      # (M,) critical gap [s] of movement m if it gives way
    yield_tf: np.ndarray      # (M,) its follow-up headway [s]
    sig_cycle: np.ndarray     # (nsig,) [s]
    sig_offset: np.ndarray    # (nsig,) [s]
    pk_base: np.ndarray       # (L,) int64 base index of link l's packet records (see ``CTMState.pk``)
    pk_min: np.ndarray        # (L,) a new packet starts once the tail holds this many vehicles
    n_packets: int            # ring size per link
    max_in: int
    max_out: int


class CTMControls(NamedTuple):
    """Arrays constant over one call of :func:`ctm_advance` (set by the engine per chunk)."""

    lanes: np.ndarray         # (L,) lanes in force (schedule minus blocking), float
    meter: np.ndarray         # (L,) cap on the link's discharge per step [veh], inf = none
    src_rate: np.ndarray      # (G,) arrivals per step into each source slot's queue [veh]
    move_lo: np.ndarray       # (M,) first of the input link's open lanes that serve the movement (lo > hi: none)
    move_hi: np.ndarray       # (M,) last of them
    link_open: np.ndarray     # (L,) open lanes of each link (the lane schedule, before blocking)
    link_share: np.ndarray    # (L,) the smallest share of its lanes one of the link's movements has (1: all lanes serve all)


class CTMState(NamedTuple):
    """Evolving state and scratch space."""

    n: np.ndarray             # (C,) vehicles per cell
    pk: np.ndarray            # packet records: link l's packet p at pk_base[l] + p * (1 + max_out + m_l), holding
                              # its total, its amounts per output at the link's downstream node (max_out),
                              # and its amounts per route slot of the link (m_l)
    pk_head: np.ndarray       # (L,) ring head
    pk_count: np.ndarray      # (L,) packets in use
    queue: np.ndarray         # (G,) origin-queue vehicles per source slot
    cum_in: np.ndarray        # (L,) vehicles that entered link l
    cum_out: np.ndarray       # (L,) vehicles that left link l
    route_in: np.ndarray      # (R,) vehicles of route r that entered the network
    route_out: np.ndarray     # (R,) vehicles of route r that left the network
    route_gen: np.ndarray     # (R,) vehicles of route r demanded so far
    link_inflow: np.ndarray   # scratch (L,)
    slot_flow: np.ndarray     # scratch (G,)
    green: np.ndarray         # scratch (M,) uint8
    s_io: np.ndarray          # scratch (max_in*max_out,)
    s_i: np.ndarray           # scratch (max_in,)
    a_i: np.ndarray           # scratch (max_in,)
    f_i: np.ndarray           # scratch (max_in,)
    c_i: np.ndarray           # scratch (max_in,) share of an input's window its demand keeps after _fit_to_lanes
    act: np.ndarray           # scratch (max_in,) uint8
    r_o: np.ndarray           # scratch (max_out,)
    y_io: np.ndarray          # scratch (2*max_in*max_out,) share of a movement's demand its permitted flow keeps (see _permitted)
    link_out: np.ndarray      # scratch (L,) outflow of each link at its downstream node this step
    link_send: np.ndarray     # scratch (L,) sending flow of each link this step [veh] (while some of its
                              # movements are red: of its green ones, set by the node model)
    link_recv: np.ndarray     # scratch (L,) receiving flow of each link this step [veh]


class CTMRecord(NamedTuple):
    """Outputs aggregated per record interval (first axis)."""

    vkt: np.ndarray           # (T, L) vehicle-metres travelled
    vht: np.ndarray           # (T, L) vehicle-seconds spent
    cum_in: np.ndarray        # (T, L) snapshot at interval end
    cum_out: np.ndarray       # (T, L)
    queue_veh: np.ndarray     # (T, L) time-mean vehicles in congested cells
    queue_m: np.ndarray       # (T, L) congested length from the downstream end at interval end [m]
    queue_m_max: np.ndarray   # (T, L) its longest during the interval (the back of queue) [m]
    lanes: np.ndarray         # (T, L) lanes in force at interval end
    route_in: np.ndarray      # (T, R) snapshot
    route_out: np.ndarray     # (T, R)
    route_gen: np.ndarray     # (T, R)
    src_queue: np.ndarray     # (T, S) snapshot of each source's queue
    wait: np.ndarray          # (T,) origin-queue vehicle-seconds in the interval
    cell_veh: np.ndarray      # (T, C) time-mean vehicles per cell, or (0, C) when not recorded


@intrinsic
def _cells4(typingctx, nl, nblocks, tail, alpha, beta, q, njam, ncrit_drop, keep, drop, inflow, outflow, ncrit):
    """One step of the cells ``nl`` of a link (``4 * nblocks + tail`` cells, ``tail`` in 1..4) in
    one pass, four cells at a time as ``<4 x double>``: the flows from the start-of-step cells
    (as :func:`_link_flows`; the last cell's is the node's ``outflow``, 0 in the sums), the four
    interleaved partial sums of the cells and of the flows (as :func:`_link_sums`: a last block
    of fewer than four cells goes into the first sum in order), and the cell update with
    ``inflow`` into cell 0 (as :func:`_link_update`, counting cells below ``-1e-9`` before
    clipping and above ``ncrit`` after). The last block is read and written with masked loads
    and a masked store, so nothing past the link's last cell is touched. Every cell gets the same operations in the same order as in those
    scalar functions (``min``/``max`` as numba lowers them: ``min(a, b) = b if b < a else a``,
    ``max(a, b) = b if b > a else a``; with ``drop`` off the receiving flow is multiplied by 1.0,
    which changes nothing), so results are bit-identical; the three loops with their alias
    checks and scalar remainders become one loop of a few vector instructions per four cells
    and one masked block.
    Returns the eight partial sums (cells, then flows), ``bad`` and ``above``."""
    f = types.float64
    if not (isinstance(nl, types.Array) and nl.ndim == 1 and nl.layout == "C" and nl.dtype == f
            and isinstance(nblocks, types.Integer) and isinstance(tail, types.Integer)
            and isinstance(drop, types.Boolean)
            and all(x == f for x in (alpha, beta, q, njam, ncrit_drop, keep, inflow, outflow, ncrit))):
        return None
    rt = types.Tuple([f] * 8 + [types.int64, types.int64])

    def codegen(context, builder, sig, args):
        ir = cgutils.ir
        f64 = ir.DoubleType()
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        v4 = ir.VectorType(f64, 4)
        c4 = ir.VectorType(i64, 4)
        vp = v4.as_pointer()
        pn = context.make_array(sig.args[0])(context, builder, args[0]).data
        nb = context.cast(builder, args[1], sig.args[1], types.int64)
        nt = context.cast(builder, args[2], sig.args[2], types.int64)
        undef = ir.Constant(v4, ir.Undefined)

        def splat(x):
            v = builder.insert_element(undef, x, i32(0))
            return builder.shuffle_vector(v, undef, ir.Constant(ir.VectorType(i32, 4), [0, 0, 0, 0]))

        al, be, qq, nj, ncd, kp = (splat(a) for a in args[3:9])
        outf = args[11]
        dropv = builder.insert_element(ir.Constant(ir.VectorType(ir.IntType(1), 4), ir.Undefined),
                                       context.cast(builder, args[9], sig.args[9], types.boolean), i32(0))
        dropv = builder.shuffle_vector(dropv, ir.Constant(ir.VectorType(ir.IntType(1), 4), ir.Undefined),
                                       ir.Constant(ir.VectorType(i32, 4), [0, 0, 0, 0]))
        crit = splat(args[12])
        one = ir.Constant(v4, [1.0] * 4)
        zero = ir.Constant(v4, [0.0] * 4)
        neg = ir.Constant(v4, [-1e-9] * 4)
        izero = ir.Constant(c4, [0] * 4)
        prev0 = builder.insert_element(undef, args[10], i32(3))   # inflow in lane 3: "the flow before cell 0"
        def flows(a, b):
            # s = min(alpha * a, q)
            x = builder.fmul(al, a)
            s = builder.select(builder.fcmp_ordered("<", qq, x), qq, x)
            # r = max(0.0, min(q, beta * (njam - b)))
            t = builder.fmul(be, builder.fsub(nj, b))
            u = builder.select(builder.fcmp_ordered("<", t, qq), t, qq)
            r = builder.select(builder.fcmp_ordered(">", u, zero), u, zero)
            # r *= keep if (drop and a > ncrit_drop and b <= ncrit_drop) else 1.0
            cond = builder.and_(dropv, builder.and_(builder.fcmp_ordered(">", a, ncd), builder.fcmp_ordered("<=", b, ncd)))
            r = builder.fmul(r, builder.select(cond, kp, one))
            # y = min(s, r)
            y = builder.select(builder.fcmp_ordered("<", r, s), r, s)
            return y

        def update(a, yprev, y, bad, above, mask=None):
            """Four cells ``a`` after the step (flow in: the previous lane of ``yprev``, ``y``),
            clipped at 0, and the counts of cells below ``-1e-9`` before clipping and above
            ``ncrit`` after added to ``bad`` and ``above`` (``mask``: the lanes inside the link)."""
            ym1 = builder.shuffle_vector(yprev, y, ir.Constant(ir.VectorType(i32, 4), [3, 4, 5, 6]))
            nc = builder.fsub(builder.fadd(a, ym1), y)
            low = builder.fcmp_ordered("<", nc, neg)
            nc = builder.select(builder.fcmp_ordered(">", zero, nc), zero, nc)   # max(nc, 0.0)
            high = builder.fcmp_ordered(">", nc, crit)
            if mask is not None:
                low = builder.and_(low, mask)
                high = builder.and_(high, mask)
            return nc, builder.add(bad, builder.zext(low, c4)), builder.add(above, builder.zext(high, c4))

        pre = builder.basic_block
        loop = builder.append_basic_block("cells4.loop")
        done = builder.append_basic_block("cells4.done")
        builder.cbranch(builder.icmp_signed(">", nb, i64(0)), loop, done)
        builder.position_at_end(loop)
        i = builder.phi(i64)
        yprev = builder.phi(v4)
        sn = builder.phi(v4)
        sy = builder.phi(v4)
        bad = builder.phi(c4)
        above = builder.phi(c4)
        j = builder.mul(i, i64(4))
        p0 = builder.bitcast(builder.gep(pn, [j]), vp)
        a = builder.load(p0, align=8)                                             # n[j .. j+3]
        b = builder.load(builder.bitcast(builder.gep(pn, [builder.add(j, i64(1))]), vp), align=8)  # n[j+1 .. j+4]
        y = flows(a, b)
        sn2 = builder.fadd(sn, a)
        sy2 = builder.fadd(sy, y)
        nc, bad2, above2 = update(a, yprev, y, bad, above)
        builder.store(nc, p0, align=8)
        i2 = builder.add(i, i64(1))
        for phi, init, nxt in ((i, i64(0), i2), (yprev, prev0, y), (sn, zero, sn2), (sy, zero, sy2),
                               (bad, izero, bad2), (above, izero, above2)):
            phi.add_incoming(init, pre)
            phi.add_incoming(nxt, loop)
        builder.cbranch(builder.icmp_signed("<", i2, nb), loop, done)
        builder.position_at_end(done)
        outs = []
        for init, nxt in ((zero, sn2), (zero, sy2), (izero, bad2), (izero, above2), (prev0, y)):
            phi = builder.phi(init.type)
            phi.add_incoming(init, pre)
            phi.add_incoming(nxt, loop)
            outs.append(phi)
        sn, sy, bad, above, yprev = outs
        # the last block: cells 4 nblocks .. 4 nblocks + tail - 1, the link's last cell among them
        # (masked loads and store: nothing past the link's last cell is read or written)
        lane = ir.Constant(c4, [0, 1, 2, 3])
        tv = builder.insert_element(ir.Constant(c4, ir.Undefined), nt, i32(0))
        tv = builder.shuffle_vector(tv, ir.Constant(c4, ir.Undefined), ir.Constant(ir.VectorType(i32, 4), [0, 0, 0, 0]))
        tv1 = builder.sub(tv, ir.Constant(c4, [1] * 4))
        in_a = builder.icmp_signed("<", lane, tv)
        in_b = builder.icmp_signed("<", lane, tv1)
        last = builder.icmp_signed("==", lane, tv1)
        m4 = ir.VectorType(ir.IntType(1), 4)
        mload = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v4, [vp, i32, m4, v4]),
                                               "llvm.masked.load.v4f64.p0")
        mstore = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [v4, vp, i32, m4]),
                                                "llvm.masked.store.v4f64.p0")
        j = builder.mul(nb, i64(4))
        p0 = builder.bitcast(builder.gep(pn, [j]), vp)
        a = builder.call(mload, [p0, i32(8), in_a, zero])
        b = builder.call(mload, [builder.bitcast(builder.gep(pn, [builder.add(j, i64(1))]), vp), i32(8), in_b, zero])
        y = flows(a, b)
        yz = builder.select(last, zero, y)             # the last cell's flow is the node's: 0 in the sums
        yo = builder.select(last, splat(outf), y)      # ... and the node's outflow in the update
        # partial sums: a whole last block (tail 4) goes lane by lane, a shorter one into lane 0 in order
        full = builder.icmp_signed("==", nt, i64(4))
        snf = builder.fadd(sn, a)
        syf = builder.fadd(sy, yz)
        vals = []
        for acc, accf, x in ((sn, snf, a), (sy, syf, yz)):
            p = builder.fadd(builder.extract_element(acc, i64(0)), builder.extract_element(x, i64(0)))
            for k in (1, 2):
                p = builder.select(builder.icmp_signed(">", nt, i64(k)),
                                   builder.fadd(p, builder.extract_element(x, i64(k))), p)
            vals.append(builder.select(full, builder.extract_element(accf, i64(0)), p))
            for k in (1, 2, 3):
                vals.append(builder.select(full, builder.extract_element(accf, i64(k)), builder.extract_element(acc, i64(k))))
        vals = vals[0:4] + vals[4:8]
        nc, bad, above = update(a, yprev, yo, bad, above, in_a)
        builder.call(mstore, [nc, p0, i32(8), in_a])
        for v in (bad, above):
            s_ = builder.extract_element(v, i64(0))
            for k in range(1, 4):
                s_ = builder.add(s_, builder.extract_element(v, i64(k)))
            vals.append(s_)
        return context.make_tuple(builder, rt, vals)

    sig = rt(nl, nblocks, tail, alpha, beta, q, njam, ncrit_drop, keep, drop, inflow, outflow, ncrit)
    return sig, codegen


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to bring ``arr[idx]`` into cache (LLVM's ``prefetch``; never faults, changes
    no result)."""
    if not isinstance(arr, types.Array) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        ir = cgutils.ir                          # llvmlite's IR builder, as numba uses it
        i32 = cgutils.int32_t
        i8p = cgutils.voidptr_t
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, keep in all caches, data
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


# The helpers below take plain arrays, never the NamedTuples, and everything is compiled without
# reference counting (``kernel``): extracting an array from a tuple, or passing it, otherwise
# costs an atomic reference-count update, which inside per-link loops dominated the run time.


@kernel(inline="always")
def _link_ends(nl, alpha, beta, q, njam, meter):
    """Vehicles a link with cells ``nl`` can send this step from its last cell, and receive into
    its first (never negative)."""
    send = min(alpha * nl[nl.shape[0] - 1], q, meter)
    recv = max(0.0, min(q, beta * (njam - nl[0])))
    return send, recv


@kernel(inline="always")
def _is_red(l, o, MO, out_slot_off, slot_move, green):
    """Whether link ``l``'s vehicles bound for output ``o`` face a red signal (the slots bound for
    one output share its movement)."""
    k = l * (MO + 1) + o
    g0 = out_slot_off[_u(k)]
    return g0 < out_slot_off[_u(k + 1)] and green[_u(slot_move[_u(g0)])] == 0


@kernel(inline="always")
def _has_red(l, no, MO, out_slot_off, slot_move, green):
    """Whether some of link ``l``'s movements face a red signal."""
    for o in range(no):
        if _is_red(l, o, MO, out_slot_off, slot_move, green):
            return True
    return False


@kernel(inline="always")
def _counted(rp, no, skip_red, l, MO, out_slot_off, slot_move, green, pk):
    """The vehicles of the packet at ``pk[rp]`` that count towards a window: all of them, or with
    ``skip_red`` those bound for a green movement (the others wait in their turn pocket)."""
    if not skip_red:
        return pk[_u(rp)]
    c = 0.0
    for o in range(no):
        if not _is_red(l, o, MO, out_slot_off, slot_move, green):
            c += pk[_u(rp + 1 + o)]
    return c


@kernel(inline="always")
def _green_ahead(l, count, no, out_slot_off, slot_move, green, slot_off, pk_base, pk_head, pk_count, pk, P, MO):
    """Vehicles bound for a green movement among the first ``count`` of link ``l``'s FIFO."""
    left = count
    p = pk_head[_u(l)]
    w = 1 + MO + slot_off[_u(l + 1)] - slot_off[_u(l)]
    base = pk_base[_u(l)]
    got = 0.0
    for _ in range(pk_count[_u(l)]):
        rp = base + p * w
        tot = pk[_u(rp)]
        if tot > _EPS:
            frac = 1.0 if tot <= left else left / tot
            got += frac * _counted(rp, no, True, l, MO, out_slot_off, slot_move, green, pk)
            left -= tot * frac
            if left <= _EPS:
                break
        p += 1
        if p == P:
            p = 0
    return got


@kernel(inline="always")
def _window_by_output(l, window, row, no, s_io, slot_off, pk_base, pk_head, pk_count, pk, P, MO, skip_red,
                      out_slot_off, slot_move, green):
    """Add the first ``window`` vehicles of link ``l``'s FIFO to ``s_io[row + output]`` (from the
    packets' per-output amounts: no pass over route slots). With ``skip_red`` the window counts,
    and holds, only vehicles bound for green movements: those for red ones keep their place in
    the FIFO but do not hold back the vehicles behind them."""
    left = window
    p = pk_head[_u(l)]
    w = 1 + MO + slot_off[_u(l + 1)] - slot_off[_u(l)]
    base = pk_base[_u(l)]
    for _ in range(pk_count[_u(l)]):
        rp = base + p * w
        tot = _counted(rp, no, skip_red, l, MO, out_slot_off, slot_move, green, pk)
        if tot > _EPS:
            frac = 1.0 if tot <= left else left / tot
            po = rp + 1
            for o in range(no):
                if not (skip_red and _is_red(l, o, MO, out_slot_off, slot_move, green)):
                    s_io[_u(row + o)] += pk[_u(po + o)] * frac
            left -= tot * frac
            if left <= _EPS:
                break
        p += 1
        if p == P:
            p = 0


@kernel(inline="always")
def _take_from_window(l, window, row, ratio, no, slot_off, out_slot_off, slot_next, slot_route, pk_base, pk_head,
                      pk_count, pk, slot_flow, route_out, P, MO, skip_red, slot_move, green):
    """Remove from link ``l``'s window the share ``ratio[row + output]`` of each output's vehicles
    and hand them to the next slot of their route (``slot_flow``), or out of the network
    (``route_out``). Returns the total removed. ``skip_red``: the window counts only vehicles
    bound for green movements (as in :func:`_window_by_output`).

    One pass per packet of the window, output by output (a link's slots are grouped by output,
    so the branch between handing over and leaving is per output, not per slot); each packet's
    per-output amounts are re-summed from what stays. Packets emptied at the head (at most
    ``_POP_VEH`` vehicles left) are popped, the residue folded into the next one.
    """
    s0 = slot_off[_u(l)]
    m = slot_off[_u(l + 1)] - s0
    w = 1 + MO + m
    base = pk_base[_u(l)]
    ob = l * (MO + 1)
    left = window
    p = pk_head[_u(l)]
    removed = 0.0
    for _ in range(pk_count[_u(l)]):
        rp = base + p * w
        tot = pk[_u(rp)]
        counted = _counted(rp, no, skip_red, l, MO, out_slot_off, slot_move, green, pk)
        if counted > _EPS:
            frac = 1.0 if counted <= left else left / counted
            off = rp + 1 + MO - s0           # pk[off + g] is slot g's amount in this packet
            po = rp + 1
            took = 0.0
            for o in range(no):
                r = ratio[_u(row + o)]
                g0 = out_slot_off[_u(ob + o)]
                g1 = out_slot_off[_u(ob + o + 1)]
                if r > 0.0 and g1 > g0:
                    # an output's slots all leave the network (per route) or all go on (per next slot)
                    exits = slot_next[_u(g0)] < 0
                    dest = route_out if exits else slot_flow
                    key = slot_route if exits else slot_next
                    rest = 0.0
                    for g in range(g0, g1):
                        i = _u(off + g)
                        a = pk[i]
                        d = a * frac * r
                        pk[i] = a - d
                        rest += a - d
                        took += d
                        dest[_u(key[_u(g)])] += d
                    pk[_u(po + o)] = rest
            pk[_u(rp)] = tot - took
            removed += took
            left -= counted * frac
            if left <= _EPS:
                break
        p += 1
        if p == P:
            p = 0
    _pop_empty_head(l, m, base, pk_head, pk_count, pk, P, MO)
    return removed


@kernel(inline="always")
def _take_whole_window(l, window, no, slot_off, slot_next, slot_route, pk_base, pk_head, pk_count, pk, slot_flow,
                       route_out, P, MO):
    """:func:`_take_from_window` with ratio 1 for every output (the node model's free-flow path):
    one pass over the slots of each packet of the window, and each packet's per-output amounts
    scaled by what stays (the same amounts as the general function; its per-output sums differ
    only by rounding). Returns the total removed."""
    s0 = slot_off[_u(l)]
    m = slot_off[_u(l + 1)] - s0
    w = 1 + MO + m
    base = pk_base[_u(l)]
    left = window
    p = pk_head[_u(l)]
    removed = 0.0
    for _ in range(pk_count[_u(l)]):
        rp = base + p * w
        tot = pk[_u(rp)]
        if tot > _EPS:
            frac = 1.0 if tot <= left else left / tot
            off = rp + 1 + MO - s0
            took = 0.0
            for g in range(s0, s0 + m):
                i = _u(off + g)
                a = pk[i]
                d = a * frac
                pk[i] = a - d
                took += d
                nxt = slot_next[_u(g)]
                if nxt < 0:
                    route_out[_u(slot_route[_u(g)])] += d
                else:
                    slot_flow[_u(nxt)] += d
            po = rp + 1
            for o in range(no):             # no branch: an output holding 0 stays 0
                x = pk[_u(po + o)]
                pk[_u(po + o)] = x - x * frac
            pk[_u(rp)] = tot - took
            removed += took
            left -= tot * frac
            if left <= _EPS:
                break
        p += 1
        if p == P:
            p = 0
    _pop_empty_head(l, m, base, pk_head, pk_count, pk, P, MO)
    return removed


@kernel(inline="always")
def _pop_empty_head(l, m, base, pk_head, pk_count, pk, P, MO):
    """Pop emptied packets at the head of link ``l``'s ring (at most ``_POP_VEH`` vehicles left),
    folding the residue into the next one."""
    w = 1 + MO + m
    while pk_count[_u(l)] > 1:
        h = pk_head[_u(l)]
        rh = base + h * w
        if pk[_u(rh)] > _POP_VEH:
            break
        nxt = h + 1
        if nxt == P:
            nxt = 0
        rn = base + nxt * w
        offh = rh + 1 + MO
        offn = rn + 1 + MO
        res = 0.0
        for j in range(m):
            a = pk[_u(offh + j)]
            pk[_u(offn + j)] += a
            res += a
            pk[_u(offh + j)] = 0.0
        for o in range(MO):
            pk[_u(rn + 1 + o)] += pk[_u(rh + 1 + o)]
            pk[_u(rh + 1 + o)] = 0.0
        pk[_u(rn)] += res
        pk[_u(rh)] = 0.0
        pk_head[_u(l)] = nxt
        pk_count[_u(l)] -= 1


@kernel(inline="always")
def _push_inflow(l, slot_off, out_slot_off, grp_lo, grp_hi, pk_base, pk_head, pk_count, pk, pk_min, slot_flow, P,
                 MO):
    """Append this step's inflow of link ``l`` (per slot in ``slot_flow``, which is cleared) to its
    packet ring: into the tail packet while it is small or the ring is full, else a new one.
    Returns the total; nothing is appended when it is 0."""
    s0 = slot_off[_u(l)]
    w = 1 + MO + slot_off[_u(l + 1)] - s0
    base = pk_base[_u(l)]
    ob = l * (MO + 1)
    cnt = pk_count[_u(l)]
    merge = False
    if cnt > 0:
        tail = pk_head[_u(l)] + cnt - 1
        if tail >= P:
            tail -= P
        if cnt == P or pk[_u(base + tail * w)] < pk_min[_u(l)]:
            merge = True
        else:
            tail += 1
            if tail == P:
                tail = 0
    else:
        tail = pk_head[_u(l)]
    rt = base + tail * w
    off = rt + 1 + MO - s0
    po = rt + 1
    total = 0.0
    # a packet not in use holds zeros, so writing a zero inflow into it changes nothing
    # outputs without slots keep zero amounts in every packet: only grp_lo..grp_hi are visited
    if merge:
        for o in range(grp_lo[_u(l)], grp_hi[_u(l)]):
            sub = 0.0
            for g in range(out_slot_off[_u(ob + o)], out_slot_off[_u(ob + o + 1)]):
                f = slot_flow[_u(g)]
                sub += f
                pk[_u(off + g)] += f
                slot_flow[_u(g)] = 0.0
            pk[_u(po + o)] += sub
            total += sub
        if total > 0.0:
            pk[_u(rt)] += total
    else:
        for o in range(grp_lo[_u(l)], grp_hi[_u(l)]):
            sub = 0.0
            for g in range(out_slot_off[_u(ob + o)], out_slot_off[_u(ob + o + 1)]):
                f = slot_flow[_u(g)]
                sub += f
                pk[_u(off + g)] = f
                slot_flow[_u(g)] = 0.0
            pk[_u(po + o)] = sub
            total += sub
        if total > 0.0:
            pk[_u(rt)] = total
            pk_count[_u(l)] = cnt + 1
    return total


@kernel(inline="always")
def _link_sums(nl, yl):
    """Sums over the cells of one link of the vehicles ``nl`` and of the flows ``yl`` (the last
    one, the node's, being 0 here). Each sum runs over four interleaved partial sums in a fixed
    order, and the two share one loop: a serial sum per quantity was bound by the latency of one
    addition per cell, and was half of the cell phase's time."""
    m = nl.shape[0]
    v0 = 0.0
    v1 = 0.0
    v2 = 0.0
    v3 = 0.0
    f0 = 0.0
    f1 = 0.0
    f2 = 0.0
    f3 = 0.0
    for b in range(m // 4):
        j = 4 * b                     # a range variable: known non-negative, so the four loads are adjacent
        v0 += nl[j]
        v1 += nl[j + 1]
        v2 += nl[j + 2]
        v3 += nl[j + 3]
        f0 += yl[j]
        f1 += yl[j + 1]
        f2 += yl[j + 2]
        f3 += yl[j + 3]
    for j in range(m - m % 4, m):
        v0 += nl[j]
        f0 += yl[j]
    return (v0 + v1) + (v2 + v3), (f0 + f1) + (f2 + f3)


@kernel(inline="always")
def _queued(nl, ncrit):
    """Vehicles in the cells of ``nl`` above ``ncrit`` (four interleaved partial sums)."""
    m = nl.shape[0]
    q0 = 0.0
    q1 = 0.0
    q2 = 0.0
    q3 = 0.0
    j = 0
    while j + 4 <= m:
        x0 = nl[j]
        x1 = nl[j + 1]
        x2 = nl[j + 2]
        x3 = nl[j + 3]
        q0 += x0 * (x0 > ncrit)
        q1 += x1 * (x1 > ncrit)
        q2 += x2 * (x2 > ncrit)
        q3 += x3 * (x3 > ncrit)
        j += 4
    while j < m:
        x0 = nl[j]
        q0 += x0 * (x0 > ncrit)
        j += 1
    return (q0 + q1) + (q2 + q3)


@kernel(inline="always")
def _link_flows(nl, yl, alpha, beta, q, njam, ncrit, keep, drop):
    """Godunov flows ``yl[j]`` between the cells ``nl`` of one link; the last cell's outflow is the
    node model's, set to 0 here. With ``drop``, the discharge at a queue head is lowered to
    ``keep`` of supply. The loop has no dependence between cells, so it vectorises."""
    m = nl.shape[0]
    for j in range(m - 1):
        a = nl[j]
        b = nl[j + 1]
        s = min(alpha * a, q)
        r = max(0.0, min(q, beta * (njam - b)))
        if drop:
            r *= keep if (a > ncrit and b <= ncrit) else 1.0
        yl[j] = min(s, r)
    yl[m - 1] = 0.0


@kernel(inline="always")
def _link_update(nl, yl, inflow, ncrit):
    """Apply one step's flows ``yl`` (and ``inflow`` into the first cell) to the cells ``nl`` of a
    link. Returns the number of cells that fell below ``-1e-9`` before clipping (a kernel error;
    rounding can leave ``-1e-17`` vehicles, clipped to 0) and the number of cells above ``ncrit``
    after the update. Vectorises."""
    m = nl.shape[0]
    nc = nl[0] + inflow - yl[0]
    bad = 1 if nc < -1e-9 else 0
    nc = max(nc, 0.0)
    nl[0] = nc
    above = 1 if nc > ncrit else 0
    for j in range(1, m):
        nc = nl[j] + yl[j - 1] - yl[j]
        bad += nc < -1e-9
        nc = max(nc, 0.0)
        nl[j] = nc
        above += nc > ncrit
    return bad, above


@kernel(inline="always")
def _link_cells(nl, alpha, beta, q, njam, ncrit_drop, keep, drop, inflow, outflow, ncrit):
    """One step of the cells ``nl`` of a link: the flows inside the link from the start-of-step
    cells, the sums of the vehicles and of those flows for the record, and the cell update with
    ``inflow`` into the first cell and the node's ``outflow`` out of the last, all in
    :func:`_cells4` (:func:`_link_flows`, :func:`_link_sums`, :func:`_link_update` give the
    scalar reference of every operation). Returns the vehicles, the flows, the number of cells
    that fell below ``-1e-9`` before clipping and the number above ``ncrit`` after."""
    m = nl.shape[0]
    k = (m - 1) // 4
    v0, v1, v2, v3, f0, f1, f2, f3, bad, above = _cells4(nl, k, m - 4 * k, alpha, beta, q, njam, ncrit_drop, keep,
                                                         drop, inflow, outflow, ncrit)
    return (v0 + v1) + (v2 + v3), (f0 + f1) + (f2 + f3), bad, above


@kernel(inline="always")
def _all_zero(nl):
    """Whether every cell of ``nl`` holds exactly 0 (no early exit: the loop vectorises)."""
    nz = 0
    for j in range(nl.shape[0]):
        nz += nl[j] != 0.0
    return nz == 0


@kernel(inline="always")
def _queue_run(nl, ncrit):
    """Congested cells (``> ncrit``) in a row at the downstream end of a link."""
    run = 0
    for j in range(nl.shape[0] - 1, -1, -1):
        if nl[j] <= ncrit:
            break
        run += 1
    return run


@kernel
def _start_links(n, cell_off, alpha, beta, qstep_lane, njam_lane, lanes, meter, link_inflow, link_out, link_send,
                 link_recv):
    """What every link can send and receive at its ends for the first step of a call (later steps
    get them from the cell update of the step before)."""
    for l in range(alpha.shape[0]):
        c0 = cell_off[l]
        c1 = cell_off[l + 1]
        ln = lanes[l]
        link_send[l], link_recv[l] = _link_ends(n[c0:c1], alpha[l], beta[l], qstep_lane[l] * ln, njam_lane[l] * ln,
                                                meter[l])
        link_inflow[l] = 0.0
        link_out[l] = 0.0


@kernel
def _update_links(row, dt, steps_per_record, n, cell_off, alpha, beta, qstep_lane, njam_lane, ncrit_lane,
                  lanes, meter, dx, keep, drop, link_inflow, link_out, link_send, link_recv, rec_vkt,
                  rec_vht, rec_queue, rec_qlen, rec_qmax, rec_cells):
    """Phases 1 and 3 of a step, one link at a time: the flows inside the link from the cells at
    the start of the step, the sums for the record (vehicles and flows) and the cell update with
    the node model's inflow and outflow, in one vector pass (:func:`_link_cells`: no per-cell
    flows are stored), the queue records, and what the link can send
    and receive at its ends next step. Returns the number of cells that went negative."""
    record_cells = rec_cells.shape[0] > 0
    bad = 0
    for l in range(alpha.shape[0]):
        c0 = cell_off[l]
        c1 = cell_off[l + 1]
        ln = lanes[l]
        nl = n[c0:c1]
        if link_inflow[l] == 0.0 and link_out[l] == 0.0 and _all_zero(nl):
            # an empty link with nothing entering or leaving stays empty: every flow is 0, the
            # cells stay 0, the records add 0, and what it can send (0) and receive at its ends
            # (the controls are constant within a call) stay as computed the step before
            rec_qlen[row, l] = 0.0
            continue
        q = qstep_lane[l] * ln
        njam = njam_lane[l] * ln
        outflow = link_out[l]
        ncrit = ncrit_lane[l] * ln * 1.05
        veh, moved, b, above = _link_cells(nl, alpha[l], beta[l], q, njam, ncrit_lane[l] * ln * 1.0000001, keep, drop,
                                           link_inflow[l], outflow, ncrit)
        bad += b
        if above > 0:
            qrun = _queue_run(nl, ncrit) * dx[l]
            rec_qlen[row, l] = qrun                               # the value at the interval's last step
            if qrun > rec_qmax[row, l]:
                rec_qmax[row, l] = qrun                           # the back of queue: the interval's longest
            rec_queue[row, l] += _queued(nl, ncrit) / steps_per_record
        else:
            rec_qlen[row, l] = 0.0
        if record_cells:
            for c in range(c0, c1):
                rec_cells[row, c] += n[c] / steps_per_record
        rec_vkt[row, l] += (moved + outflow) * dx[l]
        rec_vht[row, l] += veh * dt
        link_send[l], link_recv[l] = _link_ends(nl, alpha[l], beta[l], q, njam, meter[l])
        link_inflow[l] = 0.0
        link_out[l] = 0.0
    return bad


@kernel
def _update_green(green, move_sig, move_win_off, win_start, win_end, sig_cycle, sig_offset, t):
    """Green (1) or red (0) for every movement at time ``t`` [s]; unsignalised movements are green."""
    for m in range(move_sig.shape[0]):
        s = move_sig[m]
        if s < 0:
            green[m] = 1
            continue
        tc = cycle_time(t - sig_offset[s], sig_cycle[s])
        g = 0
        for w in range(move_win_off[m], move_win_off[m + 1]):
            if win_start[w] <= tc < win_end[w]:
                g = 1
                break
        green[m] = g


@kernel(inline="always")
def _surely_free(i0, ni, o0, no, L, node_in, node_out, link_send, link_recv, src_slot_off, queue, capacity_drop,
                 keep, link_share, qstep_lane, lanes):
    """Whether the node model at this node surely takes its fast path with every input flowing
    in full, decided without splitting the inputs' windows by movement.

    True when the inputs' total sending flow, with a margin far above the rounding differences
    between a window's split and its link's sending flow, fits every outgoing link's supply
    (lowered by the capacity drop, if any), and no input's sending flow lies between 1e-13 and
    1e-9 vehicles, where whether it exceeds the node model's threshold of 1e-12 could depend
    on that rounding, and no input's sending flow exceeds the capacity of the fewest lanes that
    serve one of its movements (then no run of lanes is overloaded). The node model then moves
    exactly what the full computation would."""
    total = 0.0
    for i in range(ni):
        inp = node_in[_u(i0 + i)]
        if inp < L:
            s = link_send[_u(inp)]
            if not (s < 1e-13 or s > 1e-9):
                return False
            if s > link_share[_u(inp)] * qstep_lane[_u(inp)] * lanes[_u(inp)]:
                return False
            total += s
        else:
            for g in range(src_slot_off[_u(inp - L)], src_slot_off[_u(inp - L + 1)]):
                total += queue[_u(g)]
    lim = total * (1.0 + 1e-6) + 1e-9
    for o in range(no):
        out = node_out[_u(o0 + o)]
        if out != _SINK:
            r = link_recv[_u(out)]
            if capacity_drop > 0.0:
                r *= keep
            if not (lim <= r):
                return False
    return True


@kernel(inline="always")
def _push_outputs(o0, no, node_out, slot_off, out_slot_off, grp_lo, grp_hi, pk_base, pk_head, pk_count, pk, pk_min,
                  slot_flow, link_inflow, cum_in, P, MO):
    """Append each outgoing link's inflow this step (``slot_flow``) to its packet ring."""
    for o in range(no):
        out = node_out[_u(o0 + o)]
        if out != _SINK and grp_hi[_u(out)] > grp_lo[_u(out)]:
            total = _push_inflow(out, slot_off, out_slot_off, grp_lo, grp_hi, pk_base, pk_head, pk_count, pk,
                                 pk_min, slot_flow, P, MO)
            if total > 0.0:
                link_inflow[_u(out)] = total
                cum_in[_u(out)] += total


@kernel(inline="always")
def _prefetch_node(nd, L, node_in_off, node_in, node_out_off, node_out, slot_off, slot_next, pk_base,
                   pk_head, pk_count, pk, slot_flow, P, MO):
    """Prefetch the packet data node ``nd`` will touch: the head packet record of each incoming
    link and the tail of each outgoing one (its first and last element), scattered in memory
    (the node model is otherwise bound by waiting for them)."""
    for i in range(node_in_off[nd], node_in_off[nd + 1]):
        l = node_in[i]
        if l < L:
            s0 = slot_off[_u(l)]
            w = 1 + MO + slot_off[_u(l + 1)] - s0
            rp = pk_base[_u(l)] + pk_head[_u(l)] * w
            _prefetch(pk, rp)
            _prefetch(pk, rp + w - 1)
            _prefetch(slot_next, s0)
    for o in range(node_out_off[nd], node_out_off[nd + 1]):
        l = node_out[o]
        if l >= 0:
            s0 = slot_off[_u(l)]
            t = pk_head[_u(l)] + pk_count[_u(l)] - 1
            if t >= P:
                t -= P
            elif t < 0:
                t = 0
            w = 1 + MO + slot_off[_u(l + 1)] - s0
            rp = pk_base[_u(l)] + t * w
            _prefetch(pk, rp)
            _prefetch(pk, rp + w - 1)
            _prefetch(slot_flow, s0)


@kernel(inline="always")
def _fit_to_lanes(l, row, no, MO, s_io, out_slot_off, slot_move, move_lo, move_hi, nl, cap_lane):
    """Lower link ``l``'s demand per output ``s_io[row + o]`` by one common factor (FIFO) so that
    the demands fit the lanes that serve them: for every run of adjacent lanes ``i..j`` of the
    ``nl`` open ones, the demand of the movements served only by lanes in it is at most
    ``(j - i + 1) cap_lane`` [veh/step]; a movement served by no open lane takes nothing. Returns
    the factor (1: everything fits)."""
    ratio = 1.0
    ob = l * (MO + 1)
    for i in range(nl):
        for j in range(i, nl):
            d = 0.0
            for o in range(no):
                x = s_io[_u(row + o)]
                if x > 0.0:
                    m = slot_move[_u(out_slot_off[_u(ob + o)])]
                    lo = move_lo[_u(m)]
                    hi = move_hi[_u(m)]
                    if lo > hi:
                        ratio = 0.0
                    elif lo >= i and hi <= j:
                        d += x
            c = cap_lane * (j - i + 1)
            if d * ratio > c:
                ratio = c / d
    if ratio < 1.0:
        for o in range(no):
            s_io[_u(row + o)] *= ratio
    return ratio


#: Damped fixed-point iterations of :func:`_permitted` where movements that give way give way to
#: each other (a chain of ranks at a priority junction, a cycle at a ``right_before_left`` one).
PERMITTED_ITERATIONS = 12


@kernel(inline="always")
def _yielding(i, o, i0, L, node_in, out_slot_off, slot_move, move_yield_off, s_io, MO):
    """Movement ``(i, o)`` of a node and the range of the movements it gives way to in
    ``move_yield`` (empty when it has no demand or gives way to nobody)."""
    inp = node_in[_u(i0 + i)]
    if inp >= L or s_io[_u(i * MO + o)] <= 0.0:
        return 0, 0, 0
    m = slot_move[_u(out_slot_off[_u(inp * (MO + 1) + o)])]
    return m, move_yield_off[_u(m)], move_yield_off[_u(m + 1)]


@kernel(inline="always")
def _gives_way_to_capped(i, o, i0, L, node_in, out_slot_off, slot_move, move_yield_off, move_yield, s_io, y_io, MO):
    """Whether movement ``(i, o)`` gives way to a movement whose share ``y_io`` is below 1."""
    _, y0, y1 = _yielding(i, o, i0, L, node_in, out_slot_off, slot_move, move_yield_off, s_io, MO)
    for y in range(y0, y1):
        if y_io[_u(move_yield[_u(y)])] < 1.0:
            return True
    return False


@kernel(inline="always")
def _permitted_share(i, o, i0, o0, L, node_in, node_out, out_slot_off, slot_move, move_yield_off, move_yield, move_lo,
                     move_hi, link_recv, s_io, y_io, MO, dt, tc, tf, capped):
    """The share of movement ``(i, o)``'s demand its gap-acceptance capacity keeps (1 if it gives
    way to nobody), with the flows of the movements it gives way to taken uncapped or, with
    ``capped``, times their share ``y_io``; and whether one of those gives way in turn."""
    m, y0, y1 = _yielding(i, o, i0, L, node_in, out_slot_off, slot_move, move_yield_off, s_io, MO)
    if y0 == y1:
        return 1.0, False
    d = s_io[_u(i * MO + o)]
    v = 0.0
    chained = False
    for y in range(y0, y1):
        k2 = move_yield[_u(y)]
        f = s_io[_u(k2)]
        if y_io[_u(k2)] < 1.0:
            chained = True
            if capped:
                f *= y_io[_u(k2)]
        out = node_out[_u(o0 + k2 % MO)]
        if out >= 0 and link_recv[_u(out)] < f:
            f = link_recv[_u(out)]
        v += f
    if v <= 0.0:
        return 1.0, chained
    v /= dt
    nl = move_hi[_u(m)] - move_lo[_u(m)] + 1
    cap = v * np.exp(-v * tc[_u(m)]) / -np.expm1(-v * tf[_u(m)]) * nl * dt
    return (cap / d if d > cap else 1.0), chained


@kernel(inline="always")
def _permitted(i0, ni, no, o0, L, node_in, node_out, out_slot_off, slot_move, move_yield_off, move_yield, move_lo,
               move_hi, link_recv, s_io, y_io, MO, dt, tc, tf):
    """Cap the demand ``s_io`` of each movement that gives way (a permitted left turn, a minor
    stream of a priority junction) at the gap-acceptance capacity through the flow of the
    movements it gives way to this step (:func:`trafficsim.control.permitted_flow_vps` with the
    movement's ``tc``, ``tf``, per lane that serves it; their flow: their demand, at most the
    supply of the link each enters, so a major stream held by a queue downstream does not hold
    the minor one), and set ``y_io`` to the share of its demand the cap keeps (1 for the
    others): the node model then shares the outputs' supply among the capped demands, and the
    transfer moves that share of the movement's vehicles in the window (its other vehicles stay
    in the FIFO). Where a movement gives way to one that gives way in turn (a minor through
    movement to the major road's left turn; every approach of a loaded ``right_before_left``
    junction, in a cycle), the flows are the fixed point of the caps, each movement's flow its
    demand times its share: :data:`PERMITTED_ITERATIONS` damped Jacobi iterations from the
    uncapped demands, each moving every share halfway to the one the last shares give (a cycle of
    equal streams converges in about five)."""
    for i in range(ni):
        for o in range(no):
            y_io[_u(i * MO + o)], _ = _permitted_share(i, o, i0, o0, L, node_in, node_out, out_slot_off, slot_move,
                                                       move_yield_off, move_yield, move_lo, move_hi, link_recv, s_io,
                                                       y_io, MO, dt, tc, tf, False)
    chained = False            # the first pass is exact unless a movement gives way to a capped one
    for i in range(ni):
        for o in range(no):
            chained = chained or _gives_way_to_capped(i, o, i0, L, node_in, out_slot_off, slot_move, move_yield_off,
                                                      move_yield, s_io, y_io, MO)
    H = y_io.shape[0] // 2     # the second half holds each iteration's new shares (Jacobi: a cycle of
    for _ in range(PERMITTED_ITERATIONS if chained else 0):  # equal streams stays symmetric)
        chained = False
        for i in range(ni):
            for o in range(no):
                share, ch = _permitted_share(i, o, i0, o0, L, node_in, node_out, out_slot_off, slot_move,
                                             move_yield_off, move_yield, move_lo, move_hi, link_recv, s_io, y_io, MO,
                                             dt, tc, tf, True)
                y_io[_u(H + i * MO + o)] = share
                chained = chained or ch
        if not chained:
            break      # nobody gives way to a movement that gives way: the first pass was exact
        for i in range(ni):
            for o in range(no):
                kk = i * MO + o
                y_io[_u(kk)] = 0.5 * (y_io[_u(kk)] + y_io[_u(H + kk)])
    for i in range(ni):
        for o in range(no):
            kk = i * MO + o
            s_io[_u(kk)] *= y_io[_u(kk)]


@kernel
def _node_model(n, link_out, cell_off, alpha, beta, qstep_lane, njam_lane, ncrit_lane, lanes, meter, move_lo,
                move_hi, link_open, link_share, prio, capacity_drop, keep,
                slot_off, out_slot_off, grp_lo, grp_hi, slot_next, slot_out, slot_move, slot_route, src_slot_off,
                src_link, node_in_off, node_in, node_out_off, node_out, green, has_signals,
                pk_base, pk_min, pk_head, pk_count, pk, P, max_out,
                queue, cum_in, cum_out, route_in, route_out, link_inflow, link_send, link_recv, slot_flow, s_io, s_i, a_i,
                f_i, c_i, act, r_o, dt, move_yield_off, move_yield, yield_tc, yield_tf, y_io):
    """Phase 2 of a step: the node model (Tampere et al. 2011) at every node. Reads only the
    start-of-step cell state; moves vehicles between links (packets,
    ``link_inflow``) and out of the network."""
    L = alpha.shape[0]
    has_yields = move_yield.shape[0] > 0
    N = node_in_off.shape[0] - 1
    for nd in range(N):
        if nd + 1 < N:
            _prefetch_node(nd + 1, L, node_in_off, node_in, node_out_off, node_out, slot_off, slot_next,
                           pk_base, pk_head, pk_count, pk, slot_flow, P, max_out)
        i0 = node_in_off[nd]
        ni = node_in_off[nd + 1] - i0
        o0 = node_out_off[nd]
        no = node_out_off[nd + 1] - o0
        if ni == 0:
            continue
        if not has_signals and not has_yields and _surely_free(
                i0, ni, o0, no, L, node_in, node_out, link_send, link_recv, src_slot_off, queue, capacity_drop, keep,
                link_share, qstep_lane, lanes):
            # every input flows in full: ratio 1 for each of its movements
            for i in range(ni):
                inp = node_in[_u(i0 + i)]
                if inp < L:
                    s = link_send[_u(inp)]
                    a = prio[_u(inp)] if prio[_u(inp)] >= 0.0 else qstep_lane[_u(inp)] * lanes[_u(inp)]
                    if s > 1e-9 and a > 0.0:
                        moved = _take_whole_window(inp, s, no, slot_off, slot_next, slot_route, pk_base, pk_head,
                                                   pk_count, pk, slot_flow, route_out, P,
                                                   max_out)
                        link_out[_u(inp)] = moved
                        cum_out[_u(inp)] += moved
                else:
                    src = inp - L
                    g0 = src_slot_off[src]
                    g1 = src_slot_off[src + 1]
                    qsum = 0.0
                    for g in range(g0, g1):
                        qsum += queue[_u(g)]
                    if qsum > _EPS and qstep_lane[src_link[src]] * lanes[src_link[src]] > 0.0:
                        for g in range(g0, g1):
                            d = queue[_u(g)] * 1.0
                            queue[_u(g)] -= d
                            if d > 0.0:
                                route_in[_u(slot_route[_u(g)])] += d
                                slot_flow[_u(slot_next[_u(g)])] += d
            _push_outputs(o0, no, node_out, slot_off, out_slot_off, grp_lo, grp_hi, pk_base, pk_head, pk_count,
                          pk, pk_min, slot_flow, link_inflow, cum_in, P, max_out)
            continue
        for kk in range(ni * max_out):
            s_io[_u(kk)] = 0.0
        # demand per movement
        for i in range(ni):
            inp = node_in[_u(i0 + i)]
            c_i[i] = 1.0
            if inp < L:
                s = link_send[_u(inp)]
                skip_red = has_signals and s > 0.0 and _has_red(inp, no, max_out, out_slot_off, slot_move, green)
                if skip_red:
                    # red movements wait in their turn pocket: out of the FIFO set. The green
                    # movements send from their own vehicles in the last cell (the FIFO's first
                    # n_last), first in first out among themselves, past those waiting at red
                    # (this step's window, also for the transfer below). Counted in the window,
                    # the vehicles waiting at red at the FIFO's head held back the green ones
                    # behind them (a protected left phase cost a cross 20% of its vehicles below
                    # saturation, docs/models/ctm.md)
                    last = cell_off[_u(inp + 1)] - 1
                    n_green = _green_ahead(inp, n[_u(last)], no, out_slot_off, slot_move, green, slot_off, pk_base,
                                           pk_head, pk_count, pk, P, max_out)
                    s = min(alpha[_u(inp)] * n_green, qstep_lane[_u(inp)] * lanes[_u(inp)], meter[_u(inp)])
                    link_send[_u(inp)] = s
                if s > 0.0:
                    _window_by_output(inp, s, i * max_out, no, s_io, slot_off, pk_base, pk_head, pk_count, pk, P,
                                      max_out, skip_red, out_slot_off, slot_move, green)
                    if link_share[_u(inp)] < 1.0:
                        nl = link_open[_u(inp)]
                        c_i[i] = _fit_to_lanes(inp, i * max_out, no, max_out, s_io, out_slot_off, slot_move,
                                               move_lo, move_hi, nl, qstep_lane[_u(inp)] * lanes[_u(inp)] / nl)
                a_i[i] = prio[_u(inp)] if prio[_u(inp)] >= 0.0 else qstep_lane[_u(inp)] * lanes[_u(inp)]
            else:
                src = inp - L
                g0 = src_slot_off[_u(src)]
                qsum = 0.0
                for g in range(g0, src_slot_off[_u(src + 1)]):
                    qsum += queue[_u(g)]
                s_io[_u(i * max_out + slot_out[_u(g0)])] = qsum
                a_i[i] = qstep_lane[_u(src_link[_u(src)])] * lanes[_u(src_link[_u(src)])]
        if has_yields:
            _permitted(i0, ni, no, o0, L, node_in, node_out, out_slot_off, slot_move, move_yield_off, move_yield,
                       move_lo, move_hi, link_recv, s_io, y_io, max_out, dt, yield_tc, yield_tf)
        # supply per output; capacity drop where a queue head feeds a free-flowing link
        for o in range(no):
            out = node_out[_u(o0 + o)]
            if out == _SINK:
                r_o[o] = np.inf
                continue
            r_o[o] = link_recv[_u(out)]
            if capacity_drop > 0.0 and n[_u(cell_off[_u(out)])] <= ncrit_lane[_u(out)] * lanes[_u(out)] * 1.0000001:
                # a queue head feeds this free-flowing link: a queue held by its own meter
                # (a ramp meter, a release signal) does not count, it does not discharge freely
                for i in range(ni):
                    inp = node_in[_u(i0 + i)]
                    if inp < L and s_io[_u(i * max_out + o)] > 0.0:
                        last = cell_off[_u(inp + 1)] - 1
                        if n[_u(last)] > ncrit_lane[_u(inp)] * lanes[_u(inp)] * 1.0000001 and min(
                                alpha[_u(inp)] * n[_u(last)], qstep_lane[_u(inp)] * lanes[_u(inp)]) <= meter[_u(inp)]:
                            r_o[o] *= keep
                            break
        # incremental transfer
        any_demand = False
        for i in range(ni):
            tot = 0.0
            for o in range(no):
                tot += s_io[_u(i * max_out + o)]
            s_i[i] = tot
            f_i[i] = 0.0
            act[i] = 1 if (tot > _EPS and a_i[i] > 0.0) else 0
            any_demand = any_demand or act[i] == 1
        if not any_demand:
            continue
        # fast path: every output can take all its demand (the common, uncongested case)
        free = True
        for o in range(no):
            d = 0.0
            for i in range(ni):
                if act[i]:
                    d += s_io[_u(i * max_out + o)]
            if d > r_o[o]:
                free = False
                break
        while not free:
            best = np.inf
            ostar = -1
            for o in range(no):
                w = 0.0
                for i in range(ni):
                    if act[i] and s_io[_u(i * max_out + o)] > 0.0:
                        w += a_i[i] * s_io[_u(i * max_out + o)] / s_i[i]
                if w > 0.0:
                    a = max(r_o[o], 0.0) / w
                    if a < best:
                        best = a
                        ostar = o
            if ostar < 0:
                break
            by_demand = False
            for i in range(ni):
                if act[i] and s_io[_u(i * max_out + ostar)] > 0.0 and s_i[i] <= best * a_i[i]:
                    by_demand = True
                    f_i[i] = s_i[i]
                    act[i] = 0
                    for o in range(no):
                        r_o[o] -= s_io[_u(i * max_out + o)]
            if by_demand:
                continue
            for i in range(ni):
                if act[i] and s_io[_u(i * max_out + ostar)] > 0.0:
                    f = best * a_i[i]
                    f_i[i] = f
                    act[i] = 0
                    for o in range(no):
                        r_o[o] -= f * s_io[_u(i * max_out + o)] / s_i[i]
        # inputs left active feed only sinks (infinite supply): they send all they have
        for i in range(ni):
            if act[i]:
                f_i[i] = s_i[i]
                act[i] = 0
        # move vehicles: one flowing ratio per input (FIFO), 0 for its red movements; the ratio
        # applies to the whole window, of which the demand was the share c_i
        for i in range(ni):
            inp = node_in[_u(i0 + i)]
            ratio = min(1.0, f_i[i] / s_i[i]) * c_i[i] if s_i[i] > _EPS else 0.0
            for o in range(no):
                kk = i * max_out + o
                s_io[_u(kk)] = ratio if s_io[_u(kk)] > 0.0 else 0.0
                if has_yields:
                    s_io[_u(kk)] *= y_io[_u(kk)]
            if ratio <= 0.0:
                continue
            if inp < L:
                window = link_send[_u(inp)]
                skip_red = has_signals and _has_red(inp, no, max_out, out_slot_off, slot_move, green)
                moved = _take_from_window(inp, window, i * max_out, s_io, no, slot_off, out_slot_off, slot_next,
                                          slot_route, pk_base, pk_head, pk_count, pk, slot_flow,
                                          route_out, P, max_out, skip_red, slot_move, green)
                link_out[_u(inp)] = moved
                cum_out[_u(inp)] += moved
            else:
                # a source: its queues enter the first link of their routes
                for g in range(src_slot_off[_u(inp - L)], src_slot_off[_u(inp - L + 1)]):
                    d = queue[_u(g)] * ratio
                    queue[_u(g)] -= d
                    if d > 0.0:
                        route_in[_u(slot_route[_u(g)])] += d
                        slot_flow[_u(slot_next[_u(g)])] += d
        _push_outputs(o0, no, node_out, slot_off, out_slot_off, grp_lo, grp_hi, pk_base, pk_head, pk_count, pk,
                      pk_min, slot_flow, link_inflow, cum_in, P, max_out)


@kernel
def ctm_advance(k0, k1, dt, steps_per_record, capacity_drop, net, ctl, st, rec):
    """Advance the network from step ``k0`` to ``k1`` (exclusive), time step ``dt`` [s].

    Each step: demand joins the origin queues; the node model at every node (which also moves
    vehicles between links and out of the network); then link by link the flows inside the link,
    the cell update, and accumulation into ``rec`` row ``k // steps_per_record``. Returns a status
    code.
    """
    # every array is taken out of its tuple once, here (see the note above the helpers)
    cell_off, alpha, beta, qstep_lane = net.cell_off, net.alpha, net.beta, net.qstep_lane
    njam_lane, ncrit_lane, dx, prio = net.njam_lane, net.ncrit_lane, net.dx, net.prio
    slot_off, slot_next, slot_out, slot_move = net.slot_off, net.slot_next, net.slot_out, net.slot_move
    out_slot_off, grp_lo, grp_hi = net.out_slot_off, net.grp_lo, net.grp_hi
    slot_route, src_slot_off, src_link = net.slot_route, net.src_slot_off, net.src_link
    node_in_off, node_in, node_out_off, node_out = net.node_in_off, net.node_in, net.node_out_off, net.node_out
    move_sig, move_win_off, win_start, win_end = net.move_sig, net.move_win_off, net.win_start, net.win_end
    sig_cycle, sig_offset, pk_base, pk_min = net.sig_cycle, net.sig_offset, net.pk_base, net.pk_min
    P, max_out = net.n_packets, net.max_out
    lanes, meter, src_rate = ctl.lanes, ctl.meter, ctl.src_rate
    move_lo, move_hi, link_open, link_share = ctl.move_lo, ctl.move_hi, ctl.link_open, ctl.link_share
    n, pk, pk_head, pk_count = st.n, st.pk, st.pk_head, st.pk_count
    queue, cum_in, cum_out = st.queue, st.cum_in, st.cum_out
    route_in, route_out, route_gen = st.route_in, st.route_out, st.route_gen
    link_inflow, slot_flow, green = st.link_inflow, st.slot_flow, st.green
    link_out, link_send, link_recv = st.link_out, st.link_send, st.link_recv
    s_io, s_i, a_i, f_i, act, r_o = st.s_io, st.s_i, st.a_i, st.f_i, st.act, st.r_o
    c_i, y_io = st.c_i, st.y_io
    move_yield_off, move_yield, yield_tc, yield_tf = net.move_yield_off, net.move_yield, net.yield_tc, net.yield_tf
    rec_vkt, rec_vht, rec_queue, rec_cells, rec_wait = rec.vkt, rec.vht, rec.queue_veh, rec.cell_veh, rec.wait
    rec_qlen, rec_qmax = rec.queue_m, rec.queue_m_max

    L = alpha.shape[0]
    G = queue.shape[0]
    first_src_slot = slot_off[L]
    has_signals = sig_cycle.shape[0] > 0
    keep = 1.0 - capacity_drop
    drop = capacity_drop > 0.0
    _update_green(green, move_sig, move_win_off, win_start, win_end, sig_cycle, sig_offset, k0 * dt)
    # what each link can send and receive in the first step (later steps get it from the cell
    # update of the step before)
    _start_links(n, cell_off, alpha, beta, qstep_lane, njam_lane, lanes, meter, link_inflow, link_out, link_send,
                 link_recv)
    for k in range(k0, k1):
        t = k * dt
        row = k // steps_per_record
        if has_signals:
            _update_green(green, move_sig, move_win_off, win_start, win_end, sig_cycle, sig_offset, t)
        # demand arrives in the origin queues (waiting counted from the step after arrival)
        waiting = 0.0
        for g in range(first_src_slot, G):
            waiting += queue[_u(g)]
            a = src_rate[_u(g)]
            if a > 0.0:
                queue[_u(g)] += a
                route_gen[_u(slot_route[_u(g)])] += a
        rec_wait[row] += waiting * dt
        # phase 2: the node model at every node
        _node_model(n, link_out, cell_off, alpha, beta, qstep_lane, njam_lane, ncrit_lane, lanes, meter, move_lo,
                    move_hi, link_open, link_share, prio, capacity_drop, keep,
                    slot_off, out_slot_off, grp_lo, grp_hi, slot_next, slot_out, slot_move, slot_route, src_slot_off,
                    src_link, node_in_off, node_in, node_out_off, node_out, green, has_signals,
                    pk_base, pk_min, pk_head, pk_count, pk, P, max_out,
                    queue, cum_in, cum_out, route_in, route_out, link_inflow, link_send, link_recv, slot_flow, s_io, s_i,
                    a_i, f_i, c_i, act, r_o, dt, move_yield_off, move_yield, yield_tc, yield_tf, y_io)
        # phases 1 and 3, link by link: flows inside the link, cell update, record, the link's ends
        if _update_links(row, dt, steps_per_record, n, cell_off, alpha, beta, qstep_lane, njam_lane, ncrit_lane,
                         lanes, meter, dx, keep, drop, link_inflow, link_out, link_send, link_recv,
                         rec_vkt, rec_vht, rec_queue, rec_qlen, rec_qmax, rec_cells) > 0:
            return STATUS_NEGATIVE
        if (k + 1) % steps_per_record == 0 or k + 1 == k1:
            _snapshot(net, ctl, st, rec, row)
            for l in range(L):
                if not (n[cell_off[l]] == n[cell_off[l]]):
                    return STATUS_NAN
    return STATUS_OK


@kernel
def _snapshot(net, ctl, st, rec, row):
    """Snapshots at the end of record interval ``row`` (cumulative counts, lanes, queues)."""
    lanes = ctl.lanes
    L = lanes.shape[0]
    for l in range(L):
        rec.cum_in[row, l] = st.cum_in[l]
        rec.cum_out[row, l] = st.cum_out[l]
        rec.lanes[row, l] = lanes[l]
    for r in range(st.route_in.shape[0]):
        rec.route_in[row, r] = st.route_in[r]
        rec.route_out[row, r] = st.route_out[r]
        rec.route_gen[row, r] = st.route_gen[r]
    src_slot_off, queue = net.src_slot_off, st.queue
    for s in range(src_slot_off.shape[0] - 1):
        q = 0.0
        for g in range(src_slot_off[s], src_slot_off[s + 1]):
            q += queue[g]
        rec.src_queue[row, s] = q


@kernel
def resplit_packets(net, st, grp_link, grp_off, grp_slot, target, weight, links):
    """En-route choice: in every packet of link ``grp_link[j]``, re-split the vehicles of the
    slots ``grp_slot[grp_off[j]:grp_off[j + 1]]`` (one flow's routes through that link) as
    ``a <- (1 - weight) a + weight target sum(a)``, then re-sum the per-output amounts of every
    packet of ``links`` (the links touched). Packet totals, and so every cell and every count,
    are unchanged but for rounding."""
    pk, pk_base, pk_head, pk_count = st.pk, net.pk_base, st.pk_head, st.pk_count
    slot_off, out_slot_off = net.slot_off, net.out_slot_off
    P = net.n_packets
    MO = net.max_out
    for j in range(grp_link.shape[0]):
        l = grp_link[j]
        s0 = slot_off[_u(l)]
        w = 1 + MO + slot_off[_u(l + 1)] - s0
        base = pk_base[_u(l)]
        p = pk_head[_u(l)]
        for _ in range(pk_count[_u(l)]):
            off = base + p * w + 1 + MO - s0
            tot = 0.0
            for k in range(grp_off[j], grp_off[j + 1]):
                tot += pk[_u(off + grp_slot[_u(k)])]
            if tot > 0.0:
                for k in range(grp_off[j], grp_off[j + 1]):
                    i = _u(off + grp_slot[_u(k)])
                    pk[i] = (1.0 - weight) * pk[i] + weight * target[_u(k)] * tot
            p += 1
            if p == P:
                p = 0
    for l in links:
        s0 = slot_off[_u(l)]
        w = 1 + MO + slot_off[_u(l + 1)] - s0
        base = pk_base[_u(l)]
        ob = l * (MO + 1)
        p = pk_head[_u(l)]
        for _ in range(pk_count[_u(l)]):
            rp = base + p * w
            for o in range(MO):
                sub = 0.0
                for g in range(out_slot_off[_u(ob + o)], out_slot_off[_u(ob + o + 1)]):
                    sub += pk[_u(rp + 1 + MO + g - s0)]
                pk[_u(rp + 1 + o)] = sub
            p += 1
            if p == P:
                p = 0
