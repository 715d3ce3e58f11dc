"""Ledger entries and their rules, the nightly CSV export, and the CO2 split by hand."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest

from nachtbus.billing.co2 import Co2Params, Leg, account
from nachtbus.billing.ledger import EntryKind, Ledger, LedgerEntry, LedgerError, export_csv
from nachtbus.errors import InvalidInput


def entry(kind: EntryKind = EntryKind.CHARGE, booking: str = "b1", **over: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "entry_id": f"{booking}:{kind.value}",
        "booking_id": booking,
        "rider_id": "app/r1",
        "kind": kind,
        "amount_cents": 490,
        "vat_cents": 32,
        "vat_percent": 7,
        "currency": "EUR",
        "at_s": 80000,
    }
    fields.update(over)
    return LedgerEntry(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"amount_cents": -10}, "amount_cents"),
        ({"amount_cents": 4.9}, "amount_cents"),
        ({"vat_cents": -1}, "vat_cents"),
        ({"vat_cents": 500}, "vat_cents"),
        ({"amount_cents": True}, "amount_cents"),
        ({"entry_id": "b1:other"}, "entry_id"),
    ],
)
def test_an_entry_is_positive_whole_cents(over: dict[str, Any], field: str) -> None:
    with pytest.raises(LedgerError) as err:
        entry(**over)
    assert err.value.field == field


def test_a_refund_never_exceeds_its_charge_nor_comes_without_one() -> None:
    with pytest.raises(LedgerError, match="without a charge"):
        Ledger([entry(EntryKind.REFUND)])
    with pytest.raises(LedgerError, match="exceeds"):
        Ledger([entry(), entry(EntryKind.REFUND, amount_cents=500)])
    with pytest.raises(LedgerError, match="twice"):
        Ledger([entry(), entry()])
    ok = Ledger([entry(), entry(EntryKind.REFUND)])
    assert ok.totals().balance_cents == 0


def test_totals_and_export_reconcile() -> None:
    entries = [
        entry(booking="b1"),
        entry(booking="b2", amount_cents=350, vat_cents=23),
        entry(EntryKind.REFUND, booking="b2", amount_cents=350, vat_cents=23, at_s=81000),
        entry(booking="b3", amount_cents=0, vat_cents=0),
    ]
    t = Ledger(entries).totals()
    assert (t.charges_cents, t.refunds_cents, t.balance_cents, t.vat_cents) == (840, 350, 490, 32)
    text = export_csv(entries, date(2026, 11, 20), lambda s: f"t{s}")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 5 and rows[-1]["entry_id"] == "TOTAL"
    body = rows[:-1]
    assert [r["amount_cents"] for r in body] == ["490", "350", "-350", "0"]
    assert sum(int(r["amount_cents"]) for r in body) == int(rows[-1]["amount_cents"]) == 490
    assert sum(int(r["vat_cents"]) for r in body) == int(rows[-1]["vat_cents"]) == 32
    assert all(int(r["net_cents"]) == int(r["amount_cents"]) - int(r["vat_cents"]) for r in rows)


def test_co2_split_of_a_shared_trip_by_hand() -> None:
    """Depot -> A (empty, 2 km) -> B (rider a: 1 person, 4 km) -> C (a + group b of 3, 6 km)
    -> D (b only, 3 km). Bus 0.5 kWh/km x 400 g/kWh = 200 g/km; car 150 g/km."""
    p = Co2Params(bus_kwh_per_km=0.5, grid_g_per_kwh=400, car_g_per_km=150)
    legs = [
        Leg("bus-1", 0, 1, 0, 100, 2000, {}),
        Leg("bus-1", 1, 2, 100, 400, 4000, {"a": 1}),
        Leg("bus-1", 2, 3, 400, 900, 6000, {"a": 1, "b": 3}),
        Leg("bus-1", 3, 4, 900, 1100, 3000, {"b": 3}),
    ]
    night = account(legs, {"a": 9000, "b": 8000}, {"a": 1, "b": 3}, p)
    a, b = night.trips["a"], night.trips["b"]
    # leg 2: 800 g alone; leg 3: 1200 g shared 1:3 -> a 300, b 900; leg 4: 600 g b alone
    assert a.bus_g == pytest.approx(800 + 300)
    assert b.bus_g == pytest.approx(900 + 600)
    assert a.car_g == pytest.approx(9 * 150) and b.car_g == pytest.approx(8 * 150)
    assert a.saved_g == pytest.approx(1350 - 1100)
    assert night.vehicle_km == pytest.approx(15) and night.empty_km == pytest.approx(2)
    assert night.passenger_km == pytest.approx(4 + 6 * 4 + 3 * 3)
    assert night.pooled_share == pytest.approx(24 / 37)
    assert night.bus_kg == pytest.approx(15 * 0.2)  # empty km count in the night's total
    assert night.car_kg == pytest.approx((1350 + 1200) / 1000)
    assert night.saved_kg == pytest.approx(2.55 - 3.0)


def test_the_counterfactual_counts_car_taxi_with_its_empty_drive_and_no_trip() -> None:
    """One booking, 10 km direct, rode alone on a 12 km leg: without the bus 40 % would drive
    (10 km), 20 % take a taxi (10 km with the rider + 10 km empty), the rest walk or stay home."""
    p = Co2Params(
        bus_kwh_per_km=0.5,
        grid_g_per_kwh=400.0,
        car_g_per_km=200.0,
        car_share=0.4,
        taxi_share=0.2,
        walk_cycle_share=0.1,
        stay_home_share=0.3,
        taxi_empty_per_km=1.0,
    )
    legs = [Leg("bus-1", 0, 1, 0, 600, 12_000, {"b1": 1}), Leg("bus-1", 1, 2, 600, 900, 3_000)]
    night = account(legs, {"b1": 10_000}, {"b1": 1}, p)
    car_kg = 10 * 200 / 1000
    expected = 10 * 200 * (0.4 + 0.2 * 2) / 1000
    assert night.car_kg == pytest.approx(car_kg)
    assert night.counterfactual_kg == pytest.approx(expected)
    assert night.bus_kg == pytest.approx(15 * 0.5 * 400 / 1000)
    assert night.saved_counterfactual_kg == pytest.approx(expected - night.bus_kg)


def test_counterfactual_shares_must_sum_to_one() -> None:
    with pytest.raises(InvalidInput) as err:
        Co2Params(car_share=0.5, taxi_share=0.5, walk_cycle_share=0.5, stay_home_share=0.0)
    assert err.value.field == "car_share" and "sum to 1" in err.value.message
