"""Luoxi Bridge, south end (洛溪大桥南头) — road condition.

**Seed (row 10).** "车流量大，地面多条车道变为2车道上桥": heavy flow; several ground lanes
become 2 lanes up the bridge. Remedies: peak manual control; long term widen the bridge (part of
the Guangzhou Avenue expressway project), odd-even plates.

**Layout.** Northbound from Panyu: the ground road (4 lanes) runs 2 km to the bridge foot
``F``, where a lane drop leaves 2 lanes (bridge class) for the climb onto the deck. The
southbound carriageway (``bridge-south`` 2 lanes, then ``ground-south`` 4 lanes back to ``P0``)
carries the lighter counter-peak flow: the morning tide runs north from Panyu into Haizhu. It is
modelled so that a tidal lane has a lane to borrow (the spot itself is northbound only).

**Mechanism.** A lane drop from 4 ground lanes (1800 veh/h each) to 2 bridge lanes (1900 veh/h
each). Traffic reaches the bridge foot in the 2 ground lanes that continue, at the ground road's
lane capacity, so the drop passes 2 x min(1800, 1900) = 3600 veh/h. The queue head stands at the
drop (downstream end of ``ground-approach``) and spills back over ``ground-feeder``.

**Engines.** Macro: the drop is a node between a 4-lane and a 2-lane link; the bridge is the
ground road's only way on (turning back onto the southbound carriageway is banned: a divided
road), so the movement onto it is served by the 2 of the 4 lanes that continue and carries at
most half the ground road's capacity (the CTM node model's lanes serving a movement). Micro: drivers in the dropped lanes must change lanes before
``F``.

**Tidal lane.** Row 10 lists widening the bridge; the seed's general measures (Att. 1 item 5,
潮汐车流) name tidal lanes, the cheap way to give the morning tide a third bridge lane: the
median lane of ``bridge-south`` serves ``bridge`` through the peak window, with a clearance
interval in which it is closed both ways.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build", "PEAK"]

#: The default peak shape, with a longer clearance than the other spots' 45 min: see the card's
#: "clearance" row.
PEAK = PeakShape(clearance_s=3600.0)


def build(peak: PeakShape, *, ground_lanes: int = 4, bridge_lanes: int = 2, peak_vph: float = 4500.0,
          southbound_peak_vph: float = 1500.0, approach_length_m: float = 800.0, feeder_length_m: float = 2000.0,
          bridge_length_m: float = 1900.0):
    """Build the Luoxi Bridge scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    ground_lanes, bridge_lanes : int
        Lanes before and after the drop (seed: several, 2).
    peak_vph : float
        Peak northbound demand [veh/h].
    southbound_peak_vph : float
        Peak southbound (counter-peak) demand [veh/h].
    approach_length_m, feeder_length_m, bridge_length_m : float
        Lengths [m]; Luoxi Bridge is about 1.9 km long.
    """
    a, f = approach_length_m, feeder_length_m
    s = Site()
    s.nodes(P0=(0, -a - f), P1=(0, -a), F=(0, 0), N=(0, bridge_length_m))
    s.road("ground-feeder", "P0", "P1", lanes=ground_lanes, name="ground road from Panyu")
    s.road("ground-approach", "P1", "F", lanes=ground_lanes, name="ground road at the bridge foot")
    s.road("bridge", "F", "N", lanes=bridge_lanes, kind="bridge", name="Luoxi Bridge")
    s.road("bridge-south", "N", "F", lanes=bridge_lanes, kind="bridge", name="Luoxi Bridge southbound")
    s.road("ground-south", "F", "P0", lanes=ground_lanes, name="ground road to Panyu")
    # a divided road: no turning back from one carriageway onto the other (the southbound ground
    # road runs F -> P0 past P1, so these are not U-turns by their nodes)
    s.net.ban_turn("ground-approach", "ground-south")
    s.net.ban_turn("ground-south", "ground-feeder")
    d = Demand()
    d.add("P0", "N", peak.profile(peak_vph), name="northbound")
    d.add("N", "P0", peak.profile(southbound_peak_vph), name="southbound")
    meta = card_meta(
        row=10, original_name="洛溪大桥南头", english_name="Luoxi Bridge, south end",
        cause_class="road condition", seed_category="道路条件",
        symptom="several ground lanes drop to 2 lanes up the bridge",
        bottleneck_link="ground-approach", queue_links=["ground-approach", "ground-feeder"], discharge_link="bridge",
        capacity_vph=bridge_lanes * min(s.net.link("ground-approach").capacity_vph_per_lane,
                                        s.net.link("bridge").capacity_vph_per_lane),
        capacity_basis="bridge_lanes x the lower lane capacity of the ground road (the lanes that continue) "
                       "and the bridge",
        remedies=["PeakControl", "Widening", "DemandRestriction", "TidalLane"],
        corridor=["ground-feeder", "ground-approach", "bridge"],
        assumptions=[
            ("clearance", f"{peak.clearance_s / 60:.0f} min of shoulder demand after the ramp down",
             "long enough for both engines' queues to dissolve: 45 min left 10-21% of micro's longest queue "
             "(seeds 0-3), 60 min leaves none"),
            ("ground lanes", f"{ground_lanes}", "the seed says 'several' (多条)"),
            ("peak demand", f"{peak_vph:g} veh/h", "about 1.25 x the drop's capacity (2 lanes x 1800)"),
            ("lengths", f"approach {a:g} m + {f:g} m, bridge {bridge_length_m:g} m", "Luoxi Bridge is 1.9 km"),
            ("southbound demand", f"{southbound_peak_vph:g} veh/h at the peak",
             "the morning counter-peak, a third of northbound (commuters from Panyu cross north); below "
             "one bridge lane's capacity, so a tidal lane can borrow the other"),
            ("TidalLane", "added to row 10's remedies", "the seed names tidal lanes among its general measures "
             "(Att. 1 item 5); on a 2+2-lane bridge with a morning tide it is a cheap widening"),
        ],
    )
    return finish("luoxi-bridge", "Several ground lanes drop to 2 bridge lanes at the south end of Luoxi Bridge.",
                  s, d, peak, meta)
