"""A scripted night over HTTP: fares in offers, charges, refunds, no-shows, receipts, the
nightly export and the CO2 account, all checked against the ledger in the store."""

from __future__ import annotations

import csv
import io

from nachtbus.billing.fares import Tariff
from nachtbus.settings import EXAMPLE_TARIFF
from tests.api.conftest import DISPATCHER, RIDER, Api
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION


def _book(api: Api, origin, dest, commit: bool = True, **body: object) -> tuple[str, dict]:
    r = api.inquire(origin, dest, **body)
    assert r.status_code == 200, r.text
    offer = r.json()["options"][0]
    r = api.client.post("/v1/bookings", json={"offerId": offer["offerId"]}, headers=RIDER)
    assert r.status_code == 201, r.text
    bid = r.json()["id"]
    if commit:
        r = api.client.post(
            f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER
        )
        assert r.json()["state"] == "CONFIRMED", r.text
    return bid, offer


def _cancel(api: Api, bid: str) -> None:
    r = api.client.post(f"/v1/bookings/{bid}/events", json={"operation": "CANCEL"}, headers=RIDER)
    assert r.json()["state"] == "CANCELLED", r.text


def test_offer_shows_fare_and_breakdown(api: Api) -> None:
    r = api.inquire(MARKT, OSTOENNEN, nrOfTravelers=3, travelers=[{}, {"age": 9}, {"age": 3}])
    fare = r.json()["options"][0]["fare"]
    tariff = Tariff.load(EXAMPLE_TARIFF)
    assert fare["currency"] == "EUR" and fare["tariff"] == tariff.name
    assert sum(x["amountCents"] for x in fare["lines"]) == fare["totalCents"]
    kinds = {(x["traveler"], x["kind"]) for x in fare["lines"]}
    assert (1, "reduction") in kinds and (2, "free") in kinds
    assert fare["totalCents"] % 10 == 0
    assert fare["vatCents"] == round(fare["totalCents"] * 7 / 107)
    bad = api.inquire(MARKT, OSTOENNEN, nrOfTravelers=2, travelers=[{}])
    assert bad.status_code == 422 and bad.json()["field"] == "travelers"


def test_scripted_night_receipts_export_and_co2_reconcile(api: Api) -> None:
    # a: adult + child, driven to the end -> charged
    a, offer_a = _book(api, MARKT, OSTOENNEN, nrOfTravelers=2, travelers=[{}, {"age": 10}])
    # b: pre-booked for 23:30, cancelled 90 min ahead -> charged and refunded
    b, _ = _book(api, STATION, AMPEN, departureTime="2026-11-20T23:30:00+01:00")
    # c: pickup in a few minutes, cancelled after the cutoff -> charged, not refunded
    c, _ = _book(api, AMPEN, STATION)
    # d: a no-show -> charged, not refunded
    d, _ = _book(api, STATION, MARKT, departureTime="2026-11-20T22:40:00+01:00")
    # e: PENDING, then cancelled -> never charged
    e, _ = _book(api, MARKT, AMPEN, commit=False)
    _cancel(api, b)
    _cancel(api, c)
    _cancel(api, e)

    # drive a to the end; d does not come to the pickup
    bus_a = api.client.get(f"/v1/bookings/{a}", headers=RIDER).json()["vehicle"]["vehicleId"]
    api.clock.advance(300)
    assert api.vehicle_event(bus_a, type="ARRIVED", bookingId=a, stop="pickup").status_code == 200
    assert api.vehicle_event(bus_a, type="BOARDED", bookingId=a).status_code == 200
    api.clock.advance(900)
    assert api.vehicle_event(bus_a, type="ARRIVED", bookingId=a, stop="dropoff").status_code == 200
    assert api.vehicle_event(bus_a, type="ALIGHTED", bookingId=a).status_code == 200
    bus_d = api.client.get(f"/v1/bookings/{d}", headers=RIDER).json()["vehicle"]["vehicleId"]
    assert api.vehicle_event(bus_d, type="NO_SHOW", bookingId=d).status_code == 409  # not there
    assert api.vehicle_event(bus_d, type="ARRIVED", bookingId=d, stop="pickup").status_code == 200
    api.clock.advance(600)
    early = api.vehicle_event(bus_d, type="NO_SHOW", bookingId=d)  # before 22:40 + the wait
    assert early.status_code == 409 and early.json()["code"] == "too_early"
    api.clock.advance(1200)
    assert api.vehicle_event(bus_d, type="NO_SHOW", bookingId=d).status_code == 200
    assert api.client.get(f"/v1/bookings/{a}", headers=RIDER).json()["state"] == "FINISHED"
    assert api.client.get(f"/v1/bookings/{d}", headers=RIDER).json()["state"] == "NO_SHOW"

    ledger = api.client.get("/v1/ledger", headers=DISPATCHER).json()
    kinds = sorted((x["bookingId"], x["kind"]) for x in ledger["entries"])
    assert kinds == sorted(
        [(a, "charge"), (b, "charge"), (b, "refund"), (c, "charge"), (d, "charge")]
    )
    receipts = {
        bid: api.client.get(f"/v1/bookings/{bid}/receipt", headers=RIDER).json()
        for bid in (a, b, c, d, e)
    }
    assert receipts[a]["paidCents"] == offer_a["fare"]["totalCents"] > 0
    assert receipts[b]["paidCents"] == 0 and len(receipts[b]["payments"]) == 2
    assert receipts[c]["paidCents"] == receipts[c]["fare"]["totalCents"]
    assert receipts[d]["paidCents"] == receipts[d]["fare"]["totalCents"]
    assert receipts[e]["paidCents"] == 0 and receipts[e]["payments"] == []
    totals = ledger["totals"]
    assert sum(x["paidCents"] for x in receipts.values()) == totals["balanceCents"]
    assert sum(x["vatCents"] for x in receipts.values()) == totals["vatCents"]
    assert [x["description"] for x in receipts[a]["fare"]["lines"] if x["traveler"] == 1][1] == (
        "reduced fare -50%"
    )

    export = api.client.get("/v1/ledger/export.csv", headers=DISPATCHER)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["entry_id"] for r in rows[:-1]] == [x["entryId"] for x in ledger["entries"]]
    assert int(rows[-1]["amount_cents"]) == totals["balanceCents"]
    assert int(rows[-1]["vat_cents"]) == totals["vatCents"]
    assert all(r["service_date"] == "2026-11-20" for r in rows)
    assert api.client.get("/v1/ledger", headers=RIDER).status_code == 403

    trip = receipts[a]["co2"]
    assert (
        trip is not None and trip["busKm"] > 1 and trip["passengerKm"] >= 2 * trip["busKm"] - 1e-6
    )
    assert trip["carGCo2"] > 0
    night = api.client.get("/v1/co2", headers=DISPATCHER).json()
    assert night["vehicleKm"] >= trip["busKm"] and night["trips"] >= 1
    assert abs(night["savedKgCo2"] - (night["carKgCo2"] - night["busKgCo2"])) < 0.002
