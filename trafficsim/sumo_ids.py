"""The map between trafficsim's node and link ids and the ids SUMO is given.

SUMO rejects ids holding any of :data:`SUMO_INVALID_ID_CHARS` (``isValidNetID``), and its tools
do not resolve ids with characters beyond Latin-1: netconvert 1.28, given node ``'节点'``, stopped
with ``Edge's '江南' from-node '节点' is not known``. Users name nodes and links in their own
script ("海珠桥", "江南大道"), so every id is mapped at the SUMO boundary instead of refused (no
id is an export error any more):

* an id SUMO accepts (:func:`sumo_accepts`: printable Latin-1 without the invalid characters) goes
  to SUMO unchanged, so networks with such ids give the same files, byte for byte, as before the
  map existed;
* any other id gets a *safe form* (:func:`safe_form`): its printable ASCII characters that SUMO
  accepts (the others replaced by ``_``), then ``~`` and the first :data:`HASH_HEX` hex digits of
  the SHA-1 of its UTF-8 bytes (``"江南大道"`` -> ``"~<8 hex>"``, ``"ramp 2"`` ->
  ``"ramp_2~<8 hex>"``). The form depends on the id alone, so it is the same in every export of
  every network holding that id, whatever else the network holds, unless it would collide;
* a safe form that collides with an id kept as it is, or with the safe form of another id, takes
  more hex digits (12, 16, ... 40), ids taken in sorted order, then a counter: the map is
  deterministic and one-to-one.

Nodes and links share one map (a node and a link with the same id get the same SUMO id, which
SUMO allows: its nodes and edges are separate namespaces), so a SUMO message can be turned back
into trafficsim's ids without knowing what it names (:meth:`SumoIds.restore`). Pocket links of
variable lanes (``<link>:pocket``) are no SUMO edges and are not mapped. Exported files state
the original id of every renamed node and edge as ``<param key="trafficsim.id" value="..."/>``
(:data:`PARAM_KEY`), which netconvert carries into the ``.net.xml``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

__all__ = ["SUMO_INVALID_ID_CHARS", "HASH_HEX", "PARAM_KEY", "SumoIds", "sumo_accepts", "safe_form"]

#: Characters SUMO does not accept in node and edge ids (``SUMOXMLDefinitions::isValidNetID``);
#: a space would also split the space-separated edge lists of routes and ``edgeData``.
SUMO_INVALID_ID_CHARS = " \t\n\r|\\'\";,:!<>&*?"
#: Hex digits of the SHA-1 in a safe form (more only on a collision).
HASH_HEX = 8
#: Key of the ``<param>`` that states a renamed element's trafficsim id in the exported files.
PARAM_KEY = "trafficsim.id"
#: Separator of a safe form's hash; never kept in the ASCII part, so a safe form has exactly one.
_HASH_SEP = "~"


def sumo_accepts(eid: str) -> bool:
    """Whether SUMO takes ``eid`` as it is: printable Latin-1 characters only, none of
    :data:`SUMO_INVALID_ID_CHARS`."""
    return all(ord(ch) <= 0xFF and ch.isprintable() and ch not in SUMO_INVALID_ID_CHARS for ch in eid)


def safe_form(eid: str, n_hex: int = HASH_HEX) -> str:
    """``eid``'s SUMO-safe form with ``n_hex`` hex digits of its SHA-1 (see the module docstring)."""
    ascii_part = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in SUMO_INVALID_ID_CHARS and ch != _HASH_SEP else "_"
        for ch in eid
    )
    ascii_part = re.sub("_+", "_", ascii_part).strip("_")
    return f"{ascii_part}{_HASH_SEP}{hashlib.sha1(eid.encode('utf-8')).hexdigest()[:n_hex]}"


class SumoIds:
    """Node and link ids of one network, as trafficsim and as SUMO name them.

    Parameters
    ----------
    nodes : iterable of str
        The network's node ids.
    links : iterable of str
        The ids of the links that are SUMO edges (not the pockets of variable lanes).
    """

    def __init__(self, nodes: Iterable[str], links: Iterable[str]):
        self._nodes = set(nodes)
        self._links = set(links)
        ids = self._nodes | self._links
        kept = {eid for eid in ids if sumo_accepts(eid)}
        to_sumo = {eid: eid for eid in kept}
        taken = set(kept)
        for eid in sorted(ids - kept):
            cand = next((c for n in range(HASH_HEX, 41, 4) if (c := safe_form(eid, n)) not in taken), None)
            k = 2
            while cand is None or cand in taken:
                cand = f"{safe_form(eid, 40)}-{k}"
                k += 1
            to_sumo[eid] = cand
            taken.add(cand)
        self._to_sumo = to_sumo
        self._from_sumo = {s: eid for eid, s in to_sumo.items()}
        #: trafficsim id -> SUMO id of every id SUMO does not take as it is
        self.renamed = {eid: s for eid, s in sorted(to_sumo.items()) if s != eid}
        self._pattern: re.Pattern | None = None

    # ---- trafficsim -> SUMO
    def node(self, nid: str) -> str:
        """SUMO id of node ``nid`` (also its traffic light's id)."""
        if nid not in self._nodes:
            raise KeyError(f"node {nid!r} is not in the exported network")
        return self._to_sumo[nid]

    def edge(self, lid: str) -> str:
        """SUMO edge id of link ``lid`` (its lanes are ``<edge>_<index>``, 0 the kerbside one)."""
        if lid not in self._links:
            raise KeyError(f"link {lid!r} is not a SUMO edge of the exported network")
        return self._to_sumo[lid]

    def is_edge(self, lid: str) -> bool:
        """Whether link ``lid`` is a SUMO edge (pockets of variable lanes are not)."""
        return lid in self._links

    # ---- SUMO -> trafficsim
    def element(self, sumo_id: str) -> str:
        """trafficsim id of a SUMO node or edge id (ids SUMO made up itself come back as they are)."""
        return self._from_sumo.get(sumo_id, sumo_id)

    def lane(self, sumo_lane: str) -> str:
        """A SUMO lane id written with trafficsim ids: ``<link>_<index>``, or for a junction-internal
        lane ``:<node>_<link index>_<index>``."""
        if not self.renamed:
            return sumo_lane
        if sumo_lane.startswith(":"):
            junction, link_index, index = sumo_lane[1:].rsplit("_", 2)
            return f":{self.element(junction)}_{link_index}_{index}"
        edge, index = sumo_lane.rsplit("_", 1)
        return f"{self.element(edge)}_{index}"

    def restore(self, text: str) -> str:
        """``text`` (a SUMO message) with every renamed node and edge written with its trafficsim id.

        Every SUMO id is a candidate, longest first, so that an id kept as it is that happens to
        contain a safe form stays as it is."""
        if not self.renamed:
            return text
        if self._pattern is None:
            self._pattern = re.compile("|".join(re.escape(s) for s in sorted(self._from_sumo, key=len, reverse=True)))
        return self._pattern.sub(lambda m: self._from_sumo[m.group(0)], text)

    # ---- files
    def param(self, eid: str, indent: str = "    ") -> str:
        """The ``<param>`` element stating ``eid``'s trafficsim id in an exported file, or ``""``
        when SUMO has ``eid`` as it is."""
        if eid not in self.renamed:
            return ""
        return f'{indent}<param key="{PARAM_KEY}" value={quoteattr(eid)}/>'

    def __repr__(self) -> str:
        return f"SumoIds({len(self._to_sumo)} ids, renamed {self.renamed!r})"
