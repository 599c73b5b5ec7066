"""Demand measures: odd-even plate restriction.

The odd-even rule bans about half of the plates, but volumes do not fall by half: exempt
vehicles, second cars, trips moved out of the window and non-compliance absorb part of it. In
Beijing 2008, with more than 50 % of vehicles banned, traffic volume fell only 20-40 % (Li & Guo
2016, JTTE 3(1)); in Delhi 2016 car flow fell less than 20 % (Mohan et al. 2017, TRR 2627). The
volume cut is therefore::

    cut = banned_share x compliance x (1 - substitution)

and the defaults (0.5 x 0.9 x (1 - 1/3) = 0.30) sit in the middle of the Beijing band.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..scenario import Scenario
from ._base import Measure, finite, peak_window

__all__ = ["DemandRestriction"]


def _scaled_profile(profile, factor: float, start: float, end: float):
    times = sorted({s for s, _ in profile} | {start, end} - {float("inf")})
    out = []
    for t in times:
        q = 0.0
        for s, v in profile:
            if s <= t:
                q = v
        if start <= t < end:
            q *= factor
        if not out or out[-1][1] != q:
            out.append((t, q))
    return tuple(out)


@dataclass(frozen=True)
class DemandRestriction(Measure):
    """Odd-even plates: a share of vehicles banned in a time window.

    Parameters
    ----------
    banned_share : float
        Share of plates banned in the window (0.5 for odd-even).
    compliance : float
        Share of banned drivers who comply.
    substitution : float
        Share of complying drivers' trips that still happen in the window (second car, exempt
        vehicle, taxi).
    window : tuple of (float, float), optional
        ``(start_s, end_s)`` [s]; the scenario's peak window when None.
    exempt_classes : tuple of str
        Vehicle classes not restricted (buses).
    label : str
        Name of the variant in reports.
    """

    banned_share: float = 0.5
    compliance: float = 0.9
    substitution: float = 1.0 / 3.0
    window: tuple | None = None
    exempt_classes: tuple = ("bus",)
    label: str = ""

    @property
    def volume_cut(self) -> float:
        """Fraction of the restricted classes' volume removed in the window."""
        return self.banned_share * self.compliance * (1.0 - self.substitution)

    def _edit(self, sc: Scenario) -> None:
        owner = type(self).__name__
        for f in ("banned_share", "compliance", "substitution"):
            v = finite(owner, f, getattr(self, f))
            if v > 1.0:
                raise self.error(f, f"must be a fraction in [0, 1], got {v!r}")
        start, end = peak_window(sc) if self.window is None else self.time_window(sc, "window", self.window)
        if not end > start:
            if self.window is None:
                raise self.error("window", f"the scenario's peak window ({start:g}, {end:g}) s is empty (the run ends "
                                           f"at duration_s={sc.duration_s:g} s); give window=(start_s, end_s)")
            raise self.error("window", f"end must be after start, got {self.window!r}")
        factor = 1.0 - self.volume_cut
        sc.demand.flows[:] = [
            f if f.vehicle_class in self.exempt_classes else replace(f, profile=_scaled_profile(f.profile, factor, start, end))
            for f in sc.demand.flows
        ]

    def describe(self) -> str:
        """One line for tables and plots: the banned share and the volume cut in the peak window."""
        return (f"DemandRestriction: odd-even plates, {self.banned_share:.0%} banned -> volume -{self.volume_cut:.0%} "
                "in the peak window")
