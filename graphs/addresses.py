"""Finding an address on our own map data (offline): the phone desk's street search.

The road network keeps each edge's street name; a street is the set of its edges, split into
stretches more than ``SPLIT_M`` apart (the same name in two villages is two results), each
found at the edge midpoint nearest to the stretch's centre. The Soest map data carries no
house numbers (``addr:housenumber`` is not in the road extract), so a number in the query is
kept and said to be unplaced: the point is the street's.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from graphs.network import RoadNetwork

SPLIT_M = 1500.0
_NUMBER = re.compile(r"^(?P<street>.*?)[\s,]+(?P<number>\d+\s?[a-zA-Z]?)$")


@dataclass(frozen=True)
class Address:
    """A street (stretch) found for a query: its name, the point, where it is."""

    street: str
    lat: float
    lon: float
    district: str | None
    house_number: str | None  # as asked; None if none was asked
    house_number_found: bool  # the map data placed the number (never, with our road data)


def _fold(text: str) -> str:
    """Lower case without accents, ß as ss, str. as straße: how a caller spells it."""
    t = unicodedata.normalize("NFKD", text.casefold().replace("ß", "ss"))
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = re.sub(r"str\.?(?=\s|$)", "strasse", t)
    return re.sub(r"\s+", " ", t).strip()


class StreetIndex:
    """Street names of a road network, searchable by (part of) the name."""

    def __init__(
        self, network: RoadNetwork, district_of: Callable[[float, float], str | None] | None = None
    ) -> None:
        lat = (network.node_lat[network.tails] + network.node_lat[network.heads]) / 2
        lon = (network.node_lon[network.tails] + network.node_lon[network.heads]) / 2
        by_name: dict[int, list[int]] = {}
        for e, i in enumerate(network.edge_name.tolist()):
            if i >= 0:
                by_name.setdefault(i, []).append(e)
        self._streets: list[tuple[str, str, float, float]] = []  # folded, name, lat, lon
        k = math.cos(math.radians(float(np.mean(network.node_lat)))) if network.n_nodes else 1.0
        for i, edges in by_name.items():
            name = network.names[i]
            pts = np.column_stack([lat[edges], lon[edges]])
            for part in _stretches(pts, k):
                centre = part.mean(axis=0)
                d = (part[:, 0] - centre[0]) ** 2 + ((part[:, 1] - centre[1]) * k) ** 2
                best = part[int(np.argmin(d))]
                self._streets.append((_fold(name), name, float(best[0]), float(best[1])))
        self._streets.sort(key=lambda s: (s[0], s[2], s[3]))
        self._district_of = district_of

    def __len__(self) -> int:
        return len(self._streets)

    def search(self, query: str, limit: int = 10) -> list[Address]:
        """Streets whose name starts with the query (then those that contain it), a house
        number at its end kept apart (unless a street's name itself ends so); at most
        ``limit``."""
        query = query.strip()
        number = None
        q = _fold(query)
        if not q:
            return []
        m = _NUMBER.match(query)
        if m and m.group("street").strip() and not any(s[0].startswith(q) for s in self._streets):
            # "Brüderstraße 5": a house number, unless a street is named so ("Am Bahnhof 2")
            q, number = _fold(m.group("street")), m.group("number").replace(" ", "")
        first = [s for s in self._streets if s[0].startswith(q)]
        then = [s for s in self._streets if q in s[0] and not s[0].startswith(q)]
        out = []
        for _, name, la, lo in (first + then)[:limit]:
            district = self._district_of(la, lo) if self._district_of else None
            out.append(Address(name, la, lo, district, number, False))
        return out


def _stretches(pts: np.ndarray, k: float) -> list[np.ndarray]:
    """Split a street's edge midpoints into groups more than SPLIT_M apart (single link)."""
    deg = SPLIT_M / 111_320
    left = list(range(len(pts)))
    groups = []
    while left:
        group = [left.pop(0)]
        grew = True
        while grew:
            grew = False
            for j in list(left):
                dy = pts[group, 0] - pts[j, 0]
                dx = (pts[group, 1] - pts[j, 1]) * k
                if np.min(dy * dy + dx * dx) <= deg * deg:
                    group.append(j)
                    left.remove(j)
                    grew = True
        groups.append(pts[group])
    return groups
