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
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from routing.insertion import (
    Inserter,
    _earliest,
    _schedule,
    _splice,
    insert_all,
    solution_from_routes,
)
from routing.problem import RequestSpec, RoutingProblem, Solution, Stop, StopKind, VehicleSpec

NONE = -1
#: While emptying a route, a request left out costs more than any drive: fewer left out first.
ELIM_MISS = 10**12


@njit(cache=True, nogil=True)
def _arc(M, a, b):
    """M[a, b]; b < 0 is an open end, which costs nothing to reach."""
    return 0 if b < 0 else M[a, b]


@njit(cache=True, nogil=True)
def _stop(r, kind, req):
    """(location, window start, window end, service, seats, wheelchairs) of a stop."""
    pickup, dropoff, pe, pl, de, dl, seats, wheel, ps, ds, _, _ = req
    if kind == 0:
        return pickup[r], pe[r], pl[r], ps[r], seats[r], wheel[r]
    return dropoff[r], de[r], dl[r], ds[r], -seats[r], -wheel[r]


@njit(cache=True, nogil=True)
def _route_cost(Rv, Kv, n, C, veh, req, vehicle_cost):
    """Arc cost of a route, plus ``vehicle_cost`` if it has a stop."""
    loc = veh[0]
    total = 0
    for k in range(n):
        nxt = _stop(Rv[k], Kv[k], req)[0]
        total += C[loc, nxt]
        loc = nxt
    if n > 0:
        total += _arc(C, loc, veh[4]) + vehicle_cost
    return total


@njit(cache=True, nogil=True)
def _prep(Rv, Kv, n, req, veh, load0, T, LOC, DEP, SL, WL, LT):
    """Per position of a route (0 = the start): location, earliest departure, seats and
    wheelchair places taken after it; and LT[k], the latest begin of service at stop k that
    keeps every later window and the shift end (windows only; LT[n + 1] is the end)."""
    _earliest(Rv, Kv, n, T, req, veh, load0, LOC, DEP, SL, WL)
    LT[n + 1] = veh[5]
    nxt = veh[4]
    for k in range(n, 0, -1):
        loc, _, lw, s, _, _ = _stop(Rv[k - 1], Kv[k - 1], req)
        lt = LT[k + 1] - _arc(T, loc, nxt) - s
        LT[k] = lw if lw < lt else lt
        nxt = loc


@njit(cache=True, nogil=True)
def _candidates(r, v, n, nfix, Rv, Kv, LOC, DEP, SL, WL, LT, T, C, req, veh, vcost, out, cnt):
    """Append to ``out`` (rows: added cost, vehicle, a, b) every insertion of request r into
    route v, pickup after position a and dropoff after position b >= a, that passes the O(1)
    screens: seats and wheelchair places, and every window at the earliest schedule."""
    pickup, dropoff, pe, pl, de, dl, seats, wheel, ps, ds, _, _ = req
    p, d = pickup[r], dropoff[r]
    end = veh[4]
    # opening an empty bus also costs its drive from start to end, and the cost of a bus
    extra = vcost + _arc(C, veh[0], end) if n == 0 else 0
    for a in range(nfix, n + 1):
        if SL[a] + seats[r] > veh[2] or WL[a] + wheel[r] > veh[3]:
            continue
        bp = DEP[a] + T[LOC[a], p]
        if bp < pe[r]:
            bp = pe[r]
        if bp > pl[r]:
            continue
        dep_p = bp + ps[r]
        na = LOC[a + 1] if a < n else end
        base_a = _arc(C, LOC[a], na)
        cp = C[LOC[a], p]
        # dropoff right after the pickup
        bd = dep_p + T[p, d]
        if bd < de[r]:
            bd = de[r]
        if bd <= dl[r] and bd + ds[r] + _arc(T, d, na) <= LT[a + 1]:
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
            if SL[b] + seats[r] > veh[2] or WL[b] + wheel[r] > veh[3]:
                break
            bd = dep + T[loc_b, d]
            if bd < de[r]:
                bd = de[r]
            if bd > dl[r]:
                continue
            nb = LOC[b + 1] if b < n else end
            if bd + ds[r] + _arc(T, d, nb) > LT[b + 1]:
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
def _refresh(v, R, K, lens, req, vehs, loads, T, C, LOC, DEP, SL, WL, LT, costs, vcost):
    _prep(R[v], K[v], lens[v], req, vehs[v], loads[v], T, LOC[v], DEP[v], SL[v], WL[v], LT[v])
    costs[v] = _route_cost(R[v], K[v], lens[v], C, vehs[v], req, vcost)


