"""A bus that has not left for its next stop: its plan runs from now, so its riders see when
it can come, are moved to a bus that keeps their promise, or are told; the control room is
warned. (A bus that drives and reports is timed from its reports: tests elsewhere.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, TEN_PM, Api, evening_s, open_api

FROM, TO = (51.562, 8.092), (51.580, 8.120)


@contextmanager
def _service(world: RoadWorld, data: Path, buses: int) -> Iterator[Api]:
    api = open_api(world, data, ManualClock(TEN_PM, date(2026, 11, 20)), buses=buses)
    with api.client:
        yield api
    api.runtime.close()


def _booking(api: Api, bid: str) -> dict:
    r = api.client.get(f"/v1/bookings/{bid}", headers=RIDER)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _events(api: Api, kind: str) -> list[dict]:
    return [e.data for _, e in api.store.recent_events(500) if e.type == kind]


def _warnings(api: Api) -> list[str]:
    r = api.client.get("/v1/status", headers=DISPATCHER)
    assert r.status_code == 200, r.text
    return list(r.json()["warnings"])


def test_a_bus_that_has_not_left_is_timed_from_now_and_its_rider_told(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """One bus, booked at 22:00, whose driver sends nothing. Less than a minute behind its
    plan nothing changes; three minutes behind, the rider's pickup and arrival move on by as
    much (event vehicle.retimed); once it can no longer come within the window, the rider is
    told why (lateNotice with the reason) and the control room is warned that the bus has not
    left. The first report of the driver fixes the plan: it is not re-timed any more."""
    with _service(town_world, tmp_path / "data", buses=1) as api:
        b = api.booked(FROM, TO)
        bid, vid = b["id"], b["vehicle"]["vehicleId"]
        pickup = evening_s(b["pickup"]["expectedTime"])
        dropoff = evening_s(b["dropoff"]["expectedTime"])
        window_end = evening_s(b["pickup"]["windowEnd"])
        service = api.runtime.service
        api.clock.set(TEN_PM + 50)
        assert service.retime_not_left() == []
        assert _booking(api, bid)["pickup"]["expectedTime"] == b["pickup"]["expectedTime"]

        api.clock.set(TEN_PM + 180)
        assert service.retime_not_left() == [vid]
        now = _booking(api, bid)
        assert evening_s(now["pickup"]["expectedTime"]) == pickup + 180
        assert evening_s(now["dropoff"]["expectedTime"]) == dropoff + 180
        assert now["lateNotice"] is None and now["state"] == "CONFIRMED"
        (retimed,) = _events(api, "vehicle.retimed")
        assert retimed["vehicle_id"] == vid and retimed["booking_id"] == bid
        assert retimed["expected_s"] - retimed["was_s"] == 180
        assert _warnings(api) == []

        late_by = 120
        api.clock.set(window_end - (pickup - TEN_PM) + late_by)  # leaving now, 2 min late
        assert service.retime_not_left() == [vid]
        told = _booking(api, bid)
        assert told["lateNotice"] == {
            "stop": "pickup",
            "toldAt": told["lateNotice"]["toldAt"],
            "expectedTime": told["pickup"]["expectedTime"],
            "reason": "the bus has not left yet",
        }
        assert evening_s(told["pickup"]["expectedTime"]) == window_end + late_by
        (notice,) = _events(api, "booking.late_notice")
        assert notice["reason"] == "the bus has not left yet" and notice["late_s"] == late_by
        (warning,) = _warnings(api)  # last heard at 22:00, more than 5 min ago
        assert warning.startswith(f"{vid} has not left for its next stop (pickup of {bid}")
        assert "can no longer keep a promise" in warning and "last heard 22:00" in warning

        r = api.vehicle_event(vid, type="POSITION", lat=FROM[0], lon=FROM[1] + 0.001)
        assert r.status_code == 200, r.text
        api.clock.advance(600)
        assert service.retime_not_left() == []  # driving (fixed), timed from its reports


def test_the_rider_of_a_bus_that_has_not_left_moves_to_one_that_keeps_the_promise(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """Two buses; the rider's bus sends nothing, the other reports from beside the pickup.
    When the first can no longer come within the window, the rider is put on the other
    bus with the same window (booking.moved by re-planning, naming why) and told nothing:
    the promise stands. The first bus, with no stops left, is not named in the status."""
    with _service(town_world, tmp_path / "data", buses=2) as api:
        b = api.booked(FROM, TO)
        bid, vid = b["id"], b["vehicle"]["vehicleId"]
        other = "bus-2" if vid == "bus-1" else "bus-1"
        api.clock.set(TEN_PM + 300)
        r = api.vehicle_event(other, type="POSITION", lat=FROM[0], lon=FROM[1] + 0.002)
        assert r.status_code == 200, r.text
        drive = evening_s(b["pickup"]["expectedTime"]) - TEN_PM  # from the depot, where it stands
        api.clock.set(evening_s(b["pickup"]["windowEnd"]) - drive + 45)  # leaving now, 45 s late
        assert api.runtime.service.retime_not_left() == [vid]
        moved = _booking(api, bid)
        assert moved["vehicle"]["vehicleId"] == other and moved["lateNotice"] is None
        assert moved["pickup"]["windowEnd"] == b["pickup"]["windowEnd"]
        assert evening_s(moved["pickup"]["expectedTime"]) <= evening_s(b["pickup"]["windowEnd"])
        (event,) = _events(api, "booking.moved")
        assert event["from_vehicle_id"] == vid and event["vehicle_id"] == other
        assert event["by"] == "re-planning"
        assert event["reason"] == f"{vid} is late (the bus has not left yet)"
        assert _events(api, "booking.late_notice") == []
        assert _warnings(api) == []


def test_a_tablet_without_positions_is_not_taken_for_a_bus_that_has_not_left(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """A driver whose tablet sends no positions (no geolocation) reports the stops: after
    BOARDED nothing tells whether the bus drives on, so its plan's times are left as they are
    and nobody is told it has not left. Once that tablet has sent a position, a plan made after
    its last report is re-timed again when the bus stands."""
    with _service(town_world, tmp_path / "data", buses=1) as api:
        b = api.booked(FROM, TO)
        bid, vid = b["id"], b["vehicle"]["vehicleId"]
        service = api.runtime.service
        api.clock.set(evening_s(b["pickup"]["expectedTime"]))
        r = api.at_stop(vid, bid, "pickup")  # ARRIVED, BOARDED: no POSITION before
        assert r.status_code == 200, r.text
        dropoff = service.snapshot().bookings[bid].dropoff_eta_s
        api.clock.advance(600)
        assert service.retime_not_left() == []
        assert service.snapshot().bookings[bid].dropoff_eta_s == dropoff  # the plan's stands
        assert _booking(api, bid)["lateNotice"] is None and _warnings(api) == []

        r = api.vehicle_event(vid, type="POSITION", lat=TO[0], lon=TO[1])
        assert r.status_code == 200, r.text
        assert api.at_stop(vid, bid, "dropoff").status_code == 200
        again = api.booked(TO, FROM)
        api.clock.advance(180)
        assert service.retime_not_left() == [vid]
        assert (
            _booking(api, again["id"])["pickup"]["expectedTime"] > again["pickup"]["expectedTime"]
        )


def test_a_rider_is_never_shown_a_time_past_for_a_stop_not_reached(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """The bus reports driving off, then nothing: its plan still has it at the pickup at the
    planned time (dead reckoning), but two minutes past that time, with no ARRIVED, the rider
    is shown the pickup as due now and the arrival at least the direct ride after it, not
    times already past. Once picked up and overdue at the drop-off, the arrival is now."""
    with _service(town_world, tmp_path / "data", buses=1) as api:
        b = api.booked(FROM, TO)
        bid, vid = b["id"], b["vehicle"]["vehicleId"]
        r = api.vehicle_event(vid, type="POSITION", lat=51.5781, lon=8.105)  # leaving
        assert r.status_code == 200, r.text
        planned = _booking(api, bid)
        pickup = evening_s(planned["pickup"]["expectedTime"])
        dropoff = evening_s(planned["dropoff"]["expectedTime"])
        assert api.runtime.service.retime_not_left() == []  # driving: its plan is fixed

        api.clock.set(pickup + 120)
        seen = _booking(api, bid)
        assert evening_s(seen["pickup"]["expectedTime"]) == pickup + 120
        ride = dropoff - pickup  # the plan's: the direct ride here (nobody else on board)
        assert evening_s(seen["dropoff"]["expectedTime"]) >= pickup + 120 + ride - 60  # dwell aside
        assert evening_s(seen["dropoff"]["expectedTime"]) > dropoff

        assert api.at_stop(vid, bid, "pickup").status_code == 200
        api.clock.set(dropoff + 900)
        assert evening_s(_booking(api, bid)["dropoff"]["expectedTime"]) == dropoff + 900
