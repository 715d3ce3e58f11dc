"""End to end over HTTP against a real Redis: inquire, book, commit, drive, finish; cancel."""

from __future__ import annotations

from dispatch.rebalancing import CellForecast, RebalanceParams
from tests.api.conftest import DISPATCHER, RIDER, TEN_PM, Api, driver
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION


def test_inquiry_offers_window_point_arrival(api: Api) -> None:
    """An offer has a pickup window of tonight, the point on the road and the arrival times."""
    r = api.inquire(MARKT, OSTOENNEN, nrOfTravelers=2)
    assert r.status_code == 200, r.text
    (offer,) = r.json()["options"]
    assert offer["pickup"]["windowStart"].startswith("2026-11-20T22:00")
    assert offer["pickup"]["windowStart"] <= offer["pickup"]["expectedTime"]
    assert offer["pickup"]["expectedTime"] <= offer["pickup"]["windowEnd"]
    assert offer["dropoff"]["expectedTime"] <= offer["dropoff"]["latestTime"]
    assert abs(offer["pickup"]["lat"] - MARKT[0]) < 0.002
    assert offer["nrOfTravelers"] == 2
    assert offer["directTravelTimeS"] > 300
    assert offer["validUntil"] > offer["pickup"]["windowStart"]


def test_book_commit_board_alight_finish(api: Api) -> None:
    """The whole life of a booking, with the driver's reports and the rider's view of them."""
    offer_id = api.offer_id(MARKT, OSTOENNEN)
    r = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=RIDER)
    assert r.status_code == 201 and r.json()["state"] == "PENDING"
    bid = r.json()["id"]
    r = api.client.post(f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER)
    assert r.json()["state"] == "CONFIRMED"
    bus = r.json()["vehicle"]["vehicleId"]

    plan = api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()
    assert [(s["bookingId"], s["type"]) for s in plan["stops"]] == [
        (bid, "pickup"),
        (bid, "dropoff"),
    ]
    pickup = plan["stops"][0]
    api.clock.advance(120)
    r = api.vehicle_event(bus, type="POSITION", lat=51.5745, lon=8.1052)
    assert r.status_code == 200, r.text
    seen = api.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()
    assert abs(seen["vehicle"]["lat"] - 51.5745) < 1e-6  # the rider sees the bus move
    assert seen["pickup"]["expectedTime"] is not None

    api.clock.advance(120)
    assert api.vehicle_event(bus, type="ARRIVED", bookingId=bid, stop="pickup").status_code == 200
    r = api.vehicle_event(bus, type="BOARDED", bookingId=bid)
    assert r.status_code == 200 and r.json()["onBoard"] == [bid]
    assert api.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()["state"] == "STARTED"
    api.clock.advance(700)
    r = api.vehicle_event(bus, type="ALIGHTED", bookingId=bid)  # not yet at the drop-off
    assert r.status_code == 409 and r.json()["code"] == "not_arrived"
    assert api.vehicle_event(bus, type="ARRIVED", bookingId=bid, stop="dropoff").status_code == 200
    r = api.vehicle_event(bus, type="ALIGHTED", bookingId=bid)
    assert r.status_code == 200 and r.json()["stops"] == []
    done = api.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()
    assert done["state"] == "FINISHED"
    assert done["pickedUpAt"] is not None and done["droppedOffAt"] > done["pickedUpAt"]
    assert pickup["windowStart"] <= done["pickedUpAt"] <= pickup["windowEnd"]


def test_cancel_frees_the_bus(api: Api) -> None:
    """A cancelled booking leaves its bus's plan; cancelling again changes nothing."""
    b = api.booked(STATION, AMPEN)
    bus = b["vehicle"]["vehicleId"]
    assert api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()["stops"]
    r = api.client.post(
        f"/v1/bookings/{b['id']}/events", json={"operation": "CANCEL"}, headers=RIDER
    )
    assert r.status_code == 200 and r.json()["state"] == "CANCELLED"
    assert api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()["stops"] == []
    again = api.client.post(
        f"/v1/bookings/{b['id']}/events", json={"operation": "CANCEL"}, headers=RIDER
    )
    assert again.status_code == 200 and again.json()["state"] == "CANCELLED"


def test_pending_booking_expires(api: Api) -> None:
    """A PENDING booking not committed in time expires: COMMIT is refused, the seat is free."""
    r = api.client.post("/v1/bookings", json={"offerId": api.offer_id(MARKT, AMPEN)}, headers=RIDER)
    bid = r.json()["id"]
    api.clock.advance(api.runtime.settings.pending_ttl_s + 1)
    r = api.client.post(f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER)
    assert r.status_code == 409 and r.json()["code"] == "booking_state"
    assert "expired" in r.json()["message"]
    assert api.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()["state"] == "EXPIRED"
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    assert all(v["stops"] == [] for v in fleet["vehicles"])


