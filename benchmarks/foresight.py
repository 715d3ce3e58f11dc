"""Benchmark: what knowing the riders earlier is worth; the same trips, told minutes ahead.

Protocol
- Scenarios: ``simulations/scenarios/friday.toml`` and ``weekday.toml``, both with 6 buses,
  each for ``--seeds`` seeds (the scenario's own and the next ones).
- Rows: the shipped defaults, then for each X in ``--minutes`` the same night's trips with
  every rider who asks to leave now telling the trip X minutes before (``told_ahead_min``,
  asked at their wished time, from the night's start at the earliest), played with
  ``prebook_window_as_asked``: a trip told ahead keeps the window it would have had asking
  then (15 min, 25 min far out), so the riders, their windows and the rules are the same and
  only the dispatcher's knowledge changes. X = 0 differs from the defaults only in the
  windows of the riders who pre-book anyway (15 / 25 min instead of 10).
- Hindsight: each row's night solved as one static problem (``--hindsight-seconds``, 60 by
  default: with 20 s the Friday's bound drove more km per direct km than the online run told
  30 min ahead); it changes little with X (a rider who cancels does so the same time after
  booking, so earlier).
- Reported per row (mean over the seeds): served, served at the wish, the bound's served,
  at the wish / bound, offered share, villages / Kernstadt, bus km per direct km and the
  bound's, promises broken.
- Checks in the same run: no promise broken in any row; and, for each row, whether issue 15's
  two open targets hold there (at the wish >= 0.95 x the bound, bus km per direct km <= 1.15).
  The question this answers: does the online dispatcher fall short of the bound because of
  its decisions or because riders who leave now are unknown until they ask?

Run: ``python -m benchmarks.foresight [--seeds N] [--minutes 0,10,30] [--hindsight-seconds S]
[--scenarios friday,weekday] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks.simulate import SCENARIOS
from simulations.compare import mean_of

DEFAULTS = "shipped defaults"


def rows_for(minutes: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """(label, scenario values) of the benchmark's rows."""
    out: list[tuple[str, dict[str, Any]]] = [(DEFAULTS, {})]
    for x in minutes:
        label = f"told {x} min ahead" if x else "told 0 min (windows as asked)"
        out.append((label, {"told_ahead_min": x, "prebook_window_as_asked": True}))
    return out


def summarise(nights: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over the nights of one row (online and bound), the ratio of the means and the
    targets (issue 15) judged on them."""
    out: dict[str, Any] = {
        k: mean_of(nights, k)
        for k in (
            "served_share",
            "served_at_wish_share",
            "bound_share",
            "offered_share",
            "ratio",
            "bus_km_per_direct_km",
            "bound_bus_km_per_direct_km",
        )
    }
    out["promises_broken"] = sum(n["promises_broken"] for n in nights)
    wish, bound = out["served_at_wish_share"], out["bound_share"]
    out["wish_over_bound"] = wish / bound if wish is not None and bound else None
    out["targets"] = {
        "at the wish >= 0.95 x bound": (out["wish_over_bound"] or 0) >= 0.95,
        "bus km per direct km <= 1.15": (out["bus_km_per_direct_km"] or 9) <= 1.15,
    }
    return out


def night(table: dict[str, Any]) -> dict[str, Any]:
    """One played night's figures (the run's table with its bound)."""
    o, h = table["overall"], table["hindsight"]
    return {
        "served_share": o["served_share"],
        "served_at_wish_share": o["served_at_wish_share"],
        "offered_share": o["offered_share"],
        "ratio": (table.get("villages") or {}).get("ratio"),
        "bus_km_per_direct_km": o["bus_km_per_direct_km"],
        "promises_broken": o["promises_broken"],
        "bound_share": h["served_at_wish_share"],
        "bound_bus_km_per_direct_km": h["bus_km_per_direct_km"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, default=2, help="nights per scenario (default 2)")
    p.add_argument("--minutes", default="0,10,30", help="how far ahead (default 0,10,30)")
    p.add_argument("--hindsight-seconds", type=float, default=60.0)
    p.add_argument("--scenarios", default="friday,weekday")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    minutes = [int(x) for x in args.minutes.split(",")]

    from nachtbus.settings import Settings
    from simulations.hindsight import HindsightParams
    from simulations.run import load_inputs, run_one
    from simulations.scenario import Scenario

    inputs = load_inputs(Settings())
    report: dict[str, Any] = {}
    for name in args.scenarios.split(","):
        base = Scenario.load(SCENARIOS / f"{name}.toml").with_values({"buses": 6})
        rows: dict[str, list[dict[str, Any]]] = {}
        for label, values in rows_for(minutes):
            for seed in range(base.seed, base.seed + args.seeds):
                hs = HindsightParams(seconds=args.hindsight_seconds, seed=seed)
                _, table = run_one(base.with_values(values), inputs, seed, hindsight_params=hs)
                rows.setdefault(label, []).append(night(table))
                print(f"  {name} seed {seed} {label}: at the wish "
                      f"{table['overall']['served_at_wish_share']:.1%}",
                      file=sys.stderr, flush=True)  # fmt: skip
        report[name] = {label: summarise(nights) for label, nights in rows.items()}
    if args.json:
        print(json.dumps(report))
        return 0
    ok = True
    for name, rep in report.items():
        print(f"\n{name}: 6 buses, {args.seeds} nights, bound {args.hindsight_seconds:.0f} s")
        print(f"{'row':<32}{'served':>8}{'wish':>7}{'bound':>7}{'w/b':>6}{'offer':>7}"
              f"{'v/c':>6}{'bkm/dkm':>8}{'bound':>7}{'broken':>7}")  # fmt: skip
        for label, r in rep.items():

            def f(key: str, kind: str, r: dict[str, Any] = r) -> str:
                v = r.get(key)
                if v is None:
                    return "-"
                return f"{v:.1%}" if kind == "%" else f"{v:.2f}"

            print(f"{label:<32}{f('served_share', '%'):>8}{f('served_at_wish_share', '%'):>7}"
                  f"{f('bound_share', '%'):>7}{f('wish_over_bound', 'x'):>6}"
                  f"{f('offered_share', '%'):>7}{f('ratio', 'x'):>6}"
                  f"{f('bus_km_per_direct_km', 'x'):>8}"
                  f"{f('bound_bus_km_per_direct_km', 'x'):>7}"
                  f"{r['promises_broken']:>7}")  # fmt: skip
            ok = ok and r["promises_broken"] == 0
        for label, r in rep.items():
            met = [t for t, hit in r["targets"].items() if hit]
            print(f"  {label}: targets met: {', '.join(met) if met else 'none'}")
    print(f"\ncheck: no promise broken in any row: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
