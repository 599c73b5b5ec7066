"""evaluate(): a row per variant with deltas, identical demand, a variant dimension."""

import numpy as np
import pytest

import trafficsim as ts
from trafficsim.assignment import free_flow, msa, origin_waits
from trafficsim.measures import Widening


def test_evaluate_jiangwan_gives_a_row_per_variant_with_deltas():
    sc = ts.scenarios.load("jiangwan-bridge")
    cmp = ts.evaluate(sc)
    k = cmp.kpis
    assert list(k.index) == ["baseline"] + list(sc.measures)
    for col in ("travel_time_index", "throughput_vph", "delay_vh", "max_queue_m", "spillback_m"):
        assert col in k and f"{col}_delta" in k and f"{col}_pct" in k
    assert (k.loc["baseline", [c for c in k if c.endswith("_delta")]] == 0).all()
    w = k.loc["Widening"]
    assert w["delay_vh_delta"] == pytest.approx(w["delay_vh"] - k.loc["baseline", "delay_vh"])
    assert "variant" in cmp.data.dims and cmp.data.sizes["variant"] == len(k)
    assert "tunnel" in cmp.data["link"].values        # the new link joins the union of links
    # identical demand for every variant except those that change it (odd-even, fewer buses)
    dem = {v: float(r[0].kpis["demand"]) for v, r in cmp.results.items()}
    assert all(dem[v] == pytest.approx(dem["baseline"]) for v in dem if v not in ("DemandRestriction", "StopRelocation"))


def test_evaluate_explicit_variants_and_errors():
    sc = ts.scenarios.load("luoxi-bridge")
    cmp = ts.evaluate(sc, [Widening(links=("bridge",)), Widening(links=("bridge",), add_lanes=2, label="two lanes")])
    assert list(cmp.kpis.index) == ["baseline", "Widening", "two lanes"]
    assert cmp.kpis.loc["two lanes", "travel_time_index"] <= cmp.kpis.loc["baseline", "travel_time_index"] + 1e-9
    with pytest.raises(ValueError, match="no measures"):
        ts.evaluate(sc.replace(measures={}))


def test_variants_by_the_names_of_the_scenarios_measures():
    """``variants`` may name the scenario's measures as the command line does (case, hyphens and
    underscores ignored); the usual mistakes are errors that say what to give instead."""
    sc = ts.scenarios.load("luoxi-bridge")
    by_name = ts.evaluate(sc, ["tidal-lane"]).kpis
    by_object = ts.evaluate(sc, {"TidalLane": sc.measures["TidalLane"]}).kpis
    assert list(by_name.index) == ["baseline", "TidalLane"]
    assert by_name.loc["TidalLane", "delay_vh"] == by_object.loc["TidalLane", "delay_vh"]
    assert list(ts.evaluate(sc, {"tidal": "TidalLane"}).kpis.index) == ["baseline", "tidal"]
    with pytest.raises(ValueError, match="has no measure 'tidal-lnae'; did you mean 'TidalLane'?"):
        ts.evaluate(sc, ["tidal-lnae"])
    with pytest.raises(TypeError, match=r"seeds must be a sequence of seeds, e.g. range\(3\)"):
        ts.evaluate(sc, seeds=3)
    with pytest.raises(ValueError, match="assignment must be 'msa' or None, got 'mse'"):
        ts.evaluate(sc, assignment="mse")
    with pytest.raises(TypeError, match=r"scenario must be a Scenario, got str 'luoxi-bridge'; load one with "
                                        r"trafficsim.scenarios.load\(ID\)"):
        ts.evaluate("luoxi-bridge")


def test_discharge_deltas_compare_one_link_only():
    """haiyin-bridge's lane-by-lane release moves the bottleneck to the ramp: its discharge (267
    veh/h) is another link's than the baseline's (2,605), so no delta is given (it read as a 90 %
    loss); the bottleneck column says which link each discharge is."""
    cmp = ts.evaluate(ts.scenarios.load("haiyin-bridge"), ["MergeMetering", "PeakControl"])
    k = cmp.kpis
    assert k.loc["baseline", "bottleneck"] == k.loc["PeakControl", "bottleneck"] != k.loc["MergeMetering", "bottleneck"]
    assert np.isnan(k.loc["MergeMetering", "bottleneck_discharge_vph_delta"])
    assert np.isnan(k.loc["MergeMetering", "bottleneck_discharge_vph_pct"])
    assert np.isfinite(k.loc["PeakControl", "bottleneck_discharge_vph_delta"])
    assert np.isfinite(k.loc["MergeMetering", "delay_vh_delta"])