@njit(cache=True, nogil=True)
def _insert(
    r, R, K, lens, where, nfix, allowed, LOC, DEP, SL, WL, LT, costs, T, C, req, vehs, loads,
    vcost, blink, cand, work_r, work_k, begin,
):  # fmt: skip
    """Put request r at its cheapest feasible position over the open buses (skipping each
    screened candidate with probability ``blink``); False if none is feasible."""
    cnt = 0
    for v in range(R.shape[0]):
        if allowed[v]:
            cnt = _candidates(
                r, v, lens[v], nfix[v], R[v], K[v], LOC[v], DEP[v], SL[v], WL[v], LT[v],
                T, C, req, vehs[v], vcost, cand, cnt,
            )  # fmt: skip
    if cnt == 0:
        return False
    order = np.argsort(cand[:cnt, 0])
    for t in range(cnt):
        c = order[t]
        if blink > 0 and np.random.random() < blink:
            continue
        v, a, b = cand[c, 1], cand[c, 2], cand[c, 3]
        n = lens[v]
        _splice(R[v], K[v], n, r, a, b, work_r, work_k)
        code, _, _, _ = _schedule(work_r, work_k, n + 2, T, C, req, vehs[v], loads[v], begin)
        if code == 0:
            R[v, : n + 2] = work_r[: n + 2]
            K[v, : n + 2] = work_k[: n + 2]
            lens[v] = n + 2
            where[r] = v
            _refresh(v, R, K, lens, req, vehs, loads, T, C, LOC, DEP, SL, WL, LT, costs, vcost)
            return True
    return False


@njit(cache=True, nogil=True)
def _take_out(R, K, lens, where, v, r, touched):
    m = 0
    for k in range(lens[v]):
        if R[v, k] != r:
            R[v, m] = R[v, k]
            K[v, m] = K[v, k]
            m += 1
    lens[v] = m
    where[r] = NONE
    touched[v] = True


@njit(cache=True, nogil=True)
def _ruin(kind, k, cands, R, K, lens, where, nfix, removable, related, touched, lmax):
    """Take out about k requests (see the module doc); returns how many were taken out."""
    nv = R.shape[0]
    seed_r = NONE
    for _ in range(20):
        q = cands[np.random.randint(cands.size)]
        if where[q] != NONE:
            seed_r = q
            break
    if seed_r == NONE:
        return 0
    taken = 0
    if kind == 0:  # related
        for q in related[seed_r]:
            if taken >= k:
                break
            if removable[q] and where[q] != NONE:
                _take_out(R, K, lens, where, where[q], q, touched)
                taken += 1
    elif kind == 1:  # strings in routes near the seed
        done = np.zeros(nv, dtype=np.bool_)
        n_routes = 1 + np.random.randint(3)
        for q in related[seed_r]:
            if taken >= k or n_routes == 0:
                break
            v = where[q]
            if v == NONE or done[v] or not removable[q]:
                continue
            done[v] = True
            n_routes -= 1
            n = lens[v]
            pos = nfix[v]
            while R[v, pos] != q:
                pos += 1
            length = 1 + np.random.randint(min(lmax, n - nfix[v]))
            lo = pos - np.random.randint(length)
            if lo < nfix[v]:
                lo = nfix[v]
            hi = min(lo + length, n)
            out = np.empty(hi - lo, dtype=np.int64)
            m = 0
            for t in range(lo, hi):
                out[m] = R[v, t]
                m += 1
            for t in range(m):
                s = out[t]
                if removable[s] and where[s] == v:
                    _take_out(R, K, lens, where, v, s, touched)
                    taken += 1
    else:  # random
        for _ in range(4 * k):
            if taken >= k:
                break
            q = cands[np.random.randint(cands.size)]
            if where[q] != NONE:
                _take_out(R, K, lens, where, where[q], q, touched)
                taken += 1
    return taken


