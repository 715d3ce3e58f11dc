"""The front door of routing: ``solve(problem, params)`` runs the searches that ``params`` asks
for, in order, and returns the best solution they found.

1. **Cheapest insertion** (:mod:`routing.insertion`), in several request orders, builds a start,
   unless the caller brings one (e.g. the buses' current plans).
2. **Ruin and recreate** (:mod:`routing.lns`), if ``params.lns`` is set, improves it.
3. **OR-Tools** (:mod:`routing.ortools_pdp`), if ``params.ortools`` is set, starts from the best
   so far.

The best is ranked by (requests left out, cost including ``vehicle_fixed_cost`` per bus used).
A start whose routes break a rule is not used to warm-start a search. None is returned when
no solution serves every required request.

Each search has its own validated params with its own limits; ``time_limit_s`` caps the whole
call (each search gets at most what is left of it). With step and solution limits instead of
wall-clock ones, a solve is reproducible on any machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from routing.checker import violations
from routing.insertion import insert_best_of
from routing.isolated import run_isolated
from routing.lns import LnsParams, improve
from routing.ortools_pdp import OrToolsParams
from routing.ortools_pdp import solve as ortools_solve
from routing.problem import RoutingProblem, Solution


@dataclass(frozen=True)
class InsertionParams:
    """Cheapest insertion as the start: ``tries`` request orders (the first by when service
    must begin, the others seeded shuffles, stopping once nothing is left out), a weight on the
    new rider's wait (per cent of a second of driving)."""

    tries: int = 30
    seed: int = 0
    wait_weight_pct: int = 20

    def __post_init__(self) -> None:
        if self.tries < 1:
            raise ValueError(f"tries must be >= 1, got {self.tries}")
        if self.wait_weight_pct < 0:
            raise ValueError(f"wait_weight_pct must be >= 0, got {self.wait_weight_pct}")


@dataclass(frozen=True)
class SolveParams:
    """Which searches run, their settings, and the objective's cost per bus.

    The default is what the live re-optimisation used so far: insertion, then OR-Tools for 2 s.
    """

    insertion: InsertionParams = field(default_factory=InsertionParams)
    lns: LnsParams | None = None
    ortools: OrToolsParams | None = field(default_factory=OrToolsParams)
    vehicle_fixed_cost: int = 0
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if self.vehicle_fixed_cost < 0:
            raise ValueError("vehicle_fixed_cost must be >= 0")
        if self.time_limit_s is not None and not 0 < self.time_limit_s <= 3600:
            raise ValueError(f"time_limit_s must be in (0, 3600], got {self.time_limit_s}")

    @classmethod
    def live(
        cls,
        time_limit_s: float,
        lns_steps: int = 2000,
        ortools_solutions: int | None = None,
        seed: int = 0,
        metaheuristic: str = "GUIDED_LOCAL_SEARCH",
        isolated: bool = False,
    ) -> SolveParams:
        """The live re-optimisation: ruin and recreate for ``lns_steps`` steps (0: none) from
        the buses' plans, then OR-Tools from its best (at most ``ortools_solutions`` solutions;
        None: until the time runs out), the better of the two. Ruin and recreate stops on its
        step limit alone (a time limit would tune its batches to the machine and change the
        random stream); ``time_limit_s`` caps OR-Tools with what is left of it. With step and
        solution limits a round is reproducible, as long as OR-Tools stops on them: guided
        local search on a small problem may find no further solution and run to the time
        limit, so the simulator uses ``metaheuristic="GREEDY_DESCENT"``, which stops at its
        local optimum. ``isolated``: OR-Tools runs in a child process (the service sets it,
        so that a round does not hold the lock its request threads need)."""
        lns = (
            LnsParams(time_limit_s=None, max_steps=lns_steps, seed=seed) if lns_steps > 0 else None
        )
        ortools = OrToolsParams(
            time_limit_s=time_limit_s,
            metaheuristic=metaheuristic,
            solution_limit=ortools_solutions,
            isolated=isolated,
        )
        return cls(lns=lns, ortools=ortools, time_limit_s=time_limit_s)


def rank(problem: RoutingProblem, sol: Solution, vehicle_fixed_cost: int = 0) -> tuple[int, int]:
    """(requests left out, cost with the fixed cost of each bus used): lower is better."""
    used = sum(1 for route in sol.routes if route)
    return len(sol.unserved), sol.total_cost(problem) + used * vehicle_fixed_cost


def routes_ok(problem: RoutingProblem, sol: Solution) -> bool:
    """Whether a (possibly partial) solution's routes keep every rule."""
    served = {s[0] for route in sol.routes for s in route}
    missing = tuple(r for r in range(len(problem.requests)) if r not in served)
    relaxed = replace(
        problem,
        requests=tuple(
            replace(q, required=q.required and r in served) for r, q in enumerate(problem.requests)
        ),
    )
    return not violations(relaxed, replace(sol, unserved=missing))


def solve(
    problem: RoutingProblem, params: SolveParams | None = None, start: Solution | None = None
) -> Solution | None:
    """The best solution the searches of ``params`` find from ``start`` (or from cheapest
    insertion); None if none serves every required request."""
    params = params or SolveParams()
    started = time.perf_counter()
    cap = math.inf if params.time_limit_s is None else started + params.time_limit_s
    fixed = params.vehicle_fixed_cost
    if start is None:
        ins = params.insertion
        start = insert_best_of(
            problem, tries=ins.tries, seed=ins.seed, wait_weight_pct=ins.wait_weight_pct
        )
    best: Solution | None = start if routes_ok(problem, start) else None
    searches: dict[str, object] = {}
    if best is not None and params.lns is not None:
        lns = params.lns
        if lns.time_limit_s is not None and cap < math.inf:
            left = max(0.0, cap - time.perf_counter())
            lns = replace(lns, time_limit_s=min(lns.time_limit_s, left))
        found = improve(problem, best, lns, vehicle_cost=fixed)
        searches["lns_steps"] = found.info.get("lns_steps")
        if rank(problem, found, fixed) <= rank(problem, best, fixed):
            best = found
    if params.ortools is not None:
        ort = params.ortools
        left = cap - time.perf_counter()
        if left < ort.time_limit_s:
            ort = replace(ort, time_limit_s=max(0.001, left))
        if ort.isolated:  # spawn + import of a new child: well under the margin
            found_or = run_isolated(
                ortools_solve, problem, ort, best, timeout_s=ort.time_limit_s + 60,
                vehicle_fixed_cost=fixed,
            )  # fmt: skip
        else:
            found_or = ortools_solve(problem, ort, best, vehicle_fixed_cost=fixed)
        if found_or is not None and (
            best is None or rank(problem, found_or, fixed) < rank(problem, best, fixed)
        ):
            best = found_or
            searches["ortools"] = True
    if best is None or any(problem.requests[r].required for r in best.unserved):
        return None
    return replace(best, info={**best.info, **searches, "seconds": time.perf_counter() - started})
