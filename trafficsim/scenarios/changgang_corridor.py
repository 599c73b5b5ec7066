"""Changgang Middle Road (昌岗中路) — signal.

**Seed (row 13).** "2公里内5个红绿灯，路口多、时间隔短、等待灯号时间长，有待优化": five signals
within 2 km; many junctions, short spacing, long waits at red. Remedies: **study the number of
signals and their timing** (coordination, a green wave), a pedestrian overpass by the Xinxing
Jiayu restaurant, peak manual control.

**Layout.** Changgang Middle Road eastbound, 2 lanes, through five signalised junctions
``J1..J5`` 400 m apart, each crossed by a 2-lane side street. Each junction runs a two-phase
plan with cycle ``cycle_s`` and offset 0 (no coordination); ``J4``, where the heaviest cross
road meets the corridor, gives the corridor only ``critical_green_share`` of its green.

**Mechanism.** ``J4`` is the critical junction: its corridor capacity
``2 x 1800 x g/C`` is below the peak demand, so the queue stands on ``changgang-to-J4`` and,
with only 400 m of storage, spills back through ``J3``. The uncoordinated offsets add stops and
delay at every junction (what a green wave would save), without changing the bottleneck.
``J4``'s link refills only during ``J3``'s green, which ends 22 s after ``J4``'s: at red its queue
settles short of the link's start (micro: about 240 m of 400) and the excess waits on
``changgang-to-J3``; the back of ``J4``'s queue reaches through ``J3`` while the start-up wave
travels up the link, about 40 s into each 130 s cycle. The interval-end snapshots rarely catch
that and read two queues, ``J3``'s the longer (the head at ``J3`` in 12 of 45 peak records on
macro, 28 on micro); the head rule reads the spill-back from each interval's back of queue
(``queue_length_max``: ``J4``'s link filled during the interval, its queue still there at the
end) and places the head at ``J4`` (macro 35, micro 32 of 45; ``J3`` 5 and 13).

**Engines.** Both engines run the same fixed-time plans (amber and all-red lost).
"""

from __future__ import annotations

from ..demand import Demand
from ._build import PeakShape, Site, card_meta, finish, signal_corridor, two_phase_signal

__all__ = ["build"]


def build(peak: PeakShape, *, n_signals: int = 5, spacing_m: float = 400.0, lanes: int = 2, cycle_s: float = 130.0,
          green_share: float = 0.6, critical_green_share: float = 0.42, critical_index: int = 4,
          corridor_peak_vph: float = 1550.0, cross_peak_vph: float = 700.0, feeder_length_m: float = 800.0):
    """Build the Changgang Middle Road scenario.

    Parameters
    ----------
    peak : PeakShape
        Demand time profile.
    n_signals : int
        Signalised junctions along the corridor (seed: 5 within 2 km).
    spacing_m : float
        Distance between junctions [m].
    lanes : int
        Eastbound lanes.
    cycle_s, green_share, critical_green_share : float
        Cycle [s] and the corridor's share of the effective green at ordinary junctions and at the critical one.
    critical_index : int
        Which junction (1-based) is critical.
    corridor_peak_vph, cross_peak_vph : float
        Peak demand along the corridor and on each cross street [veh/h].
    feeder_length_m : float
        Length of the corridor upstream of ``J1`` [m].
    """
    if not 1 <= critical_index <= n_signals:
        raise ValueError(f"changgang-corridor: critical_index must be in 1..{n_signals}, got {critical_index}")
    s = Site()
    js = [(f"J{i + 1}", f"cross street {i + 1}") for i in range(n_signals)]
    cor = signal_corridor(s, key="changgang", name="Changgang Middle Road", junctions=js, spacing_m=[spacing_m] * n_signals,
                          lanes=lanes, cross_lanes=2, feeder_length_m=feeder_length_m)
    signals = []
    d = Demand()
    d.add("changgang-start", "changgang-end", peak.profile(corridor_peak_vph), name="Changgang Middle Road eastbound")
    for i, (jid, _) in enumerate(js):
        share = critical_green_share if i + 1 == critical_index else green_share
        signals.append(two_phase_signal(jid, [(cor.main[i + 1], cor.main[i + 2])], [(cor.cross_in[jid], cor.cross_out[jid])],
                                        cycle_s=cycle_s, main_green_share=share))
        d.add(f"{jid}-left", f"{jid}-right", peak.profile(cross_peak_vph), name=f"cross street {i + 1}")
    k = critical_index
    bottleneck, downstream = cor.main[k], cor.main[k + 1]
    g = signals[k - 1].green_share(bottleneck, downstream)
    meta = card_meta(
        row=13, original_name="昌岗中路", english_name="Changgang Middle Road",
        cause_class="signal", seed_category="交通信号",
        symptom="five signals within 2 km; the critical junction's short green queues back through the next signal",
        bottleneck_link=bottleneck, queue_links=[bottleneck, cor.main[k - 1]], discharge_link=downstream,
        capacity_vph=s.capacity_vph(bottleneck) * g,
        capacity_basis="lanes x 1800 veh/h x the critical junction's corridor green / cycle",
        remedies=["SignalRetiming", "GreenWave", "PeakControl"], corridor=list(cor.main),
        assumptions=[
            ("signal plans", f"2 phases, cycle {cycle_s:g} s, corridor {green_share:.0%} of the effective green "
             f"({critical_green_share:.0%} at J{critical_index}), offsets 0, amber 3 s + all-red 2 s",
             "a long peak cycle typical of central Guangzhou; no coordination, as the seed's complaint implies"),
            ("spacing", f"{n_signals} junctions every {spacing_m:g} m", "seed: 5 signals within 2 km"),
            ("peak demand", f"corridor {corridor_peak_vph:g}, each cross street {cross_peak_vph:g} veh/h",
             "corridor about 1.2 x the critical junction's capacity"),
        ],
    )
    return finish("changgang-corridor", "Five uncoordinated signals within 2 km; the critical one queues back through the next.",
                  s, d, peak, meta, signals)
