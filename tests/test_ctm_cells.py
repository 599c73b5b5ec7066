"""The CTM's vector cell pass (``kernels/ctm._cells4``) against its scalar reference, bit for bit.

``_link_cells`` computes a link's Godunov flows, the record sums and the cell update in one
hand-written ``<4 x double>`` loop with a masked last block; ``_link_flows``, ``_link_sums`` and
``_link_update`` are the scalar functions it replaces, kept as the reference of every operation
and of the order of the sums. Any difference, even in the last bit, would change every macro
record, so the comparison is exact, over link lengths 1-41 (every remainder of the blocks of
four), with and without the capacity drop, with cells empty, at the critical and at jam density.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from trafficsim.kernels.ctm import _link_cells, _link_flows, _link_sums, _link_update


@njit
def _scalar(nl, alpha, beta, q, njam, ncrit_drop, keep, drop, inflow, outflow, ncrit):
    yl = np.empty_like(nl)
    _link_flows(nl, yl, alpha, beta, q, njam, ncrit_drop, keep, drop)
    veh, flow = _link_sums(nl, yl)
    yl[nl.shape[0] - 1] = outflow
    bad, above = _link_update(nl, yl, inflow, ncrit)
    return veh, flow, bad, above


@njit
def _vector(nl, alpha, beta, q, njam, ncrit_drop, keep, drop, inflow, outflow, ncrit):
    return _link_cells(nl, alpha, beta, q, njam, ncrit_drop, keep, drop, inflow, outflow, ncrit)


@pytest.mark.parametrize("drop", [False, True])
def test_vector_cell_pass_equals_scalar_reference(drop):
    rng = np.random.default_rng(7)
    for m in range(1, 42):
        for _ in range(40):
            njam = rng.uniform(2.0, 12.0)
            ncrit = njam * rng.uniform(0.1, 0.4)
            q = ncrit * rng.uniform(0.5, 1.0)
            alpha, beta = q / ncrit, q / (njam - ncrit)
            kind = rng.integers(4)
            if kind == 0:
                cells = rng.uniform(0.0, njam, m)
            elif kind == 1:
                cells = np.where(rng.random(m) < 0.5, 0.0, rng.uniform(0.0, njam, m))
            elif kind == 2:
                cells = rng.choice([0.0, ncrit, njam, 1e-17], m)
            else:
                cells = np.full(m, njam)
            inflow = rng.uniform(0.0, q)
            outflow = min(cells[-1], rng.uniform(0.0, q))
            args = (alpha, beta, q, njam, ncrit, rng.uniform(0.8, 0.95), drop, inflow, outflow, ncrit)
            a, b = cells.copy(), cells.copy()
            ref = _scalar(a, *args)
            got = _vector(b, *args)
            assert got == ref, (m, kind)
            np.testing.assert_array_equal(b, a)
            # and nothing past the link's last cell is written (the masked store)
            pad = np.concatenate([cells, [np.nan] * 4])
            c = pad.copy()
            got = _vector(c[:m], *args)
            assert got == ref, (m, kind)
            assert np.all(np.isnan(c[m:]))
