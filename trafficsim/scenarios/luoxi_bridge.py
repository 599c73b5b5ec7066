"""Luoxi Bridge, south end (洛溪大桥南头) — road condition.

**Seed (row 10).** "车流量大，地面多条车道变为2车道上桥": heavy flow; several ground lanes
become 2 lanes up the bridge. Remedies: peak manual control; long term widen the bridge (part of
the Guangzhou Avenue expressway project), odd-even plates.

**Layout.** Northbound from Panyu: the ground road (4 lanes) runs 2 km to the bridge foot
``F``, where a lane drop leaves 2 lanes (bridge class) for the climb onto the deck.

**Mechanism.** A lane drop: capacity falls from 4 x 1800 to 2 x 1900 veh/h. The queue head
stands at the drop (downstream end of ``ground-approach``) and spills back over
``ground-feeder``; the bridge discharges at its capacity.

**Engines.** Macro: the drop is a node between a 4-lane and a 2-lane link. Micro: drivers in
the dropped lanes must change lanes before ``F``.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, ground_lanes: int = 4, bridge_lanes: int = 2, peak_vph: float = 4500.0,
          approach_length_m: float = 800.0, feeder_length_m: float = 2000.0, bridge_length_m: float = 1900.0):
    """Build the Luoxi Bridge scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    ground_lanes, bridge_lanes : int
        Lanes before and after the drop (seed: several, 2).
    peak_vph : float
        Peak northbound demand [veh/h].
    approach_length_m, feeder_length_m, bridge_length_m : float
        Lengths [m]; Luoxi Bridge is about 1.9 km long.
    """
    a, f = approach_length_m, feeder_length_m
    s = Site()
    s.nodes(P0=(0, -a - f), P1=(0, -a), F=(0, 0), N=(0, bridge_length_m))
    s.road("ground-feeder", "P0", "P1", lanes=ground_lanes, name="ground road from Panyu")
    s.road("ground-approach", "P1", "F", lanes=ground_lanes, name="ground road at the bridge foot")
    s.road("bridge", "F", "N", lanes=bridge_lanes, kind="bridge", name="Luoxi Bridge")
    d = Demand()
    d.add("P0", "N", peak.profile(peak_vph), name="northbound")
    meta = card_meta(
        row=10, original_name="洛溪大桥南头", english_name="Luoxi Bridge, south end",
        cause_class="road condition", seed_category="道路条件",
        symptom="several ground lanes drop to 2 lanes up the bridge",
        bottleneck_link="ground-approach", queue_links=["ground-approach", "ground-feeder"], discharge_link="bridge",
        capacity_vph=s.capacity_vph("bridge"), capacity_basis="bridge_lanes x bridge lane capacity",
        remedies=["PeakControl", "Widening", "DemandRestriction"], corridor=["ground-feeder", "ground-approach", "bridge"],
        assumptions=[
            ("ground lanes", f"{ground_lanes}", "the seed says 'several' (多条)"),
            ("peak demand", f"{peak_vph:g} veh/h", "about 1.2 x the 2-lane bridge capacity"),
            ("lengths", f"approach {a:g} m + {f:g} m, bridge {bridge_length_m:g} m", "Luoxi Bridge is 1.9 km"),
        ],
    )
    return finish("luoxi-bridge", "Several ground lanes drop to 2 bridge lanes at the south end of Luoxi Bridge.",
                  s, d, peak, meta)
