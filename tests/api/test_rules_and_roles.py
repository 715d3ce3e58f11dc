"""Bad input gets a 4xx naming the field and the rule; repeats are idempotent; roles hold."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, OTHER_APP, RIDER, TEN_PM, Api, driver, open_api
from tests.helpers import AMPEN, BAD_SASSENDORF, MARKT, OSTOENNEN, STATION


def version(api: Api) -> int:
    return int(api.client.get("/v1/fleet", headers=DISPATCHER).json()["version"])


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"from": {"lat": BAD_SASSENDORF[0], "lon": BAD_SASSENDORF[1]}},
            "outside_service_area",
            "from",
        ),
        ({"from": {"lat": 95, "lon": 8.1}}, "invalid_input", "from.lat"),
        ({"from": {"lat": "NaN", "lon": 8.1}}, "invalid_input", "from.lat"),
        ({"to": {"lat": 51.5, "lon": "Infinity"}}, "invalid_input", "to.lon"),
        ({"nrOfTravelers": 7}, "too_many_travellers", "nrOfTravelers"),
        ({"nrOfTravelers": 0}, "invalid_input", "nrOfTravelers"),
        ({"wheelchairs": 2, "nrOfTravelers": 1}, "invalid_input", "wheelchairs"),
        ({"departureTime": "2026-11-20T21:00:00+01:00"}, "pickup_in_past", "departureTime"),
        # the next night's (booked ahead), but not in its hours; the night after is too far
        ({"departureTime": "2026-11-21T13:00:00+01:00"}, "outside_service_hours", "departureTime"),
        ({"departureTime": "2026-11-22T23:00:00+01:00"}, "beyond_booking_horizon", "departureTime"),
        ({"arrivalTime": "2026-11-22T23:00:00+01:00"}, "beyond_booking_horizon", "arrivalTime"),
        ({"departureTime": "2026-11-19T23:00:00+01:00"}, "invalid_input", "departureTime"),
        ({"departureTime": "2026-11-21T06:00:00"}, "outside_service_hours", "departureTime"),
        (
            {
                "departureTime": "2026-11-20T23:00:00+01:00",
                "arrivalTime": "2026-11-20T23:30:00+01:00",
            },
            "invalid_input",
            "arrivalTime",
        ),
        ({"to": {"lat": MARKT[0], "lon": MARKT[1] + 0.0005}}, "trip_too_short", "to"),
        ({"unknownField": 1}, "invalid_input", "unknownField"),
        # counts and flags are JSON numbers and booleans as they are (true was one traveller)
        ({"nrOfTravelers": True}, "invalid_input", "nrOfTravelers"),
        ({"nrOfTravelers": 2.0}, "invalid_input", "nrOfTravelers"),
        ({"prams": "1"}, "invalid_input", "prams"),
        ({"wheelchairs": False}, "invalid_input", "wheelchairs"),
        ({"travelers": [{"age": "12"}]}, "invalid_input", "travelers.0.age"),
        ({"travelers": [{"reduced": "yes"}]}, "invalid_input", "travelers.0.reduced"),
        ({"from": {"lat": "51.57", "lon": 8.1}}, "invalid_input", "from.lat"),
    ],
)
def test_bad_inquiries_are_refused_with_field_and_rule(
    api: Api, body: dict[str, object], code: str, field: str
) -> None:
    """Each bad inquiry is a 422 with a reason code and the field; nothing is stored."""
    before = version(api)
    payload = {
        "from": {"lat": MARKT[0], "lon": MARKT[1]},
        "to": {"lat": OSTOENNEN[0], "lon": OSTOENNEN[1]},
        **body,
    }
    r = api.client.post("/v1/planning/inquiries", json=payload, headers=RIDER)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert r.json()["field"] == field
    assert r.json()["message"]
    assert version(api) == before


def test_nan_and_broken_json_name_the_rule(api: Api) -> None:
    """NaN is not "more than 90": the rule says finite; a body that is no JSON names the body."""
    # bare NaN breaks the finite rule; "NaN" in quotes is a string, not a number at all
    for nan, rule in ((b"NaN", "finite"), (b'"NaN"', "valid number")):
        r = api.client.post(
            "/v1/planning/inquiries",
            content=b'{"from": {"lat": %s, "lon": 8.1}, "to": {"lat": 51.55, "lon": 8.0}}' % nan,
            headers={**RIDER, "Content-Type": "application/json"},
        )
        assert r.status_code == 422 and rule in r.json()["message"], r.text
        assert r.json()["field"] == "from.lat"
    before = version(api)
    r = api.client.post(
        "/v1/planning/inquiries",
        content=b'{"from": {"lat": 51.57,',
        headers={**RIDER, "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "body"
    assert r.json()["message"].startswith("body: not valid JSON"), r.text
    assert "at character" in r.json()["message"]
    # nested deeper than the parser recurses, under the body limit: the same kind of answer
    # (it was a 400 "http_error" with no field)
    deep = b'{"from": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    r = api.client.post(
        "/v1/planning/inquiries",
        content=deep,
        headers={**RIDER, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["field"] == "body", r.text
    assert r.json()["message"] == "body: not valid JSON (nested too deeply or otherwise unreadable)"
    assert version(api) == before


def test_engine_errors_name_the_field_as_the_api_spells_it(api: Api) -> None:
    """An unknown offer names the body's offerId, an unknown booking the path's id."""
    r = api.client.post("/v1/bookings", json={"offerId": "never-made"}, headers=RIDER)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        404,
        "unknown_offer",
        "offerId",
    ), r.text
    r = api.client.post(
        "/v1/fleet/bookings/bk-never/cancel", json={"reason": "test"}, headers=DISPATCHER
    )
    assert (r.status_code, r.json()["field"]) == (404, "id"), r.text


def test_arrival_time_plans_pickup_to_arrive_in_time(api: Api) -> None:
    """An inquiry with a latest arrival gets an offer that arrives by then."""
    r = api.inquire(MARKT, OSTOENNEN, arrivalTime="2026-11-20T23:30:00+01:00")
    assert r.status_code == 200, r.text
    (offer,) = r.json()["options"]
    assert offer["dropoff"]["expectedTime"] <= "2026-11-20T23:30:00+01:00"
    assert offer["pickup"]["windowStart"] > "2026-11-20T22:30:00+01:00"


def test_a_full_fleet_answers_with_counter_offers_that_can_be_booked(api: Api) -> None:
    """When no bus has room at the wished time, the inquiry answers with up to three later
    windows, each its own offer with window, arrival and fare, and the wish's rejection; the
    rider books one and its window is the promise."""
    for _ in range(3):  # three buses, six riders each: the fleet's seats go
        api.booked(MARKT, OSTOENNEN, nrOfTravelers=6)
    r = api.inquire(STATION, OSTOENNEN, nrOfTravelers=6)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rejection"]["reason"] in ("fleet_full", "no_vehicle_in_time")
    options = body["options"]
    assert 1 <= len(options) <= 3
    now = api.clock.now()
    shifts = [o["shiftS"] for o in options]
    assert shifts == sorted(shifts) and len(set(shifts)) == len(shifts)
    for o in options:
        assert o["alternative"] is True
        assert 0 < o["shiftS"] <= 30 * 60 and o["shiftS"] % 300 == 0
        start = datetime.fromisoformat(o["pickup"]["windowStart"])
        assert start >= now + timedelta(seconds=o["shiftS"]) - timedelta(seconds=1)
        assert o["pickup"]["expectedTime"] <= o["pickup"]["windowEnd"]
        assert o["dropoff"]["expectedTime"] <= o["dropoff"]["latestTime"]
        assert o["fare"]["totalCents"] > 0
    chosen = options[0]
    b = api.client.post("/v1/bookings", json={"offerId": chosen["offerId"]}, headers=RIDER)
    assert b.status_code in (200, 201), b.text
    booking = b.json()
    assert booking["pickup"]["windowStart"] == chosen["pickup"]["windowStart"]
    assert booking["pickup"]["windowEnd"] == chosen["pickup"]["windowEnd"]


def test_no_counter_offers_when_the_policy_allows_none(world: RoadWorld, tmp_path: Path) -> None:
    """With ``max_alternatives = 0`` a full fleet is a plain answer: no options, the reason."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[policy]\nmax_alternatives = 0\nrescue_time_ms = 0\n", encoding="utf-8")
    api = open_api(world, tmp_path / "store", ManualClock(TEN_PM), policy_file=policy)
    try:
        with api.client:
            for _ in range(3):
                api.booked(MARKT, OSTOENNEN, nrOfTravelers=6)
            r = api.inquire(STATION, OSTOENNEN, nrOfTravelers=6)
    finally:
        api.runtime.close()
    assert r.status_code == 200
    assert r.json()["options"] == []
    assert r.json()["rejection"]["reason"] in ("fleet_full", "no_vehicle_in_time")


