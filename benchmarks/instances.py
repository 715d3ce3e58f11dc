"""Published pickup-and-delivery instances (../shared/benchmarks) as RoutingProblems.

- Cordeau (2006) dial-a-ride "a" instances: capacity, windows, ride time L, route duration T;
  objective total distance.
- Li & Lim (2001) PDPTW, 100 customers: capacity, windows, pairing; objective vehicles first,
  then distance.

Distances are Euclidean. The solvers work on integers: times are the distances scaled by
``SCALE`` and rounded *up* (so an integer-feasible schedule is feasible with the exact
distances), arc costs are rounded to nearest. Windows, service times, ride and route limits
given with decimals are rounded inwards in the same way (earliest times and service times up,
latest times and limits down), so the integer problem is never looser than the file's. Every
solution is then re-checked and re-costed in double precision with :func:`check_double` /
:func:`cost_double`.

Besides the two shipped sets, :func:`load_file` reads any file of either format (Cordeau's
"a", "b" and "pr" files share one format; Li & Lim's 100 to 1000 customer files another),
for instances that are not in ../shared.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from nachtbus.errors import InvalidInput
from nachtbus.settings import find_shared_dir
from routing.checker import violations
from routing.problem import RequestSpec, RoutingProblem, Solution, VehicleSpec

SCALE = 1000
B = TypeVar("B")  # a best-known value: a distance, or (vehicles, distance)


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
    bks_cost: float | None  # None: no best-known value was given with the file
    bks_vehicles: int | None
    vehicles_available: int


def _euclid(xy: np.ndarray) -> np.ndarray:
    d = xy[:, None, :] - xy[None, :, :]
    return np.sqrt((d**2).sum(axis=2))


def _scaled(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    time = np.ceil(dist * SCALE - 1e-9).astype(np.int64)
    cost = np.rint(dist * SCALE).astype(np.int64)
    return time, cost


def _up(x: float) -> int:
    """An earliest time or a service time, scaled: rounded up (never looser than the file)."""
    return math.ceil(x * SCALE - 1e-6)


def _down(x: float) -> int:
    """A latest time or a limit, scaled: rounded down (never looser than the file)."""
    return math.floor(x * SCALE + 1e-6)


def _rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _numbers(path: Path, line: int, row: list[str], width: int) -> list[float]:
    """The first ``width`` numbers of a line, or an error naming the file and the line."""
    try:
        out = [float(x) for x in row[:width]]
    except ValueError as exc:
        msg = f"{path.name} line {line}: not a number ({exc})"
        raise InvalidInput(msg, field="--files") from exc
    if len(out) < width or not all(math.isfinite(x) for x in out):
        raise InvalidInput(
            f"{path.name} line {line}: expected {width} finite numbers, got {row!r}",
            field="--files",
        )
    return out


def load_cordeau(path: Path, bks: dict[str, float]) -> Instance:
    """A Cordeau dial-a-ride file (`m n T Q L`, then 2n+2 lines `id x y d q e l`)."""
    rows = _rows(path)
    m, n, t_max, q, l_max = _numbers(path, 1, rows[0] if rows else [], 5)
    m, n = int(m), int(n)
    if len(rows) < 2 * n + 3:
        raise InvalidInput(
            f"{path.name}: {n} requests need {2 * n + 2} node lines, the file has {len(rows) - 1}",
            field="--files",
        )
    nodes = [_numbers(path, k + 2, r, 7) for k, r in enumerate(rows[1 : 2 * n + 3])]
    xy = np.array([[r[1], r[2]] for r in nodes])
    dist = _euclid(xy)
    time, cost = _scaled(dist)
    requests = []
    for i in range(1, n + 1):
        p, d = nodes[i], nodes[n + i]
        requests.append(
            RequestSpec(
                pickup=i,
                dropoff=n + i,
                pickup_window=(_up(p[5]), _down(p[6])),
                dropoff_window=(_up(d[5]), _down(d[6])),
                seats=round(p[4]),
                pickup_service_s=_up(p[3]),
                dropoff_service_s=_up(d[3]),
                max_ride_s=_down(l_max),
                key=str(i),
            )
        )
    depot = nodes[0]
    vehicles = tuple(
        VehicleSpec(
            start=0,
            start_s=_up(depot[5]),
            seats=int(q),
            end=2 * n + 1,
            end_latest_s=_down(nodes[2 * n + 1][6]),
            max_duration_s=_down(t_max),
            key=f"v{k}",
        )
        for k in range(m)
    )
    problem = RoutingProblem(time_s=time, vehicles=vehicles, requests=tuple(requests), cost=cost)
    return Instance(path.stem, "darp", problem, dist, bks.get(path.stem), None, m)


def load_lilim(path: Path, bks: dict[str, tuple[int, float]]) -> Instance:
    """A Li & Lim PDPTW file (`K Q S`, then lines `id x y demand e l service pickup delivery`);
    travel time is the distance, as in the literature and the best-known solutions (S, a
    speed, is 1 or 0 in the published files and is not read)."""
    rows = _rows(path)
    k, q, _ = _numbers(path, 1, rows[0] if rows else [], 3)
    parsed = [_numbers(path, j + 2, r, 9) for j, r in enumerate(rows[1:])]
    nodes = {int(r[0]): r for r in parsed}
    ids = sorted(nodes)
    if len(ids) < 3:
        raise InvalidInput(
            f"{path.name}: a depot and at least one pickup and delivery are needed, the file "
            f"has {len(ids)} node lines",
            field="--files",
        )
    if ids != list(range(len(ids))):
        raise InvalidInput(f"{path.name}: node ids must run 0..{len(ids) - 1}", field="--files")
    xy = np.array([[nodes[i][1], nodes[i][2]] for i in ids])
    dist = _euclid(xy)
    time, cost = _scaled(dist)
    requests = []
    for i in ids:
        r = nodes[i]
        if r[3] > 0:  # a pickup: column 8 names its delivery
            if int(r[8]) not in nodes:
                raise InvalidInput(
                    f"{path.name}: pickup {i} names delivery {int(r[8])}, which is not in the file",
                    field="--files",
                )
            d = nodes[int(r[8])]
            requests.append(
                RequestSpec(
                    pickup=i,
                    dropoff=int(r[8]),
                    pickup_window=(_up(r[4]), _down(r[5])),
                    dropoff_window=(_up(d[4]), _down(d[5])),
                    seats=round(r[3]),
                    pickup_service_s=_up(r[6]),
                    dropoff_service_s=_up(d[6]),
                    key=str(i),
                )
            )
    depot = nodes[0]
    vehicles = tuple(
        VehicleSpec(
            start=0,
            start_s=_up(depot[4]),
            seats=int(q),
            end=0,
            end_latest_s=_down(depot[5]),
            key=f"v{j}",
        )
        for j in range(int(k))
    )
    problem = RoutingProblem(time_s=time, vehicles=vehicles, requests=tuple(requests), cost=cost)
    nv, best = bks.get(path.stem, (None, None))
    return Instance(path.stem, "lilim", problem, dist, best, nv, int(k))


def _bks_rows(folder: Path) -> list[dict[str, str]]:
    """The rows of the ``bks.csv`` in ``folder`` (none when there is no such file)."""
    path = folder / "bks.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def _bks_darp(folder: Path) -> dict[str, float]:
    return {r["instance"]: float(r["bks_total_distance"]) for r in _bks_rows(folder)}


def _bks_lilim(folder: Path) -> dict[str, tuple[int, float]]:
    return {r["instance"]: (int(r["vehicles"]), float(r["distance"])) for r in _bks_rows(folder)}


def _lenient(read: Callable[[Path], dict[str, B]], folder: Path) -> dict[str, B]:
    """Best-known values beside a file of one's own: none if its bks.csv is of the other
    format or cannot be read (the shipped sets' must be: :func:`load_set` reads them as is)."""
    try:
        return read(folder)
    except (KeyError, ValueError):
        return {}


def file_family(path: Path) -> str:
    """'darp' or 'lilim', told by the first line: Cordeau's has 5 numbers, Li & Lim's 3."""
    try:
        rows = _rows(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc})", field="--files") from exc
    width = len(rows[0]) if rows else 0
    if width == 5:
        return "darp"
    if width == 3:
        return "lilim"
    raise InvalidInput(
        f"{path.name}: the first line has {width} values; a Cordeau file starts with 'm n T Q "
        "L' (5), a Li & Lim file with 'K Q S' (3)",
        field="--files",
    )


def load_file(path: Path) -> Instance:
    """An instance file of either format; its best-known value from a ``bks.csv`` beside it
    (the columns of ../shared's: ``instance,bks_total_distance`` for Cordeau,
    ``instance,vehicles,distance`` for Li & Lim) when that lists it, else none."""
    try:
        if file_family(path) == "darp":
            return load_cordeau(path, _lenient(_bks_darp, path.parent))
        return load_lilim(path, _lenient(_bks_lilim, path.parent))
    except InvalidInput:
        raise
    except ValueError as exc:  # the problem's own rules (a window that closes before it opens)
        raise InvalidInput(f"{path.name}: {exc}", field="--files") from exc


def load_set(family: str, names: list[str] | None = None) -> list[Instance]:
    """All (or the named) instances of 'darp' or 'lilim'."""
    base = benchmarks_dir()
    if family == "darp":
        folder = base / "darp-cordeau2006-a"
        bks_d = _bks_darp(folder)
        files = sorted(folder.glob("a*.txt"), key=lambda p: _natural(p.stem))
        return [load_cordeau(p, bks_d) for p in files if names is None or p.stem in names]
    if family == "lilim":
        folder = base / "pdptw-lilim-100"
        bks_l = _bks_lilim(folder)
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
