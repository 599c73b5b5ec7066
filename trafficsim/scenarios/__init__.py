"""The scenario library: the 18 Haizhu District (Guangzhou) congestion black spots, and examples.

Each black spot of ``BOTTLENECKS.md`` (seed: 海府办〔2016〕34号, Attachment 2) is a module here
whose docstring is its scenario card and whose ``build(peak, **params)`` builds the local
network, a whole peak period of demand and the controls::

    import trafficsim as ts
    ts.scenarios.names()                                   # the 18 ids, then the extras
    sc = ts.scenarios.load("jiangwan-bridge", demand_scale=1.1, bridge_lanes=3)
    sc.meta["bottleneck_link"], sc.meta["cause_class"], sc.meta["assumptions"]
    ts.scenarios.parameters("jiangwan-bridge")             # every parameter and its default

Every scenario accepts the peak-shape parameters of :class:`PeakShape` (``demand_scale``,
``peak_start_s``, ``peak_duration_s``, ``ramp_s``, ``shoulder_ratio``, ``clearance_s``) plus its
own. Importing this package imports only the core (no engine, no numba compilation, no
matplotlib).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import fields, replace
from types import ModuleType

from ..scenario import Scenario
from ._build import CAUSE_CLASSES, PeakShape

__all__ = ["names", "load", "parameters", "card", "module", "PeakShape", "CAUSE_CLASSES", "BLACK_SPOTS", "EXTRAS"]

#: The 18 black spots, in the seed table's order: id -> module name.
BLACK_SPOTS = {
    "haiyin-bridge": "haiyin_bridge",
    "jiangwan-bridge": "jiangwan_bridge",
    "gongye-inner-ring": "gongye_inner_ring",
    "baogang-changgang": "baogang_changgang",
    "guangzhou-ave-south": "guangzhou_ave_south",
    "tuhua-weaving": "tuhua_weaving",
    "shiliugang-road": "shiliugang_road",
    "xinjiao-gongye": "xinjiao_gongye",
    "liede-bridge": "liede_bridge",
    "luoxi-bridge": "luoxi_bridge",
    "zhongda-market": "zhongda_market",
    "kecun-bus-stops": "kecun_bus_stops",
    "changgang-corridor": "changgang_corridor",
    "keyun-missing-link": "keyun_missing_link",
    "xingang-ruikang": "xingang_ruikang",
    "xingang-gang": "xingang_gang",
    "dongxiao-nanzhou": "dongxiao_nanzhou",
    "haizhu-inner-streets": "haizhu_inner_streets",
}

#: Teaching examples that are not black spots: id -> module name.
EXTRAS = {
    "merge": "merge",
}

_PEAK_PARAMS = tuple(f.name for f in fields(PeakShape))


def names() -> list[str]:
    """The scenario ids: the 18 black spots in the seed's order, then the extras."""
    return list(BLACK_SPOTS) + list(EXTRAS)


def module(id: str) -> ModuleType:
    """The module that builds scenario ``id`` (its docstring is the scenario card)."""
    table = {**BLACK_SPOTS, **EXTRAS}
    if id not in table:
        raise KeyError(f"unknown scenario {id!r}; valid ids: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{table[id]}")


def parameters(id: str) -> dict[str, object]:
    """Every parameter ``load(id, ...)`` accepts, with its default."""
    mod = module(id)
    peak = getattr(mod, "PEAK", PeakShape())
    out: dict[str, object] = {name: getattr(peak, name) for name in _PEAK_PARAMS}
    for name, p in inspect.signature(mod.build).parameters.items():
        if name != "peak":
            out[name] = p.default
    return out


def load(id: str, **params) -> Scenario:
    """Build scenario ``id`` with ``params`` overriding its defaults.

    Raises
    ------
    KeyError
        Unknown id (the message lists the valid ones).
    TypeError
        Unknown parameter (the message lists the valid ones for this scenario).
    """
    mod = module(id)
    valid = parameters(id)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(
            f"scenario {id!r}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    peak_kw = {k: params.pop(k) for k in _PEAK_PARAMS if k in params}
    peak = replace(getattr(mod, "PEAK", PeakShape()), **peak_kw)
    sc = mod.build(peak, **params)
    sc.meta["parameters"] = {**valid, **peak_kw, **params}
    from ..measures.library import measures_for  # measures import only the core

    sc.measures = measures_for(sc)
    return sc


def card(id: str) -> str:
    """The scenario card text (the module docstring)."""
    return inspect.getdoc(module(id)) or ""
