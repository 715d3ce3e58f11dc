"""Riders book ahead for a later night: in the morning for the evening, or in the evening for
the next one (within the rules' 24 h), on that night's own store and fleet."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, driver, open_api
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION

NIGHT = date(2026, 11, 20)  # the service day the clock starts in
TEN_AM = (24 + 10) * 3600  # 10:00 on the 21st, still the service day of the 20th


def test_a_trip_booked_in_the_morning_for_the_evening_is_kept_and_served(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """At 10:00 on the 21st a rider books 23:00 that evening: the offer is that night's
    (window and date as asked), the booking is CONFIRMED and charged on the 21st's ledger,
    it is listed and read back, and the night of the 20th has no trace of it. A second
    booking ahead is cancelled and refunded. The service restarts at 11:00 and still finds
    the booking; after noon the 21st's night is tonight, its bus has the rider in its plan
    with the promised window, and drives the trip to its end."""
    data = tmp_path / "data"
    clock = ManualClock(TEN_AM, NIGHT)
    api = open_api(town_world, data, clock)
    with api.client:
        r = api.inquire(MARKT, OSTOENNEN, departureTime="2026-11-21T23:00:00+01:00")
        assert r.status_code == 200, r.text
        offer = r.json()["options"][0]
        assert offer["pickup"]["windowStart"] == "2026-11-21T23:00:00+01:00"
        booked = api.client.post("/v1/bookings", json={"offerId": offer["offerId"]}, headers=RIDER)
        assert booked.status_code == 201, booked.text
        bid = booked.json()["id"]
        commit = api.client.post(
            f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER
        )
        assert commit.status_code == 200 and commit.json()["state"] == "CONFIRMED", commit.text
        promised = commit.json()["pickup"]["windowEnd"], commit.json()["dropoff"]["latestTime"]
        assert promised[0].startswith("2026-11-21T23:")

        other = api.booked(STATION, AMPEN, departureTime="2026-11-21T22:00:00+01:00")
        cancel = api.client.post(
            f"/v1/bookings/{other['id']}/events", json={"operation": "CANCEL"}, headers=RIDER
        )
        assert cancel.status_code == 200 and cancel.json()["state"] == "CANCELLED", cancel.text

        listed = {b["id"]: b["state"] for b in api.client.get("/v1/bookings", headers=RIDER).json()}
        ledger = api.client.get("/v1/ledger?serviceDate=2026-11-21", headers=DISPATCHER).json()
        tonight = api.client.get("/v1/fleet", headers=DISPATCHER).json()
        stored = api.store.load()  # the store the test opened: the night of the 20th
    api.runtime.close()
    assert listed == {bid: "CONFIRMED", other["id"]: "CANCELLED"}
    kinds = sorted(e["kind"] for e in ledger["entries"])
    assert kinds == ["charge", "charge", "refund"], ledger
    assert ledger["totals"]["balanceCents"] == commit.json()["fare"]["totalCents"]
    assert tonight["bookings"] == []  # the 20th's night is untouched
    assert stored is not None and bid not in stored.bookings

    clock.advance(3600)  # 11:00: the service restarts, the booking ahead is still there
    again = open_api(town_world, data, clock)
    with again.client:
        got = again.client.get(f"/v1/bookings/{bid}", headers=RIDER)
        assert got.status_code == 200, got.text
        assert (got.json()["pickup"]["windowEnd"], got.json()["dropoff"]["latestTime"]) == promised

        clock.advance(2 * 3600)  # 13:00: the 21st's night is tonight
        fleet = again.client.get("/v1/fleet", headers=DISPATCHER).json()
        planned = [v["vehicleId"] for v in fleet["vehicles"] if any(
            st["bookingId"] == bid for st in v["stops"]
        )]  # fmt: skip
        assert len(planned) == 1
        now = again.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()
        assert (now["pickup"]["windowEnd"], now["dropoff"]["latestTime"]) == promised
        clock.advance(10 * 3600)  # 23:00
        bus = planned[0]
        assert again.at_stop(bus, bid, "pickup").status_code == 200
        clock.advance(900)
        assert again.at_stop(bus, bid, "dropoff").status_code == 200
        done = again.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()
        plan = again.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()
    again.runtime.close()
    assert done["state"] == "FINISHED"
    assert all(st["bookingId"] != bid for st in plan["stops"])


def test_a_booking_ahead_not_committed_expires_and_frees_its_seats(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """A PENDING booking for the next evening holds its seats only for the pending time to
    live: the round's expiry reaches the later nights too, and a COMMIT after it is a 409."""
    clock = ManualClock(TEN_AM, NIGHT)
    api = open_api(town_world, tmp_path / "data", clock)
    with api.client:
        offer_id = api.offer_id(MARKT, OSTOENNEN, departureTime="2026-11-21T23:00:00+01:00")
        held = api.client.post("/v1/bookings", json={"offerId": offer_id}, headers=RIDER).json()
        assert held["state"] == "PENDING"
        clock.advance(api.runtime.settings.pending_ttl_s + 1)
        later = api.runtime.service.later_nights()
        expired = [bid for svc in later for bid in svc.expire_pending()]
        late = api.client.post(
            f"/v1/bookings/{held['id']}/events", json={"operation": "COMMIT"}, headers=RIDER
        )
    api.runtime.close()
    assert [svc.night().day for svc in later] == [date(2026, 11, 21)]
    assert expired == [held["id"]]
    assert late.status_code == 409, late.text


def test_an_evening_books_the_next_evening_within_the_horizon(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """At 22:00 on the 20th, 23 h ahead, a rider books 21:00 on the 21st (that night's
    seconds are still negative now, before the midnight that starts its date): the offer
    has the asked window, and the next evening's fleet carries the booking."""
    clock = ManualClock(22 * 3600, NIGHT)
    api = open_api(town_world, tmp_path / "data", clock)
    with api.client:
        b = api.booked(MARKT, AMPEN, departureTime="2026-11-21T21:00:00+01:00")
        clock.advance(15 * 3600)  # 13:00 on the 21st
        got = api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()
        fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    api.runtime.close()
    assert b["state"] == "CONFIRMED"
    assert b["pickup"]["windowStart"] == "2026-11-21T21:00:00+01:00"
    assert got["pickup"]["windowEnd"] == b["pickup"]["windowEnd"]
    assert [bk["id"] for bk in fleet["bookings"]] == [b["id"]]
