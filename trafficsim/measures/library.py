"""The seed's remedies for each scenario, as configured measures (``Scenario.measures``).

``measures_for(sc)`` maps each remedy name of ``sc.meta["remedies"]`` (BOTTLENECKS.md) to a list
of measure instances configured for that spot: links, nodes and windows come from the scenario's
network and card. The numbers a measure needs that the seed does not give (a tunnel's length,
the share of buses moved) are stated here and in each measure's ``describe()``.
"""

from __future__ import annotations

from ..scenario import Scenario
from ._base import peak_window
from .demand_measures import DemandRestriction
from .lanes import TidalLane, VariableLane, Widening
from .metering import MergeMetering, PeakControl, RampMetering
from .network_edits import NewLink, OneWayLoop
from .operations import BusBay, Enforcement, StopRelocation
from .signals import GreenWave, SignalRetiming

__all__ = ["measures_for", "SPOT_MEASURES"]

_BRIDGE = dict(free_speed_kmh=60.0, capacity_vph_per_lane=1900.0, jam_density_vpkm_per_lane=140.0)
_ARTERIAL = dict(free_speed_kmh=50.0, capacity_vph_per_lane=1800.0, jam_density_vpkm_per_lane=150.0)


def _haizhu_loops(sc: Scenario) -> OneWayLoop:
    """Alternating one-way rows and columns: the middle row (the one to the east exit) eastbound,
    rows alternate; columns alternate starting northbound at the west edge."""
    p = sc.meta.get("parameters", {})
    nx, ny = int(p.get("nx", 4)), int(p.get("ny", 3))
    mid = ny // 2
    keep = []
    for j in range(ny):
        east = (j - mid) % 2 == 0
        for i in range(nx - 1):
            a, b = (i, i + 1) if east else (i + 1, i)
            keep.append(f"st-n{a}{j}-n{b}{j}")
    for i in range(nx):
        north = i % 2 == 0
        for j in range(ny - 1):
            a, b = (j, j + 1) if north else (j + 1, j)
            keep.append(f"st-n{i}{a}-n{i}{b}")
    return OneWayLoop(keep=tuple(k for k in keep if k in sc.network.links))


def _streets(sc: Scenario) -> tuple:
    return tuple((lid, lk.capacity_vph_per_lane, 1200.0) for lid, lk in sc.network.links.items() if lid.startswith("st-"))


def _dur(sc: Scenario) -> tuple:
    return ((0.0, sc.duration_s),)


