"""The planners' report of a run (or a sweep): an HTML page with map and charts, KPIs as
CSV and JSON. Charts are drawn with matplotlib (headless, Agg) and embedded in the page."""

from __future__ import annotations

import base64
import csv
import html
import io
import itertools
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from simulations import compare, kpis
from simulations.engine import SimResult
from simulations.run import write_json

CREDIT = "Map data © OpenStreetMap contributors (ODbL)"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _map(result: SimResult, world: Any) -> str:
    """The service area with its roads, each bus's night drawn along the roads it drove, and
    the pickups (booked or not)."""
    net = world.network
    fig, ax = plt.subplots(figsize=(8, 8))
    lat, lon = net.node_lat, net.node_lon
    tails, heads = net.tails, net.heads
    segments = np.stack(
        [np.column_stack([lon[tails], lat[tails]]), np.column_stack([lon[heads], lat[heads]])],
        axis=1,
    )
    ax.add_collection(LineCollection(list(segments), colors="#dddddd", linewidths=0.4, zorder=1))
    geom = world.area.geometry
    for poly in getattr(geom, "geoms", [geom]):
        xs, ys = poly.exterior.xy
        ax.plot(xs, ys, color="#888888", lw=1, zorder=2)
    colours = plt.get_cmap("tab10")
    paths: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for i, (vid, points) in enumerate(sorted(result.timelines.items())):
        line: list[list[tuple[float, float]]] = []
        for a, b in itertools.pairwise(points):
            if a.node == b.node:
                continue
            key = (a.node, b.node)
            if key not in paths:
                paths[key] = [(x, y) for y, x in world.times.route(a.node, b.node).polyline]
            line.append(paths[key])
        ax.add_collection(
            LineCollection(line, colors=[colours(i % 10)], linewidths=0.9, alpha=0.55, zorder=3)
        )
        ax.plot([], [], color=colours(i % 10), label=vid)
    for o in result.outcomes:
        c = "#1a7f37" if o.booking_id else "#cf222e"
        ax.scatter([o.trip.origin[1]], [o.trip.origin[0]], s=6, color=c, zorder=4)
    x0, y0, x1, y1 = geom.bounds  # zoomed to the service area
    pad = 0.03 * max(x1 - x0, y1 - y0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect(1 / np.cos(np.radians((y0 + y1) / 2)))
    ax.set_title("Bus paths along the roads; pickups: green booked, red not booked")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.01, 0.01, CREDIT, transform=ax.transAxes, fontsize=7)
    return _png(fig)


def _bound_chart(table: dict[str, Any]) -> str:
    """Online against the hindsight bound (when solved), and villages against the Kernstadt."""
    online = {**table["overall"], **table.get("villages", {})}
    bound = table.get("hindsight")
    both = {**bound, **bound.get("villages", {})} if bound else None
    shares = [
        ("served", "served_share"),
        ("at the wish", "served_at_wish_share"),
        ("Kernstadt", "core_served_share"),
        ("villages", "villages_served_share"),
    ]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.4), width_ratios=(3, 1))
    x = np.arange(len(shares))
    w = 0.38 if both else 0.6
    a1.bar(x - (w / 2 if both else 0), [online.get(k) or 0 for _, k in shares], w,
           label="online", color="#0969da")  # fmt: skip
    if both:
        hs = [both.get(k) or 0 for _, k in shares]
        a1.bar(x + w / 2, hs, w, label="hindsight bound", color="#8c959f")
    a1.set_xticks(x, [label for label, _ in shares])
    a1.set_ylim(0, 1.15)  # room above 100 % for the legend, clear of the bars
    a1.set_yticks(np.linspace(0, 1, 6))
    a1.set_ylabel("share of requests (%)")
    a1.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    a1.legend(fontsize=8, loc="upper center", ncol=2, frameon=False)
    a1.set_title("Served: online against what was possible")
    ratio = [online.get("bus_km_per_direct_km") or 0]
    labels = ["online"]
    if both:
        ratio.append(both.get("bus_km_per_direct_km") or 0)
        labels.append("hindsight")
    a2.bar(labels, ratio, color=["#0969da", "#8c959f"][: len(ratio)])
    a2.axhline(1.0, color="#cf222e", lw=0.8)
    a2.set_ylabel("bus km per direct km")
    a2.set_title("Distance")
    return _png(fig)


