"""Ruin and recreate: large neighbourhood search over feasible routes.

Each step takes some requests out of the routes (ruin) and puts them back one by one (recreate),
and the new solution is kept by simulated annealing on the total cost, the temperature falling
over the time limit. Steps run in numba in batches; between batches Python checks the clock.

Ruin, one of (chosen at random each step):
- related removal (Shaw 1998): a seed request and those nearest to it in place and time;
- string removal (after Christiaens & Vanden Berghe's SISR, 2020): in a few routes near a seed
  request, a run of consecutive stops, and every request with a stop in it;
- random removal.

Recreate: the removed requests and any left out so far, in a random, earliest-window-first or
farthest-first order, each at its cheapest feasible position over all buses, skipping a candidate
now and then ("blinks", SISR) for diversity. Candidates are first screened in O(1) each against
seats and wheelchair places and against every window, by the earliest schedule of the route and
the latest begin each stop can have (windows only, Savelsbergh 1992); the survivors are tried in
order of added cost with the full schedule (:func:`routing.insertion._schedule`: ride-time
limits, route duration, shift end), and the first that keeps every rule wins, so that only a
few full schedules are computed per request.

Fewer buses (``vehicle_cost`` > 0): a bus costs that much once it has a stop. A route-emptying
phase then comes first: the shortest route's requests go to the bank, that bus is closed, and
ruin and recreate tries to work them into the other buses; if it does, the next route goes, else
the search returns to the best solution with all buses open.

Riders on board and fixed stops are never removed. A request that cannot be put back stays in
the bank and costs ``miss`` per step; the solution returned always has the fewest left out.

Limits (:class:`LnsParams`): a wall-clock limit, a step limit, or both; the search stops at the
first reached, and the temperature falls with the larger share spent. With a step limit alone
every batch has the same size, so a seeded search gives the same answer on any machine (what
tests and the simulator use).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from routing.insertion import (
    V_END,
    V_END_LATEST_S,
    V_SEATS,
    V_START,
    V_WHEELCHAIRS,
    Fail,
    Inserter,
    earliest_departures,
    insert_all,
    schedule_route,
    solution_from_routes,
    splice,
)
from routing.problem import RequestSpec, RoutingProblem, Solution, Stop, StopKind, VehicleSpec

NONE = -1
#: While emptying a route, a request left out costs more than any drive: fewer left out first.
ELIM_MISS = 10**12
#: Ruin kinds (chosen at random each step with probabilities 0.4 / 0.45 / 0.15).
RUIN_RELATED, RUIN_STRING, RUIN_RANDOM = 0, 1, 2


@dataclass(frozen=True)
class LnsParams:
    """Settings of one ruin-and-recreate search, validated on construction.

    - ``time_limit_s``: wall-clock limit (None: only the step limit);
    - ``max_steps``: step limit (None: only the time limit); with it alone the search is
      reproducible on any machine;
    - ``seed``: the random seed;
    - ``remove``: how many requests a step takes out (at least, at most); None: 2 to 15, or
      5 to 30 when buses are minimised (few long routes need bigger steps to change);
    - ``batch``: steps per numba call (with a time limit the later calls aim at 0.05 s, or
      a tenth of a shorter limit);
    - ``miss_factor``: while searching, a request left out costs this many average arcs;
    - ``temp_start``: the starting temperature, in average arcs (it falls 150-fold);
    - ``blink``: chance to pass over a candidate position when recreating;
    - ``elim_share``: the share of the limits that emptying routes may take (only with a
      cost per bus).
    """

    time_limit_s: float | None = 10.0
    max_steps: int | None = None
    seed: int = 0
    remove: tuple[int, int] | None = None
    batch: int = 50
    miss_factor: float = 4.0
    temp_start: float = 0.3
    blink: float = 0.01
    elim_share: float = 0.5

    def __post_init__(self) -> None:
        if self.time_limit_s is None and self.max_steps is None:
            raise ValueError("time_limit_s or max_steps: a search needs a limit")
        if self.time_limit_s is not None and not 0 <= self.time_limit_s <= 3600:
            raise ValueError(f"time_limit_s must be in [0, 3600], got {self.time_limit_s}")
        if self.max_steps is not None and self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.remove is not None and not 1 <= self.remove[0] <= self.remove[1]:
            raise ValueError(f"remove must be (min, max) with 1 <= min <= max, got {self.remove}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if not 0 <= self.blink < 1:
            raise ValueError(f"blink must be in [0, 1), got {self.blink}")
        if not 0 <= self.elim_share <= 1:
            raise ValueError(f"elim_share must be in [0, 1], got {self.elim_share}")
        if self.miss_factor <= 0 or self.temp_start < 0:
            raise ValueError("miss_factor must be > 0 and temp_start >= 0")

    @property
    def reproducible(self) -> bool:
        """Whether the answer depends only on the problem, the start and the seed."""
        return self.time_limit_s is None


class RouteTables(NamedTuple):
    """A solution as the search keeps it, with each route's screening tables.

    Per bus v: ``routes[v, :lens[v]]`` the requests of its stops and ``kinds`` pickup (0) or
    drop-off (1); per position k of the route (0 = the start): ``loc`` its location, ``dep``
    the earliest departure, ``seats_after`` and ``wheel_after`` the places taken after it,
    ``latest`` the latest begin of service that keeps every later window and the shift end;
    ``costs[v]`` the route's cost. ``where[r]`` is the bus of request r (NONE: left out).
    """

    routes: NDArray[np.int64]
    kinds: NDArray[np.int64]
    lens: NDArray[np.int64]
    where: NDArray[np.int64]
    loc: NDArray[np.int64]
    dep: NDArray[np.int64]
    seats_after: NDArray[np.int64]
    wheel_after: NDArray[np.int64]
    latest: NDArray[np.int64]
    costs: NDArray[np.int64]


class BestRoutes(NamedTuple):
    """The best solution found: routes, kinds, lens, where and costs as in RouteTables."""

    routes: NDArray[np.int64]
    kinds: NDArray[np.int64]
    lens: NDArray[np.int64]
    where: NDArray[np.int64]
    costs: NDArray[np.int64]


class SearchData(NamedTuple):
    """What the search reads about the problem (never changed while searching, except which
    buses may take requests, ``allowed``)."""

    time: NDArray[np.int64]
    cost: NDArray[np.int64]
    req: object  # routing.insertion.RequestArrays
    vehicles: NDArray[np.int64]  # rows of columns V_*
    loads: NDArray[np.int64]  # on-board load per bus, columns L_*
    nfix: NDArray[np.int64]  # fixed stops at the head of each route
    removable: NDArray[np.bool_]  # requests the search may move
    related: NDArray[np.int64]  # per request, all requests by relatedness, itself first
    allowed: NDArray[np.bool_]  # buses that may take requests
    far: NDArray[np.int64]  # per request, depot -> pickup + drop-off -> depot


class Scratch(NamedTuple):
    """Work arrays of one recreate: candidate rows (added cost, bus, a, b) and a route."""

    cand: NDArray[np.int64]
    work_r: NDArray[np.int64]
    work_k: NDArray[np.int64]
    begin: NDArray[np.int64]


@njit(cache=True, nogil=True)
def _arc(M, a, b):
    """M[a, b]; b < 0 is an open end, which costs nothing to reach."""
    return 0 if b < 0 else M[a, b]


@njit(cache=True, nogil=True)
def _stop(r, kind, req):
    """(location, window start, window end, service, seats, wheelchairs) of a stop."""
    if kind == StopKind.PICKUP:
        return (req.pickup[r], req.pickup_open[r], req.pickup_close[r], req.pickup_service[r],
                req.seats[r], req.wheelchairs[r])  # fmt: skip
    return (req.dropoff[r], req.dropoff_open[r], req.dropoff_close[r], req.dropoff_service[r],
            -req.seats[r], -req.wheelchairs[r])  # fmt: skip


@njit(cache=True, nogil=True)
def _route_cost(Rv, Kv, n, C, veh, req, vehicle_cost):
    """Arc cost of a route, plus ``vehicle_cost`` if it has a stop."""
    loc = veh[V_START]
    total = 0
    for k in range(n):
        nxt = _stop(Rv[k], Kv[k], req)[0]
        total += C[loc, nxt]
        loc = nxt
    if n > 0:
        total += _arc(C, loc, veh[V_END]) + vehicle_cost
    return total


@njit(cache=True, nogil=True)
def _refresh(v, S, P, vcost):
    """Rebuild route v's screening tables and its cost: the earliest schedule and loads
    (:func:`routing.insertion.earliest_departures`), and latest[k], the latest begin of service
    at stop k that keeps every later window and the shift end (windows only; latest[n + 1] is
    the end)."""
    Rv, Kv, n, veh = S.routes[v], S.kinds[v], S.lens[v], P.vehicles[v]
    LT = S.latest[v]
    earliest_departures(Rv, Kv, n, P.time, P.req, veh, P.loads[v], S.loc[v], S.dep[v],
                        S.seats_after[v], S.wheel_after[v])  # fmt: skip
    LT[n + 1] = veh[V_END_LATEST_S]
    nxt = veh[V_END]
    for k in range(n, 0, -1):
        loc, _, lw, s, _, _ = _stop(Rv[k - 1], Kv[k - 1], P.req)
        lt = LT[k + 1] - _arc(P.time, loc, nxt) - s
        LT[k] = lw if lw < lt else lt
        nxt = loc
    S.costs[v] = _route_cost(Rv, Kv, n, P.cost, veh, P.req, vcost)


@njit(cache=True, nogil=True)
def _candidates(r, v, S, P, vcost, out, cnt):
    """Append to ``out`` (rows: added cost, vehicle, a, b) every insertion of request r into
    route v, pickup after position a and dropoff after position b >= a, that passes the O(1)
    screens: seats and wheelchair places, and every window at the earliest schedule."""
    req, T, C, veh = P.req, P.time, P.cost, P.vehicles[v]
    n, Rv, Kv = S.lens[v], S.routes[v], S.kinds[v]
    LOC, DEP, SL, WL, LT = S.loc[v], S.dep[v], S.seats_after[v], S.wheel_after[v], S.latest[v]
    seats, wheel = req.seats[r], req.wheelchairs[r]
    pe, pl = req.pickup_open[r], req.pickup_close[r]
    de, dl = req.dropoff_open[r], req.dropoff_close[r]
    ps, ds = req.pickup_service[r], req.dropoff_service[r]
    p, d = req.pickup[r], req.dropoff[r]
    end = veh[V_END]
    # opening an empty bus also costs its drive from start to end, and the cost of a bus
    extra = vcost + _arc(C, veh[V_START], end) if n == 0 else 0
    for a in range(P.nfix[v], n + 1):
        if SL[a] + seats > veh[V_SEATS] or WL[a] + wheel > veh[V_WHEELCHAIRS]:
            continue
        bp = DEP[a] + T[LOC[a], p]
        if bp < pe:
            bp = pe
        if bp > pl:
            continue
        dep_p = bp + ps
        na = LOC[a + 1] if a < n else end
        base_a = _arc(C, LOC[a], na)
        cp = C[LOC[a], p]
        # dropoff right after the pickup
        bd = dep_p + T[p, d]
        if bd < de:
            bd = de
        if bd <= dl and bd + ds + _arc(T, d, na) <= LT[a + 1]:
            out[cnt, 0] = cp + C[p, d] + _arc(C, d, na) - base_a + extra
            out[cnt, 1] = v
            out[cnt, 2] = a
            out[cnt, 3] = a
            cnt += 1
        if a == n:
            continue
        # the rider rides past stops a+1..b; their times are pushed by the pickup
        dp_cost = cp + C[p, LOC[a + 1]] - base_a + extra
        dep = dep_p
        prev = p
        for b in range(a + 1, n + 1):
            loc_b, e_b, _, s_b, _, _ = _stop(Rv[b - 1], Kv[b - 1], req)
            beg = dep + T[prev, loc_b]
            if beg < e_b:
                beg = e_b
            if beg > LT[b]:
                break
            dep = beg + s_b
            prev = loc_b
            if SL[b] + seats > veh[V_SEATS] or WL[b] + wheel > veh[V_WHEELCHAIRS]:
                break
            bd = dep + T[loc_b, d]
            if bd < de:
                bd = de
            if bd > dl:
                continue
            nb = LOC[b + 1] if b < n else end
            if bd + ds + _arc(T, d, nb) > LT[b + 1]:
                continue
            out[cnt, 0] = dp_cost + C[loc_b, d] + _arc(C, d, nb) - _arc(C, loc_b, nb)
            out[cnt, 1] = v
            out[cnt, 2] = a
            out[cnt, 3] = b
            cnt += 1
    return cnt


@njit(cache=True, nogil=True)
def _candidate_rows(n_req, nv):
    """Room for every candidate of one request over all buses: a route of n stops has
    (n + 1)(n + 2) / 2 position pairs, and the routes hold at most 2 n_req stops."""
    return np.empty(((2 * n_req + 2 * nv + 2) ** 2 // 2, 4), dtype=np.int64)


@njit(cache=True, nogil=True)
def _scratch(n_req, nv, width):
    return Scratch(
        _candidate_rows(n_req, nv),
        np.empty(width + 2, dtype=np.int64),
        np.empty(width + 2, dtype=np.int64),
        np.empty(width + 2, dtype=np.int64),
    )


@njit(cache=True, nogil=True)
def _insert(r, S, P, vcost, blink, X):
    """Put request r at its cheapest feasible position over the allowed buses (skipping each
    screened candidate with probability ``blink``); False if none is feasible."""
    cnt = 0
    for v in range(S.routes.shape[0]):
        if P.allowed[v]:
            cnt = _candidates(r, v, S, P, vcost, X.cand, cnt)
    if cnt == 0:
        return False
    order = np.argsort(X.cand[:cnt, 0])
    for t in range(cnt):
        c = order[t]
        if blink > 0 and np.random.random() < blink:
            continue
        v, a, b = X.cand[c, 1], X.cand[c, 2], X.cand[c, 3]
        n = S.lens[v]
        splice(S.routes[v], S.kinds[v], n, r, a, b, X.work_r, X.work_k)
        code, _, _, _ = schedule_route(
            X.work_r, X.work_k, n + 2, P.time, P.cost, P.req, P.vehicles[v], P.loads[v], X.begin
        )
        if code == Fail.OK:
            S.routes[v, : n + 2] = X.work_r[: n + 2]
            S.kinds[v, : n + 2] = X.work_k[: n + 2]
            S.lens[v] = n + 2
            S.where[r] = v
            _refresh(v, S, P, vcost)
            return True
    return False


@njit(cache=True, nogil=True)
def _take_out(S, v, r, touched):
    R, K = S.routes, S.kinds
    m = 0
    for k in range(S.lens[v]):
        if R[v, k] != r:
            R[v, m] = R[v, k]
            K[v, m] = K[v, k]
            m += 1
    S.lens[v] = m
    S.where[r] = NONE
    touched[v] = True


@njit(cache=True, nogil=True)
def _ruin(kind, k, cands, S, P, touched, lmax):
    """Take out about k requests (see the module doc); returns how many were taken out."""
    nv = S.routes.shape[0]
    where, lens, nfix, removable = S.where, S.lens, P.nfix, P.removable
    seed_r = NONE
    for _ in range(20):
        q = cands[np.random.randint(cands.size)]
        if where[q] != NONE:
            seed_r = q
            break
    if seed_r == NONE:
        return 0
    taken = 0
    if kind == RUIN_RELATED:
        for q in P.related[seed_r]:
            if taken >= k:
                break
            if removable[q] and where[q] != NONE:
                _take_out(S, where[q], q, touched)
                taken += 1
    elif kind == RUIN_STRING:  # strings in routes near the seed
        done = np.zeros(nv, dtype=np.bool_)
        n_routes = 1 + np.random.randint(3)
        for q in P.related[seed_r]:
            if taken >= k or n_routes == 0:
                break
            v = where[q]
            if v == NONE or done[v] or not removable[q]:
                continue
            done[v] = True
            n_routes -= 1
            n = lens[v]
            pos = nfix[v]
            while S.routes[v, pos] != q:
                pos += 1
            length = 1 + np.random.randint(min(lmax, n - nfix[v]))
            lo = pos - np.random.randint(length)
            if lo < nfix[v]:
                lo = nfix[v]
            hi = min(lo + length, n)
            out = np.empty(hi - lo, dtype=np.int64)
            m = 0
            for t in range(lo, hi):
                out[m] = S.routes[v, t]
                m += 1
            for t in range(m):
                s = out[t]
                if removable[s] and where[s] == v:
                    _take_out(S, v, s, touched)
                    taken += 1
    else:  # random
        for _ in range(4 * k):
            if taken >= k:
                break
            q = cands[np.random.randint(cands.size)]
            if where[q] != NONE:
                _take_out(S, where[q], q, touched)
                taken += 1
    return taken


@njit(cache=True, nogil=True)
def _copy_tables(S):
    return RouteTables(
        S.routes.copy(), S.kinds.copy(), S.lens.copy(), S.where.copy(), S.loc.copy(),
        S.dep.copy(), S.seats_after.copy(), S.wheel_after.copy(), S.latest.copy(), S.costs.copy(),
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _steps(S, B, P, steps, k_min, k_max, temp, seed, miss, vcost, blink, lmax):
    """``steps`` ruin-and-recreate steps from the current solution S (RouteTables); the best
    (fewest left out, then cost) is kept in B (BestRoutes). Returns the steps accepted."""
    np.random.seed(seed)
    nv = S.routes.shape[0]
    n_req = S.where.shape[0]
    W = _copy_tables(S)
    X = _scratch(n_req, nv, S.routes.shape[1])
    bank = np.empty(n_req, dtype=np.int64)
    keys = np.empty(n_req, dtype=np.int64)
    touched = np.zeros(nv, dtype=np.bool_)
    cands = np.flatnonzero(P.removable)
    if cands.size == 0:
        return 0
    cur_total = S.costs.sum() + _unplaced(S.where, P.removable) * miss
    b_miss = _unplaced(B.where, P.removable)
    accepted = 0
    for _ in range(steps):
        touched[:] = False
        k = k_min + np.random.randint(k_max - k_min + 1)
        u = np.random.random()
        kind = RUIN_RELATED if u < 0.4 else (RUIN_STRING if u < 0.85 else RUIN_RANDOM)
        _ruin(kind, k, cands, W, P, touched, lmax)
        for v in range(nv):
            if touched[v]:
                _refresh(v, W, P, vcost)
        nb = 0
        for q in cands:
            if W.where[q] == NONE:
                bank[nb] = q
                nb += 1
        u = np.random.random()
        for t in range(nb):
            q = bank[t]
            if u < 0.4:
                keys[t] = np.random.randint(1 << 30)
            elif u < 0.7:
                keys[t] = P.req.pickup_open[q] + np.random.randint(0, 600)
            else:
                keys[t] = -P.far[q]
        order = np.argsort(keys[:nb])
        unplaced = 0
        for t in range(nb):
            q = bank[order[t]]
            if _insert(q, W, P, vcost, blink, X):
                touched[W.where[q]] = True
            else:
                unplaced += 1
        new_total = W.costs.sum() + unplaced * miss
        if new_total < cur_total or (
            temp > 0 and np.random.random() < math.exp(-(new_total - cur_total) / temp)
        ):
            accepted += 1
            _copy_solution(S, W, touched)
            cur_total = new_total
            if unplaced < b_miss or (
                unplaced == b_miss and new_total < B.costs.sum() + b_miss * miss
            ):
                B.routes[:] = S.routes
                B.kinds[:] = S.kinds
                B.lens[:] = S.lens
                B.where[:] = S.where
                B.costs[:] = S.costs
                b_miss = unplaced
        else:
            _copy_solution(W, S, touched)
    return accepted


@njit(cache=True, nogil=True)
def _copy_solution(dst, src, touched):
    """Copy solution src into dst (both RouteTables): the route tables of the touched buses
    only, the rest whole."""
    for v in range(dst.routes.shape[0]):
        if touched[v]:
            dst.routes[v] = src.routes[v]
            dst.kinds[v] = src.kinds[v]
            dst.loc[v] = src.loc[v]
            dst.dep[v] = src.dep[v]
            dst.seats_after[v] = src.seats_after[v]
            dst.wheel_after[v] = src.wheel_after[v]
            dst.latest[v] = src.latest[v]
    dst.lens[:] = src.lens
    dst.where[:] = src.where
    dst.costs[:] = src.costs


@njit(cache=True, nogil=True)
def _unplaced(where, removable):
    c = 0
    for q in range(where.shape[0]):
        if removable[q] and where[q] == NONE:
            c += 1
    return c


def _related(problem: RoutingProblem) -> NDArray[np.int64]:
    """For each request, all requests by relatedness: pickup and drop-off places and window
    starts close together (Shaw), itself first."""
    rs = problem.requests
    t = problem.time_s
    p = np.array([r.pickup for r in rs], dtype=np.int64)
    d = np.array([r.dropoff for r in rs], dtype=np.int64)
    e = np.array([r.pickup_window[0] for r in rs], dtype=np.float64)
    score = (t[np.ix_(p, p)] + t[np.ix_(d, d)] + np.abs(e[:, None] - e[None, :])).astype(np.float64)
    np.fill_diagonal(score, -1)
    return np.argsort(score, axis=1, kind="stable").astype(np.int64)


class _Limit:
    """Where a phase of the search ends: a wall-clock deadline and a step count (either may
    be infinite), measured on the run's own step counter."""

    def __init__(self, until_t: float, until_steps: float) -> None:
        self.until_t, self.until_steps = until_t, until_steps

    def reached(self, run: _Run) -> bool:
        return time.perf_counter() >= self.until_t or run.steps >= self.until_steps

    def steps_left(self, run: _Run) -> float:
        return self.until_steps - run.steps

    def half_of_rest(self, run: _Run, min_s: float, min_steps: int) -> _Limit:
        """A limit for half of what is left (at least ``min_s`` / ``min_steps``), never past
        this one."""
        now = time.perf_counter()
        t = min(self.until_t, now + max(min_s, (self.until_t - now) / 2))
        left = self.until_steps - run.steps
        steps = min(self.until_steps, run.steps + max(min_steps, left / 2))
        return _Limit(t, steps)


