"""Past service days on disk, so that Redis holds only the nights still in use.

Every service day has its own store in Redis (bookings, plans, the ledger and legs journals,
the event stream). Left there, a year of nights would fill the store's memory ceiling (a
Friday night is about 1 to 5 MB with its position reports) and from then on every booking
would be refused with ``store_full``. So once a night is ``keep_nights`` service days old, the
background round writes it to one file, ``<folder>/<date>.json.gz`` (the store's dump, see
``RedisStore.dump``), reads the file back and compares it, and only then deletes the night
from Redis (only if nothing was written to it meanwhile). A crash at any point leaves the night
in Redis, in the file, or in both: never in neither.

A past night stays readable: :class:`PastNight` answers ``load`` and ``journal`` from a dump,
as the store does, so the receipt and the ledger export work on an archived night as on a
live one. Nothing here imports redis.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from dispatch import redis_codec as codec
from nachtbus.domain import Booking, FleetState
from nachtbus.errors import NachtbusError

FORMAT = 1


class ArchiveError(NachtbusError):
    """An archive file that cannot be written or read back as it was written."""

    code = "archive"


class NightRecord(Protocol):
    """What a past night answers: its state and its journals (a store or an archived dump)."""

    def load(self) -> FleetState | None: ...

    def booking(self, booking_id: str) -> Booking | None:
        """One booking of that night (None if it has none of that id), without the rest."""
        ...

    def journal(self, name: str) -> list[dict[str, Any]]: ...


class PastNight:
    """A night read from its dump: the state and the journals, read only."""

    def __init__(self, dump: dict[str, Any]) -> None:
        self.dump = dump

    def load(self) -> FleetState:
        meta = self.dump["meta"]
        return codec.fleet_from(int(meta["version"]), int(meta["now_s"]), self.dump["records"])

    def booking(self, booking_id: str) -> Booking | None:
        record = self.dump["records"].get("bookings", {}).get(booking_id)
        return None if record is None else codec.booking_from(record)

    def journal(self, name: str) -> list[dict[str, Any]]:
        return list(self.dump["journals"].get(name, []))


class NightArchive:
    """One folder of archived nights of one service area, one gzip JSON file a night."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, day: date) -> Path:
        return self.folder / f"{day.isoformat()}.json.gz"

    def days(self) -> list[date]:
        """The archived service days, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for p in self.folder.glob("*.json.gz"):
            with contextlib.suppress(ValueError):
                found.append(date.fromisoformat(p.name.removesuffix(".json.gz")))
        return sorted(found)

    def write(self, day: date, dump: dict[str, Any]) -> Path:
        """Write the night's dump durably (a temporary file, fsynced, renamed over the old
        one, the folder fsynced), read it back and compare; :class:`ArchiveError` if the
        file does not read back as written (then the night must stay in the store)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"format": FORMAT, "service_date": day.isoformat(), **dump}
        final = self.path(day)
        fd, tmp = tempfile.mkstemp(prefix=f".{day.isoformat()}.", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                    gz.write(json.dumps(record, separators=(",", ":")).encode())
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        folder = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        if self._read(final) != record:
            raise ArchiveError(f"{final} does not read back as written")
        return final

    def read(self, day: date) -> PastNight | None:
        """The archived night, or None if it was never archived."""
        path = self.path(day)
        if not path.exists():
            return None
        record = self._read(path)
        if record.get("format") != FORMAT or record.get("service_date") != day.isoformat():
            raise ArchiveError(f"{path}: not an archived night of {day.isoformat()}")
        return PastNight(record)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            with gzip.open(path, "rb") as gz:
                data: dict[str, Any] = json.loads(gz.read())
                return data
        except (OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"{path} cannot be read: {exc}") from exc