def _charts(
    result: SimResult, table: dict[str, Any], records: list[kpis.TripRecord]
) -> dict[str, str]:
    out = {}
    waits = [r.wait_s / 60 for r in records if r.wait_s is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(waits, bins=30, color="#0969da")
    ax.set_xlabel("wait for the bus (min, from the desired time)")
    ax.set_ylabel("trips")
    out["wait"] = _png(fig)
    times, occ = kpis.occupancy_over_night(result)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([(t % 86400) / 3600 + (24 if t >= 86400 else 0) for t in times], occ)
    ax.set_xlabel("hour of the night")
    ax.set_ylabel("passengers on board per bus")
    out["occupancy"] = _png(fig)
    names = sorted(table["districts"], key=lambda n: table["districts"][n]["requests"])
    shares = [table["districts"][n]["served_share"] or 0 for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(names) + 1))
    colour = ["#0969da" if kpis.CORE_MARK in n else "#1a7f37" for n in names]
    ax.barh(names, shares, color=colour)
    core = table.get("villages", {}).get("core_served_share")
    if core is not None:
        ax.axvline(core, color="#0969da", lw=0.8, ls="--")
        ax.axvline(0.9 * core, color="#cf222e", lw=0.8, ls=":")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel(
        "served share by pickup district (blue: Kernstadt, green: villages; dashed: the "
        "Kernstadt's share, dotted: 90 % of it)",
        fontsize=7,
    )
    out["districts"] = _png(fig)
    out["bound"] = _bound_chart(table)
    out["hours"] = _hours_chart(table)
    return out


def _hours_chart(table: dict[str, Any]) -> str:
    """Served by the hour the riders asked: at the wish and with a counter-offer, stacked,
    and the hindsight bound's served share (when solved) as points."""
    hours = table.get("hours", {})
    labels = list(hours)
    wish = [hours[h]["served_at_wish_share"] or 0 for h in labels]
    alt = [hours[h]["served_alternative_share"] or 0 for h in labels]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.arange(len(labels))
    ax.bar(x, wish, color="#0969da", label="at the wish")
    ax.bar(x, alt, bottom=wish, color="#54aeff", label="with a counter-offer")
    bound = (table.get("hindsight") or {}).get("hours")
    top = 1.0
    if bound:
        # over the online run's requests not cancelled: the bound may also carry a rider who
        # cancelled later, so an hour can pass 100 %
        ys = [(bound.get(h) or {}).get("served_share") or 0 for h in labels]
        ax.plot(x, ys, "o", color="#57606a", label="hindsight bound")
        top = max([top, *ys])
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylim(0, top * 1.15)  # room above the bars for the legend
    ax.set_yticks([y for y in np.linspace(0, 1, 6) if y <= top * 1.03])
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("hour the riders asked")
    ax.set_ylabel("served (% of requests)")
    ax.legend(fontsize=7, loc="upper center", ncol=3, frameon=False)
    return _png(fig)


