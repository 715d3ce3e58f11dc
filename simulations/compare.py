"""Several nights of a scenario, for planners: the mean and spread of each KPI, and one
configuration against another night by night.

The nights of one scenario (its seed and the next ones) differ from each other more than most
changes of rules or fleet change them: on the shipped Friday the share served at the wished
time ranges from 67 to 84 % over seeds 1 to 4. So one night says little about a change; the
same nights played with and without it, compared night by night (a paired comparison: the
mean difference, its standard error and on how many nights it was better or worse), do. A
difference within about two standard errors is not shown to be one.
"""

from __future__ import annotations

import statistics
from typing import Any

from simulations.kpis import SUMMARY, fmt

#: compared night by night; True: higher is better
PAIRED: dict[str, bool] = {
    "served_share": True,
    "served_at_wish_share": True,
    "bus_km_per_direct_km": False,
}


def flat(table: dict[str, Any]) -> dict[str, Any]:
    """A night's KPI table (or its ``hindsight`` part) as one row: ``overall`` (the bound's
    figures are not nested) with the villages' figures."""
    return {**table.get("overall", table), **table.get("villages", {})}


def mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    """The mean of ``key`` over the nights that have a value; None if none has."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def spread(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    """The mean, lowest and highest of ``key`` over the nights that have a value (None for
    each if none has)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return {"mean": None, "min": None, "max": None}
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def paired(
    rows: list[dict[str, Any]], ref: list[dict[str, Any]], key: str, higher_better: bool
) -> dict[str, Any]:
    """``rows`` against ``ref`` night by night (same nights, same order) on ``key``: the mean
    difference, its standard error (None with fewer than two nights), and the nights where
    ``rows`` was better and worse (equal ones in neither)."""
    if len(rows) != len(ref):
        raise ValueError(f"paired: {len(rows)} nights against {len(ref)}")
    diffs = [
        r[key] - q[key]
        for r, q in zip(rows, ref, strict=True)
        if r.get(key) is not None and q.get(key) is not None
    ]
    if not diffs:
        return {"mean": None, "se": None, "better": 0, "worse": 0, "nights": 0}
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else None
    up = sum(1 for d in diffs if d > 0)
    down = sum(1 for d in diffs if d < 0)
    return {
        "mean": statistics.fmean(diffs),
        "se": se,
        "better": up if higher_better else down,
        "worse": down if higher_better else up,
        "nights": len(diffs),
    }


def paired_text(key: str, c: dict[str, Any]) -> str:
    """One paired comparison for a reader: shares in points, e.g. "+1.20 +-0.40 pt 3/1"."""
    if c["mean"] is None:
        return "-"
    scale, unit = (1, "") if key == "bus_km_per_direct_km" else (100, " pt")
    se = "" if c["se"] is None else f" +-{c['se'] * scale:.2f}"
    return f"{c['mean'] * scale:+.2f}{se}{unit} {c['better']}/{c['worse']}"


def nights_summary(tables: list[dict[str, Any]]) -> dict[str, Any]:
    """The nights (``tables``, one KPI table each, with ``seed``) as a planner reads them:
    the seeds, and per KPI of the summary the mean, lowest and highest over the nights (and
    the bound's mean where the nights were solved with hindsight)."""
    if not tables:
        raise ValueError("nights_summary: no nights")
    rows = [flat(t) for t in tables]
    bounds = [flat(t["hindsight"]) for t in tables if t.get("hindsight")]
    kpis: dict[str, dict[str, Any]] = {}
    for label, key, unit in SUMMARY:
        online = spread(rows, key)
        bound = mean_of(bounds, key) if bounds else None
        if online["mean"] is None and bound is None:
            continue
        kpis[key] = {"label": label, "unit": unit, **online, "hindsight_mean": bound}
    return {
        "nights": len(tables),
        "seeds": [t.get("seed") for t in tables],
        "kpis": kpis,
        "promises_broken": sum(r.get("promises_broken") or 0 for r in rows),
        "wall_s_mean": mean_of([t["run"] for t in tables], "wall_s"),
    }


def summary_lines(summary: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(label, mean, lowest, highest, bound's mean) of :func:`nights_summary`, formatted."""

    def mean(k: dict[str, Any]) -> str:  # a count's mean with one decimal, not two
        count = k["unit"] == "" and k["mean"] is not None
        return f"{k['mean']:,.1f}" if count else fmt(k["mean"], k["unit"])

    return [
        (
            k["label"],
            mean(k),
            fmt(k["min"], k["unit"]),
            fmt(k["max"], k["unit"]),
            fmt(k["hindsight_mean"], k["unit"]),
        )
        for k in summary["kpis"].values()
    ]


def combinations(tables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A sweep's runs (each table with ``sweep``, its values, and ``seed``) grouped by
    combination in the order they come: each with its nights (by seed), their means over
    :data:`COMPARED` and, for every combination after the first, each of :data:`PAIRED`
    against the first combination on the same nights."""
    groups: dict[str, list[dict[str, Any]]] = {}
    values: dict[str, dict[str, Any]] = {}
    for t in tables:
        key = repr(sorted(t["sweep"].items()))
        groups.setdefault(key, []).append(t)
        values[key] = t["sweep"]
    out: list[dict[str, Any]] = []
    first: list[dict[str, Any]] | None = None
    for key, ts in groups.items():
        rows = [flat(t) for t in sorted(ts, key=lambda t: t.get("seed") or 0)]
        spreads = {k: spread(rows, k) for k in COMPARED}
        entry: dict[str, Any] = {
            "sweep": values[key],
            "buses": ts[0].get("buses"),
            "seeds": sorted(t.get("seed") for t in ts),
            **{part: {k: spreads[k][part] for k in COMPARED} for part in ("mean", "min", "max")},
            "paired": None,
        }
        if first is None:
            first = rows
        elif len(rows) == len(first):
            entry["paired"] = {k: paired(rows, first, k, hb) for k, hb in PAIRED.items()}
        out.append(entry)
    return out


#: the KPIs a sweep's summary shows per combination (means over its nights)
COMPARED: tuple[str, ...] = (
    "served_share",
    "served_at_wish_share",
    "offered_share",
    "ratio",
    "vehicle_km",
    "bus_km_per_direct_km",
    "pooled_share",
    "occupancy",
    "wait_p90_s",
    "co2_saved_kg",
    "fares_cents",
    "promises_broken",
)
