"""Open dispatcher pages (event streams) cost no request handler and are capped per key."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.limits import key_id
from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import RIDER, TEN_PM, Api, open_api, serving
from tests.helpers import AMPEN, MARKT

KEYS = ["dev-dispatcher-key", "second-dispatcher-key"]


@pytest.fixture()
def api(town_world: RoadWorld, tmp_path: Path) -> Iterator[Api]:
    service = open_api(
        town_world, tmp_path / "data", ManualClock(TEN_PM), dispatcher_keys=KEYS, api_threads=2
    )
    with service.client:
        yield service
    service.runtime.close()


def _hold_stream(url: str, key: str, opened: threading.Event, stop: threading.Event,
                 seen: list[str]) -> None:  # fmt: skip
    with httpx.stream("GET", f"{url}/v1/fleet/events?wait_s=0.5", headers={"X-Api-Key": key},
                      timeout=30) as r:  # fmt: skip
        assert r.status_code == 200
        opened.set()
        for line in r.iter_lines():
            if line.startswith("event:"):
                seen.append(line)
            if stop.is_set():
                return


def test_six_open_streams_leave_health_quick_and_a_fifth_per_key_is_429(api: Api) -> None:
    """Three streams on each of two dispatcher keys, with only two handler threads: /health
    answers in well under 200 ms, a booking goes through and reaches every stream, a fifth
    stream on one key is refused with 429 and Retry-After, and closed streams free their
    slots."""
    with serving(api.client.app) as url:
        stop = threading.Event()
        opened = [threading.Event() for _ in range(6)]
        seen: list[list[str]] = [[] for _ in range(6)]
        threads = [
            threading.Thread(
                target=_hold_stream, args=(url, KEYS[i % 2], opened[i], stop, seen[i]), daemon=True
            )
            for i in range(6)
        ]
        for t in threads:
            t.start()
        assert all(e.wait(10) for e in opened)
        took = []
        for _ in range(7):
            t0 = time.perf_counter()
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
            took.append(time.perf_counter() - t0)
        assert statistics.median(took) < 0.2, took
        payload = {
            "from": {"lat": MARKT[0], "lon": MARKT[1]},
            "to": {"lat": AMPEN[0], "lon": AMPEN[1]},
        }
        r = httpx.post(f"{url}/v1/planning/inquiries", json=payload, headers=RIDER, timeout=10)
        assert r.status_code == 200 and r.json()["options"]
        # more streams on the first key: the fourth is allowed, the fifth is not
        with httpx.stream("GET", f"{url}/v1/fleet/events", headers={"X-Api-Key": KEYS[0]},
                          timeout=10) as fourth:  # fmt: skip
            assert fourth.status_code == 200
            fifth = httpx.get(f"{url}/v1/fleet/events", headers={"X-Api-Key": KEYS[0]}, timeout=10)
            assert fifth.status_code == 429 and fifth.json()["code"] == "too_many_streams"
            assert int(fifth.headers["Retry-After"]) >= 1
        # a change reaches every open stream
        too_many = {**payload, "nrOfTravelers": 9}
        r = httpx.post(f"{url}/v1/planning/inquiries", json=too_many, headers=RIDER, timeout=10)
        assert r.status_code == 422
        deadline = time.monotonic() + 10
        while not all(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all("event: request.rejected" in s for s in seen), seen
        stop.set()
        httpx.post(f"{url}/v1/planning/inquiries", json=too_many, headers=RIDER, timeout=10)
        for t in threads:
            t.join(timeout=10)
        deadline = time.monotonic() + 5
        while api.runtime.streams.open(key_id(KEYS[0])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.runtime.streams.open(key_id(KEYS[0])) == 0  # closed streams free their slots
    assert not any(t.is_alive() for t in threads)
