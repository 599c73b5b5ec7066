"""Keyun Road between Xingang Road and Fengpu Road (科韵路（新港路-风浦路）) — network defect.

**Seed (row 14).** "现状风浦路与科韵路未进行衔接，车流需经长距离绕行才能到达广交会周边": Fengpu
Road does not connect to Keyun Road, so traffic for the Canton Fair area makes a long detour.
Remedies: connect the missing link (planned, work to start in 2017); guidance signs. The seed
files it under 道路条件; its cause is the textbook network defect (断头路, a dead-end road).

**Layout.** Fengpu Road (2 lanes) runs east to a dead end ``F1`` 600 m short of Keyun Road.
Traffic for the Canton Fair (north on Keyun Road) detours south on a 2-lane link to Xingang East
Road at ``D``, joins its eastbound traffic (3 lanes) to ``K``, and turns north up Keyun Road. The
missing link ``F1 -> KN`` is described in ``meta["missing_link"]`` (the NewLink remedy adds it).

**Mechanism.** Xingang East Road between ``D`` and ``K`` carries its own traffic plus the
detour: together above ``3 x 1800``. The detour, whose merge share covers it, flows; Xingang
East Road's own traffic queues: the head stands at ``D`` on ``xingang-west`` and spills back over
``xingang-feeder``. Connecting Fengpu Road removes the detour from the merge.

**Engines.** Routes are free-flow shortest paths, so adding the missing link re-routes the
Fengpu Road traffic in both engines. The lane markings at ``K`` (every lane straight on, the two
left lanes also turn left) are given as lane connectors; the micro engine keeps vehicles in the
lanes of their movement, the macro engine has no lanes per movement.
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish

__all__ = ["build"]


def build(peak: PeakShape, *, fengpu_peak_vph: float = 1500.0, xingang_peak_vph: float = 4300.0, xingang_lanes: int = 3,
          detour_length_m: float = 1200.0, missing_length_m: float = 600.0, feeder_length_m: float = 1500.0):
    """Build the Keyun Road missing-link scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    fengpu_peak_vph, xingang_peak_vph : float
        Peak demand from Fengpu Road to the Canton Fair and along Xingang East Road [veh/h].
    xingang_lanes : int
        Eastbound lanes of Xingang East Road.
    detour_length_m, missing_length_m, feeder_length_m : float
        Lengths [m] of the north-south detour, of the missing link and of Xingang East Road's feeder.
    """
    h, m = detour_length_m, missing_length_m
    s = Site()
    s.nodes(F0=(-2000, 0), F1=(0, 0), KN=(m, 0), C=(m, 800), D=(0, -h), K=(m, -h), X0=(-feeder_length_m - 800, -h),
            X1=(-800, -h), XE=(m + 1500, -h))
    s.road("fengpu", "F0", "F1", lanes=2, name="Fengpu Road")
    s.road("detour", "F1", "D", lanes=2, name="detour to Xingang East Road")
    s.road("xingang-feeder", "X0", "X1", lanes=xingang_lanes, name="Xingang East Road")
    s.road("xingang-west", "X1", "D", lanes=xingang_lanes, name="Xingang East Road")
    s.road("xingang-mid", "D", "K", lanes=xingang_lanes, name="Xingang East Road")
    s.road("xingang-east", "K", "XE", lanes=xingang_lanes, name="Xingang East Road")
    s.road("keyun-south", "K", "KN", lanes=3, name="Keyun Road")
    s.road("keyun-north", "KN", "C", lanes=3, name="Keyun Road to the Canton Fair")
    # lane markings at K: all lanes straight on, the middle and left lanes also turn left
    straight = [(i, i) for i in range(xingang_lanes)]
    s.net.connect_lanes("xingang-mid", "xingang-east", straight)
    k = min(2, xingang_lanes)
    s.net.connect_lanes("xingang-mid", "keyun-south", [(xingang_lanes - k + j, 3 - k + j) for j in range(k)])
    d = Demand()
    d.add("F0", "C", peak.profile(fengpu_peak_vph), name="Fengpu Road to Canton Fair")
    d.add("X0", "XE", peak.profile(xingang_peak_vph), name="Xingang East Road eastbound")
    meta = card_meta(
        row=14, original_name="科韵路（新港路-风浦路）", english_name="Keyun Road between Xingang Road and Fengpu Road",
        cause_class="network defect", seed_category="道路条件",
        symptom="Fengpu Road dead-ends short of Keyun Road; Canton Fair traffic detours onto Xingang East Road",
        bottleneck_link="xingang-west", queue_links=["xingang-west", "xingang-feeder"], discharge_link="xingang-mid",
        capacity_vph=s.capacity_vph("xingang-mid"), capacity_basis="xingang_lanes x 1800 veh/h",
        remedies=["NewLink"], corridor=["xingang-feeder", "xingang-west", "xingang-mid", "keyun-south", "keyun-north"],
        missing_link={"id": "fengpu-keyun", "from": "F1", "to": "KN", "length_m": float(m), "lanes": 2,
                      "kind": "arterial", "name": "Fengpu Road - Keyun Road link"},
        assumptions=[
            ("peak demand", f"Fengpu {fengpu_peak_vph:g}, Xingang East {xingang_peak_vph:g} veh/h",
             "Canton Fair and Pazhou office traffic; together about 1.1 x Xingang East Road's capacity"),
            ("lengths", f"detour {h:g} m, missing link {m:g} m", "the detour runs via Xingang East Road"),
            ("lane markings at K", "every lane straight on; the two left lanes also turn left (shared)",
             "a 4,300 + 1,500 veh/h split needs about 2.4 through lanes and 0.8 left-turn lane; the micro "
             "engine follows the markings, the macro engine has no lanes per movement"),
        ],
    )
    return finish("keyun-missing-link", "Fengpu Road dead-ends short of Keyun Road; its traffic detours onto Xingang East Road.",
                  s, d, peak, meta)
