"""numba shortest-path kernels over CSR arrays: arrays in, arrays out.

Every kernel runs Dijkstra with an indexed binary heap on the lexicographic int64 edge weight of
:attr:`graphs.network.RoadNetwork.weight` (``time_ms << 32 | length_cm``), so one search yields the
fastest path's time and, among equally fast paths, the shortest length. Outputs convert to whole
seconds and metres with the project's rounding rule (half up, :func:`nachtbus.units.round_half_up`).

Unreachable targets get -1. Many-to-many and all-pairs searches run in parallel over sources
(``numba.prange``); the thread count is numba's (``numba.set_num_threads``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.iinfo(np.int64).max
_LOW32 = np.int64(0xFFFFFFFF)
_SETTLED = -2
_UNSEEN = -1


@njit(cache=True, nogil=True)
def _sift_up(heap, hkey, pos, i, node, k):
    """Move ``node`` with key ``k`` up from slot ``i``; keys live in the heap for locality."""
    while i > 0:
        parent = (i - 1) >> 1
        if hkey[parent] <= k:
            break
        heap[i] = heap[parent]
        hkey[i] = hkey[parent]
        pos[heap[i]] = i
        i = parent
    heap[i] = node
    hkey[i] = k
    pos[node] = i


@njit(cache=True, nogil=True)
def _sift_down(heap, hkey, pos, size, node, k):
    """Place ``node`` with key ``k`` at the root and move it down."""
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and hkey[c + 1] < hkey[c]:
            c += 1
        if hkey[c] >= k:
            break
        heap[i] = heap[c]
        hkey[i] = hkey[c]
        pos[heap[i]] = i
        i = c
    heap[i] = node
    hkey[i] = k
    pos[node] = i


@njit(cache=True, nogil=True)
def _dijkstra(indptr, heads, weight, source, is_target, n_targets, key, pred):
    """Fill ``key`` (and ``pred`` if it has length n) from ``source``.

    Stops once ``n_targets`` distinct nodes flagged in ``is_target`` are settled (0: search all).
    ``key`` must come in filled with INF.
    """
    n = indptr.shape[0] - 1
    record = pred.shape[0] == n
    pos = np.full(n, _UNSEEN, dtype=np.int32)
    heap = np.empty(n, dtype=np.int32)
    hkey = np.empty(n, dtype=np.int64)
    key[source] = 0
    heap[0] = source
    hkey[0] = 0
    pos[source] = 0
    size = 1
    settled_targets = 0
    while size > 0:
        u = heap[0]
        ku = hkey[0]
        size -= 1
        pos[u] = _SETTLED
        if size > 0:
            _sift_down(heap, hkey, pos, size, heap[size], hkey[size])
        if n_targets > 0 and is_target[u]:
            settled_targets += 1
            if settled_targets == n_targets:
                break
        for e in range(indptr[u], indptr[u + 1]):
            v = heads[e]
            pv = pos[v]
            if pv == _SETTLED:
                continue
            nk = ku + weight[e]
            if nk < key[v]:
                key[v] = nk
                if record:
                    pred[v] = u
                if pv == _UNSEEN:
                    pv = size
                    size += 1
                _sift_up(heap, hkey, pos, pv, v, nk)


@njit(cache=True, nogil=True)
def _split(k):
    """A key to (seconds, metres), rounded half up; (-1, -1) for unreachable."""
    if k == INF:
        return -1, -1
    return ((k >> 32) + 500) // 1000, ((k & _LOW32) + 50) // 100


@njit(cache=True, parallel=True)
def many_to_many(indptr, heads, weight, sources, targets, is_target, n_unique_targets):
    """Travel time (s) and distance (m) matrices from every source to every target."""
    n = indptr.shape[0] - 1
    n_src, n_tgt = sources.shape[0], targets.shape[0]
    out_t = np.empty((n_src, n_tgt), dtype=np.int32)
    out_d = np.empty((n_src, n_tgt), dtype=np.int32)
    no_pred = np.empty(0, dtype=np.int32)
    for i in prange(n_src):
        key = np.full(n, INF, dtype=np.int64)
        _dijkstra(indptr, heads, weight, sources[i], is_target, n_unique_targets, key, no_pred)
        for j in range(n_tgt):
            t, d = _split(key[targets[j]])
            out_t[i, j] = t
            out_d[i, j] = d
    return out_t, out_d


@njit(cache=True, parallel=True)
def all_pairs_time(indptr, heads, weight):
    """The full n x n travel-time table in seconds (int32)."""
    n = indptr.shape[0] - 1
    out = np.empty((n, n), dtype=np.int32)
    no_target = np.zeros(0, dtype=np.bool_)
    no_pred = np.empty(0, dtype=np.int32)
    for s in prange(n):
        key = np.full(n, INF, dtype=np.int64)
        _dijkstra(indptr, heads, weight, s, no_target, 0, key, no_pred)
        for j in range(n):
            k = key[j]
            out[s, j] = -1 if k == INF else ((k >> 32) + 500) // 1000
    return out


@njit(cache=True, nogil=True)
def one_to_all(indptr, heads, weight, source):
    """Time (s) and distance (m) rows from one source to every node."""
    n = indptr.shape[0] - 1
    key = np.full(n, INF, dtype=np.int64)
    _dijkstra(
        indptr,
        heads,
        weight,
        source,
        np.zeros(0, dtype=np.bool_),
        0,
        key,
        np.empty(0, dtype=np.int32),
    )
    out_t = np.empty(n, dtype=np.int32)
    out_d = np.empty(n, dtype=np.int32)
    for j in range(n):
        t, d = _split(key[j])
        out_t[j] = t
        out_d[j] = d
    return out_t, out_d


@njit(cache=True, nogil=True)
def point_to_point(indptr, heads, weight, source, target):
    """The key (int64, INF if unreachable) and predecessor array of a search stopped at target."""
    n = indptr.shape[0] - 1
    key = np.full(n, INF, dtype=np.int64)
    pred = np.full(n, -1, dtype=np.int32)
    is_target = np.zeros(n, dtype=np.bool_)
    is_target[target] = True
    _dijkstra(indptr, heads, weight, source, is_target, 1, key, pred)
    return key[target], pred
