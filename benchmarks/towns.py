"""Benchmark: the same night in each town of "5 für Südwestfalen", against Soest in the same run.

Protocol
- Towns: Soest (``shared/data/soest``, its official districts) as the baseline, and every town
  folder in ``shared/data/areas`` (Arnsberg, Menden, Olpe, Bad Berleburg: their roads, homes,
  POIs, the depot at the main station, districts estimated from the OSM places, see
  ``graphs/areas.py``), each loaded once before its timed runs.
- Scenario: ``simulations/scenarios/friday.toml`` as it is (421 requests, Soest's demand
  size), or ``--scenario FILE`` (e.g. the Friday with other rules in its ``[dispatching]``),
  with ``--buses`` buses (default 6), for ``--seeds`` seeds (default 1), through the
  production DispatchService and a real embedded Redis store, every town with the same rules.
- Reported (means over the seeds): served, at the wish, offered share of the requests the
  rules allow, Kernstadt / villages served and their ratio, bus km per direct km,
  vehicle-km, promises broken (summed), requests lost (summed), wall time per night; with
  ``--hindsight-seconds S`` also the hindsight bound's served share (the same night with
  every request known in advance, S seconds of ruin and recreate) and at the wish over it.
- Bounds: in every town 0 promises broken and 0 requests lost (every request ends served,
  rejected with a reason, cancelled or as a no-show). The served shares are for the planner
  (fleet and rules are Soest's); they are no bound.

Run: ``python -m benchmarks.towns [--seeds N] [--buses N] [--towns a,b] [--hindsight-seconds S]
[--scenario FILE] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from simulations.scenario import SHIPPED as SCENARIOS

KEYS = ("served_share", "served_at_wish_share", "offered_share", "bus_km_per_direct_km",
        "vehicle_km")  # fmt: skip
VILLAGE_KEYS = ("core_served_share", "villages_served_share", "ratio")


def _towns(shared: Path) -> dict[str, Path | None]:
    """Town name -> its folder (None: Soest from shared_dir)."""
    out: dict[str, Path | None] = {"soest": None}
    areas = shared / "data" / "areas"
    for folder in sorted(areas.iterdir()) if areas.is_dir() else []:
        if (folder / "service_area.geojson").is_file():
            out[folder.name] = folder
    return out


def run_town(
    folder: Path | None,
    buses: int,
    seeds: int,
    hindsight_s: float = 0.0,
    scenario: Path = SCENARIOS / "friday.toml",
) -> dict[str, Any]:
    from nachtbus.settings import Settings
    from simulations.hindsight import HindsightParams
    from simulations.run import load_inputs, run_one, trips_for
    from simulations.scenario import Scenario

    inputs = load_inputs(Settings(area_dir=folder))
    sc = Scenario.load(scenario).with_values({"buses": buses})
    rows = []
    for seed in range(1, seeds + 1):
        hs = HindsightParams(seconds=hindsight_s, seed=seed) if hindsight_s > 0 else None
        _, table = run_one(sc, inputs, seed, trips=trips_for(sc, inputs, seed), hindsight_params=hs)
        rows.append(table)
    mean: dict[str, Any] = {k: statistics.fmean(t["overall"][k] for t in rows) for k in KEYS}
    for k in VILLAGE_KEYS:
        vals = [t["villages"][k] for t in rows if t["villages"].get(k) is not None]
        mean[k] = statistics.fmean(vals) if vals else None
    mean["requests"] = statistics.fmean(t["overall"]["requests"] for t in rows)
    mean["promises_broken"] = sum(t["overall"]["promises_broken"] for t in rows)
    mean["lost"] = sum(t["overall"]["lost"] for t in rows)
    mean["wall_s"] = statistics.fmean(t["run"]["wall_s"] for t in rows)
    if hindsight_s > 0:
        mean["bound_served_share"] = statistics.fmean(t["hindsight"]["served_share"] for t in rows)
        mean["wish_over_bound"] = mean["served_at_wish_share"] / mean["bound_served_share"]
    mean["districts"] = len(inputs.districts.names)
    mean["residents"] = sum(d.population for d in inputs.districts.districts)
    return mean


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--seeds", type=int, default=1, help="nights per town (default 1)")
    p.add_argument("--buses", type=int, default=6, help="buses in every town (default 6)")
    p.add_argument("--towns", help="comma-separated town folders (default: Soest and all)")
    p.add_argument(
        "--hindsight-seconds",
        type=float,
        default=0.0,
        help="also solve each night with hindsight for S seconds (default 0: no bound)",
    )
    p.add_argument(
        "--scenario",
        type=Path,
        default=SCENARIOS / "friday.toml",
        help="the night played in every town (default: the shipped Friday)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if not args.scenario.is_file():
        raise SystemExit(f"--scenario: {args.scenario} is not a file")

    from nachtbus.settings import find_shared_dir

    shared = find_shared_dir()
    if shared is None:
        raise SystemExit("benchmarks.towns needs ../shared (data/soest and data/areas)")
    towns = _towns(shared)
    if args.towns:
        wanted = args.towns.split(",")
        unknown = [t for t in wanted if t not in towns]
        if unknown:
            raise SystemExit(f"--towns: unknown {unknown}; one of {sorted(towns)}")
        towns = {t: towns[t] for t in wanted}
    out = {
        name: run_town(folder, args.buses, args.seeds, args.hindsight_seconds, args.scenario)
        for name, folder in towns.items()
    }
    ok = all(r["promises_broken"] == 0 and r["lost"] == 0 for r in out.values())
    if args.json:
        print(json.dumps({"towns": out, "bounds_met": ok}))
        return 0

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f} %"

    head = ["town", "districts", "residents", "served", "wish", "offer", "Kernstadt"]
    head += ["villages", "v/c", "bkm/dkm", "veh-km", "broken", "lost", "wall"]
    bound = args.hindsight_seconds > 0
    if bound:
        head += ["bound served", "wish / bound"]
    what = "Friday" if args.scenario == SCENARIOS / "friday.toml" else str(args.scenario)
    print(f"{what}, {args.buses} buses, {args.seeds} night(s) per town, the same rules")
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for name, r in out.items():
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        cells = [name, str(r["districts"]), f"{r['residents']:,}", pct(r["served_share"])]
        cells += [pct(r[k]) for k in ("served_at_wish_share", "offered_share")]
        cells += [pct(r["core_served_share"]), pct(r["villages_served_share"]), ratio]
        cells += [f"{r['bus_km_per_direct_km']:.2f}", f"{r['vehicle_km']:,.0f}"]
        cells += [str(r["promises_broken"]), str(r["lost"]), f"{r['wall_s']:.0f} s"]
        if bound:
            cells += [pct(r["bound_served_share"]), f"{r['wish_over_bound']:.2f}"]
        print("| " + " | ".join(cells) + " |")
    verdict = "met" if ok else "NOT met"
    print(f"bounds (0 promises broken, 0 requests lost in every town): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