def test_a_comparison_reads_as_a_table_in_a_notebook():
    """``Comparison.summary()`` (what ``trafficsim evaluate`` prints) and the notebook view: every
    KPI with its unit, each variant's value with its change from the baseline, what each variant
    does."""
    cmp = ts.evaluate(ts.scenarios.load("luoxi-bridge"), ["TidalLane"])
    table = cmp.summary()
    assert list(table.columns) == ["baseline", "TidalLane"]
    delay = table.loc[("delay_vh", "veh h")]
    pct = cmp.kpis.loc["TidalLane", "delay_vh_pct"]
    assert delay["TidalLane"].endswith(f"({pct:+.0f}%)") and "%" not in delay["baseline"]
    html = cmp._repr_html_()
    assert "<table" in html and "delay_vh" in html and cmp.descriptions["TidalLane"][:20] in html


def test_an_unfit_variant_is_named_before_anything_runs():
    sc = ts.scenarios.load("jiangwan-bridge")
    with pytest.raises(ts.measures.MeasureError, match=r"^evaluate: variant 'bad': Widening\.links: link 'zz'"):
        ts.evaluate(sc, {"ok": Widening(links=("bridge",)), "bad": Widening(links=("zz",))})
    with pytest.raises(ValueError, match=r"variants is empty \(\[\]\); give measures, or None for the scenario's own"):
        ts.evaluate(sc, [])


def test_micro_conservation_counts_the_vehicles_the_kernel_holds():
    """Without the macro engine's cells the check compared the routes' bookkeeping with itself
    (demanded = departed + waiting) and could not fail; it now takes micro's own count of the
    vehicles inside."""
    res = ts.simulate(ts.scenarios.load("merge").replace(duration_s=1800.0), engine="micro", seed=0)
    assert res.final_state["inside"] > 0 and res.conservation_error() < 1e-9
    res.data["route_arrived"] = res.data["route_arrived"] - 100.0
    assert res.conservation_error() >= 100.0


def test_simulate_names_its_own_options_in_errors():
    """A misspelt option is reported against ``simulate`` with the nearest name (it used to be
    ``run_macro() got an unexpected keyword argument``), a scenario id for a Scenario and a bad seed
    likewise."""
    sc = ts.scenarios.load("merge")
    with pytest.raises(TypeError, match="simulate: engine 'macro' takes no option 'dt'; did you mean 'dt_s'?"):
        ts.simulate(sc, dt=1.0)
    with pytest.raises(TypeError, match="simulate: engine 'micro' takes no option 'capacity_prest'; did you mean "
                                        "'capacity_preset'?"):
        ts.simulate(sc, engine="micro", capacity_prest="HCM")
    with pytest.raises(TypeError, match="simulate: scenario must be a Scenario, got str 'merge'"):
        ts.simulate("merge")
    for seed in ("x", -3, 1.5, True):
        with pytest.raises(ts.SimulationError, match="seed must be a whole number >= 0 or None"):
            ts.simulate(sc, seed=seed)
    assert ts.simulate(sc, seed=np.int64(3), dt_s=5.0).kpis["completed"] > 0


def test_seeds_give_confidence_intervals_with_common_random_numbers():
    sc = ts.scenarios.load("merge")
    cmp = ts.evaluate(sc, seeds=[0, 1])        # macro is deterministic: CI width 0
    assert "delay_vh_ci95" in cmp.kpis and np.allclose(cmp.kpis["delay_vh_delta_ci95"], 0.0)


