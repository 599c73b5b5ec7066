"""Draw the figures of docs/models/ctm.md and docs/validation.md from real runs.

Run: ``python docs/gen_validation_figures.py`` (writes docs/img/ctm_*.png, about 10 s).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import trafficsim as ts  # noqa: E402

OUT = Path(__file__).parent / "img"
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from conftest import corridor  # noqa: E402


def lwr_figure():
    """Time-space density of the 2->1 lane bottleneck with the analytic shock line."""
    vf, q, kj = 100.0, 2000.0, 150.0
    w = q / (kj - q / vf)
    qa = 3600.0
    ka, kb = qa / vf, 2 * kj - q / w
    shock = (q - qa) / (kb - ka)
    sc = corridor(lanes=(2, 1), lengths=(10000.0, 2000.0), demand=[(0, qa)], duration=1800)
    res = ts.simulate(sc, dt_s=3.6, record_interval_s=36.0, record_cells=True)
    ds = res.data
    up = ds.cell_density.where(ds.cell_link == "L0", drop=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    mesh = ax1.pcolormesh(ds.time / 60, up.cell_x / 1000, up.T, cmap="magma_r", shading="nearest")
    fig.colorbar(mesh, ax=ax1, label="density [veh/km]")
    t_arr = 10000 / (vf / 3.6)
    t = np.linspace(t_arr, 1800, 50)
    ax1.plot(t / 60, (10000 + shock / 3.6 * (t - t_arr)) / 1000, "c--", lw=2, label=f"LWR shock {shock:.2f} km/h")
    ax1.set_xlabel("time [min]")
    ax1.set_ylabel("position on the 2-lane road [km]")
    ax1.set_title("2 lanes -> 1 lane, demand 3600 veh/h")
    ax1.legend(loc="lower left")
    stored = (ds.cum_in.sel(link="L0") - ds.cum_out.sel(link="L0")) - ka * 10.0
    stored = stored.where(ds.time >= t_arr, drop=True)
    ax2.plot(stored.time / 60, stored, lw=3, alpha=0.6, label="CTM: vehicles stored in the queue")
    ax2.plot(t / 60, (qa - q) * (t - t_arr) / 3600, "k--", label="(q_A - q_B)(t - t_0)")
    ax2.set_xlabel("time [min]")
    ax2.set_ylabel("vehicles [veh]")
    ax2.legend()
    fig.savefig(OUT / "ctm_lwr.png", dpi=110)
    plt.close(fig)


def convergence_figure():
    """L1 error of the density field against the LWR solution, against the step."""
    vf, q, kj = 100.0, 2000.0, 150.0
    w = q / (kj - q / vf)
    qa, L_up, t = 3600.0, 10000.0, 1500.0
    ka, kb = qa / vf, 2 * kj - q / w
    shock = (q - qa) / (kb - ka) / 3.6
    t_arrive = L_up / (vf / 3.6)

    def l1_error(dt):
        sc = corridor(lanes=(2, 1), lengths=(L_up, 2000.0), demand=[(0, qa)], duration=t)
        ds = ts.simulate(sc, dt_s=dt, record_interval_s=dt, record_cells=True).data
        up = ds.cell_density.where(ds.cell_link == "L0", drop=True).isel(time=-1)
        x = up.cell_x.values
        exact = np.where(x < L_up + shock * (t - t_arrive), ka, kb)
        return float(np.sum(np.abs(up.values - exact)) * (x[1] - x[0]) / 1000.0)

    dts = [3.6, 1.8, 1.2, 0.9, 0.6]
    err = [l1_error(dt) for dt in dts]
    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    ax.loglog(dts, err, "o-")
    ax.set_xlabel("time step dt [s] (cell = v_f dt)")
    ax.set_ylabel("L1 density error on the road [veh]")
    ax.set_title("CTM -> LWR solution under a finer step")
    fig.savefig(OUT / "ctm_convergence.png", dpi=110)
    plt.close(fig)
    return dict(zip(dts, err))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    lwr_figure()
    print(convergence_figure())
