"""Benchmark: whole nights, the online dispatcher's levers one by one, against the hindsight bound.

Protocol
- Scenarios: ``simulations/scenarios/friday.toml`` and ``weekday.toml``, both with 6 buses,
  each for ``--seeds`` seeds (the scenario's own and the next ones); the road world and the
  demand inputs are loaded once, before the timed runs.
- Configurations, each lever added to the one before (all through the production
  DispatchService with a real embedded Redis store):
  1. *baseline*: what the service did before: re-optimisation with OR-Tools only, a plain "no"
     when the wish cannot be kept, the same wait limit everywhere, idle buses wait;
  2. *+ ruin and recreate*: the live rounds run ruin and recreate, then OR-Tools;
  3. *+ rescue before no*: a trip no bus can take as the plans stand is tried once more with
     ruin and recreate over all open trips (``rescue_steps``);
  4. *+ counter-offers*: up to three later windows when the wish cannot be kept (riders take
     the closest with the scenario's documented chance);
  5. *+ far-pickup rule* (= the shipped defaults): pickups 8 min or more from the depot may
     wait 25 min;
  6. *+ rebalancing*: idle buses drive towards expected demand (off by default).
- Hindsight: the same nights (same trips, fleet and rules) solved as one static problem with
  ruin and recreate (``--hindsight-seconds`` each).
- Reported per configuration (mean over the seeds): served share, served at the wish, offered
  share of the requests the rules allow, villages / Kernstadt served, bus km per direct km,
  km, CO2 saved against both references, promises broken (simulator's own count), wall time.
- Paired against the defaults: for each other configuration, served, served at the wish and
  bus km per direct km as the mean difference from the defaults over the same nights, its
  standard error (with two nights or more) and on how many nights the configuration was
  better / worse. The nights differ far more from each other than most levers change them;
  a difference within about two standard errors is not shown to be one.
- Targets (issue 15), judged on the shipped defaults: served at the wish at
  least 0.95 x hindsight's; offered share at least 95 %; bus km per direct km at most 1.15;
  villages at least 0.9 x the Kernstadt's share; 0 promises broken; a Friday night under 60 s
  (configuration 5).

Run: ``python -m benchmarks.simulate [--seeds N] [--hindsight-seconds S] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from simulations.compare import PAIRED, mean_of, paired, paired_text
from simulations.compare import flat as flat_row
from simulations.scenario import SHIPPED as SCENARIOS

CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "baseline",
        {
            "reopt_lns_steps": 0,
            "rescue_steps": 0,
            "max_alternatives": 0,
            "far_pickup_s": 0,
            "rebalance": False,
        },
    ),
    (
        "+ ruin and recreate",
        {"rescue_steps": 0, "max_alternatives": 0, "far_pickup_s": 0, "rebalance": False},
    ),
    ("+ rescue before no", {"max_alternatives": 0, "far_pickup_s": 0, "rebalance": False}),
    ("+ counter-offers", {"far_pickup_s": 0, "rebalance": False}),
    ("+ far-pickup rule (defaults)", {"rebalance": False}),
    ("+ rebalancing", {"rebalance": True}),
)
DEFAULTS = "+ far-pickup rule (defaults)"
KEYS = (
    "served_share",
    "served_at_wish_share",
    "offered_share",
    "core_served_share",
    "villages_served_share",
    "ratio",
    "bus_km_per_direct_km",
    "vehicle_km",
    "empty_km",
    "reposition_km",
    "co2_saved_kg",
    "co2_saved_counterfactual_kg",
    "promises_broken",
    "wall_s",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, default=2, help="nights per scenario (default 2)")
    p.add_argument("--hindsight-seconds", type=float, default=60.0)
    p.add_argument("--scenarios", default="friday,weekday")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    from nachtbus.settings import Settings
    from simulations.hindsight import HindsightParams
    from simulations.run import load_inputs, run_one, trips_for
    from simulations.scenario import Scenario

    inputs = load_inputs(Settings())
    report: dict[str, Any] = {}
    for name in args.scenarios.split(","):
        base = Scenario.load(SCENARIOS / f"{name}.toml").with_values({"buses": 6})
        rows: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in CONFIGS}
        bounds: list[dict[str, Any]] = []
        for seed in range(base.seed, base.seed + args.seeds):
            trips = trips_for(base, inputs, seed)
            for label, values in CONFIGS:
                hs = None
                if label == DEFAULTS:
                    hs = HindsightParams(seconds=args.hindsight_seconds, seed=seed)
                t0 = time.perf_counter()
                _, table = run_one(
                    base.with_values(values), inputs, seed, trips=trips, hindsight_params=hs
                )
                flat = flat_row(table)
                flat["wall_s"] = round(time.perf_counter() - t0, 1) - table["run"].get(
                    "hindsight_wall_s", 0.0
                )
                flat["requests"] = len(trips)
                rows[label].append(flat)
                if hs is not None:
                    bounds.append({**table["hindsight"], **table["hindsight"]["villages"]})
                print(f"  {name} seed {seed} {label}: served {flat['served_share']:.1%}",
                      file=sys.stderr, flush=True)  # fmt: skip
        report[name] = {
            "requests": statistics.fmean(r["requests"] for r in rows[DEFAULTS]),
            "configs": {label: {k: mean_of(rs, k) for k in KEYS} for label, rs in rows.items()},
            "hindsight": {k: mean_of(bounds, k) for k in KEYS if k != "wall_s"},
            "paired": {
                label: {k: paired(rs, rows[DEFAULTS], k, hb) for k, hb in PAIRED.items()}
                for label, rs in rows.items()
                if label != DEFAULTS
            },
        }
        d, h = report[name]["configs"][DEFAULTS], report[name]["hindsight"]
        report[name]["targets"] = {
            "served at the wish >= 0.95 x hindsight": (d["served_at_wish_share"] or 0)
            >= 0.95 * (h["served_at_wish_share"] or 0),
            "offered share >= 95 %": (d["offered_share"] or 0) >= 0.95,
            "bus km per direct km <= 1.15": (d["bus_km_per_direct_km"] or 9) <= 1.15,
            "villages >= 0.9 x Kernstadt": (d["ratio"] or 0) >= 0.9,
            "0 promises broken": all(r["promises_broken"] == 0 for rs in rows.values() for r in rs),
            "night under 60 s": (d["wall_s"] or 999) < 60,
        }
    if args.json:
        print(json.dumps(report, default=str))
        return 0
    for name, rep in report.items():
        print(f"\n{name}: 6 buses, {rep['requests']:.0f} requests (mean of {args.seeds} nights)")
        print(
            f"{'case':<30}{'served':>8}{'wish':>7}{'offer':>7}{'core':>7}{'vill.':>7}"
            f"{'v/c':>6}{'bkm/dkm':>8}{'veh-km':>8}{'repo':>6}{'CO2 car':>8}{'CO2 cf':>8}"
            f"{'broken':>7}{'wall':>6}"
        )
        lines = [*rep["configs"].items(), ("hindsight bound", rep["hindsight"])]
        for label, r in lines:

            def f(key: str, kind: str, r: dict[str, Any] = r) -> str:
                v = r.get(key)
                if v is None:
                    return "-"
                return {"%": f"{v:.1%}", "x": f"{v:.2f}", "0": f"{v:,.0f}",
                        "1": f"{v:.1f}"}[kind]  # fmt: skip

            print(
                f"{label:<30}{f('served_share', '%'):>8}{f('served_at_wish_share', '%'):>7}"
                f"{f('offered_share', '%'):>7}{f('core_served_share', '%'):>7}"
                f"{f('villages_served_share', '%'):>7}{f('ratio', 'x'):>6}"
                f"{f('bus_km_per_direct_km', 'x'):>8}{f('vehicle_km', '0'):>8}"
                f"{f('reposition_km', '0'):>6}{f('co2_saved_kg', '0'):>8}"
                f"{f('co2_saved_counterfactual_kg', '0'):>8}{f('promises_broken', '0'):>7}"
                f"{f('wall_s', '1'):>6}"
            )
        print("\nagainst the defaults, night by night (mean difference +- standard error, "
              "nights better / worse):")  # fmt: skip
        print(f"{'case':<30}{'served':>24}{'wish':>24}{'bkm/dkm':>24}")
        for label, cmp in rep["paired"].items():
            cells = [paired_text(key, c) for key, c in cmp.items()]
            print(f"{label:<30}" + "".join(f"{x:>24}" for x in cells))
        for target, ok in rep["targets"].items():
            print(f"  target {target}: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
