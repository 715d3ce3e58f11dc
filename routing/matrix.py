"""Travel times and distances between road nodes: matrices, O(1) lookups, and paths.

For a town-sized network (up to ``apsp_max_nodes`` nodes) the dispatcher's lookups come from an
all-pairs travel-time table built once on first use: for Soest's 6,384 nodes that is 6,384^2 int32
= 163 MB, built in about 2 s on two cores. Bigger regions fall back to one-to-all rows computed on
demand and kept in an LRU cache of ``row_cache_size`` rows (one row = 8 bytes per node).
Distances are not tabled: with the table, :meth:`TravelTimes.distance_m` searches the one pair
(stopped at the target) and keeps the answers in a small LRU of ``PAIR_CACHE_SIZE`` pairs, so
memory does not grow with every new place riders use (a cached row per source would reach
``row_cache_size`` x 8 bytes per node: 200 MB for Soest); without it they come with the rows;
and :meth:`TravelTimes.matrix` gives them in bulk.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from graphs.network import RoadNetwork
from nachtbus.errors import InvalidInput, Unreachable
from nachtbus.units import cm_to_m, ms_to_s
from routing import _kernels

INF = _kernels.INF
#: pairs whose distance is kept when the all-pairs table is used (about 150 bytes each)
PAIR_CACHE_SIZE = 65_536

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A thread-safe LRU map of at most ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class Route:
    """A fastest path: node indices, its road polyline as (lat, lon), time and distance."""

    nodes: tuple[int, ...]
    polyline: tuple[tuple[float, float], ...]
    travel_time_s: int
    distance_m: int


class TravelTimes:
    """Shortest travel times (s) and distances (m) on one RoadNetwork."""

    def __init__(
        self, network: RoadNetwork, *, apsp_max_nodes: int = 12_000, row_cache_size: int = 4096
    ) -> None:
        self.network = network
        self.apsp_max_nodes = apsp_max_nodes
        self.row_cache_size = row_cache_size
        self._table: NDArray[np.int32] | None = None
        self._rows: _Lru[int, tuple[NDArray[np.int32], NDArray[np.int32]]] = _Lru(row_cache_size)
        self._pairs: _Lru[tuple[int, int], int] = _Lru(PAIR_CACHE_SIZE)  # distance, m (table)
        self._lock = threading.Lock()

    @property
    def uses_table(self) -> bool:
        """True when lookups come from the all-pairs table (small enough network)."""
        return self.network.n_nodes <= self.apsp_max_nodes

    def _nodes(self, nodes: ArrayLike, name: str) -> NDArray[np.int32]:
        arr = np.atleast_1d(np.asarray(nodes))
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise InvalidInput(f"node indices must be integers, got {arr.dtype}", field=name)
        arr = arr.astype(np.int32, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.network.n_nodes):
            raise InvalidInput(f"node index out of range 0..{self.network.n_nodes - 1}", field=name)
        return arr

    def matrix(
        self, sources: ArrayLike, targets: ArrayLike
    ) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Time (s) and distance (m) matrices, shape (len(sources), len(targets)); -1 unreachable.

        Runs one Dijkstra per source in parallel, each stopping when all targets are settled.
        """
        src = self._nodes(sources, "sources")
        tgt = self._nodes(targets, "targets")
        is_target = np.zeros(self.network.n_nodes, dtype=np.bool_)
        is_target[tgt] = True
        n_unique = int(is_target.sum())
        net = self.network
        return _kernels.many_to_many(
            net.indptr, net.heads, net.weight, src, tgt, is_target, n_unique
        )

    def one_to_many(
        self, source: int, targets: ArrayLike
    ) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Time (s) and distance (m) from one source to each target."""
        t, d = self.matrix([source], targets)
        return t[0], d[0]

    def all_pairs(self) -> NDArray[np.int32]:
        """The all-pairs travel-time table (built on first call, then kept)."""
        with self._lock:
            if self._table is None:
                if not self.uses_table:
                    raise InvalidInput(
                        f"network has {self.network.n_nodes} nodes, more than apsp_max_nodes="
                        f"{self.apsp_max_nodes}: use rows instead",
                        field="apsp_max_nodes",
                    )
                net = self.network
                table = _kernels.all_pairs_time(net.indptr, net.heads, net.weight)
                table.setflags(write=False)
                self._table = table
            return self._table

    def warm_up(self) -> None:
        """Build the all-pairs table now (if used), so that the first lookup is not slow."""
        if self.uses_table:
            self.all_pairs()

    def row(self, source: int) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Time (s) and distance (m) from ``source`` to every node, LRU-cached."""
        source = int(self._nodes(source, "source")[0])
        hit = self._rows.get(source)
        if hit is not None:
            return hit
        net = self.network
        row = _kernels.one_to_all(net.indptr, net.heads, net.weight, source)
        for a in row:
            a.setflags(write=False)
        self._rows.put(source, row)
        return row

    def time_s(self, u: int, v: int) -> int:
        """Travel time u -> v in seconds: O(1) from the table, or from a cached row."""
        t = int(self.all_pairs()[u, v]) if self.uses_table else int(self.row(u)[0][v])
        if t < 0:
            raise Unreachable(f"no road path from node {u} to node {v}")
        return t

    def times_s(self, nodes: Sequence[int]) -> NDArray[np.int32]:
        """Square travel-time matrix between ``nodes`` (table slice or cached rows)."""
        idx = self._nodes(nodes, "nodes")
        return self._between(idx, idx)

    def times_between(self, sources: Sequence[int], targets: Sequence[int]) -> NDArray[np.int32]:
        """Travel-time matrix from ``sources`` to ``targets`` (table slice or cached rows)."""
        return self._between(self._nodes(sources, "sources"), self._nodes(targets, "targets"))

    def _between(self, src: NDArray[np.int32], tgt: NDArray[np.int32]) -> NDArray[np.int32]:
        if self.uses_table:
            return self.all_pairs()[np.ix_(src, tgt)]
        if not len(src):
            return np.zeros((0, len(tgt)), np.int32)
        return np.stack([self.row(int(u))[0][tgt] for u in src])

    def distance_m(self, u: int, v: int) -> int:
        """Length in metres of the fastest path u -> v: with the table, from a search for
        this pair (LRU-cached pairs); without it, from a cached row."""
        if not self.uses_table:
            d = int(self.row(u)[1][v])
            if d < 0:
                raise Unreachable(f"no road path from node {u} to node {v}")
            return d
        u = int(self._nodes(u, "source")[0])
        v = int(self._nodes(v, "target")[0])
        hit = self._pairs.get((u, v))
        if hit is not None:
            return hit
        net = self.network
        key, _ = _kernels.point_to_point(net.indptr, net.heads, net.weight, u, v)
        if key == INF:
            raise Unreachable(f"no road path from node {u} to node {v}")
        d = cm_to_m(int(key) & 0xFFFFFFFF)
        self._pairs.put((u, v), d)
        return d

    def route(self, u: int, v: int) -> Route:
        """The fastest path u -> v with its road polyline."""
        u = int(self._nodes(u, "source")[0])
        v = int(self._nodes(v, "target")[0])
        net = self.network
        key, pred = _kernels.point_to_point(net.indptr, net.heads, net.weight, u, v)
        if key == INF:
            raise Unreachable(f"no road path from node {u} to node {v}")
        nodes = [v]
        while nodes[-1] != u:
            nodes.append(int(pred[nodes[-1]]))
        nodes.reverse()
        polyline: list[tuple[float, float]] = [(float(net.node_lat[u]), float(net.node_lon[u]))]
        for a, b in itertools.pairwise(nodes):
            polyline.extend(net.edge_polyline(net.edge_index(a, b))[1:])
        time_ms, length_cm = int(key) >> 32, int(key) & 0xFFFFFFFF
        return Route(
            nodes=tuple(nodes),
            polyline=tuple(polyline),
            travel_time_s=ms_to_s(time_ms),
            distance_m=cm_to_m(length_cm),
        )
