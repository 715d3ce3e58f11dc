"""Benchmark: the riders of the trains, with the bus linked to the timetable and without.

Protocol
- Scenarios: ``simulations/scenarios/friday.toml`` and ``weekday.toml`` (6 buses), each with
  ``[trains] feed = "example"`` (the shipped EXAMPLE timetable: invented trains, 16 arrivals
  and 15 departures at Soest between 20:00 and 01:31) and the Trains section's documented
  defaults (1.5 bookings per arrival, 0.5 per departure, 30 % of trains 1 to 15 min late,
  told 10 min before the arrival), for ``--seeds`` seeds; road world and demand inputs are
  loaded once, before the timed runs.
- Configurations (through the production DispatchService and a real embedded Redis store):
  1. *baseline, no link*: riders book as ordinary riders, off a train once at the station
     (actual arrival plus the walk, "leave now"), to a train arriving by its departure less
     the buffer;
  2. *linked (the default)*: riders book their train; the pickup window opens at the arrival
     plus the walk and follows the train's delay (GTFS-Realtime path of the service).
- Reported, summed or pooled over the seeds: train riders, served share, the wait from the
  train's actual arrival to the pickup (p50, p90), connections missed among bookings the
  riders kept (from a train: not picked up; to a train: not at the station by the actual
  departure), riders to a train with the buffer kept, late trains, promises broken, wall time.
- Bounds (issue 17), judged on the linked configuration: wait after arrival p90 under 10 min;
  0 missed connections for confirmed bookings; 0 promises broken.

Run: ``python -m benchmarks.trains [--seeds N] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from simulations.scenario import SHIPPED as SCENARIOS

CONFIGS = (("baseline, no link", False), ("linked (default)", True))
P90_BOUND_S = 600


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, default=3, help="nights per scenario (default 3)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)

    from nachtbus.settings import Settings
    from simulations.run import load_inputs, run_one, trips_for
    from simulations.scenario import Scenario, Trains

    inputs = load_inputs(Settings())
    out: dict[str, Any] = {}
    ok = True
    for name in ("friday", "weekday"):
        base = Scenario.load(SCENARIOS / f"{name}.toml").with_values({"buses": 6})
        for label, connect in CONFIGS:
            sc = base.model_copy(update={"trains": Trains(feed="example", connect=connect)})
            waits: list[float] = []
            agg = {
                "riders": 0,
                "served": 0,
                "missed": 0,
                "to_train": 0,
                "buffer_kept": 0,
                "late_trains": 0,
                "broken": 0,
                "wall_s": 0.0,
            }
            for seed in range(base.seed, base.seed + args.seeds):
                trips = trips_for(sc, inputs, seed)
                t0 = time.perf_counter()
                result, table = run_one(sc, inputs, seed, trips=trips)
                agg["wall_s"] += time.perf_counter() - t0
                tr = table["trains"]
                a, d = tr["from_train"], tr["to_train"]
                agg["riders"] += a["requests"] + d["requests"]
                agg["served"] += a["served"] + d["served"]
                agg["missed"] += a["missed"] + d["missed"]
                agg["to_train"] += d["served"]
                agg["buffer_kept"] += d["buffer_kept"]
                agg["late_trains"] += len({t.train for t in trips if t.train_delay_s})
                agg["broken"] += table["overall"]["promises_broken"]
                state = result.service.snapshot()
                for o in result.outcomes:
                    if o.trip.train_kind != "from_train" or o.booking_id is None:
                        continue
                    b = state.bookings[o.booking_id]
                    if b.picked_up_s is not None:
                        waits.append(b.picked_up_s - o.trip.train_at_s - o.trip.train_delay_s)
            row = {
                **agg,
                "served_share": agg["served"] / agg["riders"] if agg["riders"] else None,
                "wait_p50_s": float(np.percentile(waits, 50)) if waits else None,
                "wait_p90_s": float(np.percentile(waits, 90)) if waits else None,
                "wall_s": agg["wall_s"] / args.seeds,
            }
            out.setdefault(name, {})[label] = row
            if connect:
                ok &= (
                    row["wait_p90_s"] is not None
                    and row["wait_p90_s"] < P90_BOUND_S
                    and row["missed"] == 0
                    and row["broken"] == 0
                )
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        head = (
            f"{'case':<22}{'riders':>7}{'served':>8}{'wait p50':>10}{'wait p90':>10}"
            f"{'missed':>8}{'buffer':>9}{'late':>6}{'broken':>7}{'wall':>8}"
        )
        for name, rows in out.items():
            print(f"\n{name}: 6 buses, example timetable, {args.seeds} nights")
            print(head)
            for label, r in rows.items():
                print(
                    f"{label:<22}{r['riders']:>7}{r['served_share']:>8.1%}"
                    f"{r['wait_p50_s'] / 60:>8.1f} m{r['wait_p90_s'] / 60:>8.1f} m"
                    f"{r['missed']:>8}{r['buffer_kept']:>5}/{r['to_train']:<3}"
                    f"{r['late_trains']:>6}{r['broken']:>7}{r['wall_s']:>7.1f}s"
                )
        print(
            f"\nbounds (linked): wait p90 < {P90_BOUND_S // 60} min, 0 missed, 0 broken: "
            + ("met" if ok else "NOT met")
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
