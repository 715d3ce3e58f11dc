"""Cheapest feasible insertion: the instant answer to a quote.

For a new request, every position pair (pickup before dropoff, both after the bus's fixed stops)
in every bus's current route is scheduled (see :func:`schedule_route`) and checked against every
rider's window and ride-time limit, seats and wheelchair places separately, and the end of the
shift. The cheapest feasible one wins; cost is the added arc cost (drive time)
plus a weight on the new rider's wait beyond their earliest pickup.

The scheduling and the search are numba kernels over flat arrays; this module turns a
RoutingProblem into those arrays and the kernel's answer back into routes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numba import njit
from numpy.typing import NDArray

from routing.problem import (
    NO_LIMIT,
    RequestSpec,
    RoutingProblem,
    Solution,
    Stop,
    StopKind,
    VehicleSpec,
)

INF = np.iinfo(np.int64).max // 4


class Fail(IntEnum):
    """Why a candidate route is infeasible (the first rule it breaks); the kernels return it."""

    OK = 0
    WINDOW = 1
    SEATS = 2
    WHEELCHAIRS = 3
    RIDE_TIME = 4
    SHIFT = 5


N_FAILS = len(Fail)
#: Columns of a bus's row in the kernels' vehicle table (one int64 row per bus).
V_START = 0  # location where the bus is free next
V_START_S = 1  # when it is free there
V_SEATS = 2
V_WHEELCHAIRS = 3
V_END = 4  # location where the route ends, or -1: anywhere
V_END_LATEST_S = 5
V_MAX_DURATION_S = 6
V_COLUMNS = 7
#: Columns of a bus's on-board load (riders already in it): seats and wheelchair places.
L_SEATS = 0
L_WHEELCHAIRS = 1


class RequestArrays(NamedTuple):
    """The problem's requests as flat arrays (index = request), as the kernels read them."""

    pickup: NDArray[np.int64]  # location
    dropoff: NDArray[np.int64]
    pickup_open: NDArray[np.int64]  # window at the pickup (begin of service)
    pickup_close: NDArray[np.int64]
    dropoff_open: NDArray[np.int64]
    dropoff_close: NDArray[np.int64]
    seats: NDArray[np.int64]
    wheelchairs: NDArray[np.int64]
    pickup_service: NDArray[np.int64]  # dwell, seconds
    dropoff_service: NDArray[np.int64]
    max_ride: NDArray[np.int64]
    picked_up: NDArray[np.int64]  # begin of service at the pickup of a rider on board, else -1

    @classmethod
    def of(cls, rs: Sequence[RequestSpec]) -> RequestArrays:
        def col(f: Callable[[RequestSpec], int]) -> NDArray[np.int64]:
            return np.array([f(r) for r in rs], dtype=np.int64)

        return cls(
            pickup=col(lambda r: r.pickup),
            dropoff=col(lambda r: r.dropoff),
            pickup_open=col(lambda r: r.pickup_window[0]),
            pickup_close=col(lambda r: r.pickup_window[1]),
            dropoff_open=col(lambda r: r.dropoff_window[0]),
            dropoff_close=col(lambda r: r.dropoff_window[1]),
            seats=col(lambda r: r.seats),
            wheelchairs=col(lambda r: r.wheelchairs),
            pickup_service=col(lambda r: r.pickup_service_s),
            dropoff_service=col(lambda r: r.dropoff_service_s),
            max_ride=col(lambda r: r.max_ride_s),
            picked_up=col(lambda r: -1 if r.picked_up_s is None else r.picked_up_s),
        )

    def extended(self, more: RequestArrays) -> RequestArrays:
        """These requests followed by ``more``."""
        return RequestArrays(*(np.concatenate((a, b)) for a, b in zip(self, more, strict=True)))


class KernelData(NamedTuple):
    """What the insertion kernels and the search share about one problem."""

    time: NDArray[np.int64]  # travel time between locations, seconds
    cost: NDArray[np.int64]  # arc cost between locations
    req: RequestArrays
    vehicles: NDArray[np.int64]  # one row per bus, columns V_*
    loads: NDArray[np.int64]  # one row per bus: seats and wheelchair places taken on board


@njit(cache=True, nogil=True)
def _forward(i, m, A, B, W, D, E, S, TR):
    """Propagate times from position i onwards: arrive, wait for the window, serve, leave."""
    for k in range(i + 1, m):
        A[k] = D[k - 1] + TR[k]
        B[k] = A[k] if A[k] > E[k] else E[k]
        W[k] = B[k] - A[k]
        D[k] = B[k] + S[k]