class _Run:
    """One search: the current solution S (RouteTables), the best B (BestRoutes), the
    problem P (SearchData), and the steps done."""

    def __init__(self, S: RouteTables, B: BestRoutes, P: SearchData, seed: int, batch: int,
                 adapt: bool) -> None:  # fmt: skip
        self.S, self.B, self.P = S, B, P
        self.seed = seed
        self.steps = 0
        self.calls = 0
        self.size = batch  # steps per call; with ``adapt``, tuned to take about batch_s
        self.adapt = adapt

    def batch(self, temp: float, miss: int, vcost: int, blink: float, k_min: int, k_max: int,
              lmax: int, batch_s: float, limit: _Limit) -> None:  # fmt: skip
        size = int(min(self.size, max(1, limit.steps_left(self))))
        t0 = time.perf_counter()
        _steps(
            self.S, self.B, self.P, size, k_min, k_max, temp,
            self.seed * 100_003 + self.calls, miss, vcost, blink, lmax,
        )  # fmt: skip
        took = time.perf_counter() - t0
        self.steps += size
        self.calls += 1
        if self.adapt and self.calls > 1:  # the first call may include compiling
            self.size = max(1, min(self.size * 4, int(self.size * batch_s / max(took, 1e-6))))

    def insert(self, r: int, vcost: int, blink: float = 0.0) -> bool:
        """Put request r at its cheapest feasible position in the current solution."""
        X = _scratch(self.S.where.size, self.S.routes.shape[0], self.S.routes.shape[1])
        return bool(_insert(r, self.S, self.P, vcost, blink, X))

    def left_out(self, where: NDArray[np.int64]) -> int:
        return int(_unplaced(where, self.P.removable))

    def refresh(self, v: int, vcost: int) -> None:
        """Rebuild route v's screening tables and cost in the current solution."""
        _refresh(v, self.S, self.P, vcost)

    def _kept(self) -> tuple[NDArray[np.int64], ...]:
        """The current solution's arrays that the best one mirrors, in BestRoutes order."""
        S = self.S
        return S.routes, S.kinds, S.lens, S.where, S.costs

    def best_to_current(self, vcost: int) -> None:
        """The current solution becomes the best one."""
        for a, b in zip(self._kept(), self.B, strict=True):
            a[:] = b
        for v in range(self.S.routes.shape[0]):
            self.refresh(v, vcost)

    def current_to_best(self) -> None:
        for a, b in zip(self.B, self._kept(), strict=True):
            a[:] = b


