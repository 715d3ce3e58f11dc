"""The front door of routing: insertion, then ruin and recreate, then OR-Tools, the best kept."""

from __future__ import annotations

import numpy as np
import pytest

from routing.checker import violations
from routing.insertion import insert_all
from routing.lns import LnsParams
from routing.ortools_pdp import OrToolsParams
from routing.problem import RequestSpec, RoutingProblem, Solution, StopKind, VehicleSpec
from routing.solver import InsertionParams, SolveParams, rank, routes_ok, solve
from tests.helpers import paired_requests

RNG = np.random.default_rng(5)
XY = RNG.random((24, 2)) * 1000
T = np.rint(np.hypot(*(XY[:, None, :] - XY[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
STEPS = LnsParams(time_limit_s=None, max_steps=300)
FEW = OrToolsParams(time_limit_s=30.0, solution_limit=30)


def _problem(n: int, *, required: bool = True, seats: int = 3) -> RoutingProblem:
    reqs = paired_requests(n, required=required, spacing_s=120)
    vehicles = tuple(VehicleSpec(0, 0, seats, end=0, end_latest_s=9000) for _ in range(3))
    return RoutingProblem(T, vehicles, reqs)


def test_every_search_in_turn_is_feasible_and_never_worse_than_insertion() -> None:
    p = _problem(10)
    start = insert_all(p)
    sol = solve(p, SolveParams(lns=STEPS, ortools=FEW))
    assert sol is not None and violations(p, sol) == [] and not sol.unserved
    assert rank(p, sol) <= rank(p, start)
    assert sol.info["lns_steps"] == 300


def test_search_with_step_limits_alone_is_reproducible() -> None:
    """Insertion and a step-limited ruin and recreate, no OR-Tools: the same answer twice."""
    params = SolveParams(lns=STEPS, ortools=None)
    a, b = solve(_problem(10), params), solve(_problem(10), params)
    assert a is not None and b is not None and a.routes == b.routes


def test_a_required_request_that_fits_nowhere_gives_none() -> None:
    """One 1-seat bus cannot keep all these windows: optional requests are left out, but a
    night where every one is required has no solution."""
    one_bus = (VehicleSpec(0, 0, 1, end=0, end_latest_s=2500),)
    opt = RoutingProblem(T, one_bus, _problem(8, required=False).requests)
    sol = solve(opt, SolveParams(lns=STEPS, ortools=FEW))
    assert sol is not None and violations(opt, sol) == [] and 0 < len(sol.unserved) < 8
    req = RoutingProblem(T, one_bus, _problem(8, required=True).requests)
    assert solve(req, SolveParams(lns=STEPS, ortools=FEW)) is None


def test_a_start_that_breaks_a_rule_is_not_used() -> None:
    """A start with a drop-off before its pickup is no warm start: the search starts afresh
    and its answer keeps every rule."""
    p = _problem(3)
    bad = Solution(
        routes=(((0, StopKind.DROPOFF), (0, StopKind.PICKUP)), (), ()),
        times=((0, 0), (), ()),
        start_times=(0, 0, 0),
        end_times=(0, 0, 0),
        unserved=(1, 2),
    )
    assert not routes_ok(p, bad)
    sol = solve(p, SolveParams(ortools=FEW), start=bad)
    assert sol is not None and violations(p, sol) == [] and not sol.unserved


def test_fewer_buses_with_a_cost_per_bus() -> None:
    """Wide windows and a prohibitive cost per bus: every rider ends up in one bus."""
    reqs = tuple(
        RequestSpec(2 + 2 * k, 3 + 2 * k, (0, 20_000), (0, 40_000), max_ride_s=30_000, key=str(k))
        for k in range(5)
    )
    vehicles = tuple(VehicleSpec(0, 0, 8, end=0, end_latest_s=50_000) for _ in range(5))
    p = RoutingProblem(T, vehicles, reqs)
    params = SolveParams(
        insertion=InsertionParams(tries=1),
        lns=LnsParams(time_limit_s=None, max_steps=2000),
        ortools=None,
        vehicle_fixed_cost=10**6,
    )
    sol = solve(p, params)
    assert sol is not None and violations(p, sol) == []
    assert sum(1 for route in sol.routes if route) == 1


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SolveParams(vehicle_fixed_cost=-1), "vehicle_fixed_cost"),
        (lambda: SolveParams(time_limit_s=0), "time_limit_s"),
        (lambda: InsertionParams(tries=0), "tries"),
        (lambda: InsertionParams(wait_weight_pct=-5), "wait_weight_pct"),
    ],
)
def test_solve_params_are_validated(make, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()