@njit(cache=True, nogil=True)
def _slack(i, m, B, W, LW, PP, RL, PB, S):
    """Forward time slack at position i (Cordeau & Laporte 2003): how far service at i can be
    pushed later without breaking a later window, or the ride time of a rider whose pickup
    lies before i."""
    f = INF
    acc = 0
    for j in range(i, m):
        if j > i:
            acc += W[j]
        term = LW[j] - B[j]
        if PP[j] != -2 and PP[j] < i:
            start = PB[j] if PP[j] < 0 else B[PP[j]] + S[PP[j]]
            ride_left = RL[j] - (B[j] - start)
            if ride_left < term:
                term = ride_left
        if term < 0:
            term = 0
        if acc + term < f:
            f = acc + term
    return f


@njit(cache=True, nogil=True)
def schedule_route(seq_req, seq_kind, n, T, C, req, veh, load0, begin_out):
    """Schedule a stop sequence; returns (Fail, arc cost, departure, end time).

    ``veh`` is the bus's row (columns ``V_*``), ``load0`` its on-board load (``L_*``), ``req``
    the RequestArrays. ``begin_out[k]`` receives each stop's begin of service.

    Earliest times are used when they keep every rule: riders are picked up as soon as the
    bus can be there. Only when they break a ride-time or duration limit, the times follow the
    eight-step procedure of Cordeau & Laporte (2003): the departure and each pickup are delayed
    by as much forward time slack as the route allows, so that riders do not wait on board and
    the bus does not wait out its duration. Capacity is checked first (it does not depend on
    time).
    """
    pickup, dropoff, pe, pl, de, dl, seats, wheel, ps, ds, ride, picked = req
    s_load = load0[L_SEATS]
    w_load = load0[L_WHEELCHAIRS]
    if s_load > veh[V_SEATS]:
        return Fail.SEATS, 0, 0, 0
    if w_load > veh[V_WHEELCHAIRS]:
        return Fail.WHEELCHAIRS, 0, 0, 0
    m = n + 2  # 0 = leaving the start, 1..n the stops, n + 1 the end
    LOC = np.empty(m, dtype=np.int64)
    E = np.zeros(m, dtype=np.int64)
    LW = np.empty(m, dtype=np.int64)
    S = np.zeros(m, dtype=np.int64)
    PP = np.full(m, -2, dtype=np.int64)  # dropoff: position of its pickup, -1 on board
    RL = np.zeros(m, dtype=np.int64)
    PB = np.zeros(m, dtype=np.int64)  # on-board rider: when their ride began
    LOC[0] = veh[V_START]
    E[0] = veh[V_START_S]
    LW[0] = INF
    cost = 0
    for k in range(1, n + 1):
        r = seq_req[k - 1]
        if seq_kind[k - 1] == StopKind.PICKUP:
            s_load += seats[r]
            w_load += wheel[r]
            if s_load > veh[V_SEATS]:
                return Fail.SEATS, 0, 0, 0
            if w_load > veh[V_WHEELCHAIRS]:
                return Fail.WHEELCHAIRS, 0, 0, 0
            LOC[k] = pickup[r]
            E[k] = pe[r]
            LW[k] = pl[r]
            S[k] = ps[r]
        else:
            s_load -= seats[r]
            w_load -= wheel[r]
            LOC[k] = dropoff[r]
            E[k] = de[r]
            LW[k] = dl[r]
            S[k] = ds[r]
            RL[k] = ride[r]
            PP[k] = -1
            PB[k] = picked[r] + ps[r]
            for q in range(1, k):
                if seq_req[q - 1] == r and seq_kind[q - 1] == StopKind.PICKUP:
                    PP[k] = q
                    break
        cost += C[LOC[k - 1], LOC[k]]
    has_end = veh[V_END] >= 0
    LOC[m - 1] = veh[V_END] if has_end else LOC[m - 2]
    LW[m - 1] = veh[V_END_LATEST_S]
    if has_end:
        cost += C[LOC[m - 2], LOC[m - 1]]
    TR = np.zeros(m, dtype=np.int64)
    for k in range(1, m):
        TR[k] = T[LOC[k - 1], LOC[k]]
    A = np.zeros(m, dtype=np.int64)
    B = np.zeros(m, dtype=np.int64)
    W = np.zeros(m, dtype=np.int64)
    D = np.zeros(m, dtype=np.int64)
    B[0] = E[0]
    D[0] = E[0]
    _forward(0, m, A, B, W, D, E, S, TR)
    for k in range(1, m):
        if B[k] > LW[k]:
            return (Fail.SHIFT if k == m - 1 else Fail.WINDOW), cost, 0, 0
    if _verdict(n, m, B, D, LW, PP, RL, PB, S, seq_req, picked, veh, has_end) == Fail.OK:
        # Earliest times keep every rule: riders are picked up as early as they can be, and
        # the bus waits after them, not before. Leave only as late as the first stop allows.
        D[0] = B[1] - TR[1] if n > 0 and B[1] - TR[1] > D[0] else D[0]
        for k in range(1, n + 1):
            begin_out[k - 1] = B[k]
        return Fail.OK, cost, D[0], B[m - 1]
    # Otherwise delay the departure, then each pickup, by the slack that hurts no one.
    waits = 0
    for p in range(1, m):
        waits += W[p]
    f = _slack(0, m, B, W, LW, PP, RL, PB, S)
    D[0] = E[0] + (f if f < waits else waits)
    B[0] = D[0]
    _forward(0, m, A, B, W, D, E, S, TR)
    for j in range(1, n + 1):
        if seq_kind[j - 1] != StopKind.PICKUP:
            continue
        waits = 0
        for p in range(j + 1, m):
            waits += W[p]
        f = _slack(j, m, B, W, LW, PP, RL, PB, S)
        W[j] += f if f < waits else waits
        B[j] = A[j] + W[j]
        D[j] = B[j] + S[j]
        _forward(j, m, A, B, W, D, E, S, TR)
    code = _verdict(n, m, B, D, LW, PP, RL, PB, S, seq_req, picked, veh, has_end)
    if code != Fail.OK:
        return code, cost, 0, 0
    for k in range(1, n + 1):
        begin_out[k - 1] = B[k]
    return Fail.OK, cost, D[0], B[m - 1]


