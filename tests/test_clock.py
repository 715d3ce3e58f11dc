"""The service-day clock on ordinary nights and on both clock-change nights of 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.policies import ServicePolicy
from nachtbus.clock import (
    ManualClock,
    WallClock,
    at,
    from_datetime,
    service_day_of,
    to_datetime,
    wall_to_elapsed,
)
from nachtbus.errors import InvalidInput

BERLIN = ZoneInfo("Europe/Berlin")
MARCH = date(2026, 3, 28)  # the night into Sunday 29 March: 02:00 CET -> 03:00 CEST
OCTOBER = date(2026, 10, 24)  # the night into Sunday 25 October: 03:00 CEST -> 02:00 CET


def test_an_ordinary_night_counts_wall_clock_seconds() -> None:
    clock = ManualClock(22 * 3600, date(2026, 11, 20))
    assert to_datetime(clock, 79_200).isoformat() == "2026-11-20T22:00:00+01:00"
    assert to_datetime(clock, 91_800).isoformat() == "2026-11-21T01:30:00+01:00"
    assert from_datetime(clock, datetime(2026, 11, 21, 1, 30), "t") == 91_800
    assert wall_to_elapsed(date(2026, 11, 20), 29 * 3600, BERLIN) == 29 * 3600


def test_the_march_night_skips_an_hour_on_the_wall_not_in_seconds() -> None:
    """One second after 01:59:59 CET it is 03:00:00 CEST; the fleet clock moves one second."""
    clock = ManualClock.at_instant(datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC))
    before = clock.now_s()
    assert to_datetime(clock, before).isoformat() == "2026-03-29T01:59:59+01:00"
    clock.advance(1)
    assert clock.now_s() == before + 1 == 93_600
    shown = to_datetime(clock, clock.now_s())
    assert shown.isoformat() == "2026-03-29T03:00:00+02:00"
    assert shown.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert wall_to_elapsed(MARCH, 27 * 3600, BERLIN) == 93_600  # 03:00 is second 93,600
    assert wall_to_elapsed(MARCH, 29 * 3600, BERLIN) == 28 * 3600  # 05:00 CEST


def test_the_october_night_lives_an_hour_twice_and_counts_it_twice() -> None:
    clock = ManualClock.at_instant(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    first = clock.now_s()
    assert to_datetime(clock, first).isoformat() == "2026-10-25T02:30:00+02:00"
    clock.advance(3600)
    assert clock.now_s() == first + 3600  # the fleet clock never stands still
    assert to_datetime(clock, clock.now_s()).isoformat() == "2026-10-25T02:30:00+01:00"
    # the same wall time with its offset names each of the two moments
    cest = from_datetime(clock, datetime.fromisoformat("2026-10-25T02:30:00+02:00"), "t")
    cet = from_datetime(clock, datetime.fromisoformat("2026-10-25T02:30:00+01:00"), "t")
    assert cet - cest == 3600 and cest == first
    assert wall_to_elapsed(OCTOBER, 29 * 3600, BERLIN) == 30 * 3600  # 05:00 CET


@pytest.mark.parametrize("day", [MARCH, OCTOBER, date(2026, 11, 20)])
def test_seconds_and_instants_convert_both_ways(day: date) -> None:
    """Every quarter hour of the night: instant -> (day, seconds) -> the same instant."""
    start = at(day, 18 * 3600, BERLIN).astimezone(UTC)  # steps of real time, not wall time
    for k in range(4 * 14):
        moment = start + timedelta(minutes=15 * k)
        d, s = service_day_of(moment, BERLIN)
        assert d == day and at(d, s, BERLIN).astimezone(UTC) == moment


def test_the_night_rules_follow_the_clock_change() -> None:
    """The service hours 20:00 to 05:00 are wall-clock times: on the October night the last
    pickup is at second 108,000 (05:00 CET), on the March night at 100,800 (05:00 CEST); the
    message still says 05:00."""
    policy = ServicePolicy()
    october = policy.for_night(OCTOBER, BERLIN)
    assert (october.service_start_s, october.service_end_s) == (72_000, 108_000)
    march = policy.for_night(MARCH, BERLIN)
    assert march.service_end_s == 100_800
    assert "20:00:00 to 05:00:00" in october.hours_text()
    assert policy.for_night(date(2026, 11, 20), BERLIN) == policy


def test_a_shifted_wall_clock_is_right_in_the_october_night() -> None:
    """A development clock shifted into the repeated hour shows the right local and UTC time."""
    target = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET, the second 02:15
    offset = int((target - datetime.now(UTC)).total_seconds())
    clock = WallClock("Europe/Berlin", offset_s=offset)
    assert clock.service_date() == OCTOBER
    shown = to_datetime(clock, clock.now_s())
    assert abs((shown.astimezone(UTC) - target).total_seconds()) < 5
    assert shown.utcoffset() == timedelta(hours=1)


def test_the_manual_clock_rolls_over_at_noon() -> None:
    clock = ManualClock(35 * 3600, date(2026, 11, 20))  # 11:00 the morning after
    clock.advance(3600)
    assert clock.service_date() == date(2026, 11, 21) and clock.now_s() == 12 * 3600


@pytest.mark.parametrize("year", [1, 9999])
def test_a_time_years_away_is_bad_input_not_a_crash(year: int) -> None:
    clock = ManualClock(22 * 3600)
    with pytest.raises(InvalidInput) as err:
        from_datetime(clock, datetime(year, 1, 1, 12, tzinfo=UTC), "departureTime")
    assert err.value.field == "departureTime" and "out of range" in err.value.message
