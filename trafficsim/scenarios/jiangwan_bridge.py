"""Jiangwan Bridge, northbound up-bridge (江湾桥南往北上桥位) — road condition.

**Seed (row 2).** "内环南往北2条车道及地面4条车道车辆成2条车道上桥": the Inner Ring Road's 2
northbound lanes and 4 ground lanes squeeze into the bridge's 2 up-bridge lanes. Remedies:
move the cross-river bus stops (fewer buses at the merge), peak manual control; long term a new
tunnel, wider up-bridge lanes, odd-even plates.

**Layout.** The elevated Inner Ring Road (2 lanes, expressway) and the ground road (4 lanes,
arterial) meet at the bridge foot ``M``; the up-bridge section has 2 lanes (bridge class) and
continues onto the deck. Cross-river buses run on the ground road and stop at a kerbside stop
on its last 300 m before the merge.

**Mechanism.** The bridge section's capacity (2 x 1900 veh/h) is well below what the 6
approach lanes bring at the peak. The merge gives each approach a share of the bridge
proportional to its capacity (Tampere et al. 2011 node model), so both approaches queue; the
Inner Ring Road's queue grows fastest (fewer lanes to store it) and is the longest: the active
bottleneck's queue head stands at the downstream end of ``ring-approach``.

**Engines.** Macro: the kerbside bus stop costs the ground approach one lane for the share of
time buses stand at it (bus flow x (dwell + clearance)); it does not bind. Micro: buses stop at
the stop and lane-changing at the merge is explicit.
"""

from __future__ import annotations

from ..control import BusStop
from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build", "PEAK"]

#: The default peak shape, with a longer clearance than the other spots' 45 min: see the card's
#: "clearance" row.
PEAK = PeakShape(clearance_s=4500.0)


def build(peak: PeakShape, *, bridge_lanes: int = 2, ring_lanes: int = 2, ground_lanes: int = 4,
          ring_peak_vph: float = 2300.0, ground_peak_vph: float = 2200.0, bus_vph: float = 40.0,
          bus_dwell_s: float = 25.0, approach_length_m: float = 800.0, feeder_length_m: float = 1500.0,
          bridge_length_m: float = 1000.0):
    """Build the Jiangwan Bridge scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    bridge_lanes, ring_lanes, ground_lanes : int
        Up-bridge lanes and the lanes of the two approaches (seed: 2, 2 and 4).
    ring_peak_vph, ground_peak_vph : float
        Peak car demand on the Inner Ring Road and the ground road [veh/h].
    bus_vph : float
        Cross-river buses [bus/h] (timetable, not scaled by demand_scale).
    bus_dwell_s : float
        Mean dwell at the kerbside stop [s].
    approach_length_m, feeder_length_m, bridge_length_m : float
        Lengths [m] of the last approach links, the links upstream of them and the bridge.
    """
    a, f = approach_length_m, feeder_length_m
    s = Site()
    s.nodes(R0=(-600, -a - f), R1=(-300, -a), G0=(300, -a - f), G1=(150, -a), M=(0, 0),
            N=(0, bridge_length_m), X=(0, bridge_length_m + 800))
    s.road("ring-feeder", "R0", "R1", lanes=ring_lanes, kind="expressway", name="Inner Ring Road")
    s.road("ring-approach", "R1", "M", lanes=ring_lanes, kind="expressway", name="Inner Ring Road")
    s.road("ground-feeder", "G0", "G1", lanes=ground_lanes, name="ground road")
    s.road("ground-approach", "G1", "M", lanes=ground_lanes, name="ground road")
    s.road("bridge", "M", "N", lanes=bridge_lanes, kind="bridge", name="Jiangwan Bridge up-bridge lanes")
    s.road("deck", "N", "X", lanes=bridge_lanes + 1, kind="bridge", name="Jiangwan Bridge deck")
    d = Demand()
    d.add("R0", "X", peak.profile(ring_peak_vph), name="Inner Ring Road")
    d.add("G0", "X", peak.profile(ground_peak_vph), name="ground road")
    if bus_vph > 0:
        d.add("G0", "X", [(0.0, bus_vph)], vehicle_class="bus", name="cross-river buses")
    stop_len = s.net.link("ground-approach").length_m
    controls = [BusStop("ground-approach", max(0.0, stop_len - 300.0), 30.0, bay=False, dwell_mean_s=bus_dwell_s,
                        name="cross-river bus stop")]
    meta = card_meta(
        row=2, original_name="江湾桥南往北上桥位", english_name="Jiangwan Bridge, northbound up-bridge",
        cause_class="road condition", seed_category="道路条件",
        symptom="Inner Ring Road 2 lanes + 4 ground lanes squeeze into 2 up-bridge lanes",
        bottleneck_link="ring-approach", queue_links=["ring-approach", "ring-feeder"], discharge_link="bridge",
        capacity_vph=s.capacity_vph("bridge"), capacity_basis="bridge_lanes x bridge lane capacity",
        remedies=["StopRelocation", "PeakControl", "Widening", "NewLink", "DemandRestriction"],
        corridor=["ring-feeder", "ring-approach", "bridge", "deck"],
        assumptions=[
            ("clearance", f"{peak.clearance_s / 60:.0f} min of shoulder demand after the ramp down",
             "the micro engine discharges about 88% of the bridge's capacity here, so its queue needs longer to "
             "dissolve: 45 min left 32-46% of its longest queue (seeds 0-3), 75 min leaves under 8%"),
            ("peak demand", f"Inner Ring {ring_peak_vph:g} veh/h, ground {ground_peak_vph:g} veh/h",
             "together about 1.2 x the 2-lane bridge capacity: a bottleneck active for the whole peak hour"),
            ("cross-river buses", f"{bus_vph:g} bus/h, dwell {bus_dwell_s:g} s, kerbside 300 m before the merge",
             "several cross-river routes at 5-10 min headways; 20-30 s dwell at a busy stop"),
            ("lengths", f"approaches {a:g} m + {f:g} m, bridge ramp {bridge_length_m:g} m",
             "the ramp from the bridge foot to the deck; enough approach to hold the peak queue"),
        ],
    )
    return finish("jiangwan-bridge", "Inner Ring Road (2 lanes) and ground road (4 lanes) squeeze onto 2 bridge lanes.",
                  s, d, peak, meta, controls)
