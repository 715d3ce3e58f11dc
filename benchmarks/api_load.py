"""Benchmark: inquiries per second and latency of the running API under load (wrk on loopback).

Protocol
- Service: ``nachtbus serve`` on the real Soest graph, 8 buses, clock at 22:00, a fresh embedded
  store, background re-optimisation on (every 20 s, as in production), ``--workers`` processes.
- State: 40 open bookings (pre-booked for 22:15 to 00:45 between uniform random points of the
  service area, seed 11), booked and committed over HTTP before the load starts.
- Load: wrk (Debian package ``wrk``), 1 thread, ``--connections`` (default 16) keep-alive
  connections, ``--duration`` s (default 20), POST /v1/planning/inquiries cycling through 500
  leave-now inquiries between random points of the area (seed 12); each answer is a full
  snap + insertion + offer stored in Redis. wrk runs on the same 2-core machine.
- Baseline in the same run: GET /health (HTTP stack + one Redis read) under the same load,
  and the inquiry load on a single worker.
- Reported: requests/s, p50 / p90 / p99 latency (wrk's --latency), non-2xx answers.
- The per-key rate limit is lifted for these runs (one key sends all the load); what it does
  is measured by ``benchmarks.fairness``.
- Target (issue 4): >= 200 inquiries/s with p99 < 150 ms.

Run: ``python -m benchmarks.api_load [--workers 2] [--duration 20] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from nachtbus.procs import parent_env, wait_until_healthy

RIDER = {"X-Api-Key": "dev-rider-app-key"}
LUA = """
local bodies = {}
local i = 0
for line in io.lines("%s") do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "dev-rider-app-key"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/v1/planning/inquiries", nil, bodies[i])
end
"""
HEALTH_LUA = """
request = function() return wrk.format("GET", "/health") end
"""


def _points(world: Any, n: int, seed: int) -> list[tuple[float, float]]:
    """Uniform random points inside the service area (not snapped: the API snaps them)."""
    rng = np.random.default_rng(seed)
    min_lon, min_lat, max_lon, max_lat = world.area.geometry.bounds
    out: list[tuple[float, float]] = []
    while len(out) < n:
        lat, lon = float(rng.uniform(min_lat, max_lat)), float(rng.uniform(min_lon, max_lon))
        if world.area.contains(lat, lon):
            out.append((round(lat, 6), round(lon, 6)))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The throughput runs measure the service, not the per-key limit: one key sends everything.
UNLIMITED = {"NACHTBUS_RATE_PER_KEY_PER_S": "1000000", "NACHTBUS_RATE_BURST": "1000000"}


def _start(
    workers: int, data_dir: Path, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NACHTBUS_DATA_DIR": str(data_dir), "NACHTBUS_BUSES": "8", **parent_env()}
    env.update(UNLIMITED if extra_env is None else extra_env)
    cmd = [sys.executable, "-m", "nachtbus.cli", "serve", "--port", str(port), "--clock", "22:00"]
    proc = subprocess.Popen([*cmd, "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until_healthy(port, proc, 180)
    except RuntimeError as exc:
        proc.kill()
        proc.wait()
        raise SystemExit(str(exc)) from None
    return proc


def _paced(c: httpx.Client, url: str, body: dict[str, Any]) -> httpx.Response:
    """POST, waiting out a 429 (the per-key limit) as a well-behaved app does."""
    while True:
        r = c.post(url, json=body)
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))


def _seed_bookings(base: str, points: list[tuple[float, float]], count: int) -> int:
    """Book and commit trips pre-booked for 22:15 to 00:45 until ``count`` are open."""
    booked = 0
    pairs = list(zip(points[::2], points[1::2], strict=True))
    with httpx.Client(base_url=base, headers=RIDER, timeout=30) as c:
        evening = datetime.fromisoformat(c.get("/health").json()["now"]).replace(
            hour=22, minute=0, second=0
        )
        for a, b in pairs:
            if booked >= count:
                break
            when = evening + timedelta(minutes=15 + (booked * 150) // count)
            inquiry = {
                "from": {"lat": a[0], "lon": a[1]},
                "to": {"lat": b[0], "lon": b[1]},
                "departureTime": when.isoformat(),
            }
            r = _paced(c, "/v1/planning/inquiries", inquiry)
            if r.status_code != 200 or not r.json()["options"]:
                continue
            offer = r.json()["options"][0]["offerId"]
            bid = _paced(c, "/v1/bookings", {"offerId": offer}).json()["id"]
            _paced(c, f"/v1/bookings/{bid}/events", {"operation": "COMMIT"})
            booked += 1
    return booked


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _wrk(url: str, script: str, connections: int, duration: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", f.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.M))
    if len(lat) < 3:
        raise SystemExit(f"wrk gave no latency distribution:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _ms(lat["50"]),
        "p90_ms": _ms(lat["90"]),
        "p99_ms": _ms(lat["99"]),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_case(
    workers: int, bodies: Path, points: list[tuple[float, float]], args: argparse.Namespace
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = _start(workers, Path(tmp) / "data", port)
        base = f"http://127.0.0.1:{port}"
        try:
            open_bookings = _seed_bookings(base, points, args.open_bookings)
            _wrk(base, LUA % bodies, args.connections, 3)  # warm-up
            health = _wrk(base, HEALTH_LUA, args.connections, args.duration)
            inq = _wrk(base, LUA % bodies, args.connections, args.duration)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {"workers": workers, "open_bookings": open_bookings, "health": health, "inquiries": inq}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--workers", type=int, default=2, help="API worker processes (default 2)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    p.add_argument("--open-bookings", type=int, default=40)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("api_load needs wrk: apt-get install wrk")
    from benchmarks.insertion import _world

    world = _world()  # loaded once for both point sets
    points = _points(world, 1200, seed=11)
    trips = _points(world, 1000, seed=12)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for a, b in zip(trips[::2], trips[1::2], strict=True):
            if abs(a[0] - b[0]) + abs(a[1] - b[1]) < 0.015:  # a walk, not a bus ride (422)
                continue
            f.write(
                json.dumps({"from": {"lat": a[0], "lon": a[1]}, "to": {"lat": b[0], "lon": b[1]}})
            )
            f.write("\n")
        bodies = Path(f.name)
    rows = [run_case(w, bodies, points, args) for w in sorted({1, args.workers})]
    bodies.unlink()
    best = rows[-1]["inquiries"]
    ok = best["rps"] >= 200 and best["p99_ms"] < 150 and best["non_2xx"] == 0
    if args.json:
        print(json.dumps({"rows": rows, "target_met": ok}))
        return 0
    print(f"{'case':<28}{'req/s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for row in rows:
        for name in ("health", "inquiries"):
            r = row[name]
            label = f"{name} ({row['workers']} worker{'s' * (row['workers'] > 1)})"
            print(
                f"{label:<28}{r['rps']:>8.0f}{r['p50_ms']:>9.1f}{r['p90_ms']:>9.1f}"
                f"{r['p99_ms']:>9.1f}{r['non_2xx']:>9}"
            )
    print(f"open bookings during the load: {rows[-1]['open_bookings']}, 8 buses")
    print(f"target >= 200 inquiries/s with p99 < 150 ms: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
