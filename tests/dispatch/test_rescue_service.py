"""A rescue through the real DispatchService and an embedded Redis: the rescued offer is kept
with the plans it needs, booking it moves the other rider to the other bus, and the stored
fleet keeps every promise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.redis_store import RedisStore, connect
from dispatch.service import DispatchService
from nachtbus.clock import ManualClock
from nachtbus.domain import BookingStatus, Offer
from routing.checker import violations
from tests.helpers import NoLocator, bus, grid_town, request

NOW = 21 * 3600
TIMES = grid_town()
#: 5-minute waits, no buffer, the rescue on its step limit alone
POLICY = ServicePolicy(max_wait_s=300, plan_buffer_s=0, rescue_time_ms=0)


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[DispatchService]:
    client = connect(None, tmp_path)
    svc = DispatchService(
        Dispatcher(TIMES, POLICY), RedisStore(client, "rescue"), ManualClock(NOW), NoLocator()
    )
    # B comes on shift a minute from now, so r1 goes to A, which is on the road already
    svc.start(
        [
            bus("A", seats=1, wheelchairs=0),
            bus("B", seats=1, wheelchairs=0, depot=24, shift=(NOW + 60, 29 * 3600)),
        ]
    )
    yield svc
    client.close()


def test_a_rescued_offer_is_kept_with_its_plans_and_booked_whole(service) -> None:
    first = service.quote(request("r1", 12, 14, NOW))
    assert isinstance(first, Offer) and first.vehicle_id == "A" and not first.moves
    r1 = service.commit(service.book(first.offer_id).booking_id)
    # r2 at node 2 within 5 minutes: only A is near, and A has r1
    offer = service.quote(request("r2", 2, 1, NOW))
    assert isinstance(offer, Offer), offer
    assert offer.vehicle_id == "A" and [m.vehicle_id for m in offer.moves] == ["B"]
    kept = service.offer(offer.offer_id)
    assert kept is not None and kept.moves == offer.moves and kept.plan == offer.plan
    r2 = service.commit(service.book(offer.offer_id).booking_id)
    state = service.snapshot()
    assert state.bookings[r2.booking_id].vehicle_id == "A"
    moved = state.bookings[r1.booking_id]
    assert moved.vehicle_id == "B" and moved.status == BookingStatus.CONFIRMED
    assert moved.pickup_window == r1.pickup_window and moved.max_ride_s == r1.max_ride_s
    assert moved.pickup_eta_s is not None
    assert state.plan_errors() == []
    assert moved.pickup_window[0] <= moved.pickup_eta_s <= moved.pickup_window[1]
    assert [st.booking_id for st in state.plans["B"].stops] == [r1.booking_id] * 2
    snap, sol = service.dispatcher.current_solution(state)
    assert violations(snap.problem, sol) == []


def test_a_change_that_parts_plans_from_bookings_is_never_stored(service) -> None:
    """A defect that would name a rider's old bus in its booking while the stops are on the
    new one (as booking a rescued offer once did) is refused before the store sees it: the
    stored fleet stays as it was, and the error names the booking."""
    offer = service.quote(request("r1", 12, 14, NOW))
    assert isinstance(offer, Offer)
    r1 = service.commit(service.book(offer.offer_id).booking_id)
    before = service.snapshot()
    assert before.plan_errors() == []

    def wrong_bus(state):
        bookings = dict(state.bookings)
        bookings[r1.booking_id] = replace(bookings[r1.booking_id], vehicle_id="B")
        return state.evolve(bookings=bookings), [], None

    with pytest.raises(RuntimeError, match=f"{r1.booking_id}, booked on B"):
        service._change(wrong_bus)
    after = service.snapshot()
    assert after.version == before.version
    assert after.bookings[r1.booking_id].vehicle_id == "A"

    def stale_stop(state):  # the booking cancelled, its stops left in the plan
        bookings = dict(state.bookings)
        bookings[r1.booking_id] = replace(bookings[r1.booking_id], status=BookingStatus.CANCELLED)
        return state.evolve(bookings=bookings), [], None

    with pytest.raises(RuntimeError, match="CANCELLED"):
        service._change(stale_stop)
    assert service.snapshot().bookings[r1.booking_id].status == BookingStatus.CONFIRMED


def test_a_disagreement_already_in_the_store_does_not_stop_the_service(service) -> None:
    """A fleet stored with a stop on a bus its booking does not name (by older code, say)
    still takes new bookings: only a change that adds a disagreement is refused."""
    offer = service.quote(request("r1", 12, 14, NOW))
    assert isinstance(offer, Offer)
    r1 = service.commit(service.book(offer.offer_id).booking_id)
    state = service.store.load()
    assert state is not None
    bookings = dict(state.bookings)
    bookings[r1.booking_id] = replace(bookings[r1.booking_id], vehicle_id="B")
    bad = state.evolve(bookings=bookings)
    assert service.store.commit(bad, state.version, [])
    assert service.snapshot().plan_errors()
    later = service.quote(request("r2", 20, 22, NOW + 60))
    assert isinstance(later, Offer), later
    r2 = service.commit(service.book(later.offer_id).booking_id)
    assert service.snapshot().bookings[r2.booking_id].status == BookingStatus.CONFIRMED
