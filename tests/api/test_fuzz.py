"""The OpenAPI spec fuzzed with schemathesis: no 5xx for any generated input."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.api.conftest import DISPATCHER, Api


@schemathesis.serializer("application/x-protobuf")
def _protobuf(ctx: Any, value: Any) -> bytes:
    """GTFS-Realtime bodies: the fuzzed value's bytes as they come (mostly not a valid
    FeedMessage, which must be a 422, never a 500)."""
    return value if isinstance(value, bytes) else str(value).encode()


# The event stream stays open for as long as the client listens; it is tested on its own.
SKIP = {"/v1/fleet/events", "/v1/vehicles/{vehicle_id}/stream"}
SOEST_LAT = st.floats(51.545, 51.595)
SOEST_LON = st.floats(8.03, 8.15)


def steer(case: schemathesis.Case, data: st.DataObject, known: dict[str, str]) -> None:
    """Half of the cases get real ids and points in Soest, so fuzzing reaches the dispatcher
    and not only the validation in front of it."""
    if not data.draw(st.booleans()):
        return
    for name in case.path_parameters or {}:
        if name in known:
            case.path_parameters[name] = known[name]
    body: Any = case.body
    if isinstance(body, dict):
        for end in ("from", "to"):
            if isinstance(body.get(end), dict):
                body[end]["lat"], body[end]["lon"] = data.draw(SOEST_LAT), data.draw(SOEST_LON)
        for name in ("offerId", "bookingId"):
            if name in body and name in known:
                body[name] = known[name]


KEY_INPUTS = {"x-api-key", "api_key"}


def takes_input(op: Any) -> bool:
    """Whether an operation has inputs besides the API key (which the cases all send as the
    dispatcher's): an operation without (the status, a re-optimisation round) gets a few
    cases only, since its cases differ in nothing the service reads."""
    named = [p.name.lower() for p in [*op.query, *op.headers]]
    return bool(op.path_parameters or op.body or set(named) - KEY_INPUTS)


def test_no_server_error_for_any_input(api: Api) -> None:
    """For every operation, any body, path or header schemathesis generates (valid or not)
    gets an answer below 500, on a service with a confirmed booking on the real Soest roads."""
    b = api.booked((51.5711, 8.1057), (51.5494, 8.0007))
    known = {
        "id": b["id"],
        "bookingId": b["id"],
        "vehicle_id": b["vehicle"]["vehicleId"],
        "offerId": api.offer_id((51.5781, 8.1049), (51.5530, 8.0541)),
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    statuses: set[int] = set()
    tested, few = 0, set[str]()
    for op in (r.ok() for r in schema.get_all_operations()):  # type: ignore[union-attr]
        if op.path in SKIP:
            continue
        if not takes_input(op):
            few.add(op.path)

        @given(case=op.as_strategy(), data=st.data())
        @settings(
            max_examples=5 if op.path in few else 40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def fuzz(case: schemathesis.Case, data: st.DataObject) -> None:
            steer(case, data, known)
            response = case.call(headers={**dict(case.headers or {}), **DISPATCHER})
            statuses.add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        fuzz()
        tested += 1
    assert tested >= 14  # every route of the API but the stream
    assert "/v1/fleet/reoptimise" in few and "/v1/planning/inquiries" not in few
    assert {200, 404, 409, 422} <= statuses  # the fuzzing got past validation


def test_spec_tags_are_declared_once(api: Api) -> None:
    """Each operation names each of its tags once, and every tag is one the spec describes
    (the rider routes named 'planning' and 'booking' twice, and 'keys', 'phone desk' and
    'trains and GTFS' had no description)."""
    spec = api.client.get("/openapi.json").json()
    declared = {t["name"] for t in spec["tags"]}
    assert all(t.get("description") for t in spec["tags"])
    seen: set[str] = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            tags = op.get("tags", [])
            assert tags, f"{method.upper()} {path} has no tag"
            assert len(tags) == len(set(tags)), f"{method.upper()} {path}: {tags}"
            seen.update(tags)
    assert seen <= declared, seen - declared
    assert spec["paths"]["/v1/planning/inquiries"]["post"]["tags"] == ["planning"]
