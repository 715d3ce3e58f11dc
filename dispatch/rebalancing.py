"""Rebalancing: idle buses drive towards where the next riders are expected.

The strategy follows MATSim DRT's demand-based rebalancing (a target per zone from the demand
expected there in the next time slice, then a minimum-cost flow of idle vehicles to zones):

1. **Zones** are square cells (``cell_m``, default 2 km) over the service area; each has a
   road node to drive to (the point nearest the mean of its expected pickups).
2. **Expected demand** of each zone over ``[now, now + horizon_s)`` comes from a
   :class:`DemandForecast`: in the simulator, from the scenario's demand model (the hourly
   profile and the spatial weights, sampled over other seeds than the night played), live
   from any forecast the deployment provides.
3. **Targets**: as many idle buses as riders are expected (rounded up; at most all idle
   buses) are shared out over the zones in proportion to their expected demand (largest
   remainders); the others may stay where they are.
4. **Assignment**: idle buses go to target places by a minimum-cost flow (networkx network
   simplex) on road seconds, staying put costing nothing; a bus assigned to the zone it is in
   stays where it is.

An *idle* bus is one on shift with no stop in its plan and at least ``horizon_s`` of shift
left. A bus with any stop is never sent anywhere: repositioning cannot delay a promise. The
moment a trip is inserted for a repositioning bus, the trip's stops replace the reposition,
and the plan starts from where the bus will be at the end of the stretch it is driving (the
simulator drives a reposition in short hops and reports each hop's end as where the bus is
free next).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import networkx as nx

from dispatch.snapshot import TravelTimeSource
from nachtbus.domain import FleetState, Place


@dataclass(frozen=True)
class Zone:
    """A rebalancing zone: its id and the place a bus drives to."""

    zone_id: str
    place: Place


class DemandForecast(Protocol):
    """Expected requests starting in each zone over a time span (service-day seconds)."""

    def zones(self) -> Sequence[Zone]: ...

    def expected(self, t0_s: int, t1_s: int) -> dict[str, float]: ...

    def zone_of(self, lat: float, lon: float) -> str | None: ...


@dataclass(frozen=True)
class RebalanceParams:
    """``horizon_s``: the time slice whose demand sets the targets; ``min_drive_s``: a bus
    closer than this to its target place stays where it is."""

    horizon_s: int = 1800
    min_drive_s: int = 120

    def __post_init__(self) -> None:
        if self.horizon_s < 60:
            raise ValueError(f"horizon_s must be >= 60, got {self.horizon_s}")
        if self.min_drive_s < 0:
            raise ValueError(f"min_drive_s must be >= 0, got {self.min_drive_s}")


def idle_buses(state: FleetState, horizon_s: int) -> list[str]:
    """Buses on shift with no stop to serve and at least ``horizon_s`` of shift left."""
    return sorted(
        vid
        for vid, plan in state.plans.items()
        if not plan.stops
        and state.vehicles[vid].out_of_service is None
        and state.vehicles[vid].shift_start_s <= state.now_s
        and state.vehicles[vid].shift_end_s - state.now_s >= horizon_s
    )


def shares(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` split over the keys in proportion to the weights (largest remainders; ties
    by key), every share an integer, summing to ``total``."""
    mass = sum(w for w in weights.values() if w > 0)
    if total <= 0 or mass <= 0:
        return {}
    exact = {k: total * w / mass for k, w in weights.items() if w > 0}
    out = {k: math.floor(x) for k, x in exact.items()}
    left = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[:left]:
        out[k] += 1
    return {k: n for k, n in out.items() if n}


