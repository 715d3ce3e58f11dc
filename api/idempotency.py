"""Idempotent changes: the same ``Idempotency-Key`` gets the same answer, once done.

A key is *claimed* in the store before the work starts (an atomic set-if-absent with a short
time to live), so that two requests with the same key never both do the work:

- the first does it and keeps its answer (success or a 4xx) with a fingerprint of the body;
- a concurrent or later repeat with the same body waits for that answer (up to
  ``WAIT_S``) and gets it again (header ``Idempotent-Replayed: true``); if the first is still
  at work after that, a 409 ``idempotency_in_progress`` with ``Retry-After``;
- the same key with another body is refused (422 ``idempotency_key_reused``), also while the
  first is at work.

A 503 (busy, store away) is not kept, so the client's retry does the work. Answers are kept
compressed (zlib), riders' for a day and drivers' reports for two hours (a tablet retries
within minutes).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import zlib
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Principal, Role
from api.errors import body, to_response
from dispatch.store import StateStore
from nachtbus.errors import NachtbusError

KEEP_S = 24 * 3600  # riders' changes
DRIVER_KEEP_S = 2 * 3600  # drivers' reports
CLAIM_S = 60  # a claim outlives any piece of work; a crashed worker's claim expires
WAIT_S = 10.0
POLL_S = 0.02


def _answer(run: Callable[[], tuple[int, BaseModel]]) -> JSONResponse:
    try:
        status, model = run()
    except NachtbusError as exc:
        return to_response(exc)
    return JSONResponse(model.model_dump(mode="json", by_alias=True), status_code=status)


def idempotent(
    store: StateStore,
    request: Request,
    who: Principal,
    key: str | None,
    fingerprint: str,
    run: Callable[[], tuple[int, BaseModel]],
) -> JSONResponse:
    """Run ``run`` once per (caller, route, key); repeats replay the first answer."""
    if key is None:
        return _answer(run)
    scope = f"{who.scope}:{request.method}:{request.url.path}:{key}"
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    keep_s = DRIVER_KEEP_S if who.role == Role.DRIVER else KEEP_S
    deadline = time.monotonic() + WAIT_S
    while True:
        if store.claim(scope, json.dumps({"fingerprint": digest, "state": "pending"}), CLAIM_S):
            break  # ours: do the work
        kept = store.recall(scope)
        if kept is None:
            continue  # released (a 503) or expired in between: claim again
        record = json.loads(kept)
        if record["fingerprint"] != digest:
            return _error(422, "idempotency_key_reused",
                          "this Idempotency-Key was used with another request body")  # fmt: skip
        if record["state"] == "done":
            return JSONResponse(
                _unpack(record["body"]),
                status_code=record["status"],
                headers={"Idempotent-Replayed": "true"},
            )
        if time.monotonic() > deadline:
            return _error(409, "idempotency_in_progress",
                          "a request with this Idempotency-Key is still at work; retry",
                          {"Retry-After": "1"})  # fmt: skip
        time.sleep(POLL_S)
    try:
        response = _answer(run)
    except BaseException:
        store.forget(scope)
        raise
    if response.status_code == 503:
        store.forget(scope)
        return response
    record = {
        "fingerprint": digest,
        "state": "done",
        "status": response.status_code,
        "body": _pack(bytes(response.body)),
    }
    store.remember(scope, json.dumps(record), keep_s)
    return response


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    field = "Idempotency-Key"
    return JSONResponse(body(code, message, field), status_code=status, headers=headers)


def _pack(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def _unpack(packed: str) -> object:
    return json.loads(zlib.decompress(base64.b64decode(packed)))
