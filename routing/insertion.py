"""Cheapest feasible insertion: the instant answer to a quote.

For a new request, every position pair (pickup before dropoff, both after the bus's fixed stops)
in every bus's current route is scheduled at the earliest begin-of-service times and checked
against every rider's window and ride-time limit, seats and wheelchair places separately, and
the end of the shift. The cheapest feasible one wins; cost is the added arc cost (drive time)
plus a weight on the new rider's wait beyond their earliest pickup.

The scheduling and the search are numba kernels over flat arrays; this module turns a
RoutingProblem into those arrays and the kernel's answer back into routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numba import njit
from numpy.typing import NDArray

from routing.problem import NO_LIMIT, RoutingProblem, Solution, Stop, StopKind


class Fail(IntEnum):
    """Why a candidate route is infeasible (the first rule it breaks)."""

    OK = 0
    WINDOW = 1
    SEATS = 2
    WHEELCHAIRS = 3
    RIDE_TIME = 4
    SHIFT = 5


@dataclass(frozen=True)
class _Arrays:
    """The problem's requests as flat arrays (index = request)."""

    pickup: NDArray[np.int64]
    dropoff: NDArray[np.int64]
    pe: NDArray[np.int64]
    pl: NDArray[np.int64]
    de: NDArray[np.int64]
    dl: NDArray[np.int64]
    seats: NDArray[np.int64]
    wheel: NDArray[np.int64]
    ps: NDArray[np.int64]
    ds: NDArray[np.int64]
    ride: NDArray[np.int64]
    picked: NDArray[np.int64]

    @classmethod
    def of(cls, problem: RoutingProblem) -> _Arrays:
        rs = problem.requests

        def col(f):
            return np.array([f(r) for r in rs], dtype=np.int64)

        return cls(
            pickup=col(lambda r: r.pickup),
            dropoff=col(lambda r: r.dropoff),
            pe=col(lambda r: r.pickup_window[0]),
            pl=col(lambda r: r.pickup_window[1]),
            de=col(lambda r: r.dropoff_window[0]),
            dl=col(lambda r: r.dropoff_window[1]),
            seats=col(lambda r: r.seats),
            wheel=col(lambda r: r.wheelchairs),
            ps=col(lambda r: r.pickup_service_s),
            ds=col(lambda r: r.dropoff_service_s),
            ride=col(lambda r: r.max_ride_s),
            picked=col(lambda r: -1 if r.picked_up_s is None else r.picked_up_s),
        )

    def tuple(self):
        return (
            self.pickup,
            self.dropoff,
            self.pe,
            self.pl,
            self.de,
            self.dl,
            self.seats,
            self.wheel,
            self.ps,
            self.ds,
            self.ride,
            self.picked,
        )


@njit(cache=True, nogil=True)
def _schedule(seq_req, seq_kind, n, T, C, req, veh, load0, begin_out):
    """Earliest schedule of a stop sequence; returns (fail code, added-cost base, start, end).

    ``veh`` = (start, start_s, seats, wheelchairs, end or -1, end_latest, max_duration).
    ``req`` = the _Arrays tuple. ``begin_out[k]`` receives each stop's begin time.
    The departure is delayed by any wait before the first stop, so waiting is not driving time.
    """
    pickup, dropoff, pe, pl, de, dl, seats, wheel, ps, ds, ride, picked = req
    loc = veh[0]
    ready = veh[1]
    s_load = load0[0]
    w_load = load0[1]
    cost = 0
    for k in range(n):
        r = seq_req[k]
        if seq_kind[k] == 0:
            nxt = pickup[r]
            lo = pe[r]
            hi = pl[r]
        else:
            nxt = dropoff[r]
            lo = de[r]
            hi = dl[r]
        arrive = ready + T[loc, nxt]
        cost += C[loc, nxt]
        if seq_kind[k] == 0:  # capacity does not depend on time: check it first
            s_load += seats[r]
            w_load += wheel[r]
            if s_load > veh[2]:
                return 2, cost, 0, 0
            if w_load > veh[3]:
                return 3, cost, 0, 0
        b = arrive if arrive > lo else lo
        if b > hi:
            return 1, cost, 0, 0
        begin_out[k] = b
        if seq_kind[k] == 0:
            ready = b + ps[r]
        else:
            if picked[r] >= 0:
                p_begin = picked[r]
            else:
                p_begin = -1
                for q in range(k):
                    if seq_req[q] == r and seq_kind[q] == 0:
                        p_begin = begin_out[q]
                        break
            if p_begin >= 0 and b - (p_begin + ps[r]) > ride[r]:
                return 4, cost, 0, 0
            s_load -= seats[r]
            w_load -= wheel[r]
            ready = b + ds[r]
        loc = nxt
    start = veh[1]
    if n > 0:
        first = pickup[seq_req[0]] if seq_kind[0] == 0 else dropoff[seq_req[0]]
        delayed = begin_out[0] - T[veh[0], first]
        if delayed > start:
            start = delayed
    end = ready
    if veh[4] >= 0:
        end = ready + T[loc, veh[4]]
        cost += C[loc, veh[4]]
    if (n > 0 or veh[4] >= 0) and (end > veh[5] or end - start > veh[6]):
        return 5, cost, start, end
    return 0, cost, start, end


