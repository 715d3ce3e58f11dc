"""Benchmark: one app floods the inquiries; does another app keep its latency?

Protocol
- Service: ``nachtbus serve`` on the real Soest graph, 1 worker, 8 buses, clock at 22:00, a
  fresh embedded store, 40 open bookings (as in ``benchmarks.api_load``), no background
  re-optimisation (its solve is not what is measured here); two rider apps,
  "flood-app" and "quiet-app", each with its own key.
- Quiet app: 5 inquiries a second for ``--duration`` s (default 15) from one client, each
  timed; p50 / p99 / max of its latencies and how many were not answered 200.
- Flood: wrk, 1 thread, 16 connections, as fast as it can, inquiries from the flood app's key.
- Cases, in one run: quiet app alone (the baseline); quiet app during the flood with the
  per-key limit off (``NACHTBUS_RATE_PER_KEY_PER_S`` a million); quiet app during the flood
  with the documented default limit (20 a second, bursts of 40).
- Bound: with the limit, the quiet app's median within 1.5 x its baseline's and its p99 under
  150 ms (the API's latency target), every one of its inquiries answered 200; the flood gets
  429s. (The flood still gets its burst of 40 and 20 a second served: that is what the p99
  pays for.)

Run: ``python -m benchmarks.fairness [--duration S] [--json]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.api_load import LUA, _free_port, _points, _seed_bookings, _start, _wrk

FLOOD_KEY, QUIET_KEY = "flood-app-key-0123456789", "quiet-app-key-0123456789"
KEYS = json.dumps({"dev-rider-app-key": "seeder", FLOOD_KEY: "flood-app", QUIET_KEY: "quiet-app"})


def _quiet(base: str, bodies: list[dict[str, Any]], duration: int) -> dict[str, Any]:
    took: list[float] = []
    slow: list[tuple[float, float]] = []  # (seconds into the run, ms) of the slowest
    failed = 0
    started = time.monotonic()
    with httpx.Client(base_url=base, headers={"X-Api-Key": QUIET_KEY}, timeout=30) as c:
        end = time.monotonic() + duration
        k = 0
        while time.monotonic() < end:
            t0 = time.perf_counter()
            r = c.post("/v1/planning/inquiries", json=bodies[k % len(bodies)])
            took.append((time.perf_counter() - t0) * 1000)
            slow.append((round(time.monotonic() - started, 1), round(took[-1], 1)))
            failed += r.status_code != 200
            k += 1
            time.sleep(max(0.0, 0.2 - (time.perf_counter() - t0)))
    took.sort()
    return {
        "requests": len(took),
        "not_200": failed,
        "p50_ms": round(statistics.median(took), 1),
        "p99_ms": round(took[min(len(took) - 1, int(0.99 * len(took)))], 1),
        "max_ms": round(took[-1], 1),
        "p95_ms": round(took[min(len(took) - 1, int(0.95 * len(took)))], 1),
        "slowest": sorted(slow, key=lambda x: -x[1])[:3],
    }


def case(name: str, limit_env: dict[str, str], flood: bool, bodies_file: Path,
         bodies: list[dict[str, Any]], points: list[tuple[float, float]],
         duration: int) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        # no background re-optimisation: its solve would stall a single worker now and then
        # whatever the flood does (see api_load for the rounds' own cost)
        env = {**limit_env, "NACHTBUS_RIDER_APP_KEYS": KEYS, "NACHTBUS_REOPT_INTERVAL_S": "0"}
        proc = _start(1, Path(tmp) / "data", port, env)
        base = f"http://127.0.0.1:{port}"
        try:
            _seed_bookings(base, points, 40)
            flood_result: dict[str, Any] = {}
            thread = None
            if flood:
                script = (LUA % bodies_file).replace("dev-rider-app-key", FLOOD_KEY)

                def run() -> None:
                    flood_result.update(_wrk(base, script, 16, duration + 2))

                thread = threading.Thread(target=run)
                thread.start()
                time.sleep(1.0)
            quiet = _quiet(base, bodies, duration)
            if thread is not None:
                thread.join()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {"case": name, "quiet": quiet, "flood": flood_result}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=int, default=15)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("fairness needs wrk: apt-get install wrk")
    from benchmarks.insertion import _world

    world = _world()
    points = _points(world, 1200, seed=11)
    trips = _points(world, 600, seed=12)
    bodies = [
        {"from": {"lat": a[0], "lon": a[1]}, "to": {"lat": b[0], "lon": b[1]}}
        for a, b in zip(trips[::2], trips[1::2], strict=True)
        if abs(a[0] - b[0]) + abs(a[1] - b[1]) >= 0.015
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("\n".join(json.dumps(b) for b in bodies) + "\n")
        bodies_file = Path(f.name)
    off = {"NACHTBUS_RATE_PER_KEY_PER_S": "1000000", "NACHTBUS_RATE_BURST": "1000000"}
    rows = [
        case("quiet app alone", off, False, bodies_file, bodies, points, args.duration),
        case("flood, no per-key limit", off, True, bodies_file, bodies, points, args.duration),
        case("flood, default limit", {}, True, bodies_file, bodies, points, args.duration),
    ]
    bodies_file.unlink()
    base, limited = rows[0]["quiet"], rows[2]["quiet"]
    ok = (
        limited["p50_ms"] <= 1.5 * base["p50_ms"]
        and limited["p99_ms"] < 150.0
        and limited["not_200"] == 0
        and rows[2]["flood"].get("non_2xx", 0) > 0
    )
    if args.json:
        print(json.dumps({"rows": rows, "bound_met": ok}))
        return 0 if ok else 1
    print(f"{'case':<26}{'quiet p50':>10}{'p95':>8}{'p99':>8}{'max':>8}{'not 200':>9}"
          f"{'flood req/s':>13}{'flood non-2xx':>15}")  # fmt: skip
    for r in rows:
        q, fl = r["quiet"], r["flood"]
        print(f"{r['case']:<26}{q['p50_ms']:>10.1f}{q['p95_ms']:>8.1f}{q['p99_ms']:>8.1f}"
              f"{q['max_ms']:>8.1f}"
              f"{q['not_200']:>9}{fl.get('rps', 0):>13.0f}{fl.get('non_2xx', 0):>15}")  # fmt: skip
    print(f"bound: with the limit, quiet p50 <= 1.5 x alone, p99 < 150 ms, all 200: "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
