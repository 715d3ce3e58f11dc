"""Units and the one rounding rule.

Inside the engine, time is integer seconds and distance integer metres. The road graph keeps a
finer resolution per edge (milliseconds, centimetres) so that summing many short edges does not
accumulate rounding error; every conversion to the coarser unit goes through :func:`round_half_up`.

The service day runs across midnight: a night from 20:00 to 05:00 is one service day, and its
clock is seconds since the service day's midnight *start*, so 01:30 the next morning is
``25 * 3600 + 30 * 60``. Nothing in the engine uses wall-clock dates below the edge of the system.
"""

from __future__ import annotations

import math

SECOND_MS = 1000
METRE_CM = 100
DAY_S = 24 * 3600


def round_half_up(numerator: int, denominator: int) -> int:
    """Divide two integers and round half away from zero: the project's one rounding rule."""
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    if numerator >= 0:
        return (numerator + denominator // 2) // denominator
    return -((-numerator + denominator // 2) // denominator)


def to_int(value: float) -> int:
    """Round a float (e.g. a computed speed-based travel time) to the nearest integer, half up."""
    if not math.isfinite(value):
        raise ValueError(f"cannot round a non-finite value {value!r}")
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def ms_to_s(ms: int) -> int:
    """Milliseconds to whole seconds by the one rounding rule."""
    return round_half_up(ms, SECOND_MS)


def cm_to_m(cm: int) -> int:
    """Centimetres to whole metres by the one rounding rule."""
    return round_half_up(cm, METRE_CM)


def parse_clock(text: str, *, day_start_s: int = 12 * 3600) -> int:
    """Parse ``HH:MM`` or ``HH:MM:SS`` into seconds of the service day.

    Times before ``day_start_s`` (noon by default) belong to the morning after, so ``"01:30"``
    is ``25:30`` of the service day that started the evening before. ``"25:30"`` is accepted as is.
    """
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(f"time {text!r} is not HH:MM or HH:MM:SS")
    h, m = int(parts[0]), int(parts[1])
    s = int(parts[2]) if len(parts) == 3 else 0
    if m >= 60 or s >= 60 or h >= 48:
        raise ValueError(f"time {text!r} is out of range (hours < 48, minutes and seconds < 60)")
    total = h * 3600 + m * 60 + s
    if total < day_start_s:
        total += DAY_S
    return total


def format_clock(seconds: int) -> str:
    """Service-day seconds as wall-clock ``HH:MM:SS`` (25:30:00 prints as 01:30:00)."""
    s = seconds % DAY_S
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def check_clocks(obj: object, *names: str) -> None:
    """Check that the named attributes of ``obj`` are clock times (see :func:`parse_clock`);
    a ValueError starts with the attribute's name, as model validators report a field."""
    for name in names:
        try:
            parse_clock(getattr(obj, name))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
