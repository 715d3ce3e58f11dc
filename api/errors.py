"""The one place where errors become HTTP answers: status, machine-readable code, field, rule."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nachtbus.domain import Rejection, RejectionReason
from nachtbus.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    NachtbusError,
    NoRoadNearby,
    NotFound,
    OutsideServiceArea,
    RateLimited,
    RejectedInput,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("nachtbus.api")

#: The one table from the error tree (nachtbus.errors) to HTTP; the first match wins, so a
#: class comes before its base. Anything else the engine raises on purpose is a 400.
STATUS: list[tuple[type[NachtbusError], int]] = [
    (InvalidInput, 422),
    (OutsideServiceArea, 422),
    (NoRoadNearby, 422),
    (Unauthenticated, 401),
    (AccessDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (RateLimited, 429),
]

_REASON_FIELD = {
    RejectionReason.OUTSIDE_SERVICE_HOURS: "departureTime",
    RejectionReason.PICKUP_IN_PAST: "departureTime",
    RejectionReason.BEYOND_BOOKING_HORIZON: "departureTime",
    RejectionReason.TOO_MANY_TRAVELLERS: "nrOfTravelers",
    RejectionReason.TRIP_TOO_SHORT: "to",
    RejectionReason.NO_WHEELCHAIR_VEHICLE: "wheelchairs",
}


def rejection_error(r: Rejection) -> RejectedInput:
    """A rejection caused by what was asked, as the 422 error naming the field."""
    return RejectedInput(r.reason.value, r.message, field=_REASON_FIELD.get(r.reason))


def body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field, **extra}


def status_of(exc: NachtbusError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def to_response(exc: NachtbusError) -> JSONResponse:
    """The HTTP answer for an error the engine or a route raised on purpose (a 429 and a 503
    say when to retry)."""
    headers = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    elif isinstance(exc, Unavailable):
        headers["Retry-After"] = "1"
    return JSONResponse(
        body(exc.code, exc.message, api_field(exc.field)),
        status_code=status_of(exc),
        headers=headers,
    )


# The engine names what it checks in its own words; where that is a body field of the API,
# the error names the field as the API spells it. Path parameters keep their OpenAPI names
# (``vehicle_id``), and a booking's id is the path's ``id``.
_API_FIELDS = {"offer_id": "offerId", "booking_id": "id"}


def api_field(name: str | None) -> str | None:
    """The field an engine error names, as the API request spells it."""
    return _API_FIELDS.get(name, name) if name is not None else None


#: FastAPI's HTTPException detail when the body cannot be decoded (fastapi/routing.py).
BODY_UNREADABLE = "There was an error parsing the body"


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_item(e: Any) -> dict[str, Any]:
    """One validation error as field + rule; a model check names its field as "field: rule"."""
    field, rule = _field_name(tuple(e["loc"])), str(e["msg"])
    if e["type"] == "json_invalid":
        # the location after "body" is the character where the JSON breaks, not a field
        at = e["loc"][-1] if len(e["loc"]) > 1 else None
        error = (e.get("ctx") or {}).get("error")
        field = "body"
        rule = "not valid JSON" + (f" ({error})" if error else "")
        rule += f" at character {at}" if isinstance(at, int) else ""
    elif e["type"] == "value_error":
        rule = rule.removeprefix("Value error, ")
        named, sep, rest = rule.partition(": ")
        if sep and named.isidentifier():
            field = f"{field}.{named}" if field != "body" else named
            rule = rest
    return {"field": field, "rule": rule, "type": e["type"]}


def _invalid_input(errors: list[dict[str, Any]]) -> JSONResponse:
    """The 422 for bad input: each field with its rule, the first one named."""
    first = errors[0] if errors else {"field": "body", "rule": "invalid"}
    message = "; ".join(f"{e['field']}: {e['rule']}" for e in errors)
    return JSONResponse(
        body("invalid_input", message, first["field"], errors=errors), status_code=422
    )


def install(app: FastAPI) -> None:
    """Register the handlers: engine errors, route errors and 422 validation errors."""

    async def engine_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NachtbusError)
        return to_response(exc)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _invalid_input([_validation_item(e) for e in exc.errors()])

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == BODY_UNREADABLE:
            # FastAPI's answer when reading the JSON fails other than by a syntax error
            # (nested deeper than the parser recurses, say): bad JSON like any other, named so
            rule = "not valid JSON (nested too deeply or otherwise unreadable)"
            return _invalid_input([{"field": "body", "rule": rule, "type": "json_invalid"}])
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            body(code, str(exc.detail), None), status_code=exc.status_code, headers=exc.headers
        )

    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return JSONResponse(
            body("internal_error", "an unexpected error; it was logged", None), status_code=500
        )

    app.add_exception_handler(NachtbusError, engine_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(RequestValidationError, validation_error)
