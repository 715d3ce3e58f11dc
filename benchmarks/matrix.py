"""Benchmark: travel-time matrices on the real Soest graph, ours against scipy and networkx.

Protocol
- Network: the Soest drive network (../shared or $NACHTBUS_OSM_FILE), night-speed profile.
- Points: N uniform random points inside the service area (seed 2026), snapped to road nodes;
  an N x N many-to-many time + distance matrix, and the full all-pairs time table.
- Methods: our numba kernels with 1 and 2 threads; scipy.sparse.csgraph.dijkstra (one thread,
  indices = the sources, float weights = the same milliseconds); networkx single-source Dijkstra
  (100 points only: it is far slower).
- Each cell runs in a fresh subprocess: one untimed warm-up (JIT, caches), then the best of
  ``--repeats`` timed runs. Peak memory is the process's peak RSS during the timed runs above
  its RSS before them (the kernel's high-water mark, reset first), so it counts numba's, scipy's
  and networkx's own allocations alike, but not the loaded network or imported libraries.
- Warm start: a fresh process loading the cached network, snapper and service area.
- Every method's result is checked against ours on a sample before its time counts.

Targets (issue 2, 2-core machine): faster than scipy at every size; 2,000 x 2,000 < 1 s; the
all-pairs table < 3 s; warm start < 1 s.

Run: ``python -m benchmarks.matrix [--sizes 100,500,2000] [--repeats 3] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

SEED = 2026


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _reset_peak() -> None:
    """Reset the kernel's high-water mark of this process's RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_mb() -> float:
    """Peak RSS since the last reset (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _world():
    from nachtbus.settings import Settings
    from routing.world import world_from_settings

    return world_from_settings(Settings())


def _points(world, n: int) -> np.ndarray:
    rng = np.random.default_rng(SEED + n)
    min_lon, min_lat, max_lon, max_lat = world.area.geometry.bounds
    lats: list[float] = []
    lons: list[float] = []
    while len(lats) < n:
        lat = rng.uniform(min_lat, max_lat)
        lon = rng.uniform(min_lon, max_lon)
        if world.area.contains(lat, lon):
            lats.append(lat)
            lons.append(lon)
    return world.snapper.nearest_nodes(np.array(lats), np.array(lons))


def run_cell(method: str, size: int, threads: int, repeats: int) -> dict[str, Any]:
    """One measurement in this process (called in a subprocess by the driver)."""
    import numba

    world = _world()
    net = world.network
    numba.set_num_threads(threads)
    nodes = _points(world, size) if size else np.arange(net.n_nodes, dtype=np.int32)
    ours = world.times

    if method == "ours":
        fn = (lambda: ours.matrix(nodes, nodes)) if size else ours_all_pairs(world)
    elif method == "scipy":
        import scipy.sparse as sp
        from scipy.sparse.csgraph import dijkstra

        m = sp.csr_matrix(
            (net.time_ms.astype(np.float64), net.heads, net.indptr), shape=(net.n_nodes,) * 2
        )
        fn = (lambda: dijkstra(m, indices=nodes)[:, nodes]) if size else (lambda: dijkstra(m))
    elif method == "networkx":
        import networkx as nx

        g = nx.DiGraph()
        for u, v, w in zip(
            net.tails.tolist(), net.heads.tolist(), net.time_ms.tolist(), strict=True
        ):
            g.add_edge(u, v, w=w)
        targets = nodes.tolist()

        def fn():
            out = np.empty((len(targets), len(targets)))
            for i, s in enumerate(targets):
                d = nx.single_source_dijkstra_path_length(g, s, weight="w")
                out[i] = [d[t] for t in targets]
            return out
    else:
        raise SystemExit(f"unknown method {method}")

    result = fn()  # warm-up (JIT compile, caches)
    del result
    base_rss = _rss_mb()
    _reset_peak()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    peak = max(0.0, _peak_mb() - base_rss)
    check = _check(world, method, nodes, size, result)
    return {
        "method": method,
        "size": size,
        "threads": threads,
        "seconds": min(times),
        "peak_mb": round(peak, 1),
        "check": check,
    }


def ours_all_pairs(world):
    from routing import _kernels

    net = world.network
    return lambda: _kernels.all_pairs_time(net.indptr, net.heads, net.weight)


def _check(world, method: str, nodes: np.ndarray, size: int, result: Any) -> str:
    """Compare a sample of the result with our own one-to-all rows (times in seconds)."""
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(nodes), 5)
    for i in rows.tolist():
        ref = world.times.row(int(nodes[i]))[0][nodes] if size else world.times.row(i)[0]
        got = result[0][i] if (method == "ours" and size) else result[i]
        got = np.asarray(got)
        if method != "ours":
            got = np.floor(got / 1000 + 0.5)
        if not np.array_equal(got.astype(np.int64), ref.astype(np.int64)):
            return "MISMATCH"
    return "ok"


def warm_start() -> dict[str, Any]:
    code = (
        "import time; t=time.perf_counter(); from benchmarks.matrix import _world; "
        "w=_world(); print(time.perf_counter()-t, w.cache.hit)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    secs, hit = out.stdout.split()
    return {"seconds": float(secs), "cache_hit": hit == "True"}


def _sub(method: str, size: int, threads: int, repeats: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.matrix",
        "--cell",
        method,
        str(size),
        str(threads),
        "--repeats",
        str(repeats),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cell {method} {size} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,500,2000", help="comma-separated point counts")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per cell (best is kept)")
    ap.add_argument("--no-all-pairs", action="store_true", help="skip the all-pairs table")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument(
        "--cell", nargs=3, metavar=("METHOD", "SIZE", "THREADS"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.cell:
        method, size, threads = args.cell[0], int(args.cell[1]), int(args.cell[2])
        print(json.dumps(run_cell(method, size, threads, args.repeats)))
        return

    _world()  # build the cache once before timing anything
    rows: list[dict[str, Any]] = []
    cases = [int(s) for s in args.sizes.split(",")] + ([] if args.no_all_pairs else [0])
    for size in cases:
        reps = args.repeats if size and size <= 500 else max(1, min(args.repeats, 2))
        cell_rows = [
            _sub("ours", size, 2, reps),
            _sub("ours", size, 1, reps),
            _sub("scipy", size, 1, reps),
        ]
        if size and size <= 100:
            cell_rows.append(_sub("networkx", size, 1, 1))
        ours = cell_rows[0]["seconds"]
        for r in cell_rows:
            r["ratio"] = r["seconds"] / ours
        rows.extend(cell_rows)
    ws = warm_start()

    if args.json:
        print(json.dumps({"rows": rows, "warm_start": ws}))
        return
    print(
        f"{'case':<22}{'method':<12}{'threads':>8}{'seconds':>10}{'x ours(2t)':>12}"
        f"{'peak MB':>10}  check"
    )
    for r in rows:
        case = f"{r['size']} x {r['size']}" if r["size"] else "all-pairs (6,384^2)"
        print(
            f"{case:<22}{r['method']:<12}{r['threads']:>8}{r['seconds']:>10.3f}"
            f"{r['ratio']:>12.2f}{r['peak_mb']:>10.1f}  {r['check']}"
        )
    print(f"warm start from cache: {ws['seconds']:.3f} s (cache hit: {ws['cache_hit']})")
    print("\ntargets:")
    by = {(r["method"], r["size"], r["threads"]): r["seconds"] for r in rows}
    verdicts = []
    for size in cases:
        ok = by[("ours", size, 2)] < by[("scipy", size, 1)]
        verdicts.append((f"faster than scipy at {size or 'all-pairs'}", ok))
    if 2000 in cases:
        verdicts.append(("2,000 x 2,000 under 1 s", by[("ours", 2000, 2)] < 1.0))
    if 0 in cases:
        verdicts.append(("all-pairs under 3 s", by[("ours", 0, 2)] < 3.0))
    verdicts.append(("warm start under 1 s", ws["seconds"] < 1.0))
    for name, ok in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
