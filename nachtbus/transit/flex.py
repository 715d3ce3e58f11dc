"""GTFS-Flex out: the night bus as a journey planner reads it, and the reference's rules
checked on what we write.

The service is one zone-based demand-responsive trip: anywhere in the service area
(``locations.geojson``) to anywhere in it, within the service hours as pickup / drop-off
windows, bookable by app (and phone, when the setting has a number) in real time. Files,
fields and conditions follow the GTFS Schedule reference with Flex (google/transit,
gtfs/spec/en/reference.md); :func:`check` tests a feed against those rules.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from shapely.geometry import mapping

from nachtbus.units import format_clock

ROUTE_ID = "nachtbus"
TRIP_ID = "nachtbus-night"
SERVICE_ID = "night"
ZONE_ID = "area"
RULE_ID = "book"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class FlexService:
    """What the export says of the service (from the settings and the rules)."""

    agency_name: str
    agency_url: str
    timezone: str
    area: Any  # shapely Polygon / MultiPolygon in lon/lat
    area_name: str
    service_start_s: int  # wall-clock service-day seconds, may pass 24:00
    service_end_s: int
    start_date: date
    end_date: date
    prebook_horizon_s: int
    phone: str = ""
    booking_url: str = ""
    lang: str = "de"
    weekdays: tuple[bool, ...] = (True,) * 7


def _time(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    return f"{h:02d}:{rest // 60:02d}:{rest % 60:02d}"


def files(svc: FlexService) -> dict[str, str]:
    """The feed's files, name -> text."""
    out: dict[str, str] = {}

    def table(name: str, header: list[str], rows: Iterable[list[object]]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        out[name] = buf.getvalue()

    table(
        "agency.txt",
        [
            "agency_id",
            "agency_name",
            "agency_url",
            "agency_timezone",
            "agency_lang",
            "agency_phone",
        ],
        [[ROUTE_ID, svc.agency_name, svc.agency_url, svc.timezone, svc.lang, svc.phone]],
    )
    table(
        "routes.txt",
        [
            "route_id",
            "agency_id",
            "route_short_name",
            "route_long_name",
            "route_type",
            "route_desc",
        ],
        [
            [
                ROUTE_ID,
                ROUTE_ID,
                "Nachtbus",
                f"On-demand night service {svc.area_name}",
                3,
                "On-demand night bus, door to door in the service area; book by app"
                + (" or phone" if svc.phone else ""),
            ]
        ],
    )
    table(
        "calendar.txt",
        ["service_id", *DAYS, "start_date", "end_date"],
        [
            [
                SERVICE_ID,
                *(int(d) for d in svc.weekdays),
                svc.start_date.strftime("%Y%m%d"),
                svc.end_date.strftime("%Y%m%d"),
            ]
        ],
    )
    table(
        "trips.txt",
        ["route_id", "service_id", "trip_id", "trip_headsign", "wheelchair_accessible"],
        [[ROUTE_ID, SERVICE_ID, TRIP_ID, f"Nachtbus {svc.area_name}", 1]],
    )
    start, end = _time(svc.service_start_s), _time(svc.service_end_s)
    # zone to zone: two records with the same location, the first for boarding, the second
    # for alighting (the reference's "travel within the same location")
    table(
        "stop_times.txt",
        [
            "trip_id",
            "location_id",
            "stop_sequence",
            "start_pickup_drop_off_window",
            "end_pickup_drop_off_window",
            "pickup_type",
            "drop_off_type",
            "pickup_booking_rule_id",
            "drop_off_booking_rule_id",
        ],
        [
            [TRIP_ID, ZONE_ID, 1, start, end, 2, 1, RULE_ID, ""],
            [TRIP_ID, ZONE_ID, 2, start, end, 1, 2, "", RULE_ID],
        ],
    )
    hours = svc.prebook_horizon_s // 3600
    message = (
        f"Nachtbus {svc.area_name}: book in the app"
        + (f" or call {svc.phone}" if svc.phone else "")
        + f", for now or up to {hours} h ahead; the bus comes to your door "
        f"({format_clock(svc.service_start_s)[:5]}-{format_clock(svc.service_end_s)[:5]})."
    )
    table(
        "booking_rules.txt",
        ["booking_rule_id", "booking_type", "message", "phone_number", "booking_url"],
        [[RULE_ID, 0, message, svc.phone, svc.booking_url]],
    )
    table(
        "feed_info.txt",
        [
            "feed_publisher_name",
            "feed_publisher_url",
            "feed_lang",
            "feed_start_date",
            "feed_end_date",
            "feed_version",
            "feed_contact_url",
        ],
        [
            [
                svc.agency_name,
                svc.agency_url,
                svc.lang,
                svc.start_date.strftime("%Y%m%d"),
                svc.end_date.strftime("%Y%m%d"),
                svc.start_date.isoformat(),
                svc.agency_url,
            ]
        ],
    )
    out["locations.geojson"] = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "id": ZONE_ID,
                    "properties": {
                        "stop_name": f"Nachtbus {svc.area_name}",
                        "stop_desc": "Service area of the on-demand night bus",
                    },
                    "geometry": mapping(svc.area),
                }
            ],
        }
    )
    return out