@njit(cache=True, nogil=True)
def _steps(
    S, B, nfix, removable, related, allowed, T, C, req, vehs, loads, steps, k_min, k_max,
    temp, seed, miss, vcost, blink, lmax, far,
):  # fmt: skip
    """``steps`` ruin-and-recreate steps from the current solution S = (R, K, lens, where,
    LOC, DEP, SL, WL, LT, costs); the best (fewest left out, then cost) is kept in B =
    (R, K, lens, where, costs). Returns the steps accepted."""
    R, K, lens, where, LOC, DEP, SL, WL, LT, costs = S
    bR, bK, blens, bwhere, bcosts = B
    np.random.seed(seed)
    nv = R.shape[0]
    n_req = where.shape[0]
    W = (R.copy(), K.copy(), lens.copy(), where.copy(), LOC.copy(), DEP.copy(), SL.copy(),
         WL.copy(), LT.copy(), costs.copy())  # fmt: skip
    wR, wK, wlens, wwhere, wLOC, wDEP, wSL, wWL, wLT, wcosts = W
    width = R.shape[1]
    cand = _candidate_rows(n_req, nv)
    work_r = np.empty(width + 2, dtype=np.int64)
    work_k = np.empty(width + 2, dtype=np.int64)
    begin = np.empty(width + 2, dtype=np.int64)
    bank = np.empty(n_req, dtype=np.int64)
    keys = np.empty(n_req, dtype=np.int64)
    touched = np.zeros(nv, dtype=np.bool_)
    cands = np.flatnonzero(removable)
    if cands.size == 0:
        return 0
    cur_total = costs.sum() + _unplaced(where, removable) * miss
    b_miss = _unplaced(bwhere, removable)
    accepted = 0
    for _ in range(steps):
        touched[:] = False
        k = k_min + np.random.randint(k_max - k_min + 1)
        u = np.random.random()
        kind = 0 if u < 0.4 else (1 if u < 0.85 else 2)
        _ruin(kind, k, cands, wR, wK, wlens, wwhere, nfix, removable, related, touched, lmax)
        for v in range(nv):
            if touched[v]:
                _refresh(v, wR, wK, wlens, req, vehs, loads, T, C, wLOC, wDEP, wSL, wWL, wLT,
                         wcosts, vcost)  # fmt: skip
        nb = 0
        for q in cands:
            if wwhere[q] == NONE:
                bank[nb] = q
                nb += 1
        u = np.random.random()
        for t in range(nb):
            q = bank[t]
            if u < 0.4:
                keys[t] = np.random.randint(1 << 30)
            elif u < 0.7:
                keys[t] = req[2][q] + np.random.randint(0, 600)
            else:
                keys[t] = -far[q]
        order = np.argsort(keys[:nb])
        unplaced = 0
        for t in range(nb):
            q = bank[order[t]]
            if _insert(
                q, wR, wK, wlens, wwhere, nfix, allowed, wLOC, wDEP, wSL, wWL, wLT, wcosts,
                T, C, req, vehs, loads, vcost, blink, cand, work_r, work_k, begin,
            ):  # fmt: skip
                touched[wwhere[q]] = True
            else:
                unplaced += 1
        new_total = wcosts.sum() + unplaced * miss
        if new_total < cur_total or (
            temp > 0 and np.random.random() < math.exp(-(new_total - cur_total) / temp)
        ):
            accepted += 1
            _copy_solution(S, W, touched)
            cur_total = new_total
            if unplaced < b_miss or (
                unplaced == b_miss and new_total < bcosts.sum() + b_miss * miss
            ):
                bR[:] = R
                bK[:] = K
                blens[:] = lens
                bwhere[:] = where
                bcosts[:] = costs
                b_miss = unplaced
        else:
            _copy_solution(W, S, touched)
    return accepted


@njit(cache=True, nogil=True)
def _copy_solution(dst, src, touched):
    """Copy solution src (R, K, lens, where, LOC, DEP, SL, WL, LT, costs) into dst: the
    route tables of the touched buses only, the rest whole."""
    R, K, lens, where, LOC, DEP, SL, WL, LT, costs = dst
    sR, sK, slens, swhere, sLOC, sDEP, sSL, sWL, sLT, scosts = src
    for v in range(R.shape[0]):
        if touched[v]:
            R[v] = sR[v]
            K[v] = sK[v]
            LOC[v] = sLOC[v]
            DEP[v] = sDEP[v]
            SL[v] = sSL[v]
            WL[v] = sWL[v]
            LT[v] = sLT[v]
    lens[:] = slens
    where[:] = swhere
    costs[:] = scosts


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


