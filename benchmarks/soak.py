"""Benchmark: one simulated week through one long-running service process.

Protocol
- World: the Soest network and service area (``../shared``, or what the settings name).
- Service: the production app (``api.app``, embedded store with its keeper, 4 buses) in this
  process, driven over its HTTP interface (FastAPI's test client) by a simulated clock that
  runs from 19:30 on Wednesday 21 October 2026 for seven nights, through the night of the
  October clock change (24 to 25 October, 03:00 CEST -> 02:00 CET) and across every noon, so
  the service rolls over to each new service day by itself.
- Demand per night (seed 11 + night): ``--requests`` (default 60) riders between random points
  of the service area, asking between 20:00 and 03:30, a third of them pre-booking 20 to 90
  minutes ahead; every offer is booked and committed. Buses are driven as their drivers would:
  the next stop of any bus comes first, the clock moves to its expected time, the driver
  reports ARRIVED and BOARDED or ALIGHTED. Every simulated hour a re-optimisation round.
- Fault: in the fourth night at about 23:00 the store's redis-server is killed (SIGKILL); the
  clients retry on 503 until the service has started it again by itself.
- Old nights: the service keeps ``--keep-nights`` (default 2) past nights in the store; each
  next evening the service's archiving step (the one its background round runs once a
  service day) moves older ones to their files (``dispatch/archive.py``).
- Measured per night: requests, confirmed bookings, confirmed bookings missing or not finished
  in that night's store at its end (must be 0), 503s seen, the process's resident memory
  after the night (after a garbage collection), the nights still in the store and the
  store's used memory after the archiving step, and wall time.
- Bounds checked in the same run: 0 lost, and at the end every night's confirmed bookings
  are still found (in the store or in its archive file); memory of the last night within
  10 % (or 40 MiB) of the second night's (the first night includes start-up allocations);
  never more than keep-nights + 1 nights in the store.

Run: ``python -m benchmarks.soak [--requests N] [--nights N] [--keep-nights N] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from api.app import build_runtime, create_app, local_client
from dispatch.redis_store import RedisStore
from nachtbus.clock import ManualClock, at
from nachtbus.domain import BookingStatus, FleetState, StopType
from nachtbus.errors import StoreUnavailable
from nachtbus.settings import Settings
from routing.world import RoadWorld, world_from_settings

RIDER = {"X-Api-Key": "soak-rider-app-key"}
FIRST_NIGHT = date(2026, 10, 21)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Week:
    def __init__(self, world: RoadWorld, data_dir: Path, requests: int, keep_nights: int) -> None:
        self.world = world
        self.requests = requests
        self.confirmed: dict[date, list[str]] = {}
        tz = "Europe/Berlin"
        start = at(FIRST_NIGHT, 19 * 3600 + 1800, ZoneInfo(tz))
        self.clock = ManualClock.at_instant(start.astimezone(UTC), tz)
        self.settings = Settings(
            data_dir=data_dir,
            buses=4,
            reopt_interval_s=0,
            reopt_time_limit_s=0.5,
            rider_app_keys={RIDER["X-Api-Key"]: "soak-app"},
            rate_per_key_per_s=10_000,
            rate_burst=10_000,
            keep_nights=keep_nights,
        )
        self.rt = build_runtime(self.settings, world, clock=self.clock)
        self.client = local_client(create_app(self.settings, world, self.rt))
        self.unavailable = 0

    # ------------------------------------------------------------------ HTTP with retries
    def call(self, method: str, url: str, **kw: Any) -> Any:
        for _ in range(200):
            r = self.client.request(method, url, **kw)
            if r.status_code != 503:
                return r
            self.unavailable += 1
            time.sleep(0.05)
        raise RuntimeError(f"{url} kept answering 503")

    def driver(self, bus: str, **event: Any) -> Any:
        headers = {"X-Api-Key": f"dev-driver-{bus}", "Idempotency-Key": uuid.uuid4().hex}
        return self.call("POST", f"/v1/vehicles/{bus}/events", json=event, headers=headers)

    # ------------------------------------------------------------------ one night
    def _riders(self, rng: np.random.Generator) -> list[tuple[int, dict[str, Any]]]:
        net, area = self.world.network, self.world.area
        asks: list[tuple[int, dict[str, Any]]] = []
        while len(asks) < self.requests:
            a, b = rng.integers(net.n_nodes, size=2)
            ends = [(float(net.node_lat[x]), float(net.node_lon[x])) for x in (a, b)]
            if not all(area.contains(*p) for p in ends):
                continue
            ask_s = int(rng.integers(20 * 3600, 27 * 3600 + 1800))
            body: dict[str, Any] = {
                "from": {"lat": ends[0][0], "lon": ends[0][1]},
                "to": {"lat": ends[1][0], "lon": ends[1][1]},
            }
            if rng.random() < 1 / 3:
                body["departure_s"] = ask_s + int(rng.integers(20, 90)) * 60
            asks.append((ask_s, body))
        return sorted(asks, key=lambda x: x[0])

    def _ask(self, body: dict[str, Any], day: date) -> str | None:
        departure = body.pop("departure_s", None)
        if departure is not None:
            body["departureTime"] = at(day, departure, self.clock.tz).isoformat()
        r = self.call("POST", "/v1/planning/inquiries", json=body, headers=RIDER)
        if r.status_code != 200 or not r.json()["options"]:
            return None
        oid = r.json()["options"][0]["offerId"]
        key = {**RIDER, "Idempotency-Key": uuid.uuid4().hex}
        b = self.call("POST", "/v1/bookings", json={"offerId": oid}, headers=key)
        if b.status_code != 201:
            return None
        bid = str(b.json()["id"])
        c = self.call("POST", f"/v1/bookings/{bid}/events", json={"operation": "COMMIT"},
                      headers={**RIDER, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        return bid if c.status_code == 200 and c.json()["state"] == "CONFIRMED" else None

    def _snapshot(self) -> FleetState:
        for _ in range(200):
            try:
                return self.rt.service.snapshot()
            except StoreUnavailable:
                self.unavailable += 1
                time.sleep(0.05)
        raise RuntimeError("the store did not come back")

    def _next_stop(self) -> tuple[int, str, str, StopType] | None:
        state = self._snapshot()
        due = [
            (p.stops[0].eta_s, vid, p.stops[0].booking_id, p.stops[0].type)
            for vid, p in state.plans.items()
            if p.stops
        ]
        return min(due) if due else None

    def _serve(self, stop: tuple[int, str, str, StopType]) -> None:
        eta, bus, bid, kind = stop
        if eta > self.clock.now_s():
            self.clock.set(eta)
        self.driver(bus, type="ARRIVED", bookingId=bid, stop=kind.value)
        self.driver(bus, type="BOARDED" if kind == StopType.PICKUP else "ALIGHTED", bookingId=bid)

    def night(self, k: int, kill_store: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        day = self.clock.service_date()
        rng = np.random.default_rng(11 + k)
        asks = self._riders(rng)
        confirmed: list[str] = []
        next_reopt = 21 * 3600
        killed = not kill_store
        while asks or self._next_stop() is not None:
            stop = self._next_stop()
            t_ask = asks[0][0] if asks else None
            if t_ask is not None and (stop is None or t_ask <= stop[0]):
                self.clock.set(max(self.clock.now_s(), t_ask))
                bid = self._ask(asks.pop(0)[1], day)
                if bid:
                    confirmed.append(bid)
            else:
                assert stop is not None
                self._serve(stop)
            if not killed and self.clock.now_s() >= 23 * 3600:
                server = self._store().conn.server
                assert server is not None and server.redis_pid is not None
                os.kill(server.redis_pid, signal.SIGKILL)
                killed = True
            if self.clock.now_s() >= next_reopt:
                self.call("POST", "/v1/fleet/reoptimise",
                          headers={"X-Api-Key": "dev-dispatcher-key"})  # fmt: skip
                next_reopt += 3600
        for bus in self.settings.vehicle_ids():
            self.driver(bus, type="SHIFT_END")
        # the night's own store, read directly: every confirmed booking is there, finished
        state = self._snapshot()
        lost = [b for b in confirmed if b not in state.bookings]
        unfinished = [
            b for b in confirmed
            if b in state.bookings and state.bookings[b].status != BookingStatus.FINISHED
        ]  # fmt: skip
        # on to 19:30 of the next evening: across noon, into the next service day
        nxt = day + timedelta(days=1)
        self._advance_to(at(nxt, 19 * 3600 + 1800, self.clock.tz))
        self.confirmed[day] = confirmed
        archived = self.rt.service.archive_nights(self.settings.keep_nights)
        store = self._store()
        stored = len(store.areas_under(self.settings.area_id))
        store_mib = int(store.r.info("memory")["used_memory"]) / 2**20
        gc.collect()
        return {
            "night": str(day),
            "requests": self.requests,
            "confirmed": len(confirmed),
            "lost": len(lost),
            "unfinished": len(unfinished),
            "unavailable_503": self.unavailable,
            "rss_mib": round(_rss_mib(), 1),
            "archived": [str(d) for d in archived],
            "nights_stored": stored,
            "store_mib": round(store_mib, 2),
            "wall_s": round(time.perf_counter() - t0, 1),
            "clock_change": day == date(2026, 10, 24),
            "store_killed": kill_store,
        }

    def lost_in_the_end(self) -> int:
        """Confirmed bookings of any night not found now, in the store or the archive."""
        missing = 0
        for day, ids in self.confirmed.items():
            state = self.rt.service.record(day).load()
            missing += sum(1 for b in ids if state is None or b not in state.bookings)
        return missing

    def _store(self) -> RedisStore:
        store = self.rt.service.store
        assert isinstance(store, RedisStore)
        return store

    def _advance_to(self, moment: datetime) -> None:
        self.clock.advance(int((moment.astimezone(UTC) - self.clock.now()).total_seconds()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=60, help="riders per night (default 60)")
    ap.add_argument("--nights", type=int, default=7, help="nights (default 7)")
    ap.add_argument(
        "--keep-nights",
        type=int,
        default=2,
        help="past nights kept in the store (default 2; the service's is 14)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    world = world_from_settings(Settings())
    rows = []
    with tempfile.TemporaryDirectory(prefix="nachtbus-soak-") as tmp:
        week = Week(world, Path(tmp) / "data", args.requests, args.keep_nights)
        with week.client:
            for k in range(args.nights):
                rows.append(week.night(k, kill_store=k == 3))
                if not args.json:
                    r = rows[-1]
                    print(f"{r['night']}  confirmed {r['confirmed']:3d}  lost {r['lost']}  "
                          f"unfinished {r['unfinished']}  503s so far {r['unavailable_503']:3d}  "
                          f"RSS {r['rss_mib']:6.1f} MiB  store {r['nights_stored']} nights "
                          f"{r['store_mib']:5.2f} MiB  {r['wall_s']:5.1f} s"
                          f"{'  (clock change)' if r['clock_change'] else ''}"
                          f"{'  (store killed)' if r['store_killed'] else ''}",
                          flush=True)  # fmt: skip
        lost_end = week.lost_in_the_end()
        week.rt.close()
    lost = sum(r["lost"] for r in rows)
    most = max(r["nights_stored"] for r in rows)
    bounded = most <= args.keep_nights + 1
    base = rows[1]["rss_mib"] if len(rows) > 1 else rows[0]["rss_mib"]
    growth = rows[-1]["rss_mib"] - base
    flat = growth <= max(0.10 * base, 40.0)
    if args.json:
        print(
            json.dumps(
                {
                    "nights": rows,
                    "lost": lost,
                    "lost_in_the_end": lost_end,
                    "rss_growth_mib": growth,
                }
            )
        )
    else:
        print(f"confirmed bookings lost: {lost} (bound 0): {'met' if lost == 0 else 'NOT MET'}")
        print(
            f"confirmed bookings not found at the end (store or archive): {lost_end} "
            f"(bound 0): {'met' if lost_end == 0 else 'NOT MET'}"
        )
        print(
            f"nights in the store, at most: {most} (bound keep-nights + 1 = "
            f"{args.keep_nights + 1}): {'met' if bounded else 'NOT MET'}"
        )
        print(
            f"memory, night 2 -> {len(rows)}: {base:.1f} -> {rows[-1]['rss_mib']:.1f} MiB "
            f"({growth:+.1f} MiB; bound 10 % or 40 MiB): {'met' if flat else 'NOT MET'}"
        )
    return 0 if lost == 0 and lost_end == 0 and flat and bounded else 1


if __name__ == "__main__":
    sys.exit(main())