def _kpi_rows(table: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(scope, kpi, value) rows; a count by reason is one row per reason (``kpi:reason``)."""
    scopes = [("overall", table["overall"])]
    scopes += list(table["districts"].items())
    scopes += [(f"asked {hour}", block) for hour, block in table.get("hours", {}).items()]
    rows: list[tuple[str, str, Any]] = []
    for scope, block in scopes:
        for k, v in block.items():
            if k in COUNTS:
                rows += [(scope, f"{k}:{reason}", n) for reason, n in v.items()]
            elif not isinstance(v, dict):
                rows.append((scope, k, v))
    return rows


#: the KPIs that count requests by reason
COUNTS = ("rejections", "wish_not_kept")


def _most_first(counts: dict[str, int]) -> list[tuple[str, int]]:
    """A count by reason, the most frequent reason first."""
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _reasons(counts: dict[str, int]) -> str:
    """A count by reason in one line, most first: 'fleet_full 9, no_vehicle_in_time 3'."""
    return ", ".join(f"{k} {v}" for k, v in _most_first(counts))


def write(
    result: SimResult, table: dict[str, Any], world: Any, district_of: Any, out: Path
) -> Path:
    """index.html, kpis.json, kpis.csv and trips.csv in ``out``; returns the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    records = kpis.trip_records(result, district_of)
    write_json(out / "kpis.json", table)
    with (out / "kpis.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("scope", "kpi", "value"))
        w.writerows(_kpi_rows(table))
    with (out / "trips.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            (
                "trip_id",
                "district",
                "status",
                "reason",
                "passengers",
                "wait_s",
                "promised_wait_s",
                "ride_s",
                "detour",
                "fare_cents",
                "wish_reason",
            )
        )
        for r in records:
            w.writerow(
                (
                    r.trip_id,
                    r.district,
                    r.status,
                    r.reason or "",
                    r.passengers,
                    r.wait_s,
                    r.promised_wait_s,
                    r.ride_s,
                    "" if r.detour is None else round(r.detour, 3),
                    r.fare_cents,
                    r.wish_reason or "",
                )
            )
    charts = _charts(result, table, records)
    img = {"map": _map(result, world), **charts}
    o = table["overall"]
    with_bound = "hindsight" in table
    summary = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{html.escape(a)}</td>"
        + (f"<td>{html.escape(b)}</td>" if with_bound else "")
        + "</tr>"
        for label, a, b in kpis.summary_rows(table)
    )
    summary_head = "<tr><th></th><th>online</th>" + (
        "<th>hindsight bound</th></tr>" if with_bound else "</tr>"
    )
    kpi_html = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
        for k, v in o.items()
        if not isinstance(v, dict)
    )
    rej = "".join(f"<li>{html.escape(k)}: {v}</li>" for k, v in o["rejections"].items())
    unkept = "".join(f"<li>{html.escape(k)}: {v}</li>" for k, v in _most_first(o["wish_not_kept"]))
    dist_rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{b['requests']}</td>"
        f"<td>{_pct(b['served_share'])}</td>"
        f"<td>{_min(b['wait_p50_s'])}</td><td>{_min(b['wait_p90_s'])}</td></tr>"
        for n, b in sorted(table["districts"].items())
    )
    bound_hours = (table.get("hindsight") or {}).get("hours")
    hour_head = "<th>hindsight bound</th>" if bound_hours else ""
    hour_rows = "".join(
        f"<tr><td>{h}</td><td>{b['requests']}</td><td>{_pct(b['served_at_wish_share'])}</td>"
        f"<td>{_pct(b['served_alternative_share'])}</td><td>{b['declined_alternative']}</td>"
        f"<td>{b['rejected'] - b['declined_alternative']}</td>"
        f"<td>{html.escape(_reasons(b['wish_not_kept']))}</td>"
        + (
            f"<td>{_pct((bound_hours.get(h) or {}).get('served_share'))}</td>"
            if bound_hours
            else ""
        )
        + "</tr>"
        for h, b in table.get("hours", {}).items()
    )
    area = html.escape(table["run"]["area"])
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(result.scenario.name)}: nachtbus simulation</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}td{{padding:2px 8px}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>{html.escape(result.scenario.name)}</h1>
<p>{area}, seed {result.seed}, {result.scenario.fleet.buses} buses, {len(result.outcomes)} requests,
{result.scenario.start} to {result.scenario.end}; wall time {table["run"]["wall_s"]} s.</p>
<h2>Summary</h2><table id="summary">{summary_head}{summary}</table>
<p>Hindsight bound: the same night solved with every request known in advance (riders who
do not come left out, one who cancels rides only if picked up before); run with
<code>--hindsight</code> to see it.</p>
<img alt="online against the hindsight bound" src="data:image/png;base64,{img["bound"]}">
<h3>Rejections</h3><ul>{rej}</ul>
<h3>Wished times not kept, by why</h3><p>Every request whose asked time no bus could keep,
whatever followed (a counter-offer taken or declined, or a plain no), by the reason the
rider was told (a broken capacity rule named before a missed window):
<code>fleet_full</code>, a bus that could come has no free seat then;
<code>no_vehicle_in_time</code>, no bus reaches the pickup in its window;
<code>detour_too_long</code>, another rider's ride would be too long;
<code>shift_ends</code>, the trip would end after the shifts.</p>
<ul id="wish-not-kept">{unkept or "<li>none</li>"}</ul>
<h2>By the hour of asking</h2><p>Where in the night riders go without: served at the wish
and with a counter-offer, of the requests asked in each hour (not cancelled), beside the
bound's served share.</p>
<img alt="served by the hour of asking" src="data:image/png;base64,{img["hours"]}">
<table id="hours"><tr><th>asked</th><th>requests</th><th>at the wish</th>
<th>counter-offer</th><th>declined it</th><th>rejected</th><th>wish not kept: why</th>
{hour_head}</tr>{hour_rows}</table>
<h2>Map</h2><img alt="map of trips and bus paths" src="data:image/png;base64,{img["map"]}">
<h2>Wait</h2><img alt="wait distribution" src="data:image/png;base64,{img["wait"]}">
<h2>Occupancy over the night</h2>
<img alt="occupancy" src="data:image/png;base64,{img["occupancy"]}">
<h2>Districts</h2><img alt="served share by district"
src="data:image/png;base64,{img["districts"]}">
<table id="districts"><tr><th>district</th><th>requests</th><th>served share</th>
<th>wait p50 (min)</th><th>wait p90 (min)</th></tr>{dist_rows}</table>
<h2>All figures (raw, seconds and km)</h2><table id="kpis">{kpi_html}</table>
<p><small>{CREDIT}. Files: kpis.json, kpis.csv, trips.csv.</small></p></body></html>"""
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _min(v: float | None) -> str:
    return "-" if v is None else f"{v / 60:.1f}"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return html.escape(str(v))


def write_sweep(tables: list[dict[str, Any]], out: Path) -> Path:
    """Summary of a sweep: sweep.json (every run), sweep.csv (one row per run: the swept
    values, the night's seed, the KPIs), a trade-off chart and index.html with one row per
    combination (the mean over its nights, with the lowest and highest where there are
    several, and each combination against the first, night by night)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "sweep.json", tables)
    keys = compare.COMPARED
    swept = sorted({k for t in tables for k in t["sweep"]})
    with (out / "sweep.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow((*swept, "seed", *keys))
        for t in tables:
            w.writerow(
                (
                    *(t["sweep"].get(k) for k in swept),
                    t.get("seed"),
                    *(compare.flat(t).get(k) for k in keys),
                )
            )
    combos = compare.combinations(tables)
    several = any(len(c["seeds"]) > 1 for c in combos)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in combos:
        label = ", ".join(f"{k}={v}" for k, v in c["sweep"].items() if k != "buses") or "runs"
        groups.setdefault(label, []).append(c)
    for label, cs in groups.items():
        cs = sorted(cs, key=lambda c: c["buses"])
        for ax, key in ((a1, "served_share"), (a2, "vehicle_km")):
            xs, ys = [c["buses"] for c in cs], [c["mean"][key] for c in cs]
            if several:  # the nights' range around the mean
                low = [c["mean"][key] - c["min"][key] for c in cs]
                high = [c["max"][key] - c["mean"][key] for c in cs]
                ax.errorbar(xs, ys, yerr=[low, high], fmt="o-", capsize=3, label=label)
            else:
                ax.plot(xs, ys, "o-", label=label)
    nights = (
        f" (mean of {len(combos[0]['seeds'])} nights, bars: lowest to highest)" if several else ""
    )
    a1.set_xlabel("buses")
    a1.set_ylabel("served share" + (" (mean)" if several else ""))
    a2.set_xlabel("buses")
    a2.set_ylabel("vehicle-km" + (" (mean)" if several else ""))
    a1.legend(fontsize=7)
    fig.savefig(out / "tradeoffs.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    def cell(c: dict[str, Any], k: str) -> str:
        mean = _fmt(c["mean"][k])
        if not several or c["min"][k] is None:
            return f"<td>{mean}</td>"
        return f"<td>{mean}<br><small>{_fmt(c['min'][k])} to {_fmt(c['max'][k])}</small></td>"

    def against(c: dict[str, Any], k: str) -> str:
        return compare.paired_text(k, c["paired"][k]) if c["paired"] else "-"

    pair_head = (
        "".join(f"<th>{k} against the first</th>" for k in compare.PAIRED) if several else ""
    )
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_fmt(c['sweep'].get(k))}</td>" for k in swept)
        + "".join(cell(c, k) for k in keys)
        + (
            "".join(f"<td>{html.escape(against(c, k))}</td>" for k in compare.PAIRED)
            if several
            else ""
        )
        + "</tr>"
        for c in combos
    )
    head = "".join(f"<th>{k}</th>" for k in (*swept, *keys)) + pair_head
    note = (
        f"<p>Each row: the mean over the same {len(combos[0]['seeds'])} nights (seeds "
        f"{', '.join(map(str, combos[0]['seeds']))}), lowest to highest below. Against the "
        "first combination night by night: the mean difference (shares in points) +- its "
        "standard error, and the nights better / worse; a difference within about two "
        "standard errors is not shown to be one.</p>"
        if several
        else ""
    )
    (out / "index.html").write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>sweep</title></head><body>
<h1>Sweep{html.escape(nights)}</h1><img alt="trade-offs" src="tradeoffs.png">{note}
<table><tr>{head}</tr>{rows}</table>
</body></html>""",
        encoding="utf-8",
    )
    return out / "index.html"


def write_nights(tables: list[dict[str, Any]], summary: dict[str, Any], out: Path) -> Path:
    """Summary of several nights of one scenario: nights.json (every night's KPIs and the
    summary), nights.csv (one row per night) and index.html (each KPI's mean, lowest and
    highest over the nights, and the bound's mean where solved)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "nights.json", {"nights": tables, "summary": summary})
    keys = list(summary["kpis"])
    with (out / "nights.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("seed", *keys))
        for t in tables:
            row = compare.flat(t)
            w.writerow((t.get("seed"), *(row.get(k) for k in keys)))
    bound = any(k["hindsight_mean"] is not None for k in summary["kpis"].values())
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{html.escape(mean)}</td>"
        f"<td>{html.escape(low)}</td><td>{html.escape(high)}</td>"
        + (f"<td>{html.escape(b)}</td>" if bound else "")
        + "</tr>"
        for label, mean, low, high, b in compare.summary_lines(summary)
    )
    seeds = ", ".join(map(str, summary["seeds"]))
    title = f"{html.escape(str(tables[0].get('scenario', 'scenario')))}: {summary['nights']} nights"
    bound_head = "<th>bound (mean)</th>" if bound else ""
    (out / "index.html").write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}td{{padding:2px 8px}}
td:not(:first-child){{text-align:right}}</style></head><body>
<h1>{title}</h1>
<p>Seeds {seeds}; {summary["promises_broken"]} promises broken over all nights. The nights of one
scenario differ from each other: a change is judged on the same nights, night by night
(<code>--sweep --seeds N</code>).</p>
<table><tr><th>KPI</th><th>mean</th><th>lowest</th><th>highest</th>{bound_head}</tr>
{rows}</table></body></html>""",
        encoding="utf-8",
    )
    return out / "index.html"
