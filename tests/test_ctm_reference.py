"""The numba CTM agrees with the naive numpy reference cell by cell."""

import numpy as np
import pytest

import trafficsim as ts
from conftest import corridor
from reference_ctm import chain_ctm


@pytest.mark.parametrize("demand", [1500.0, 3600.0, 5000.0])
def test_kernel_matches_reference_on_a_lane_drop_chain(demand):
    dt = 1.8
    sc = corridor(lanes=(3, 2, 1), lengths=(2000.0, 1000.0, 1500.0), demand=[(0, demand)], duration=900)
    res = ts.simulate(sc, dt_s=dt, record_interval_s=dt, record_cells=True)
    ref, queue = chain_ctm([
        dict(length_m=L, lanes=n, free_speed_kmh=100, capacity_vph_per_lane=2000, jam_density_vpkm_per_lane=150)
        for n, L in zip((3, 2, 1), (2000.0, 1000.0, 1500.0))
    ], demand, dt, 500)
    cells_len = np.repeat([2000.0 / 40, 1000.0 / 20, 1500.0 / 30], [40, 20, 30])
    kernel = res.data.cell_density.values * cells_len / 1000.0     # back to vehicles per cell
    np.testing.assert_allclose(kernel, ref, rtol=1e-9, atol=1e-9)
    assert float(res.data.origin_queue.values[-1].sum()) == pytest.approx(queue, abs=1e-9)