@njit(cache=True, nogil=True)
def _verdict(n, m, B, D, LW, PP, RL, PB, S, seq_req, picked, veh, has_end):
    """The first rule a computed schedule breaks (Fail.OK: none): window, ride time, shift."""
    for k in range(1, n + 1):
        if B[k] > LW[k]:
            return Fail.WINDOW
        if PP[k] != -2 and RL[k] < INF:
            start = PB[k] if PP[k] < 0 else B[PP[k]] + S[PP[k]]
            if PP[k] < 0 and picked[seq_req[k - 1]] < 0:
                start = B[k]  # malformed: a dropoff without pickup; the checker reports it
            if B[k] - start > RL[k]:
                return Fail.RIDE_TIME
    end = B[m - 1]
    if (n > 0 or has_end) and (end > veh[V_END_LATEST_S] or end - D[0] > veh[V_MAX_DURATION_S]):
        return Fail.SHIFT
    return Fail.OK


@njit(cache=True, nogil=True)
def earliest_departures(seq_req, seq_kind, n, T, req, veh, load0, LOC, DEP, SL, WL):
    """Earliest departure from each position of a route (0 = the start) if the bus never
    waits longer than a window asks, its location, and the seats and wheelchair places taken
    after it. Inserting stops can only make every later time later."""
    pickup, dropoff, pe, _, de, _, seats, wheel, ps, ds, _, _ = req
    LOC[0] = veh[V_START]
    DEP[0] = veh[V_START_S]
    SL[0] = load0[L_SEATS]
    WL[0] = load0[L_WHEELCHAIRS]
    for k in range(1, n + 1):
        r = seq_req[k - 1]
        if seq_kind[k - 1] == StopKind.PICKUP:
            loc, early, serve = pickup[r], pe[r], ps[r]
            SL[k] = SL[k - 1] + seats[r]
            WL[k] = WL[k - 1] + wheel[r]
        else:
            loc, early, serve = dropoff[r], de[r], ds[r]
            SL[k] = SL[k - 1] - seats[r]
            WL[k] = WL[k - 1] - wheel[r]
        arrive = DEP[k - 1] + T[LOC[k - 1], loc]
        DEP[k] = (arrive if arrive > early else early) + serve
        LOC[k] = loc


