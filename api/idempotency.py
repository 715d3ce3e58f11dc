"""Idempotent changes: the same ``Idempotency-Key`` gets the same answer, once done.

The first answer to a key (success or a 4xx) is kept in the store for a day, with a fingerprint
of the request body; a repeat gets that answer again (header ``Idempotent-Replayed: true``)
without doing anything twice. The same key with another body is refused (422). A 503 (busy) is
not kept, so the client's retry does the work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.auth import Principal
from api.errors import body, to_response
from dispatch.store import StateStore
from nachtbus.errors import NachtbusError

KEEP_S = 24 * 3600


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
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()
    kept = store.recall(scope)
    if kept is not None:
        record = json.loads(kept)
        if record["fingerprint"] != digest:
            return JSONResponse(
                body(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with another request body",
                    "Idempotency-Key",
                ),
                status_code=422,
            )
        return JSONResponse(
            record["body"], status_code=record["status"], headers={"Idempotent-Replayed": "true"}
        )
    response = _answer(run)
    if response.status_code != 503:
        record = {
            "fingerprint": digest,
            "status": response.status_code,
            "body": json.loads(bytes(response.body)),
        }
        store.remember(scope, json.dumps(record), KEEP_S)
    return response
