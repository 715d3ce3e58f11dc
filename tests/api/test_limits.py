"""What keeps one caller from hurting the others, and the idempotency races, with a real store
and a real HTTP server for the concurrent cases."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.limits import KeyRate
from dispatch import redis_codec
from nachtbus.clock import ManualClock
from nachtbus.errors import ConfigError, RateLimited
from nachtbus.settings import Settings
from routing.world import RoadWorld
from tests.api.conftest import (
    DISPATCHER,
    OTHER_APP,
    RIDER,
    TEN_PM,
    Api,
    driver,
    open_api,
    serving,
)
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION


def _api(world: RoadWorld, tmp_path: Path, **extra: Any) -> Api:
    return open_api(world, tmp_path / "data", ManualClock(TEN_PM), **extra)


@pytest.fixture()
def api(town_world: RoadWorld, tmp_path: Path) -> Iterator[Api]:
    service = _api(town_world, tmp_path, rate_per_key_per_s=5.0, rate_burst=10,
                   max_pending_per_app=2, max_body_bytes=4096)  # fmt: skip
    with service.client:
        yield service
    service.runtime.close()


def _payload(a: tuple[float, float], b: tuple[float, float]) -> dict[str, object]:
    return {"from": {"lat": a[0], "lon": a[1]}, "to": {"lat": b[0], "lon": b[1]}}


def test_a_body_over_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    big = json.dumps({**_payload(MARKT, AMPEN), "customerId": "x" * 10_000})
    r = api.client.post("/v1/planning/inquiries", content=big, headers=RIDER)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 1000

    headers = {**RIDER, "Content-Type": "application/json"}
    r = api.client.post("/v1/planning/inquiries", content=chunks(), headers=headers)
    assert r.status_code == 413


def test_a_flood_from_one_key_gets_429s_and_another_key_is_served(api: Api) -> None:
    """Burst 10, 5 a second: quick inquiries from one app soon get a 429 with Retry-After,
    answered a second late (its connection is held, no thread is); the other app, meanwhile,
    is answered at once."""
    codes = []
    for _ in range(40):
        t0 = time.monotonic()
        r = api.client.post("/v1/planning/inquiries", json=_payload(MARKT, AMPEN), headers=RIDER)
        codes.append(r.status_code)
        if r.status_code == 429:
            break
    assert codes[-1] == 429 and codes.count(200) >= 10, codes
    assert time.monotonic() - t0 >= 0.9  # the refusal came late
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["code"] == "rate_limited" and r.json()["field"] == "X-Api-Key"
    other = api.client.post(
        "/v1/planning/inquiries", json=_payload(MARKT, AMPEN), headers=OTHER_APP
    )
    assert other.status_code == 200


def test_a_key_bucket_allows_its_burst_then_its_rate() -> None:
    rate = KeyRate(rate_per_s=2.0, burst=3)
    for _ in range(3):
        rate.take("k")
    with pytest.raises(RateLimited) as err:
        rate.take("k")
    assert err.value.retry_after_s == 1
    rate.take("other")  # another key has its own bucket
    time.sleep(0.55)
    rate.take("k")  # half a second later one token is back


def test_one_app_cannot_hold_the_seats_of_the_others(api: Api) -> None:
    """With at most 2 PENDING bookings per app, a third is a 429 too_many_pending; committing
    one frees a place; another app still books."""
    trips = [(MARKT, AMPEN), (STATION, OSTOENNEN), (AMPEN, MARKT)]
    offers = [api.offer_id(a, b) for a, b in trips]
    held = [api.client.post("/v1/bookings", json={"offerId": o}, headers=RIDER) for o in offers[:2]]
    assert all(r.status_code == 201 for r in held)
    third = api.client.post("/v1/bookings", json={"offerId": offers[2]}, headers=RIDER)
    assert third.status_code == 429 and third.json()["code"] == "too_many_pending"
    bid = held[0].json()["id"]
    r = api.client.post(f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER)
    assert r.status_code == 200
    again = api.client.post("/v1/bookings", json={"offerId": offers[2]}, headers=RIDER)
    assert again.status_code == 201


def test_offers_and_idempotency_records_are_compact(api: Api) -> None:
    """An offer is kept without its plan and an answer compressed: both well under 3 KB."""
    for a, b in [(MARKT, AMPEN), (STATION, OSTOENNEN), (AMPEN, MARKT)]:
        api.booked(a, b)
    oid = api.offer_id(MARKT, OSTOENNEN)
    raw = api.store.r.get(api.store._k(f"offer:{oid}"))
    assert raw is not None and len(raw) < 3000, len(raw)
    offer = api.store.get_offer(oid)
    assert offer is not None and offer.plan.stops == ()
    assert redis_codec.offer_from(json.loads(raw)).offer_id == oid
    bus = "bus-1"
    r = api.client.post(
        f"/v1/vehicles/{bus}/events", json={"type": "POSITION", "lat": MARKT[0], "lon": MARKT[1]},
        headers={**driver(bus), "Idempotency-Key": "pos-1"},
    )  # fmt: skip
    assert r.status_code == 200
    kept = [k for k in api.store.r.keys(api.store._k("idem:*"))]
    assert kept and all(len(api.store.r.get(k)) < 3000 for k in kept)
    answer = [k for k in kept if str(k).endswith(":pos-1")]
    assert len(answer) == 1, kept
    assert 0 < api.store.r.ttl(answer[0]) <= 2 * 3600  # a driver's answer is kept 2 h


def test_keys_in_two_roles_or_for_unknown_buses_stop_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="in rider_app_keys and in dispatcher_keys"):
        Settings(
            data_dir=tmp_path, rider_app_keys={"k1": "app"}, dispatcher_keys=["k1"]
        ).check_keys()
    with pytest.raises(ConfigError, match="bus-9"):
        Settings(data_dir=tmp_path, buses=3, driver_keys={"kd": "bus-9"}).check_keys()


@pytest.fixture()
def http(town_world: RoadWorld, tmp_path: Path) -> Iterator[tuple[Api, str]]:
    service = _api(town_world, tmp_path, api_threads=4)
    with service.client, serving(service.client.app) as url:
        yield service, url
    service.runtime.close()


Call = tuple[str, str, dict[str, object], dict[str, str]]


def _together(calls: list[Call]) -> list[httpx.Response]:
    """Send the requests at the same moment from threads."""
    barrier = threading.Barrier(len(calls))
    out: list[httpx.Response | None] = [None] * len(calls)

    def go(i: int) -> None:
        method, url, body, headers = calls[i]
        with httpx.Client(timeout=30) as c:
            barrier.wait()
            out[i] = c.request(method, url, json=body, headers=headers)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


@pytest.mark.parametrize("attempt", range(3))
def test_one_key_sent_with_commit_and_cancel_at_once_has_one_effect(http, attempt: int) -> None:
    """The same Idempotency-Key with a COMMIT and a CANCEL body at the same moment: one is
    done, the other is refused as another body (422), and a later repeat of the first replays
    its answer."""
    api, url = http
    oid = api.offer_id(MARKT, AMPEN)
    bid = api.client.post("/v1/bookings", json={"offerId": oid}, headers=RIDER).json()["id"]
    key = {**RIDER, "Idempotency-Key": f"k-{attempt}"}
    events = f"{url}/v1/bookings/{bid}/events"
    a, b = _together([("POST", events, {"operation": "COMMIT"}, key),
                      ("POST", events, {"operation": "CANCEL"}, key)])  # fmt: skip
    assert sorted([a.status_code, b.status_code]) == [200, 422]
    done = a if a.status_code == 200 else b
    state = api.client.get(f"/v1/bookings/{bid}", headers=RIDER).json()["state"]
    assert state == done.json()["state"] and state in ("CONFIRMED", "CANCELLED")
    body = {"operation": "COMMIT"} if state == "CONFIRMED" else {"operation": "CANCEL"}
    replay = httpx.post(events, json=body, headers=key)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == done.json()


def test_concurrent_retries_of_one_driver_event_answer_the_same(http) -> None:
    """Three copies of one BOARDED report at once: the rider boards once, all three answer
    200 with the same plan, and later replays keep answering 200."""
    api, url = http
    b = api.booked(MARKT, AMPEN)
    bus = b["vehicle"]["vehicleId"]
    arrived = api.vehicle_event(bus, type="ARRIVED", bookingId=b["id"], stop="pickup")
    assert arrived.status_code == 200
    headers = {**driver(bus), "Idempotency-Key": "board-once"}
    event = {"type": "BOARDED", "bookingId": b["id"]}
    answers = _together([("POST", f"{url}/v1/vehicles/{bus}/events", event, headers)] * 3)
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert len({r.text for r in answers}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in answers) == 2
    later = httpx.post(f"{url}/v1/vehicles/{bus}/events", json=event, headers=headers)
    assert later.status_code == 200 and later.text == answers[0].text
    state = api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()["state"]
    assert state == "STARTED"


def test_a_no_show_hours_before_the_window_is_refused(api: Api) -> None:
    """A pre-booking for 02:00: a NO_SHOW at 22:00 is a 409, with or without ARRIVED, and the
    rider is not charged a no-show."""
    b = api.booked(MARKT, AMPEN, departureTime="2026-11-21T02:00:00+01:00")
    bus = b["vehicle"]["vehicleId"]
    r = api.vehicle_event(bus, type="NO_SHOW", bookingId=b["id"])
    assert r.status_code == 409 and r.json()["code"] == "not_arrived"
    arrived = api.vehicle_event(bus, type="ARRIVED", bookingId=b["id"], stop="pickup")
    assert arrived.status_code == 200
    r = api.vehicle_event(bus, type="NO_SHOW", bookingId=b["id"])
    assert r.status_code == 409 and r.json()["code"] == "too_early"
    assert api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()["state"] == "CONFIRMED"


def test_the_embedded_store_can_only_evict_what_expires(api: Api) -> None:
    """The embedded server has a memory ceiling whose policy evicts only keys with a time to
    live (offers, idempotency records); bookings, plans, the ledger and a dispatcher's pause
    have none."""
    config = api.store.r.config_get("maxmemory*")
    assert config["maxmemory-policy"] == "volatile-lru" and int(config["maxmemory"]) > 0
    b = api.booked(MARKT, AMPEN)
    assert api.store.r.ttl(api.store._k("bookings")) == -1  # never expires, never evicted
    assert api.store.r.ttl(api.store._k("journal:ledger")) == -1
    assert b["state"] == "CONFIRMED"
    offer = api.inquire(MARKT, AMPEN).json()["options"][0]["offerId"]
    assert api.store.r.ttl(api.store._k(f"offer:{offer}")) > 0  # an offer may be evicted
    r = api.client.post(
        "/v1/fleet/pauses", json={"district": "*", "reason": "black ice"}, headers=DISPATCHER
    )
    assert r.status_code == 200
    assert api.store.r.ttl(api.store._k("idem:pauses")) == -1  # a pause may not


@pytest.mark.parametrize("year", ["0001", "9999"])
def test_a_time_years_away_is_a_422_naming_the_field(api: Api, year: str) -> None:
    r = api.inquire(MARKT, AMPEN, departureTime=f"{year}-11-20T23:00:00+01:00")
    assert r.status_code == 422 and r.json()["field"] == "departureTime", r.text


def test_two_processes_on_one_store_share_each_keys_rate(town_world: RoadWorld, tmp_path) -> None:
    """Two API processes on one store (as the workers of ``serve --workers 2``), with
    rate_shared: a key sending to both alternately gets its burst once, not twice; the
    refusal comes from the shared bucket while the process's own still has tokens."""
    extra = {"rate_per_key_per_s": 0.2, "rate_burst": 6, "rate_shared": True}
    a = _api(town_world, tmp_path, **extra)
    b = _api(town_world, tmp_path, **extra)  # a client of a's embedded server
    assert b.runtime.service.store.conn.server is None  # type: ignore[attr-defined]
    with a.client, b.client:
        codes = []
        for i in range(12):
            r = (a, b)[i % 2].client.get("/v1/bookings", headers=RIDER)
            codes.append(r.status_code)
            if r.status_code == 429:
                break
        assert codes[-1] == 429 and 6 <= codes.count(200) <= 7, codes
        assert r.json()["field"] == "X-Api-Key" and int(r.headers["Retry-After"]) >= 1
        assert b.client.get("/v1/bookings", headers=OTHER_APP).status_code == 200
        before = set(a.store.r.keys("nachtbus:soest:rate:*"))
        assert len(before) == 2  # the two apps' buckets
        for _ in range(3):  # unknown keys: 401, and no store call, no bucket of theirs
            r = a.client.get("/v1/bookings", headers={"X-Api-Key": uuid.uuid4().hex})
            assert r.status_code == 401
        assert set(a.store.r.keys("nachtbus:soest:rate:*")) == before
    b.runtime.close()
    a.runtime.close()


def test_shared_buckets_count_in_redis_and_let_through_when_it_is_gone(tmp_path) -> None:
    import asyncio

    from dispatch.redis_store import SharedBuckets, connect

    conn = connect(None, tmp_path / "redis")
    try:
        shared = SharedBuckets(conn.url, "nachtbus:test:rate:")

        async def spend() -> list[float | None]:
            return [await shared.take(k, 1.0, 3) for k in ("k", "k", "k", "k", "other")]

        got = asyncio.run(spend())
        assert got[:3] == [None, None, None] and got[3] is not None and got[3] < 1
        assert got[4] is None  # another key, its own bucket
        ttl = conn.client.ttl("nachtbus:test:rate:k")
        assert 0 < ttl <= 4  # a quiet key's bucket goes away (it would be full again)
    finally:
        conn.close()
    gone = SharedBuckets(f"unix://{tmp_path}/no-such.sock", "nachtbus:test:rate:")
    assert asyncio.run(gone.take("k", 1.0, 3)) is None
