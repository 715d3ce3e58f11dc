"""One tree of typed errors, for every layer.

Every error names what was wrong (``field``) and the rule it broke, so that the CLI can print one
line and the API can map it to an HTTP status with a machine-readable ``code`` (the one table
is ``api/errors.py``). The tree::

    NachtbusError
      InvalidInput (also a ValueError)       bad value: type, range, format, a rule of the service
        InvalidCoordinate
      OutsideServiceArea, NoRoadNearby       a place the service cannot serve
      GraphSourceError, ConfigError          a source or settings file that cannot be used
      Unreachable                            no road path
      NotFound                               unknown booking, bus or offer
      Conflict                               the change conflicts with the state it meets
        BookingStateError, StopNotInPlan, VehicleBusy, BookingRejected, NotArrived,
        TooEarly
      Unavailable                            try again later
        Busy                                 the fleet changed too often while deciding
        StoreUnavailable                     the state store does not answer (or is full)
      RateLimited                            too much from one key: retry after a while
      AccessDenied                           the caller may not do this
        Unauthenticated                      no or unknown key
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NachtbusError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        """``code`` overrides the class's code for this one error (e.g. a rejection reason)."""
        super().__init__(message)
        self.field = field
        self.message = message
        if code:
            self.code = code

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(NachtbusError, ValueError):
    """A value does not meet its rule (type, range, format)."""

    code = "invalid_input"


class InvalidCoordinate(InvalidInput):
    """A latitude/longitude that is not a number or outside the valid range."""

    code = "invalid_coordinate"


class OutsideServiceArea(NachtbusError):
    """A point outside the service area; ``distance_m`` says how far outside it lies."""

    code = "outside_service_area"

    def __init__(self, message: str, *, field: str | None = None, distance_m: int = 0) -> None:
        super().__init__(message, field=field)
        self.distance_m = distance_m


class NoRoadNearby(NachtbusError):
    """No drivable road within the snapping radius of a point."""

    code = "no_road_nearby"


class GraphSourceError(NachtbusError):
    """The road network could not be read or built from its source."""

    code = "graph_source"


class ConfigError(NachtbusError):
    """A settings or profile file is malformed; the message names the file, field and rule."""

    code = "config"


class Unreachable(NachtbusError):
    """There is no road path between two nodes."""

    code = "unreachable"


class NotFound(NachtbusError):
    """Something named by id does not exist (or no longer)."""

    code = "not_found"


class UnknownBooking(NotFound):
    code = "unknown_booking"


class UnknownVehicle(NotFound):
    code = "unknown_vehicle"


class UnknownOffer(NotFound):
    """The offer was never made, or was released after it expired."""

    code = "unknown_offer"


class Conflict(NachtbusError):
    """The change is well formed but conflicts with the state it meets."""

    code = "conflict"


class BookingStateError(Conflict):
    """The booking is not in a state that allows this change (e.g. cancel after pickup)."""

    code = "booking_state"


class StopNotInPlan(Conflict):
    """A driver reported a stop that is not in the bus's plan."""

    code = "stop_not_in_plan"


class MoveRefused(Conflict):
    """A dispatcher's move of a booking to another bus would break a rule or a promise."""

    code = "move_refused"


class VehicleBusy(Conflict):
    """The bus still has riders to pick up or drop off."""

    code = "vehicle_busy"


class NotArrived(Conflict):
    """A stop's boarding, alighting or no-show reported before the bus arrived there."""

    code = "not_arrived"


class TooEarly(Conflict):
    """A report that the rules allow only later (e.g. a no-show before the documented wait)."""

    code = "too_early"


class BookingRejected(Conflict):
    """An offer could not be booked; ``code`` is the machine-readable rejection reason."""

    def __init__(self, reason: str, message: str, *, field: str | None = "offer_id") -> None:
        super().__init__(message, field=field, code=reason)
        self.reason = reason


class Unavailable(NachtbusError):
    """The service cannot answer now; the same request may succeed later."""

    code = "unavailable"


class Busy(Unavailable):
    """Too many decisions at once: the change could not be committed after several tries."""

    code = "busy"


class StoreUnavailable(Unavailable):
    """The state store does not answer (or is full): nothing was decided; retry shortly."""

    code = "store_unavailable"


class RateLimited(NachtbusError):
    """Too many requests (or open streams, or held seats) for one key: retry after a while."""

    code = "rate_limited"

    def __init__(
        self, message: str, *, retry_after_s: int = 1, field: str | None = None, code: str = ""
    ) -> None:
        super().__init__(message, field=field, code=code)
        self.retry_after_s = max(1, retry_after_s)


class AccessDenied(NachtbusError):
    """The caller's role may not do this, or the booking or bus is not the caller's."""

    code = "forbidden"


class Unauthenticated(AccessDenied):
    """No key, or a key that is not configured."""

    code = "unauthenticated"


class RejectedInput(InvalidInput):
    """A request the service does not do (outside the hours, too many travellers, ...): bad
    input, with the rejection reason as its ``code``."""

    def __init__(self, reason: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field, code=reason)


def located(error: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
    """The location and message of one pydantic error, for a message that names the field.

    A rule checked on a whole model says which field it is about by starting its message with
    ``"<field>: "`` (or ``"<section>.<field>: "``); that field is moved from the message to
    the location.
    """
    loc = tuple(error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    head, _, rest = msg.partition(":")
    parts = head.strip().split(".")
    if rest and all(part.isidentifier() for part in parts):  # "field" or "section.field"
        loc, msg = (*loc, *parts), rest.strip()
    return loc, msg
