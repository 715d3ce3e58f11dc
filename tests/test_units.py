"""The one rounding rule and the service-day clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nachtbus.units import format_clock, parse_clock, round_half_up, to_int


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [
        (1499, 1000, 1),
        (1500, 1000, 2),
        (-1500, 1000, -2),
        (-1499, 1000, -1),
        (0, 7, 0),
        (49, 100, 0),
    ],
)
def test_round_half_up_away_from_zero(num: int, den: int, expected: int) -> None:
    assert round_half_up(num, den) == expected


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_round_half_up_is_nearest(num: int, den: int) -> None:
    """The result is never more than half a unit away, and symmetric around zero."""
    r = round_half_up(num, den)
    assert abs(num - r * den) * 2 <= den
    assert round_half_up(-num, den) == -r


def test_round_half_up_refuses_a_bad_denominator() -> None:
    with pytest.raises(ValueError, match="positive"):
        round_half_up(1, 0)


def test_to_int_rounds_half_up_and_refuses_nan() -> None:
    assert (to_int(2.5), to_int(-2.5), to_int(2.49)) == (3, -3, 2)
    with pytest.raises(ValueError, match="non-finite"):
        to_int(float("nan"))


def test_clock_crosses_midnight() -> None:
    """01:30 belongs to the service day that began the evening before: 25:30."""
    assert parse_clock("20:00") == 20 * 3600
    assert parse_clock("01:30") == 25 * 3600 + 30 * 60
    assert parse_clock("25:30") == 25 * 3600 + 30 * 60
    assert format_clock(parse_clock("01:30:15")) == "01:30:15"


@pytest.mark.parametrize("text", ["1:30pm", "24:60", "12", "", "-1:00", "48:00"])
def test_bad_clock_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"HH:MM|out of range"):
        parse_clock(text)
