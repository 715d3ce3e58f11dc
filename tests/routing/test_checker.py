"""The independent checker flags every kind of broken rule on hand-made solutions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from routing.checker import assert_feasible, violations
from routing.problem import RequestSpec, RoutingProblem, Solution, StopKind, VehicleSpec

P, D = StopKind.PICKUP, StopKind.DROPOFF
# Locations 0..3 on a line, 100 s apart.
T = np.abs(np.subtract.outer(np.arange(4), np.arange(4))).astype(np.int64) * 100


def _problem(**req_kw: Any) -> RoutingProblem:
    kw: dict[str, Any] = {
        "pickup": 1,
        "dropoff": 3,
        "pickup_window": (0, 1000),
        "max_ride_s": 500,
        "pickup_service_s": 10,
        "dropoff_service_s": 10,
        "seats": 2,
    }
    kw.update(req_kw)
    return RoutingProblem(
        time_s=T,
        vehicles=(
            VehicleSpec(start=0, start_s=0, seats=2, wheelchairs=0, end=0, end_latest_s=2000),
        ),
        requests=(RequestSpec(**kw),),
    )


def _sol(times=(100, 310), end=620, start=0, route=((0, P), (0, D))) -> Solution:
    return Solution(
        routes=(tuple(route),), times=(tuple(times),), start_times=(start,), end_times=(end,)
    )


def test_a_correct_solution_passes() -> None:
    assert violations(_problem(), _sol()) == []
    assert_feasible(_problem(), _sol())


@pytest.mark.parametrize(
    ("problem_kw", "sol_kw", "needle"),
    [
        ({}, {"times": (50, 310)}, "before the bus can arrive"),
        ({"pickup_window": (200, 300)}, {"times": (100, 310)}, "outside its window"),
        ({"max_ride_s": 150}, {}, "ride time 200 s exceeds 150 s"),
        ({"seats": 3}, {}, "3 seated riders exceed 2 seats"),
        ({"wheelchairs": 1, "seats": 1}, {}, "1 wheelchairs exceed 0 places"),
        ({}, {"end": 500}, "before it can reach its end"),
        ({}, {"route": ((0, D), (0, P)), "times": (300, 500)}, "dropped off before"),
        ({}, {"route": ((0, P),), "times": (100,)}, "only its pickup"),
        ({}, {"route": (), "times": ()}, "is not served"),
    ],
)
def test_each_broken_rule_is_named(problem_kw, sol_kw, needle) -> None:
    bad = violations(_problem(**problem_kw), _sol(**sol_kw))
    assert any(needle in line for line in bad), bad
    with pytest.raises(AssertionError, match="infeasible"):
        assert_feasible(_problem(**problem_kw), _sol(**sol_kw))


def test_shift_end_and_duration() -> None:
    p = _problem()
    late = RoutingProblem(T, (VehicleSpec(0, 0, 2, 0, end=0, end_latest_s=600),), p.requests)
    assert any("after its shift end" in v for v in violations(late, _sol()))
    short = RoutingProblem(T, (VehicleSpec(0, 0, 2, 0, end=0, max_duration_s=300),), p.requests)
    assert any("route lasts" in v for v in violations(short, _sol()))


def test_rider_on_board_must_be_dropped_by_their_bus() -> None:
    onboard = RequestSpec(
        pickup=1, dropoff=3, pickup_window=(0, 1000), seats=1, onboard_vehicle=0, picked_up_s=0
    )
    p = RoutingProblem(T, (VehicleSpec(0, 0, 2, 0), VehicleSpec(0, 0, 2, 0)), (onboard,))
    wrong_bus = Solution(
        routes=((), ((0, D),)), times=((), (300,)), start_times=(0, 0), end_times=(0, 300)
    )
    assert any("not dropped by it" in v for v in violations(p, wrong_bus))
    right = Solution(
        routes=(((0, D),), ()), times=((300,), ()), start_times=(0, 0), end_times=(300, 0)
    )
    assert violations(p, right) == []


def test_fixed_stops_must_come_first() -> None:
    p = _problem()
    fixed = RoutingProblem(T, (VehicleSpec(0, 0, 2, 0, end=0, fixed=((0, D),)),), p.requests)
    assert any("fixed stops" in v for v in violations(fixed, _sol()))
