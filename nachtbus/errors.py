"""One tree of typed errors.

Every error names what was wrong (``field``) and the rule it broke, so that the CLI can print one
line and the API can map it to an HTTP status with a machine-readable ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class NachtbusError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

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


def located(error: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
    """The location and message of one pydantic error, for a message that names the field.

    A rule checked on a whole model says which field it is about by starting its message with
    ``"<field>: "``; that field is moved from the message to the location.
    """
    loc = tuple(error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    head, _, rest = msg.partition(":")
    if rest and head.strip().isidentifier():
        loc, msg = (*loc, head.strip()), rest.strip()
    return loc, msg