class _Run:
    """One search: the current solution S = (R, K, lens, where, LOC, DEP, SL, WL, LT, costs),
    the best B = (R, K, lens, where, costs), the problem's arrays, and the steps done."""

    def __init__(self, S, B, problem_arrays, seed, batch):
        self.S, self.B = S, B
        (self.nfix, self.removable, self.related, self.allowed, self.T, self.C, self.req,
         self.vehs, self.loads, self.far) = problem_arrays  # fmt: skip
        self.seed = seed
        self.steps = 0
        self.calls = 0
        self.size = batch  # steps per call, adapted to take about batch_s

    def batch(self, temp, miss, vcost, blink, k_min, k_max, lmax, batch_s):
        t0 = time.perf_counter()
        _steps(
            self.S, self.B, self.nfix, self.removable, self.related, self.allowed, self.T,
            self.C, self.req, self.vehs, self.loads, self.size, k_min, k_max, temp,
            self.seed * 100_003 + self.calls, miss, vcost, blink, lmax, self.far,
        )  # fmt: skip
        took = time.perf_counter() - t0
        self.steps += self.size
        self.calls += 1
        if self.calls > 1:  # the first call may include compiling
            self.size = max(1, min(self.size * 4, int(self.size * batch_s / max(took, 1e-6))))

    def insert(self, r: int, vcost: int, blink: float = 0.0) -> bool:
        """Put request r at its cheapest feasible position in the current solution."""
        R, K, lens, where, LOC, DEP, SL, WL, LT, costs = self.S
        width = R.shape[1]
        cand = _candidate_rows(where.size, R.shape[0])
        work = [np.empty(width + 2, dtype=np.int64) for _ in range(3)]
        return bool(
            _insert(
                r, R, K, lens, where, self.nfix, self.allowed, LOC, DEP, SL, WL, LT, costs,
                self.T, self.C, self.req, self.vehs, self.loads, vcost, blink, cand, *work,
            )
        )  # fmt: skip

    def left_out(self, where: np.ndarray) -> int:
        return int(_unplaced(where, self.removable))

    def refresh(self, v: int, vcost: int) -> None:
        """Rebuild route v's screening tables and cost in the current solution."""
        R, K, lens, _, LOC, DEP, SL, WL, LT, costs = self.S
        _refresh(
            v, R, K, lens, self.req, self.vehs, self.loads, self.T, self.C,
            LOC, DEP, SL, WL, LT, costs, vcost,
        )  # fmt: skip

    def _routes(self) -> tuple[np.ndarray, ...]:
        """The current solution's arrays that the best one keeps: R, K, lens, where, costs."""
        R, K, lens, where, *_, costs = self.S
        return R, K, lens, where, costs

    def best_to_current(self, vcost: int) -> None:
        """The current solution becomes the best one."""
        for a, b in zip(self._routes(), self.B, strict=True):
            a[:] = b
        for v in range(self.S[0].shape[0]):
            self.refresh(v, vcost)

    def current_to_best(self) -> None:
        for a, b in zip(self.B, self._routes(), strict=True):
            a[:] = b


def _empty_routes(run: _Run, until: float, vcost: int, miss: int, temp: float, **kw) -> int:
    """Close buses one at a time: the shortest route's requests go to the bank and ruin and
    recreate (leaving a request out costs ``miss``, more than any detour) works them into the other
    open buses. A route that cannot be emptied in its share of the time is restored and the
    next shortest is tried; so is one whose emptying costs more than the bus. Returns how many
    routes were emptied; the current and the best solution end as the one with the fewest
    routes, every bus open again."""
    R, _, lens, where, *_ = run.S
    nv = R.shape[0]
    emptied = 0
    tried: set[int] = set()
    run.current_to_best()
    while time.perf_counter() < until:
        open_ = [v for v in range(nv) if lens[v] > 0]
        choices = [
            v
            for v in open_
            if v not in tried and run.nfix[v] == 0 and all(run.removable[R[v, : lens[v]]])
        ]
        if len(open_) <= 1 or not choices:
            break
        v = min(choices, key=lambda u: (lens[u], u))
        target = run.left_out(where)
        saved = [a.copy() for a in run.B]
        for r in {int(q) for q in R[v, : lens[v]]}:
            where[r] = NONE
        lens[v] = 0
        run.refresh(v, vcost)
        run.allowed[:] = False
        run.allowed[open_] = True
        run.allowed[v] = False
        run.current_to_best()
        now = time.perf_counter()
        deadline = min(until, now + max(0.5, (until - now) / 2))
        while time.perf_counter() < deadline and run.left_out(run.B[3]) > target:
            run.batch(temp, miss, vcost, **kw)
        run.allowed[:] = True
        # emptied, and cheaper for it (a cheap bus may not be worth a longer drive)
        if run.left_out(run.B[3]) <= target and run.B[4].sum() <= saved[4].sum():
            emptied += 1
            tried.clear()
        else:
            for a, b in zip(run.B, saved, strict=True):
                a[:] = b
            tried.add(v)
        run.best_to_current(vcost)
    return emptied


