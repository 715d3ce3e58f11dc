"""Insertion and its scheduler on hand-made problems."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.checker import violations
from routing.insertion import Fail, Inserter, Insertion, NoInsertion, insert_all
from routing.problem import RequestSpec, RoutingProblem, StopKind, VehicleSpec
from tests.helpers import random_routing_problem

P, D = StopKind.PICKUP, StopKind.DROPOFF
T = np.abs(np.subtract.outer(np.arange(6), np.arange(6))).astype(np.int64) * 100


def test_outbound_rider_is_picked_up_late_enough_for_the_ride_limit() -> None:
    """Drop-off window at 1000..1100, ride limit 250 s: the pickup must wait at the depot side
    rather than pick up at 100 s and ride for 900 s (Cordeau-Laporte slack)."""
    req = RequestSpec(
        pickup=1, dropoff=3, pickup_window=(0, 2000), dropoff_window=(1000, 1100), max_ride_s=250
    )
    p = RoutingProblem(T, (VehicleSpec(0, 0, 4, end=0),), (req,))
    code, times, start, _ = Inserter(p).schedule(0, ((0, P), (0, D)))
    assert code == Fail.OK
    assert times[1] == 1000 and times[1] - times[0] <= 250
    assert start == times[0] - 100  # the bus leaves as late as it can
    assert violations(p, insert_all(p)) == []


def test_cheapest_position_pools_on_the_way() -> None:
    """A rider from 2 to 4 joins a bus going 1 -> 5 between, not after it."""
    a = RequestSpec(pickup=1, dropoff=5, pickup_window=(0, 2000), key="a")
    b = RequestSpec(pickup=2, dropoff=4, pickup_window=(0, 2000), key="b")
    p = RoutingProblem(T, (VehicleSpec(0, 0, 4),), (a, b))
    ins = Inserter(p, wait_weight_pct=0)
    res = ins.best((((0, P), (0, D)),), 1)
    assert isinstance(res, Insertion)
    assert res.route == ((0, P), (1, P), (1, D), (0, D))
    assert res.cost == 0  # no extra driving


def test_fixed_first_stop_stays_first() -> None:
    a = RequestSpec(pickup=5, dropoff=4, pickup_window=(0, 5000), key="a")
    b = RequestSpec(pickup=1, dropoff=2, pickup_window=(0, 5000), key="b")
    free = RoutingProblem(T, (VehicleSpec(0, 0, 4),), (a, b))
    fixed = RoutingProblem(T, (VehicleSpec(0, 0, 4, fixed=((0, P),)),), (a, b))
    route = (((0, P), (0, D)),)
    assert Inserter(free).best(route, 1).route[0] == (1, P)  # type: ignore[union-attr]
    assert Inserter(fixed).best(route, 1).route[0] == (0, P)  # type: ignore[union-attr]


def test_reasons_are_counted() -> None:
    big = RequestSpec(pickup=1, dropoff=2, pickup_window=(0, 5000), seats=5)
    p = RoutingProblem(T, (VehicleSpec(0, 0, 4),), (big,))
    res = Inserter(p).best(((),), 0)
    assert isinstance(res, NoInsertion) and res.main_reason == Fail.SEATS
    far = RequestSpec(pickup=5, dropoff=4, pickup_window=(0, 100))
    p2 = RoutingProblem(T, (VehicleSpec(0, 0, 4),), (far,))
    res2 = Inserter(p2).best(((),), 0)
    assert isinstance(res2, NoInsertion) and res2.main_reason == Fail.WINDOW


def _brute_force(ins: Inserter, routes, r: int, weight: int):
    """Every candidate scheduled in Python: (best (cost, vehicle, route)) and the fail counts."""
    p = ins.problem

    def arc_cost(v: int, route) -> int:
        locs = [p.vehicles[v].start, *(p.location(s) for s in route)]
        end = p.vehicles[v].end
        if end is not None:
            locs.append(end)
        return sum(int(p.arc_cost[a, b]) for a, b in itertools.pairwise(locs))

    best = None
    fails = dict.fromkeys(Fail, 0)
    for v, route in enumerate(routes):
        base = arc_cost(v, route)
        n = len(route)
        for i in range(len(p.vehicles[v].fixed), n + 1):
            for j in range(i + 1, n + 2):
                new = list(route)
                new.insert(i, (r, P))
                new.insert(j, (r, D))
                code, times, _, _ = ins.schedule(v, tuple(new))
                if code != Fail.OK:
                    fails[code] += 1
                    continue
                cost = (arc_cost(v, new) - base) * 100
                cost += weight * (times[i] - p.requests[r].pickup_window[0])
                if best is None or cost < best[0]:
                    best = (cost, v, tuple(new))
    return best, fails


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.integers(2, 9), st.integers(1, 3))
def test_best_insertion_equals_brute_force(seed: int, n_requests: int, n_vehicles: int) -> None:
    """The kernel tells some candidates apart without scheduling them; its best position and
    its count of reasons must be exactly those of scheduling every candidate."""
    rng = np.random.default_rng(seed)
    p = random_routing_problem(rng, n_requests + 1, n_vehicles)
    new = n_requests  # the last request is the one to insert
    built = insert_all(p, order=list(range(n_requests)))
    weight = int(rng.integers(0, 50))
    ins = Inserter(p, wait_weight_pct=weight)
    routes = built.routes
    if rng.random() < 0.3:  # also a route that is infeasible as it stands (no pruning)
        routes = (tuple(reversed(routes[0])), *routes[1:])
    expected, fails = _brute_force(ins, routes, new, weight)
    got = ins.best(routes, new)
    assert got.fails == fails
    if expected is None:
        assert isinstance(got, NoInsertion)
    else:
        assert isinstance(got, Insertion)
        assert (got.cost, got.vehicle, got.route) == expected