@njit(cache=True, nogil=True)
def splice(Rv, Kv, n, r, a, b, out_r, out_k):
    """The route with request r's pickup after position a and its dropoff after position b >= a
    (positions of the old route, 0 = the start), into out_r and out_k: old[0:a], P,
    old[a:b], D, old[b:]."""
    m = 0
    for k in range(n + 2):
        if k == a:
            out_r[k] = r
            out_k[k] = 0
        elif k == b + 1:
            out_r[k] = r
            out_k[k] = 1
        else:
            out_r[k] = Rv[m]
            out_k[k] = Kv[m]
            m += 1


@njit(cache=True, nogil=True)
def _best_insertion(seq_req, seq_kind, n, n_fixed, r, T, C, req, veh, load0, wait_weight_pct):
    """Best (cost, i, j) inserting request r's pickup at i and dropoff at j of the new route.

    Returns cost -1 if no position is feasible; ``fails[code]`` counts infeasible candidates.

    When the current route is feasible, candidates that cannot work are told apart without
    scheduling them, with the code the full schedule would give: seats or wheelchair places
    (the new rider's load over the stops it rides past), then a pickup or drop-off the bus
    cannot reach in its window even at the earliest times of the stops before it.
    """
    base_begin = np.empty(n + 2, dtype=np.int64)
    code, base_cost, _, _ = schedule_route(seq_req, seq_kind, n, T, C, req, veh, load0, base_begin)
    prune = code == Fail.OK
    LOC = np.empty(n + 1, dtype=np.int64)
    DEP = np.empty(n + 1, dtype=np.int64)
    SL = np.empty(n + 1, dtype=np.int64)
    WL = np.empty(n + 1, dtype=np.int64)
    earliest_departures(seq_req, seq_kind, n, T, req, veh, load0, LOC, DEP, SL, WL)
    fails = np.zeros(N_FAILS, dtype=np.int64)
    cand_r = np.empty(n + 2, dtype=np.int64)
    cand_k = np.empty(n + 2, dtype=np.int64)
    begin = np.empty(n + 2, dtype=np.int64)
    best = -1
    best_i = -1
    best_j = -1
    pickup, dropoff, pe, pl, _, dl, seats, wheel, ps, _, _, _ = req
    for i in range(n_fixed, n + 1):
        p_arrive = DEP[i] + T[LOC[i], pickup[r]]
        p_late = p_arrive > pl[r]
        p_begin = p_arrive if p_arrive > pe[r] else pe[r]
        cap = Fail.OK  # the first capacity rule broken over the stops the new rider rides past
        if SL[i] + seats[r] > veh[V_SEATS]:
            cap = Fail.SEATS
        elif WL[i] + wheel[r] > veh[V_WHEELCHAIRS]:
            cap = Fail.WHEELCHAIRS
        for j in range(i + 1, n + 2):
            if j > i + 1 and cap == Fail.OK and seq_kind[j - 2] == StopKind.PICKUP:
                if SL[j - 1] + seats[r] > veh[V_SEATS]:
                    cap = Fail.SEATS
                elif WL[j - 1] + wheel[r] > veh[V_WHEELCHAIRS]:
                    cap = Fail.WHEELCHAIRS
            if prune:
                if cap != Fail.OK:
                    fails[cap] += 1
                    continue
                if j == i + 1:
                    d_arrive = p_begin + ps[r] + T[pickup[r], dropoff[r]]
                else:
                    d_arrive = DEP[j - 1] + T[LOC[j - 1], dropoff[r]]
                if p_late or d_arrive > dl[r]:
                    fails[Fail.WINDOW] += 1
                    continue
            splice(seq_req, seq_kind, n, r, i, j - 1, cand_r, cand_k)
            code, cost, _, _ = schedule_route(cand_r, cand_k, n + 2, T, C, req, veh, load0, begin)
            if code != Fail.OK:
                fails[code] += 1
                continue
            total = (cost - base_cost) * 100 + wait_weight_pct * (begin[i] - pe[r])
            if best < 0 or total < best:
                best = total
                best_i = i
                best_j = j
    return best, best_i, best_j, fails


