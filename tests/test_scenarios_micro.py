"""The black spots on the micro engine, macro-micro agreement, every remedy on micro (slow: ~3 min).

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

_RUNS: dict[tuple[str, str], ts.Result] = {}


def run(sid: str, engine: str) -> ts.Result:
    if (sid, engine) not in _RUNS:
        _RUNS[(sid, engine)] = ts.simulate(ts.scenarios.load(sid), engine=engine, seed=0)
    return _RUNS[(sid, engine)]


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