def _empty_routes(run: _Run, limit: _Limit, vcost: int, miss: int, temp: float, **kw: Any) -> int:
    """Close buses one at a time: the shortest route's requests go to the bank and ruin and
    recreate (leaving a request out costs ``miss``, more than any detour) works them into the other
    open buses. A route that cannot be emptied in its share of the limit is restored and the
    next shortest is tried; so is one whose emptying costs more than the bus. Returns how many
    routes were emptied; the current and the best solution end as the one with the fewest
    routes, every bus open again."""
    S, P = run.S, run.P
    nv = S.routes.shape[0]
    emptied = 0
    tried: set[int] = set()
    run.current_to_best()
    while not limit.reached(run):
        open_ = [v for v in range(nv) if S.lens[v] > 0]
        choices = [
            v
            for v in open_
            if v not in tried and P.nfix[v] == 0 and all(P.removable[S.routes[v, : S.lens[v]]])
        ]
        if len(open_) <= 1 or not choices:
            break
        v = min(choices, key=lambda u: (S.lens[u], u))
        target = run.left_out(S.where)
        saved = [a.copy() for a in run.B]
        for r in {int(q) for q in S.routes[v, : S.lens[v]]}:
            S.where[r] = NONE
        S.lens[v] = 0
        run.refresh(v, vcost)
        P.allowed[:] = False
        P.allowed[open_] = True
        P.allowed[v] = False
        run.current_to_best()
        part = limit.half_of_rest(run, 0.5, 10 * kw.get("k_max", 1))
        while not part.reached(run) and run.left_out(run.B.where) > target:
            run.batch(temp, miss, vcost, limit=part, **kw)
        P.allowed[:] = True
        # emptied, and cheaper for it (a cheap bus may not be worth a longer drive)
        if run.left_out(run.B.where) <= target and run.B.costs.sum() <= saved[4].sum():
            emptied += 1
            tried.clear()
        else:
            for a, b in zip(run.B, saved, strict=True):
                a[:] = b
            tried.add(v)
        run.best_to_current(vcost)
    return emptied


