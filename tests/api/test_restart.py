"""A restart, or a crash of the service and its Redis, loses no confirmed booking."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nachtbus.clock import ManualClock
from nachtbus.procs import parent_env, wait_until_healthy
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, RIDER, TEN_PM, driver, open_api
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION, free_port


def test_restart_in_the_middle_keeps_and_serves_every_booking(
    world: RoadWorld, tmp_path: Path
) -> None:
    """Bookings (one rider on board) survive a shutdown of service and store; then served."""
    clock = ManualClock(TEN_PM)
    first = open_api(world, tmp_path / "data", clock)
    with first.client:
        a = first.booked(MARKT, OSTOENNEN)
        b = first.booked(STATION, AMPEN)
        bus_a = a["vehicle"]["vehicleId"]
        clock.advance(300)
        assert first.at_stop(bus_a, a["id"], "pickup").status_code == 200
        plans = {
            v: first.client.get(f"/v1/vehicles/{v}/plan", headers=driver(v)).json()["stops"]
            for v in ("bus-1", "bus-2", "bus-3")
        }
    first.runtime.close()  # the service stops, and with it the store; only its AOF remains
    assert first.store.conn.server is None

    clock.advance(60)
    second = open_api(world, tmp_path / "data", clock)
    with second.client:
        got_a = second.client.get(f"/v1/bookings/{a['id']}", headers=RIDER).json()
        got_b = second.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()
        assert got_a["state"] == "STARTED" and got_b["state"] == "CONFIRMED"
        assert got_b["pickup"]["windowEnd"] == b["pickup"]["windowEnd"]
        for v, stops in plans.items():
            now = second.client.get(f"/v1/vehicles/{v}/plan", headers=driver(v)).json()["stops"]
            assert [(s["bookingId"], s["type"]) for s in now] == [
                (s["bookingId"], s["type"]) for s in stops
            ]
        clock.advance(600)
        assert second.at_stop(bus_a, a["id"], "dropoff").status_code == 200
        bus_b = got_b["vehicle"]["vehicleId"]
        assert second.at_stop(bus_b, b["id"], "pickup").status_code == 200
        clock.advance(600)
        assert second.at_stop(bus_b, b["id"], "dropoff").status_code == 200
        states = {
            x["id"]: x["state"] for x in second.client.get("/v1/bookings", headers=RIDER).json()
        }
        assert states == {a["id"]: "FINISHED", b["id"]: "FINISHED"}


def test_a_restart_with_more_buses_puts_them_on_shift_tonight(
    world: RoadWorld, tmp_path: Path
) -> None:
    """Busier than planned: restarted at 23:00 with five buses instead of three, tonight's
    fleet gets bus-4 and bus-5 at the depot at once (event vehicle.joined), their drivers'
    keys work and they take new trips; the booked riders keep their buses. Restarted with
    two buses again, bus-3 keeps its riders and its plan."""
    clock = ManualClock(TEN_PM)
    first = open_api(world, tmp_path / "data", clock)
    with first.client:
        booked = [first.booked(MARKT, OSTOENNEN), first.booked(STATION, AMPEN)]
    first.runtime.close()

    clock.advance(3600)
    second = open_api(world, tmp_path / "data", clock, buses=5)
    with second.client:
        fleet = second.client.get("/v1/fleet", headers=DISPATCHER).json()
        ids = [v["vehicleId"] for v in fleet["vehicles"]]
        plan = second.client.get("/v1/vehicles/bus-5/plan", headers=driver("bus-5"))
        joined = [e for e in second.store.recent_events(50) if e[1].type == "vehicle.joined"]
        for b in booked:
            got = second.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()
            assert got["vehicle"]["vehicleId"] == b["vehicle"]["vehicleId"]
        taken = {
            second.booked(MARKT, AMPEN, nrOfTravelers=6)["vehicle"]["vehicleId"] for _ in range(4)
        }  # groups of six: a bus takes one at a time
        depot = second.runtime.service.snapshot().vehicles["bus-1"].depot
        at = second.runtime.service.snapshot().states["bus-5"]
    second.runtime.close()
    assert ids == ["bus-1", "bus-2", "bus-3", "bus-4", "bus-5"]
    assert plan.status_code == 200, plan.text
    assert sorted(e[1].data["vehicle_id"] for e in joined) == ["bus-4", "bus-5"]
    assert all(e[1].at_s == TEN_PM + 3600 for e in joined)
    assert at.node == depot.node and at.at_s >= TEN_PM + 3600  # at the depot from now
    assert taken & {"bus-4", "bus-5"}  # the new buses take trips

    third = open_api(world, tmp_path / "data", clock, buses=2)  # none is dropped
    with third.client:
        kept = third.runtime.service.snapshot()
    third.runtime.close()
    assert sorted(kept.vehicles) == ["bus-1", "bus-2", "bus-3", "bus-4", "bus-5"]
    assert all(kept.bookings[b["id"]].vehicle_id == b["vehicle"]["vehicleId"] for b in booked)


def test_a_restart_with_other_buses_refits_those_whose_plans_allow_it(
    world: RoadWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The buses are swapped for smaller ones kept at the Markt in the middle of a night:
    restarted with 4 seats, 2 wheelchair places and the depot at the Markt, the buses whose
    plans fit them take them at once (event vehicle.refitted) and their way home ends there;
    the bus carrying a group of six keeps its 8 seats and its depot tonight (the log says
    why), and the group its bus and its promised times."""
    clock = ManualClock(TEN_PM)
    first = open_api(world, tmp_path / "data", clock)
    with first.client:
        group = first.booked(STATION, AMPEN, nrOfTravelers=6)
    first.runtime.close()

    clock.advance(60)
    swap = {"bus_seats": 4, "bus_wheelchair_places": 2, "depot_lat": MARKT[0],
            "depot_lon": MARKT[1]}  # fmt: skip
    with caplog.at_level("WARNING", logger="dispatch.service"):
        second = open_api(world, tmp_path / "data", clock, **swap)
    with second.client:
        state = second.runtime.service.snapshot()
        events = [e[1] for e in second.store.recent_events(50) if e[1].type == "vehicle.refitted"]
        got = second.client.get(f"/v1/bookings/{group['id']}", headers=RIDER).json()
    second.runtime.close()
    kept = group["vehicle"]["vehicleId"]
    others = sorted(set(state.vehicles) - {kept})
    assert len(others) == 2 and sorted(e.data["vehicle_id"] for e in events) == others
    assert all(e.data["before"]["seats"] == 8 and e.data["seats"] == 4 for e in events)
    markt = state.vehicles[others[0]].depot
    assert abs(markt.lat - MARKT[0]) < 0.002 and abs(markt.lon - MARKT[1]) < 0.002
    for vid in others:
        v = state.vehicles[vid]
        assert (v.seats, v.wheelchair_places, v.depot) == (4, 2, markt)
    assert (state.vehicles[kept].seats, state.vehicles[kept].wheelchair_places) == (8, 1)
    assert state.vehicles[kept].depot != markt
    assert got["vehicle"]["vehicleId"] == kept
    assert got["pickup"]["windowEnd"] == group["pickup"]["windowEnd"]
    assert got["dropoff"]["latestTime"] == group["dropoff"]["latestTime"]
    assert any(
        kept in r.getMessage() and "more riders at once than 4 seats" in r.getMessage()
        for r in caplog.records
    )


