"""Property: whatever riders and drivers do, the ledger balance is the sum of the receipts.

Random nights on the grid town through the real DispatchService and a real (embedded) Redis:
bookings (pre-booked or not, committed or left PENDING), cancellations at any time (before or
after the tariff's cutoff), no-shows, pickups and drop-offs, time passing. After each night:
the ledger passes its own checks, every receipt's payments come from the ledger, the balance and
the VAT equal the sums over the receipts, and each booking paid what its final state says.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.redis_store import RedisStore, connect
from dispatch.service import DispatchService
from nachtbus.billing import ledger as billing
from nachtbus.billing.fares import Pricer, Tariff
from nachtbus.clock import ManualClock
from nachtbus.domain import BookingStatus, Offer, StopType
from nachtbus.errors import NachtbusError
from nachtbus.settings import EXAMPLE_TARIFF
from tests.helpers import NoLocator, bus, grid_town, request

NOW = 21 * 3600
TIMES = grid_town()
POLICY = ServicePolicy(max_wait_s=900, detour_alpha=1.5, detour_beta_s=180)
TARIFF = Tariff.load(EXAMPLE_TARIFF)
AREAS = itertools.count()


@pytest.fixture(scope="module")
def redis_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    client = connect(None, Path(tmp_path_factory.mktemp("ledger-redis")))
    yield client
    client.close()


node = st.integers(0, 24)
book = st.tuples(
    st.just("book"),
    node,
    node,
    st.sampled_from([None, 1200, 3600, 5400]),  # leave now, or pre-booked ahead
    st.integers(1, 4),
    st.sampled_from([True, True, True, False]),  # commit (mostly) or leave PENDING
)
action = st.one_of(
    book,
    book,
    book,
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("no_show"), st.integers(0, 30)),
    st.tuples(st.just("board"), st.integers(0, 30)),
    st.tuples(st.just("alight"), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.sampled_from([60, 600, 1800])),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(action, min_size=4, max_size=30))
def test_ledger_balance_equals_sum_of_receipts(redis_client, actions) -> None:
    clock = ManualClock(NOW)
    store = RedisStore(redis_client, f"prop-{next(AREAS)}")
    service = DispatchService(
        Dispatcher(TIMES, POLICY), store, clock, NoLocator(), pricer=Pricer(TARIFF)
    )
    service.start([bus("bus-1", seats=6), bus("bus-2", seats=6)])
    booked: list[str] = []
    for n, act in enumerate(actions):
        try:
            if act[0] == "book":
                _, a, b, ahead, people, commit = act
                if a == b:
                    continue
                pickup = None if ahead is None else clock.now_s() + ahead
                req = request(f"r{n}", a, b, clock.now_s(), at=pickup, passengers=people)
                offer = service.quote(req)
                if isinstance(offer, Offer):
                    assert offer.fare is not None and offer.fare.total_cents > 0
                    bk = service.book(offer.offer_id)
                    booked.append(bk.booking_id)
                    if commit:
                        service.commit(bk.booking_id)
            elif act[0] == "wait":
                clock.advance(act[1])
            elif booked:
                bid = booked[act[1] % len(booked)]
                b = service.snapshot().bookings[bid]
                if act[0] == "cancel":
                    service.cancel(bid)
                elif act[0] == "no_show" and b.vehicle_id:
                    service.arrived(b.vehicle_id, bid, StopType.PICKUP)
                    clock.advance(max(0, b.pickup_window[0] - clock.now_s()))
                    clock.advance(POLICY.no_show_wait_s)
                    service.no_show(b.vehicle_id, bid)
                elif act[0] == "board" and b.vehicle_id:
                    service.arrived(b.vehicle_id, bid, StopType.PICKUP)
                    service.stop_done(b.vehicle_id, bid, StopType.PICKUP)
                elif act[0] == "alight" and b.vehicle_id:
                    service.arrived(b.vehicle_id, bid, StopType.DROPOFF)
                    service.stop_done(b.vehicle_id, bid, StopType.DROPOFF)
        except NachtbusError:
            pass  # refused in this state (e.g. cancel after boarding): nothing changes

    ledger = service.ledger()
    state = service.snapshot()
    receipts = [billing.receipt(b, ledger) for b in state.bookings.values()]
    totals = ledger.totals()
    event(f"refunds: {totals.refunds_cents > 0}, charges: {totals.charges_cents > 0}")
    assert sum(r.paid_cents for r in receipts) == totals.balance_cents
    assert sum(r.vat_cents for r in receipts) == totals.vat_cents
    assert sum(len(r.entries) for r in receipts) == totals.entries
    for r in receipts:
        b, fare = r.booking, r.booking.fare
        assert fare is not None
        kinds = [e.kind for e in r.entries]
        if b.status in (BookingStatus.PENDING, BookingStatus.EXPIRED):
            assert kinds == []
        elif b.status == BookingStatus.CANCELLED:
            assert r.paid_cents in (0, fare.total_cents)
            assert kinds in (
                [],
                [billing.EntryKind.CHARGE],
                [billing.EntryKind.CHARGE, billing.EntryKind.REFUND],
            )
        else:  # CONFIRMED, STARTED, FINISHED, NO_SHOW: charged, never refunded
            assert kinds == [billing.EntryKind.CHARGE]
            assert r.paid_cents == fare.total_cents
        assert 0 <= r.paid_cents <= fare.total_cents
