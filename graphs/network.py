"""RoadNetwork: a directed road graph as frozen CSR arrays, ready for the numba kernels.

Nodes are numbered 0..n-1; the out-edges of node ``u`` are ``indptr[u]:indptr[u+1]`` in the edge
arrays. Per edge we keep the travel time in milliseconds and the length in centimetres (integers,
fine enough that summing many short edges does not drift), plus the polyline of the road for maps
and snapping, and an index into the street-name table.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Bumped whenever the cached file layout or the way a network is built changes.
FORMAT_VERSION = 3

_ARRAYS = (
    "indptr",
    "heads",
    "time_ms",
    "length_cm",
    "node_lat",
    "node_lon",
    "node_osmid",
    "geom_indptr",
    "geom_lat",
    "geom_lon",
    "edge_name",
)


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """A frozen directed road network in CSR form with node coordinates and edge geometry."""

    indptr: NDArray[np.int32]
    heads: NDArray[np.int32]
    time_ms: NDArray[np.int32]
    length_cm: NDArray[np.int32]
    node_lat: NDArray[np.float64]
    node_lon: NDArray[np.float64]
    node_osmid: NDArray[np.int64]
    geom_indptr: NDArray[np.int32]
    geom_lat: NDArray[np.float64]
    geom_lon: NDArray[np.float64]
    edge_name: NDArray[np.int32]
    names: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = len(self.node_lat), len(self.heads)
        checks = {
            "indptr": len(self.indptr) == n + 1 and self.indptr[0] == 0 and self.indptr[-1] == m,
            "heads": m == 0 or (int(self.heads.min()) >= 0 and int(self.heads.max()) < n),
            "time_ms": len(self.time_ms) == m and (m == 0 or int(self.time_ms.min()) > 0),
            "length_cm": len(self.length_cm) == m and (m == 0 or int(self.length_cm.min()) >= 0),
            "node_lon": len(self.node_lon) == n and len(self.node_osmid) == n,
            "geom_indptr": len(self.geom_indptr) == m + 1,
            "edge_name": len(self.edge_name) == m,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"inconsistent RoadNetwork arrays: {', '.join(bad)}")
        for name in _ARRAYS:
            getattr(self, name).setflags(write=False)

    @property
    def n_nodes(self) -> int:
        return len(self.node_lat)

    @property
    def n_edges(self) -> int:
        return len(self.heads)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) of all nodes."""
        return (
            float(self.node_lon.min()),
            float(self.node_lat.min()),
            float(self.node_lon.max()),
            float(self.node_lat.max()),
        )

    @cached_property
    def node_key(self) -> str:
        """Names this network's numbering of places: stored plans, bookings and bus positions
        name nodes by their number, which means the same place only on a network with the
        same nodes in the same order (the same OSM data and build; speeds may differ)."""
        digest = hashlib.sha256(self.node_osmid.tobytes())
        digest.update(self.node_lat.tobytes())
        digest.update(self.node_lon.tobytes())
        return f"{self.n_nodes}-{digest.hexdigest()[:16]}"

    @cached_property
    def tails(self) -> NDArray[np.int32]:
        """The tail node of every edge (the inverse of ``indptr``)."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int32), np.diff(self.indptr))

    @cached_property
    def weight(self) -> NDArray[np.int64]:
        """Lexicographic edge weight for the kernels: ``time_ms << 32 | length_cm``.

        A shortest path by this weight is the fastest path, and among equally fast paths the
        shortest one; its sum splits back into total time and total length as long as the path is
        shorter than 2^32 cm (42,950 km), which any road trip is.
        """
        w = (self.time_ms.astype(np.int64) << 32) | self.length_cm.astype(np.int64)
        w.setflags(write=False)
        return w

    def edge_index(self, u: int, v: int) -> int:
        """Index of the edge u -> v; raises KeyError if there is none."""
        lo, hi = int(self.indptr[u]), int(self.indptr[u + 1])
        hits = np.nonzero(self.heads[lo:hi] == v)[0]
        if len(hits) == 0:
            raise KeyError(f"no edge {u} -> {v}")
        return lo + int(hits[0])

    def edge_polyline(self, e: int) -> list[tuple[float, float]]:
        """The road geometry of edge ``e`` as (lat, lon) points from its tail to its head."""
        lo, hi = int(self.geom_indptr[e]), int(self.geom_indptr[e + 1])
        return list(zip(self.geom_lat[lo:hi].tolist(), self.geom_lon[lo:hi].tolist(), strict=True))

    def street_name(self, e: int) -> str | None:
        i = int(self.edge_name[e])
        return self.names[i] if i >= 0 else None

    def save(self, path: Path) -> None:
        """Write the network to ``path`` (.npz, uncompressed so that it loads fast), atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        np.savez(
            tmp,
            names=np.array(self.names, dtype=str),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
            **arrays,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RoadNetwork:
        """Read a network written by :meth:`save` (no pickles are loaded)."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"{path}: cache format {meta.get('format_version')} is stale")
            arrays = {name: np.array(data[name]) for name in _ARRAYS}
            names = tuple(str(s) for s in data["names"])
        return cls(names=names, meta=meta, **arrays)