def _setup(
    problem: RoutingProblem, start: Solution, vehicle_cost: int, seed: int, batch: int
) -> tuple[Inserter, _Run]:
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
    vehs = np.stack(ins._vehs) if nv else np.zeros((0, 7), np.int64)
    loads = np.stack(ins._loads) if nv else np.zeros((0, 2), np.int64)
    T, C, req = ins._T, ins._C, ins._req
    LOC, DEP, SL, WL, LT = (np.zeros((nv, width + 2), dtype=np.int64) for _ in range(5))
    costs = np.zeros(nv, dtype=np.int64)
    allowed = np.ones(nv, dtype=np.bool_)
    for v in range(nv):
        _refresh(v, R, K, lens, req, vehs, loads, T, C, LOC, DEP, SL, WL, LT, costs, vehicle_cost)
    S = (R, K, lens, where, LOC, DEP, SL, WL, LT, costs)
    B = (R.copy(), K.copy(), lens.copy(), where.copy(), costs.copy())
    related = _related(problem)
    depot = problem.vehicles[0].start if nv else 0
    far = (T[depot, req[0]] + T[req[1], depot]).astype(np.int64)
    arrays = (nfix, removable, related, allowed, T, C, req, vehs, loads, far)
    return ins, _Run(S, B, arrays, seed, batch)


def improve(
    problem: RoutingProblem,
    start: Solution,
    time_limit_s: float,
    *,
    seed: int = 0,
    remove: tuple[int, int] | None = None,
    batch: int = 50,
    miss_factor: float = 4.0,
    temp_start: float = 0.3,
    blink: float = 0.01,
    vehicle_cost: int = 0,
    elim_share: float = 0.5,
) -> Solution:
    """Improve ``start`` (feasible routes, possibly leaving requests out) for about
    ``time_limit_s`` seconds: the best solution found, never worse than the start (first
    fewer requests left out, then lower cost).

    ``remove``: how many requests a step takes out (at least, at most); by default 2 to 15,
    or 5 to 30 when buses are minimised (few long routes need bigger steps to change);
    ``batch``: steps between looks at the clock (the first batch; later ones aim at 0.05 s);
    ``miss_factor``: while searching, a request left out costs this many average arcs;
    ``temp_start``: the starting temperature, in average arcs (it falls 150-fold);
    ``blink``: chance to pass over a candidate position when recreating;
    ``vehicle_cost``: cost of a bus that has a stop (> 0: first try to empty whole routes);
    ``elim_share``: the share of the time limit that emptying routes may take.
    """
    started = time.perf_counter()
    ins, run = _setup(problem, start, vehicle_cost, seed, batch)
    R, K, lens, *_ = run.S
    nv, n_req = len(problem.vehicles), len(problem.requests)
    C, req, vehs = run.C, run.req, run.vehs
    if remove is None:
        remove = (5, 30) if vehicle_cost > 0 else (2, 15)
    k_max = max(1, min(remove[1], int(run.removable.sum())))
    k_min = min(remove[0], k_max)
    arc_cost = int(sum(_route_cost(R[v], K[v], lens[v], C, vehs[v], req, 0) for v in range(nv)))
    arcs = max(1, int(lens.sum()))
    t_start = temp_start * arc_cost / arcs
    t_end = t_start / 150
    miss = int(miss_factor * arc_cost / arcs) + vehicle_cost
    lmax = 10
    until = started + time_limit_s
    emptied = 0
    if vehicle_cost > 0:
        emptied = _empty_routes(
            run, started + elim_share * time_limit_s, vehicle_cost,
            ELIM_MISS, t_start,
            blink=blink, k_min=k_min, k_max=k_max, lmax=lmax, batch_s=0.05,
        )  # fmt: skip
    batch_s = 0.05
    while True:
        now = time.perf_counter()
        if now >= until:
            break
        frac = (now - started) / time_limit_s
        temp = t_start * (t_end / t_start) ** frac if t_start > 0 else 0.0
        run.batch(temp, miss, vehicle_cost, blink, k_min, k_max, lmax, batch_s)
    steps_done = run.steps
    bR, bK, blens, _, _ = run.B
    routes: list[tuple[Stop, ...]] = [
        tuple((int(bR[v, k]), StopKind(int(bK[v, k]))) for k in range(blens[v])) for v in range(nv)
    ]
    served = {r for route in routes for r, _ in route}
    unserved = tuple(r for r in range(n_req) if r not in served)
    sol = solution_from_routes(ins, tuple(routes), unserved)
    sol.info.update(
        {
            "lns_steps": steps_done,
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
        run.batch(1.0, 100, vehicle_cost, 0.01, 1, 2, 10, 0.05)
