"""RoutingProblem: an immutable, integer snapshot of a pickup-and-delivery problem with windows.

Solver-neutral: locations are indices into the problem's own travel-time matrix (road-network
seconds for the night bus, scaled Euclidean distances for the published benchmarks), so the
same insertion, OR-Tools model and checker serve both.

Conventions (Cordeau 2006): ``B`` is the time service *begins* at a stop; a vehicle arriving
early waits. Service takes ``service_s``. The ride time of a request is
``B(dropoff) - (B(pickup) + service(pickup))`` and must not exceed ``max_ride_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

NO_LIMIT = 10**9


class StopKind(IntEnum):
    PICKUP = 0
    DROPOFF = 1


@dataclass(frozen=True)
class RequestSpec:
    """One request to carry: pickup and dropoff location, windows, load, ride limit.

    ``onboard_vehicle`` set means the rider is already in that bus: only the dropoff remains,
    ``picked_up_s`` is when service began at the pickup. ``required`` requests must be served
    (confirmed bookings); others may be dropped at ``penalty``.
    """

    pickup: int
    dropoff: int
    pickup_window: tuple[int, int]
    dropoff_window: tuple[int, int] = (0, NO_LIMIT)
    seats: int = 1
    wheelchairs: int = 0
    pickup_service_s: int = 0
    dropoff_service_s: int = 0
    max_ride_s: int = NO_LIMIT
    required: bool = True
    penalty: int = 0
    onboard_vehicle: int | None = None
    picked_up_s: int | None = None
    key: str = ""

    def __post_init__(self) -> None:
        for name in ("pickup_window", "dropoff_window"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name} {lo}..{hi} is empty (request {self.key or '?'})")
        if self.seats < 0 or self.wheelchairs < 0 or self.seats + self.wheelchairs == 0:
            raise ValueError(f"request {self.key or '?'} carries no one")
        if (self.onboard_vehicle is None) != (self.picked_up_s is None):
            raise ValueError("onboard_vehicle and picked_up_s go together")


@dataclass(frozen=True)
class VehicleSpec:
    """A bus: where and when it is free next, capacity, where and by when its shift ends.

    ``end`` None means the route may end anywhere (no return to depot). ``fixed`` stops are
    ones the bus is already committed to (e.g. driving to): they stay first, in this order.
    """

    start: int
    start_s: int
    seats: int
    wheelchairs: int = 0
    end: int | None = None
    end_latest_s: int = NO_LIMIT
    max_duration_s: int = NO_LIMIT
    fixed: tuple[tuple[int, StopKind], ...] = ()
    key: str = ""


Stop = tuple[int, StopKind]  # (request index, kind)


@dataclass(frozen=True)
class RoutingProblem:
    """Travel times between locations, the vehicles and the requests."""

    time_s: NDArray[np.int64]
    vehicles: tuple[VehicleSpec, ...]
    requests: tuple[RequestSpec, ...]
    cost: NDArray[np.int64] | None = None  # arc cost if not the travel time (e.g. distance)

    def __post_init__(self) -> None:
        n = self.time_s.shape[0]
        if self.time_s.shape != (n, n):
            raise ValueError("time_s must be square")
        if self.cost is not None and self.cost.shape != (n, n):
            raise ValueError("cost must have the shape of time_s")
        for r in self.requests:
            if not (0 <= r.pickup < n and 0 <= r.dropoff < n):
                raise ValueError(f"request {r.key} has a location outside 0..{n - 1}")
            if r.onboard_vehicle is not None and not 0 <= r.onboard_vehicle < len(self.vehicles):
                raise ValueError(f"request {r.key} is on board an unknown vehicle")
        for v in self.vehicles:
            if not 0 <= v.start < n or (v.end is not None and not 0 <= v.end < n):
                raise ValueError(f"vehicle {v.key} has a location outside 0..{n - 1}")

    @property
    def arc_cost(self) -> NDArray[np.int64]:
        return self.time_s if self.cost is None else self.cost

    def location(self, stop: Stop) -> int:
        r = self.requests[stop[0]]
        return r.pickup if stop[1] == StopKind.PICKUP else r.dropoff

    def onboard(self, vehicle: int) -> list[int]:
        return [i for i, r in enumerate(self.requests) if r.onboard_vehicle == vehicle]


@dataclass(frozen=True)
class Solution:
    """Routes (stop sequences) per vehicle, the begin-of-service time of every stop, each
    vehicle's departure from its start and arrival at its end, and the requests left unserved."""

    routes: tuple[tuple[Stop, ...], ...]
    times: tuple[tuple[int, ...], ...]
    start_times: tuple[int, ...]
    end_times: tuple[int, ...]
    unserved: tuple[int, ...] = ()
    info: dict[str, object] = field(default_factory=dict)

    def total_cost(self, problem: RoutingProblem) -> int:
        """Sum of arc costs from each used vehicle's start through its stops (to its end)."""
        cost = problem.arc_cost
        total = 0
        for v, route in enumerate(self.routes):
            spec = problem.vehicles[v]
            if not route:
                continue
            loc = spec.start
            for stop in route:
                nxt = problem.location(stop)
                total += int(cost[loc, nxt])
                loc = nxt
            if spec.end is not None:
                total += int(cost[loc, spec.end])
        return total
