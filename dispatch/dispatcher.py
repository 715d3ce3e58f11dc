"""offer / confirm / cancel / vehicle progress / reoptimise over a pure FleetState snapshot.

Every method takes a snapshot and returns a new one (or an Offer / Rejection), so the API (with
its store) and the simulator drive exactly the same code. The only thing kept between calls is
the cache of :class:`dispatch.snapshot.ProblemBuilder` (the last fleet's routing problem), which
changes no answer: a quote on an unchanged fleet just does not rebuild it.

Promises: a booked rider's pickup window and ride-time limit never change; the dispatcher only
accepts plans that keep them (the insertion checks them, and every re-optimised plan must pass
the independent checker). Riders on board stay on their bus. A bus that runs late (the road
was slower than the model) can be due past a promise; that stop is then planned no later
than it is due, never later, and the other buses are re-planned around it as before
(:class:`dispatch.snapshot.ProblemBuilder`). Likewise a rider on board such a bus, past
their ride limit: planned to be set down as early as the bus can still do it from where it
last reported (``dispatch.snapshot._late_rides``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dispatch.policies import RequestWindows, ServicePolicy
from dispatch.snapshot import NEW, ProblemBuilder, Snapshot, TravelTimeSource
from nachtbus.domain import (
    INPUT_REASONS,
    Booking,
    BookingRequest,
    BookingStatus,
    FleetState,
    Offer,
    Place,
    Plan,
    PlannedStop,
    Rejection,
    RejectionReason,
    StopType,
    Vehicle,
    latest_dropoff_s,
)
from nachtbus.errors import (
    BookingStateError,
    MoveRefused,
    NotArrived,
    StopNotInPlan,
    TooEarly,
    UnknownBooking,
    UnknownVehicle,
    VehicleBusy,
)
from routing.checker import violations
from routing.insertion import Fail, Inserter, Insertion, solution_from_routes
from routing.lns import LnsParams, improve
from routing.lns import warm_up as lns_warm_up
from routing.problem import RequestSpec, RoutingProblem, Solution, StopKind, VehicleSpec
from routing.solver import SolveParams, solve

#: in a rescue, a trip left out costs this many average arcs: the search is there to take it
RESCUE_MISS = 50.0


@dataclass(frozen=True)
class RescueRun:
    """One rescue search: the steps it did (of ``policy.rescue_steps``; fewer when
    ``rescue_time_ms`` stopped it), its seconds, and whether it found a plan."""

    steps: int
    seconds: float
    found: bool


_FAIL_REASON = {
    Fail.WINDOW: RejectionReason.NO_VEHICLE_IN_TIME,
    Fail.SEATS: RejectionReason.FLEET_FULL,
    Fail.WHEELCHAIRS: RejectionReason.NO_WHEELCHAIR_PLACE,
    Fail.RIDE_TIME: RejectionReason.DETOUR_TOO_LONG,
    Fail.SHIFT: RejectionReason.SHIFT_ENDS,
}
#: rejections that another pickup time may overcome (counter-offers are tried for them)
SHIFTABLE = frozenset(
    {
        RejectionReason.NO_VEHICLE_IN_TIME,
        RejectionReason.FLEET_FULL,
        RejectionReason.NO_WHEELCHAIR_PLACE,
        RejectionReason.DETOUR_TOO_LONG,
    }
)
_FAIL_TEXT = {
    Fail.WINDOW: "no bus can reach the pickup within the pickup window",
    Fail.SEATS: "every bus that could come is full",
    Fail.WHEELCHAIRS: "no wheelchair place is free on a bus that could come",
    Fail.RIDE_TIME: "taking this trip would make another rider's ride too long",
    Fail.SHIFT: "the trip would end after the buses' shifts",
}


def pickup_is_far(
    times: TravelTimeSource, policy: ServicePolicy, depots: Iterable[int], node: int
) -> bool:
    """Whether a pickup at ``node`` is ``policy.far_pickup_s`` or more by road from the
    nearest of these depots (the far-pickup rule)."""
    if policy.far_pickup_s <= 0:
        return False
    t = times.times_between(sorted(set(depots)), [node])
    return policy.is_far(int(t.min()))


#: why tonight's plan of a bus cannot take the bus the settings now describe
_REFIT_TEXT = {
    Fail.WINDOW: "its plan would miss a promised time",
    Fail.SEATS: "its plan carries more riders at once than {seats} seats",
    Fail.WHEELCHAIRS: "its plan carries more wheelchairs at once than {places} places",
    Fail.RIDE_TIME: "its plan would keep a rider on board too long",
    Fail.SHIFT: "its plan would end after its shift, back at the depot",
}


class Dispatcher:
    """The night bus's decisions, given the road times and the service rules."""

    def __init__(
        self,
        times: TravelTimeSource,
        policy: ServicePolicy | None = None,
        *,
        reopt: SolveParams | None = None,
        wait_weight_pct: int = 20,
    ) -> None:
        self.times = times
        self.policy = policy or ServicePolicy()
        self.reopt = reopt or SolveParams()
        self.wait_weight_pct = wait_weight_pct
        self.problems = ProblemBuilder(times, self.policy, wait_weight_pct)
        #: the last rescue searches (how far the live time limit lets them go)
        self.rescues: deque[RescueRun] = deque(maxlen=1000)

    def with_policy(self, policy: ServicePolicy) -> Dispatcher:
        """A dispatcher with other rules (e.g. a night's service hours), the same roads and
        search settings."""
        return Dispatcher(
            self.times, policy, reopt=self.reopt, wait_weight_pct=self.wait_weight_pct
        )

    def warm_up(self) -> None:
        """Build the road-time table and load the compiled kernels now, so that the first
        rider after a start does not wait for them (seconds on a town's network)."""
        self.times.warm_up()
        self.times.distance_m(0, 0)
        if self.policy.rescue_steps:
            lns_warm_up()
        tiny = RoutingProblem(
            np.zeros((1, 1), dtype=np.int64), (VehicleSpec(0, 0, 1),), (RequestSpec(0, 0, (0, 0)),)
        )
        Inserter(tiny).best(((),), 0)

    # ----------------------------------------------------------------- quoting and booking
    def offer(
        self,
        state: FleetState,
        request: BookingRequest,
        offer_id: str | None = None,
        arrive_by_s: int | None = None,
    ) -> Offer | Rejection:
        """The best offer for a request (nothing changes), or a Rejection with its reason;
        with ``arrive_by_s``, one whose promised latest arrival is no later."""
        direct = int(self.times.times_s([request.origin.node, request.destination.node])[0, 1])
        tries = self._windows(state, request, direct, arrive_by_s)
        if isinstance(tries, Rejection) and tries.reason in INPUT_REASONS:
            return tries  # what was asked comes first: a time in the past is that, busy or not
        pre = self._precheck(state, request)
        if pre is not None:
            return pre
        if isinstance(tries, Rejection):
            return tries
        for w in tries:  # more than one only for an arrive-by trip asked soon before
            found = self._insert(state, request, w, direct, offer_id, rescue=True)
            if isinstance(found, Offer):
                break
        return found

    def _windows(
        self, state: FleetState, request: BookingRequest, direct: int, arrive_by_s: int | None
    ) -> tuple[RequestWindows, ...] | Rejection:
        """The windows to try for a request, best first (see ``arrive_by_windows``)."""
        w = self.policy.windows(request, direct, state.now_s, far=self.is_far(state, request))
        if isinstance(w, Rejection):
            return w
        if arrive_by_s is None:
            return (w,)
        return self.policy.arrive_by_windows(request, w, arrive_by_s, direct)

    def alternatives(
        self,
        state: FleetState,
        request: BookingRequest,
        rejection: Rejection,
        offer_ids: Callable[[], str],
        *,
        earlier: bool = False,
        arrive_by_s: int | None = None,
    ) -> list[Offer]:
        """Counter-offers for a request whose wish could not be kept (``rejection``): up to
        ``policy.max_alternatives`` pickup windows ``alternative_step_s`` apart, later (or,
        ``earlier``, before it: an arrive-by trip) by at most ``alternative_shift_max_s``,
        each a feasible insertion that keeps every rule and every promise, as an offer of
        its own (with ``arrive_by_s``, each promising the arrival by then). None for a
        rejection a shift cannot help (bad input, no bus on shift)."""
        p = self.policy
        if rejection.reason not in SHIFTABLE or p.max_alternatives == 0:
            return []
        direct = int(self.times.times_s([request.origin.node, request.destination.node])[0, 1])
        tries = self._windows(state, request, direct, arrive_by_s)
        if isinstance(tries, Rejection):
            return []
        w = tries[0]
        out: list[Offer] = []
        span = w.pickup_latest_s - w.pickup_earliest_s
        sign = -1 if earlier else 1
        for k in range(1, p.alternative_shift_max_s // p.alternative_step_s + 1):
            shift = sign * k * p.alternative_step_s
            lo = w.pickup_earliest_s + shift
            if lo < state.now_s or lo > p.service_end_s:
                break
            hi = min(lo + span, p.service_end_s)
            moved = replace(w, pickup_earliest_s=lo, pickup_latest_s=hi, prebooked=True)
            found = self._insert(state, request, moved, direct, offer_ids())
            if isinstance(found, Offer):
                out.append(replace(found, shift_s=shift))
                if len(out) == p.max_alternatives:
                    break
        return out

    def is_far(self, state: FleetState, request: BookingRequest) -> bool:
        """Whether the pickup is far out: ``policy.far_pickup_s`` or more by road from the
        nearest depot of the fleet (the rule that keeps the villages served)."""
        depots = [v.depot.node for v in state.vehicles.values()]
        return bool(depots) and pickup_is_far(self.times, self.policy, depots, request.origin.node)

    def _precheck(self, state: FleetState, request: BookingRequest) -> Rejection | None:
        on_shift = [state.vehicles[vid] for vid in self.serving(state)]
        if not on_shift:
            return Rejection(
                request.request_id,
                RejectionReason.NO_VEHICLE_ON_SHIFT,
                "no bus is on shift for the rest of this night",
            )
        if request.wheelchairs and not any(
            v.wheelchair_places >= request.wheelchairs for v in on_shift
        ):
            return Rejection(
                request.request_id,
                RejectionReason.NO_WHEELCHAIR_VEHICLE,
                f"no bus has {request.wheelchairs} wheelchair place(s)",
            )
        if not any(
            v.seats >= request.seats and v.wheelchair_places >= request.wheelchairs
            for v in on_shift
        ):
            return Rejection(
                request.request_id,
                RejectionReason.TOO_MANY_TRAVELLERS,
                f"no bus has room for {request.passengers} travellers at once",
            )
        return None

    def _insert(
        self,
        state: FleetState,
        request: BookingRequest,
        w: RequestWindows,
        direct: int,
        offer_id: str | None,
        vehicles: Sequence[str] | None = None,
        *,
        rescue: bool = False,
    ) -> Offer | Rejection:
        """The cheapest insertion of the trip into the plans of ``vehicles`` (default: every
        bus in service); with ``rescue``, where there is none, the open trips re-planned
        with it (:meth:`_rescue`), the other buses' new plans in the offer's ``moves``."""
        snap = self.problems.snapshot(state, (request, w))
        new_r = len(snap.problem.requests) - 1
        if vehicles is None:  # every bus in service
            vehicles = [vid for vid, v in state.vehicles.items() if v.out_of_service is None]
        only = [snap.vehicle_ids.index(v) for v in vehicles]
        inserter = self.problems.inserter(snap)
        result = inserter.best(snap.routes, new_r, only)
        moves: tuple[Plan, ...] = ()
        if isinstance(result, Insertion):
            v, route, times, end_s = result.vehicle, result.route, result.times, result.end_s
            pickup_s, dropoff_s = result.pickup_s, result.dropoff_s
        else:
            sol = self._rescue(snap, inserter, new_r, only) if rescue else None
            if sol is None:
                fail = result.main_reason
                return Rejection(request.request_id, _FAIL_REASON[fail], _FAIL_TEXT[fail])
            v = next(u for u, r in enumerate(sol.routes) if (new_r, StopKind.PICKUP) in r)
            route, times, end_s = sol.routes[v], sol.times[v], sol.end_times[v]
            pickup_s = times[route.index((new_r, StopKind.PICKUP))]
            dropoff_s = times[route.index((new_r, StopKind.DROPOFF))]
            changed = [u for u, r in enumerate(sol.routes) if u != v and r != snap.routes[u]]
            moves = tuple(
                self.problems.plan(
                    snap,
                    state,
                    u,
                    sol.routes[u],
                    sol.times[u],
                    state.plans[snap.vehicle_ids[u]].fixed,
                    sol.end_times[u],
                )
                for u in changed
            )
        old = state.plans[snap.vehicle_ids[v]]
        plan = self.problems.plan(snap, state, v, route, times, old.fixed, end_s, extra=request)
        return Offer(
            offer_id=offer_id or f"{request.request_id}@{state.version}",
            request=request,
            vehicle_id=snap.vehicle_ids[v],
            pickup_window=(w.pickup_earliest_s, w.pickup_latest_s),
            pickup_eta_s=pickup_s,
            dropoff_eta_s=dropoff_s,
            direct_time_s=direct,
            max_ride_s=w.max_ride_s,
            fleet_version=state.version,
            plan=plan,
            expires_s=state.now_s + self.policy.offer_ttl_s,
            direct_distance_m=self.times.distance_m(request.origin.node, request.destination.node),
            moves=moves,
        )

    def _rescue(
        self, snap: Snapshot, inserter: Inserter, new_r: int, only: list[int]
    ) -> Solution | None:
        """The open trips re-planned with request ``new_r``, which no bus can take as its
        plan stands (``inserter``: the snapshot's, which found no place for it): ruin and
        recreate from the current plans for ``policy.rescue_steps`` steps, at most
        ``policy.rescue_time_ms`` (seeded: with the step limit alone the same fleet gives
        the same answer when the offer is booked; a rescued offer is kept with its plans,
        see ``RedisStore.put_offer``).
        Riders may change bus among ``only`` (the plans of the other buses stay as they
        are), the fixed first stops stay, every promise is kept (the checker decides). None:
        off, nothing to re-plan, hopeless, or not found.

        Hopeless, and not searched: no bus of ``only`` could take the trip even if it gave
        up every trip it may give up (all but its fixed stops and its riders on board)."""
        steps = self.policy.rescue_steps
        if steps == 0 or not any(snap.routes):
            return None
        problem = snap.problem
        kept = []
        for v, route in enumerate(snap.routes):
            fixed = problem.vehicles[v].fixed
            bound = {r for r, _ in fixed} | set(problem.onboard(v))
            kept.append(tuple(st for st in route if st[0] in bound))
        if not isinstance(inserter.best(tuple(kept), new_r, only), Insertion):
            return None
        start = solution_from_routes(inserter, snap.routes, (new_r,))
        if violations(problem, start):  # the plans themselves are off (a late bus)
            return None
        ms = self.policy.rescue_time_ms
        params = LnsParams(
            time_limit_s=ms / 1000 if ms else None,
            max_steps=steps,
            seed=0,
            miss_factor=RESCUE_MISS,
        )
        found = improve(problem, start, params)
        ok = not found.unserved and not violations(problem, found)
        steps_done, seconds = found.info["lns_steps"], found.info["seconds"]
        assert isinstance(steps_done, int) and isinstance(seconds, float)
        self.rescues.append(RescueRun(steps_done, seconds, ok))
        if not ok:
            return None
        allowed = set(only)
        if any(u not in allowed and r != snap.routes[u] for u, r in enumerate(found.routes)):
            return None  # it changed a bus it may not use (out of service, say)
        return found

    def confirm(
        self,
        state: FleetState,
        offer: Offer,
        booking_id: str | None = None,
        status: BookingStatus = BookingStatus.CONFIRMED,
    ) -> tuple[FleetState, Booking] | Rejection:
        """Book an offer. If the fleet changed since the offer (or the offer was kept without
        its plan), the trip is inserted again with the same promised window; if that no longer
        fits, the answer is OFFER_OUTDATED."""
        bid = booking_id or f"b-{offer.request.request_id}"
        rid = offer.request.request_id
        if bid in state.bookings:
            raise BookingStateError(f"booking {bid} exists already", field="booking_id")
        if state.now_s > offer.expires_s:
            return Rejection(rid, RejectionReason.OFFER_OUTDATED, "the offer has expired")
        if offer.fleet_version == state.version and offer.plan.stops:
            plan, vehicle_id, moves = offer.plan, offer.vehicle_id, offer.moves
            pick, drop = offer.pickup_eta_s, offer.dropoff_eta_s
        else:
            dwell = self.policy.dwell(offer.request.wheelchairs)
            w = RequestWindows(*offer.pickup_window, offer.max_ride_s, dwell, dwell, False)
            again = self._insert(
                state, offer.request, w, offer.direct_time_s, offer.offer_id, rescue=True
            )
            if isinstance(again, Rejection):
                return Rejection(
                    rid,
                    RejectionReason.OFFER_OUTDATED,
                    f"the offer can no longer be kept: {again.message}",
                )
            plan, vehicle_id, moves = again.plan, again.vehicle_id, again.moves
            pick, drop = again.pickup_eta_s, again.dropoff_eta_s
        stops = _promised(plan.stops, bid, offer.pickup_window, offer.latest_dropoff_s)
        booking = Booking(
            booking_id=bid,
            request=offer.request,
            status=status,
            vehicle_id=vehicle_id,
            pickup_window=offer.pickup_window,
            max_ride_s=offer.max_ride_s,
            direct_time_s=offer.direct_time_s,
            pickup_eta_s=pick,
            dropoff_eta_s=drop,
            updated_s=state.now_s,
            fare=offer.fare,
            direct_distance_m=offer.direct_distance_m,
        )
        plans = dict(state.plans)
        plans[vehicle_id] = replace(plan, stops=stops)
        bookings = dict(state.bookings)
        bookings[bid] = booking
        _apply_moves(plans, bookings, moves, vehicle_id)
        return state.evolve(plans=plans, bookings=bookings), bookings[bid]

    def rewindow(
        self,
        state: FleetState,
        booking_id: str,
        request: BookingRequest,
        window: tuple[int, int],
        vehicles: Sequence[str] | None = None,
        *,
        rescue: bool = True,
    ) -> FleetState | Rejection:
        """Give a booking not yet picked up a new pickup window (its train is late) or bus:
        its stops leave the plan and it is inserted again, on any bus (or one of
        ``vehicles``), with the window and its ride limit, keeping every other promise; a
        Rejection (the rule that fails) if no such bus can take it so.

        With ``rescue`` (not for a dispatcher's move to a chosen bus), where insertion finds
        no bus the open trips are re-planned with it as for a new trip (:meth:`_rescue`):
        other riders not yet picked up may change bus to make room, their promises kept."""
        b = self.booking(state, booking_id)
        if b.status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            raise BookingStateError(
                f"booking {booking_id} is {b.status}; only a booking not yet picked up can "
                "get a new window",
                field="booking_id",
            )
        without = self._drop_booking(state, b, BookingStatus.CANCELLED)
        dwell = self.policy.dwell(request.wheelchairs)
        w = RequestWindows(window[0], window[1], b.max_ride_s, dwell, dwell, True)
        found = self._insert(without, request, w, b.direct_time_s, None, vehicles, rescue=rescue)
        if isinstance(found, Rejection):
            return found
        plans = dict(without.plans)
        plans[found.vehicle_id] = replace(
            found.plan,
            stops=_promised(
                found.plan.stops, booking_id, window, latest_dropoff_s(window, b.max_ride_s)
            ),
        )
        bookings = dict(without.bookings)
        bookings[booking_id] = replace(
            b,
            request=request,
            pickup_window=window,
            vehicle_id=found.vehicle_id,
            pickup_eta_s=found.pickup_eta_s,
            dropoff_eta_s=found.dropoff_eta_s,
            updated_s=state.now_s,
        )
        _apply_moves(plans, bookings, found.moves, found.vehicle_id)
        new = state.evolve(plans=plans, bookings=bookings)
        touched = {found.vehicle_id, b.vehicle_id or found.vehicle_id}
        return self.refresh_etas(new, sorted(touched | {m.vehicle_id for m in found.moves}))

    def move(self, state: FleetState, booking_id: str, vehicle_id: str) -> FleetState:
        """A dispatcher puts a booking not yet picked up on bus ``vehicle_id``, with its
        promised window and ride limit, every other promise kept: the cheapest place in that
        bus's plan the insertion rules allow. MoveRefused names the rule that fails."""
        b = self.booking(state, booking_id)
        self.check_vehicle(state, vehicle_id)
        if b.status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            raise BookingStateError(
                f"booking {booking_id} is {b.status}; only a booking not yet picked up can move",
                field="booking_id",
            )
        if b.vehicle_id == vehicle_id:
            raise MoveRefused(f"booking {booking_id} is on {vehicle_id} already", field="vehicleId")
        v = state.vehicles[vehicle_id]
        if v.shift_end_s <= state.now_s:
            raise MoveRefused(f"{vehicle_id} is off shift", field="vehicleId")
        answer = self.rewindow(
            state, booking_id, b.request, b.pickup_window, [vehicle_id], rescue=False
        )
        if isinstance(answer, Rejection):
            raise MoveRefused(
                f"{vehicle_id} cannot take it and keep every promise ({answer.reason.value}): "
                f"{answer.message}",
                field="vehicleId",
            )
        return answer

    def take_out(
        self, state: FleetState, vehicle_id: str, reason: str
    ) -> tuple[FleetState, list[str], list[str]]:
        """A bus out of service (a breakdown): each of its riders not yet on board is put on
        another bus in service with the promised window and ride limit, every other promise
        kept, where one can take them; the others are cancelled. The riders on board stay on
        it (the control room sees them). Returns the state, the bookings re-planned and the
        bookings cancelled."""
        self.check_vehicle(state, vehicle_id)
        v = state.vehicles[vehicle_id]
        vehicles = dict(state.vehicles)
        vehicles[vehicle_id] = replace(v, out_of_service=reason or "out of service")
        new = state.evolve(vehicles=vehicles)
        others = self.serving(new)
        moved, cancelled = [], []
        waiting = sorted(
            (
                b
                for b in new.bookings.values()
                if b.vehicle_id == vehicle_id
                and b.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED)
            ),
            key=lambda b: (b.pickup_window[0], b.booking_id),
        )
        for b in waiting:
            answer = (
                self.rewindow(new, b.booking_id, b.request, b.pickup_window, others)
                if others
                else None
            )
            if isinstance(answer, FleetState):
                new = answer
                moved.append(b.booking_id)
            else:
                new = self._drop_booking(new, new.bookings[b.booking_id], BookingStatus.CANCELLED)
                cancelled.append(b.booking_id)
        return new, moved, cancelled

    @staticmethod
    def serving(state: FleetState, but: str | None = None) -> list[str]:
        """The buses that can take a trip now: on shift and in service (all but ``but``)."""
        return [
            vid
            for vid, v in state.vehicles.items()
            if vid != but and v.out_of_service is None and v.shift_end_s > state.now_s
        ]

    def back_in_service(self, state: FleetState, vehicle_id: str) -> FleetState:
        """The bus takes trips again (from where it last reported)."""
        self.check_vehicle(state, vehicle_id)
        v = state.vehicles[vehicle_id]
        if v.out_of_service is None:
            return state
        vehicles = dict(state.vehicles)
        vehicles[vehicle_id] = replace(v, out_of_service=None)
        return state.evolve(vehicles=vehicles)

    def set_status(self, state: FleetState, booking_id: str, status: BookingStatus) -> FleetState:
        """Move a booking between PENDING and CONFIRMED (the API's commit step)."""
        b = self.booking(state, booking_id)
        if b.status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            raise BookingStateError(f"booking {booking_id} is {b.status}", field="booking_id")
        bookings = dict(state.bookings)
        bookings[booking_id] = replace(b, status=status, updated_s=state.now_s)
        return state.evolve(bookings=bookings)

    def cancel(
        self, state: FleetState, booking_id: str, status: BookingStatus = BookingStatus.CANCELLED
    ) -> FleetState:
        """Cancel a booking not yet picked up: its stops leave the plan, capacity is freed."""
        b = self.booking(state, booking_id)
        if b.status not in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            raise BookingStateError(
                f"booking {booking_id} is {b.status} and can no longer be cancelled",
                field="booking_id",
            )
        return self._drop_booking(state, b, status)

    def _drop_booking(self, state: FleetState, b: Booking, status: BookingStatus) -> FleetState:
        plans = dict(state.plans)
        if b.vehicle_id is not None:
            plan = plans[b.vehicle_id]
            kept = tuple(s for s in plan.stops if s.booking_id != b.booking_id)
            removed_fixed = sum(1 for s in plan.stops[: plan.fixed] if s.booking_id == b.booking_id)
            plans[b.vehicle_id] = replace(plan, stops=kept, fixed=plan.fixed - removed_fixed)
        bookings = dict(state.bookings)
        bookings[b.booking_id] = replace(b, status=status, updated_s=state.now_s)
        new = state.evolve(plans=plans, bookings=bookings)
        return self.refresh_etas(new, [b.vehicle_id] if b.vehicle_id else [])

    def booking(self, state: FleetState, booking_id: str) -> Booking:
        """The booking, or UnknownBooking naming the field."""
        try:
            return state.bookings[booking_id]
        except KeyError:
            raise UnknownBooking(f"no booking {booking_id!r}", field="booking_id") from None

    # ----------------------------------------------------------------- vehicle progress
    def advance_clock(self, state: FleetState, now_s: int) -> FleetState:
        """Move the snapshot's clock forward (never back)."""
        if now_s < state.now_s:
            return state
        return state.evolve(now_s=now_s)

    def vehicle_position(
        self,
        state: FleetState,
        vehicle_id: str,
        node: int,
        at_s: int,
        lat: float | None = None,
        lon: float | None = None,
        *,
        arrived: bool = False,
    ) -> FleetState:
        """The bus reports where it is. If it has stops, it is driving to the first: fixed.

        ``arrived``: the driver reported ARRIVED at a stop there; boarding, alighting and
        no-shows are taken only at the place the bus arrived at, until it moves away."""
        self.check_vehicle(state, vehicle_id)
        states = dict(state.states)
        moved = replace(state.states[vehicle_id], node=node, at_s=at_s, lat=lat, lon=lon)
        if arrived:
            moved = replace(moved, arrived_node=node, arrived_s=at_s)
        else:
            moved = replace(moved, position_s=at_s)
            if moved.arrived_node != node:  # it left the stop it had arrived at
                moved = replace(moved, arrived_node=None, arrived_s=None)
        states[vehicle_id] = moved
        plans = dict(state.plans)
        plan = plans[vehicle_id]
        if plan.stops and plan.fixed == 0:
            plans[vehicle_id] = replace(plan, fixed=1)
        new = state.evolve(states=states, plans=plans, now_s=max(state.now_s, at_s))
        return self.refresh_etas(new, [vehicle_id])

    def stop_index(
        self, state: FleetState, vehicle_id: str, booking_id: str, stop: StopType
    ) -> int:
        """Where this booking's pickup or drop-off is in the bus's plan (StopNotInPlan if not)."""
        self.check_vehicle(state, vehicle_id)
        for i, s in enumerate(state.plans[vehicle_id].stops):
            if s.booking_id == booking_id and s.type == stop:
                return i
        raise StopNotInPlan(
            f"bus {vehicle_id} has no {stop} of booking {booking_id} in its plan",
            field="booking_id",
        )

    def stop_done(
        self, state: FleetState, vehicle_id: str, booking_id: str, stop: StopType, at_s: int
    ) -> FleetState:
        """The driver reports a pickup (rider boarded) or a drop-off (rider alighted)."""
        idx = self.stop_index(state, vehicle_id, booking_id, stop)
        plan = state.plans[vehicle_id]
        b = self.booking(state, booking_id)
        if stop == StopType.PICKUP and b.status != BookingStatus.CONFIRMED:
            raise BookingStateError(
                f"booking {booking_id} is {b.status}: only a CONFIRMED booking boards",
                field="booking_id",
            )
        if stop == StopType.DROPOFF and b.status != BookingStatus.STARTED:
            raise BookingStateError(
                f"booking {booking_id} is {b.status}: only riders on board can alight",
                field="booking_id",
            )
        done = plan.stops[idx]
        self._require_arrived(state, vehicle_id, done, "BOARDED" if stop == StopType.PICKUP
                              else "ALIGHTED")  # fmt: skip
        kept = plan.stops[:idx] + plan.stops[idx + 1 :]
        plans = dict(state.plans)
        plans[vehicle_id] = replace(plan, stops=kept, fixed=0)
        bookings = dict(state.bookings)
        dwell = self.policy.dwell(b.request.wheelchairs)
        if stop == StopType.PICKUP:
            bookings[booking_id] = replace(
                b,
                status=BookingStatus.STARTED,
                picked_up_s=at_s,
                vehicle_id=vehicle_id,
                updated_s=at_s,
            )
        else:
            bookings[booking_id] = replace(
                b, status=BookingStatus.FINISHED, dropped_off_s=at_s, updated_s=at_s
            )
        states = dict(state.states)
        states[vehicle_id] = replace(
            state.states[vehicle_id],
            node=done.place.node,
            at_s=at_s + dwell,
            lat=done.place.lat,
            lon=done.place.lon,
        )
        new = state.evolve(
            plans=plans, bookings=bookings, states=states, now_s=max(state.now_s, at_s)
        )
        return self.refresh_etas(new, [vehicle_id])

    def no_show(self, state: FleetState, vehicle_id: str, booking_id: str, at_s: int) -> FleetState:
        """The rider did not come to the pickup: the booking ends as NO_SHOW, the bus goes on."""
        b = self.booking(state, booking_id)
        if b.vehicle_id == vehicle_id and b.status == BookingStatus.PENDING:
            raise BookingStateError(
                f"booking {booking_id} is PENDING: only a CONFIRMED booking can be a no-show",
                field="booking_id",
            )
        if b.vehicle_id != vehicle_id or b.status != BookingStatus.CONFIRMED:
            raise StopNotInPlan(
                f"bus {vehicle_id} has no pickup of booking {booking_id} to report",
                field="booking_id",
            )
        pickup = state.plans[vehicle_id].stops[
            self.stop_index(state, vehicle_id, booking_id, StopType.PICKUP)
        ]
        self._require_arrived(state, vehicle_id, pickup, "NO_SHOW")
        allowed_s = self.no_show_due_s(state, vehicle_id, booking_id)
        if at_s < allowed_s:
            raise TooEarly(
                f"a no-show counts only after the bus waited {self.policy.no_show_wait_s} s "
                f"at the pickup from the later of its arrival and the window's start (less "
                f"where waiting longer would break another rider's promise); "
                f"{allowed_s - at_s} s to go",
                field="type",
            )
        return self._drop_booking(
            state.evolve(now_s=max(state.now_s, at_s)), b, BookingStatus.NO_SHOW
        )

    def no_show_due_s(self, state: FleetState, vehicle_id: str, booking_id: str) -> int:
        """When the bus, arrived at this booking's pickup, may report a NO_SHOW: after
        ``no_show_wait_s`` from the later of its arrival and the window's start, but sooner
        (never before the planned dwell is over) where waiting that long would make the bus
        break a promise to another rider of its plan."""
        b = self.booking(state, booking_id)
        pickup = state.plans[vehicle_id].stops[
            self.stop_index(state, vehicle_id, booking_id, StopType.PICKUP)
        ]
        arrived_s = self._require_arrived(state, vehicle_id, pickup, "NO_SHOW")
        base = max(arrived_s, b.pickup_window[0])
        lo = base + self.policy.dwell(b.request.wheelchairs)
        hi = base + self.policy.no_show_wait_s
        if hi <= lo or self._keeps_plan_leaving_at(state, vehicle_id, booking_id, hi):
            return hi
        while hi - lo > 1:  # the latest departure that still keeps every other promise
            mid = (lo + hi) // 2
            if self._keeps_plan_leaving_at(state, vehicle_id, booking_id, mid):
                lo = mid
            else:
                hi = mid
        return lo

    def _keeps_plan_leaving_at(
        self, state: FleetState, vehicle_id: str, booking_id: str, t: int
    ) -> bool:
        plan = state.plans[vehicle_id]
        plans = dict(state.plans)
        plans[vehicle_id] = replace(
            plan, stops=tuple(s for s in plan.stops if s.booking_id != booking_id), fixed=0
        )
        states = dict(state.states)
        states[vehicle_id] = replace(states[vehicle_id], at_s=t)
        bookings = dict(state.bookings)
        bookings[booking_id] = replace(bookings[booking_id], status=BookingStatus.NO_SHOW)
        after = state.evolve(now_s=max(state.now_s, t), plans=plans, states=states,
                             bookings=bookings)  # fmt: skip
        # the limits as promised: waiting on must not make a rider on board later still
        snap = self.problems.snapshot(after, relax_late_rides=False)
        v = snap.vehicle_ids.index(vehicle_id)
        return self.problems.inserter(snap).schedule(v, snap.routes[v])[0] == Fail.OK

    @staticmethod
    def _require_arrived(state: FleetState, vehicle_id: str, stop: PlannedStop, what: str) -> int:
        """When the bus arrived at ``stop``'s place (NotArrived if it did not report it)."""
        s = state.states[vehicle_id]
        if s.arrived_node != stop.place.node or s.arrived_s is None:
            raise NotArrived(
                f"{what} needs ARRIVED at the {stop.type} of booking {stop.booking_id} first",
                field="type",
            )
        return s.arrived_s

    def start_shift(self, state: FleetState, vehicle_id: str, at_s: int) -> FleetState:
        """The driver starts (again) the shift: an early SHIFT_END is undone while the planned
        shift lasts; otherwise nothing changes."""
        self.check_vehicle(state, vehicle_id)
        v = state.vehicles[vehicle_id]
        if v.planned_end_s is None or at_s >= v.planned_end_s:
            return state
        vehicles = dict(state.vehicles)
        vehicles[vehicle_id] = replace(v, shift_end_s=v.planned_end_s, planned_end_s=None)
        return state.evolve(vehicles=vehicles, now_s=max(state.now_s, at_s))

    def end_shift(self, state: FleetState, vehicle_id: str, at_s: int) -> FleetState:
        """The driver ends the shift: allowed only with no stop left; no trip is offered after."""
        self.check_vehicle(state, vehicle_id)
        left = state.plans[vehicle_id].stops
        if left:
            raise VehicleBusy(
                f"bus {vehicle_id} still has {len(left)} stop(s) to serve", field="vehicle_id"
            )
        vehicles = dict(state.vehicles)
        v = vehicles[vehicle_id]
        end = max(min(v.shift_end_s, at_s), v.shift_start_s + 1)
        planned = v.planned_end_s if v.planned_end_s is not None else v.shift_end_s
        vehicles[vehicle_id] = replace(v, shift_end_s=end, planned_end_s=planned)
        return state.evolve(vehicles=vehicles, now_s=max(state.now_s, at_s))

    def reposition(
        self, state: FleetState, vehicle_id: str, to: Place | None, eta_s: int | None = None
    ) -> FleetState:
        """Send an idle bus towards ``to`` (None: stay). Refused (VehicleBusy) for a bus with
        stops: a reposition never stands in the way of a promise."""
        self.check_vehicle(state, vehicle_id)
        plan = state.plans[vehicle_id]
        if plan.stops:
            raise VehicleBusy(
                f"bus {vehicle_id} has stops to serve: it is not idle", field="vehicle_id"
            )
        plans = dict(state.plans)
        plans[vehicle_id] = replace(
            plan, reposition=to, reposition_eta_s=eta_s if to is not None else None
        )
        return state.evolve(plans=plans)

    def heading(
        self,
        state: FleetState,
        vehicle_id: str,
        node: int,
        free_at_s: int,
        lat: float | None = None,
        lon: float | None = None,
    ) -> FleetState:
        """A repositioning bus is on its way to ``node`` and there at ``free_at_s``: plans
        for it start there and then (the clock of the state does not move)."""
        self.check_vehicle(state, vehicle_id)
        states = dict(state.states)
        states[vehicle_id] = replace(
            state.states[vehicle_id],
            node=node,
            at_s=free_at_s,
            lat=lat,
            lon=lon,
            arrived_node=None,
            arrived_s=None,
        )
        return state.evolve(states=states)

    def refit(self, state: FleetState, bus: Vehicle) -> FleetState | str:
        """Tonight's bus ``bus.vehicle_id`` given the seats, wheelchair places and depot of
        ``bus`` (its shift, position, plan and service status are kept), with its stop times
        from the new bus; or, when its plan would then break a rule, which one (the bus is
        left as it is). A bus late for its plan is held to what it can still do, as the
        rounds hold it (:meth:`ProblemBuilder.snapshot`): no stop later than it is due."""
        vid = bus.vehicle_id
        new = replace(
            state.vehicles[vid],
            seats=bus.seats,
            wheelchair_places=bus.wheelchair_places,
            depot=bus.depot,
        )
        trial = state.evolve(vehicles={**state.vehicles, vid: new})
        fail = self._plan_fail(trial, vid)
        if fail == Fail.OK:
            return self.refresh_etas(trial, [vid])
        return _REFIT_TEXT[fail].format(seats=new.seats, places=new.wheelchair_places)

    def _plan_fail(self, state: FleetState, vehicle_id: str) -> Fail:
        """The first rule the bus's plan breaks as it stands (Fail.OK: none)."""
        snap = self.problems.snapshot(state)
        v = snap.vehicle_ids.index(vehicle_id)
        return self.problems.inserter(snap).schedule(v, snap.routes[v])[0]

    def check_vehicle(self, state: FleetState, vehicle_id: str) -> None:
        """Raise UnknownVehicle for an id that is not in the fleet."""
        if vehicle_id not in state.vehicles:
            raise UnknownVehicle(f"no bus {vehicle_id!r}", field="vehicle_id")

    def refresh_etas(self, state: FleetState, vehicle_ids: list[str]) -> FleetState:
        """Recompute the planned times of these buses' stops from where they are now.

        A plan that can still keep every promise gets the solvers' own schedule (which may
        hold a pickup back so that a rider on board is not kept too long). A late bus, whose
        plan can no longer be kept, gets a forecast instead: each stop as early as the bus can
        make it (the plan itself is kept as it is).
        """
        if not vehicle_ids:
            return state
        snap = self.problems.snapshot(state)
        ins = self.problems.inserter(snap)
        plans = dict(state.plans)
        for vid in vehicle_ids:
            v = snap.vehicle_ids.index(vid)
            code, times, _, end = ins.schedule(v, snap.routes[v])
            if code == Fail.OK:
                plan = plans[vid]
                stops = tuple(replace(st, eta_s=t) for st, t in zip(plan.stops, times, strict=True))
                plans[vid] = replace(plan, stops=stops, end_s=end)
            else:
                plans[vid] = self._forecast(state, vid)
        bookings = dict(state.bookings)
        for vid in vehicle_ids:
            _copy_etas(bookings, plans[vid])
        return state.with_derived(plans=plans, bookings=bookings)

    def _forecast(self, state: FleetState, vid: str) -> Plan:
        """Earliest possible stop times of a bus that is late for its plan."""
        plan, s, v = state.plans[vid], state.states[vid], state.vehicles[vid]
        t = self.problems.free_from(state, vid)
        nodes = [s.node, *(st.place.node for st in plan.stops), v.depot.node]
        times = np.asarray(self.times.times_s(nodes), dtype=np.int64)
        stops = []
        for k, st in enumerate(plan.stops):
            arrive = t + int(times[k, k + 1])
            eta = max(arrive, st.window[0]) if st.type == StopType.PICKUP else arrive
            stops.append(replace(st, eta_s=eta))
            t = eta + self.policy.dwell(state.bookings[st.booking_id].request.wheelchairs)
        end = t + int(times[len(plan.stops), len(plan.stops) + 1])
        return replace(plan, stops=tuple(stops), end_s=end)

    # ----------------------------------------------------------------- re-optimisation
    def current_solution(self, state: FleetState) -> tuple[Snapshot, Solution]:
        snap = self.problems.snapshot(state)
        return snap, solution_from_routes(self.problems.inserter(snap), snap.routes)

    def reoptimise(self, state: FleetState, params: SolveParams | None = None) -> FleetState | None:
        """Improve all open plans with the searches of ``params`` (default ``self.reopt``); the
        new plans replace the old ones only if the checker finds every promise kept and the
        total drive time falls. None: no change."""
        snap, current = self.current_solution(state)
        if not any(snap.routes):
            return None
        current_ok = not violations(snap.problem, current)
        new = solve(snap.problem, params or self.reopt, current if current_ok else None)
        if new is None or violations(snap.problem, new):
            return None
        if current_ok and new.total_cost(snap.problem) >= current.total_cost(snap.problem):
            return None
        plans = dict(state.plans)
        bookings = dict(state.bookings)
        for v, vid in enumerate(snap.vehicle_ids):
            old = state.plans[vid]
            plans[vid] = self.problems.plan(
                snap, state, v, new.routes[v], new.times[v], old.fixed, new.end_times[v]
            )
            _copy_etas(bookings, plans[vid])
        return state.evolve(plans=plans, bookings=bookings)


