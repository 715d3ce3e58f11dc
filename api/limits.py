"""Limits that keep one caller from hurting the others: body size and requests per key.

- **Body size**: a request body over ``max_body_bytes`` (``NACHTBUS_MAX_BODY_BYTES``, 64 KiB;
  our largest real body is well under 2 KiB) is refused with 413 ``body_too_large`` before it
  is read whole: by its Content-Length, or, without one, as soon as the bytes received pass it.
- **Requests per key**: a token bucket per API key (``NACHTBUS_RATE_PER_KEY_PER_S``, 20 a
  second, bursts of ``NACHTBUS_RATE_BURST``, 40); past it a 429 ``rate_limited`` with
  ``Retry-After``. The buckets live in each API process, so with ``--workers N`` a key may get
  up to N times the rate. ``/health`` and the page are not counted.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

from nachtbus.errors import RateLimited

Scope = dict[str, Any]


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
        payload = json.dumps(
            {
                "code": "body_too_large",
                "message": f"the request body is over {self.max_bytes} bytes",
                "field": "body",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


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
                wait = math.ceil((1.0 - tokens) / self.rate)
                raise RateLimited(
                    f"more than {self.rate:g} requests a second from this key; slow down",
                    retry_after_s=wait,
                    field="X-Api-Key",
                )
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:  # forget keys that have been quiet (full again)
                full = [
                    k
                    for k, (t, a) in self._buckets.items()
                    if t + (now - a) * self.rate >= self.burst
                ]
                for k in full:
                    del self._buckets[k]