def test_commit_on_cancelled_booking_is_a_conflict(api: Api) -> None:
    b = api.booked(MARKT, AMPEN)
    api.client.post(f"/v1/bookings/{b['id']}/events", json={"operation": "CANCEL"}, headers=RIDER)
    before = version(api)
    r = api.client.post(
        f"/v1/bookings/{b['id']}/events", json={"operation": "COMMIT"}, headers=RIDER
    )
    assert r.status_code == 409 and r.json()["code"] == "booking_state"
    assert version(api) == before


def test_driver_reporting_a_stop_not_in_plan_changes_nothing(api: Api) -> None:
    b = api.booked(MARKT, AMPEN)
    bus = b["vehicle"]["vehicleId"]
    other = next(v for v in ("bus-1", "bus-2", "bus-3") if v != bus)
    before = version(api)
    r = api.vehicle_event(other, type="BOARDED", bookingId=b["id"])
    assert r.status_code == 409 and r.json()["code"] == "stop_not_in_plan"
    r = api.vehicle_event(bus, type="ALIGHTED", bookingId="bk-nobody")
    assert (r.status_code, r.json()["field"]) == (409, "bookingId"), r.text
    r = api.vehicle_event(bus, type="BOARDED")
    assert r.status_code == 422 and r.json()["field"] == "bookingId"
    r = api.vehicle_event(bus, type="SHIFT_END")
    assert r.status_code == 409 and r.json()["code"] == "vehicle_busy"
    assert version(api) == before


