"""The generated Haizhu-size city: its layout, its daily demand curve, and a small copy simulated.

The full-size city runs for 24 h in benchmarks/test_scale_bench.py; here only its build (about a
second) and a small grid with the same structure are exercised.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import trafficsim as ts
from trafficsim.citynet import DAY_S, daily_profile, haizhu_city
from trafficsim.lanes import U_TURN_DEG, _turn_angle
from trafficsim.network import allowed_turn_pairs


@pytest.fixture(scope="module")
def city():
    return haizhu_city()


def test_full_size_city_has_thousands_of_links_bridges_and_ring(city):
    net = city.network
    assert 3000 <= len(net.links) <= 5000
    assert city.duration_s == DAY_S
    bridges = [lid for lid in net.links if lid.startswith("bridge")]
    assert len(bridges) == 2 * 8
    assert all(net.links[b].lanes == 3 and net.links[b].free_speed_kmh == 60 for b in bridges)
    ring = [lid for lid in net.links if lid.startswith("ring")]
    assert city.meta["ring_links"] == len(ring) >= 40
    # the ring is a closed loop in each direction: every ring node has one ring link in and out per direction
    for direction in ("cw", "ccw"):
        links = [net.links[lid] for lid in ring if lid.endswith(direction)]
        assert sorted(lk.from_node for lk in links) == sorted(lk.to_node for lk in links)
    assert city.meta["links"] == len(net.links) and city.meta["od_flows"] == len(city.demand.flows)
    city.validate()  # every OD has a route


def test_ramps_meet_the_ring_and_the_streets_at_real_angles(city):
    """The lane rules read turns from node coordinates (a turn of more than ``U_TURN_DEG`` is a
    U-turn, the least turn within ``THROUGH_MAX_DEG`` goes straight on): no allowed turn onto or
    off a ramp may look like either a U-turn or a second way straight on."""
    net = city.network
    turns = [(a, b) for a, b in allowed_turn_pairs(net) if "ramp" in a or "ramp" in b]
    assert len(turns) > 100
    for a, b in turns:
        turn = abs(math.degrees(_turn_angle(net, a, b)))  # the angle the lane rules read
        assert 5.0 < turn < U_TURN_DEG, (a, b, turn)


def test_directional_peaks(city):
    north = [f for f in city.demand.flows if f.destination.startswith("n")]
    south = [f for f in city.demand.flows if f.origin.startswith("n")]
    am, pm, night = 8 * 3600.0, 18 * 3600.0, 3 * 3600.0
    total = lambda flows, t: sum(f.rate_at(t) for f in flows)  # noqa: E731
    assert total(north, am) > total(north, pm) > total(north, night)
    assert total(south, pm) > total(south, am) > total(south, night)
    assert total(north, am) == pytest.approx(total(south, pm))


def test_daily_profile_shape():
    prof = daily_profile(1000.0, am_weight=1.0, pm_weight=0.5, shoulder_ratio=0.4, night_ratio=0.1)
    starts = [s for s, _ in prof]
    assert starts[0] == 0 and starts == sorted(starts) and starts[-1] < DAY_S
    rate = dict(prof)
    at = lambda t: [q for s, q in prof if s <= t][-1]  # noqa: E731
    assert at(8 * 3600) == 1000.0 and at(18 * 3600) == 500.0
    assert at(2 * 3600) == 100.0 and at(13 * 3600) == 400.0
    assert max(rate.values()) == 1000.0


def test_small_city_runs_and_conserves_vehicles():
    sc = haizhu_city(cols=9, rows=7, bridges=3, zone_every=4, duration_s=4 * 3600.0)
    res = ts.simulate(sc, record_interval_s=900.0)
    assert res.conservation_error() < 1e-6
    flows = res.data["flow"]
    assert float(flows.sel(link="bridge0-north").max()) > 0
    assert np.isfinite(res.data["speed"].values).all()


def test_bad_layout_is_refused():
    with pytest.raises(ValueError, match="bridges must be in 1..cols"):
        haizhu_city(cols=5, bridges=9)
