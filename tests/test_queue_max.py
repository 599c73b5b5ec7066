"""The back of queue (``queue_length_max``, the interval's longest queue) on both engines, and the
head rule that reads it (:func:`trafficsim.results.queue_chains`).

A single signalised approach below its cycle capacity builds the same queue every cycle: during
the effective red ``r`` the arrivals (flow ``q``, density ``q / v_f``) stop against the jam
(density ``k_j``), so the back of queue moves upstream at ``u = q / (k_j - q / v_f)``
(Lighthill-Whitham shock) and stands ``u r`` from the stop line at the end of red; it keeps
growing in green until the start-up wave (speed ``w``) reaches it, ``u r w / (w - u)`` from the
line: the back of queue (HCM), where the cycle's last vehicle stops. The record interval is the
cycle and ends 5 s into red, so the interval-end snapshot misses all of it.
"""

import numpy as np
import pytest
import xarray as xr

import trafficsim as ts
from trafficsim.results import queue_chains

VF, S, KJ = 50.0, 1800.0, 150.0               # km/h, veh/h/lane, veh/km/lane
GREEN, LOST, CYCLE = 40.0, 5.0, 90.0          # s: the approach's green, its amber + all-red, the cycle
RED = CYCLE - GREEN                           # effective red [s] (amber and all-red carry no flow)
Q = 600.0                                     # veh/h: below the cycle capacity S GREEN / CYCLE = 800
U = Q / (KJ - Q / VF) / 3.6                   # back-of-queue speed during red [m/s]
W = S / (KJ - S / VF) / 3.6                   # start-up wave speed [m/s]


def _approach():
    """A 1-lane approach, 1000 m, to a two-phase signal; the record interval is the cycle and its
    end falls 5 s into the red, so the interval-end snapshot misses the red's queue."""
    net = ts.Network()
    for n in ("A", "S", "B"):
        net.add_node(n)
    kw = dict(lanes=1, free_speed_kmh=VF, capacity_vph_per_lane=S, jam_density_vpkm_per_lane=KJ)
    net.add_link("app", "A", "S", length_m=1000, **kw)
    net.add_link("exit", "S", "B", length_m=500, **kw)
    sig = ts.FixedTimeSignal("S", (ts.Phase(GREEN, (("app", "exit"),), amber_s=3, all_red_s=2),
                                   ts.Phase(CYCLE - GREEN - 2 * LOST, (), amber_s=3, all_red_s=2)), offset_s=45.0)
    d = ts.Demand()
    d.add("A", "B", [(0, Q)])
    return ts.Scenario(net, d, 3600.0, [sig])


def test_macro_back_of_queue_is_the_shockwave_queue_at_end_of_red():
    res = ts.simulate(_approach(), engine="macro", dt_s=1.0, record_interval_s=CYCLE)
    ds = res.data
    qmax, qend = ds["queue_length_max"].sel(link="app"), ds["queue_length"].sel(link="app")
    assert bool((ds["queue_length_max"] >= ds["queue_length"]).all())
    steady = ds["time"] > 600.0
    dx = VF / 3.6 * 1.0                       # cell length [m]
    # the congested run from the stop line reaches the shockwaves' meeting point (the cells behind
    # the start-up wave discharge above the critical density until it passes)
    np.testing.assert_allclose(qmax.where(steady, drop=True), U * RED * W / (W - U), atol=dx)
    assert float(qend.where(steady, drop=True).max()) < 0.3 * U * RED     # 5 s into red: short


