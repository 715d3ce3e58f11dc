"""Ruin and recreate: large neighbourhood search over the insertion kernel.

Each step removes a handful of related requests (a seed request and those nearest to it in
place and time, Shaw 1998) from the routes and inserts them again one by one, in random order,
each at its cheapest feasible position over all buses (:func:`routing.insertion._best_insertion`,
which checks every window, ride-time limit, load and shift). The new solution is kept by
simulated annealing on the total arc cost, the temperature falling over the time limit. Steps
run in numba in batches; between batches Python checks the clock.

Riders on board and fixed stops are never removed; a step that cannot put every removed
request back is undone. Requests the start left out are tried again in every step.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from routing.insertion import Inserter, _best_insertion, solution_from_routes
from routing.problem import RoutingProblem, Solution, Stop, StopKind

NONE = -1


@njit(cache=True, nogil=True)
def _route_cost(R, K, n, C, veh, req):
    pickup, dropoff = req[0], req[1]
    loc = veh[0]
    total = 0
    for k in range(n):
        nxt = pickup[R[k]] if K[k] == 0 else dropoff[R[k]]
        total += C[loc, nxt]
        loc = nxt
    if veh[4] >= 0 and n > 0:
        total += C[loc, veh[4]]
    return total


@njit(cache=True, nogil=True)
def _remove(R, K, lens, where, v, r):
    m = 0
    for k in range(lens[v]):
        if R[v, k] != r:
            R[v, m] = R[v, k]
            K[v, m] = K[v, k]
            m += 1
    lens[v] = m
    where[r] = NONE


@njit(cache=True, nogil=True)
def _steps(
    R, K, lens, where, nfix, removable, related, T, C, req, vehs, loads, costs,
    bR, bK, blens, bcosts, steps, k_min, k_max, temp, seed, miss,
):  # fmt: skip
    """``steps`` ruin-and-recreate steps from the current solution (R, K, lens, costs);
    the best one seen is kept in (bR, bK, blens, bcosts). Returns the steps accepted."""
    np.random.seed(seed)
    nv = R.shape[0]
    n_req = where.shape[0]
    cR = R.copy()
    cK = K.copy()
    clens = lens.copy()
    cwhere = where.copy()
    ccosts = costs.copy()
    removed = np.empty(n_req, dtype=np.int64)
    bwhere = np.full(n_req, NONE, dtype=np.int64)  # where each request is in the best
    for v in range(nv):
        for k in range(blens[v]):
            bwhere[bR[v, k]] = v
    accepted = 0
    cands = np.flatnonzero(removable)
    if cands.size == 0:
        return 0
    for _ in range(steps):
        # ruin: a seed request and its nearest neighbours (plus any left out so far)
        k = np.random.randint(k_min, k_max + 1)
        seed_r = cands[np.random.randint(cands.size)]
        nrem = 0
        for q in related[seed_r]:
            if nrem >= k:
                break
            if removable[q] and cwhere[q] != NONE:
                removed[nrem] = q
                nrem += 1
                _remove(cR, cK, clens, cwhere, cwhere[q], q)
        for q in range(n_req):
            if removable[q] and cwhere[q] == NONE:
                already = False
                for t in range(nrem):
                    if removed[t] == q:
                        already = True
                if not already:
                    removed[nrem] = q
                    nrem += 1
        # recreate: random order, cheapest feasible position over all buses
        np.random.shuffle(removed[:nrem])
        if np.random.random() < 0.5:  # or earliest window first
            order = np.argsort(req[2][removed[:nrem]] + np.random.randint(0, 600, nrem))
            removed[:nrem] = removed[:nrem][order]
        unplaced = 0
        for t in range(nrem):
            r = removed[t]
            best = -1
            bv = -1
            bi = -1
            bj = -1
            for v in range(nv):
                n = clens[v]
                cost, i, j, _ = _best_insertion(
                    cR[v, :n], cK[v, :n], n, nfix[v], r, T, C, req, vehs[v], loads[v], 0
                )
                if cost >= 0 and (best < 0 or cost < best):
                    best, bv, bi, bj = cost, v, i, j
            if bv < 0:
                unplaced += 1
                continue
            n = clens[bv]
            # new sequence: old[0:i], P, old[i:j-1], D, old[j-1:]
            for q in range(n - 1, bj - 2, -1):
                cR[bv, q + 2] = cR[bv, q]
                cK[bv, q + 2] = cK[bv, q]
            for q in range(bj - 2, bi - 1, -1):
                cR[bv, q + 1] = cR[bv, q]
                cK[bv, q + 1] = cK[bv, q]
            cR[bv, bi] = r
            cK[bv, bi] = 0
            cR[bv, bj] = r
            cK[bv, bj] = 1
            clens[bv] = n + 2
            cwhere[r] = bv
        for v in range(nv):
            ccosts[v] = _route_cost(cR[v], cK[v], clens[v], C, vehs[v], req)
        # a request left out costs ``miss`` while searching; the best is always complete
        new_total = ccosts.sum() + unplaced * miss
        cur_total = costs.sum() + _unplaced(where, removable) * miss
        if new_total < cur_total or (
            temp > 0 and np.random.random() < math.exp(-(new_total - cur_total) / temp)
        ):
            accepted += 1
            R[:] = cR
            K[:] = cK
            lens[:] = clens
            where[:] = cwhere
            costs[:] = ccosts
            b_miss = _unplaced(bwhere, removable)
            if unplaced < b_miss or (
                unplaced == b_miss and new_total < bcosts.sum() + b_miss * miss
            ):
                bR[:] = cR
                bK[:] = cK
                blens[:] = clens
                bcosts[:] = ccosts
                bwhere[:] = cwhere
        else:
            cR[:] = R
            cK[:] = K
            clens[:] = lens
            cwhere[:] = where
            ccosts[:] = costs
    return accepted


@njit(cache=True, nogil=True)
def _unplaced(where, removable):
    c = 0
    for q in range(where.shape[0]):
        if removable[q] and where[q] == NONE:
            c += 1
    return c


def _related(problem: RoutingProblem) -> np.ndarray:
    """For each request, all requests by relatedness: pickup and drop-off places and window
    starts close together (Shaw), itself first."""
    rs = problem.requests
    t = problem.time_s
    p = np.array([r.pickup for r in rs])
    d = np.array([r.dropoff for r in rs])
    e = np.array([r.pickup_window[0] for r in rs], dtype=np.float64)
    score = (t[np.ix_(p, p)] + t[np.ix_(d, d)] + np.abs(e[:, None] - e[None, :])).astype(np.float64)
    np.fill_diagonal(score, -1)
    return np.argsort(score, axis=1, kind="stable").astype(np.int64)


def improve(
    problem: RoutingProblem,
    start: Solution,
    time_limit_s: float,
    *,
    seed: int = 0,
    remove: tuple[int, int] = (2, 15),
    batch: int = 50,
    miss_factor: float = 4.0,
    temp_start: float = 0.3,
) -> Solution:
    """Improve ``start`` (feasible routes, possibly leaving requests out) for about
    ``time_limit_s`` seconds: the best solution found, never worse than the start (first
    fewer requests left out, then lower cost).

    ``remove``: how many related requests a step takes out (at least, at most);
    ``miss_factor``: while searching, a request left out costs this many average arcs;
    ``temp_start``: the starting temperature, in average arcs (it falls 150-fold).
    """
    started = time.perf_counter()
    ins = Inserter(problem, wait_weight_pct=0)
    nv, n_req = len(problem.vehicles), len(problem.requests)
    width = 2 * n_req + 2
    R = np.full((nv, width), NONE, dtype=np.int64)
    K = np.zeros((nv, width), dtype=np.int64)
    lens = np.zeros(nv, dtype=np.int64)
    where = np.full(n_req, NONE, dtype=np.int64)
    nfix = np.array([len(v.fixed) for v in problem.vehicles], dtype=np.int64)
    removable = np.ones(n_req, dtype=np.bool_)
    for v, route in enumerate(start.routes):
        lens[v] = len(route)
        for k, (r, kind) in enumerate(route):
            R[v, k], K[v, k] = r, int(kind)
            where[r] = v
            if k < nfix[v]:
                removable[r] = False
    for r, q in enumerate(problem.requests):
        if q.onboard_vehicle is not None:
            removable[r] = False
    vehs = np.stack(ins._vehs) if nv else np.zeros((0, 7), np.int64)
    loads = np.stack(ins._loads) if nv else np.zeros((0, 2), np.int64)
    T, C, req = ins._T, ins._C, ins._req
    costs = np.array(
        [_route_cost(R[v], K[v], lens[v], C, vehs[v], req) for v in range(nv)], dtype=np.int64
    )
    bR, bK, blens, bcosts = R.copy(), K.copy(), lens.copy(), costs.copy()
    related = _related(problem)
    k_max = max(1, min(remove[1], int(removable.sum())))
    k_min = min(remove[0], k_max)
    arcs = max(1, int(lens.sum()))
    t_start = temp_start * float(costs.sum()) / arcs
    t_end = t_start / 150
    miss = int(miss_factor * float(costs.sum()) / arcs)
    step = 0
    steps_done = 0
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= time_limit_s:
            break
        frac = elapsed / time_limit_s
        temp = t_start * (t_end / t_start) ** frac if t_start > 0 else 0.0
        _steps(
            R, K, lens, where, nfix, removable, related, T, C, req, vehs, loads, costs,
            bR, bK, blens, bcosts, batch, k_min, k_max, temp, seed * 100_003 + step, miss,
        )  # fmt: skip
        step += 1
        steps_done += batch
    routes: list[tuple[Stop, ...]] = [
        tuple((int(bR[v, k]), StopKind(int(bK[v, k]))) for k in range(blens[v])) for v in range(nv)
    ]
    served = {r for route in routes for r, _ in route}
    unserved = tuple(r for r in range(n_req) if r not in served)
    sol = solution_from_routes(ins, tuple(routes), unserved)
    sol.info.update({"lns_steps": steps_done, "seconds": time.perf_counter() - started})
    return sol