def test_msa_assignment_reports_a_decreasing_gap_on_parallel_routes():
    net = ts.Network()
    for n in "ABCDE":
        net.add_node(n)
    # the short route's bottleneck is downstream, so its queue (and delay) stands on its links
    net.add_link("short", "A", "E", length_m=2000, lanes=2)
    net.add_link("narrow", "E", "B", length_m=300, lanes=1)
    net.add_link("long1", "A", "C", length_m=1200, lanes=2)
    net.add_link("long2", "C", "B", length_m=1200, lanes=2)
    net.add_link("exit", "B", "D", length_m=500, lanes=4)
    d = ts.Demand()
    d.add("A", "D", [(0, 2400), (1800, 0)])
    sc = ts.Scenario(net, d, 4200, name="parallel")
    out = msa(sc, iterations=5, tolerance=0.0)
    assert len(out.gaps) == 5 and out.gaps[-1] < out.gaps[0]
    shares = dict((p, s) for p, s in out.scenario.demand.flows[0].routes)
    assert len(shares) == 2 and abs(sum(shares.values()) - 1) < 1e-9
    assert out.scenario.meta["assignment_gap"] == out.gaps


def test_msa_counts_the_wait_at_the_origin():
    """A narrow entry queues vehicles outside the network, where no link time shows the wait: the
    route cost includes it, so demand moves to the wider entry."""
    net = ts.Network()
    for n in "ABCD":
        net.add_node(n)
    net.add_link("narrow", "A", "B", length_m=1000, lanes=1, capacity_vph_per_lane=1200)
    net.add_link("wide", "A", "C", length_m=1500, lanes=2)
    net.add_link("join", "C", "B", length_m=500, lanes=2)
    net.add_link("exit", "B", "D", length_m=500, lanes=3)
    d = ts.Demand()
    d.add("A", "D", [(0, 2400), (1800, 0)])
    sc = ts.Scenario(net, d, 3600, name="narrow entry")
    base = ts.simulate(free_flow(sc))
    assert origin_waits(base.data)[("A", "narrow")] > 300
    out = msa(sc, iterations=4, tolerance=0.0)
    shares = {p[0]: s for p, s in out.scenario.demand.flows[0].routes}
    assert shares.get("wide", 0.0) > 0.3      # link times alone keep everyone on the shorter narrow
    assert out.gaps[-1] < out.gaps[0]


def test_evaluate_on_processes_gives_the_same_comparison():
    """``workers=2`` runs each (variant, seed) in a spawned process (an MSA variant as one task):
    the comparison is the one of a single process, bit for bit, whatever order tasks finish in;
    an ``executor`` is used as given; a failing run raises its own error."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    sc = ts.scenarios.load("jiangwan-bridge").replace(duration_s=1800.0)
    variants = {"wider": Widening(links=("bridge",)), "two lanes": Widening(links=("bridge",), add_lanes=2)}
    kw = dict(engine="micro", seeds=[0, 1])
    ref = ts.evaluate(sc, variants, **kw)
    for how in (dict(workers=2), dict(executor=ThreadPoolExecutor(3))):
        got = ts.evaluate(sc, variants, **kw, **how)
        pd.testing.assert_frame_equal(got.kpis, ref.kpis, check_exact=True)
        for name in ref.results:
            for a, b in zip(ref.results[name], got.results[name]):
                assert a.data.attrs["seed"] == b.data.attrs["seed"]
                assert a.data["flow"].equals(b.data["flow"]) and a.data["queue"].equals(b.data["queue"])
        assert got.descriptions == ref.descriptions
    # an MSA variant is one task (assignment, then its seeds): the same gap and KPIs on a pool
    net_sc = ts.scenarios.load("jiangwan-bridge")
    one = {"NewLink": net_sc.measures["NewLink"]}
    a = ts.evaluate(net_sc, one, assignment="msa", msa_iterations=2)
    b = ts.evaluate(net_sc, one, assignment="msa", msa_iterations=2, executor=ThreadPoolExecutor(2))
    pd.testing.assert_frame_equal(a.kpis, b.kpis, check_exact=True)
    assert np.isfinite(a.kpis["assignment_gap"].iloc[1])
    with pytest.raises(ValueError, match="workers"):
        ts.evaluate(sc, variants, workers=0)
    with pytest.raises(ts.SimulationError, match="dt_s"):
        ts.evaluate(sc, variants, executor=ThreadPoolExecutor(2), dt_s=-1.0)
