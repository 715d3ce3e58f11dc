"""Insertion and its scheduler on hand-made problems."""

from __future__ import annotations

import numpy as np

from routing.checker import violations
from routing.insertion import Fail, Inserter, Insertion, NoInsertion, insert_all
from routing.problem import RequestSpec, RoutingProblem, StopKind, VehicleSpec

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