def targets(
    state: FleetState,
    forecast: DemandForecast,
    times: TravelTimeSource,
    params: RebalanceParams,
) -> dict[str, Place | None]:
    """Where each idle bus should go (None: stay where it is), by the strategy above."""
    idle = idle_buses(state, params.horizon_s)
    if not idle:
        return {}
    expected = forecast.expected(state.now_s, state.now_s + params.horizon_s)
    # no more buses sent out than riders are expected: the others stay where they are
    sent = min(len(idle), math.ceil(sum(expected.values()) - 1e-9))
    want = shares(sent, expected)
    if not want:
        return {}
    zones = {z.zone_id: z for z in forecast.zones()}
    bus_nodes = [state.states[vid].node for vid in idle]
    zone_ids = sorted(want)
    zone_nodes = [zones[z].place.node for z in zone_ids]
    cost = times.times_between(bus_nodes, zone_nodes)
    home = {vid: forecast.zone_of(*_latlon(state, vid)) for vid in idle}
    g = nx.DiGraph()
    for i, vid in enumerate(idle):
        g.add_node(("bus", vid), demand=-1)
        for j, z in enumerate(zone_ids):
            g.add_edge(("bus", vid), ("zone", z), weight=0 if home[vid] == z else int(cost[i, j]))
        g.add_edge(("bus", vid), "stay", weight=0)
    for z in zone_ids:
        g.add_node(("zone", z), demand=want[z])
    g.add_node("stay", demand=len(idle) - sent)
    flow = nx.min_cost_flow(g)
    out: dict[str, Place | None] = {}
    for i, vid in enumerate(idle):
        (where,) = [k for k, f in flow[("bus", vid)].items() if f > 0]
        if where == "stay":
            out[vid] = None
            continue
        z = where[1]
        near = home[vid] == z or cost[i, zone_ids.index(z)] < params.min_drive_s
        out[vid] = None if near else zones[z].place
    return out


M_PER_DEG_LAT = 111_320.0


class CellForecast:
    """Expected pickups per square cell (``cell_m``) from pickups seen on ``nights`` earlier
    (or sampled) nights: a zone's expected demand over a span is the mean count there and
    then; its place is the road point nearest the mean of its pickups (``place``)."""

    def __init__(
        self,
        pickups: Sequence[tuple[float, float, int]],
        nights: int,
        place: Callable[[float, float], Place],
        *,
        cell_m: float = 2000.0,
    ) -> None:
        if cell_m <= 0 or nights < 1:
            raise ValueError("cell_m must be > 0 and nights >= 1")
        self.cell_m, self.nights = cell_m, nights
        # the grid's origin: the mean of the pickups
        self._lat0 = statistics.fmean(p[0] for p in pickups) if pickups else 0.0
        self._lon0 = statistics.fmean(p[1] for p in pickups) if pickups else 0.0
        self._cos = math.cos(math.radians(self._lat0))
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        times: dict[str, list[int]] = defaultdict(list)
        for lat, lon, t in pickups:
            z = self.zone_of(lat, lon)
            points[z].append((lat, lon))
            times[z].append(int(t))
        self._times = {z: sorted(v) for z, v in times.items()}
        self._zones = tuple(
            Zone(
                z,
                place(
                    statistics.fmean(p[0] for p in points[z]),
                    statistics.fmean(p[1] for p in points[z]),
                ),
            )
            for z in sorted(points)
        )

    def zones(self) -> Sequence[Zone]:
        return self._zones

    def zone_of(self, lat: float, lon: float) -> str:
        x = (lon - self._lon0) * self._cos * M_PER_DEG_LAT
        y = (lat - self._lat0) * M_PER_DEG_LAT
        return f"{math.floor(x / self.cell_m)}:{math.floor(y / self.cell_m)}"

    def expected(self, t0_s: int, t1_s: int) -> dict[str, float]:
        out = {}
        for z, ts in self._times.items():
            n = bisect.bisect_left(ts, t1_s) - bisect.bisect_left(ts, t0_s)
            if n:
                out[z] = n / self.nights
        return out


def _latlon(state: FleetState, vid: str) -> tuple[float, float]:
    s = state.states[vid]
    if s.lat is not None and s.lon is not None:
        return s.lat, s.lon
    depot = state.vehicles[vid].depot  # not reported yet: still at the depot
    return depot.lat, depot.lon
