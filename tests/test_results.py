"""The common result schema: dims, CF units on every variable, KPIs, netCDF round trip."""

import numpy as np
import pytest
import xarray as xr

import trafficsim as ts
from conftest import corridor
from trafficsim.results import KPI_DESCRIPTIONS

LINK_VARS = ("flow", "density", "speed", "queue", "queue_length", "queue_length_max", "inflow", "outflow", "cum_in",
             "cum_out", "vkt", "vht", "lanes")


@pytest.fixture(scope="module")
def result():
    sc = corridor(lanes=(2, 1), lengths=(3000.0, 1000.0), demand=[(0, 3000), (1800, 500)], duration=3600)
    return ts.simulate(sc, record_interval_s=60.0, record_cells=True)


def test_schema_dims_units_and_coordinates(result):
    ds = result.data
    for name in LINK_VARS:
        assert ds[name].dims == ("time", "link"), name
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
    assert list(ds.link.values) == ["L0", "L1"]
    assert ds.time.attrs["units"] == "s"
    np.testing.assert_allclose(ds.time.values, np.arange(1, 61) * 60.0)
    assert ds.attrs["engine"] == "macro" and ds.attrs["record_interval_s"] == 60.0
    assert set(ds.route_demand.dims) == {"time", "route"} and ds.origin_queue.dims == ("time", "origin")
    assert ds.cell_density.dims == ("time", "cell") and ds.cell_density.attrs["units"] == "veh/km"


def test_edie_definitions_are_consistent(result):
    ds = result.data
    T = ds.attrs["record_interval_s"] / 3600.0
    L = ds.length_m / 1000.0
    np.testing.assert_allclose(ds.flow, ds.vkt / (L * T), rtol=1e-12)
    np.testing.assert_allclose(ds.density, ds.vht / (L * T), rtol=1e-12)
    busy = ds.vht > 0
    np.testing.assert_allclose(ds.speed.where(busy), (ds.vkt / ds.vht).where(busy), rtol=1e-12)
    assert float(ds.speed.max()) <= float(ds.free_speed_kmh.max()) + 1e-9


def test_kpis_have_every_documented_name_and_add_up(result):
    k = result.kpis
    assert set(KPI_DESCRIPTIONS) <= set(k.index)
    assert k["delay_vh"] == pytest.approx(k["vht"] + k["origin_wait_vh"] - k["vht_free_flow"])
    assert k["demand"] == pytest.approx(k["completed"] + k["inside"] + k["unserved"], abs=1e-6)
    assert k["bottleneck"] == "L0"
    assert k["travel_time_index"] > 1.0


def test_netcdf_round_trip(result, tmp_path):
    path = result.to_netcdf(tmp_path / "run.nc")
    back = xr.open_dataset(path)
    try:
        for name in LINK_VARS:
            np.testing.assert_array_equal(back[name].values, result.data[name].values)
            assert back[name].attrs["units"] == result.data[name].attrs["units"]
        assert list(back.link.values) == list(result.data.link.values)
    finally:
        back.close()


@pytest.mark.parametrize("engine", ["macro", "micro"])
def test_a_run_without_traffic_has_no_congestion(engine):
    """Zero demand gave a travel time index of NaN (0 / 0), which left a comparison's TTI bars
    empty; no traffic is no congestion: 1. Mean speed stays NaN (no kilometre was driven)."""
    sc = corridor()
    sc = sc.replace(demand=sc.demand.scaled(0.0), duration_s=600.0)
    k = ts.simulate(sc, engine=engine).kpis
    assert k["travel_time_index"] == 1.0 and k["delay_vh"] == 0.0 and np.isnan(k["mean_speed_kmh"])