def _setup(
    problem: RoutingProblem, start: Solution, vehicle_cost: int, seed: int, batch: int,
    adapt: bool = True,
) -> tuple[Inserter, _Run]:  # fmt: skip
    """The search's arrays, its current and best solution both ``start``."""
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
    kd = ins.data
    depot = problem.vehicles[0].start if nv else 0
    far = (kd.time[depot, kd.req.pickup] + kd.time[kd.req.dropoff, depot]).astype(np.int64)
    P = SearchData(
        time=kd.time, cost=kd.cost, req=kd.req, vehicles=kd.vehicles, loads=kd.loads,
        nfix=nfix, removable=removable, related=_related(problem),
        allowed=np.ones(nv, dtype=np.bool_), far=far,
    )  # fmt: skip
    loc, dep, seats_after, wheel_after, latest = (
        np.zeros((nv, width + 2), dtype=np.int64) for _ in range(5)
    )
    S = RouteTables(
        R, K, lens, where, loc, dep, seats_after, wheel_after, latest, np.zeros(nv, dtype=np.int64)
    )
    for v in range(nv):
        _refresh(v, S, P, vehicle_cost)
    B = BestRoutes(R.copy(), K.copy(), lens.copy(), where.copy(), S.costs.copy())
    return ins, _Run(S, B, P, seed, batch, adapt)


