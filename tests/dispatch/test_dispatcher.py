"""The dispatcher on a synthetic grid town: offers, bookings, promises, capacity, reasons."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from nachtbus.domain import (
    Booking,
    BookingStatus,
    FleetState,
    Offer,
    Rejection,
    RejectionReason,
    StopType,
    Vehicle,
)
from nachtbus.errors import BookingStateError, NotArrived, StopNotInPlan, TooEarly
from routing.checker import violations
from routing.ortools_pdp import OrToolsParams
from routing.solver import SolveParams
from tests.helpers import assert_plans_match_bookings, bus, grid_town, request

NOW = 21 * 3600  # 21:00
# hand-sized nights: the plans keep no buffer unless a test says so
POLICY = ServicePolicy(dwell_s=30, wheelchair_dwell_s=120, max_wait_s=900, plan_buffer_s=0)
# 5 minutes of wait leave no time for a second run of the bus: capacity tests use it.
TIGHT = ServicePolicy(max_wait_s=300, plan_buffer_s=0)
#: OR-Tools stops after 50 solutions (the time limit is only a safety cap)
REOPT = SolveParams(ortools=OrToolsParams(time_limit_s=30.0, solution_limit=50))
#: the live round (ruin and recreate, then OR-Tools), on step and solution limits
LIVE = SolveParams.live(5.0, lns_steps=200, ortools_solutions=5)


@pytest.fixture(scope="module")
def times():
    return grid_town()


def dispatcher(times) -> Dispatcher:
    return Dispatcher(times, POLICY, reopt=REOPT)


def fleet_of(buses: list[Vehicle], *alone: FleetState, now: int = NOW) -> FleetState:
    """A fleet of ``buses`` at ``now`` with the plans and bookings of states that each
    booked on some of its buses alone (the fleet's other buses have empty plans)."""
    fleet = FleetState.create(now, buses)
    plans = {**fleet.plans}
    bookings: dict[str, Booking] = {}
    for s in alone:
        plans.update(s.plans)
        bookings.update(s.bookings)
    return fleet.evolve(plans=plans, bookings=bookings)


def far_corner_on_a(d: Dispatcher, at: int) -> FleetState:
    """Bus A alone with r1 (24 -> 20) and r2 (23 -> 3), both asked for ``at``: riders at the
    far corner, which a bus starting there (B, depot 24) would serve with less driving."""
    alone = FleetState.create(NOW, [bus("A")])
    alone, _ = book(d, alone, "r1", 24, 20, at=at)
    alone, _ = book(d, alone, "r2", 23, 3, at=at)
    return alone


def book(d: Dispatcher, state: FleetState, rid: str, a: int, b: int, **kw):
    offer = d.offer(state, request(rid, a, b, state.now_s, **kw))
    assert isinstance(offer, Offer), offer
    result = d.confirm(state, offer)
    assert not isinstance(result, Rejection), result
    return result


def test_first_offer_comes_from_the_depot(times) -> None:
    """An empty bus at depot 0 reaches node 12 (4 blocks) in 240 s and drives 2 blocks more."""
    d = dispatcher(times)
    state = FleetState.create(NOW, [bus("A")])
    offer = d.offer(state, request("r1", 12, 14, NOW))
    assert isinstance(offer, Offer)
    assert offer.pickup_eta_s == NOW + 240
    assert offer.dropoff_eta_s == NOW + 240 + 30 + 120
    assert offer.pickup_window == (NOW, NOW + 900)
    assert offer.max_ride_s == int(1.5 * 120) + 300
    assert state.bookings == {}  # quoting changes nothing


def test_confirm_records_the_promise_and_plan(times) -> None:
    d = dispatcher(times)
    state, booking = book(d, FleetState.create(NOW, [bus("A")]), "r1", 12, 14)
    assert booking.status == BookingStatus.CONFIRMED and booking.vehicle_id == "A"
    assert [(s.booking_id, s.type) for s in state.plans["A"].stops] == [
        ("b-r1", StopType.PICKUP),
        ("b-r1", StopType.DROPOFF),
    ]
    assert state.version == 1
    assert booking.latest_dropoff_s == NOW + 900 + booking.max_ride_s


def test_riders_going_the_same_way_share_the_bus(times) -> None:
    """Two riders from 10 and 11 to 14: one bus, the second pickup between, pooled."""
    d = dispatcher(times)
    state = FleetState.create(NOW, [bus("A"), bus("B", depot=24)])
    state, b1 = book(d, state, "r1", 10, 14)
    state, b2 = book(d, state, "r2", 11, 14)
    assert b1.vehicle_id == b2.vehicle_id
    types = [(s.booking_id, s.type) for s in state.plans[b1.vehicle_id].stops]
    assert types.index(("b-r2", StopType.PICKUP)) < types.index(("b-r1", StopType.DROPOFF))


def test_seats_run_out_then_cancel_frees_them(times) -> None:
    """A 2-seat bus: two parties of one ride together, a third at the same time is refused
    as fleet_full (a 5-minute wait leaves no time for a second run); after a cancellation
    it gets an offer."""
    d = Dispatcher(times, TIGHT)
    state = FleetState.create(NOW, [bus("A", seats=2, wheelchairs=0)])
    state, _ = book(d, state, "r1", 12, 14)
    state, _ = book(d, state, "r2", 12, 14)
    third = d.offer(state, request("r3", 12, 14, NOW))
    assert isinstance(third, Rejection) and third.reason == RejectionReason.FLEET_FULL
    state = d.cancel(state, "b-r2")
    assert state.bookings["b-r2"].status == BookingStatus.CANCELLED
    assert all(s.booking_id != "b-r2" for s in state.plans["A"].stops)
    assert isinstance(d.offer(state, request("r3", 12, 14, NOW)), Offer)


def test_wheelchair_places_are_counted_apart_from_seats(times) -> None:
    d = Dispatcher(times, TIGHT)
    state = FleetState.create(NOW, [bus("A", seats=6, wheelchairs=1)])
    state, _ = book(d, state, "w1", 12, 14, wheelchairs=1)
    second = d.offer(state, request("w2", 12, 14, NOW, wheelchairs=1))
    assert isinstance(second, Rejection) and second.reason == RejectionReason.NO_WHEELCHAIR_PLACE
    assert isinstance(d.offer(state, request("s1", 12, 14, NOW, passengers=3)), Offer)
    no_wc = FleetState.create(NOW, [bus("B", wheelchairs=0)])
    r = d.offer(no_wc, request("w3", 12, 14, NOW, wheelchairs=1))
    assert isinstance(r, Rejection) and r.reason == RejectionReason.NO_WHEELCHAIR_VEHICLE


def test_wheelchair_boarding_takes_longer(times) -> None:
    d = dispatcher(times)
    state = FleetState.create(NOW, [bus("A")])
    o = d.offer(state, request("w", 12, 14, NOW, wheelchairs=1))
    assert isinstance(o, Offer)
    assert o.dropoff_eta_s - o.pickup_eta_s == 120 + 30 + 120


@pytest.mark.parametrize(
    ("kwargs", "now", "reason"),
    [
        ({"passengers": 7}, NOW, RejectionReason.TOO_MANY_TRAVELLERS),
        ({"passengers": 5}, NOW, RejectionReason.TOO_MANY_TRAVELLERS),  # bus has 4 + 1 places
        ({"at": NOW - 3600}, NOW, RejectionReason.PICKUP_IN_PAST),
        ({"at": NOW + 30 * 3600}, NOW, RejectionReason.BEYOND_BOOKING_HORIZON),
        ({}, 18 * 3600, RejectionReason.OUTSIDE_SERVICE_HOURS),
        ({"at": 30 * 3600}, NOW, RejectionReason.OUTSIDE_SERVICE_HOURS),
    ],
)
def test_rule_rejections_have_their_reason(times, kwargs, now, reason) -> None:
    d = dispatcher(times)
    state = FleetState.create(now, [bus("A")])
    r = d.offer(state, request("x", 12, 14, now, **kwargs))
    assert isinstance(r, Rejection) and r.reason == reason, r
    assert r.message


def test_trip_to_the_same_place_is_too_short(times) -> None:
    d = dispatcher(times)
    r = d.offer(FleetState.create(NOW, [bus("A")]), request("x", 12, 12, NOW))
    assert isinstance(r, Rejection) and r.reason == RejectionReason.TRIP_TOO_SHORT


def test_no_bus_in_time_and_shift_end(times) -> None:
    """A far pickup with a 2-minute window cannot be reached; a trip past the shift is refused."""
    d = Dispatcher(times, ServicePolicy(max_wait_s=120, far_pickup_s=0))
    r = d.offer(FleetState.create(NOW, [bus("A")]), request("x", 24, 20, NOW))
    assert isinstance(r, Rejection) and r.reason == RejectionReason.NO_VEHICLE_IN_TIME
    late = FleetState.create(NOW, [bus("A", shift=(20 * 3600, NOW + 600))])
    r = dispatcher(times).offer(late, request("y", 24, 20, NOW))
    assert isinstance(r, Rejection) and r.reason == RejectionReason.SHIFT_ENDS


def test_prebooked_trip_gets_the_asked_window(times) -> None:
    d = dispatcher(times)
    o = d.offer(FleetState.create(NOW, [bus("A")]), request("p", 12, 14, NOW, at=NOW + 7200))
    assert isinstance(o, Offer)
    assert o.pickup_window == (NOW + 7200, NOW + 7200 + POLICY.prebook_window_s)
    assert o.pickup_eta_s == NOW + 7200


def test_stale_offer_is_reinserted_or_refused_never_overbooked(times) -> None:
    """Two offers on the same snapshot for the last seat: the second confirm is refused."""
    d = Dispatcher(times, TIGHT)
    state = FleetState.create(NOW, [bus("A", seats=1, wheelchairs=0)])
    o1 = d.offer(state, request("r1", 12, 14, NOW))
    o2 = d.offer(state, request("r2", 12, 14, NOW))
    assert isinstance(o1, Offer) and isinstance(o2, Offer)
    state, _ = d.confirm(state, o1)  # type: ignore[misc]
    r = d.confirm(state, o2)
    assert isinstance(r, Rejection) and r.reason == RejectionReason.OFFER_OUTDATED


def test_expired_offer_is_refused(times) -> None:
    d = dispatcher(times)
    state = FleetState.create(NOW, [bus("A")])
    o = d.offer(state, request("r1", 12, 14, NOW))
    assert isinstance(o, Offer)
    later = d.advance_clock(state, o.expires_s + 1)
    r = d.confirm(later, o)
    assert isinstance(r, Rejection) and r.reason == RejectionReason.OFFER_OUTDATED


def test_pickup_and_dropoff_progress(times) -> None:
    d = dispatcher(times)
    state, _ = book(d, FleetState.create(NOW, [bus("A")]), "r1", 12, 14)
    state = d.vehicle_position(state, "A", 6, NOW + 120)
    assert state.plans["A"].fixed == 1
    with pytest.raises(NotArrived, match="BOARDED needs ARRIVED"):
        d.stop_done(state, "A", "b-r1", StopType.PICKUP, NOW + 240)
    state = d.vehicle_position(state, "A", 12, NOW + 240, arrived=True)
    state = d.stop_done(state, "A", "b-r1", StopType.PICKUP, NOW + 240)
    b = state.bookings["b-r1"]
    assert b.status == BookingStatus.STARTED and b.picked_up_s == NOW + 240
    assert b.dropoff_eta_s == NOW + 240 + 30 + 120
    with pytest.raises(BookingStateError, match="no longer be cancelled"):
        d.cancel(state, "b-r1")
    with pytest.raises(StopNotInPlan):
        d.stop_done(state, "A", "b-r1", StopType.PICKUP, NOW + 300)
    state = d.vehicle_position(state, "A", 13, NOW + 330)  # on the way: not at the stop
    with pytest.raises(NotArrived):
        d.stop_done(state, "A", "b-r1", StopType.DROPOFF, NOW + 340)
    state = d.vehicle_position(state, "A", 14, NOW + 400, arrived=True)
    state = d.stop_done(state, "A", "b-r1", StopType.DROPOFF, NOW + 400)
    assert state.bookings["b-r1"].status == BookingStatus.FINISHED
    assert state.plans["A"].stops == ()


def test_no_show_counts_only_after_arriving_and_waiting(times) -> None:
    """Hours early, or before the bus arrived, a no-show is refused; after arriving at the
    pickup and waiting no_show_wait_s (from the later of arrival and window start) it ends the
    booking and takes it out of the plan."""
    d = dispatcher(times)
    state, _ = book(d, FleetState.create(NOW, [bus("A")]), "r1", 12, 14)
    with pytest.raises(NotArrived, match="NO_SHOW needs ARRIVED"):
        d.no_show(state, "A", "b-r1", NOW + 60)
    state = d.vehicle_position(state, "A", 12, NOW + 240, arrived=True)
    wait = POLICY.no_show_wait_s
    with pytest.raises(TooEarly, match="1 s to go"):
        d.no_show(state, "A", "b-r1", NOW + 240 + wait - 1)
    state = d.no_show(state, "A", "b-r1", NOW + 240 + wait)
    assert state.bookings["b-r1"].status == BookingStatus.NO_SHOW
    assert state.plans["A"].stops == ()


def test_reoptimise_keeps_riders_on_board_on_their_bus(times) -> None:
    """A rider picked up by A stays on A even when B would now be better placed."""
    d = dispatcher(times)
    state = FleetState.create(NOW, [bus("A"), bus("B", depot=24)])
    state, b1 = book(d, state, "r1", 1, 23)
    assert b1.vehicle_id is not None
    state = d.vehicle_position(state, b1.vehicle_id, 1, NOW + 60, arrived=True)
    state = d.stop_done(state, b1.vehicle_id, "b-r1", StopType.PICKUP, NOW + 60)
    state, _ = book(d, state, "r2", 20, 4)
    state, _ = book(d, state, "r3", 19, 5)
    new = d.reoptimise(state) or state
    assert new.bookings["b-r1"].vehicle_id == b1.vehicle_id
    drops = [s for s in new.plans[b1.vehicle_id].stops if s.booking_id == "b-r1"]
    assert [s.type for s in drops] == [StopType.DROPOFF]
    for bid in ("b-r2", "b-r3"):
        assert new.bookings[bid].pickup_window == state.bookings[bid].pickup_window


def test_warm_up_builds_the_time_table_before_the_first_quote() -> None:
    times = grid_town()
    assert times._table is None  # built lazily on first use
    Dispatcher(times).warm_up()
    assert times._table is not None
    assert int(times._table[0, 24]) == times.time_s(0, 24) == 8 * 60


def test_an_early_shift_end_is_undone_by_a_shift_start(times) -> None:
    """SHIFT_END takes the bus off the offers; SHIFT_START within the planned shift puts it
    back with its planned end."""
    d = dispatcher(times)
    state = FleetState.create(NOW, [bus("A")])
    planned = state.vehicles["A"].shift_end_s
    ended = d.end_shift(state, "A", NOW + 60)
    assert ended.vehicles["A"].shift_end_s == NOW + 60
    later = d.advance_clock(ended, NOW + 120)
    assert isinstance(d.offer(later, request("r1", 12, 14, NOW + 120)), Rejection)
    back = d.start_shift(later, "A", NOW + 120)
    assert back.vehicles["A"].shift_end_s == planned and back.vehicles["A"].planned_end_s is None
    assert isinstance(d.offer(back, request("r1", 12, 14, NOW + 120)), Offer)


def test_live_reoptimisation_moves_a_confirmed_rider_to_a_better_bus(times) -> None:
    """Bus A took two riders at the far corner while B was not yet on the road; once B is
    there, the live round (ruin and recreate, then OR-Tools) gives them to B, which starts
    there, keeps both promises and drives less."""
    d = Dispatcher(times, POLICY, reopt=LIVE)
    alone = far_corner_on_a(d, NOW + 1200)
    assert {b.vehicle_id for b in alone.bookings.values()} == {"A"}
    state = fleet_of([bus("A"), bus("B", depot=24)], alone)
    snap, before = d.current_solution(state)
    new = d.reoptimise(state)
    assert new is not None
    snap2, after = d.current_solution(new)
    assert violations(snap2.problem, after) == []
    assert after.total_cost(snap2.problem) < before.total_cost(snap.problem)
    assert {b.vehicle_id for b in new.bookings.values()} == {"B"}
    for bid, b in new.bookings.items():
        assert (b.pickup_window, b.max_ride_s) == (
            state.bookings[bid].pickup_window,
            state.bookings[bid].max_ride_s,
        )


def test_a_late_bus_does_not_stop_the_rest_of_the_fleet_being_replanned(times) -> None:
    """Bus C is stuck at its depot with r0's pickup four blocks away: due 140 s past the
    promised window (the road, not a plan, broke it). The live round still re-plans the
    other buses (r1 and r2 go from A to B, as without C), and r0's stop is planned no later
    than it is due: the promise already broken is not broken further."""
    d = Dispatcher(times, POLICY, reopt=LIVE)
    alone_a = far_corner_on_a(d, NOW + 1200)
    alone_c, _ = book(d, FleetState.create(NOW, [bus("C")]), "r0", 12, 14)
    state = fleet_of([bus("A"), bus("B", depot=24), bus("C")], alone_a, alone_c)
    state = d.vehicle_position(state, "C", 0, NOW + 800)  # still at the depot
    late = state.bookings["b-r0"]
    assert late.pickup_eta_s == NOW + 800 + 240 > late.pickup_window[1] == NOW + 900
    new = d.reoptimise(state)
    assert new is not None
    assert {new.bookings[b].vehicle_id for b in ("b-r1", "b-r2")} == {"B"}
    r0 = new.bookings["b-r0"]
    assert r0.pickup_eta_s is not None and r0.pickup_eta_s <= late.pickup_eta_s
    assert (r0.pickup_window, r0.max_ride_s) == (late.pickup_window, late.max_ride_s)
    snap, sol = d.current_solution(new)
    assert violations(snap.problem, sol) == []
    assert_plans_match_bookings(new)


def test_a_rider_on_board_a_late_bus_does_not_stop_the_fleet_being_replanned(times) -> None:
    """Bus C took r0 on board at node 1 and then stood in traffic one block on until r0's
    ride limit had passed: no plan can set r0 down within it any more. The live round still
    re-plans the fleet (r1 goes from A to B, which starts at r1's door; r2 to C, which
    sets r0 down at r2's door; A is left with nothing), and C takes r0 straight to the
    drop-off: the ride is not made longer than the road already made it. Before, the
    round found no plan at all."""
    d = Dispatcher(times, POLICY, reopt=LIVE)
    alone_a = far_corner_on_a(d, NOW + 1800)
    alone_c, _ = book(d, FleetState.create(NOW, [bus("C")]), "r0", 1, 23)
    state = fleet_of([bus("A"), bus("B", depot=24), bus("C")], alone_a, alone_c)
    state = d.vehicle_position(state, "C", 1, NOW + 60, arrived=True)
    state = d.stop_done(state, "C", "b-r0", StopType.PICKUP, NOW + 60)
    limit = state.bookings["b-r0"].max_ride_s
    stuck = NOW + 60 + POLICY.dwell_s + limit  # one block on (node 2), 5 blocks from node 23
    state = d.vehicle_position(state, "C", 2, stuck)
    earliest = stuck + times.time_s(2, 23)
    assert earliest - (NOW + 60 + POLICY.dwell_s) > limit
    new = d.reoptimise(state)
    assert new is not None
    assert (new.bookings["b-r1"].vehicle_id, new.bookings["b-r2"].vehicle_id) == ("B", "C")
    assert new.plans["A"].stops == ()
    r0 = new.bookings["b-r0"]
    assert r0.vehicle_id == "C" and r0.dropoff_eta_s == earliest
    assert r0.max_ride_s == limit  # the promise on record is not rewritten
    snap, sol = d.current_solution(new)
    assert violations(snap.problem, sol) == []
    assert_plans_match_bookings(new)


def test_a_no_show_wait_gives_way_to_the_next_riders_promise(times) -> None:
    """The bus waits for a no-show rider no_show_wait_s, unless that would make it miss the
    next rider's window: then the no-show is due as soon as leaving still keeps it."""
    policy = ServicePolicy(
        dwell_s=30, wheelchair_dwell_s=120, max_wait_s=300, no_show_wait_s=600, plan_buffer_s=0
    )
    d = Dispatcher(times, policy, reopt=REOPT)
    state = FleetState.create(NOW, [bus("A")])
    state, b1 = book(d, state, "r1", 1, 2)
    state, b2 = book(d, state, "r2", 3, 4)
    assert [s.booking_id for s in state.plans["A"].stops][:1] == ["b-r1"]
    state = d.vehicle_position(state, "A", 1, NOW + 60, arrived=True)
    due = d.no_show_due_s(state, "A", "b-r1")
    base = max(NOW + 60, b1.pickup_window[0])
    assert base + policy.dwell_s <= due < base + policy.no_show_wait_s
    # leaving at `due`, the bus reaches r2's pickup (2 blocks) by the end of its window
    assert due + times.time_s(1, 3) <= b2.pickup_window[1]
    assert due + 1 + times.time_s(1, 3) > b2.pickup_window[1]
    with pytest.raises(TooEarly):
        d.no_show(state, "A", "b-r1", due - 1)
    after = d.no_show(state, "A", "b-r1", due)
    assert after.bookings["b-r1"].status == BookingStatus.NO_SHOW


def test_a_far_pickup_may_wait_longer_so_the_villages_are_served(times) -> None:
    """Node 24 is 8 minutes from the depot (far_pickup_s): its pickup window is
    far_max_wait_s long; node 6, two blocks out, gets the ordinary max_wait_s."""
    policy = ServicePolicy(max_wait_s=900, far_pickup_s=480, far_max_wait_s=1500)
    d = Dispatcher(times, policy)
    state = FleetState.create(NOW, [bus("A")])
    far = d.offer(state, request("far", 24, 20, NOW))
    near = d.offer(state, request("near", 6, 8, NOW))
    assert isinstance(far, Offer) and isinstance(near, Offer)
    assert far.pickup_window == (NOW, NOW + 1500)
    assert near.pickup_window == (NOW, NOW + 900)
    off = Dispatcher(times, ServicePolicy(max_wait_s=900, far_pickup_s=0)).offer(
        state, request("far", 24, 20, NOW)
    )
    assert isinstance(off, Offer) and off.pickup_window == (NOW, NOW + 900)


def test_plans_keep_the_buffer_inside_the_promise(times) -> None:
    """With a 120 s buffer a 300 s window is planned as 180 s: a pickup 240 s away is
    refused (without the buffer: offered); one 120 s away is offered with the full window as
    the promise, and the plan's stops carry the promise, not the planned window."""
    near = ServicePolicy(max_wait_s=300, plan_buffer_s=120)
    d = Dispatcher(times, near)
    state = FleetState.create(NOW, [bus("A")])
    offer = d.offer(state, request("r1", 12, 14, NOW))  # 240 s to the pickup, 60 s spare
    assert isinstance(offer, Offer) is False  # 240 > 300 - 120
    d0 = Dispatcher(times, replace(near, plan_buffer_s=0))
    assert isinstance(d0.offer(state, request("r1", 12, 14, NOW)), Offer)
    close = d.offer(state, request("r2", 6, 8, NOW))  # 2 blocks: 120 s
    assert isinstance(close, Offer)
    assert close.pickup_window == (NOW, NOW + 300)  # the promise: the full window
    new, booking = d.confirm(state, close)  # type: ignore[misc]
    pickup = new.plans["A"].stops[0]
    assert pickup.window == (NOW, NOW + 300)
    assert new.plans["A"].stops[1].window[1] == booking.latest_dropoff_s


def _rescue_night(d: Dispatcher) -> FleetState:
    """One-seat buses A (depot 0) and B (depot 24): A took r1 (12 -> 14, both buses 4
    blocks away) while B was not yet on the road."""
    alone = FleetState.create(NOW, [bus("A", seats=1, wheelchairs=0)])
    alone, _ = book(d, alone, "r1", 12, 14)
    return fleet_of(
        [bus("A", seats=1, wheelchairs=0), bus("B", seats=1, wheelchairs=0, depot=24)], alone
    )


def test_a_rescue_gives_a_rider_to_another_bus_to_take_a_trip_insertion_cannot() -> None:
    """r2 at node 2 must be picked up within 5 minutes: only A (2 blocks) can, and A is
    taken by r1 (serving both takes too long either way), B is 6 blocks from node 2.
    Insertion alone says no; the rescue hands r1 to B, which keeps r1's promise, and A
    takes r2. Booking applies both plans; the checker finds every promise kept."""
    times = grid_town()
    tight = replace(TIGHT, rescue_time_ms=0)
    plain = Dispatcher(times, replace(tight, rescue_steps=0))
    state = _rescue_night(plain)
    refused = plain.offer(state, request("r2", 2, 1, NOW))
    assert isinstance(refused, Rejection), refused
    d = Dispatcher(times, tight)
    offer = d.offer(state, request("r2", 2, 1, NOW))
    assert isinstance(offer, Offer), offer
    assert offer.vehicle_id == "A" and offer.pickup_eta_s <= NOW + 300
    # the search is on record, with all its steps (no time limit here)
    assert [(r.steps, r.found) for r in d.rescues] == [(tight.rescue_steps, True)]
    assert not plain.rescues
    assert [m.vehicle_id for m in offer.moves] == ["B"]
    assert {st.booking_id for st in offer.moves[0].stops} == {"b-r1"}
    booked = d.confirm(state, offer)
    assert not isinstance(booked, Rejection), booked
    new, booking = booked
    assert booking.vehicle_id == "A"
    r1 = new.bookings["b-r1"]
    assert r1.vehicle_id == "B"
    assert (r1.pickup_window, r1.max_ride_s) == (
        state.bookings["b-r1"].pickup_window,
        state.bookings["b-r1"].max_ride_s,
    )
    assert r1.pickup_eta_s is not None
    assert r1.pickup_window[0] <= r1.pickup_eta_s <= r1.pickup_window[1]
    snap, sol = d.current_solution(new)
    assert violations(snap.problem, sol) == []
    # the offer kept without its plans (the fleet moved on): booking searches again
    again = d.confirm(state, replace(offer, plan=replace(offer.plan, stops=()), moves=()))
    assert not isinstance(again, Rejection)
    assert again[0].bookings["b-r1"].vehicle_id == "B"
    assert again[0].plans == new.plans


def test_a_late_bus_does_not_stop_the_rescue_of_a_trip_on_the_other_buses() -> None:
    """The rescue of the test above, with a third bus C that is stuck at depot 0 while its
    rider r0 waits at node 12 (due 340 s past the promise): the rescue still hands r1 to B
    so that A takes r2, and r0 is not planned later than it is due."""
    times = grid_town()
    tight = replace(TIGHT, rescue_time_ms=0)
    d = Dispatcher(times, tight)
    two = _rescue_night(d)
    early = FleetState.create(NOW - 400, [bus("C", seats=1, wheelchairs=0)])
    early, _ = book(d, early, "r0", 12, 14)
    buses = [bus(v, seats=1, wheelchairs=0, depot=at) for v, at in (("A", 0), ("B", 24), ("C", 0))]
    state = fleet_of(buses, two, early)
    state = d.vehicle_position(state, "C", 0, NOW)
    late = state.bookings["b-r0"]
    assert late.pickup_eta_s == NOW + 240 > late.pickup_window[1] == NOW - 100
    offer = d.offer(state, request("r2", 2, 1, NOW))
    assert isinstance(offer, Offer), offer
    assert offer.vehicle_id == "A" and [m.vehicle_id for m in offer.moves] == ["B"]
    booked = d.confirm(state, offer)
    assert not isinstance(booked, Rejection), booked
    new, _ = booked
    assert new.bookings["b-r1"].vehicle_id == "B"
    r0 = new.bookings["b-r0"]
    assert r0.vehicle_id == "C" and r0.pickup_eta_s is not None
    assert r0.pickup_eta_s <= late.pickup_eta_s
    snap, sol = d.current_solution(new)
    assert violations(snap.problem, sol) == []
    assert_plans_match_bookings(new)


def test_a_late_trains_new_window_uses_the_rescue_and_a_move_does_not() -> None:
    """r2 (2 -> 1) was booked for half an hour later; its train comes early enough that it
    wants a pickup within 5 minutes (the same squeeze as above). Insertion alone refuses
    the new window; with the rescue r1 goes to B and A takes r2, every promise kept. A
    dispatcher's move to a chosen bus never re-plans other riders."""
    times = grid_town()
    tight = replace(TIGHT, rescue_time_ms=0)
    plain = Dispatcher(times, replace(tight, rescue_steps=0))
    d = Dispatcher(times, tight)
    state, r2 = book(plain, _rescue_night(plain), "r2", 2, 1, at=NOW + 1800)
    r1_bus = state.bookings["b-r1"].vehicle_id
    window = (NOW, NOW + 300)
    refused = plain.rewindow(state, "b-r2", r2.request, window)
    assert isinstance(refused, Rejection), refused
    new = d.rewindow(state, "b-r2", r2.request, window)
    assert isinstance(new, FleetState), new
    moved, rider1 = new.bookings["b-r2"], new.bookings["b-r1"]
    assert moved.pickup_window == window and moved.vehicle_id == "A"
    assert moved.pickup_eta_s is not None and moved.pickup_eta_s <= NOW + 300
    assert rider1.vehicle_id == "B" != r1_bus
    assert rider1.pickup_window == state.bookings["b-r1"].pickup_window
    assert {st.booking_id for st in new.plans["B"].stops} == {"b-r1"}
    assert_plans_match_bookings(new)
    snap, sol = d.current_solution(new)
    assert violations(snap.problem, sol) == []
    # a move puts r2 on A only if A can take it as its plan stands: it cannot
    squeezed = d.rewindow(state, "b-r2", r2.request, window, ["A"], rescue=False)
    assert isinstance(squeezed, Rejection), squeezed
    # nor may a rescue limited to A change B's plan (as for a bus out of service)
    only_a = d.rewindow(state, "b-r2", r2.request, window, ["A"])
    assert isinstance(only_a, Rejection), only_a


def test_a_breakdown_hands_a_rider_on_through_the_rescue() -> None:
    """C (at node 2) has r2 (2 -> 1, pickup within 5 minutes) and breaks down. Only A is
    near enough, and A has r1; B is far. Insertion alone must cancel r2; with the rescue r1
    goes to B and A takes r2, every promise kept, and nothing is planned on C."""
    times = grid_town()
    tight = replace(TIGHT, rescue_time_ms=0)
    buses = [bus(v, seats=1, wheelchairs=0, depot=at) for v, at in (("A", 0), ("B", 24), ("C", 2))]
    plain = Dispatcher(times, replace(tight, rescue_steps=0))
    a_alone, _ = book(plain, FleetState.create(NOW, [buses[0]]), "r1", 12, 14)
    c_alone, _ = book(plain, FleetState.create(NOW, [buses[2]]), "r2", 2, 1)
    state = fleet_of(buses, a_alone, c_alone)
    assert_plans_match_bookings(state)
    _, moved, cancelled = plain.take_out(state, "C", "engine")
    assert (moved, cancelled) == ([], ["b-r2"])
    d = Dispatcher(times, tight)
    new, moved, cancelled = d.take_out(state, "C", "engine")
    assert (moved, cancelled) == (["b-r2"], [])
    assert new.bookings["b-r2"].vehicle_id == "A" and new.bookings["b-r1"].vehicle_id == "B"
    assert not new.plans["C"].stops
    assert_plans_match_bookings(new)
    snap, sol = d.current_solution(new)
    assert violations(snap.problem, sol) == []


def test_a_bus_takes_other_seats_and_depot_only_where_its_plan_allows(times) -> None:
    """Bus A carries a group of three (r1, 12 -> 14): refitted with two seats it is left as
    it is, and the reason names the seats; with four seats and a depot at node 24 it takes
    them, its riders and stops kept and the stop times from the new bus."""
    d = dispatcher(times)
    state, _ = book(d, FleetState.create(NOW, [bus("A")]), "r1", 12, 14, passengers=3)
    small = d.refit(state, bus("A", seats=2))
    assert small == "its plan carries more riders at once than 2 seats"
    moved = d.refit(state, bus("A", seats=4, depot=24))
    assert isinstance(moved, FleetState)
    assert (moved.vehicles["A"].seats, moved.vehicles["A"].depot.node) == (4, 24)
    assert moved.vehicles["A"].shift_start_s == state.vehicles["A"].shift_start_s
    assert [(s.booking_id, s.type) for s in moved.plans["A"].stops] == [
        (s.booking_id, s.type) for s in state.plans["A"].stops
    ]
    # home from node 14 is two blocks to the new depot, six to the old one
    assert moved.plans["A"].end_s == state.plans["A"].end_s - 4 * 60
    snap, sol = d.current_solution(moved)
    assert violations(snap.problem, sol) == []


def test_a_late_bus_is_refitted_against_what_it_can_still_do(times) -> None:
    """Bus C is stuck at its depot past r0's promised pickup window. As in the rounds, its
    stop is held to no later than it is due: C takes a depot at node 24 (the stop times
    stay) but not two seats for r0's group of three."""
    d = dispatcher(times)
    state, _ = book(d, FleetState.create(NOW, [bus("C")]), "r0", 12, 14, passengers=3)
    state = d.vehicle_position(state, "C", 0, NOW + 800)
    late = state.bookings["b-r0"]
    assert late.pickup_eta_s is not None and late.pickup_eta_s > late.pickup_window[1]
    moved = d.refit(state, bus("C", depot=24))
    assert isinstance(moved, FleetState) and moved.vehicles["C"].depot.node == 24
    assert moved.bookings["b-r0"].pickup_eta_s == late.pickup_eta_s
    assert d.refit(state, bus("C", seats=2)) == (
        "its plan carries more riders at once than 2 seats"
    )


def test_a_time_in_the_past_is_named_before_a_fleet_off_shift(times) -> None:
    """At 02:00, the only bus's shift over at 01:00, a trip asked for 00:30 is refused for
    its time in the past (what was asked), not for the bus being off shift; one asked for
    now is refused for the shift, and one at 06:00 for the service hours."""
    d = dispatcher(times)
    state = FleetState.create(26 * 3600, [bus("A", shift=(20 * 3600, 25 * 3600))])
    past = d.offer(state, request("r1", 12, 14, state.now_s, at=24 * 3600 + 1800))
    now = d.offer(state, request("r2", 12, 14, state.now_s))
    late = d.offer(state, request("r3", 12, 14, state.now_s, at=30 * 3600))
    assert isinstance(past, Rejection) and past.reason == RejectionReason.PICKUP_IN_PAST
    assert isinstance(now, Rejection) and now.reason == RejectionReason.NO_VEHICLE_ON_SHIFT
    assert isinstance(late, Rejection) and late.reason == RejectionReason.OUTSIDE_SERVICE_HOURS