def _promised(
    stops: tuple[PlannedStop, ...], booking_id: str, pickup: tuple[int, int], latest_s: int
) -> tuple[PlannedStop, ...]:
    """The new booking's stops under its id, with the windows promised to the rider (the
    plan was made inside them, by the buffer)."""
    out = []
    for st in stops:
        if st.booking_id == NEW:
            window = pickup if st.type == StopType.PICKUP else (pickup[0], latest_s)
            st = replace(st, booking_id=booking_id, window=window)
        out.append(st)
    return tuple(out)


def _apply_moves(
    plans: dict[str, Plan], bookings: dict[str, Booking], moves: tuple[Plan, ...], own: str
) -> None:
    """A rescue's re-planned buses (``moves``) into ``plans``; every rider on them, and on
    bus ``own`` (the trip's, which may have taken riders from the others), gets its bus and
    times in its booking."""
    if not moves:
        return
    for plan in (*moves, plans[own]):
        plans[plan.vehicle_id] = plan
        _copy_etas(bookings, plan)


def _copy_etas(bookings: dict[str, Booking], plan: Plan) -> None:
    """Write a plan's stop times into its bookings (pickup / drop-off ETA and the bus)."""
    for st in plan.stops:
        b = replace(bookings[st.booking_id], vehicle_id=plan.vehicle_id)
        if st.type == StopType.PICKUP:
            bookings[st.booking_id] = replace(b, pickup_eta_s=st.eta_s)
        else:
            bookings[st.booking_id] = replace(b, dropoff_eta_s=st.eta_s)


__all__ = ["Dispatcher", "TravelTimeSource"]
