"""An independent feasibility checker for RoutingProblem solutions.

Written apart from both solvers on purpose: it trusts nothing a solver says except the routes and
the times it claims, and re-derives every constraint from the problem. Every test and benchmark
result goes through :func:`violations`.
"""

from __future__ import annotations

from routing.problem import RoutingProblem, Solution, StopKind


def violations(problem: RoutingProblem, sol: Solution, tolerance: float = 0) -> list[str]:
    """Every broken rule, as readable lines; an empty list means feasible.

    ``tolerance`` forgives time comparisons that far off (for re-checks in floating point).
    """
    out: list[str] = []
    nv, nr = len(problem.vehicles), len(problem.requests)
    if not (len(sol.routes) == len(sol.times) == len(sol.start_times) == len(sol.end_times) == nv):
        return [f"solution has per-vehicle lists of the wrong length (expected {nv} vehicles)"]

    seen: dict[tuple[int, StopKind], tuple[int, int]] = {}
    for v, route in enumerate(sol.routes):
        if len(route) != len(sol.times[v]):
            out.append(f"vehicle {v}: {len(route)} stops but {len(sol.times[v])} times")
            continue
        for pos, (r, kind) in enumerate(route):
            if not 0 <= r < nr:
                out.append(f"vehicle {v}: unknown request {r}")
                continue
            if (r, kind) in seen:
                out.append(f"request {r} {kind.name} visited twice")
            seen[(r, kind)] = (v, pos)
    if out:
        return out

    unserved = set(sol.unserved)
    for r, req in enumerate(problem.requests):
        has_p, has_d = (r, StopKind.PICKUP) in seen, (r, StopKind.DROPOFF) in seen
        if req.onboard_vehicle is not None:
            if has_p:
                out.append(f"request {r} is on board but its pickup is routed again")
            if not has_d or seen[(r, StopKind.DROPOFF)][0] != req.onboard_vehicle:
                out.append(
                    f"request {r} on board vehicle {req.onboard_vehicle} is not dropped by it"
                )
            continue
        if has_p != has_d:
            out.append(f"request {r} has only its {'pickup' if has_p else 'dropoff'} routed")
        elif has_p:
            (vp, pp), (vd, pd) = seen[(r, StopKind.PICKUP)], seen[(r, StopKind.DROPOFF)]
            if vp != vd:
                out.append(f"request {r} picked up by vehicle {vp} but dropped by {vd}")
            elif pp >= pd:
                out.append(f"request {r} dropped off before it is picked up")
            if r in unserved:
                out.append(f"request {r} is routed and also listed unserved")
        elif req.required:
            out.append(f"required request {r} ({req.key}) is not served")
        elif r not in unserved:
            out.append(f"request {r} is neither routed nor listed unserved")

    for v in range(nv):
        out.extend(_check_route(problem, sol, v, tolerance))
    return out


def _check_route(problem: RoutingProblem, sol: Solution, v: int, tol: float) -> list[str]:
    out: list[str] = []
    spec = problem.vehicles[v]
    route, times = sol.routes[v], sol.times[v]
    t_mat = problem.time_s
    if tuple(route[: len(spec.fixed)]) != tuple(spec.fixed):
        out.append(f"vehicle {v}: fixed stops {list(spec.fixed)} are not first in order")
    start = sol.start_times[v]
    if start < spec.start_s - tol:
        out.append(f"vehicle {v}: departs at {start}, before it is free at {spec.start_s}")
    seats = sum(problem.requests[r].seats for r in problem.onboard(v))
    wheel = sum(problem.requests[r].wheelchairs for r in problem.onboard(v))
    if seats > spec.seats or wheel > spec.wheelchairs:
        out.append(f"vehicle {v}: over capacity at the start")
    loc, ready = spec.start, start
    begun: dict[int, int] = {}
    for (r, kind), b in zip(route, times, strict=True):
        req = problem.requests[r]
        nxt = req.pickup if kind == StopKind.PICKUP else req.dropoff
        arrive = ready + t_mat[loc, nxt]
        what = f"vehicle {v}: request {r} ({req.key}) {kind.name.lower()}"
        if b < arrive - tol:
            out.append(f"{what} begins at {b}, before the bus can arrive at {arrive}")
        lo, hi = req.pickup_window if kind == StopKind.PICKUP else req.dropoff_window
        if not lo - tol <= b <= hi + tol:
            out.append(f"{what} at {b} is outside its window {lo}..{hi}")
        if kind == StopKind.PICKUP:
            begun[r] = b
            seats += req.seats
            wheel += req.wheelchairs
            service = req.pickup_service_s
        else:
            picked = req.picked_up_s if req.onboard_vehicle is not None else begun.get(r)
            if picked is not None:
                ride = b - (picked + req.pickup_service_s)
                if ride > req.max_ride_s + tol:
                    out.append(f"{what}: ride time {ride} s exceeds {req.max_ride_s} s")
            seats -= req.seats
            wheel -= req.wheelchairs
            service = req.dropoff_service_s
        if seats > spec.seats:
            out.append(f"{what}: {seats} seated riders exceed {spec.seats} seats")
        if wheel > spec.wheelchairs:
            out.append(f"{what}: {wheel} wheelchairs exceed {spec.wheelchairs} places")
        loc, ready = nxt, b + service
    end = sol.end_times[v]
    if spec.end is not None:
        arrive = ready + t_mat[loc, spec.end]
        if end < arrive - tol:
            out.append(f"vehicle {v}: ends at {end}, before it can reach its end at {arrive}")
    elif end < ready - tol:
        out.append(f"vehicle {v}: ends at {end}, before its last stop is done at {ready}")
    if route or spec.end is not None:
        if end > spec.end_latest_s + tol:
            out.append(f"vehicle {v}: ends at {end}, after its shift end {spec.end_latest_s}")
        if end - start > spec.max_duration_s + tol:
            out.append(f"vehicle {v}: route lasts {end - start} s, over {spec.max_duration_s} s")
    return out


def assert_feasible(problem: RoutingProblem, sol: Solution) -> None:
    """Raise AssertionError listing every violation (for tests and benchmarks)."""
    bad = violations(problem, sol)
    if bad:
        raise AssertionError("infeasible solution:\n  " + "\n  ".join(bad[:20]))
