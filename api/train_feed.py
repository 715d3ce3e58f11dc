"""The trains' delays fetched, not only pushed: a GTFS-Realtime TripUpdates feed polled.

The railway (or a relay such as DELFI's GTFS-RT) publishes TripUpdates at a URL. With
``NACHTBUS_GTFS_RT_TRIP_UPDATES_URL`` set, the background round fetches it at most every
``NACHTBUS_GTFS_RT_POLL_S`` seconds, in a thread of its own so that the round does not
wait for the railway's server, and applies it as ``POST /v1/trains/trip-updates`` does
(:func:`api.transit.apply_trip_updates`): riders off a late train get a new window, riders to
a train are checked. Repeated delays change nothing (the service skips a delay it already
applied). The fetch has a timeout per read and for the whole answer, and a size cap; it
sends the last ``ETag`` / ``Last-Modified`` so an unchanged feed costs a 304. A feed that
is down, slow, too large or not a FeedMessage is logged and shown in ``GET /v1/trains``
(``realtime``); the delays heard before stay, and the next poll tries again.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nachtbus.errors import NachtbusError

if TYPE_CHECKING:
    from api.app import Runtime

log = logging.getLogger(__name__)

MAX_FEED_BYTES = 8 * 2**20  # a whole country's TripUpdates are a few MB
TIMEOUT_S = 10.0  # one read of the socket
DEADLINE_S = 30.0  # the whole answer


@dataclass(frozen=True)
class FeedStatus:
    """What the last polls of the feed gave (for the trains' page and the dispatchers)."""

    url: str
    last_ok_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    trains_late: int = 0  # trains of tonight at our stations with a delay in the last feed


class TrainFeed:
    """Polls one TripUpdates URL; :meth:`poll_if_due` is called by the background round."""

    def __init__(self, url: str, poll_s: float) -> None:
        self.url, self.poll_s = url, poll_s
        self._next = 0.0  # monotonic time of the next poll
        self._validators: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.status = FeedStatus(url)

    def poll_if_due(self, r: Runtime) -> bool:
        """Start a poll in its own thread when ``poll_s`` has passed since the last one and
        none is under way; True if one was started. The background round does not wait for
        it: a slow feed (up to DEADLINE_S) holds neither the expiry of held seats nor the
        re-optimisation. The thread applies what it fetched itself, as a pushed update is."""
        now = time.monotonic()
        if now < self._next or (self._thread is not None and self._thread.is_alive()):
            return False
        self._next = now + self.poll_s
        self._thread = threading.Thread(
            target=self._poll_logged, args=(r,), daemon=True, name="train feed"
        )
        self._thread.start()
        return True

    def wait(self, timeout_s: float = DEADLINE_S + 2 * TIMEOUT_S) -> None:
        """Wait for a poll under way (on shutdown, before the store closes, and in tests)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _poll_logged(self, r: Runtime) -> None:
        try:
            self.poll(r)
        except Exception:  # the store gone while applying: the next poll tries again
            log.exception("train delays feed: applying the delays failed")

    def poll(self, r: Runtime) -> bool:
        """Fetch the feed and apply it; never raises (the error is kept in ``status``)."""
        from api.transit import apply_trip_updates

        with self._lock:
            try:
                body = self._fetch()
                if body is None:  # 304: unchanged since the last poll
                    self.status = _ok(self.status, self.status.trains_late)
                    return False
                delays, events = apply_trip_updates(r, body)
            except (OSError, NachtbusError, ValueError) as exc:
                self.status = replace(
                    self.status, last_error=_describe(exc), last_error_at=datetime.now(UTC)
                )
                log.warning("train delays feed %s: %s", self.url, self.status.last_error)
                return False
            late = sum(1 for d in delays.values() if d > 0)
            self.status = _ok(self.status, late)
            if events:
                log.info("train delays feed: %d delays, %d bookings told", late, len(events))
            return True

    def _fetch(self) -> bytes | None:
        request = urllib.request.Request(self.url, headers={
            "Accept": "application/x-protobuf",
            "User-Agent": "nachtbus (train delays)",
            **self._validators,
        })  # fmt: skip
        try:
            # the operator's own URL (http, https or file, checked in the settings)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                body = _read_within(answer, time.monotonic() + DEADLINE_S)
                headers = answer.headers
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None
            raise OSError(f"HTTP {exc.code} {exc.reason}") from exc
        self._validators = {
            name: value
            for name, value in (
                ("If-None-Match", headers.get("ETag")),
                ("If-Modified-Since", headers.get("Last-Modified")),
            )
            if value
        }
        return body


def _read_within(answer: Any, deadline: float) -> bytes:
    """The answer's body, in chunks: at most MAX_FEED_BYTES, and all of it by ``deadline``
    (the socket's timeout holds for one read only: a server dripping bytes would hold the
    background round for hours)."""
    parts: list[bytes] = []
    size = 0
    read = getattr(answer, "read1", answer.read)  # read1: what has come, not a full chunk
    while chunk := read(64 * 1024):
        size += len(chunk)
        if size > MAX_FEED_BYTES:
            raise OSError(f"the feed is over {MAX_FEED_BYTES // 2**20} MB")
        if time.monotonic() > deadline:
            raise OSError(f"the feed took over {DEADLINE_S:g} s to send")
        parts.append(chunk)
    return b"".join(parts)


def _ok(old: FeedStatus, late: int) -> FeedStatus:
    return replace(old, last_ok_at=datetime.now(UTC), trains_late=late)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        return f"cannot be fetched: {exc.reason}"
    return str(exc) or type(exc).__name__