def test_micro_back_of_queue_reaches_the_cycle_s_last_halted_vehicle():
    res = ts.simulate(_approach(), engine="micro", seed=3, record_interval_s=CYCLE,
                      trajectories={"every_s": 0.5, "max_vehicles": 2000})
    ds = res.data
    assert bool((ds["queue_length_max"] >= ds["queue_length"]).all())
    tr = res.final_state["trajectories"]
    t = tr["time"].values
    on_app = tr["link_index"].values == list(ds["link"].values).index("app")
    halted = on_app & (tr["speed"].values < 1.8)      # km/h: 0.5 m/s
    x = np.where(halted, tr["x"].values, np.inf)
    length = 1000.0
    spacing = 1000.0 / KJ                     # jam spacing [m]
    qmax = ds["queue_length_max"].sel(link="app").values
    ends = ds["time"].values
    checked = 0
    for i in range(len(ends)):
        if ends[i] <= 600.0:
            continue
        rows = (t > ends[i] - CYCLE) & (t <= ends[i])
        xr_min = x[rows].min()                # front of the farthest halted vehicle [m]
        if not np.isfinite(xr_min):
            continue
        stop_back = length - (xr_min - 5.0)   # its rear (cars are about 5 m long)
        # the recorded back of queue reaches the cycle's last halted vehicle, and beyond it only
        # the few arrivals braking onto it (queued below half the desired speed, 2-4 cars)
        assert stop_back - 1.0 <= qmax[i] <= stop_back + 6 * spacing, (ends[i], qmax[i], stop_back)
        checked += 1
    assert checked >= 25
    # and, on average (Poisson arrivals), the shockwave calculation's back of queue
    mean = float(np.mean(qmax[ends > 600.0]))
    assert mean == pytest.approx(U * RED * W / (W - U), abs=2 * spacing), (mean, U * RED * W / (W - U))


def _two_links(qend, qmax):
    """A dataset of one record: links 'u' -> 'd' -> 'x', each 400 m."""
    links = ["u", "d", "x"]
    return xr.Dataset(
        {"queue_length": (("time", "link"), np.array([qend], float)),
         "queue_length_max": (("time", "link"), np.array([qmax], float))},
        coords={"time": [60.0], "link": links, "length_m": ("link", [400.0] * 3),
                "from_node": ("link", ["A", "B", "C"]), "to_node": ("link", ["B", "C", "D"])},
    )


def test_a_chain_adds_only_queues_that_stood_at_one_instant():
    # 'd' filled during the interval (its back of queue reached 'u') and 'u' held 300 m at some
    # other instant; at the interval's end 'd' holds 250 m and 'u' 100 m: two queues
    chain, head = queue_chains(_two_links([100.0, 250.0, 0.0], [300.0, 400.0, 0.0]), 0)
    assert set(head) == {"d"}                 # 'u' discharged into a queue that filled 'd'
    assert chain["d"] == pytest.approx(400.0)  # not 400 + 300: those never stood together
    assert chain["u"] == pytest.approx(100.0)  # its own 300 m stood at another instant
    # at the interval's end 'd' is full and 'u' holds 100 m behind it: one queue of 500 m
    chain, head = queue_chains(_two_links([100.0, 400.0, 0.0], [300.0, 400.0, 0.0]), 0)
    assert set(head) == {"d"} and chain["d"] == pytest.approx(500.0)
    # a queue that filled 'd' and dissolved within the interval is a transient: 'u' stays a head
    chain, head = queue_chains(_two_links([100.0, 0.0, 0.0], [300.0, 400.0, 0.0]), 0)
    assert set(head) == {"u"} and chain["u"] == pytest.approx(100.0)
    # an undersaturated signal's cyclic back of queue is no head's length: the end reading is
    chain, head = queue_chains(_two_links([0.0, 20.0, 0.0], [0.0, 90.0, 0.0]), 0)
    assert head == {"d": pytest.approx(20.0)}
    # without the maxima (an engine that does not track them) the snapshot rule holds
    ds = _two_links([100.0, 250.0, 0.0], [300.0, 400.0, 0.0]).drop_vars("queue_length_max")
    chain, head = queue_chains(ds, 0)
    assert set(head) == {"u", "d"} and chain["d"] == pytest.approx(250.0)
