"""Merge (teaching example, not a black spot): a mainline and an on-ramp share a 2-lane section.

Layout: a 3-lane mainline (1.5 km feeder, 1 km approach) and a 1-lane on-ramp (600 m) meet at
node ``M``; 2 lanes continue for 1 km. The merge section is the bottleneck; with
capacity-proportional merge priority (Tampere et al. 2011) both streams queue, the mainline's
queue is the longer one. The same scenario, written by hand, is ``examples/merge.toml``.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, main_peak_vph: float = 3700.0, ramp_peak_vph: float = 700.0,
          section_lanes: int = 2, approach_length_m: float = 1000.0):
    """Build the merge example.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    main_peak_vph, ramp_peak_vph : float
        Peak demand of the mainline and the ramp [veh/h].
    section_lanes : int
        Lanes of the merge section.
    approach_length_m : float
        Length of the mainline approach [m].
    """
    s = Site()
    s.nodes(A=(-approach_length_m - 1500, 0), B=(-approach_length_m, 0), R=(-600, -250), M=(0, 0), C=(1000, 0))
    s.road("main-feeder", "A", "B", lanes=3, kind="expressway", name="mainline")
    s.road("main-approach", "B", "M", lanes=3, kind="expressway", name="mainline")
    s.road("ramp", "R", "M", lanes=1, kind="ramp", name="on-ramp")
    s.road("section", "M", "C", lanes=section_lanes, kind="expressway", name="merge section")
    d = Demand()
    d.add("A", "C", peak.profile(main_peak_vph), name="mainline")
    d.add("R", "C", peak.profile(ramp_peak_vph), name="ramp")
    meta = card_meta(
        row=0, original_name="(示例) 匝道合流", english_name="Merge example", cause_class="road condition",
        seed_category="(example)", symptom="mainline and on-ramp queue behind a 2-lane merge section; the ramp, below its merge share, flows",
        bottleneck_link="main-approach", queue_links=["main-approach", "main-feeder"], discharge_link="section",
        capacity_vph=s.capacity_vph("section"), capacity_basis="section lanes x expressway lane capacity",
        remedies=["RampMetering"], corridor=["main-feeder", "main-approach", "section"],
        assumptions=[("demand", f"mainline {main_peak_vph:g}, ramp {ramp_peak_vph:g} veh/h at the peak",
                      "about 1.1 x the section's capacity, a typical recurrent merge bottleneck")],
    )
    meta["seed"] = "teaching example (not in the seed table)"
    return finish("merge", "A 3-lane mainline and a 1-lane on-ramp merge into 2 lanes.", s, d, peak, meta)
