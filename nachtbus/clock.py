"""The service-day clock: wall time <-> integer seconds of the service day.

A service day starts at midnight before the evening it belongs to and runs past the next
midnight: 22:00 is 79,200 s and 01:30 the next morning is 91,800 s of the same service day
(see :mod:`nachtbus.units`). A clock also knows the calendar date of its service day, so the
API can speak ISO 8601 date-times while the engine counts integer seconds.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from nachtbus.errors import InvalidInput

DAY_START_S = 12 * 3600  # before noon a wall-clock time belongs to the evening before


class Clock(Protocol):
    """What the dispatch service needs to know about time."""

    tz: ZoneInfo

    def now_s(self) -> int:
        """Seconds of the current service day."""
        ...

    def service_date(self) -> date:
        """Calendar date of the evening the current service day belongs to."""
        ...


def service_day_of(moment: datetime, tz: ZoneInfo) -> tuple[date, int]:
    """The service date and the service-day second of an aware moment."""
    local = moment.astimezone(tz)
    day = (local - timedelta(seconds=DAY_START_S)).date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return day, int((local - midnight).total_seconds())


def to_datetime(clock: Clock, seconds: int) -> datetime:
    """Service-day seconds of ``clock``'s current service day as an aware local date-time."""
    d = clock.service_date()
    midnight = datetime(d.year, d.month, d.day, tzinfo=clock.tz)
    return (midnight.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(clock.tz)


def from_datetime(clock: Clock, moment: datetime, field: str) -> int:
    """An aware date-time as seconds of ``clock``'s current service day.

    Naive date-times are read as local time of the service area. A time on another service day
    is an error naming ``field``: bookings are for tonight (or the morning after).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.tz)
    day, seconds = service_day_of(moment, clock.tz)
    today = clock.service_date()
    if day != today:
        raise InvalidInput(
            f"must be within tonight's service day ({today.isoformat()} 12:00 to the next day "
            f"12:00, local time); got {moment.isoformat()}",
            field=field,
        )
    return seconds


class WallClock:
    """Real time in the service area's time zone, optionally shifted.

    ``offset_s`` moves the clock (e.g. to try the service at 22:00 in the afternoon); the shift
    is fixed at construction so time still runs at real speed.
    """

    def __init__(self, tz: str = "Europe/Berlin", offset_s: int = 0) -> None:
        self.tz = ZoneInfo(tz)
        self.offset_s = offset_s

    def _now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

    def now_s(self) -> int:
        return service_day_of(self._now(), self.tz)[1]

    def service_date(self) -> date:
        return service_day_of(self._now(), self.tz)[0]

    @classmethod
    def starting_at(cls, seconds: int, tz: str = "Europe/Berlin") -> WallClock:
        """A clock that reads ``seconds`` (service-day seconds, e.g. 22:00) now and runs on."""
        zone = ZoneInfo(tz)
        now = service_day_of(datetime.now(UTC), zone)[1]
        return cls(tz, offset_s=seconds - now)


class ManualClock:
    """A clock that moves only when told to: tests and the simulator."""

    def __init__(
        self, now_s: int, service_date: date | None = None, tz: str = "Europe/Berlin"
    ) -> None:
        self.tz = ZoneInfo(tz)
        self._now_s = now_s
        self._date = service_date or date(2026, 11, 20)
        self._lock = threading.Lock()

    def now_s(self) -> int:
        with self._lock:
            return self._now_s

    def service_date(self) -> date:
        return self._date

    def set(self, now_s: int) -> None:
        with self._lock:
            self._now_s = now_s

    def advance(self, seconds: int) -> None:
        with self._lock:
            self._now_s += seconds
