"""The bus and the trains through the API: a scripted night on the shipped EXAMPLE timetable
(invented trains, nachtbus/transit/example_feed), the real store and the real roads.

The night is 2026-11-20 (the test clock's); the example's trains run every night.
"""

from __future__ import annotations

import http.server
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import gtfs_kit
import pytest
from pydantic import ValidationError

from nachtbus.clock import ManualClock
from nachtbus.settings import Settings
from nachtbus.transit import flex, realtime
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, TEN_PM, Api, driver, open_api
from tests.helpers import AMPEN, BERGEDE, MARKT, OSTOENNEN, STATION

ARRIVES_2231 = "RB59X-E-2231"  # from Dortmund, at Soest 22:31
ARRIVES_2131 = "RB59X-E-2131"  # the hour before
LEAVES_2302 = "RE1X-W-2302"  # to Hamm, at Soest 23:02, leaves 23:03
LAST_TRAIN = "RB59X-E-0131"  # the night's last arrival, 01:31 (on the next date's service)


def _hm(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M")


def _train_inquiry(api: Api, direction: str, trip: str, **body: object) -> dict:
    r = api.client.post(
        "/v1/planning/inquiries",
        json={"connection": {"direction": direction, "tripId": trip}, **body},
        headers=RIDER,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _from_train(api: Api, trip: str, dest: tuple[float, float], **body: object) -> dict:
    return _train_inquiry(api, "from_train", trip, to={"lat": dest[0], "lon": dest[1]}, **body)


def _book(api: Api, offer_id: str) -> dict:
    r = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=RIDER)
    assert r.status_code == 201, r.text
    r = api.client.post(
        f"/v1/bookings/{r.json()['id']}/events", json={"operation": "COMMIT"}, headers=RIDER
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _delay(api: Api, delays: dict[str, int]) -> dict:
    body = realtime.trip_update_feed(delays, "SOE", api.clock.now())
    r = api.client.post(
        "/v1/trains/trip-updates",
        content=body,
        headers={**DISPATCHER, "Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_tonights_trains_are_listed_and_marked_as_the_example(api: Api) -> None:
    """GET /v1/trains lists the example timetable's trains at the station, the last one
    (written as 01:31 on the next date's service) counted to tonight."""
    r = api.client.get("/v1/trains", headers=RIDER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["example"] is True
    trips = {t["tripId"]: t for t in body["trains"]}
    assert _hm(trips[ARRIVES_2231]["arrival"]) == "22:31"
    assert trips[ARRIVES_2231]["departure"] is None  # it ends at Soest
    assert datetime.fromisoformat(trips[LAST_TRAIN]["arrival"]).date().isoformat() == "2026-11-21"


def test_the_next_nights_trains_are_listed_and_booked_ahead(api: Api) -> None:
    """At 22:00 a rider looks up the next night's trains (on that night's date, no delay
    though tonight's run of the same train is late) and books the next night's 21:31 ahead
    (within the 24 h horizon) by its trip and time; a night before tonight or past the
    booking horizon is a 422 naming serviceDate."""
    _delay(api, {ARRIVES_2231: 12 * 60})  # tonight's 22:31 is late, tomorrow's is not
    r = api.client.get("/v1/trains?serviceDate=2026-11-21", headers=RIDER)
    assert r.status_code == 200, r.text
    trips = {t["tripId"]: t for t in r.json()["trains"]}
    assert trips[ARRIVES_2231]["arrival"] == "2026-11-21T22:31:00+01:00"
    assert trips[ARRIVES_2231]["delayS"] == 0
    assert trips[LAST_TRAIN]["arrival"] == "2026-11-22T01:31:00+01:00"
    tonight = {t["tripId"]: t for t in api.client.get("/v1/trains", headers=RIDER).json()["trains"]}
    assert tonight[ARRIVES_2231]["delayS"] == 720
    for day in ("2026-11-19", "2026-11-22"):
        bad = api.client.get(f"/v1/trains?serviceDate={day}", headers=RIDER)
        assert bad.status_code == 422 and bad.json()["field"] == "serviceDate", bad.text
    assert trips[ARRIVES_2131]["arrival"] == "2026-11-21T21:31:00+01:00"
    connection = {"direction": "from_train", "tripId": ARRIVES_2131}
    offer = api.client.post(
        "/v1/planning/inquiries",
        json={
            "connection": {**connection, "time": "2026-11-21T21:31:00+01:00"},
            "to": {"lat": OSTOENNEN[0], "lon": OSTOENNEN[1]},
        },
        headers=RIDER,
    )
    assert offer.status_code == 200, offer.text
    first = offer.json()["options"][0]
    assert first["pickup"]["windowStart"] == "2026-11-21T21:34:00+01:00"  # + 3 min walk
    assert first["connection"]["delayS"] == 0
    booked = _book(api, first["offerId"])
    assert booked["serviceDate"] == "2026-11-21"


def test_a_late_train_moves_its_riders_pickup_and_the_bus_waits(api: Api) -> None:
    """A rider off the 22:31 is picked up at the station from the arrival plus the walk;
    the train 12 minutes late moves the promised window by 12 minutes, the rider is told
    (event, booking), and the bus is shown waiting for that train."""
    offer = _from_train(api, ARRIVES_2231, OSTOENNEN)["options"][0]
    assert offer["connection"]["tripId"] == ARRIVES_2231
    assert _hm(offer["pickup"]["windowStart"]) == "22:34"  # 22:31 + 3 min walk
    assert abs(offer["pickup"]["lat"] - STATION[0]) < 0.003
    booking = _book(api, offer["offerId"])
    answer = _delay(api, {ARRIVES_2231: 12 * 60})
    assert answer["delays"] == {ARRIVES_2231: 720}
    kinds = [
        (e["type"], e["bookingId"] if "bookingId" in e else e["booking_id"])
        for e in answer["events"]
    ]
    assert kinds == [("booking.connection_delayed", booking["id"])]
    got = api.client.get(f"/v1/bookings/{booking['id']}", headers=RIDER).json()
    assert got["state"] == "CONFIRMED"
    assert _hm(got["pickup"]["windowStart"]) == "22:46"
    assert got["connection"]["delayS"] == 720
    assert datetime.fromisoformat(got["pickup"]["expectedTime"]) >= datetime.fromisoformat(
        got["pickup"]["windowStart"]
    )
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    bus = next(v for v in fleet["vehicles"] if v["vehicleId"] == got["vehicle"]["vehicleId"])
    assert bus["waitingForTrain"]["tripId"] == ARRIVES_2231
    assert bus["waitingForTrain"]["delayS"] == 720
    # a rider booking the same train now gets the late window at once
    later = _from_train(api, ARRIVES_2231, AMPEN)["options"][0]
    assert _hm(later["pickup"]["windowStart"]) == "22:46"


def test_a_train_later_than_the_bus_waits_cancels_with_a_refund(api: Api) -> None:
    """Past ``train_wait_max_s`` (20 min) the booking is cancelled, refunded in full and
    the rider told why; the ledger still equals the receipts."""
    booking = _book(api, _from_train(api, ARRIVES_2231, BERGEDE)["options"][0]["offerId"])
    answer = _delay(api, {ARRIVES_2231: 35 * 60})
    missed = [e for e in answer["events"] if e["type"] == "booking.connection_missed"]
    assert [e["booking_id"] for e in missed] == [booking["id"]]
    assert "35 min late" in missed[0]["reason"]
    got = api.client.get(f"/v1/bookings/{booking['id']}", headers=RIDER).json()
    assert got["state"] == "CANCELLED"
    ledger = api.client.get("/v1/ledger", headers=DISPATCHER).json()
    assert ledger["totals"]["balanceCents"] == 0
    assert ledger["totals"]["refundsCents"] == booking["fare"]["totalCents"] > 0


def test_a_rider_to_a_train_arrives_with_the_buffer(api: Api) -> None:
    """To the train leaving at 23:03: the offer names the train and promises the station by
    22:58 (5 min buffer); the plan keeps it."""
    home = {"lat": AMPEN[0], "lon": AMPEN[1]}
    offer = _train_inquiry(api, "to_train", LEAVES_2302, **{"from": home})["options"][0]
    assert offer["connection"]["route"] == "RE 1X"
    assert offer["connection"]["headsign"] == "Hamm (Westf)"
    assert offer["dropoff"]["latestTime"] <= offer["connection"]["scheduledTime"]
    assert _hm(offer["dropoff"]["latestTime"]) == "22:58"
    assert offer["connection"]["atRisk"] is False
    booking = _book(api, offer["offerId"])
    assert _hm(booking["dropoff"]["expectedTime"]) <= "22:58"
    # a train that leaves early, so the bus would come after the buffer: flagged at risk
    # (rider and dispatcher told), not dropped; earlier still, but the bus on time: told only
    spare = datetime.fromisoformat(booking["dropoff"]["latestTime"]) - datetime.fromisoformat(
        booking["dropoff"]["expectedTime"]
    )
    answer = _delay(api, {LEAVES_2302: -int(spare.total_seconds()) + 60})
    assert [e["type"] for e in answer["events"]] == ["booking.connection_delayed"]
    answer = _delay(api, {LEAVES_2302: -int(spare.total_seconds()) - 60})
    assert [e["type"] for e in answer["events"]] == ["booking.connection_at_risk"]
    got = api.client.get(f"/v1/bookings/{booking['id']}", headers=RIDER).json()
    assert got["connection"]["atRisk"] is True


@pytest.mark.parametrize("minutes_before", [40, 30, 25])
def test_a_rider_asking_shortly_before_the_train_is_promised_the_buffer(
    api: Api, minutes_before: int
) -> None:
    """Asked less than a wait before the train to Hamm leaves (23:03): the offer still
    promises the station by 22:58, not the wait's window that would end after it."""
    api.clock.set(23 * 3600 + 3 * 60 - minutes_before * 60)
    home = {"lat": AMPEN[0], "lon": AMPEN[1]}
    body = _train_inquiry(api, "to_train", LEAVES_2302, **{"from": home})
    assert body["options"], body
    (offer,) = body["options"]  # the fleet is idle: a bus can make it
    assert _hm(offer["dropoff"]["latestTime"]) <= "22:58", offer
    assert offer["pickup"]["windowStart"] < offer["pickup"]["windowEnd"]
    booking = _book(api, offer["offerId"])
    assert _hm(booking["dropoff"]["latestTime"]) <= "22:58"


def test_the_last_trains_riders_are_all_served_even_late(api: Api) -> None:
    """Seven riders off the last train, which then runs 15 minutes late: every one keeps a
    bus (re-planned on the fleet), picked up from the late arrival, and the driver serves
    them."""
    api.clock.set(25 * 3600)  # 01:00
    dests = [OSTOENNEN, AMPEN, BERGEDE, MARKT, OSTOENNEN, AMPEN, BERGEDE]
    booked = [_book(api, _from_train(api, LAST_TRAIN, d)["options"][0]["offerId"]) for d in dests]
    answer = _delay(api, {LAST_TRAIN: 15 * 60})
    assert sorted(e["booking_id"] for e in answer["events"]) == sorted(b["id"] for b in booked)
    assert {e["type"] for e in answer["events"]} == {"booking.connection_delayed"}
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    mine = [b for b in fleet["bookings"] if b["id"] in {x["id"] for x in booked}]
    assert all(b["state"] == "CONFIRMED" for b in mine)
    assert all(_hm(b["pickupWindowStart"]) >= "01:49" for b in mine)  # 01:31 + 15 + 3
    # drive the night: each bus serves its stops in plan order
    api.clock.set(25 * 3600 + 49 * 60)
    for _ in range(40):
        fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
        work = [(v["vehicleId"], v["stops"][0]) for v in fleet["vehicles"] if v["stops"]]
        if not work:
            break
        for vid, stop in work:
            api.clock.set(max(api.clock.now_s(), _seconds(api, stop["expectedTime"])))
            r = api.at_stop(vid, stop["bookingId"], stop["type"])
            assert r.status_code == 200, r.text
    states = {
        b["id"]: api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json() for b in booked
    }
    assert all(s["state"] == "FINISHED" for s in states.values())
    assert all(_hm(s["pickedUpAt"]) >= "01:49" for s in states.values())


def _seconds(api: Api, iso: str) -> int:
    moment = datetime.fromisoformat(iso)
    return api.clock.now_s() + int((moment - api.clock.now()).total_seconds())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "to": {"lat": MARKT[0], "lon": MARKT[1]},
                "connection": {"direction": "from_train", "tripId": "no-such-train"},
            },
            "connection.tripId",
        ),
        (
            {
                "to": {"lat": MARKT[0], "lon": MARKT[1]},
                "connection": {"direction": "from_train", "tripId": "RB59X-W-2215"},
            },
            "connection.tripId",
        ),  # that train starts at Soest: nobody arrives on it
        ({"connection": {"direction": "from_train", "tripId": ARRIVES_2231}}, "to"),
        (
            {
                "to": {"lat": MARKT[0], "lon": MARKT[1]},
                "departureTime": "2026-11-20T22:40:00+01:00",
                "connection": {"direction": "from_train", "tripId": ARRIVES_2231},
            },
            "connection",
        ),
        (
            {
                "to": {"lat": MARKT[0], "lon": MARKT[1]},
                "connection": {"direction": "from_train", "stopId": "SOE"},
            },
            "connection",
        ),
    ],
)
def test_bad_connections_are_refused_naming_the_field(api: Api, body: dict, field: str) -> None:
    """Unknown trains, trains nobody arrives on, a missing destination, a time beside the
    train, a station without a time: 422 naming the field."""
    r = api.client.post("/v1/planning/inquiries", json=body, headers=RIDER)
    assert r.status_code == 422, r.text
    err = r.json()
    named = [err.get("field") or ""] + [
        " ".join(map(str, e.get("loc", []))) for e in err.get("errors", [])
    ]
    assert any(field in n for n in named) or field in err["message"], err


def test_gtfs_realtime_vehicle_positions_equal_the_fleet(api: Api) -> None:
    """The VehiclePositions feed decodes and says where /v1/fleet says each bus is; the
    TripUpdates feed has each bus's planned stops with /v1/fleet's expected times."""
    _book(api, _from_train(api, ARRIVES_2231, OSTOENNEN)["options"][0]["offerId"])
    r = api.vehicle_event("bus-2", type="POSITION", lat=MARKT[0], lon=MARKT[1])
    assert r.status_code == 200, r.text
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    r = api.client.get("/v1/gtfs-rt/vehicle-positions", headers=RIDER)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-protobuf"
    feed = realtime.decode(r.content)
    got = {
        e.vehicle.vehicle.id: (
            round(e.vehicle.position.latitude, 5),
            round(e.vehicle.position.longitude, 5),
        )
        for e in feed.entity
    }
    want = {
        v["vehicleId"]: (round(v["position"]["lat"], 5), round(v["position"]["lon"], 5))
        for v in fleet["vehicles"]
    }
    assert got == want and len(got) == 3
    r = api.client.get("/v1/gtfs-rt/trip-updates", headers=RIDER)
    updates = {e.trip_update.vehicle.id: e.trip_update for e in realtime.decode(r.content).entity}
    for v in fleet["vehicles"]:
        if not v["stops"]:
            assert v["vehicleId"] not in updates
            continue
        times = [u.arrival.time for u in updates[v["vehicleId"]].stop_time_update]
        assert times == [
            int(datetime.fromisoformat(s["expectedTime"]).timestamp()) for s in v["stops"]
        ]
    assert (
        api.client.get("/v1/gtfs-rt/vehicle-positions", headers=driver("bus-1")).status_code == 403
    )


def test_gtfs_flex_export_loads_and_keeps_the_rules(api: Api, tmp_path: Path) -> None:
    """GET /v1/gtfs/flex.zip (no key): gtfs-kit reads it, and it breaks none of the
    reference's GTFS-Flex rules; the windows are the service hours."""
    r = api.client.get("/v1/gtfs/flex.zip")
    assert r.status_code == 200
    assert flex.check(flex.read(r.content)) == []
    import gtfs_analyzer  # an independent validator with Flex rules

    notices = gtfs_analyzer.validate_gtfs(r.content)["notices"]
    assert [n["rule_id"] for n in notices if n["severity"] != "INFO"] == []
    path = tmp_path / "flex.zip"
    path.write_bytes(r.content)
    feed = gtfs_kit.read_feed(path, dist_units="km")
    assert list(feed.routes["route_id"]) == [flex.ROUTE_ID]
    st = feed.stop_times
    assert list(st["start_pickup_drop_off_window"]) == ["20:00:00", "20:00:00"]
    assert list(st["end_pickup_drop_off_window"]) == ["29:00:00", "29:00:00"]
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert "locations.geojson" in z.namelist()


class _Feed(http.server.ThreadingHTTPServer):
    """A railway's TripUpdates URL on a free port: serves ``body`` with an ETag (304 when the
    client already has it), or answers ``status``; records what the client sent."""

    def __init__(self) -> None:
        self.body, self.status, self.drip_s = b"", 200, 0.0
        self.hold: threading.Event | None = None  # set: answer only once it is set
        self.seen: list[str | None] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(h) -> None:
                feed: _Feed = h.server  # type: ignore[assignment]
                tag = f'"{hash(feed.body)}"'
                feed.seen.append(h.headers.get("If-None-Match"))
                if feed.hold is not None:
                    feed.hold.wait(30)
                if feed.status != 200:
                    h.send_error(feed.status)
                    return
                if h.headers.get("If-None-Match") == tag:
                    h.send_response(304)
                    h.end_headers()
                    return
                h.send_response(200)
                h.send_header("Content-Type", "application/x-protobuf")
                h.send_header("ETag", tag)
                h.send_header("Content-Length", str(len(feed.body)))
                h.end_headers()
                if not feed.drip_s:
                    h.wfile.write(feed.body)
                    return
                for i in range(0, len(feed.body), 16):  # a server that drips its answer
                    h.wfile.write(feed.body[i : i + 16])
                    h.wfile.flush()
                    time.sleep(feed.drip_s)

            def log_message(h, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/tripupdates.pb"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=10)


@pytest.fixture()
def feed() -> Iterator[_Feed]:
    f = _Feed()
    yield f
    f.stop()


@pytest.fixture()
def polled(town_world: RoadWorld, tmp_path: Path, feed: _Feed) -> Iterator[Api]:
    """The service with the railway's feed set (its rounds off: each test polls itself)."""
    api = open_api(town_world, tmp_path / "data", ManualClock(TEN_PM),
                   gtfs_rt_trip_updates_url=feed.url)  # fmt: skip
    with api.client:
        yield api
    api.runtime.close()


def _window(api: Api, booking_id: str) -> str:
    got = api.client.get(f"/v1/bookings/{booking_id}", headers=RIDER).json()
    return _hm(got["pickup"]["windowStart"])


def _feed_status(api: Api) -> dict:
    return dict(api.client.get("/v1/trains", headers=RIDER).json()["realtime"])


def test_a_polled_feed_moves_a_late_trains_rider_once(polled: Api, feed: _Feed) -> None:
    """The railway's feed says the 22:31 is 12 min late: one poll moves its rider's window
    as the pushed update does; the next poll sends the ETag, gets a 304 and changes nothing."""
    rt, booking = polled.runtime, _book(polled, _from_train(polled, ARRIVES_2231, OSTOENNEN)
                                        ["options"][0]["offerId"])  # fmt: skip
    assert rt.train_feed is not None and _window(polled, booking["id"]) == "22:34"
    feed.body = realtime.trip_update_feed({ARRIVES_2231: 720}, "SOE", polled.clock.now())
    assert rt.train_feed.poll(rt) is True
    assert _window(polled, booking["id"]) == "22:46"
    status = _feed_status(polled)
    assert status["url"] == feed.url and status["trainsLate"] == 1
    assert status["lastOkAt"] is not None and status["lastError"] is None
    version = rt.service.version()
    assert rt.train_feed.poll(rt) is False  # unchanged: 304
    assert feed.seen[-1] is not None and rt.service.version() == version


def test_a_feed_that_fails_keeps_the_delays_heard_and_says_why(polled: Api, feed: _Feed) -> None:
    """After a good poll the feed answers 500, then bytes that are no FeedMessage, then
    nothing at all: each poll keeps the rider's moved window, and the trains' page names the
    last error; the feed back, the next delay is applied."""
    rt = polled.runtime
    assert rt.train_feed is not None
    booking = _book(polled, _from_train(polled, ARRIVES_2231, OSTOENNEN)["options"][0]["offerId"])
    feed.body = realtime.trip_update_feed({ARRIVES_2231: 720}, "SOE", polled.clock.now())
    assert rt.train_feed.poll(rt)
    feed.status = 500
    assert rt.train_feed.poll(rt) is False
    assert "HTTP 500" in _feed_status(polled)["lastError"]
    warnings = polled.client.get("/v1/status", headers=DISPATCHER).json()["warnings"]
    assert warnings == [f"the trains' delay feed fails: {_feed_status(polled)['lastError']}"]
    feed.status, feed.body = 200, b"not a protobuf feed"
    assert rt.train_feed.poll(rt) is False
    assert "FeedMessage" in _feed_status(polled)["lastError"]
    assert _window(polled, booking["id"]) == "22:46"
    feed.body = realtime.trip_update_feed({ARRIVES_2231: 900}, "SOE", polled.clock.now())
    assert rt.train_feed.poll(rt) and _window(polled, booking["id"]) == "22:49"
    feed.stop()
    assert rt.train_feed.poll(rt) is False
    assert "cannot be fetched" in _feed_status(polled)["lastError"]
    assert _window(polled, booking["id"]) == "22:49"


def test_a_feed_too_large_or_too_slow_is_cut_off(polled: Api, feed: _Feed, monkeypatch) -> None:
    """Over the size cap, or still sending at the deadline: the poll gives up, says why, and
    applies nothing (each read alone was quick)."""
    rt = polled.runtime
    assert rt.train_feed is not None
    feed.body = realtime.trip_update_feed({ARRIVES_2231: 720}, "SOE", polled.clock.now())
    monkeypatch.setattr("api.train_feed.MAX_FEED_BYTES", len(feed.body) - 1)
    assert rt.train_feed.poll(rt) is False
    assert "over" in _feed_status(polled)["lastError"]
    monkeypatch.setattr("api.train_feed.MAX_FEED_BYTES", 2**20)
    monkeypatch.setattr("api.train_feed.DEADLINE_S", 0.3)
    feed.drip_s = 0.2  # 16 bytes each 0.2 s: the whole answer takes about a second
    t0 = time.monotonic()
    assert rt.train_feed.poll(rt) is False
    assert time.monotonic() - t0 < 5
    assert "took over" in _feed_status(polled)["lastError"]
    assert rt.service.train_delay(ARRIVES_2231) == 0  # nothing applied


def test_the_background_round_polls_the_feed_by_itself(
    town_world: RoadWorld, tmp_path: Path, feed: _Feed
) -> None:
    """With the rounds on, nobody calls the poll: the rider's window moves by itself."""
    api = open_api(town_world, tmp_path / "data", ManualClock(TEN_PM), reopt_interval_s=0.05,
                   gtfs_rt_trip_updates_url=feed.url, gtfs_rt_poll_s=5)  # fmt: skip
    with api.client:
        booking = _book(api, _from_train(api, ARRIVES_2231, OSTOENNEN)["options"][0]["offerId"])
        feed.body = realtime.trip_update_feed({ARRIVES_2231: 720}, "SOE", api.clock.now())
        deadline = time.monotonic() + 60
        while _window(api, booking["id"]) != "22:46" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _window(api, booking["id"]) == "22:46"
    api.runtime.close()


@pytest.mark.parametrize("url", ["ftp://example.org/tu.pb", "tripupdates.pb"])
def test_a_feed_url_that_is_no_web_or_file_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(gtfs_rt_trip_updates_url=url)
    assert err.value.errors()[0]["loc"] == ("gtfs_rt_trip_updates_url",)
    assert "http, https or file" in str(err.value)


def test_a_slow_feed_does_not_hold_the_round(polled: Api, feed: _Feed) -> None:
    """The railway's server takes its time: the round's poll returns at once (the fetch runs
    in its own thread, the round goes on expiring and re-optimising); once the answer comes
    the thread applies it, and no second fetch starts while one is under way."""
    rt = polled.runtime
    assert rt.train_feed is not None
    booking = _book(polled, _from_train(polled, ARRIVES_2231, OSTOENNEN)["options"][0]["offerId"])
    feed.body = realtime.trip_update_feed({ARRIVES_2231: 720}, "SOE", polled.clock.now())
    feed.hold = threading.Event()
    assert rt.train_feed.poll_if_due(rt) is True  # returned while the server still holds
    deadline = time.monotonic() + 10
    while not feed.seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(feed.seen) == 1 and _window(polled, booking["id"]) == "22:34"
    rt.train_feed._next = 0.0  # due again, but the first fetch is still under way
    assert rt.train_feed.poll_if_due(rt) is False
    feed.hold.set()
    rt.train_feed.wait()
    assert _window(polled, booking["id"]) == "22:46"
    assert _feed_status(polled)["lastOkAt"] is not None and len(feed.seen) == 1