def improve(
    problem: RoutingProblem,
    start: Solution,
    params: LnsParams | None = None,
    *,
    vehicle_cost: int = 0,
) -> Solution:
    """Improve ``start`` (feasible routes, possibly leaving requests out) within the limits of
    ``params``: the best solution found, never worse than the start (first fewer requests left
    out, then lower cost). ``vehicle_cost``: cost of a bus that has a stop (> 0: first try to
    empty whole routes)."""
    params = params or LnsParams()
    if not problem.requests:  # nothing to move (a night nobody asked): the start is the best
        return replace(start, info={**start.info, "lns_steps": 0, "routes_emptied": 0})
    started = time.perf_counter()
    ins, run = _setup(problem, start, vehicle_cost, params.seed, params.batch,
                      adapt=params.time_limit_s is not None)  # fmt: skip
    S, P = run.S, run.P
    nv = len(problem.vehicles)
    n_req = len(problem.requests)
    remove = params.remove or ((5, 30) if vehicle_cost > 0 else (2, 15))
    k_max = max(1, min(remove[1], int(P.removable.sum())))
    k_min = min(remove[0], k_max)
    arc_cost = int(
        sum(_route_cost(S.routes[v], S.kinds[v], S.lens[v], P.cost, P.vehicles[v], P.req, 0)
            for v in range(nv))
    )  # fmt: skip
    arcs = max(1, int(S.lens.sum()))
    t_start = params.temp_start * arc_cost / arcs
    t_end = t_start / 150
    miss = int(params.miss_factor * arc_cost / arcs) + vehicle_cost
    lmax = 10
    time_s = math.inf if params.time_limit_s is None else params.time_limit_s
    steps = math.inf if params.max_steps is None else params.max_steps
    limit = _Limit(started + time_s, steps)
    emptied = 0
    kw: dict[str, Any] = {
        "blink": params.blink, "k_min": k_min, "k_max": k_max, "lmax": lmax,
        "batch_s": min(0.05, time_s / 10),  # a short limit is not overrun by one call
    }  # fmt: skip
    if vehicle_cost > 0:
        share = params.elim_share
        phase = _Limit(started + share * time_s, share * steps)
        emptied = _empty_routes(run, phase, vehicle_cost, ELIM_MISS, t_start, **kw)
    while not limit.reached(run):
        frac = max((time.perf_counter() - started) / time_s, run.steps / steps)
        temp = t_start * (t_end / t_start) ** min(1.0, frac) if t_start > 0 else 0.0
        run.batch(temp, miss, vehicle_cost, limit=limit, **kw)
    B = run.B
    routes: list[tuple[Stop, ...]] = [
        tuple((int(B.routes[v, k]), StopKind(int(B.kinds[v, k]))) for k in range(B.lens[v]))
        for v in range(nv)
    ]
    served = {r for route in routes for r, _ in route}
    unserved = tuple(r for r in range(n_req) if r not in served)
    sol = solution_from_routes(ins, tuple(routes), unserved)
    sol.info.update(
        {
            "lns_steps": run.steps,
            "routes_emptied": emptied,
            "seconds": time.perf_counter() - started,
        }
    )
    return sol


def warm_up() -> None:
    """Compile (or load from numba's cache) the search's kernels on a tiny problem, for both
    objectives, so that a time limit is spent searching. The first compile on a machine takes
    about half a minute; later processes load the cache in well under a second."""
    t = np.array([[0, 5, 7], [5, 0, 4], [7, 4, 0]], dtype=np.int64)
    reqs = tuple(
        RequestSpec(pickup=1 + k % 2, dropoff=2 - k % 2, pickup_window=(0, 100), key=str(k))
        for k in range(3)
    )
    problem = RoutingProblem(t, (VehicleSpec(0, 0, 4, end=0, end_latest_s=1000),) * 2, reqs)
    start = insert_all(problem)
    for vehicle_cost in (0, 1000):
        _, run = _setup(problem, start, vehicle_cost, 0, 2)
        run.batch(1.0, 100, vehicle_cost, 0.01, 1, 2, 10, 0.05, _Limit(math.inf, math.inf))