def _serve(
    data_dir: Path,
    sources: dict[str, str],
    port: int,
    workers: int = 1,
    options: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **sources,
        "NACHTBUS_DATA_DIR": str(data_dir),
        "NACHTBUS_REOPT_INTERVAL_S": "0",
        **parent_env(),  # a test run killed without its clean-up leaves no service behind
    }
    cmd = [sys.executable, "-m", "nachtbus.cli", "serve", "--port", str(port), "--clock", "22:00",
           "--workers", str(workers), *options]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _until_healthy(port, proc)
    except AssertionError:
        proc.kill()
        raise
    return proc


def _until_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the service on ``port`` answers /health; ``proc`` (the service or what
    started it) dying first, or two minutes passing, fails the test."""
    try:
        wait_until_healthy(port, proc, 120)
    except RuntimeError as exc:
        raise AssertionError(str(exc)) from None


def test_crash_of_service_and_redis_loses_no_confirmed_booking(
    sources: dict[str, str], tmp_path: Path
) -> None:
    """SIGKILL the running `nachtbus serve` and its redis-server: the booking is back after."""
    data, port = tmp_path / "data", free_port()
    proc = _serve(data, sources, port)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        inquiry = {
            "from": {"lat": MARKT[0], "lon": MARKT[1]},
            "to": {"lat": AMPEN[0], "lon": AMPEN[1]},
        }
        offer = httpx.post(f"{base}/planning/inquiries", json=inquiry, headers=RIDER).json()
        oid = offer["options"][0]["offerId"]
        bid = httpx.post(f"{base}/bookings", json={"offerId": oid}, headers=RIDER).json()["id"]
        r = httpx.post(f"{base}/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER)
        assert r.json()["state"] == "CONFIRMED"
    finally:
        redis_pid = int((data / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)  # the store dies first, without a word
        proc.send_signal(signal.SIGKILL)  # then the service
        proc.wait()
    _gone(redis_pid)

    proc = _serve(data, sources, port)
    try:
        got = httpx.get(f"{base}/bookings/{bid}", headers=RIDER)
        assert got.status_code == 200 and got.json()["state"] == "CONFIRMED"
        bus = got.json()["vehicle"]["vehicleId"]
        plan = httpx.get(f"{base}/vehicles/{bus}/plan", headers=driver(bus)).json()
        assert [s["bookingId"] for s in plan["stops"]] == [bid, bid]
        second_redis = int((data / "redis.pid").read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    _gone(second_redis)  # SIGTERM stops the service and its store: nothing is left behind


def _gone(pid: int, within_s: float = 15.0) -> None:
    """Wait until process ``pid`` no longer exists (a zombie of ours is reaped elsewhere)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} is still running")


