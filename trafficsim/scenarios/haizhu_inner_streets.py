"""Inner streets and lanes across the district (全区内街巷) — road condition.

**Seed (row 18).** "部分内街巷拥堵、阻塞消防通道": some inner streets are congested and fire
lanes blocked. Remedies: multi-storey car parks; an inner-street task force to build
**micro-circulation (one-way street loops)**, better street furniture and parking spaces, and
enforcement; pilots in the Jiangnan Middle, Binjiang and Sushe sub-districts.

**Layout.** A grid of narrow two-way streets (``nx`` x ``ny`` junctions, ``block_m`` apart, one
lane per direction, street class) between two arterials: traffic enters from the west arterial
and from the north, and leaves onto the east arterial through one exit street whose give-way
junction admits ``exit_giveway_vph`` (gaps in the arterial's traffic).

**Mechanism.** Parked cars and opposing traffic keep each lane of a two-way inner street to
about 800 veh/h. The give-way exit is the tightest point: its queue fills the exit street and
spills back into the grid along the streets that feed it (``queue_links``), blocking the
junctions it crosses (and the fire lanes). One-way loops (the OneWayLoop remedy) turn pairs of
streets into one-way couplets with both lanes in one direction.

**Engines.** The give-way exit is a fixed-rate cap (:class:`~trafficsim.control.FixedRateMeter`)
at the minor-street capacity in both engines: the scenario does not carry the arterial's traffic
that a :class:`~trafficsim.control.PriorityJunction` would need for gap acceptance. The grid's
unsignalised junctions have no PriorityJunction either, so their streams cross freely.
"""

from __future__ import annotations

from ..control import FixedRateMeter
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def _jid(i: int, j: int) -> str:
    return f"n{i}{j}"


def build(peak: PeakShape, *, nx: int = 4, ny: int = 3, block_m: float = 150.0, exit_giveway_vph: float = 550.0,
          west_peak_vph: float = 400.0, north_peak_vph: float = 280.0, local_peak_vph: float = 150.0):
    """Build the inner-streets scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    nx, ny : int
        Junctions of the grid west-east and south-north (at least 3 x 2).
    block_m : float
        Block length [m].
    exit_giveway_vph : float
        Capacity of the give-way exit onto the east arterial [veh/h].
    west_peak_vph, north_peak_vph, local_peak_vph : float
        Peak demand from the west entrance and the north entrance to the east exit, and of the
        local trips inside the grid [veh/h].
    """
    if nx < 3 or ny < 2:
        raise ValueError(f"haizhu-inner-streets: the grid needs nx >= 3 and ny >= 2, got {nx} x {ny}")
    b = block_m
    mid = ny // 2
    s = Site()
    for i in range(nx):
        for j in range(ny):
            s.node(_jid(i, j), i * b, j * b)
    for i in range(nx):
        for j in range(ny):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < nx and j + dj < ny:
                    a_, c_ = _jid(i, j), _jid(i + di, j + dj)
                    s.road(f"st-{a_}-{c_}", a_, c_, lanes=1, kind="street", name="inner street")
                    s.road(f"st-{c_}-{a_}", c_, a_, lanes=1, kind="street", name="inner street")
    s.nodes(W=(-b, mid * b), N=(b, ny * b), E=(nx * b + 50, mid * b))
    s.road("entrance-west", "W", _jid(0, mid), lanes=1, kind="street", name="west entrance")
    s.road("entrance-north", "N", _jid(1, ny - 1), lanes=1, kind="street", name="north entrance")
    s.road("exit-east", _jid(nx - 1, mid), "E", lanes=1, kind="street", name="exit onto the east arterial")
    d = Demand()
    d.add("W", "E", peak.profile(west_peak_vph), name="west entrance to arterial")
    d.add("N", "E", peak.profile(north_peak_vph), name="north entrance to arterial")
    d.add("W", _jid(nx - 1, 0), peak.profile(local_peak_vph), name="local trips (west to south-east)")
    d.add("N", _jid(0, 0), peak.profile(local_peak_vph), name="local trips (north to south-west)")
    feeder = f"st-{_jid(nx - 2, mid)}-{_jid(nx - 1, mid)}"
    corridor = ["entrance-west"] + [f"st-{_jid(i, mid)}-{_jid(i + 1, mid)}" for i in range(nx - 1)] + ["exit-east"]
    meta = card_meta(
        row=18, original_name="全区内街巷", english_name="Inner streets and lanes across the district",
        cause_class="road condition", seed_category="道路条件",
        symptom="the give-way exit of a narrow two-way street grid queues back into the grid",
        bottleneck_link="exit-east", queue_links=["exit-east", feeder], discharge_link="exit-east", discharge_side="outflow",
        capacity_vph=exit_giveway_vph, capacity_basis="exit_giveway_vph (give-way capacity onto the arterial)",
        remedies=["OneWayLoop", "Enforcement"], corridor=corridor,
        assumptions=[
            ("grid", f"{nx} x {ny} junctions, {b:g} m blocks, one lane per direction", "old-town inner streets of Haizhu"),
            ("give-way exit", f"{exit_giveway_vph:g} veh/h",
             "minor-street capacity at a priority junction onto a busy arterial (HCM two-way stop control, "
             "conflicting flow about 1000 veh/h)"),
            ("peak demand", f"west {west_peak_vph:g}, north {north_peak_vph:g}, local {local_peak_vph:g} veh/h",
             "exit demand about 1.2 x the give-way capacity"),
        ],
        approximations=["give-way exit: a FixedRateMeter at the minor-street capacity",
                        "no crossing conflicts at the grid's unsignalised junctions (no PriorityJunction controls)"],
    )
    controls = [FixedRateMeter("exit-east", ((0.0, exit_giveway_vph),))]
    return finish("haizhu-inner-streets", "A grid of narrow two-way inner streets drains through a give-way exit.",
                  s, d, peak, meta, controls)
