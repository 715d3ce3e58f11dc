"""Limits that keep one caller from hurting the others: body size and requests per key.

- **Body size**: a request body over ``max_body_bytes`` (``NACHTBUS_MAX_BODY_BYTES``, 64 KiB;
  our largest real body is well under 2 KiB) is refused with 413 ``body_too_large`` before it
  is read whole: by its Content-Length, or, without one, as soon as the bytes received pass it.
- **Requests per key**: a token bucket per API key (``NACHTBUS_RATE_PER_KEY_PER_S``, 20 a
  second, bursts of ``NACHTBUS_RATE_BURST``, 40); past it a 429 ``rate_limited`` with
  ``Retry-After``. Each API process keeps its own buckets (a flood is refused there, at no
  cost to the store); with ``NACHTBUS_RATE_SHARED`` (set for the workers of ``--workers N``)
  a request that passes is also spent from the key's bucket in the store
  (``dispatch.redis_store.SharedBuckets``), so all processes together allow the rate once,
  not N times. ``/health`` and the page are not counted. The limit is checked before
  any routing, and a 429 is answered after ``TARPIT_S`` (1 s) without holding any thread, so a
  flooding client's connections come back at most once a second each.
- **Open event streams per key**: at most ``NACHTBUS_MAX_STREAMS_PER_KEY`` (4); one more is a
  429 ``too_many_streams`` (:class:`StreamSlots`).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from typing import Any, Protocol

import anyio

from nachtbus.errors import RateLimited

Scope = dict[str, Any]
TARPIT_S = 1.0  # a 429 is answered after this long


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        refused = False  # past the limit: the app is told the client left, its answer dropped

        async def counted() -> Any:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Any) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not refused:
                raise
        if refused:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        payload = {
            "code": "body_too_large",
            "message": f"the request body is over {self.max_bytes} bytes",
            "field": "body",
        }
        await _send_json(send, 413, payload, [(b"connection", b"close")])


class KeyLimit:
    """ASGI middleware: the per-key rate limit, checked before any routing, body parsing or
    thread hand-off, so that a refused request costs the service next to nothing. The key is
    the ``X-Api-Key`` header (or the ``api_key`` query parameter of the event stream); requests
    without a key go on (and are refused by the routes with 401)."""

    EXEMPT = ("/health", "/dispatcher", "/docs", "/openapi.json", "/redoc")

    def __init__(
        self,
        app: Any,
        rate: KeyRate,
        shared: SharedRate | None = None,
        known: frozenset[str] = frozenset(),
    ) -> None:
        """``shared``: the store's buckets, asked only for the ``known`` keys' fingerprints
        (an unknown key is refused with 401 anyway, and must not cost a store call)."""
        self.app, self.rate, self.shared, self.known = app, rate, shared, known

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.EXEMPT):
            key = _api_key(scope)
            if key is not None:
                try:
                    kid = key_id(key)
                    self.rate.take(kid)
                    if self.shared is not None and kid in self.known:
                        left = await self.shared.take(kid, self.rate.rate, self.rate.burst)
                        if left is not None:
                            raise self.rate.refusal(left)
                except RateLimited as exc:
                    # Answer the refusal a moment late: a flooding client's connection is then
                    # held (at no cost to the service: nothing runs meanwhile) instead of
                    # coming straight back, so its flood slows to a trickle.
                    await anyio.sleep(TARPIT_S)
                    await _send_json(send, 429, {
                        "code": exc.code, "message": exc.message, "field": exc.field,
                    }, [(b"retry-after", str(exc.retry_after_s).encode())])  # fmt: skip
                    return
        await self.app(scope, receive, send)


def key_id(key: str | bytes) -> str:
    """A short fingerprint of an API key, to count and log by without keeping the key: the
    rate buckets, the stream slots and ``Principal.key_id`` all use it."""
    raw = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(raw).hexdigest()[:12]


def _api_key(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers") or ():
        if name == b"x-api-key":
            return bytes(value)
    query = scope.get("query_string") or b""
    if b"api_key=" in query:
        for part in query.split(b"&"):
            if part.startswith(b"api_key="):
                return part[8:]
    return None


async def _send_json(
    send: Any, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


class KeyRate:
    """A token bucket per key: ``rate_per_s`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of ``key``; RateLimited (with when to retry) if there is none."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise self.refusal(tokens)
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget keys that have been quiet (full again)
                full = [
                    k
                    for k, (t, a) in self._buckets.items()
                    if t + (now - a) * self.rate >= self.burst
                ]
                for k in full:
                    del self._buckets[k]

    def refusal(self, tokens: float) -> RateLimited:
        """The 429 for a bucket holding ``tokens`` (< 1): when the next one is there."""
        return RateLimited(
            f"more than {self.rate:g} requests a second from this key; slow down",
            retry_after_s=math.ceil((1.0 - tokens) / self.rate),
            field="X-Api-Key",
        )


class SharedRate(Protocol):
    """Buckets that every API process spends from (kept in the store)."""

    async def take(self, key: str, rate_per_s: float, burst: int) -> float | None:
        """None if a token was taken (or the check could not be made), else tokens left."""
        ...


class StreamSlots:
    """Open event streams per key, at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        with self._lock:
            if self._open.get(key, 0) >= self.limit:
                raise RateLimited(
                    f"this key has {self.limit} event streams open already; close one",
                    retry_after_s=5,
                    code="too_many_streams",
                )
            self._open[key] = self._open.get(key, 0) + 1

    def give_back(self, key: str) -> None:
        with self._lock:
            self._open[key] = self._open.get(key, 1) - 1

    def open(self, key: str) -> int:
        with self._lock:
            return self._open.get(key, 0)
