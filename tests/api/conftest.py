"""A running API over a real road network, a real (embedded) Redis and a hand-moved clock.

Every API test runs on Testdorf, the synthetic town of tests/helpers.py (no ../shared needed),
and again on the real Soest network when ../shared is there (those runs are marked ``soest``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import Runtime, build_runtime, create_app
from dispatch.redis_store import RedisStore, connect
from nachtbus.clock import ManualClock
from nachtbus.settings import Settings
from routing.world import RoadWorld
from tests.helpers import free_port

RIDER = {"X-Api-Key": "dev-rider-app-key"}
OTHER_APP = {"X-Api-Key": "other-app-key"}
DISPATCHER = {"X-Api-Key": "dev-dispatcher-key"}
TEN_PM = 22 * 3600


def evening_s(iso: str) -> int:
    """An answer's ISO time of this evening (before midnight) as the seconds of the service
    day, the manual clock's unit."""
    t = datetime.fromisoformat(iso)
    return t.hour * 3600 + t.minute * 60 + t.second


def driver(vehicle_id: str) -> dict[str, str]:
    return {"X-Api-Key": f"dev-driver-{vehicle_id}"}


def make_settings(data_dir: Path, **extra: object) -> Settings:
    fields: dict[str, object] = {
        "data_dir": data_dir,
        "buses": 3,
        "reopt_interval_s": 0,
        "rider_app_keys": {"dev-rider-app-key": "transit-app", "other-app-key": "other-app"},
    }
    return Settings(**{**fields, **extra})  # type: ignore[arg-type]


@dataclass
class Api:
    """One service instance: its HTTP client, clock, store and runtime."""

    client: TestClient
    clock: ManualClock
    runtime: Runtime
    store: RedisStore

    def inquire(self, origin: tuple[float, float], dest: tuple[float, float], **body: object):
        payload = {
            "from": {"lat": origin[0], "lon": origin[1]},
            "to": {"lat": dest[0], "lon": dest[1]},
            **body,
        }
        return self.client.post("/v1/planning/inquiries", json=payload, headers=RIDER)

    def offer_id(
        self, origin: tuple[float, float], dest: tuple[float, float], **body: object
    ) -> str:
        r = self.inquire(origin, dest, **body)
        assert r.status_code == 200, r.text
        options = r.json()["options"]
        assert options, r.json()
        return str(options[0]["offerId"])

    def booked(
        self, origin: tuple[float, float], dest: tuple[float, float], **body: object
    ) -> dict:
        """Inquire, book and commit: the CONFIRMED booking."""
        r = self.client.post(
            "/v1/bookings", json={"offerId": self.offer_id(origin, dest, **body)}, headers=RIDER
        )
        assert r.status_code == 201, r.text
        bid = r.json()["id"]
        r = self.client.post(
            f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def at_stop(self, vehicle_id: str, booking_id: str, stop: str):
        """The driver reports ARRIVED at the stop and then BOARDED or ALIGHTED."""
        r = self.vehicle_event(vehicle_id, type="ARRIVED", bookingId=booking_id, stop=stop)
        assert r.status_code == 200, r.text
        kind = "BOARDED" if stop == "pickup" else "ALIGHTED"
        return self.vehicle_event(vehicle_id, type=kind, bookingId=booking_id)

    def vehicle_event(self, vehicle_id: str, **body: object):
        return self.client.post(
            f"/v1/vehicles/{vehicle_id}/events", json=body, headers=driver(vehicle_id)
        )


def open_api(
    world: RoadWorld,
    data_dir: Path,
    clock: ManualClock,
    *,
    timeout_s: float = 2.0,
    **settings_extra: object,
) -> Api:
    """The service on the store under ``data_dir`` (what is stored there is kept), with the
    shipped rules; but the rescue before "no" stops on its step limit alone, so that a
    test's night plays the same however busy the machine (the live 5 ms cap would not)."""
    if "policy_file" not in settings_extra:
        data_dir.mkdir(parents=True, exist_ok=True)
        policy = data_dir / "test-policy.toml"
        policy.write_text("rescue_time_ms = 0\n", encoding="utf-8")
        settings_extra["policy_file"] = policy
    settings = make_settings(data_dir, **settings_extra)
    conn = connect(None, data_dir, timeout_s=timeout_s)
    store = RedisStore(conn, f"soest:{clock.service_date().isoformat()}")
    rt = build_runtime(settings, world, clock=clock, store=store)
    client = TestClient(create_app(settings, world, rt))
    return Api(client, clock, rt, store)


WORLDS = ["town", pytest.param("soest", marks=pytest.mark.soest)]


@pytest.fixture(params=WORLDS)
def world(request: pytest.FixtureRequest) -> RoadWorld:
    """The road network of an API test: Testdorf, then the real Soest network."""
    found: RoadWorld = request.getfixturevalue(f"{request.param}_world")
    return found


@pytest.fixture(params=WORLDS)
def sources(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings (environment) that point ``nachtbus serve`` at the same two networks."""
    found: dict[str, str] = request.getfixturevalue(f"{request.param}_sources")
    return found


@pytest.fixture()
def api(world: RoadWorld, tmp_path: Path) -> Iterator[Api]:
    clock = ManualClock(TEN_PM)
    service = open_api(world, tmp_path / "data", clock)
    with service.client:
        yield service
    service.runtime.close()  # the embedded store stops with the test


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served over real HTTP on a free port, in a thread; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture()
def served(api: Api) -> Iterator[str]:
    """The test's API served over real HTTP on a free port (the page needs a real server)."""
    with serving(api.client.app) as url:
        yield url