def write_dir(svc: FlexService, folder: Path) -> list[Path]:
    """Write the feed's files into ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files(svc).items():
        p = folder / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


def zip_bytes(svc: FlexService) -> bytes:
    """The feed as one zip (files at its root, as GTFS wants)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in sorted(files(svc).items()):
            z.writestr(name, text)
    return buf.getvalue()


# ---------------------------------------------------------------------- the reference's rules
REQUIRED_FILES = ("agency.txt", "routes.txt", "trips.txt", "stop_times.txt")
REQUIRED_FIELDS = {
    "agency.txt": ("agency_name", "agency_url", "agency_timezone"),
    "routes.txt": ("route_id", "route_type"),
    "trips.txt": ("route_id", "service_id", "trip_id"),
    "stop_times.txt": ("trip_id", "stop_sequence"),
    "calendar.txt": ("service_id", *DAYS, "start_date", "end_date"),
    "booking_rules.txt": ("booking_rule_id", "booking_type"),
    "feed_info.txt": ("feed_publisher_name", "feed_publisher_url", "feed_lang"),
}


def read(source: Path | bytes) -> dict[str, str]:
    """A feed's files (zip path, zip bytes or folder), name -> text."""
    if isinstance(source, bytes):
        with zipfile.ZipFile(io.BytesIO(source)) as z:
            return {n: z.read(n).decode("utf-8-sig") for n in z.namelist()}
    if source.is_dir():
        return {
            p.name: p.read_text(encoding="utf-8-sig")
            for p in source.iterdir()
            if p.suffix in (".txt", ".geojson")
        }
    with zipfile.ZipFile(source) as z:
        return {n: z.read(n).decode("utf-8-sig") for n in z.namelist()}


def _rows(text: str) -> list[dict[str, str]]:
    return [
        {k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))
    ]


def _gtfs_seconds(text: str) -> int | None:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[1]) != 2:
        return None
    h, m, s = (int(p) for p in parts)
    return h * 3600 + m * 60 + s if m < 60 and s < 60 else None


