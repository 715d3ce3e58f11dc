"""The store goes away and comes back: answers stay quick and in one shape, nothing is lost."""

from __future__ import annotations

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
