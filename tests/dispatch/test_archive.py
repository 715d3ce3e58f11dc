"""Past nights out of Redis and into files: the dump reads back as the store's state, the wipe
deletes nothing that changed meanwhile, and a failed archive write leaves the night in the
store (real embedded Redis)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from dispatch.archive import ArchiveError, NightArchive
from dispatch.assembly import SettingsNights
from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.redis_store import RedisConnection, RedisStore, connect
from dispatch.service import DispatchService
from dispatch.store import Event
from nachtbus.billing.fares import Pricer, Tariff
from nachtbus.clock import ManualClock
from nachtbus.domain import Offer
from nachtbus.settings import Settings
from routing.world import RoadWorld
from tests.helpers import NoLocator, bus, grid_town, request

NOW = 21 * 3600
TIMES = grid_town()
DAY = date(2026, 11, 20)


@pytest.fixture()
def conn(tmp_path: Path) -> Iterator[RedisConnection]:
    c = connect(None, tmp_path / "redis")
    yield c
    c.close()


def _night(conn: RedisConnection, day: date) -> DispatchService:
    """A night with two confirmed riders, one cancelled two hours ahead (a refund) and a
    rejection event."""
    store = RedisStore(conn, f"soest:{day.isoformat()}")
    svc = DispatchService(
        Dispatcher(TIMES, ServicePolicy(plan_buffer_s=0, rescue_time_ms=0)),
        store,
        ManualClock(NOW, day),
        NoLocator(),
        pricer=Pricer(Tariff.load(Settings().tariff_file), None),
    )
    svc.start([bus("A"), bus("B", depot=24)])
    ids = []
    for rid, o, d, at in (("r1", 12, 14, 600), ("r2", 2, 1, 600), ("r3", 20, 4, 7200)):
        offer = svc.quote(request(rid, o, d, NOW, at=NOW + at))
        assert isinstance(offer, Offer), offer
        ids.append(svc.commit(svc.book(offer.offer_id).booking_id).booking_id)
    svc.cancel(ids[2])
    store.append_events([Event("request.rejected", NOW, {"reason": "no_vehicle"})])
    return svc


def test_a_dumped_night_reads_back_as_the_store_holds_it(conn, tmp_path) -> None:
    store = _night(conn, DAY).store
    assert isinstance(store, RedisStore)
    dump = store.dump()
    assert dump is not None
    archive = NightArchive(tmp_path / "archive")
    archive.write(DAY, dump)
    night = archive.read(DAY)
    assert night is not None
    assert night.load() == store.load()
    for name in ("ledger", "legs"):
        assert night.journal(name) == store.journal(name)
    assert len(night.journal("ledger")) == 4  # three charges and one refund
    events = [(eid, e.type, e.data) for eid, e in store.events_after("0", count=10_000)]
    assert [(e["id"], e["type"], e["data"]) for e in dump["events"]] == events
    assert archive.days() == [DAY] and archive.read(date(2026, 11, 21)) is None
    for bid, b in store.load().bookings.items():  # type: ignore[union-attr]
        assert night.booking(bid) == b == store.booking(bid)
    assert night.booking("bk-none") is None and store.booking("bk-none") is None


def test_a_night_written_to_after_its_dump_is_not_wiped(conn) -> None:
    svc = _night(conn, DAY)
    store = svc.store
    assert isinstance(store, RedisStore)
    dump = store.dump()
    assert dump is not None
    offer = svc.quote(request("late", 5, 9, NOW, at=NOW + 900))
    assert isinstance(offer, Offer)
    svc.commit(svc.book(offer.offer_id).booking_id)  # a write after the dump
    assert store.wipe(dump["meta"]["version"]) == 0
    assert store.load() is not None and len(store.load().bookings) == 4  # type: ignore[union-attr]
    fresh = store.dump()
    assert fresh is not None
    assert store.wipe(fresh["meta"]["version"]) > 0
    assert store.r.keys(store.prefix + "*") == [] and store.load() is None


def _nights(conn: RedisConnection, data: Path, world: RoadWorld) -> SettingsNights:
    first = RedisStore(conn, f"soest:{DAY.isoformat()}")
    return SettingsNights(Settings(data_dir=data, area_id="soest"), world, first)


def test_archiving_moves_only_the_nights_before_the_day(conn, tmp_path, town_world) -> None:
    for k in range(3):
        _night(conn, date(2026, 11, 20 + k))
    nights = _nights(conn, tmp_path / "data", town_world)
    assert nights.stored_days() == [date(2026, 11, 20 + k) for k in range(3)]
    before = nights.record_for(DAY)
    assert before is not None
    state = before.load()
    assert nights.archive_before(date(2026, 11, 22)) == [date(2026, 11, 20), date(2026, 11, 21)]
    assert nights.stored_days() == [date(2026, 11, 22)]
    after = nights.record_for(DAY)
    assert after is not None and not isinstance(after, RedisStore)
    assert after.load() == state
    assert isinstance(nights.record_for(date(2026, 11, 22)), RedisStore)
    assert nights.record_for(date(2026, 11, 1)) is None


def test_a_failed_archive_write_leaves_the_night_in_the_store(conn, tmp_path, town_world) -> None:
    _night(conn, DAY)
    data = tmp_path / "data"
    nights = _nights(conn, data, town_world)
    (data / "archive").mkdir(parents=True)
    (data / "archive" / "soest").write_text("not a folder")  # the write fails
    with pytest.raises(OSError):
        nights.archive_before(date(2026, 11, 25))
    assert nights.stored_days() == [DAY]
    record = nights.record_for(DAY)
    assert isinstance(record, RedisStore) and record.load() is not None


def test_a_damaged_archive_file_is_an_error_naming_it(tmp_path) -> None:
    archive = NightArchive(tmp_path)
    archive.write(
        DAY, {"meta": {"version": 1, "now_s": 0}, "records": {}, "journals": {}, "events": []}
    )
    path = archive.path(DAY)
    path.write_bytes(gzip.compress(b"{not json"))
    with pytest.raises(ArchiveError, match=str(path)):
        archive.read(DAY)
    path.write_bytes(b"truncated")
    with pytest.raises(ArchiveError, match="cannot be read"):
        archive.read(DAY)
