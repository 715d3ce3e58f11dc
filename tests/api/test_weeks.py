"""A service left running: across noon into the next service day, and through both
clock-change nights of 2026, with a real (embedded) store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dispatch.rebalancing import RebalanceParams
from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, Api, open_api
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION


@pytest.fixture()
def opened(town_world: RoadWorld, tmp_path: Path) -> Iterator[tuple[RoadWorld, Path]]:
    yield town_world, tmp_path / "data"


def _service(town_world: RoadWorld, data: Path, clock: ManualClock) -> Api:
    return open_api(town_world, data, clock)


def test_a_service_running_across_noon_serves_the_next_evening(opened) -> None:
    """Booked on the night of the 20th; the service keeps running through the morning; after
    noon the next evening's pre-booking gets an offer from a fresh fleet on shift, and the
    night before keeps its booking in its own store."""
    world, data = opened
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    api = _service(world, data, clock)
    with api.client:
        first = api.booked(MARKT, OSTOENNEN)
        clock.advance(15 * 3600)  # 13:00 on the 21st: a new service day
        assert clock.service_date() == date(2026, 11, 21)
        r = api.inquire(STATION, AMPEN, departureTime="2026-11-21T21:00:00+01:00")
        assert r.status_code == 200, r.text
        offer = r.json()["options"][0]
        assert offer["pickup"]["windowStart"] == "2026-11-21T21:00:00+01:00"
        fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
        assert fleet["bookings"] == [] and len(fleet["vehicles"]) == 3
        assert api.client.get(f"/v1/bookings/{first['id']}", headers=RIDER).status_code == 404
        old = api.store.load()  # the store the test opened is the night of the 20th
        assert old is not None and first["id"] in old.bookings


@pytest.mark.parametrize(
    ("instant", "asked", "expect_start"),
    [
        # October: asked for the second 02:30 (CET) at 01:50 CEST
        (
            datetime(2026, 10, 24, 23, 50, tzinfo=UTC),
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T02:30:00+01:00",
        ),
        # October: asked for the first 02:30 (CEST)
        (
            datetime(2026, 10, 24, 23, 50, tzinfo=UTC),
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
        ),
        # March: asked for 03:30 CEST at 01:40 CET
        (
            datetime(2026, 3, 29, 0, 40, tzinfo=UTC),
            "2026-03-29T03:30:00+02:00",
            "2026-03-29T03:30:00+02:00",
        ),
    ],
)
def test_clock_change_nights_give_the_asked_window(opened, instant, asked, expect_start) -> None:
    """A pre-booking in a clock-change night gets its window at the asked instant, shown in
    local time with the right offset; a leave-now request's window starts at the real now."""
    world, data = opened
    clock = ManualClock.at_instant(instant)
    api = _service(world, data, clock)
    with api.client:
        r = api.inquire(MARKT, AMPEN, departureTime=asked)
        assert r.status_code == 200, r.text
        start = r.json()["options"][0]["pickup"]["windowStart"]
        assert start == expect_start
        assert datetime.fromisoformat(start).astimezone(UTC) == datetime.fromisoformat(
            asked
        ).astimezone(UTC)
        clock.advance(3600)  # across the change
        now = api.inquire(MARKT, OSTOENNEN).json()["options"][0]["pickup"]["windowStart"]
        assert datetime.fromisoformat(now).astimezone(UTC) == clock.now().replace(microsecond=0)


def test_the_october_night_serves_until_five_cet(opened) -> None:
    """The last pickup is at 05:00 on the wall, which is an hour later in seconds: 04:30 CET
    is still served, 05:30 CET is outside the service hours."""
    world, data = opened
    clock = ManualClock.at_instant(datetime(2026, 10, 25, 2, 0, tzinfo=UTC))  # 03:00 CET
    api = _service(world, data, clock)
    with api.client:
        ok = api.inquire(MARKT, AMPEN, departureTime="2026-10-25T04:30:00+01:00")
        assert ok.status_code == 200 and ok.json()["options"], ok.text
        late = api.inquire(MARKT, AMPEN, departureTime="2026-10-25T05:30:00+01:00")
        assert late.status_code == 422 and late.json()["code"] == "outside_service_hours"
        assert "05:00" in late.json()["message"]


def test_an_arrival_time_in_the_past_is_bad_input(opened) -> None:
    world, data = opened
    api = _service(world, data, ManualClock(22 * 3600, date(2026, 11, 20)))
    with api.client:
        r = api.inquire(MARKT, AMPEN, arrivalTime="2026-11-20T21:30:00+01:00")
        assert r.status_code == 422, r.text
        assert (r.json()["code"], r.json()["field"]) == ("pickup_in_past", "arrivalTime")