def test_a_killed_parent_leaves_no_worker_on_the_port_and_a_restart_works(
    town_sources: dict[str, str], tmp_path: Path
) -> None:
    """`nachtbus serve --workers 2` killed with SIGKILL: its workers end with it, the port is
    free, the store stops, and serving again just works (with the booking still there)."""
    import psutil

    data, port = tmp_path / "data", free_port()
    proc = _serve(data, town_sources, port, workers=2)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        inquiry = {
            "from": {"lat": MARKT[0], "lon": MARKT[1]},
            "to": {"lat": AMPEN[0], "lon": AMPEN[1]},
        }
        oid = httpx.post(f"{base}/planning/inquiries", json=inquiry, headers=RIDER).json()[
            "options"
        ][0]["offerId"]
        bid = httpx.post(f"{base}/bookings", json={"offerId": oid}, headers=RIDER).json()["id"]
        r = httpx.post(f"{base}/bookings/{bid}/events", json={"operation": "COMMIT"}, headers=RIDER)
        assert r.json()["state"] == "CONFIRMED"
        family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(family) >= 3  # two workers and the store's keeper (with its server)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for pid in family:
        _gone(pid)
    proc = _serve(data, town_sources, port, workers=2)  # "address already in use" before
    try:
        got = httpx.get(f"{base}/bookings/{bid}", headers=RIDER)
        assert got.status_code == 200 and got.json()["state"] == "CONFIRMED"
        family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for pid in family:
        _gone(pid)


