"""A scenario: network + demand + controls + horizon, and its TOML form.

The TOML schema (documented in ``docs/scenario-toml.md``)::

    [scenario]
    name = "merge"            # optional
    description = "..."       # optional
    duration_s = 7200

    [[nodes]]                 # id, optional x, y [m]
    id = "A"

    [[links]]                 # id, from, to, length_m, lanes, free_speed_kmh,
    id = "up"                 # capacity_vph_per_lane, jam_density_vpkm_per_lane,
    from = "A"                # optional lane_schedule = [[start_s, lanes], ...],
    to = "B"                  # priority, name
    length_m = 1500.0
    lanes = 2

    [[demand]]                # origin, destination, profile = [[start_s, veh_per_h], ...],
    origin = "A"              # optional routes = [{links = [...], share = 0.7}, ...],
    destination = "C"         # vehicle_class, name
    profile = [[0, 4500], [2700, 2000]]

    [[controls]]              # kind = "signal" | "meter" | "blocking" | ...
    kind = "meter"
    link = "ramp"
    profile = [[0, 900]]

    [split_links]             # optional: a road a measure cut in parts (meta["split_links"],
    ramp = ["ramp", "ramp-merge"]   # RampMetering's stop line), so a link list naming it covers all

Round trip is exact: ``Scenario.from_toml(p)`` of ``sc.to_toml(p)`` equals ``sc`` (measures,
which are code, are not serialised).
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .control import ControlError, FixedTimeSignal, check_junction_controls, control_from_dict
from .demand import Demand, DemandError
from .network import Network, NetworkError, _not_a_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["Scenario", "ScenarioError"]


class ScenarioError(ValueError):
    """A scenario, or its TOML file, is malformed (the message says where)."""


def _plain(value):
    """``value`` with numpy scalars as Python numbers and tuples as lists, as TOML writes them
    (controls keep their fields as given: a plan built from a table holds numpy numbers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return _plain(value.tolist()) if isinstance(value, np.ndarray) else value.item()
    return value


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_value(key)


def _toml_value(value) -> str:
    """``value`` as an inline TOML value (one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(_ESCAPES.get(c, c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}")
                             for c in value) + '"'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def _toml_table(rows: dict) -> list[str]:
    """The ``key = value`` lines of a table; an array of tables inside it (a signal's phases) one
    inline table per line."""
    lines = []
    for k, v in rows.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            lines += [f"{_toml_key(k)} = ["] + [f"    {_toml_value(x)}," for x in v] + ["]"]
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    return lines


def _toml_text(data: dict) -> str:
    """A scenario's plain-data form (:meth:`Scenario.to_dict`) as the TOML the documentation shows
    (docs/scenario-toml.md): plain keys first, then ``[scenario]``, then one ``[[nodes]]``,
    ``[[links]]``, ``[[demand]]``, ``[[controls]]`` table per element with its values on one line
    each (a profile ``[[0.0, 4500.0], [2700.0, 2000.0]]``, not a number per line)."""
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
    lines += _toml_table({k: v for k, v in data.items() if k not in tables and k not in arrays})
    for k, v in tables.items():
        lines += ["", f"[{_toml_key(k)}]"] + _toml_table(v)
    for k, items in arrays.items():
        for item in items:
            lines += ["", f"[[{_toml_key(k)}]]"] + _toml_table(item)
    return "\n".join(lines).lstrip("\n") + "\n"


@dataclass
class Scenario:
    """What to simulate: a network, its demand, its controls and a horizon.

    Parameters
    ----------
    network : Network
    demand : Demand
    duration_s : float
        Simulated horizon [s].
    controls : list
        Signal plans, meters, blocking events (see :mod:`trafficsim.control`).
    name, description : str
        Labels for reports.
    measures : dict of str to list
        Remedies that apply to this scenario (filled by the scenario library).
    meta : dict
        Free-form information (the scenario card's facts: bottleneck link, cause class, ...).
    """

    network: Network
    demand: Demand
    duration_s: float
    controls: list = field(default_factory=list)
    name: str = ""
    description: str = ""
    measures: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        try:
            if _not_a_number(self.duration_s):
                raise TypeError
            d = float(self.duration_s)
        except (TypeError, ValueError):
            raise ScenarioError(f"scenario {self.name!r}: duration_s must be a number, got {self.duration_s!r}") from None
        if not math.isfinite(d) or d <= 0:
            raise ScenarioError(f"scenario {self.name!r}: duration_s must be finite and > 0, got {self.duration_s!r}")
        self.duration_s = d
        self.controls = list(self.controls)

    def validate(self) -> "Scenario":
        """Check demand routes and controls against the network; raises with a clear message.

        Also checked: the network has a link, and every movement through a signalised node that a
        route of the demand takes has green in some phase (the engines refuse such a plan; a
        route chosen at run time, ``route_choice="dynamic"``, is checked when the engine compiles)."""
        if not self.network.links:
            raise NetworkError("the network has no links")
        routes = self.demand.resolve_routes(self.network)
        checked = [c.validate(self.network) for c in self.controls]
        check_junction_controls(self.controls)
        signals = {c.node: c for c in checked if isinstance(c, FixedTimeSignal)}
        if signals:
            green = {c.node: {tuple(m) for p in c.phases for m in p.movements} for c in signals.values()}
            for f, rts in zip(self.demand.flows, routes):
                for links, _ in rts:
                    for a, b in zip(links[:-1], links[1:]):
                        node = self.network.links[a].to_node
                        if node in green and (a, b) not in green[node]:
                            raise ControlError(f"signal at node {node!r}: movement {a!r} -> {b!r} is used by flow "
                                               f"{f.label()} but has green in no phase; add it to a phase")
        return self

    def link_parts(self, link_ids) -> list[str]:
        """The links that make up the roads ``link_ids``, once each and in order: a link a measure
        cut in parts (``meta["split_links"]``, e.g. a ramp whose meter's stop line
        :class:`~trafficsim.measures.RampMetering` moved upstream) stands for all of them, so that
        a measure, a hybrid region or a corridor naming the road covers it to its end. A part cut
        again (``{"ramp": ["ramp", "ramp-merge"], "ramp-merge": ["ramp-merge", "ramp-merge-merge"]}``)
        stands for its own parts in turn, all the way down."""
        split = self.meta.get("split_links", {})

        def parts(lid: str, seen: frozenset) -> list[str]:
            if lid in seen or lid not in split:
                return [lid]
            # a road's first part keeps the road's id: it is a link, not the road again
            return [x for p in split[lid] for x in ([p] if p == lid else parts(p, seen | {lid}))]

        return list(dict.fromkeys(p for lid in link_ids for p in parts(lid, frozenset())))

    def road_of(self, link_id: str) -> str:
        """The road the link ``link_id`` is a part of: the id of the road a measure cut it from
        (``meta["split_links"]``, e.g. ``"ramp"`` for ``"ramp-merge"``, and for a part of a part,
        ``"ramp-merge-merge"``, the outermost road again), else ``link_id``.
        ``link_parts([road_of(x)])`` is every part of the road ``x`` lies on."""
        split = self.meta.get("split_links", {})
        road, seen = link_id, {link_id}
        while True:
            outer = next((r for r, parts in split.items() if r != road and road in parts), None)
            if outer is None or outer in seen:
                return road
            road = outer
            seen.add(road)

    def replace(self, **changes) -> "Scenario":
        """A shallow copy with fields replaced (never mutates ``self``)."""
        return replace(self, **changes)

    def copy(self) -> "Scenario":
        """A copy whose network, demand and controls can be edited without touching this one."""
        return replace(
            self, network=self.network.copy(), demand=self.demand.copy(), controls=list(self.controls),
            measures=dict(self.measures), meta=dict(self.meta),
        )

    # ------------------------------------------------------------------ TOML
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form following the TOML schema in this module's docstring."""
        head: dict[str, Any] = {"duration_s": self.duration_s}
        if self.name:
            head["name"] = self.name
        if self.description:
            head["description"] = self.description
        out: dict[str, Any] = {"scenario": head}
        out.update(self.network.to_dict())
        out["demand"] = self.demand.to_list()
        if self.controls:
            out["controls"] = [c.to_dict() for c in self.controls]
        if self.meta.get("split_links"):
            # which links make up one road decides what a hybrid region or a later measure naming
            # the road covers: it is part of the scenario, not a remark about it
            out["split_links"] = {k: list(v) for k, v in self.meta["split_links"].items()}
        return _plain(out)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "scenario") -> "Scenario":
        """Build and validate a scenario from its plain-data form."""
        known = {"scenario", "nodes", "links", "banned_turns", "allow_u_turns", "left_hand", "lane_connectors", "turn_speeds", "demand",
                 "controls", "split_links"}
        extra = set(data) - known
        if extra:
            raise ScenarioError(f"{source}: unknown table(s) {sorted(extra)}; known: {sorted(known)}")
        head = data.get("scenario")
        if not isinstance(head, dict) or "duration_s" not in head:
            raise ScenarioError(f"{source}: missing [scenario] table with duration_s")
        extra = set(head) - {"duration_s", "name", "description"}
        if extra:
            raise ScenarioError(f"{source}: [scenario] has unknown field(s) {sorted(extra)}")
        try:
            net = Network.from_dict(data)
            demand = Demand.from_list(data.get("demand", []))
            controls = [control_from_dict(c, f"controls[{i}]") for i, c in enumerate(data.get("controls", []))]
        except (NetworkError, DemandError, ControlError) as exc:
            raise ScenarioError(f"{source}: {exc}") from None
        try:
            sc = cls(net, demand, head["duration_s"], controls, head.get("name", ""), head.get("description", ""))
        except ScenarioError as exc:
            raise ScenarioError(f"{source}: [scenario] {exc}") from None
        split = data.get("split_links", {})
        if not isinstance(split, dict):
            raise ScenarioError(f"{source}: [split_links] must be a table of link id = [link ids], got {split!r}")
        for road, parts in split.items():
            if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
                raise ScenarioError(f"{source}: split_links.{road} must be a non-empty list of link ids, got {parts!r}")
            for p in parts:
                if p not in net.links:
                    raise ScenarioError(f"{source}: split_links.{road}: link {p!r} is not in the network")
        if split:
            sc.meta["split_links"] = {k: list(v) for k, v in split.items()}
        try:
            sc.validate()
        except (NetworkError, DemandError, ControlError) as exc:
            raise ScenarioError(f"{source}: {exc}") from None
        return sc

    def to_toml(self, path: str | Path) -> Path:
        """Write the scenario to a TOML file (schema in this module's docstring)."""
        path = Path(path)
        path.write_text(_toml_text(self.to_dict()), encoding="utf-8")
        return path

    @classmethod
    def from_toml(cls, path: str | Path) -> "Scenario":
        """Read a scenario from a TOML file; malformed files give a :class:`ScenarioError`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{path}: malformed TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Scenario):
            return NotImplemented
        return self.to_dict() == other.to_dict()