def test_the_next_night_sends_idle_buses_where_last_nights_riders_were(opened) -> None:
    """Riders were picked up in Ampen around 22:30 on the 20th; on the 21st at 22:15 the
    history forecast (last nights in the store) sends an idle bus towards Ampen."""
    world, data = opened
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    api = _service(world, data, clock)
    with api.client:
        for _ in range(2):
            api.booked(AMPEN, MARKT, departureTime="2026-11-20T22:30:00+01:00")
        clock.advance(24 * 3600 + 15 * 60)  # 22:15 the next evening
        assert clock.service_date() == date(2026, 11, 21)
        service = api.runtime.service
        assert service.rebalance_from_history(7, RebalanceParams()) >= 1
        state = service.snapshot()
        sent = [p for p in state.plans.values() if p.reposition is not None]
        assert sent and all(p.reposition and abs(p.reposition.lat - AMPEN[0]) < 0.01 for p in sent)
        # nothing before the first night: no forecast, nobody sent
        clock2 = ManualClock(22 * 3600, date(2026, 11, 10))
        fresh = _service(world, data / "other", clock2)
        with fresh.client:
            assert fresh.runtime.service.rebalance_from_history(7, RebalanceParams()) == 0
        fresh.runtime.close()
    api.runtime.close()


def _drive(api: Api, booking_id: str) -> None:
    """The booking's bus picks the rider up and sets them down (so it has legs and CO2)."""
    bus = api.client.get(f"/v1/bookings/{booking_id}", headers=RIDER).json()["vehicle"]
    api.clock.advance(300)
    assert api.at_stop(bus["vehicleId"], booking_id, "pickup").status_code == 200
    api.clock.advance(900)
    assert api.at_stop(bus["vehicleId"], booking_id, "dropoff").status_code == 200


def _night_papers(api: Api, booking_id: str, day: str | None) -> tuple[dict, dict, str]:
    """The booking's receipt, the night's ledger and its CSV export (of ``day``, or the
    default when None)."""
    q = {} if day is None else {"serviceDate": day}
    rc = api.client.get(f"/v1/bookings/{booking_id}/receipt", params=q, headers=RIDER)
    lg = api.client.get("/v1/ledger", params=q, headers=DISPATCHER)
    csv = api.client.get("/v1/ledger/export.csv", params=q, headers=DISPATCHER)
    assert (rc.status_code, lg.status_code, csv.status_code) == (200, 200, 200), rc.text
    return rc.json(), lg.json(), csv.text


def test_an_old_night_moves_to_the_archive_and_its_receipt_and_ledger_stay(opened) -> None:
    """keep_nights=1: on the 22nd the night of the 20th leaves the store for its archive file
    (its keys gone from Redis), and its receipt, ledger and CSV export read the same as on
    the night itself; the 21st stays in the store. Next morning the receipt is found without
    a date; once archived, with its date."""
    world, data = opened
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    api = open_api(world, data, clock, keep_nights=1)
    with api.client:
        bid = api.booked(MARKT, OSTOENNEN)["id"]
        _drive(api, bid)
        receipt, ledger, csv = _night_papers(api, bid, None)
        assert receipt["serviceDate"] == "2026-11-20" and receipt["paidCents"] > 0
        assert receipt["co2"] is not None and ledger["entries"]
        assert receipt["droppedOffAt"].startswith("2026-11-20T22:")
        night_co2 = api.client.get("/v1/co2", headers=DISPATCHER).json()
        assert night_co2["vehicleKm"] > 0

        clock.advance(15 * 3600)  # 13:00 on the 21st: the 20th is yesterday, still stored
        service = api.runtime.service
        assert service.archive_nights(1) == []
        assert _night_papers(api, bid, None)[0] == receipt  # found without its date
        assert _night_papers(api, bid, "2026-11-20") == (receipt, ledger, csv)
        api.booked(STATION, AMPEN, departureTime="2026-11-21T21:00:00+01:00")

        clock.advance(24 * 3600)  # 13:00 on the 22nd
        assert service.archive_nights(1) == [date(2026, 11, 20)]
        assert service.archive_nights(1) == []  # once a service day
        r = api.store.r
        assert r.keys("nachtbus:soest:2026-11-20:*") == []
        assert r.exists("nachtbus:soest:2026-11-21:meta")
        assert (data / "archive" / "soest" / "2026-11-20.json.gz").is_file()
        assert _night_papers(api, bid, "2026-11-20") == (receipt, ledger, csv)
        co2 = api.client.get("/v1/co2", params={"serviceDate": "2026-11-20"}, headers=DISPATCHER)
        assert co2.status_code == 200 and co2.json() == night_co2
        gone = api.client.get(f"/v1/bookings/{bid}/receipt", headers=RIDER)
        assert gone.status_code == 404 and gone.json()["field"] == "id"
        other = api.client.get(
            f"/v1/bookings/{bid}/receipt",
            params={"serviceDate": "2026-11-20"},
            headers={"X-Api-Key": "other-app-key"},
        )
        assert other.status_code == 403  # still another app's booking
        never = api.client.get(
            "/v1/ledger", params={"serviceDate": "2026-11-01"}, headers=DISPATCHER
        )
        assert never.status_code == 404 and never.json()["field"] == "serviceDate"
        bad = api.client.get("/v1/ledger", params={"serviceDate": "20.11.2026"}, headers=DISPATCHER)
        assert bad.status_code == 422 and bad.json()["field"] == "serviceDate"
    api.runtime.close()


