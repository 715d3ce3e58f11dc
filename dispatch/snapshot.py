"""Fleet state <-> routing problem: how the dispatcher puts a FleetState to the solvers and
their answer back into plans.

A :class:`Snapshot` is a FleetState as a RoutingProblem (open bookings as requests, buses where
and from when they are free, their plans as routes) with the maps back to booking and bus ids.
:class:`ProblemBuilder` makes them, and keeps one cache: the problem of the last state's buses,
bookings and plans (not its clock), so that a quote on an unchanged fleet only appends its own
request and its two places instead of rebuilding the whole problem.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from dispatch.policies import RequestWindows, ServicePolicy
from nachtbus.domain import (
    BookingRequest,
    BookingStatus,
    FleetState,
    Plan,
    PlannedStop,
    StopType,
    latest_dropoff_s,
)
from routing.insertion import Inserter
from routing.problem import RequestSpec, RoutingProblem, Stop, StopKind, VehicleSpec

#: The id of the request being quoted in a snapshot's booking ids.
NEW = "__new__"


class TravelTimeSource(Protocol):
    """What the dispatcher needs from routing: travel times between nodes, and the length of
    the fastest path (for fares and the distance account)."""

    def times_s(self, nodes: list[int]) -> NDArray[np.int32]: ...

    def times_between(self, sources: list[int], targets: list[int]) -> NDArray[np.int32]: ...

    def warm_up(self) -> None: ...

    def distance_m(self, u: int, v: int) -> int: ...


@dataclass(frozen=True)
class Snapshot:
    """A FleetState as a RoutingProblem, with the maps back to ids."""

    problem: RoutingProblem
    booking_ids: tuple[str, ...]
    vehicle_ids: tuple[str, ...]
    routes: tuple[tuple[Stop, ...], ...]
    #: an Inserter over the same open bookings (its request arrays are reused)
    reuse: Inserter | None = None


@dataclass(frozen=True)
class _Base:
    """What a snapshot takes from a state's buses, bookings and plans, but not from its clock.

    Built once per such state and shared by every quote on it: a quote only appends its own
    request (and its two places). ``key`` holds the state's maps themselves: they are
    immutable, and holding them keeps their identities from being reused.
    """

    key: tuple[object, ...]
    booking_ids: tuple[str, ...]
    vehicle_ids: tuple[str, ...]
    routes: tuple[tuple[Stop, ...], ...]
    nodes: tuple[int, ...]  # problem location -> road node (the depots' ends last)
    node_index: dict[int, int]
    ends: dict[int, int]  # depot node -> the location where a shift ends there
    inserter: Inserter  # over the open bookings' problem (requests and times below)

    @property
    def requests(self) -> tuple[RequestSpec, ...]:
        return self.inserter.problem.requests

    @property
    def time_s(self) -> NDArray[np.int64]:
        return self.inserter.problem.time_s

    @property
    def cost(self) -> NDArray[np.int64] | None:
        return self.inserter.problem.cost


def _free_return(t: NDArray[np.int64], ends: dict[int, int]) -> NDArray[np.int64]:
    """The arc costs of a live snapshot: the travel times, but the drive to where a shift
    ends costs nothing. During the night a bus waits where it set its last rider down; it
    drives home only at the end of its shift, whatever it did before. The return stays in
    the times, so a plan must still bring the bus home by its shift's end; but a plan whose
    last stop lies far from the depot gets no rebate for it (with the return as a cost, a
    trip added at the end of a plan costs ``t(last, o) + t(o, d) + t(d, depot) - t(last,
    depot)``: buses far from home look cheap, whether or not they are near the rider)."""
    cost = t.copy()
    cost[:, list(ends.values())] = 0
    return cost


def _late_rides(
    requests: tuple[RequestSpec, ...],
    vehicles: tuple[VehicleSpec, ...],
    t: NDArray[np.int64],
    reported_s: list[int],
) -> tuple[RequestSpec, ...] | None:
    """Riders on board a bus that can no longer set them down within their ride limit: the
    limit (and the latest arrival planned) becomes the earliest the bus can still do it.

    The earliest drop-off is after the bus's fixed stops (the one it is driving to), then
    straight there, counted from the bus's last report (``reported_s``: where it was, or
    when it was done at its last stop), not from now: only the road makes a rider later,
    never the bus standing (held by its plan, or waiting at a door), so no wait the engine
    chose can stretch a ride; such a plan is left without a solution, as before, until
    the bus moves on. A rider whose ride would still fit keeps the limit as it is, however the
    plan now has them (a rider who boarded earlier than planned, say: the search puts the
    drop-off sooner). Two or more such riders on one bus are set down nearest first, each
    limit the time of that chain. Without this a problem holding such a rider has no solution,
    and every round and rescue of the whole fleet fails until the rider is set down. Nothing
    is relaxed beyond what the bus can do at best, so a search cannot use it to make a ride
    longer than it has to be. None: every rider on board is in time (nothing changed).
    """
    out = list(requests)
    onboard: dict[int, list[int]] = {}
    for r, req in enumerate(requests):
        if req.onboard_vehicle is not None:
            onboard.setdefault(req.onboard_vehicle, []).append(r)
    for v, riders in onboard.items():
        spec = vehicles[v]
        loc, ready = spec.start, min(spec.start_s, reported_s[v])
        done: set[int] = set()
        for r, kind in spec.fixed:  # the bus's committed stops first, in their order
            req = out[r]
            nxt = req.pickup if kind == StopKind.PICKUP else req.dropoff
            lo = req.pickup_window[0] if kind == StopKind.PICKUP else req.dropoff_window[0]
            begin = max(ready + int(t[loc, nxt]), lo)
            if kind == StopKind.DROPOFF and req.onboard_vehicle == v:
                out[r] = _no_later_than(req, begin)
                done.add(r)
            service = req.pickup_service_s if kind == StopKind.PICKUP else req.dropoff_service_s
            loc, ready = nxt, begin + service
        late = []
        for r in riders:
            if r in done:
                continue
            req = out[r]
            begin = ready + int(t[loc, req.dropoff])
            if _ride(req, begin) > req.max_ride_s or begin > req.dropoff_window[1]:
                late.append((begin, r))
        for _, r in sorted(late):  # nearest first, one after the other
            req = out[r]
            begin = max(ready + int(t[loc, req.dropoff]), req.dropoff_window[0])
            out[r] = _no_later_than(req, begin)
            loc, ready = req.dropoff, begin + req.dropoff_service_s
    if all(a is b for a, b in zip(out, requests, strict=True)):
        return None
    return tuple(out)


def _ride(req: RequestSpec, dropoff_s: int) -> int:
    assert req.picked_up_s is not None
    return dropoff_s - (req.picked_up_s + req.pickup_service_s)


def _no_later_than(req: RequestSpec, dropoff_s: int) -> RequestSpec:
    """``req`` (on board) with its ride limit and latest drop-off no tighter than ``dropoff_s``."""
    ride, (lo, hi) = _ride(req, dropoff_s), req.dropoff_window
    if ride <= req.max_ride_s and dropoff_s <= hi:
        return req
    return replace(
        req, max_ride_s=max(req.max_ride_s, ride), dropoff_window=(lo, max(hi, dropoff_s))
    )


def request_spec(
    request: BookingRequest,
    w: RequestWindows,
    pickup: int,
    dropoff: int,
    penalty: int,
    key: str,
    buffer_s: int = 0,
) -> RequestSpec:
    """An optional request (left out at ``penalty``) with the windows the policy gave it, at
    problem locations ``pickup`` and ``dropoff``; planned to be ``buffer_s`` inside the ends
    of its promise (the plan's slack for the road, see ``ServicePolicy.plan_buffer_s``)."""
    window = (w.pickup_earliest_s, w.pickup_latest_s)
    return RequestSpec(
        pickup=pickup,
        dropoff=dropoff,
        pickup_window=(window[0], max(window[0], window[1] - buffer_s)),
        dropoff_window=(0, latest_dropoff_s(window, w.max_ride_s) - buffer_s),
        seats=request.seats,
        wheelchairs=request.wheelchairs,
        pickup_service_s=w.pickup_dwell_s,
        dropoff_service_s=w.dropoff_dwell_s,
        max_ride_s=w.max_ride_s,
        required=False,
        penalty=penalty,
        key=key,
    )


class ProblemBuilder:
    """Snapshots of fleet states for one road network and set of rules (see the module doc).

    The cache is replaced whole, never changed, so threads may share a builder.
    """

    def __init__(
        self, times: TravelTimeSource, policy: ServicePolicy, wait_weight_pct: int = 20
    ) -> None:
        self.times = times
        self.policy = policy
        self.wait_weight_pct = wait_weight_pct
        self._last_base: _Base | None = None

    def base(self, state: FleetState) -> _Base:
        key = (state.vehicles, state.states, state.plans, state.bookings)
        last = self._last_base
        if last is not None and all(a is b for a, b in zip(last.key, key, strict=True)):
            return last
        p = self.policy
        vehicle_ids = tuple(sorted(state.vehicles))
        open_bookings = sorted(
            (b for b in state.bookings.values() if b.status.open), key=lambda b: b.booking_id
        )
        node_index: dict[int, int] = {}

        def loc(node: int) -> int:
            return node_index.setdefault(node, len(node_index))

        requests: list[RequestSpec] = []
        vindex = {vid: i for i, vid in enumerate(vehicle_ids)}
        for b in open_bookings:
            r = b.request
            dwell = p.dwell(r.wheelchairs)
            onboard = b.status == BookingStatus.STARTED
            # planned with the buffer inside the promise, unless the plan already goes
            # later: then no later than it does. A bus that runs late (the road was slower
            # than the model) may already be due past the promise; that stop is then planned
            # no later than its ETA, which nothing may push back, so that the plans stay
            # feasible and the rest of the fleet is still re-planned and rescued around it.
            # Not a pickup the bus is already at: there the rider is late, not the bus, and
            # the no-show rule says how long it waits (kept at the promise)
            buf = p.plan_buffer_s
            lo, hi = b.pickup_window
            pick_hi = max(lo, hi - buf)
            if b.pickup_eta_s is not None and b.pickup_eta_s > pick_hi:
                pick_hi = b.pickup_eta_s
                if b.vehicle_id is not None and (
                    state.states[b.vehicle_id].arrived_node == r.origin.node
                ):
                    pick_hi = min(hi, pick_hi)
            drop_hi = b.latest_dropoff_s - buf
            if b.dropoff_eta_s is not None and b.dropoff_eta_s > drop_hi:
                drop_hi = b.dropoff_eta_s
            requests.append(
                RequestSpec(
                    pickup=loc(r.origin.node),
                    dropoff=loc(r.destination.node),
                    pickup_window=(lo, pick_hi),
                    dropoff_window=(0, drop_hi),
                    seats=r.seats,
                    wheelchairs=r.wheelchairs,
                    pickup_service_s=dwell,
                    dropoff_service_s=dwell,
                    max_ride_s=b.max_ride_s,
                    required=True,
                    onboard_vehicle=vindex[b.vehicle_id] if onboard and b.vehicle_id else None,
                    picked_up_s=b.picked_up_s if onboard else None,
                    key=b.booking_id,
                )
            )
        booking_ids = tuple(b.booking_id for b in open_bookings)
        rindex = {bid: i for i, bid in enumerate(booking_ids)}
        routes = []
        for vid in vehicle_ids:
            loc(state.states[vid].node)  # the depots are the ends, added below
            routes.append(
                tuple(
                    (
                        rindex[st.booking_id],
                        StopKind.PICKUP if st.type == StopType.PICKUP else StopKind.DROPOFF,
                    )
                    for st in state.plans[vid].stops
                )
            )
        depots = sorted({v.depot.node for v in state.vehicles.values()})
        ends = {node: len(node_index) + k for k, node in enumerate(depots)}
        nodes = (*node_index, *depots)
        t = np.asarray(self.times.times_s(list(nodes)), dtype=np.int64)
        problem = RoutingProblem(
            time_s=t,
            vehicles=self.vehicles(state, vehicle_ids, node_index, routes, ends),
            requests=tuple(requests),
            cost=_free_return(t, ends),
        )
        base = _Base(
            key=key,
            booking_ids=booking_ids,
            vehicle_ids=vehicle_ids,
            routes=tuple(routes),
            nodes=nodes,
            node_index=node_index,
            ends=ends,
            inserter=Inserter(problem, wait_weight_pct=self.wait_weight_pct),
        )
        self._last_base = base
        return base

    def vehicles(
        self,
        state: FleetState,
        vehicle_ids: tuple[str, ...],
        node_index: dict[int, int],
        routes: list[tuple[Stop, ...]] | tuple[tuple[Stop, ...], ...],
        ends: dict[int, int],
    ) -> tuple[VehicleSpec, ...]:
        """The buses as the solvers see them now (where and from when each one is free, and
        where their shifts end: ``ends``, see :func:`_free_return`)."""
        out = []
        for vid, route in zip(vehicle_ids, routes, strict=True):
            v, s, plan = state.vehicles[vid], state.states[vid], state.plans[vid]
            start_s = self.free_from(state, vid)
            end_latest, fixed = v.shift_end_s, route[: plan.fixed]
            if v.out_of_service is not None:
                # out of service: only the riders on board, in the order planned, and no time
                # for anything else (no search or insertion can give it another trip)
                home = int(self.times.times_s([s.node, v.depot.node])[0, 1])
                end_latest = max(plan.end_s or 0, start_s + home)
                fixed = route
            out.append(
                VehicleSpec(
                    start=node_index[s.node],
                    start_s=start_s,
                    seats=v.seats,
                    wheelchairs=v.wheelchair_places,
                    end=ends[v.depot.node],
                    end_latest_s=end_latest,
                    fixed=fixed,
                    key=vid,
                )
            )
        return tuple(out)

    def snapshot(
        self,
        state: FleetState,
        extra: tuple[BookingRequest, RequestWindows] | None = None,
        *,
        relax_late_rides: bool = True,
    ) -> Snapshot:
        """``state`` as a routing problem (with the request being quoted, ``extra``). A rider
        on board a bus that can no longer keep their ride limit is planned no later than the
        bus can set them down (:func:`_late_rides`), unless ``relax_late_rides`` is False
        (to ask whether a plan keeps every limit as promised, as the no-show rule does)."""
        base = self.base(state)
        vehicles = self.vehicles(state, base.vehicle_ids, base.node_index, base.routes, base.ends)
        requests = base.requests
        reuse: Inserter | None = base.inserter
        if relax_late_rides:
            reported = [
                max(state.states[vid].at_s, state.vehicles[vid].shift_start_s)
                for vid in base.vehicle_ids
            ]
            relaxed = _late_rides(requests, vehicles, base.time_s, reported)
            if relaxed is not None:  # other requests than the base's: its arrays do not fit
                requests, reuse = relaxed, None
        if extra is None:
            problem = RoutingProblem(base.time_s, vehicles, requests, base.cost)
            return Snapshot(problem, base.booking_ids, base.vehicle_ids, base.routes, reuse)
        r, w = extra
        node_index, t, cost = base.node_index, base.time_s, base.cost
        new_nodes = [
            n for n in dict.fromkeys((r.origin.node, r.destination.node)) if n not in node_index
        ]
        if new_nodes:
            n_old = len(base.nodes)
            node_index = {**node_index, **{n: n_old + k for k, n in enumerate(new_nodes)}}
            n_all = n_old + len(new_nodes)
            all_nodes = [*base.nodes, *new_nodes]
            t = np.empty((n_all, n_all), dtype=np.int64)
            t[:n_old, :n_old] = base.time_s
            t[n_old:, :] = self.times.times_between(new_nodes, all_nodes)
            t[:n_old, n_old:] = self.times.times_between(list(base.nodes), new_nodes)
            cost = _free_return(t, base.ends)
        spec = request_spec(
            r,
            w,
            node_index[r.origin.node],
            node_index[r.destination.node],
            self.policy.unserved_penalty,
            NEW,
            self.policy.plan_buffer_s,
        )
        problem = RoutingProblem(t, vehicles, (*requests, spec), cost)
        return Snapshot(problem, (*base.booking_ids, NEW), base.vehicle_ids, base.routes, reuse)

    def inserter(self, snap: Snapshot) -> Inserter:
        return Inserter(snap.problem, wait_weight_pct=self.wait_weight_pct, reuse=snap.reuse)

    def free_from(self, state: FleetState, vehicle_id: str) -> int:
        """When the bus leaves its reported position for its next stop.

        A fixed first stop means the bus left its last reported position at that report's time
        and is on its way, or, arrived there, serves it and leaves no earlier than now;
        otherwise it can only leave from now on.
        """
        s, v = state.states[vehicle_id], state.vehicles[vehicle_id]
        plan = state.plans[vehicle_id]
        if plan.fixed > 0:
            first = plan.stops[0]
            if s.arrived_node == first.place.node:
                # arrived and still there (waiting for the rider): it leaves no earlier than
                # now, so the stop's service cannot have ended before now
                dwell = self.policy.dwell(first.wheelchairs)
                return max(s.at_s, state.now_s - dwell, v.shift_start_s)
            return max(s.at_s, v.shift_start_s)
        return max(state.now_s, s.at_s, v.shift_start_s)

    def plan(
        self,
        snap: Snapshot,
        state: FleetState,
        v: int,
        route: tuple[Stop, ...],
        times: tuple[int, ...],
        fixed: int,
        end_s: int | None,
        extra: BookingRequest | None = None,
    ) -> Plan:
        stops = []
        for (r, kind), eta in zip(route, times, strict=True):
            bid = snap.booking_ids[r]
            req = extra if bid == NEW and extra is not None else state.bookings[bid].request
            if bid == NEW:  # the planned window; confirming writes the promise in
                spec = snap.problem.requests[r]
                window = (
                    spec.pickup_window
                    if kind == StopKind.PICKUP
                    else (spec.pickup_window[0], spec.dropoff_window[1])
                )
            else:  # the promise (the plan keeps its buffer inside it)
                b = state.bookings[bid]
                window = (
                    b.pickup_window
                    if kind == StopKind.PICKUP
                    else (b.pickup_window[0], b.latest_dropoff_s)
                )
            stops.append(
                PlannedStop(
                    booking_id=bid,
                    type=StopType.PICKUP if kind == StopKind.PICKUP else StopType.DROPOFF,
                    place=req.origin if kind == StopKind.PICKUP else req.destination,
                    eta_s=int(eta),
                    window=window,
                    passengers=req.passengers,
                    wheelchairs=req.wheelchairs,
                )
            )
        return Plan(snap.vehicle_ids[v], tuple(stops), fixed=min(fixed, len(stops)), end_s=end_s)