def test_background_sweep_expires_pending(api: Api) -> None:
    """The sweep (run by the background loop) releases PENDING bookings past their time."""
    r = api.client.post("/v1/bookings", json={"offerId": api.offer_id(MARKT, AMPEN)}, headers=RIDER)
    api.clock.advance(api.runtime.settings.pending_ttl_s + 1)
    assert api.runtime.service.expire_pending() == [r.json()["id"]]
    got = api.client.get(f"/v1/bookings/{r.json()['id']}", headers=RIDER).json()
    assert got["state"] == "EXPIRED"


def test_expired_and_unknown_offers(api: Api) -> None:
    """Booking an offer after it expired, or one never made, is refused with its code."""
    offer_id = api.offer_id(MARKT, OSTOENNEN)
    api.clock.advance(api.runtime.service.dispatcher.policy.offer_ttl_s + 1)
    r = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=RIDER)
    assert r.status_code == 409 and r.json()["code"] == "offer_outdated"
    r = api.client.post("/v1/bookings", json={"offerId": "nope"}, headers=RIDER)
    assert r.status_code == 404 and r.json()["code"] == "unknown_offer"
    assert api.client.get("/v1/bookings", headers=RIDER).json() == []


def test_dispatcher_sees_fleet_routes_and_rejections(api: Api) -> None:
    """The fleet view has the bus's path through its stops, the booking, and rejections."""
    b = api.booked(MARKT, OSTOENNEN)
    api.inquire(MARKT, OSTOENNEN, nrOfTravelers=40)  # rejected: too many travellers
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    bus = next(v for v in fleet["vehicles"] if v["vehicleId"] == b["vehicle"]["vehicleId"])
    assert len(bus["stops"]) == 2 and len(bus["route"]) > 10
    assert [x["id"] for x in fleet["bookings"]] == [b["id"]]
    assert fleet["bookings"][0]["lateS"] == 0
    assert fleet["rejections"][0]["reason"] == "too_many_travellers"


def test_event_stream_replays_changes(api: Api) -> None:
    """The server-sent event stream carries each change as a typed event."""
    b = api.booked(MARKT, AMPEN)
    r = api.client.get("/v1/fleet/events?limit=3", headers={**DISPATCHER, "Last-Event-ID": "0-0"})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line.split(": ", 1)[1] for line in r.text.splitlines() if line.startswith("event:")]
    assert events == ["service.night_opened", "booking.pending", "booking.confirmed"]
    assert b["id"] in r.text


def test_reoptimise_keeps_every_promise(api: Api) -> None:
    """A re-optimisation over several bookings leaves every promised window as it was."""
    before = [api.booked(a, c) for a, c in [(MARKT, OSTOENNEN), (STATION, AMPEN), (AMPEN, MARKT)]]
    r = api.client.post("/v1/fleet/reoptimise", headers=DISPATCHER)
    assert r.status_code == 200
    for b in before:
        now = api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()
        assert now["pickup"]["windowStart"] == b["pickup"]["windowStart"]
        assert now["pickup"]["windowEnd"] == b["pickup"]["windowEnd"]
        assert now["dropoff"]["latestTime"] == b["dropoff"]["latestTime"]
        assert now["pickup"]["expectedTime"] <= now["pickup"]["windowEnd"]
        assert now["dropoff"]["expectedTime"] <= now["dropoff"]["latestTime"]


def test_an_idle_bus_sent_where_riders_are_expected_is_shown_to_its_driver(api: Api) -> None:
    """Two riders are expected in Ampen soon: two idle buses are sent there (the third stays);
    the driver's plan shows where to and by when; a booking replaces the reposition."""
    world = api.runtime.world
    forecast = CellForecast(
        [(AMPEN[0], AMPEN[1], TEN_PM + 600)] * 2,
        1,
        lambda lat, lon: world.place(lat, lon, "zone", in_area=False),
    )
    assert api.runtime.service.rebalance(forecast, RebalanceParams()) == 2
    plans = {
        vid: api.client.get(f"/v1/vehicles/{vid}/plan", headers=driver(vid)).json()
        for vid in ("bus-1", "bus-2", "bus-3")
    }
    sent = [vid for vid, p in plans.items() if p["reposition"] is not None]
    assert len(sent) == 2
    for vid in sent:
        to = plans[vid]["reposition"]
        assert abs(to["lat"] - AMPEN[0]) < 0.01 and abs(to["lon"] - AMPEN[1]) < 0.01
        assert to["expectedTime"] > api.clock.now().isoformat()
    kinds = [e.type for _, e in api.runtime.service.events_after("0-0", count=1000)]
    assert kinds.count("vehicle.reposition") == 2
    b = api.booked(MARKT, AMPEN)
    bus = b["vehicle"]["vehicleId"]
    plan = api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()
    assert plan["reposition"] is None and plan["stops"]
