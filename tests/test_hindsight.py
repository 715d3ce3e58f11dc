"""The hindsight bound: on small nights its static solve equals brute force."""

from __future__ import annotations

import itertools
import random

import pytest

from dispatch.policies import ServicePolicy
from nachtbus.billing.co2 import Co2Params
from routing.insertion import Fail, Inserter
from routing.problem import RoutingProblem, StopKind
from simulations.hindsight import HindsightParams, HindsightRequest, build, kpis, solve_night
from tests.helpers import bus, grid_town, request

NOW = 21 * 3600
TIMES = grid_town()
POLICY = ServicePolicy(
    max_wait_s=300, prebook_window_s=300, detour_alpha=1.3, detour_beta_s=60, plan_buffer_s=0
)


def _orders(reqs: list[int]) -> list[tuple[tuple[int, StopKind], ...]]:
    """Every order of these requests' stops with each pickup before its drop-off."""
    out: list[tuple[tuple[int, StopKind], ...]] = []

    def extend(prefix: tuple[tuple[int, StopKind], ...], waiting: set[int], on: set[int]) -> None:
        if not waiting and not on:
            out.append(prefix)
            return
        for r in sorted(waiting):
            extend((*prefix, (r, StopKind.PICKUP)), waiting - {r}, on | {r})
        for r in sorted(on):
            extend((*prefix, (r, StopKind.DROPOFF)), waiting, on - {r})

    extend((), set(reqs), set())
    return out


def _route_cost(p: RoutingProblem, v: int, route) -> int:
    if not route:
        return 0
    spec, loc, total = p.vehicles[v], p.vehicles[v].start, 0
    for stop in route:
        total += int(p.time_s[loc, p.location(stop)])
        loc = p.location(stop)
    return total + int(p.time_s[loc, spec.end])


def _brute_force(p: RoutingProblem) -> tuple[int, int]:
    """(left out, drive seconds) of the best of every assignment and every stop order."""
    ins = Inserter(p)
    n, nv = len(p.requests), len(p.vehicles)
    best_route: dict[tuple[int, tuple[int, ...]], int | None] = {}

    def best_for(v: int, reqs: tuple[int, ...]) -> int | None:
        key = (v, reqs)
        if key not in best_route:
            costs = [
                _route_cost(p, v, route)
                for route in (_orders(list(reqs)) if reqs else [()])
                if ins.schedule(v, tuple(route))[0] == Fail.OK
            ]
            best_route[key] = min(costs) if costs else None
        return best_route[key]

    best = (n + 1, 0)
    for assign in itertools.product(range(-1, nv), repeat=n):
        total, ok = 0, True
        for v in range(nv):
            c = best_for(v, tuple(r for r in range(n) if assign[r] == v))
            if c is None:
                ok = False
                break
            total += c
        if ok:
            best = min(best, (sum(1 for a in assign if a < 0), total))
    return best


def _night(seed: int, n: int) -> list[HindsightRequest]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(range(25), 2)
        asked = NOW + rng.randrange(0, 360, 60)
        at = asked + 1200 if rng.random() < 0.3 else None
        r = request(f"r{i}", a, b, asked, at=at, passengers=rng.choice((1, 2, 2)))
        out.append(HindsightRequest(r.request_id, r, asked, "Nord" if a < 12 else "Süd"))
    return out


@pytest.mark.parametrize("seed", [1, 3, 6])
def test_the_hindsight_solve_of_a_small_night_equals_brute_force(seed: int) -> None:
    vehicles = [bus("A", seats=2, shift=(NOW, NOW + 3 * 3600)), bus("B", seats=2, depot=24)]
    night = build(TIMES, POLICY, vehicles, NOW, _night(seed, 5))
    assert len(night.problem.requests) == 5 and not night.refused
    sol = solve_night(night, HindsightParams(seconds=60, max_steps=3000, seed=seed))
    left_out, cost = _brute_force(night.problem)
    assert (len(sol.unserved), sol.total_cost(night.problem)) == (left_out, cost)
    k = kpis(night, sol, TIMES, Co2Params())
    assert k["served"] == 5 - left_out and k["planned"] == 5
    assert sum(d["served"] for d in k["districts"].values()) == k["served"]
    # every leg of the bound's plan is a road distance between stops; none is counted twice
    assert k["vehicle_km"] >= k["empty_km"] >= 0


def test_a_request_the_rules_refuse_is_left_out_of_the_bound_with_its_rule() -> None:
    short = request("short", 0, 0, NOW)
    night = build(TIMES, POLICY, [bus("A")], NOW, [HindsightRequest("short", short, NOW, "Nord")])
    assert night.refused == {"short": "trip_too_short"}
    assert night.problem.requests == ()


def test_a_night_with_nothing_to_plan_has_an_empty_bound() -> None:
    """A night nobody asked, or whose every request the rules refuse: the bound serves
    nobody and drives nowhere (the search once failed on the empty problem)."""
    short = request("short", 0, 0, NOW)
    for asked in ([], [HindsightRequest("short", short, NOW, "Nord")]):
        night = build(TIMES, POLICY, [bus("A"), bus("B", depot=24)], NOW, asked)
        sol = solve_night(night, HindsightParams(seconds=5, max_steps=200))
        assert sol.routes == ((), ()) and sol.unserved == ()
        k = kpis(night, sol, TIMES, Co2Params())
        assert (k["planned"], k["served"], k["vehicle_km"]) == (0, 0, 0)
        assert k["bus_km_per_direct_km"] is None and k["served_share"] is None


def test_a_rider_who_cancels_rides_in_the_bound_only_if_picked_up_before() -> None:
    """Cancelling before the window opens: not in the bound; cancelling inside it: the window
    ends just before the cancellation."""
    early = request("early", 0, 12, NOW, at=NOW + 1800)
    late = request("late", 0, 12, NOW)
    night = build(
        TIMES,
        POLICY,
        [bus("A")],
        NOW,
        [
            HindsightRequest("early", early, NOW, "Nord", cancel_at_s=NOW + 600),
            HindsightRequest("late", late, NOW, "Nord", cancel_at_s=NOW + 120),
        ],
    )
    assert night.refused == {"early": "cancelled"}
    (spec,) = night.problem.requests
    assert spec.key == "late" and spec.pickup_window == (NOW, NOW + 119)


def test_a_rider_who_must_arrive_by_a_time_keeps_that_promise_in_the_bound() -> None:
    """Asked soon before it must arrive (a rider to a train): the bound's windows are the
    online ones, ending with the asked arrival, not the wait's window after it."""
    r = request("train", 0, 12, NOW)
    direct = int(TIMES.times_s([r.origin.node, r.destination.node])[0, 1])
    arrive = NOW + direct + 120
    free = build(TIMES, POLICY, [bus("A")], NOW, [HindsightRequest("train", r, NOW, "Nord")])
    night = build(
        TIMES,
        POLICY,
        [bus("A")],
        NOW,
        [HindsightRequest("train", r, NOW, "Nord", arrive_by_s=arrive)],
    )
    (loose,), (spec,) = free.problem.requests, night.problem.requests
    assert loose.pickup_window[1] + loose.max_ride_s > arrive  # the wait's window: too late
    assert spec.pickup_window[0] == NOW
    assert spec.pickup_window[1] + spec.max_ride_s <= arrive and spec.dropoff_window[1] <= arrive