def test_idempotent_repeats_answer_the_same(api: Api) -> None:
    """The same Idempotency-Key replays the first answer; another body with it is refused."""
    offer_id = api.offer_id(MARKT, OSTOENNEN)
    key = {"Idempotency-Key": "book-1", **RIDER}
    first = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=key)
    again = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = api.client.post("/v1/bookings", json={"offerId": "x"}, headers=key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    # without a key, booking the same offer again also answers the same booking
    plain = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=RIDER)
    assert plain.json()["id"] == first.json()["id"]
    bid = first.json()["id"]
    commit = {"Idempotency-Key": "commit-1", **RIDER}
    for _ in range(2):
        r = api.client.post(
            f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=commit
        )
        assert r.status_code == 200 and r.json()["state"] == "CONFIRMED"
    bus = first.json()["vehicle"]["vehicleId"]
    r = api.vehicle_event(bus, type="ARRIVED", bookingId=bid, stop="pickup")
    assert r.status_code == 200
    board = {"Idempotency-Key": "board-1", **driver(bus)}
    for _ in range(2):
        r = api.client.post(
            f"/v1/vehicles/{bus}/events", json={"type": "BOARDED", "bookingId": bid}, headers=board
        )
        assert r.status_code == 200 and r.json()["onBoard"] == [bid]
    assert len(api.client.get("/v1/bookings", headers=RIDER).json()) == 1


def test_roles_are_separated(api: Api) -> None:
    """Apps see their own bookings only, drivers their own bus, dispatchers everything."""
    b = api.booked(MARKT, AMPEN)
    bus = b["vehicle"]["vehicleId"]
    other_bus = next(v for v in ("bus-1", "bus-2", "bus-3") if v != bus)
    assert api.client.get(f"/v1/bookings/{b['id']}", headers=OTHER_APP).status_code == 403
    assert api.client.get("/v1/bookings", headers=OTHER_APP).json() == []
    r = api.client.post(
        f"/v1/bookings/{b['id']}/events", json={"operation": "CANCEL"}, headers=OTHER_APP
    )
    assert r.status_code == 403
    assert api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(other_bus)).status_code == 403
    assert api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).status_code == 200
    assert api.client.get("/v1/fleet", headers=RIDER).status_code == 403
    assert api.client.get("/v1/fleet", headers=driver(bus)).status_code == 403
    assert (
        api.client.post("/v1/planning/inquiries", json={}, headers=driver(bus)).status_code == 403
    )
    assert api.client.get("/v1/fleet").status_code == 401
    assert api.client.get("/v1/fleet", headers={"X-Api-Key": "wrong"}).status_code == 401
    assert api.client.get(f"/v1/bookings/{b['id']}", headers=DISPATCHER).status_code == 200


def test_unsafe_keys_are_refused_in_production() -> None:
    """Production refuses the development keys, naming the setting."""
    from nachtbus.errors import ConfigError
    from nachtbus.settings import Settings

    with pytest.raises(ConfigError) as err:
        Settings(environment="production").check_production()
    assert err.value.field == "rider_app_keys"
    good = "k" * 32
    Settings(
        environment="production",
        rider_app_keys={good + "r": "app"},
        driver_keys={good + "d": "bus-1"},
        dispatcher_keys=[good],
    ).check_production()


@pytest.mark.parametrize("minutes", [5, 20, 30, 40, 60])
def test_an_arrival_asked_soon_is_promised_by_then(api: Api, minutes: int) -> None:
    """A latest arrival asked less than a wait ahead: the offer promises the arrival by then
    (``dropoff.latestTime``, the plans' hard limit), not only expects it, and its booking
    keeps that promise; an arrival not even the direct ride makes is refused with that
    reason. (The wait's window promised up to 16 min after the asked arrival.)"""
    arrive = api.clock.now() + timedelta(minutes=minutes)
    r = api.inquire(MARKT, OSTOENNEN, arrivalTime=arrive.isoformat())
    assert r.status_code == 200, r.text
    body = r.json()
    if minutes == 5:  # the ride alone takes longer
        assert body["options"] == [] and body["rejection"]["reason"] == "no_vehicle_in_time"
        assert "direct ride" in body["rejection"]["message"], r.text
        return
    (o,) = body["options"]  # the fleet is idle: the wish is kept
    assert datetime.fromisoformat(o["dropoff"]["latestTime"]) <= arrive, o
    assert o["dropoff"]["expectedTime"] <= o["dropoff"]["latestTime"]
    assert o["pickup"]["windowStart"] <= o["pickup"]["expectedTime"] <= o["pickup"]["windowEnd"]
    assert o["pickup"]["windowEnd"] > o["pickup"]["windowStart"]  # a window, not an instant
    b = api.client.post("/v1/bookings", json={"offerId": o["offerId"]}, headers=RIDER)
    assert b.status_code == 201, b.text
    assert b.json()["dropoff"]["latestTime"] == o["dropoff"]["latestTime"]