def check(feed: dict[str, str]) -> list[str]:
    """The GTFS(-Flex) rules a feed breaks, each as "file: field: rule" (empty: none).

    Checked: required files and fields; unique ids; ids that resolve (agency, route,
    service, trip, location, booking rule); calendar dates and weekday flags; the Flex
    conditions on stop_times (exactly one of stop_id / location_group_id / location_id; the
    windows required with a location, forbidden with arrival/departure times, start before
    end, HH:MM:SS; pickup_type 0 and 3 and drop_off_type 0 forbidden with windows; stop
    sequences increasing; a zone trip with two records of its location); booking rules
    (booking_type 0-2, prior notice fields required / forbidden by type); locations.geojson
    (a FeatureCollection of Features with unique ids, Polygon / MultiPolygon geometries,
    closed rings in lon/lat ranges); stops.txt needed unless every stop time uses a
    location."""
    problems: list[str] = []
    tables = {name: _rows(text) for name, text in feed.items() if name.endswith(".txt")}
    for name in REQUIRED_FILES:
        if name not in tables:
            problems.append(f"{name}: required file missing")
    if "calendar.txt" not in tables and "calendar_dates.txt" not in tables:
        problems.append("calendar.txt: calendar.txt or calendar_dates.txt is required")
    for name, fields in REQUIRED_FIELDS.items():
        for i, row in enumerate(tables.get(name, [])):
            for f in fields:
                if not row.get(f):
                    problems.append(f"{name}: {f}: required (row {i + 1})")

    def ids(name: str, field: str) -> set[str]:
        seen: set[str] = set()
        for row in tables.get(name, []):
            v = row.get(field, "")
            if v in seen:
                problems.append(f"{name}: {field}: {v!r} is not unique")
            seen.add(v)
        return seen

    agencies = ids("agency.txt", "agency_id")
    routes = ids("routes.txt", "route_id")
    trips = ids("trips.txt", "trip_id")
    services = {r["service_id"] for r in tables.get("calendar.txt", [])} | {
        r["service_id"] for r in tables.get("calendar_dates.txt", [])
    }
    rules = ids("booking_rules.txt", "booking_rule_id")
    stops = ids("stops.txt", "stop_id")
    for r in tables.get("routes.txt", []):
        if len(agencies) > 1 and not r.get("agency_id"):
            problems.append("routes.txt: agency_id: required with several agencies")
        if r.get("agency_id") and agencies and r["agency_id"] not in agencies:
            problems.append(f"routes.txt: agency_id: {r['agency_id']!r} does not resolve")
        if not (r.get("route_short_name") or r.get("route_long_name")):
            problems.append("routes.txt: route_short_name or route_long_name is required")
    for t in tables.get("trips.txt", []):
        if t.get("route_id") not in routes:
            problems.append(f"trips.txt: route_id: {t.get('route_id')!r} does not resolve")
        if t.get("service_id") not in services:
            problems.append(f"trips.txt: service_id: {t.get('service_id')!r} does not resolve")
    for c in tables.get("calendar.txt", []):
        for f in DAYS:
            if c.get(f) not in ("0", "1"):
                problems.append(f"calendar.txt: {f}: must be 0 or 1")
        for f in ("start_date", "end_date"):
            v = c.get(f, "")
            if not (len(v) == 8 and v.isdigit()):
                problems.append(f"calendar.txt: {f}: must be YYYYMMDD")
        if c.get("start_date", "") > c.get("end_date", ""):
            problems.append("calendar.txt: end_date: must not be before start_date")

    locations: set[str] = set()
    if "locations.geojson" in feed:
        locations = _check_locations(feed["locations.geojson"], problems)
    if stops & locations:
        problems.append("locations.geojson: id: must differ from every stops.txt stop_id")

    by_trip: dict[str, list[dict[str, str]]] = {}
    for i, st in enumerate(tables.get("stop_times.txt", [])):
        where = f"stop_times.txt (row {i + 1})"
        by_trip.setdefault(st.get("trip_id", ""), []).append(st)
        if st.get("trip_id") not in trips:
            problems.append(f"{where}: trip_id: {st.get('trip_id')!r} does not resolve")
        refs = [f for f in ("stop_id", "location_group_id", "location_id") if st.get(f)]
        if len(refs) != 1:
            problems.append(
                f"{where}: stop_id: exactly one of stop_id, location_group_id, location_id"
            )
        if st.get("stop_id") and st["stop_id"] not in stops:
            problems.append(f"{where}: stop_id: {st['stop_id']!r} does not resolve")
        if st.get("location_id") and st["location_id"] not in locations:
            problems.append(f"{where}: location_id: {st['location_id']!r} does not resolve")
        start, end = st.get("start_pickup_drop_off_window"), st.get("end_pickup_drop_off_window")
        windows = bool(start or end)
        if (st.get("location_id") or st.get("location_group_id")) and not (start and end):
            problems.append(f"{where}: start_pickup_drop_off_window: required with a location")
        if bool(start) != bool(end):
            problems.append(f"{where}: end_pickup_drop_off_window: both windows or neither")
        if windows and (st.get("arrival_time") or st.get("departure_time")):
            problems.append(f"{where}: arrival_time: forbidden with pickup/drop-off windows")
        if start and end:
            a, b = _gtfs_seconds(start), _gtfs_seconds(end)
            if a is None or b is None:
                problems.append(f"{where}: start_pickup_drop_off_window: must be HH:MM:SS")
            elif a >= b:
                problems.append(f"{where}: end_pickup_drop_off_window: must be after the start")
        pickup, drop = st.get("pickup_type", ""), st.get("drop_off_type", "")
        if pickup not in ("", "0", "1", "2", "3") or drop not in ("", "0", "1", "2", "3"):
            problems.append(f"{where}: pickup_type: must be 0 to 3")
        if windows and pickup in ("", "0", "3"):
            problems.append(f"{where}: pickup_type: 0 (or empty) and 3 forbidden with windows")
        if windows and drop in ("", "0"):
            problems.append(f"{where}: drop_off_type: 0 (or empty) forbidden with windows")
        for f in ("pickup_booking_rule_id", "drop_off_booking_rule_id"):
            if st.get(f) and st[f] not in rules:
                problems.append(f"{where}: {f}: {st[f]!r} does not resolve")
        if pickup == "2" and not st.get("pickup_booking_rule_id"):
            problems.append(f"{where}: pickup_booking_rule_id: recommended with pickup_type 2")
        if drop == "2" and not st.get("drop_off_booking_rule_id"):
            problems.append(f"{where}: drop_off_booking_rule_id: recommended with drop_off_type 2")
    for trip_id, rows in by_trip.items():
        seq = [int(r["stop_sequence"]) for r in rows if r.get("stop_sequence", "").isdigit()]
        if seq != sorted(set(seq)):
            problems.append(f"stop_times.txt: stop_sequence: must increase along {trip_id!r}")
        zone_rows = [r.get("location_id") for r in rows if r.get("location_id")]
        for loc in set(zone_rows):
            if zone_rows.count(loc) < 2 and len(rows) == 1:
                problems.append(
                    f"stop_times.txt: location_id: travel within {loc!r} needs two records"
                )
    if (
        tables.get("stop_times.txt")
        and "stops.txt" not in tables
        and any(r.get("stop_id") for r in tables["stop_times.txt"])
    ):
        problems.append("stops.txt: required when stop times use stop_id")

    for i, r in enumerate(tables.get("booking_rules.txt", [])):
        where = f"booking_rules.txt (row {i + 1})"
        kind = r.get("booking_type", "")
        if kind not in ("0", "1", "2"):
            problems.append(f"{where}: booking_type: must be 0, 1 or 2")
            continue
        rule = {
            "prior_notice_duration_min": kind == "1",
            "prior_notice_last_day": kind == "2",
        }
        for f, needed in rule.items():
            if needed and not r.get(f):
                problems.append(f"{where}: {f}: required for booking_type {kind}")
            if not needed and r.get(f):
                problems.append(f"{where}: {f}: forbidden for booking_type {kind}")
        if kind != "1" and r.get("prior_notice_duration_max"):
            problems.append(f"{where}: prior_notice_duration_max: forbidden for type {kind}")
        if kind == "0" and r.get("prior_notice_start_day"):
            problems.append(f"{where}: prior_notice_start_day: forbidden for booking_type 0")
        if kind != "2" and r.get("prior_notice_service_id"):
            problems.append(f"{where}: prior_notice_service_id: forbidden unless type 2")
        if bool(r.get("prior_notice_last_day")) != bool(r.get("prior_notice_last_time")):
            problems.append(f"{where}: prior_notice_last_time: with prior_notice_last_day")
    return problems


def _check_locations(text: str, problems: list[str]) -> set[str]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        problems.append(f"locations.geojson: not JSON: {exc}")
        return set()
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        problems.append("locations.geojson: type: must be a FeatureCollection with features")
        return set()
    seen: set[str] = set()
    for f in data["features"]:
        fid = f.get("id")
        if f.get("type") != "Feature" or not isinstance(fid, str) or not fid:
            problems.append("locations.geojson: id: every Feature needs a string id")
            continue
        if fid in seen:
            problems.append(f"locations.geojson: id: {fid!r} is not unique")
        seen.add(fid)
        geom = f.get("geometry") or {}
        if geom.get("type") not in ("Polygon", "MultiPolygon"):
            problems.append(f"locations.geojson: geometry: {fid!r} must be a (Multi)Polygon")
            continue
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for poly in polys:
            for ring in poly:
                if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
                    problems.append(f"locations.geojson: coordinates: {fid!r} ring not closed")
                if any(not (-180 <= x <= 180 and -90 <= y <= 90) for x, y, *_ in ring):
                    problems.append(f"locations.geojson: coordinates: {fid!r} not lon/lat")
    return seen