#: scenario id -> remedy name -> builder(scenario) -> list of measures
SPOT_MEASURES = {
    "haiyin-bridge": {
        "MergeMetering": lambda sc: [MergeMetering(node="M")],
        "PeakControl": lambda sc: [PeakControl(node="M")],
        "Widening": lambda sc: [Widening(links=("weave", "deck"))],
        # a new crossing from Dongxiao Road straight to the north bank, 1.2 km, 2 lanes (assumed)
        "NewLink": lambda sc: [NewLink(id="new-crossing", from_node="D1", to_node="N", length_m=1200.0, lanes=2,
                                       street_name="new crossing", **_BRIDGE)],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "jiangwan-bridge": {
        # the cross-river stop moves 300 m into the feeder, half the cross-river routes use another
        # crossing (seed: 调整过江公交站点, less bus flow at the merge)
        "StopRelocation": lambda sc: [StopRelocation(link="ground-approach", to_link="ground-feeder", position_m=300.0,
                                                     bus_flow_factor=0.5)],
        "PeakControl": lambda sc: [PeakControl(node="M")],
        "Widening": lambda sc: [Widening(links=("bridge",))],
        # new cross-river tunnel from the ground road to the north bank, 1.8 km, 2 lanes (assumed)
        "NewLink": lambda sc: [NewLink(id="tunnel", from_node="G1", to_node="X", length_m=1800.0, lanes=2,
                                       street_name="new cross-river tunnel", **_BRIDGE)],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "gongye-inner-ring": {
        "PeakControl": lambda sc: [PeakControl(node="K")],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "baogang-changgang": {
        "SignalRetiming": lambda sc: [SignalRetiming()],
        "PeakControl": lambda sc: [PeakControl(node="J")],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "guangzhou-ave-south": {
        # the leftmost lane serves only U-turns for the whole peak period; the through lanes are
        # no longer blocked by U-turners cutting across
        "VariableLane": lambda sc: [VariableLane(link="uturn-section", turn_to="uturn", windows=_dur(sc),
                                                 through_capacity_vph_per_lane=1800.0)],
        # officers in the peak stop U-turners from cutting across: half the loss recovered
        "PeakControl": lambda sc: [Enforcement(blocking_reduction=0.0, restore_share=0.5, label="PeakControl",
                                               capacity_restore=(("uturn-section", sc.network.links["uturn-section"].capacity_vph_per_lane, 1800.0),))],
        "Enforcement": lambda sc: [Enforcement(blocking_reduction=0.0, restore_share=0.3, stop_clearance_factor=0.5,
                                               capacity_restore=(("uturn-section", sc.network.links["uturn-section"].capacity_vph_per_lane, 1800.0),))],
        "StopRelocation": lambda sc: [StopRelocation(link="uturn-section", to_link="approach", position_m=100.0)],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "tuhua-weaving": {
        "Enforcement": lambda sc: [Enforcement(truck_reduction=0.5)],
        "PeakControl": lambda sc: [PeakControl(node="E")],
        "Widening": lambda sc: [Widening(links=("toll",), label="Widening (one more toll booth)")],
    },
    "shiliugang-road": {
        "BusBay": lambda sc: [BusBay()],
        "Enforcement": lambda sc: [Enforcement(blocking_reduction=0.0, stop_clearance_factor=0.5)],
        "Widening": lambda sc: [Widening(links=tuple(l for l in sc.meta["corridor"] if l not in ("feeder", "exit")))],
    },
    "xinjiao-gongye": {
        "SignalRetiming": lambda sc: [SignalRetiming()],
        "PeakControl": lambda sc: [PeakControl(node="S")],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "liede-bridge": {
        "MergeMetering": lambda sc: [MergeMetering(node="M")],
        "PeakControl": lambda sc: [PeakControl(node="M")],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "luoxi-bridge": {
        # no merge or signal at the spot: officers meter the feeder at the bridge's capacity
        "PeakControl": lambda sc: [PeakControl(gate_link="ground-feeder",
                                               gate_rate_vph=sc.network.links["bridge"].lanes * sc.network.links["bridge"].capacity_vph_per_lane)],
        "Widening": lambda sc: [Widening(links=("bridge",))],
        "DemandRestriction": lambda sc: [DemandRestriction()],
        # the median lane of the southbound deck serves the morning tide through the peak window
        "TidalLane": lambda sc: [TidalLane(link="bridge", opposite="bridge-south", windows=(peak_window(sc),))],
    },
    "zhongda-market": {
        "Enforcement": lambda sc: [Enforcement()],
    },
    "kecun-bus-stops": {
        "BusBay": lambda sc: [BusBay()],
        "Enforcement": lambda sc: [Enforcement(blocking_reduction=0.0, stop_clearance_factor=0.5)],
    },
    "changgang-corridor": {
        "SignalRetiming": lambda sc: [SignalRetiming()],
        "GreenWave": lambda sc: [GreenWave(corridor=tuple(sc.meta["corridor"]),
                                           design_speed_kmh=sc.network.links[sc.meta["corridor"][1]].free_speed_kmh)],
        "PeakControl": lambda sc: [PeakControl(node=sc.network.links[sc.meta["bottleneck_link"]].to_node)],
    },
    "keyun-missing-link": {
        "NewLink": lambda sc: [NewLink(id=sc.meta["missing_link"]["id"], from_node=sc.meta["missing_link"]["from"],
                                       to_node=sc.meta["missing_link"]["to"], length_m=sc.meta["missing_link"]["length_m"],
                                       lanes=sc.meta["missing_link"]["lanes"], street_name=sc.meta["missing_link"]["name"],
                                       **_ARTERIAL)],
    },
    "xingang-ruikang": {
        "PeakControl": lambda sc: [PeakControl(node="R")],
        "Enforcement": lambda sc: [Enforcement(capacity_restore=(("ruikang-market", sc.network.links["ruikang-market"].capacity_vph_per_lane, 1800.0),))],
    },
    "xingang-gang": {
        "Widening": lambda sc: [Widening(links=("main-uphill",))],
        "PeakControl": lambda sc: [PeakControl(node="J")],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "dongxiao-nanzhou": {
        "SignalRetiming": lambda sc: [SignalRetiming()],
        "PeakControl": lambda sc: [PeakControl(node="J")],
        "Widening": lambda sc: [Widening(links=("xiaogang-to-J", "xiaogang-exit"))],
        "DemandRestriction": lambda sc: [DemandRestriction()],
    },
    "haizhu-inner-streets": {
        "OneWayLoop": lambda sc: [_haizhu_loops(sc)],
        # fire lanes kept clear of parked cars: half the parking loss of the streets recovered
        "Enforcement": lambda sc: [Enforcement(blocking_reduction=0.0, capacity_restore=_streets(sc))],
    },
    "merge": {
        "RampMetering": lambda sc: [RampMetering(link="ramp", mode="alinea")],
    },
}


def measures_for(sc: Scenario) -> dict[str, list]:
    """The configured measures for each remedy the scenario's card lists.

    Remedies with no configuration for this scenario are left out (none today). Measures are
    built but not applied: call ``m.apply(sc)``.
    """
    table = SPOT_MEASURES.get(sc.name, {})
    return {name: table[name](sc) for name in sc.meta.get("remedies", []) if name in table}
