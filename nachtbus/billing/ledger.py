"""Billing: the append-only ledger of charges and refunds, receipts and the nightly export.

The ledger lives in the same store as the bookings and is written in the same transaction as the
booking change that causes an entry: committing a booking records its charge, a cancellation
before the tariff's cutoff records the refund. Entries are never edited; their ids are derived
from the booking (``<booking>:charge``, ``<booking>:refund``), so a booking has at most one of
each, and a refund always equals (never exceeds) its charge. Amounts are integer cents.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from nachtbus.domain import Booking, Fare
from nachtbus.errors import InvalidInput


class EntryKind(StrEnum):
    CHARGE = "charge"
    REFUND = "refund"


class LedgerError(InvalidInput):
    code = "invalid_ledger_entry"


@dataclass(frozen=True)
class LedgerEntry:
    """One charge or refund: positive integer cents (a refund is booked as kind, not sign)."""

    entry_id: str
    booking_id: str
    rider_id: str
    kind: EntryKind
    amount_cents: int
    vat_cents: int
    vat_percent: int
    currency: str
    at_s: int

    def __post_init__(self) -> None:
        for name in ("amount_cents", "vat_cents", "vat_percent"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise LedgerError("must be whole cents (an integer)", field=name)
            if value < 0:
                raise LedgerError("can never be negative", field=name)
        if self.vat_cents > self.amount_cents:
            raise LedgerError("VAT cannot exceed the amount", field="vat_cents")
        if self.entry_id != f"{self.booking_id}:{self.kind.value}":
            raise LedgerError("must be '<booking_id>:<kind>'", field="entry_id")

    @property
    def signed_cents(self) -> int:
        return self.amount_cents if self.kind == EntryKind.CHARGE else -self.amount_cents

    @property
    def signed_vat_cents(self) -> int:
        return self.vat_cents if self.kind == EntryKind.CHARGE else -self.vat_cents

    def to_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "booking_id": self.booking_id,
            "rider_id": self.rider_id,
            "kind": self.kind.value,
            "amount_cents": self.amount_cents,
            "vat_cents": self.vat_cents,
            "vat_percent": self.vat_percent,
            "currency": self.currency,
            "at_s": self.at_s,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LedgerEntry:
        return cls(
            entry_id=d["entry_id"],
            booking_id=d["booking_id"],
            rider_id=d["rider_id"],
            kind=EntryKind(d["kind"]),
            amount_cents=d["amount_cents"],
            vat_cents=d["vat_cents"],
            vat_percent=d["vat_percent"],
            currency=d["currency"],
            at_s=d["at_s"],
        )


def charge(booking: Booking, fare: Fare, at_s: int) -> LedgerEntry:
    return LedgerEntry(
        f"{booking.booking_id}:charge",
        booking.booking_id,
        booking.request.rider_id,
        EntryKind.CHARGE,
        fare.total_cents,
        fare.vat_cents,
        fare.vat_percent,
        fare.currency,
        at_s,
    )


def refund(of: LedgerEntry, at_s: int) -> LedgerEntry:
    """The refund of a charge: the same amount and VAT, never more."""
    if of.kind != EntryKind.CHARGE:
        raise LedgerError("only a charge can be refunded", field="kind")
    return LedgerEntry(
        f"{of.booking_id}:refund",
        of.booking_id,
        of.rider_id,
        EntryKind.REFUND,
        of.amount_cents,
        of.vat_cents,
        of.vat_percent,
        of.currency,
        at_s,
    )


@dataclass(frozen=True)
class Totals:
    charges_cents: int
    refunds_cents: int
    balance_cents: int
    vat_cents: int
    entries: int

    @property
    def net_cents(self) -> int:
        return self.balance_cents - self.vat_cents


class Ledger:
    """A night's entries in order, checked: one charge and at most one refund per booking,
    a refund only after its charge and equal to it."""

    def __init__(self, entries: Iterable[LedgerEntry]) -> None:
        self.entries: tuple[LedgerEntry, ...] = tuple(entries)
        self._by_id: dict[str, LedgerEntry] = {}
        for e in self.entries:
            if e.entry_id in self._by_id:
                raise LedgerError(f"entry {e.entry_id} appears twice", field="entry_id")
            if e.kind == EntryKind.REFUND:
                c = self._by_id.get(f"{e.booking_id}:charge")
                if c is None:
                    raise LedgerError(f"refund {e.entry_id} without a charge", field="kind")
                if e.amount_cents > c.amount_cents or e.vat_cents > c.vat_cents:
                    raise LedgerError(f"refund {e.entry_id} exceeds its charge", field="amount")
            self._by_id[e.entry_id] = e

    def get(self, booking_id: str, kind: EntryKind) -> LedgerEntry | None:
        return self._by_id.get(f"{booking_id}:{kind.value}")

    def of_booking(self, booking_id: str) -> list[LedgerEntry]:
        return [e for e in self.entries if e.booking_id == booking_id]

    def totals(self) -> Totals:
        charges = sum(e.amount_cents for e in self.entries if e.kind == EntryKind.CHARGE)
        refunds = sum(e.amount_cents for e in self.entries if e.kind == EntryKind.REFUND)
        return Totals(
            charges_cents=charges,
            refunds_cents=refunds,
            balance_cents=charges - refunds,
            vat_cents=sum(e.signed_vat_cents for e in self.entries),
            entries=len(self.entries),
        )


@dataclass(frozen=True)
class Receipt:
    """What a rider is given for one booking: the trip, the fare lines and what was paid."""

    booking: Booking
    fare: Fare | None
    entries: tuple[LedgerEntry, ...]

    @property
    def paid_cents(self) -> int:
        return sum(e.signed_cents for e in self.entries)

    @property
    def vat_cents(self) -> int:
        return sum(e.signed_vat_cents for e in self.entries)


def receipt(booking: Booking, ledger: Ledger) -> Receipt:
    return Receipt(booking, booking.fare, tuple(ledger.of_booking(booking.booking_id)))


EXPORT_COLUMNS = (
    "service_date",
    "entry_id",
    "booking_id",
    "rider_id",
    "kind",
    "time",
    "amount_cents",
    "vat_percent",
    "vat_cents",
    "net_cents",
    "currency",
)


def export_csv(entries: Sequence[LedgerEntry], service_date: date, time_of: Any) -> str:
    """The night's entries for the operator's accounting: one row per entry, signed cents
    (refunds negative), then a TOTAL row. ``time_of(at_s)`` gives the ISO time of an entry."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EXPORT_COLUMNS)
    for e in entries:
        w.writerow(
            (
                service_date.isoformat(),
                e.entry_id,
                e.booking_id,
                e.rider_id,
                e.kind.value,
                time_of(e.at_s),
                e.signed_cents,
                e.vat_percent,
                e.signed_vat_cents,
                e.signed_cents - e.signed_vat_cents,
                e.currency,
            )
        )
    t = Ledger(entries).totals()
    currency = entries[0].currency if entries else ""
    w.writerow(
        (
            service_date.isoformat(),
            "TOTAL",
            "",
            "",
            "",
            "",
            t.balance_cents,
            "",
            t.vat_cents,
            t.net_cents,
            currency,
        )
    )
    return out.getvalue()
