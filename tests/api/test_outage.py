"""The store goes away and comes back: answers stay quick and in one shape, nothing is lost."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, TEN_PM, Api, open_api
from tests.helpers import AMPEN, MARKT

TIMEOUT_S = 0.5


@pytest.fixture()
def api(town_world: RoadWorld, tmp_path: Path) -> Iterator[Api]:
    service = open_api(town_world, tmp_path / "data", ManualClock(TEN_PM), timeout_s=TIMEOUT_S)
    with service.client:
        yield service
    service.runtime.close()


def _redis_pid(api: Api) -> int:
    server = api.store.conn.server
    assert server is not None and server.redis_pid is not None
    return server.redis_pid


def _timed(api: Api, method: str, url: str, **kw: Any) -> tuple[int, dict[str, Any], float]:
    t0 = time.monotonic()
    r = api.client.request(method, url, **kw)
    return r.status_code, r.json(), time.monotonic() - t0


def test_a_paused_store_gives_quick_503s_and_the_service_resumes(api: Api) -> None:
    """SIGSTOP of the redis-server: /health and an inquiry answer 503 store_unavailable within
    a few timeouts, not tens of seconds; after SIGCONT everything works again."""
    booking = api.booked(MARKT, AMPEN)
    pid = _redis_pid(api)
    os.kill(pid, signal.SIGSTOP)
    try:
        status, body, took = _timed(api, "GET", "/health")
        assert status == 503 and body["code"] == "store_unavailable" and took < 6 * TIMEOUT_S
        payload = {
            "from": {"lat": MARKT[0], "lon": MARKT[1]},
            "to": {"lat": AMPEN[0], "lon": AMPEN[1]},
        }
        status, body, took = _timed(
            api, "POST", "/v1/planning/inquiries", json=payload, headers=RIDER
        )
        assert status == 503 and set(body) >= {"code", "message", "field"}
        assert took < 10 * TIMEOUT_S
    finally:
        os.kill(pid, signal.SIGCONT)
    assert api.client.get("/health").status_code == 200
    got = api.client.get(f"/v1/bookings/{booking['id']}", headers=RIDER)
    assert got.status_code == 200 and got.json()["state"] == "CONFIRMED"


def test_a_killed_store_is_started_again_and_keeps_every_booking(api: Api) -> None:
    """SIGKILL of the redis-server: the next calls answer 503, then the service starts the
    embedded server again from its append-only file, without a restart of the service."""
    booking = api.booked(MARKT, AMPEN)
    pid = _redis_pid(api)
    os.kill(pid, signal.SIGKILL)
    statuses = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = api.client.get("/health")
        statuses.append(r.status_code)
        if r.status_code == 200:
            break
        assert r.json()["code"] == "store_unavailable"
        time.sleep(0.2)
    assert statuses[0] == 503 and statuses[-1] == 200, statuses
    assert _redis_pid(api) != pid
    got = api.client.get(f"/v1/bookings/{booking['id']}", headers=RIDER)
    assert got.status_code == 200 and got.json()["state"] == "CONFIRMED"
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    assert [b["id"] for b in fleet["bookings"]] == [booking["id"]]


def test_every_error_has_the_one_shape(api: Api) -> None:
    """An unknown route and a wrong method answer {code, message, field}, not {detail}."""
    r = api.client.get("/v1/no-such-thing", headers=RIDER)
    assert r.status_code == 404 and r.json()["code"] == "not_found" and "field" in r.json()
    r = api.client.delete("/v1/planning/inquiries", headers=RIDER)
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_the_log_of_a_server_that_stopped_by_itself_is_a_warning(tmp_path: Path) -> None:
    """redis-server's own log says why it stopped (a write to its file failed): the status
    names it while it is recent, with the disk to look at; an old stop or a clean
    shutdown is no warning."""
    from dispatch.redis_store import server_troubles

    log = tmp_path / "redis.log"
    log.write_text(
        "11:M 04 Dec 2026 21:00:00.000 * Ready to accept connections\n"
        "11:M 04 Dec 2026 21:37:18.794 # Short write while writing to the AOF file: "
        "(nwritten=288, expected=2046)\n"
        "11:M 04 Dec 2026 21:37:18.794 # Can't recover from AOF write error when the AOF "
        "fsync policy is 'always'. Exiting...\n"
        "12:M 04 Dec 2026 21:37:19.152 * DB loaded from append only file: 0.000 seconds\n"
        "12:M 04 Dec 2026 22:10:00.001 # User requested shutdown...\n"
        "12:M 04 Dec 2026 22:10:00.002 # Redis is now ready to exit, bye bye...\n",
        encoding="utf-8",
    )
    from datetime import datetime

    stop = datetime(2026, 12, 4, 21, 37, 18).timestamp()
    (said,) = server_troubles(tmp_path, now=stop + 60)
    assert "stopped 1 time(s) in the last 15 min" in said
    assert "Short write while writing to the AOF file" in said and "Exiting" in said
    assert f"is the disk of {tmp_path} full?" in said
    assert server_troubles(tmp_path, now=stop + 16 * 60) == []  # long ago; the shutdown is clean
    assert server_troubles(tmp_path / "elsewhere") == []  # no embedded server there


def test_a_nearly_full_disk_is_a_warning(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch import redis_store

    monkeypatch.setattr(redis_store, "DISK_LOW_BYTES", 10**18)  # every disk is "nearly full"
    warnings = api.client.get("/v1/status", headers=DISPATCHER).json()["warnings"]
    assert any("of the store's folder" in w and "MB free" in w for w in warnings), warnings


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB file system of its own (tmpfs; root only): skipped where it cannot be mounted."""
    import subprocess

    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_refuses_new_bookings_and_loses_none(
    town_world: RoadWorld, small_disk: Path
) -> None:
    """The store's disk fills up: asked again and again, the service answers 503 (the
    redis-server stops rather than keep a write it could not put in its file), the control
    room is told why, and once space is freed it books again; every booking it answered
    201, before or while the disk was full, is there."""
    service = open_api(town_world, small_disk / "data", ManualClock(TEN_PM), timeout_s=TIMEOUT_S)
    filler = small_disk / "filler"
    kept = []
    try:
        with service.client:
            kept.append(service.booked(MARKT, AMPEN)["id"])
            with filler.open("wb", buffering=0) as f, contextlib.suppress(OSError):
                for size in (65536, 4096, 1):  # fill the disk to the last byte
                    with contextlib.suppress(OSError):
                        while True:
                            f.write(b"\0" * size)
            codes = []
            for _ in range(10):  # small writes may fit the file's last page; then one fails
                body = {"from": {"lat": AMPEN[0], "lon": AMPEN[1]},
                        "to": {"lat": MARKT[0], "lon": MARKT[1]}}  # fmt: skip
                r = service.client.post("/v1/planning/inquiries", json=body, headers=RIDER)
                if r.status_code == 200:
                    oid = r.json()["options"][0]["offerId"]
                    r = service.client.post("/v1/bookings", json={"offerId": oid}, headers=RIDER)
                    if r.status_code == 201:
                        kept.append(r.json()["id"])
                codes.append(r.status_code)
                if r.status_code == 503:
                    break
            refused = r.json()
            for _ in range(40):  # while the stopped server is started again: 503 too
                status = service.client.get("/v1/status", headers=DISPATCHER).json()
                if "warnings" in status:
                    break
                time.sleep(0.25)
            filler.unlink()
            for _ in range(40):  # the service starts the stopped server again (once a second)
                after = service.client.get("/v1/bookings", headers=RIDER)
                if after.status_code == 200:
                    break
                time.sleep(0.25)
            found = {b["id"]: b["state"] for b in after.json()}
            again = service.booked(AMPEN, MARKT)
    finally:
        service.runtime.close()
    assert codes[-1] == 503 and refused["code"] in {"store_unavailable", "store_full"}, codes
    said = " ".join(status["warnings"])
    assert "stopped 1 time(s)" in said and "full?" in said, status["warnings"]
    assert all(found.get(b) in {"PENDING", "CONFIRMED"} for b in kept), (kept, found)
    assert again["state"] == "CONFIRMED"
