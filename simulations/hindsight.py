"""The hindsight bound: the same night solved as one static problem, every request known ahead.

A planner's yardstick for the online dispatcher. The night's requests become one pickup-and-
delivery problem with the rules the online service applies:

- each request gets the windows the policy gives it at the moment it is asked (immediate:
  pickup within ``max_wait_s`` of asking; pre-booked: ``prebook_window_s`` after the asked
  time), its ride-time limit and its dwell times; a request the rules refuse (too short, outside
  the service hours, too many travellers, ...) is left out, as online;
- every bus starts at its depot at the start of the night and must be back by its shift end;
- every request is optional (left out at the policy's ``unserved_penalty``), so the search
  serves as many as it can, then drives as little as it can;
- riders who do not come to the pickup are not in it, and a rider who cancels rides only if
  picked up before the cancellation (the pickup window ends then): with hindsight nobody
  drives for them. This makes the bound optimistic, as a bound should be.

It is solved with cheapest insertion and our ruin and recreate (:mod:`routing.lns`) for a
settable time and step limit. Its KPIs use the online run's definitions (the CO2 account of
:mod:`nachtbus.billing.co2` over the same kind of driven legs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dispatch.dispatcher import pickup_is_far
from dispatch.policies import RequestWindows, ServicePolicy
from dispatch.snapshot import TravelTimeSource, request_spec
from nachtbus.billing.co2 import Co2Params, Leg, account
from nachtbus.domain import BookingRequest, Rejection, Vehicle
from routing.lns import LnsParams
from routing.problem import RequestSpec, RoutingProblem, Solution, Stop, StopKind, VehicleSpec
from routing.solver import InsertionParams, SolveParams, solve
from simulations.kpis import hour_of


@dataclass(frozen=True)
class HindsightParams:
    """How long the static solve may search: wall seconds and ruin-and-recreate steps (None:
    only the time); with a step limit alone the bound is reproducible."""

    seconds: float = 60.0
    max_steps: int | None = None
    seed: int = 0
    #: while searching, a request left out costs this many average arcs: high, because the
    #: bound is first of all about how many riders could be served
    miss_factor: float = 50.0

    def __post_init__(self) -> None:
        if not 0 < self.seconds <= 3600:
            raise ValueError(f"seconds must be in (0, 3600], got {self.seconds}")
        if self.max_steps is not None and self.max_steps < 0:
            raise ValueError(f"the step limit must be >= 0, got {self.max_steps}")


@dataclass(frozen=True)
class HindsightRequest:
    """One request of the night: what was asked, and when."""

    key: str
    request: BookingRequest
    asked_s: int
    district: str
    cancel_at_s: int | None = None  # the rider cancels then, unless picked up before
    arrive_by_s: int | None = None  # must arrive by then (to a train), as promised online


@dataclass(frozen=True)
class HindsightNight:
    """The static problem of a night and what maps it back to the requests."""

    problem: RoutingProblem
    requests: tuple[HindsightRequest, ...]  # index = request index in the problem
    nodes: tuple[int, ...]  # problem location -> road node
    refused: dict[str, str]  # request key -> the rule that refuses it (not in the problem)
    vehicle_ids: tuple[str, ...]


def build(
    times: TravelTimeSource,
    policy: ServicePolicy,
    vehicles: Sequence[Vehicle],
    night_start_s: int,
    requests: Sequence[HindsightRequest],
) -> HindsightNight:
    """The static problem: each request with the windows the policy gives it when asked."""
    node_index: dict[int, int] = {}

    def loc(node: int) -> int:
        return node_index.setdefault(node, len(node_index))

    depots = [v.depot.node for v in vehicles]
    kept: list[HindsightRequest] = []
    specs: list[RequestSpec] = []
    refused: dict[str, str] = {}
    for hr in requests:
        r = hr.request
        direct = int(times.times_s([r.origin.node, r.destination.node])[0, 1])
        far = pickup_is_far(times, policy, depots, r.origin.node)
        w = policy.windows(r, direct, hr.asked_s, far=far)
        if isinstance(w, RequestWindows) and hr.arrive_by_s is not None:
            tries = policy.arrive_by_windows(r, w, hr.arrive_by_s, direct)
            # the widest pickup window of those the online service tries (one problem, one
            # window per request; an optimistic bound's choice)
            w = tries if isinstance(tries, Rejection) else tries[-1]
        if not isinstance(w, RequestWindows):
            refused[hr.key] = w.reason.value
            continue
        if hr.cancel_at_s is not None:  # only a pickup before the cancellation is a ride
            if hr.cancel_at_s <= w.pickup_earliest_s:
                refused[hr.key] = "cancelled"
                continue
            w = replace(w, pickup_latest_s=min(w.pickup_latest_s, hr.cancel_at_s - 1))
        if not any(v.seats >= r.seats and v.wheelchair_places >= r.wheelchairs for v in vehicles):
            refused[hr.key] = "too_many_travellers"
            continue
        specs.append(
            request_spec(
                r,
                w,
                loc(r.origin.node),
                loc(r.destination.node),
                policy.unserved_penalty,
                hr.key,
                policy.plan_buffer_s,
            )
        )
        kept.append(hr)
    vspecs = tuple(
        VehicleSpec(
            start=loc(v.depot.node),
            start_s=max(night_start_s, v.shift_start_s),
            seats=v.seats,
            wheelchairs=v.wheelchair_places,
            end=loc(v.depot.node),
            end_latest_s=v.shift_end_s,
            key=v.vehicle_id,
        )
        for v in vehicles
    )
    nodes = tuple(node_index)
    t = np.asarray(times.times_s(list(nodes)), dtype=np.int64)
    return HindsightNight(
        RoutingProblem(t, vspecs, tuple(specs)),
        tuple(kept),
        nodes,
        refused,
        tuple(v.vehicle_id for v in vehicles),
    )


def solve_night(night: HindsightNight, params: HindsightParams) -> Solution:
    """Insertion, then ruin and recreate within ``params``; never None (all optional)."""
    sp = SolveParams(
        insertion=InsertionParams(tries=5, seed=params.seed),
        lns=LnsParams(
            time_limit_s=params.seconds,
            max_steps=params.max_steps,
            seed=params.seed,
            miss_factor=params.miss_factor,
        ),
        ortools=None,
        time_limit_s=params.seconds + 30,
    )
    sol = solve(night.problem, sp)
    assert sol is not None  # nothing is required
    return sol


def legs(night: HindsightNight, sol: Solution, times: TravelTimeSource) -> list[Leg]:
    """The driven legs of the static plan, with who is on board (for the CO2 account)."""
    out: list[Leg] = []
    p = night.problem
    for v, route in enumerate(sol.routes):
        if not route:
            continue
        spec = p.vehicles[v]
        onboard: dict[str, int] = {}
        at, at_s = spec.start, sol.start_times[v]
        stops: list[tuple[int, int, Stop | None]] = [
            (p.location(s), sol.times[v][k], s) for k, s in enumerate(route)
        ]
        assert spec.end is not None
        stops.append((spec.end, sol.end_times[v], None))
        for loc, when, stop in stops:
            u, w = night.nodes[at], night.nodes[loc]
            if u != w:
                out.append(
                    Leg(
                        night.vehicle_ids[v],
                        u,
                        w,
                        at_s,
                        when,
                        times.distance_m(u, w),
                        dict(onboard),
                    )
                )
            if stop is not None:
                hr = night.requests[stop[0]]
                if stop[1] == StopKind.PICKUP:
                    onboard[hr.key] = hr.request.passengers
                else:
                    onboard.pop(hr.key, None)
            at, at_s = loc, when
    return out


def kpis(
    night: HindsightNight, sol: Solution, times: TravelTimeSource, co2: Co2Params
) -> dict[str, Any]:
    """Served (overall and per district), km, bus km per direct km and CO2 of the bound."""
    served = {night.requests[r].key for route in sol.routes for r, k in route if k == 0}
    direct = {
        hr.key: times.distance_m(hr.request.origin.node, hr.request.destination.node)
        for hr in night.requests
    }
    pax = {hr.key: hr.request.passengers for hr in night.requests}
    acc = account(legs(night, sol, times), direct, pax, co2)
    direct_km = sum(direct[k] for k in served) / 1000
    n = len(night.requests)
    return {
        # the requests the bound could plan: allowed by the rules, not cancelled before their
        # pickup could start (the night's own count of requests is the online run's)
        "planned": n,
        "refused_by_rules": dict(Counter(night.refused.values())),
        "served": len(served),
        "served_share": len(served) / n if n else None,
        "vehicle_km": acc.vehicle_km,
        "empty_km": acc.empty_km,
        "passenger_km": acc.passenger_km,
        "direct_km": direct_km,
        "bus_km_per_direct_km": acc.vehicle_km / direct_km if direct_km else None,
        "pooled_share": acc.pooled_share,
        "bus_kg_co2": acc.bus_kg,
        "car_kg_co2": acc.car_kg,
        "co2_saved_kg": acc.saved_kg,
        "counterfactual_kg_co2": acc.counterfactual_kg,
        "co2_saved_counterfactual_kg": acc.saved_counterfactual_kg,
        "reposition_km": 0.0,
        "districts": dict(
            sorted(_served_by(night.requests, served, lambda hr: hr.district).items())
        ),
        "hours": _served_by(
            sorted(night.requests, key=lambda hr: hr.asked_s),
            served,
            lambda hr: hour_of(hr.asked_s),
        ),
        "search": {k: v for k, v in sol.info.items() if k in ("lns_steps", "seconds")},
    }


def _served_by(
    requests: Sequence[HindsightRequest], served: set[str], group: Callable[[HindsightRequest], str]
) -> dict[str, dict[str, Any]]:
    """Requests and served ones per group (a district, an hour of asking), in the order the
    groups first come."""
    counts: dict[str, Counter[str]] = {}
    for hr in requests:
        c = counts.setdefault(group(hr), Counter())
        c["requests"] += 1
        c["served"] += hr.key in served
    return {
        g: {
            "requests": c["requests"],
            "served": c["served"],
            "served_share": c["served"] / c["requests"] if c["requests"] else None,
        }
        for g, c in counts.items()
    }


def requests_of_trips(
    trips: Sequence[Any],
    place: Callable[[float, float, str], Any],
    district_of: Callable[[float, float], str | None],
    trains: Callable[[Any, BookingRequest], tuple[BookingRequest, int | None]] | None = None,
) -> tuple[list[HindsightRequest], dict[str, str]]:
    """The simulator's trips as hindsight requests (riders who do not come left out; a rider
    who cancels with the time of the cancellation); trips whose points are off the map are
    returned as refused, with the reason. ``trains`` gives a rider who meets a train its
    request as the service would make it (the station, the train's final delay) and the
    arrival it must keep, if any."""
    from nachtbus.errors import NachtbusError

    out: list[HindsightRequest] = []
    refused: dict[str, str] = {}
    for t in trips:
        if t.no_show:
            continue
        try:
            req = BookingRequest(
                request_id=t.trip_id,
                origin=place(t.origin[0], t.origin[1], "from"),
                destination=place(t.destination[0], t.destination[1], "to"),
                requested_at_s=t.ask_s,
                pickup_at_s=t.pickup_s,
                passengers=t.passengers,
                wheelchairs=t.wheelchairs,
                prams=t.prams,
            )
            arrive_by = None
            if trains is not None and t.train:
                req, arrive_by = trains(t, req)
        except NachtbusError as exc:
            refused[t.trip_id] = exc.code
            continue
        district = district_of(*t.origin) or "(outside districts)"
        cancel = None if t.cancel_after_s is None else t.ask_s + t.cancel_after_s
        out.append(HindsightRequest(t.trip_id, req, t.ask_s, district, cancel, arrive_by))
    return out, refused