def test_the_background_round_archives_old_nights_by_itself(opened) -> None:
    """The service's own rounds (not a test's call) move a night older than keep_nights to
    its file; the night's bookings are all there."""
    world, data = opened
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    api = open_api(world, data, clock, keep_nights=1, reopt_interval_s=0.05)
    with api.client:
        ids = {api.booked(MARKT, OSTOENNEN)["id"], api.booked(STATION, AMPEN)["id"]}
        clock.advance(2 * 24 * 3600)  # 22:00 on the 22nd
        path = data / "archive" / "soest" / "2026-11-20.json.gz"
        meta = "nachtbus:soest:2026-11-20:meta"
        deadline = time.monotonic() + 60
        # the file is written (and read back) first, the night wiped from the store after:
        # wait for both (waiting for the file alone raced the wipe)
        while (not path.exists() or api.store.r.exists(meta)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.exists()
        night = api.runtime.service.record(date(2026, 11, 20))
        state = night.load()
        assert state is not None and ids <= set(state.bookings)
        assert not api.store.r.exists(meta)
        rounds = api.client.get("/v1/status", headers=DISPATCHER).json()["rounds"]
        assert rounds["rounds"] >= 1 and rounds["lastOkAt"] is not None  # the round said so
    api.runtime.close()


def test_a_failed_archiving_keeps_the_nights_and_is_tried_again(opened) -> None:
    """The archive folder cannot be written (a file in its place): the round's archiving
    step raises nothing, the night stays in the store, and the next try, an hour later,
    moves it once the folder is there."""
    world, data = opened
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    api = open_api(world, data, clock, keep_nights=1)
    with api.client:
        bid = api.booked(MARKT, OSTOENNEN)["id"]
        clock.advance(2 * 24 * 3600)
        (data / "archive").mkdir(parents=True)
        (data / "archive" / "soest").write_text("in the way")
        service = api.runtime.service
        assert service.archive_nights(1) == []
        assert api.store.r.exists("nachtbus:soest:2026-11-20:meta")
        status = api.client.get("/v1/status", headers=DISPATCHER).json()
        assert status["store"]["nightsStored"] == 2
        assert any(w.startswith("old nights could not be archived") for w in status["warnings"])
        assert service.archive_nights(1) == []  # not again within the hour
        (data / "archive" / "soest").unlink()
        assert service.archive_nights(1) == []  # still within the hour
        service._archive_retry_at = 0.0  # the hour has passed
        assert service.archive_nights(1) == [date(2026, 11, 20)]
        state = service.record(date(2026, 11, 20)).load()
        assert state is not None and bid in state.bookings
        status = api.client.get("/v1/status", headers=DISPATCHER).json()
        assert status["warnings"] == [] and status["store"]["nightsStored"] == 1
    api.runtime.close()


def test_an_archive_dir_set_apart_is_read_by_another_host(opened, tmp_path: Path) -> None:
    """NACHTBUS_ARCHIVE_DIR: the night goes to that folder, not under data_dir; a second
    host with its own data_dir (here a store that never held the night) and the same
    archive folder answers the archived night's receipt and ledger as the first did."""
    world, data = opened
    shared = tmp_path / "nfs" / "nachtbus-archive"
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    api = open_api(world, data, clock, keep_nights=1, archive_dir=shared)
    with api.client:
        bid = api.booked(MARKT, OSTOENNEN)["id"]
        _drive(api, bid)
        before = _night_papers(api, bid, None)
        clock.advance(2 * 24 * 3600)
        assert api.runtime.service.archive_nights(1) == [date(2026, 11, 20)]
    api.runtime.close()
    assert (shared / "soest" / "2026-11-20.json.gz").is_file()
    assert not (data / "archive").exists()
    other = open_api(world, tmp_path / "host-2", ManualClock(22 * 3600, date(2026, 11, 22)),
                     keep_nights=1, archive_dir=shared)  # fmt: skip
    with other.client:
        assert _night_papers(other, bid, "2026-11-20") == before
    other.runtime.close()
    lonely = open_api(world, tmp_path / "host-3", ManualClock(22 * 3600, date(2026, 11, 22)))
    with lonely.client:  # without the shared folder the night is not there
        r = lonely.client.get("/v1/ledger", params={"serviceDate": "2026-11-20"},
                              headers=DISPATCHER)  # fmt: skip
        assert r.status_code == 404 and r.json()["field"] == "serviceDate"
    lonely.runtime.close()
