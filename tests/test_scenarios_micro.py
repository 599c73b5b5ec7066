"""The black spots on the micro engine, macro-micro agreement, seeds 1-3, every remedy on micro (slow: ~4 min).

Run with ``pytest -m slow tests/test_scenarios_micro.py``. Location is tested as on macro; the
agreement test compares the two engines' bottleneck place (equal) and discharge during the peak
(within ``AGREEMENT_TOL``: the IDM's time gap is calibrated to the link capacity, but lane
changing at drops, merges and blockages costs capacity that the CTM does not lose).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import trafficsim as ts

pytestmark = pytest.mark.slow

#: Relative tolerance of micro's discharge against macro's (documented in the scenario cards).
AGREEMENT_TOL = 0.15

_RUNS: dict[tuple[str, str, int], ts.Result] = {}


def run(sid: str, engine: str, seed: int = 0) -> ts.Result:
    if (sid, engine, seed) not in _RUNS:
        _RUNS[(sid, engine, seed)] = ts.simulate(ts.scenarios.load(sid), engine=engine, seed=seed)
    return _RUNS[(sid, engine, seed)]


def peak_heads(res: ts.Result) -> Counter:
    p = res.scenario.meta["parameters"]
    t0, t1 = p["peak_start_s"] + 900.0, p["peak_start_s"] + p["peak_duration_s"]
    times = res.data["time"].values
    return Counter(res.bottleneck.values[(times > t0) & (times <= t1)])


def peak_discharge(res: ts.Result) -> float:
    m, p = res.scenario.meta, res.scenario.meta["parameters"]
    t0, t1 = p["peak_start_s"] + 900.0, p["peak_start_s"] + p["peak_duration_s"]
    cum = res.data["cum_in" if m.get("discharge_side", "inflow") == "inflow" else "cum_out"].sel(link=m["discharge_link"])
    w = cum.sel(time=[t0, t1])
    return float(w[1] - w[0]) / (t1 - t0) * 3600.0


#: Known deviations of the micro engine (issue 4), strict: a run that starts to pass fails until
#: its entry is removed. Keys: test name -> {scenario id: what micro does instead, measured}.
KNOWN_DEVIATIONS: dict[str, dict[str, str]] = {
    "test_micro_bottleneck_stands_where_the_seed_says": {},
    "test_engines_agree_on_place_and_discharge": {},
}


def _ids(test: str) -> list:
    known = KNOWN_DEVIATIONS[test]
    return [pytest.param(sid, marks=pytest.mark.xfail(strict=True, reason=known[sid])) if sid in known else sid
            for sid in ts.scenarios.names()]


@pytest.mark.parametrize("sid", _ids("test_micro_bottleneck_stands_where_the_seed_says"))
def test_micro_bottleneck_stands_where_the_seed_says(sid):
    res = run(sid, "micro")
    heads = peak_heads(res)
    assert heads.most_common(1)[0][0] == res.scenario.meta["bottleneck_link"], heads
    assert res.conservation_error() < 1e-6


@pytest.mark.parametrize("sid", _ids("test_engines_agree_on_place_and_discharge"))
def test_engines_agree_on_place_and_discharge(sid):
    macro, micro = run(sid, "macro"), run(sid, "micro")
    assert peak_heads(micro).most_common(1)[0][0] == peak_heads(macro).most_common(1)[0][0]
    assert peak_discharge(micro) == pytest.approx(peak_discharge(macro), rel=AGREEMENT_TOL)


#: Seeds of the robustness study: the two tests above, on micro's other random draws (arrivals,
#: dwells, service times). Macro is deterministic and runs once.
OTHER_SEEDS = (1, 2, 3)

_RUIKANG = ("micro's head stands on 'university-gate' (22 of 45 records, 'ruikang-entry' 16): the gate's single lane "
            "gets 581 veh/h of green in macro for 550 veh/h of demand, near-critical with micro's start-up loss, and "
            "the Ruikang entry, filled only in the Xingang green, reads short at records in the gate's phase; "
            "discharge 101% of macro's 1,260 veh/h (seeds 0, 2, 3: 'ruikang-entry' 23-37)")

#: Known deviations under seeds 1-3 (strict): (scenario id, seed) -> what micro does instead.
KNOWN_SEED_DEVIATIONS = {
    ("xingang-ruikang", 1): _RUIKANG,
    ("xingang-ruikang", 3): (
        "micro's head stands on 'xingang-approach' (25 of 45 records, 'ruikang-entry' 20) since the clamp bounds a "
        "step by the same-lane leader's new rear (issue 3; before: 'ruikang-entry' 25, 'xingang-approach' 15): the "
        "approach passes 2,457 veh/h in the peak against 2,503 before, a 2% change of a movement at v/c about 1 "
        "that lengthens its mean queue from 24.6 to 42.5 veh; seed 0 keeps 'ruikang-entry' (not traced further)"),
    ("guangzhou-ave-south", 2): (
        "micro's head stands on 'uturn-section' (25 of 45 records, 'approach' 20; seeds 0, 1, 3: 'approach' 31-39, "
        "'uturn-section' 6-14): the section holds the U-turn blockage and the kerbside stop, and in this draw its own "
        "queue is read longer more often than the spill-back onto the approach (not investigated further); "
        "discharge 105% of macro's"),
}


@pytest.mark.parametrize("sid,seed", [
    pytest.param(sid, seed, marks=pytest.mark.xfail(strict=True, reason=KNOWN_SEED_DEVIATIONS[(sid, seed)]))
    if (sid, seed) in KNOWN_SEED_DEVIATIONS else (sid, seed)
    for sid in ts.scenarios.names() for seed in OTHER_SEEDS
])
def test_place_and_agreement_hold_under_other_seeds(sid, seed):
    """The two location tests' checks on micro seeds 1-3 (the tests above use seed 0)."""
    macro, micro = run(sid, "macro"), run(sid, "micro", seed)
    head = peak_heads(micro).most_common(1)[0][0]
    assert head == micro.scenario.meta["bottleneck_link"], peak_heads(micro)
    assert head == peak_heads(macro).most_common(1)[0][0]
    assert peak_discharge(micro) == pytest.approx(peak_discharge(macro), rel=AGREEMENT_TOL)
    assert micro.conservation_error() < 1e-6


@pytest.mark.parametrize("sid", ts.scenarios.names())
def test_every_listed_remedy_runs_on_micro(sid):
    """Each remedy of the spot gives a valid micro Result: vehicles conserved, finite KPIs."""
    sc = ts.scenarios.load(sid)
    for name, ms in sc.measures.items():
        v = sc
        for m in ms:
            v = m.apply(v)
        res = ts.simulate(v, engine="micro", seed=0)
        assert res.conservation_error() < 1e-6, name
        assert np.isfinite(float(res.kpis["travel_time_index"])), name
        assert float(res.kpis["completed"]) > 0, name
