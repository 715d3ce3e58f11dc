"""The control room's view of the service itself (GET /v1/status): the store's memory and
nights, tonight's background rounds, and warnings for what needs a look."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, TEN_PM, Api, open_api


@pytest.fixture()
def api(town_world: RoadWorld, tmp_path: Path) -> Iterator[Api]:
    service = open_api(town_world, tmp_path / "data", ManualClock(TEN_PM, date(2026, 11, 20)))
    with service.client:
        yield service
    service.runtime.close()


def _status(api: Api) -> dict:
    r = api.client.get("/v1/status", headers=DISPATCHER)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_fresh_service_is_well_and_shows_its_store(api: Api) -> None:
    got = _status(api)
    assert got["warnings"] == []
    assert got["store"]["usedMb"] > 0 and got["store"]["maxMb"] == 512
    assert got["store"]["nightsStored"] == 1 and got["store"]["archiveError"] is None
    assert got["rounds"]["rounds"] == 0 and got["trainFeed"] is None
    assert api.client.get("/v1/status", headers=RIDER).status_code == 403


def test_a_failed_or_stalled_round_is_a_warning(api: Api) -> None:
    """A round that failed last warns with its error; one that went through after it clears
    the warning; none for ten minutes warns again."""
    service = api.runtime.service
    service.note_round(None)
    api.clock.advance(20)
    service.note_round("RuntimeError: the solver child died")
    got = _status(api)
    assert got["rounds"]["rounds"] == 1
    assert got["warnings"] == ["the last background round failed: RuntimeError: the solver "
                               "child died"]  # fmt: skip
    api.clock.advance(20)
    service.note_round(None)
    assert _status(api)["warnings"] == [] and _status(api)["rounds"]["rounds"] == 2
    api.clock.advance(11 * 60)
    assert _status(api)["warnings"] == ["no background round has gone through since 22:00"]


def test_a_store_near_its_ceiling_is_a_warning(api: Api) -> None:
    used = int(api.store.r.info("memory")["used_memory"])
    api.store.r.config_set("maxmemory", str(int(used * 1.1)))
    try:
        (warning,) = _status(api)["warnings"]
    finally:
        api.store.r.config_set("maxmemory", str(512 * 2**20))
    assert warning.startswith("the store is 9") and "NACHTBUS_KEEP_NIGHTS" in warning


def test_a_bus_not_heard_of_at_its_next_stop_is_named(api: Api) -> None:
    """A booked bus whose driver sends nothing: five minutes after its plan had it at the
    pickup the status names it, the booking and the times; once its driver reports where it
    is (the plan's times then run from there) it is late at most, no longer unheard of; at
    the pickup it reported ARRIVED it waits, and is not named either."""
    booking = api.booked((51.562, 8.092), (51.580, 8.120))
    vid, bid = booking["vehicle"]["vehicleId"], booking["id"]
    expected = api.runtime.service.snapshot().plans[vid].stops[0].eta_s
    api.clock.set(expected + 290)
    assert _status(api)["warnings"] == []
    api.clock.set(expected + 310)
    (warning,) = _status(api)["warnings"]
    assert warning.startswith(f"{vid} has not reported reaching its next stop (pickup of {bid}")
    assert "last heard 22:00" in warning and "call the driver" in warning
    assert "take it out of service" in warning
    r = api.vehicle_event(vid, type="POSITION", lat=51.5705, lon=8.1005)
    assert r.status_code == 200, r.text
    assert _status(api)["warnings"] == []
    eta = api.runtime.service.snapshot().plans[vid].stops[0].eta_s  # from where it reported
    assert eta > expected + 310
    api.clock.set(eta + 310)
    assert len(_status(api)["warnings"]) == 1  # silent again, long after the new time
    assert api.vehicle_event(vid, type="ARRIVED", bookingId=bid, stop="pickup").status_code == 200
    assert _status(api)["warnings"] == []