@njit(cache=True, nogil=True)
def _best_insertion(seq_req, seq_kind, n, n_fixed, r, T, C, req, veh, load0, wait_weight_pct):
    """Best (cost, i, j) inserting request r's pickup at i and dropoff at j of the new route.

    Returns cost -1 if no position is feasible; ``fails[code]`` counts infeasible candidates.
    """
    base_begin = np.empty(n + 2, dtype=np.int64)
    code, base_cost, _, _ = _schedule(seq_req, seq_kind, n, T, C, req, veh, load0, base_begin)
    fails = np.zeros(6, dtype=np.int64)
    cand_r = np.empty(n + 2, dtype=np.int64)
    cand_k = np.empty(n + 2, dtype=np.int64)
    begin = np.empty(n + 2, dtype=np.int64)
    best = -1
    best_i = -1
    best_j = -1
    pe = req[2]
    for i in range(n_fixed, n + 1):
        for j in range(i + 1, n + 2):
            # new sequence: old[0:i], P, old[i:j-1], D, old[j-1:]
            m = 0
            for k in range(n + 2):
                if k == i:
                    cand_r[k] = r
                    cand_k[k] = 0
                elif k == j:
                    cand_r[k] = r
                    cand_k[k] = 1
                else:
                    cand_r[k] = seq_req[m]
                    cand_k[k] = seq_kind[m]
                    m += 1
            code, cost, _, _ = _schedule(cand_r, cand_k, n + 2, T, C, req, veh, load0, begin)
            if code != 0:
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

    def __init__(self, problem: RoutingProblem, *, wait_weight_pct: int = 20) -> None:
        self.problem = problem
        self.wait_weight_pct = wait_weight_pct
        self._req = _Arrays.of(problem).tuple()
        self._T = np.ascontiguousarray(problem.time_s, dtype=np.int64)
        self._C = np.ascontiguousarray(problem.arc_cost, dtype=np.int64)

    def _veh(self, v: int) -> NDArray[np.int64]:
        s = self.problem.vehicles[v]
        return np.array(
            [
                s.start,
                s.start_s,
                s.seats,
                s.wheelchairs,
                -1 if s.end is None else s.end,
                min(s.end_latest_s, NO_LIMIT),
                min(s.max_duration_s, NO_LIMIT),
            ],
            dtype=np.int64,
        )

    def _load0(self, v: int) -> NDArray[np.int64]:
        onboard = self.problem.onboard(v)
        rs = self.problem.requests
        return np.array(
            [sum(rs[r].seats for r in onboard), sum(rs[r].wheelchairs for r in onboard)],
            dtype=np.int64,
        )

    @staticmethod
    def _seq(route: tuple[Stop, ...]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        return (
            np.array([s[0] for s in route], dtype=np.int64),
            np.array([int(s[1]) for s in route], dtype=np.int64),
        )

    def schedule(self, v: int, route: tuple[Stop, ...]) -> tuple[Fail, tuple[int, ...], int, int]:
        """Earliest begin times of ``route`` for vehicle v: (fail code, times, start, end)."""
        seq_r, seq_k = self._seq(route)
        begin = np.zeros(len(route) + 1, dtype=np.int64)
        code, _, start, end = _schedule(
            seq_r,
            seq_k,
            len(route),
            self._T,
            self._C,
            self._req,
            self._veh(v),
            self._load0(v),
            begin,
        )
        return Fail(int(code)), tuple(int(b) for b in begin[: len(route)]), int(start), int(end)

    def best(
        self, routes: tuple[tuple[Stop, ...], ...], r: int, vehicles: list[int] | None = None
    ) -> Insertion | NoInsertion:
        """The cheapest feasible insertion of request r over the given vehicles (default all)."""
        best: Insertion | None = None
        fails = dict.fromkeys(Fail, 0)
        candidates = range(len(self.problem.vehicles)) if vehicles is None else vehicles
        for v in candidates:
            route = routes[v]
            n_fixed = len(self.problem.vehicles[v].fixed)
            seq_r, seq_k = self._seq(route)
            cost, i, j, f = _best_insertion(
                seq_r,
                seq_k,
                len(route),
                n_fixed,
                r,
                self._T,
                self._C,
                self._req,
                self._veh(v),
                self._load0(v),
                self.wait_weight_pct,
            )
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
        return best


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
        order
        if order is not None
        else sorted(
            (r for r in range(len(problem.requests)) if r not in placed),
            key=lambda r: problem.requests[r].pickup_window[0],
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


def solution_from_routes(
    ins: Inserter, routes: tuple[tuple[Stop, ...], ...], unserved: tuple[int, ...] = ()
) -> Solution:
    """Schedule each route at earliest times into a Solution (infeasible routes keep code)."""
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
