"""Benchmark: the solvers on the published Cordeau DARP and Li & Lim PDPTW instances.

Protocol
- Instances: ../shared/benchmarks (24 Cordeau "a" DARP, 56 Li & Lim 100-customer PDPTW), or
  ``--files``: any instance files of either format (told apart by their first line; the
  best-known values from a ``bks.csv`` beside them when it lists them, else no gap is shown).
- Methods, each with the same time limit per instance (default 20 s):
  - ``ours``: cheapest insertion as the starting solution, 90 % of the time in ruin and
    recreate (routing.lns; for Li & Lim it first empties whole routes), then our OR-Tools model
    with guided local search from its best (routing.ortools_pdp, the model the dispatcher
    uses); the better of the two;
  - ``plain``: the same OR-Tools model with OR-Tools' default search (AUTOMATIC first
    solution and metaheuristic), no warm start;
  - ``pyvrp`` (Li & Lim only): PyVRP 0.14's shipments, seed 1 (PyVRP has pickup-and-delivery
    but no ride-time limit, so it is not run on the DARP set).
- Objective: Cordeau, total distance; Li & Lim, vehicles first (a fixed cost per vehicle), then
  distance.
- Every solution is checked by routing.checker in integer units and again in double precision
  with exact Euclidean distances, and re-costed in double precision; an infeasible or
  incomplete solution counts as not solved.
- Reported: per instance the vehicles, distance, gap to the best-known value, feasibility; per
  method the mean gap (Cordeau: over all; Li & Lim: where the best-known vehicle count is met),
  how many instances have every request served, and (Li & Lim) how many meet the BKS vehicles.

Run: ``nachtbus bench solver --set darp|lilim [--instances a2-16,...] [--time-limit S] [--json]``
or ``nachtbus bench solver --files FILE... [...]``, or ``python -m benchmarks.solver`` with the
same options.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.args import add_solver_arguments
from benchmarks.instances import (
    Instance,
    check_double,
    cost_double,
    file_family,
    load_file,
    load_set,
    vehicles_used,
)
from nachtbus.errors import InvalidInput
from routing.checker import violations
from routing.lns import LnsParams
from routing.ortools_pdp import OrToolsParams
from routing.ortools_pdp import solve as ortools_solve
from routing.problem import Solution, StopKind
from routing.solver import SolveParams, solve

LILIM_VEHICLE_COST = 10**8  # scaled distance units: one vehicle outweighs any distance
LNS_SHARE = 0.9  # of the time limit in ruin and recreate before OR-Tools' search


@dataclass
class Row:
    instance: str
    method: str
    requests: int
    served: int
    vehicles: int
    bks_vehicles: int | None
    distance: float | None
    bks: float | None  # None: no best-known value given
    gap_pct: float | None
    feasible: bool
    seconds: float
    note: str = ""


def _ours(inst: Instance, limit: float) -> Solution | None:
    """Cheapest insertion, ruin and recreate for LNS_SHARE of the limit, then OR-Tools for
    what is left of it."""
    params = SolveParams(
        lns=LnsParams(time_limit_s=LNS_SHARE * limit),
        ortools=OrToolsParams(time_limit_s=limit),
        vehicle_fixed_cost=LILIM_VEHICLE_COST if inst.family == "lilim" else 0,
        time_limit_s=limit,
    )
    return solve(inst.problem, params)


def _plain(inst: Instance, limit: float) -> Solution | None:
    """OR-Tools alone, with its own first solution and metaheuristic."""
    fixed = LILIM_VEHICLE_COST if inst.family == "lilim" else 0
    params = OrToolsParams(
        time_limit_s=limit,
        first_solution="AUTOMATIC",
        metaheuristic="AUTOMATIC",
        use_warm_start=False,
        soft_required=False,
    )
    sol = ortools_solve(inst.problem, params, vehicle_fixed_cost=fixed)
    return None if sol is None or sol.unserved else sol


def _pyvrp(inst: Instance, limit: float) -> Solution | None:
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    p = inst.problem
    m = Model()
    n_loc = p.time_s.shape[0]
    locs = [m.add_location(0, 0) for _ in range(n_loc)]
    depot = m.add_depot(locs[0], tw_early=p.vehicles[0].start_s, tw_late=p.vehicles[0].end_latest_s)
    m.add_vehicle_type(
        len(p.vehicles),
        capacity=p.vehicles[0].seats,
        start_depot=depot,
        end_depot=depot,
        fixed_cost=LILIM_VEHICLE_COST,
        tw_early=p.vehicles[0].start_s,
        tw_late=p.vehicles[0].end_latest_s,
    )
    for r in p.requests:
        m.add_shipment(
            locs[r.pickup],
            locs[r.dropoff],
            pickup_tw_early=r.pickup_window[0],
            pickup_tw_late=r.pickup_window[1],
            pickup_service_duration=r.pickup_service_s,
            delivery_tw_early=r.dropoff_window[0],
            delivery_tw_late=r.dropoff_window[1],
            delivery_service_duration=r.dropoff_service_s,
            amount=r.seats,
        )
    for a in range(n_loc):
        for b in range(n_loc):
            if a != b:
                m.add_edge(
                    locs[a], locs[b], distance=int(p.arc_cost[a, b]), duration=int(p.time_s[a, b])
                )
    res = m.solve(MaxRuntime(limit), seed=1, display=False)
    best = res.best
    if not best.is_feasible():
        return None
    routes, times, starts, ends = [], [], [], []
    for rt in best.routes():
        stops, ts = [], []
        for act in rt.schedule():
            if act.is_shipment():
                stops.append(
                    (int(act.idx), StopKind.PICKUP if act.is_pickup() else StopKind.DROPOFF)
                )
                ts.append(int(act.start_time))
        routes.append(tuple(stops))
        times.append(tuple(ts))
        starts.append(int(rt.start_time()))
        ends.append(int(rt.end_time()))
    pad = len(p.vehicles) - len(routes)
    served = {s[0] for r in routes for s in r}
    return Solution(
        routes=tuple(routes) + ((),) * pad,
        times=tuple(times) + ((),) * pad,
        start_times=tuple(starts) + (p.vehicles[0].start_s,) * pad,
        end_times=tuple(ends) + (p.vehicles[0].start_s,) * pad,
        unserved=tuple(r for r in range(len(p.requests)) if r not in served),
    )


METHODS = {"ours": _ours, "plain": _plain, "pyvrp": _pyvrp}


def run_one(family: str, name: str, method: str, limit: float, path: str | None = None) -> Row:
    """One method on one instance: a shipped one by name, or the file at ``path``."""
    inst = load_file(Path(path)) if path else load_set(family, [name])[0]
    if method == "ours":
        from routing.lns import warm_up

        warm_up()  # compiling the search is not part of its time limit
    started = time.perf_counter()
    sol = METHODS[method](inst, limit)
    seconds = time.perf_counter() - started
    n = len(inst.problem.requests)
    if sol is None:
        return Row(
            name,
            method,
            n,
            0,
            0,
            inst.bks_vehicles,
            None,
            inst.bks_cost,
            None,
            False,
            seconds,
            "no solution",
        )
    bad = violations(inst.problem, sol) + check_double(inst, sol)
    served = n - len(sol.unserved)
    dist = cost_double(inst, sol)
    ok = not bad and served == n
    return Row(
        name,
        method,
        n,
        served,
        vehicles_used(sol),
        inst.bks_vehicles,
        dist,
        inst.bks_cost,
        100 * (dist - inst.bks_cost) / inst.bks_cost if ok and inst.bks_cost else None,
        ok,
        seconds,
        bad[0] if bad else "",
    )


def summarise(rows: list[Row], family: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        solved = [r for r in mine if r.feasible]
        s: dict[str, Any] = {"instances": len(mine), "all_served": len(solved)}
        if family == "darp":
            gaps = [r.gap_pct for r in solved if r.gap_pct is not None]
            s["mean_gap_pct"] = statistics.fmean(gaps) if gaps else None
        else:
            match = [r for r in solved if r.vehicles == r.bks_vehicles]
            s["bks_vehicles_met"] = len(match)
            gaps = [r.gap_pct for r in match if r.gap_pct is not None]
            s["mean_gap_pct_where_vehicles_met"] = statistics.fmean(gaps) if gaps else None
        out[method] = s
    return out


def run(
    family: str,
    names: list[str] | None,
    limit: float,
    methods: list[str],
    jobs: int = 1,
    progress: bool = True,
    files: list[Path] | None = None,
) -> dict[str, Any]:
    """The methods on the named instances of ``family``, or on ``files`` (all of ``family``)."""
    if files:
        loaded = [(load_file(f).name, str(f)) for f in files]  # a bad file fails here, at once
        tasks: list[tuple[str, str, str, float, str | None]] = [
            (family, n, m, limit, f) for n, f in loaded for m in methods
        ]
    else:
        instances = [i.name for i in load_set(family, names)]
        if names and len(instances) != len(names):
            missing = sorted(set(names) - set(instances))
            raise InvalidInput(f"unknown instance(s) {missing}", field="--instances")
        tasks = [(family, n, m, limit, None) for n in instances for m in methods]
    rows: list[Row] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for row in pool.map(_task, tasks):
            rows.append(row)
            if progress:
                gap = f"{row.gap_pct:6.2f}%" if row.gap_pct is not None else "   -   "
                print(
                    f"  {row.instance:<8} {row.method:<6} veh {row.vehicles:>2} "
                    f"dist {row.distance or 0:9.2f} gap {gap} {row.note}",
                    file=sys.stderr,
                )
    return {
        "set": family,
        "time_limit_s": limit,
        "rows": [asdict(r) for r in rows],
        "summary": summarise(rows, family),
    }


def _task(args: tuple[str, str, str, float, str | None]) -> Row:
    return run_one(*args)


def print_table(result: dict[str, Any]) -> None:
    family = result["set"]
    print(f"set {family}, {result['time_limit_s']:g} s per instance and method")
    print(
        f"{'instance':<10}{'method':<8}{'served':>9}{'veh':>5}{'bks veh':>8}"
        f"{'distance':>11}{'bks':>11}{'gap %':>8}  ok"
    )
    for r in result["rows"]:
        gap = f"{r['gap_pct']:8.2f}" if r["gap_pct"] is not None else f"{'-':>8}"
        dist = f"{r['distance']:11.2f}" if r["distance"] is not None else f"{'-':>11}"
        bv = r["bks_vehicles"] if r["bks_vehicles"] is not None else "-"
        bks = f"{r['bks']:11.2f}" if r["bks"] is not None else f"{'-':>11}"
        print(
            f"{r['instance']:<10}{r['method']:<8}{r['served']:>4}/{r['requests']:<4}"
            f"{r['vehicles']:>5}{bv:>8}{dist}{bks}{gap}  "
            f"{'yes' if r['feasible'] else 'NO ' + r['note'][:40]}"
        )
    print("\nsummary:")
    for method, s in result["summary"].items():
        print(
            f"  {method:<6} "
            + ", ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {'-' if v is None else v}"
                for k, v in s.items()
            )
        )


def main_from_args(args: argparse.Namespace) -> int:
    if not 0 < args.time_limit <= 3600:
        print("nachtbus: error: --time-limit: must be in (0, 3600] seconds", file=sys.stderr)
        return 2
    files = [Path(f) for f in args.files] if args.files else None
    if files:
        try:
            families = {file_family(f) for f in files}
        except InvalidInput as exc:
            print(f"nachtbus: error: {exc}", file=sys.stderr)
            return 2
        if len(families) > 1:
            print(
                "nachtbus: error: --files: mixes Cordeau and Li & Lim files; give one format "
                "at a time",
                file=sys.stderr,
            )
            return 2
        args.family = families.pop()
    methods = (
        args.methods.split(",")
        if args.methods
        else ["ours", "plain"] + (["pyvrp"] if args.family == "lilim" else [])
    )
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(
            f"nachtbus: error: --methods: unknown {unknown}; use ours, plain, pyvrp",
            file=sys.stderr,
        )
        return 2
    if args.family == "darp" and "pyvrp" in methods:
        print(
            "nachtbus: error: --methods: pyvrp has no ride-time limit, so it is not run on darp",
            file=sys.stderr,
        )
        return 2
    if "pyvrp" in methods and importlib.util.find_spec("pyvrp") is None:
        if args.methods:
            print(
                "nachtbus: error: --methods: pyvrp is not installed; pip install -e '.[bench]'",
                file=sys.stderr,
            )
            return 2
        print(
            "nachtbus: PyVRP is not installed (pip install -e '.[bench]'), so its column is "
            "left out",
            file=sys.stderr,
        )
        methods.remove("pyvrp")
    names = args.instances.split(",") if args.instances else None
    try:
        result = run(
            args.family, names, args.time_limit, methods, max(1, args.jobs),
            progress=not args.json, files=files,
        )  # fmt: skip
    except InvalidInput as exc:
        print(f"nachtbus: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Solver benchmark on published instances")
    add_solver_arguments(parser)
    sys.exit(main_from_args(parser.parse_args()))
