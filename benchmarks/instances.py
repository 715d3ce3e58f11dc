"""Published pickup-and-delivery instances (../shared/benchmarks) as RoutingProblems.

- Cordeau (2006) dial-a-ride "a" instances: capacity, windows, ride time L, route duration T;
  objective total distance.
- Li & Lim (2001) PDPTW, 100 customers: capacity, windows, pairing; objective vehicles first,
  then distance.

Distances are Euclidean. The solvers work on integers: times are the distances scaled by
``SCALE`` and rounded *up* (so an integer-feasible schedule is feasible with the exact
distances), arc costs are rounded to nearest. Every solution is then re-checked and re-costed in
double precision with :func:`check_double` / :func:`cost_double`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nachtbus.settings import find_shared_dir
from routing.checker import violations
from routing.problem import RequestSpec, RoutingProblem, Solution, VehicleSpec

SCALE = 1000


def benchmarks_dir() -> Path:
    shared = find_shared_dir()
    if shared is None or not (shared / "benchmarks").is_dir():
        raise FileNotFoundError("../shared/benchmarks is not beside this checkout")
    return shared / "benchmarks"


@dataclass(frozen=True)
class Instance:
    """A benchmark instance: its integer problem, real distances and best-known values."""

    name: str
    family: str  # "darp" or "lilim"
    problem: RoutingProblem
    dist: np.ndarray  # exact Euclidean distances between locations
    bks_cost: float
    bks_vehicles: int | None
    vehicles_available: int


def _euclid(xy: np.ndarray) -> np.ndarray:
    d = xy[:, None, :] - xy[None, :, :]
    return np.sqrt((d**2).sum(axis=2))


def _scaled(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    time = np.ceil(dist * SCALE - 1e-9).astype(np.int64)
    cost = np.rint(dist * SCALE).astype(np.int64)
    return time, cost


def load_cordeau(path: Path, bks: dict[str, float]) -> Instance:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    m, n, t_max, q, l_max = (int(float(x)) for x in rows[0][:5])
    nodes = [[float(x) for x in r] for r in rows[1 : 2 * n + 3]]
    xy = np.array([[r[1], r[2]] for r in nodes])
    dist = _euclid(xy)
    time, cost = _scaled(dist)
    s = SCALE
    requests = []
    for i in range(1, n + 1):
        p, d = nodes[i], nodes[n + i]
        requests.append(
            RequestSpec(
                pickup=i,
                dropoff=n + i,
                pickup_window=(int(p[5]) * s, int(p[6]) * s),
                dropoff_window=(int(d[5]) * s, int(d[6]) * s),
                seats=int(p[4]),
                pickup_service_s=int(p[3]) * s,
                dropoff_service_s=int(d[3]) * s,
                max_ride_s=l_max * s,
                key=str(i),
            )
        )
    depot = nodes[0]
    vehicles = tuple(
        VehicleSpec(
            start=0,
            start_s=int(depot[5]) * s,
            seats=q,
            end=2 * n + 1,
            end_latest_s=int(nodes[2 * n + 1][6]) * s,
            max_duration_s=t_max * s,
            key=f"v{k}",
        )
        for k in range(m)
    )
    problem = RoutingProblem(time_s=time, vehicles=vehicles, requests=tuple(requests), cost=cost)
    return Instance(path.stem, "darp", problem, dist, bks[path.stem], None, m)


def load_lilim(path: Path, bks: dict[str, tuple[int, float]]) -> Instance:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    k, q = int(rows[0][0]), int(rows[0][1])
    nodes = {int(r[0]): [float(x) for x in r] for r in rows[1:]}
    ids = sorted(nodes)
    xy = np.array([[nodes[i][1], nodes[i][2]] for i in ids])
    dist = _euclid(xy)
    time, cost = _scaled(dist)
    s = SCALE
    requests = []
    for i in ids:
        r = nodes[i]
        if r[3] > 0:  # a pickup: column 8 names its delivery
            d = nodes[int(r[8])]
            requests.append(
                RequestSpec(
                    pickup=i,
                    dropoff=int(r[8]),
                    pickup_window=(int(r[4]) * s, int(r[5]) * s),
                    dropoff_window=(int(d[4]) * s, int(d[5]) * s),
                    seats=int(r[3]),
                    pickup_service_s=int(r[6]) * s,
                    dropoff_service_s=int(d[6]) * s,
                    key=str(i),
                )
            )
    depot = nodes[0]
    vehicles = tuple(
        VehicleSpec(
            start=0,
            start_s=int(depot[4]) * s,
            seats=q,
            end=0,
            end_latest_s=int(depot[5]) * s,
            key=f"v{j}",
        )
        for j in range(k)
    )
    problem = RoutingProblem(time_s=time, vehicles=vehicles, requests=tuple(requests), cost=cost)
    nv, best = bks[path.stem]
    return Instance(path.stem, "lilim", problem, dist, best, nv, k)


def load_set(family: str, names: list[str] | None = None) -> list[Instance]:
    """All (or the named) instances of 'darp' or 'lilim'."""
    base = benchmarks_dir()
    if family == "darp":
        folder = base / "darp-cordeau2006-a"
        with (folder / "bks.csv").open() as f:
            bks_d = {r["instance"]: float(r["bks_total_distance"]) for r in csv.DictReader(f)}
        files = sorted(folder.glob("a*.txt"), key=lambda p: _natural(p.stem))
        return [load_cordeau(p, bks_d) for p in files if names is None or p.stem in names]
    if family == "lilim":
        folder = base / "pdptw-lilim-100"
        with (folder / "bks.csv").open() as f:
            bks_l = {
                r["instance"]: (int(r["vehicles"]), float(r["distance"])) for r in csv.DictReader(f)
            }
        files = sorted(folder.glob("l*.txt"), key=lambda p: _natural(p.stem))
        return [load_lilim(p, bks_l) for p in files if names is None or p.stem in names]
    raise ValueError(f"unknown benchmark set {family!r}: use darp or lilim")


def _natural(name: str) -> tuple[object, ...]:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def cost_double(inst: Instance, sol: Solution) -> float:
    """Total distance of the routes with the exact Euclidean distances."""
    total = 0.0
    p = inst.problem
    for v, route in enumerate(sol.routes):
        if not route:
            continue
        spec = p.vehicles[v]
        loc = spec.start
        for stop in route:
            nxt = p.location(stop)
            total += float(inst.dist[loc, nxt])
            loc = nxt
        if spec.end is not None:
            total += float(inst.dist[loc, spec.end])
    return total


def check_double(inst: Instance, sol: Solution) -> list[str]:
    """The checker again, in real units: exact distances, the solution's times / SCALE."""
    p = inst.problem

    def real(x: float) -> Any:
        """Scaled integer -> real units; the no-limit sentinel becomes infinity."""
        return math.inf if x >= 10**9 else x / SCALE

    def req(r: RequestSpec) -> RequestSpec:
        return replace(
            r,
            pickup_window=(real(r.pickup_window[0]), real(r.pickup_window[1])),
            dropoff_window=(real(r.dropoff_window[0]), real(r.dropoff_window[1])),
            pickup_service_s=real(r.pickup_service_s),
            dropoff_service_s=real(r.dropoff_service_s),
            max_ride_s=real(r.max_ride_s),
        )

    def veh(v: VehicleSpec) -> VehicleSpec:
        return replace(
            v,
            start_s=real(v.start_s),
            end_latest_s=real(v.end_latest_s),
            max_duration_s=real(v.max_duration_s),
        )

    real_problem = RoutingProblem.__new__(RoutingProblem)  # skip the integer-only checks
    object.__setattr__(real_problem, "time_s", inst.dist)
    object.__setattr__(real_problem, "vehicles", tuple(veh(v) for v in p.vehicles))
    object.__setattr__(real_problem, "requests", tuple(req(r) for r in p.requests))
    object.__setattr__(real_problem, "cost", None)
    scaled = Solution(
        routes=sol.routes,
        times=tuple(tuple(real(t) for t in ts) for ts in sol.times),
        start_times=tuple(real(t) for t in sol.start_times),
        end_times=tuple(real(t) for t in sol.end_times),
        unserved=sol.unserved,
    )
    return violations(real_problem, scaled, tolerance=1e-6)


def vehicles_used(sol: Solution) -> int:
    return sum(1 for r in sol.routes if r)


def read_sintef_routes(inst: Instance, path: Path) -> Solution:
    """A SINTEF route file (customer ids per route) as a Solution scheduled at earliest times."""
    from routing.insertion import Inserter, solution_from_routes
    from routing.problem import StopKind

    by_loc = {}
    for r, req in enumerate(inst.problem.requests):
        by_loc[req.pickup] = (r, StopKind.PICKUP)
        by_loc[req.dropoff] = (r, StopKind.DROPOFF)
    routes = [
        tuple(by_loc[int(x)] for x in line.split(":", 1)[1].split())
        for line in path.read_text().splitlines()
        if line.startswith("Route")
    ]
    routes += [()] * (len(inst.problem.vehicles) - len(routes))
    return solution_from_routes(Inserter(inst.problem), tuple(routes))
