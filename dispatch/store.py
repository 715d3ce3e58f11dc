"""The StateStore protocol: where the live fleet state, offers and the event stream are kept.

The dispatch service loads a FleetState snapshot, decides, and commits the new snapshot together
with its events *only if the version it started from is still current* (optimistic locking).
The one real implementation is :mod:`dispatch.redis_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nachtbus.domain import Booking, FleetState, Offer


@dataclass(frozen=True)
class Event:
    """One change of the service, as the dispatcher page and the audit trail see it.

    ``type`` is dotted (``booking.confirmed``, ``vehicle.position``, ``request.rejected``);
    ``data`` holds JSON-ready values only. An event with a ``journal`` is also appended to that
    journal (``ledger``, ``legs``): an append-only list, never trimmed, unlike the stream.
    """

    type: str
    at_s: int
    data: dict[str, Any] = field(default_factory=dict)
    journal: str | None = None


class StateStore(Protocol):
    """Live state of one service area."""

    def version(self) -> int | None:
        """The stored snapshot's version, or None if the store was never initialised."""
        ...

    def load(self) -> FleetState | None:
        """The current snapshot, or None if the store was never initialised."""
        ...

    def booking(self, booking_id: str) -> Booking | None:
        """One booking of the stored state, without loading the rest (None if unknown)."""
        ...

    def initialise(self, state: FleetState) -> bool:
        """Store a first snapshot if there is none; False if one exists (it is kept)."""
        ...

    def commit(self, new: FleetState, expected_version: int, events: Sequence[Event]) -> bool:
        """Write ``new`` and its events atomically if the stored version is ``expected_version``.

        False (nothing written) when another decision was committed in between.
        """
        ...

    def append_events(self, events: Sequence[Event]) -> None:
        """Record events that change no state (e.g. a rejected request)."""
        ...

    def events_after(
        self, last_id: str, block_ms: int = 0, count: int = 100
    ) -> list[tuple[str, Event]]:
        """Events after ``last_id`` ("0" for all, "$" for new ones), waiting up to block_ms."""
        ...

    def recent_events(self, count: int, types: Sequence[str] = ()) -> list[tuple[str, Event]]:
        """The latest ``count`` events (of the given types, if any), newest first."""
        ...

    def journal(self, name: str) -> list[dict[str, Any]]:
        """Every entry of an append-only journal, oldest first (the ``data`` of its events)."""
        ...

    def put_offer(self, offer: Offer, ttl_s: int) -> None: ...

    def get_offer(self, offer_id: str) -> Offer | None:
        """The offer, or None if unknown or released after its time to live."""
        ...

    def recall(self, key: str) -> str | None:
        """A remembered idempotent answer (or claim)."""
        ...

    def claim(self, key: str, value: str, ttl_s: int) -> bool:
        """Remember ``value`` under ``key`` only if nothing is there (atomically); True if
        this call did."""
        ...

    def remember(self, key: str, value: str, ttl_s: int | None) -> None:
        """Remember ``value`` under ``key`` (replacing what is there) for ``ttl_s`` seconds;
        None: kept, and never evicted under the store's memory ceiling (a dispatcher's
        decision, say, which must not vanish)."""
        ...

    def forget(self, key: str) -> None: ...

    def memory(self) -> tuple[int, int]:
        """Bytes the store uses and its ceiling (0: none set), for the operators' status."""
        ...

    def troubles(self) -> list[str]:
        """What the store's own server reports as wrong lately (it stopped by itself, its
        disk is nearly full), for the operators' status; empty: nothing."""
        ...

    def close(self) -> None:
        """Close the connection (an embedded server this process owns stops)."""
        ...

    def try_lead(self, owner: str, ttl_s: int) -> bool:
        """True if this process holds the lease for background work (one of several workers)."""
        ...