@dataclass(frozen=True)
class Insertion:
    """Where a request goes: the vehicle, its new route with begin times, and the cost."""

    vehicle: int
    route: tuple[Stop, ...]
    times: tuple[int, ...]
    start_s: int
    end_s: int
    cost: int
    pickup_s: int
    dropoff_s: int
    #: infeasible candidate positions over the vehicles tried, by the rule they broke
    fails: dict[Fail, int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class NoInsertion:
    """No bus can take the request; ``fails`` counts candidate positions by the rule they broke."""

    fails: dict[Fail, int]
    vehicles_tried: int

    #: Capacity first: a full bus also makes later positions miss their windows, so the window
    #: failures there follow from the capacity and say less about why.
    PRIORITY = (Fail.WHEELCHAIRS, Fail.SEATS, Fail.RIDE_TIME, Fail.SHIFT, Fail.WINDOW)

    @property
    def main_reason(self) -> Fail:
        """The most telling rule that some candidate position broke."""
        return next((f for f in self.PRIORITY if self.fails.get(f, 0) > 0), Fail.WINDOW)


class Inserter:
    """Insertion over one RoutingProblem (the arrays are built once, reused per vehicle)."""

    def __init__(
        self,
        problem: RoutingProblem,
        *,
        wait_weight_pct: int = 20,
        reuse: Inserter | None = None,
    ) -> None:
        """``reuse``: an Inserter whose problem's requests begin ``problem``'s (the very same
        RequestSpec objects, e.g. a quote's problem is its fleet's plus the new request): its
        request arrays are reused and only the new requests' are built."""
        self.problem = problem
        self.wait_weight_pct = wait_weight_pct
        nv = len(problem.vehicles)
        vehicles = np.array([_vehicle_row(v) for v in problem.vehicles], dtype=np.int64).reshape(
            nv, V_COLUMNS
        )
        self.data = KernelData(
            time=np.ascontiguousarray(problem.time_s, dtype=np.int64),
            cost=np.ascontiguousarray(problem.arc_cost, dtype=np.int64),
            req=self._request_arrays(problem.requests, reuse),
            vehicles=vehicles,
            loads=_onboard_loads(problem),
        )

    @staticmethod
    def _request_arrays(requests: tuple[RequestSpec, ...], reuse: Inserter | None) -> RequestArrays:
        old = reuse.problem.requests if reuse is not None else ()
        if (
            reuse is None
            or not old
            or len(old) > len(requests)
            or not all(a is b for a, b in zip(old, requests, strict=False))
        ):
            return RequestArrays.of(requests)
        if len(old) == len(requests):
            return reuse.data.req
        return reuse.data.req.extended(RequestArrays.of(requests[len(old) :]))

    @staticmethod
    def _seq(route: tuple[Stop, ...]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return (
            np.array([s[0] for s in route], dtype=np.int64),
            np.array([int(s[1]) for s in route], dtype=np.int64),
        )

    def schedule(self, v: int, route: tuple[Stop, ...]) -> tuple[Fail, tuple[int, ...], int, int]:
        """Begin-of-service times of ``route`` for vehicle v: (fail code, times, start, end)."""
        seq_r, seq_k = self._seq(route)
        begin = np.zeros(len(route) + 1, dtype=np.int64)
        d = self.data
        code, _, start, end = schedule_route(
            seq_r, seq_k, len(route), d.time, d.cost, d.req, d.vehicles[v], d.loads[v], begin
        )
        return Fail(int(code)), tuple(int(b) for b in begin[: len(route)]), int(start), int(end)

    def best(
        self, routes: tuple[tuple[Stop, ...], ...], r: int, vehicles: list[int] | None = None
    ) -> Insertion | NoInsertion:
        """The cheapest feasible insertion of request r over the given vehicles (default all)."""
        best: Insertion | None = None
        fails = dict.fromkeys(Fail, 0)
        candidates = range(len(self.problem.vehicles)) if vehicles is None else vehicles
        d = self.data
        for v in candidates:
            route = routes[v]
            n_fixed = len(self.problem.vehicles[v].fixed)
            seq_r, seq_k = self._seq(route)
            cost, i, j, f = _best_insertion(
                seq_r, seq_k, len(route), n_fixed, r, d.time, d.cost, d.req,
                d.vehicles[v], d.loads[v], self.wait_weight_pct,
            )  # fmt: skip
            for code, count in enumerate(f.tolist()):
                fails[Fail(code)] += count
            if cost < 0 or (best is not None and cost >= best.cost):
                continue
            new = list(route)
            new.insert(i, (r, StopKind.PICKUP))
            new.insert(j, (r, StopKind.DROPOFF))
            code, times, start, end = self.schedule(v, tuple(new))
            assert code == Fail.OK, "kernel and schedule disagree"
            best = Insertion(v, tuple(new), times, start, end, int(cost), times[i], times[j])
        if best is None:
            return NoInsertion(fails, len(candidates))
        return replace(best, fails=fails)


def _vehicle_row(s: VehicleSpec) -> list[int]:
    """A bus as the kernels read it (columns V_*)."""
    return [
        s.start,
        s.start_s,
        s.seats,
        s.wheelchairs,
        -1 if s.end is None else s.end,
        min(s.end_latest_s, NO_LIMIT),
        min(s.max_duration_s, NO_LIMIT),
    ]


def _onboard_loads(problem: RoutingProblem) -> NDArray[np.int64]:
    """Seats and wheelchair places taken on each bus by the riders already on board."""
    loads = np.zeros((len(problem.vehicles), 2), dtype=np.int64)
    for r in problem.requests:
        if r.onboard_vehicle is not None:
            loads[r.onboard_vehicle, L_SEATS] += r.seats
            loads[r.onboard_vehicle, L_WHEELCHAIRS] += r.wheelchairs
    return loads


def insert_all(
    problem: RoutingProblem, *, wait_weight_pct: int = 20, order: list[int] | None = None
) -> Solution:
    """Build a solution by inserting requests one by one (a construction heuristic).

    Fixed stops and riders on board are placed first; requests that fit nowhere are unserved.
    """
    ins = Inserter(problem, wait_weight_pct=wait_weight_pct)
    routes: list[tuple[Stop, ...]] = []
    for v, spec in enumerate(problem.vehicles):
        fixed = list(spec.fixed)
        for r in problem.onboard(v):
            if (r, StopKind.DROPOFF) not in fixed:
                fixed.append((r, StopKind.DROPOFF))
        routes.append(tuple(fixed))
    placed = {s[0] for route in routes for s in route}
    todo = (
        [r for r in order if r not in placed]
        if order is not None
        else sorted(
            (r for r in range(len(problem.requests)) if r not in placed),
            key=lambda r: _service_starts(problem, r),
        )
    )
    unserved = []
    for r in todo:
        res = ins.best(tuple(routes), r)
        if isinstance(res, Insertion):
            routes[res.vehicle] = res.route
        else:
            unserved.append(r)
    return solution_from_routes(ins, tuple(routes), tuple(unserved))


def insert_best_of(
    problem: RoutingProblem, *, tries: int = 30, seed: int = 0, wait_weight_pct: int = 20
) -> Solution:
    """Cheapest insertion in several request orders; the start with the fewest requests left
    out (then the lowest cost) wins. The first order is by when service must begin; the
    others are seeded shuffles of it, so the result is reproducible."""
    base = insert_all(problem, wait_weight_pct=wait_weight_pct)
    best = base
    rng = np.random.default_rng(seed)
    order = [r for r in range(len(problem.requests)) if problem.requests[r].onboard_vehicle is None]
    for _ in range(tries - 1):
        if not best.unserved:
            break
        rng.shuffle(order)
        sol = insert_all(problem, wait_weight_pct=wait_weight_pct, order=list(order))
        if (len(sol.unserved), sol.total_cost(problem)) < (
            len(best.unserved),
            best.total_cost(problem),
        ):
            best = sol
    return best


def _service_starts(problem: RoutingProblem, r: int) -> int:
    """When serving request r must begin at the earliest: its pickup window, or for a trip with
    a window at the drop-off end (an outbound trip) that window less the direct ride."""
    q = problem.requests[r]
    direct = int(problem.time_s[q.pickup, q.dropoff]) + q.pickup_service_s
    return max(q.pickup_window[0], q.dropoff_window[0] - direct)


def solution_from_routes(
    ins: Inserter, routes: tuple[tuple[Stop, ...], ...], unserved: tuple[int, ...] = ()
) -> Solution:
    """Schedule each route into a Solution; each route's fail code is kept in ``info``."""
    times, starts, ends, codes = [], [], [], []
    for v, route in enumerate(routes):
        code, t, start, end = ins.schedule(v, route)
        times.append(t)
        starts.append(start)
        ends.append(end)
        codes.append(code)
    return Solution(
        routes=routes,
        times=tuple(times),
        start_times=tuple(starts),
        end_times=tuple(ends),
        unserved=unserved,
        info={"schedule_codes": [c.name for c in codes]},
    )