def test_the_workers_of_serve_share_each_keys_rate(
    town_sources: dict[str, str], tmp_path: Path
) -> None:
    """`nachtbus serve --workers 2`, burst 6 at 0.2 a second: a key sending on new connections
    (spread over the workers) gets its burst once, and the buckets are in the store."""
    from dispatch.redis_store import connect

    data, port = tmp_path / "data", free_port()
    limits = {"NACHTBUS_RATE_PER_KEY_PER_S": "0.2", "NACHTBUS_RATE_BURST": "6"}
    proc = _serve(data, {**town_sources, **limits}, port, workers=2)
    try:
        codes = []
        for _ in range(14):
            r = httpx.get(f"http://127.0.0.1:{port}/v1/bookings", headers=RIDER, timeout=10)
            codes.append(r.status_code)
            if r.status_code == 429:
                break
        assert codes[-1] == 429 and 6 <= codes.count(200) <= 7, codes
        conn = connect(None, data)  # a client of the server the service owns
        try:
            assert conn.server is None and conn.client.keys("nachtbus:soest:rate:*")
        finally:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_STARTER = """
import os, subprocess, sys, time
from nachtbus.procs import parent_env
cmd = [sys.executable, "-m", "nachtbus.cli", "serve", "--port", sys.argv[1], "--clock", "22:00"]
proc = subprocess.Popen(cmd, env={**os.environ, **parent_env()}, stdout=subprocess.DEVNULL)
print(proc.pid, flush=True)
time.sleep(600)
"""


def test_a_service_started_by_a_killed_starter_ends_with_its_store(
    town_sources: dict[str, str], tmp_path: Path
) -> None:
    """A test or benchmark that starts `nachtbus serve` and is itself killed (SIGKILL, a CI
    timeout: no clean-up runs) leaves neither the service nor its redis-server behind: the
    service ends with its starter (NACHTBUS_PARENT_PID, nachtbus.procs) and stops its store."""
    data, port = tmp_path / "data", free_port()
    env = {**os.environ, **town_sources, "NACHTBUS_DATA_DIR": str(data),
           "NACHTBUS_REOPT_INTERVAL_S": "0"}  # fmt: skip
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(port)], env=env, stdout=subprocess.PIPE
    )
    assert starter.stdout is not None
    serve_pid = int(starter.stdout.readline())
    try:
        _until_healthy(port, starter)
        redis_pid = int((data / "redis.pid").read_text())
        starter.kill()  # no clean-up of the starter's runs
        starter.wait()
        _gone(serve_pid, within_s=30)
        _gone(redis_pid, within_s=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(serve_pid, signal.SIGKILL)  # only if the test failed: never leave it
        starter.kill()
        starter.wait()


def test_every_worker_serves_the_roads_the_options_name(
    town_sources: dict[str, str], town_world: RoadWorld, tmp_path: Path
) -> None:
    """With --workers 2 the road and data options (not the environment) reach every worker:
    each answers with Testdorf's roads and area (a worker left to the defaults would serve
    Soest's), and a booking made through one is seen through the other."""
    data, port = tmp_path / "data", free_port()
    src = town_sources
    options = ("--osm-file", src["NACHTBUS_OSM_FILE"], "--service-area",
               src["NACHTBUS_SERVICE_AREA_FILE"], "--cache-dir", src["NACHTBUS_CACHE_DIR"],
               "--data-dir", str(data))  # fmt: skip
    assert not any(os.environ.get(k) for k in src)  # nothing of Testdorf in the environment
    proc = _serve(tmp_path / "unused", {}, port, workers=2, options=options)
    base = f"http://127.0.0.1:{port}"
    try:
        want = list(town_world.network.bbox)
        answers = []
        for _ in range(12):  # a new connection each time: both workers answer some
            r = httpx.get(f"{base}/v1/network", headers={"X-Api-Key": "dev-dispatcher-key"})
            assert r.status_code == 200, r.text
            answers.append(r.json()["bbox"])
        assert all(b == pytest.approx(want) for b in answers), answers
        assert (data / "redis.pid").is_file()  # the store is in the folder --data-dir names
    finally:
        proc.terminate()
        proc.wait(timeout=30)
