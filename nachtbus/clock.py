"""The service-day clock: aware instants <-> integer seconds of the service day.

A **service day** belongs to one evening: it runs from noon (``DAY_START_S``, local time) of its
date to noon of the next day, and the night bus's night (20:00 to 05:00) lies inside it. The
service day *rolls over at noon*: a service running across noon serves the next evening.

Its **seconds** are *elapsed* seconds since local midnight at the start of its date, computed
on aware UTC instants, so they grow with real time on every night: 22:00 is 79,200 s and 01:30
the next morning is 91,800 s on an ordinary night. On the nights of the clock changes the wall
clock jumps but the seconds do not: in the March night 03:00 CEST comes one second after
01:59:59 CET and is second 93,600 (not 97,200), and in the October night the hour from 02:00 to
03:00 is lived twice and counted twice (03:00 CET is second 100,800). Durations (travel times,
waits) therefore add up right, and the fleet clock never stands still or runs back.

Wall-clock rules (service hours 20:00 to 05:00, a scenario's times) are given as *wall-clock
service seconds* (05:00 next morning = 104,400, see :mod:`nachtbus.units`) and converted once per
night with :func:`wall_to_elapsed`; on ordinary nights the two are the same number.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from nachtbus.errors import InvalidInput

DAY_START_S = 12 * 3600  # before noon a wall-clock time belongs to the evening before
FAR = timedelta(days=3660)  # a moment further than ten years from now is no booking time


class Clock(Protocol):
    """What the dispatch service needs to know about time."""

    tz: ZoneInfo

    def now(self) -> datetime:
        """The current instant (aware, UTC)."""
        ...

    def now_s(self) -> int:
        """Seconds of the current service day."""
        ...

    def service_date(self) -> date:
        """Calendar date of the evening the current service day belongs to."""
        ...


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) from which a service day's seconds count: local midnight of its date."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def service_day_of(moment: datetime, tz: ZoneInfo) -> tuple[date, int]:
    """The service date and the service-day second of an aware moment."""
    wall = moment.astimezone(tz).replace(tzinfo=None)
    day = (wall - timedelta(seconds=DAY_START_S)).date()
    return day, int((moment.astimezone(UTC) - day_start(day, tz)).total_seconds())


def at(day: date, seconds: int, tz: ZoneInfo) -> datetime:
    """Seconds of service day ``day`` as an aware local date-time."""
    return (day_start(day, tz) + timedelta(seconds=seconds)).astimezone(tz)


def wall_to_elapsed(day: date, wall_s: int, tz: ZoneInfo) -> int:
    """A wall-clock time of service day ``day`` (wall-clock service seconds, 05:00 = 104,400)
    as that day's elapsed seconds. A time the clock skips (02:30 in the March night) is read
    as the moment the clock would show it without the change; a time lived twice (02:30 in the
    October night) as its first occurrence."""
    wall = datetime(day.year, day.month, day.day) + timedelta(seconds=wall_s)
    aware = wall.replace(tzinfo=tz, fold=0)
    return int((aware.astimezone(UTC) - day_start(day, tz)).total_seconds())


def to_datetime(clock: Clock, seconds: int) -> datetime:
    """Service-day seconds of ``clock``'s current service day as an aware local date-time."""
    return at(clock.service_date(), seconds, clock.tz)


def as_aware(moment: datetime, tz: ZoneInfo) -> datetime:
    """``moment`` as an aware date-time: a naive one is read as local time of the service
    area (the first of a repeated hour)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz, fold=0)


def from_datetime(clock: Clock, moment: datetime, field: str) -> int:
    """An aware date-time as seconds of ``clock``'s current service day.

    Naive date-times are read as local time of the service area (the first of a repeated
    hour). A time on another service day, or years away, is an error naming ``field``:
    bookings are for tonight (or the morning after).
    """
    moment = as_aware(moment, clock.tz)
    try:
        if abs(moment.astimezone(UTC) - clock.now()) > FAR:
            raise OverflowError
        day, seconds = service_day_of(moment, clock.tz)
    except (OverflowError, ValueError):
        raise InvalidInput(
            f"is out of range: {moment.isoformat()} is years from tonight", field=field
        ) from None
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

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset_s)

    def now_s(self) -> int:
        return service_day_of(self.now(), self.tz)[1]

    def service_date(self) -> date:
        return service_day_of(self.now(), self.tz)[0]

    @classmethod
    def starting_at(cls, seconds: int, tz: str = "Europe/Berlin") -> WallClock:
        """A clock that reads ``seconds`` (wall-clock service seconds of the current service
        day, e.g. 22:00) now and runs on."""
        zone = ZoneInfo(tz)
        day, now = service_day_of(datetime.now(UTC), zone)
        return cls(tz, offset_s=wall_to_elapsed(day, seconds, zone) - now)


class DayClock:
    """Another service day's view of ``clock``: the same instant, counted in the seconds of
    service day ``day``. A rider booking ahead for a later night is dealt with on that
    night's store in that night's seconds (before its noon they are fewer than 12 h, and
    negative before the midnight that starts its date)."""

    def __init__(self, clock: Clock, day: date) -> None:
        self.clock = clock
        self.day = day
        self.tz = clock.tz

    def now(self) -> datetime:
        return self.clock.now()

    def now_s(self) -> int:
        since = self.clock.now().astimezone(UTC) - day_start(self.day, self.tz)
        return int(since.total_seconds())

    def service_date(self) -> date:
        return self.day


class ManualClock:
    """A clock that moves only when told to: tests and the simulator.

    It holds an instant; ``now_s`` counts from the start of that instant's service day, so
    advancing it past noon rolls over to the next service day, as real time does.
    """

    def __init__(
        self, now_s: int, service_date: date | None = None, tz: str = "Europe/Berlin"
    ) -> None:
        self.tz = ZoneInfo(tz)
        self._t = day_start(service_date or date(2026, 11, 20), self.tz) + timedelta(seconds=now_s)
        self._lock = threading.Lock()
        self._read: tuple[datetime, date, int] | None = None  # the last instant, converted

    @classmethod
    def at_instant(cls, moment: datetime, tz: str = "Europe/Berlin") -> ManualClock:
        """A clock showing the aware instant ``moment``."""
        zone = ZoneInfo(tz)
        day, seconds = service_day_of(moment, zone)
        return cls(seconds, day, tz)

    def now(self) -> datetime:
        with self._lock:
            return self._t

    def _day(self) -> tuple[date, int]:
        t = self.now()
        read = self._read
        if read is None or read[0] != t:
            read = (t, *service_day_of(t, self.tz))
            self._read = read
        return read[1], read[2]

    def now_s(self) -> int:
        return self._day()[1]

    def service_date(self) -> date:
        return self._day()[0]

    def set(self, now_s: int) -> None:
        """Set the time to ``now_s`` seconds of the current service day."""
        with self._lock:
            day = service_day_of(self._t, self.tz)[0]
            self._t = day_start(day, self.tz) + timedelta(seconds=now_s)

    def advance(self, seconds: int) -> None:
        with self._lock:
            self._t += timedelta(seconds=seconds)
