"""Benchmark: a whole Friday night in Soest, insertion only against insertion + re-optimisation.

Protocol
- Scenario: ``simulations/scenarios/friday.toml`` (6 buses, about 420 requests from 20:00 to
  05:00, weekend profile), seed 1; the road world and the demand inputs are loaded once, before
  the timed runs.
- Run A, the baseline: insertion only (no periodic re-optimisation).
- Run B: insertion plus OR-Tools re-optimisation every 10 simulated minutes (solution limit 60,
  as the scenario sets it), as the live service does.
- Each run plays the whole night through the production DispatchService with a real embedded
  Redis store; wall time per run, and the process's peak resident memory after it (ru_maxrss:
  includes the road world and caches, not the Redis server process).
- Reported per run: requests, served share, vehicle-km, empty km, pooled share, occupancy, wait
  p90, CO2 saved; the target is the whole night (run B) in under 60 s.

Run: ``python -m benchmarks.simulate [--requests N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

SCENARIO = Path(__file__).resolve().parents[1] / "simulations" / "scenarios" / "friday.toml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=None, help="override expected requests")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from nachtbus.settings import Settings
    from simulations.run import load_inputs, run_one, trips_for
    from simulations.scenario import Scenario

    inputs = load_inputs(Settings())
    base = Scenario.load(SCENARIO)
    if args.requests:
        base = base.with_values({"requests": args.requests})
    trips = trips_for(base, inputs, base.seed)
    rows: list[dict[str, Any]] = []
    for label, reopt in (("insertion only", False), ("insertion + re-optimisation", True)):
        sc = base.with_values({"reoptimise": reopt})
        t0 = time.perf_counter()
        _, table = run_one(sc, inputs, base.seed, trips=trips)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        o = table["overall"]
        rows.append(
            {
                "case": label,
                "wall_s": round(wall, 1),
                "peak_rss_mib": round(peak / 2**20, 1),
                "requests": o["requests"],
                "served_share": o["served_share"],
                "vehicle_km": o["vehicle_km"],
                "empty_km": o["empty_km"],
                "pooled_share": o["pooled_share"],
                "occupancy": o["occupancy"],
                "wait_p90_s": o["wait_p90_s"],
                "co2_saved_kg": o["co2_saved_kg"],
                "reopt_commits": o["reopt_commits"],
                "lost": o["lost"],
            }
        )
    ok = rows[1]["wall_s"] < 60 and rows[1]["requests"] >= 400 and rows[1]["lost"] == 0
    if args.json:
        print(json.dumps({"rows": rows, "target_met": ok}))
        return 0
    print(f"{base.name}: {base.fleet.buses} buses, {len(trips)} requests, seed {base.seed}")
    print(
        f"{'case':<30}{'wall s':>7}{'RSS MiB':>8}{'served':>8}{'veh-km':>8}{'empty':>7}"
        f"{'pooled':>8}{'occ.':>6}{'wait90':>7}{'CO2 kg':>8}"
    )
    for r in rows:
        print(
            f"{r['case']:<30}{r['wall_s']:>7.1f}{r['peak_rss_mib']:>8.0f}{r['served_share']:>8.1%}"
            f"{r['vehicle_km']:>8.0f}{r['empty_km']:>7.0f}{r['pooled_share']:>8.1%}"
            f"{r['occupancy']:>6.2f}{r['wait_p90_s'] / 60:>6.1f}m{r['co2_saved_kg']:>8.1f}"
        )
    print(f"target: the whole night (with re-optimisation) in < 60 s: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
