"""Re-optimisation with OR-Tools pickup-and-delivery: the only ortools import.

The model: one start and one end node per vehicle (an open end costs nothing to reach), a pickup
and a dropoff node per request (only the dropoff for a rider already on board, bound to that
bus). Time is a dimension with waiting allowed; windows, ride-time limits (``B(d) - B(p) -
service(p) <= L``), shift end and route duration are hard; seats and wheelchair places are two
capacity dimensions starting at the bus's on-board load; fixed stops are chained right after the
start. Optional requests sit in a disjunction with their penalty; required ones must be served.

Travel times and arc costs go in as matrices (no Python callbacks in the search). The solver is
warm-started from a given solution (the front door, :func:`routing.solver.solve`, gives it the
best one found before); the returned times are the earliest feasible begin-of-service times of
the final assignment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from routing.problem import NO_LIMIT, RoutingProblem, Solution, Stop, StopKind

#: Cost of leaving a required request out while searching: above any route's cost.
REQUIRED_PENALTY = 10**12

FIRST_SOLUTION = tuple(routing_enums_pb2.FirstSolutionStrategy.Value.keys())
METAHEURISTICS = tuple(routing_enums_pb2.LocalSearchMetaheuristic.Value.keys())


@dataclass(frozen=True)
class OrToolsParams:
    """Settings of one OR-Tools search, validated on construction.

    - ``time_limit_s``: wall-clock limit of one solve (default 2 s for live re-optimisation).
    - ``first_solution``: OR-Tools first-solution strategy, used when there is no warm start
      or it is rejected (default PARALLEL_CHEAPEST_INSERTION).
    - ``metaheuristic``: local-search metaheuristic (default GUIDED_LOCAL_SEARCH).
    - ``use_warm_start``: start from the given solution if there is one.
    - ``soft_required``: required requests sit in a disjunction with a prohibitive penalty, so
      the search may start from a partial solution and work the rest in; a result that still
      leaves a required request out is refused (``solve`` returns None).
    - ``solution_limit``: stop after this many solutions (None: only the time limit). Makes a
      solve reproducible run to run (the simulator and tests use it); the time limit stays a
      safety cap.
    - ``isolated``: run the solve in a child process (:mod:`routing.isolated`). OR-Tools holds
      the interpreter lock for its whole solve; the live service sets this so that a round does
      not stall the riders' requests in the same process. Same answer, plus a pickle each way.
    """

    time_limit_s: float = 2.0
    first_solution: str = "PARALLEL_CHEAPEST_INSERTION"
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    use_warm_start: bool = True
    soft_required: bool = True
    solution_limit: int | None = None
    isolated: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.time_limit_s <= 3600:
            raise ValueError(f"time_limit_s must be in (0, 3600], got {self.time_limit_s}")
        if self.first_solution not in FIRST_SOLUTION:
            raise ValueError(f"first_solution must be one of {FIRST_SOLUTION}")
        if self.metaheuristic not in METAHEURISTICS:
            raise ValueError(f"metaheuristic must be one of {METAHEURISTICS}")
        if self.solution_limit is not None and self.solution_limit < 1:
            raise ValueError(f"solution_limit must be >= 1, got {self.solution_limit}")


class _Model:
    """Node layout: [starts (V)] [ends (V)] [per request: pickup?, dropoff]."""

    def __init__(self, problem: RoutingProblem) -> None:
        self.problem = problem
        nv = len(problem.vehicles)
        self.loc: list[int] = [v.start for v in problem.vehicles]
        self.loc += [-1 if v.end is None else v.end for v in problem.vehicles]
        self.service: list[int] = [0] * (2 * nv)
        self.stop_of: list[Stop | None] = [None] * (2 * nv)
        self.node_of: dict[Stop, int] = {}
        for r, req in enumerate(problem.requests):
            kinds = [StopKind.DROPOFF] if req.onboard_vehicle is not None else list(StopKind)
            for kind in kinds:
                self.node_of[(r, kind)] = len(self.loc)
                self.stop_of.append((r, kind))
                self.loc.append(req.pickup if kind == StopKind.PICKUP else req.dropoff)
                self.service.append(
                    req.pickup_service_s if kind == StopKind.PICKUP else req.dropoff_service_s
                )
        n = len(self.loc)
        loc = np.array(self.loc)
        open_end = loc < 0
        safe = np.where(open_end, 0, loc)
        travel = problem.time_s[np.ix_(safe, safe)].astype(np.int64)
        cost = problem.arc_cost[np.ix_(safe, safe)].astype(np.int64)
        travel[:, open_end] = 0
        cost[:, open_end] = 0
        self.transit = travel + np.array(self.service, dtype=np.int64)[:, None]
        self.cost = cost
        self.n = n


def solve(
    problem: RoutingProblem,
    params: OrToolsParams,
    warm_start: Solution | None = None,
    *,
    vehicle_fixed_cost: int = 0,
) -> Solution | None:
    """Solve with OR-Tools from ``warm_start`` (if given and ``use_warm_start``); None if no
    solution was found within the limits. ``vehicle_fixed_cost``: the cost of using a bus."""
    started = time.perf_counter()
    m = _Model(problem)
    nv = len(problem.vehicles)
    manager = pywrapcp.RoutingIndexManager(m.n, nv, list(range(nv)), list(range(nv, 2 * nv)))
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()

    transit_cb = routing.RegisterTransitMatrix(m.transit.tolist())
    cost_cb = routing.RegisterTransitMatrix(m.cost.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    if vehicle_fixed_cost:
        routing.SetFixedCostOfAllVehicles(vehicle_fixed_cost)

    horizon = _horizon(problem)
    routing.AddDimension(transit_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")

    _add_load(
        routing,
        manager,
        m,
        problem,
        "seats",
        lambda r: r.seats,
        [v.seats for v in problem.vehicles],
    )
    if any(r.wheelchairs for r in problem.requests):
        _add_load(
            routing,
            manager,
            m,
            problem,
            "wheelchairs",
            lambda r: r.wheelchairs,
            [v.wheelchairs for v in problem.vehicles],
        )

    for v, spec in enumerate(problem.vehicles):
        start, end = routing.Start(v), routing.End(v)
        tdim.CumulVar(start).SetRange(spec.start_s, horizon)
        if spec.end_latest_s < NO_LIMIT:
            tdim.CumulVar(end).SetMax(spec.end_latest_s)
        if spec.max_duration_s < NO_LIMIT:
            tdim.SetSpanUpperBoundForVehicle(spec.max_duration_s, v)
        prev = start
        for stop in spec.fixed:
            nxt = manager.NodeToIndex(m.node_of[stop])
            routing.NextVar(prev).SetValue(nxt)
            prev = nxt
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(end))
        routing.AddVariableMaximizedByFinalizer(tdim.CumulVar(start))

    for r, req in enumerate(problem.requests):
        d = manager.NodeToIndex(m.node_of[(r, StopKind.DROPOFF)])
        dl = req.dropoff_window[1]
        if req.onboard_vehicle is not None:
            assert req.picked_up_s is not None
            if req.max_ride_s < NO_LIMIT:
                dl = min(dl, req.picked_up_s + req.pickup_service_s + req.max_ride_s)
            tdim.CumulVar(d).SetRange(req.dropoff_window[0], dl)
            routing.VehicleVar(d).SetValues([req.onboard_vehicle])
            continue
        p = manager.NodeToIndex(m.node_of[(r, StopKind.PICKUP)])
        tdim.CumulVar(p).SetRange(*req.pickup_window)
        tdim.CumulVar(d).SetRange(req.dropoff_window[0], dl)
        routing.AddPickupAndDelivery(p, d)
        solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
        solver.Add(tdim.CumulVar(p) <= tdim.CumulVar(d))
        if req.max_ride_s < NO_LIMIT:
            solver.Add(tdim.CumulVar(d) - tdim.CumulVar(p) <= req.pickup_service_s + req.max_ride_s)
        if not req.required or params.soft_required:
            penalty = REQUIRED_PENALTY if req.required else max(1, req.penalty)
            routing.AddDisjunction([p], penalty)
            routing.AddDisjunction([d], 0)
    for node in range(2 * nv, m.n):
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(manager.NodeToIndex(node)))

    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, params.first_solution
    )
    search.local_search_metaheuristic = getattr(
        routing_enums_pb2.LocalSearchMetaheuristic, params.metaheuristic
    )
    left_s = params.time_limit_s - (time.perf_counter() - started)
    search.time_limit.FromMilliseconds(max(1, int(left_s * 1000)))
    if params.solution_limit is not None:
        search.solution_limit = params.solution_limit

    assignment = None
    used_warm = False
    if warm_start is not None and params.use_warm_start:
        routing.CloseModelWithParameters(search)
        routes = [[manager.NodeToIndex(m.node_of[s]) for s in route] for route in warm_start.routes]
        initial = routing.ReadAssignmentFromRoutes(routes, True)
        if initial is not None:
            used_warm = True
            assignment = routing.SolveFromAssignmentWithParameters(initial, search)
    if assignment is None:
        assignment = routing.SolveWithParameters(search)
    if assignment is None:
        return None
    return _extract(problem, m, manager, routing, tdim, assignment, started, used_warm)


def _add_load(
    routing,
    manager,
    m: _Model,
    problem: RoutingProblem,
    name: str,
    amount,
    caps: list[int],
) -> None:
    demand = [0] * m.n
    for node, stop in enumerate(m.stop_of):
        if stop is not None:
            q = amount(problem.requests[stop[0]])
            demand[node] = q if stop[1] == StopKind.PICKUP else -q
    cb = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(cb, 0, caps, False, name)
    dim = routing.GetDimensionOrDie(name)
    for v in range(len(problem.vehicles)):
        load0 = sum(amount(problem.requests[r]) for r in problem.onboard(v))
        dim.CumulVar(routing.Start(v)).SetValue(load0)


def _horizon(problem: RoutingProblem) -> int:
    bounds = [v.start_s for v in problem.vehicles]
    for r in problem.requests:
        bounds += [b for b in (*r.pickup_window, *r.dropoff_window) if b < NO_LIMIT]
    bounds += [v.end_latest_s for v in problem.vehicles if v.end_latest_s < NO_LIMIT]
    slack = int(problem.time_s.max(initial=0)) * 4 + sum(
        r.pickup_service_s + r.dropoff_service_s for r in problem.requests
    )
    return int(max(bounds, default=0) + slack + 1)


def _extract(problem, m, manager, routing, tdim, assignment, started, used_warm) -> Solution:
    routes, times, starts, ends = [], [], [], []
    served: set[int] = set()
    for v in range(len(problem.vehicles)):
        idx = assignment.Value(routing.NextVar(routing.Start(v)))
        route, t = [], []
        while not routing.IsEnd(idx):
            stop = m.stop_of[manager.IndexToNode(idx)]
            route.append(stop)
            served.add(stop[0])
            t.append(int(assignment.Min(tdim.CumulVar(idx))))
            idx = assignment.Value(routing.NextVar(idx))
        routes.append(tuple(route))
        times.append(tuple(t))
        starts.append(int(assignment.Min(tdim.CumulVar(routing.Start(v)))))
        ends.append(int(assignment.Min(tdim.CumulVar(routing.End(v)))))
    # The departure may be as late as the first stop allows; the checker wants a consistent one.
    starts = [
        max(s, t[0] - int(problem.time_s[problem.vehicles[v].start, problem.location(r[0])]))
        if r
        else s
        for v, (s, t, r) in enumerate(zip(starts, times, routes, strict=True))
    ]
    unserved = tuple(r for r in range(len(problem.requests)) if r not in served)
    return Solution(
        routes=tuple(routes),
        times=tuple(times),
        start_times=tuple(starts),
        end_times=tuple(ends),
        unserved=unserved,
        info={
            "objective": assignment.ObjectiveValue(),
            "warm_start": used_warm,
            "seconds": time.perf_counter() - started,
        },
    )
