"""A town's input folder (``shared/data/areas/<town>``, ``Settings.area_dir``): its districts
and its main station, for towns that have no district file of their own.

**The districts are an estimate, not the official Ortsteile.** Soest has a districts file with
official boundaries' names and populations (``data/soest/districts.geojson``); the four other
towns have only OpenStreetMap's place points (``<town>_area_places.csv``). From those, each
``town`` / ``city`` point and each ``suburb`` / ``village`` point inside the boundary is the
seed of one district: its Voronoi cell, clipped to the service area. A town or city point names
a part of the core, ``"<name> (Kernstadt)"`` (the KPIs' core is every district whose name holds
"Kernstadt"), every other seed an Ortsteil. Hamlets, localities and single dwellings are no
seeds: they fall into the nearest one's cell. The population of a district is the sum of the
residential cells (``pop_est``) whose centre lies in it. A town with its own districts file
puts it in the folder as ``districts.geojson``, which is then used instead.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPoint, Point, shape
from shapely.geometry.base import BaseGeometry

from graphs.districts import District, Districts
from nachtbus.errors import GraphSourceError

#: OSM place classes that seed a district, and those of them that are the core town.
SEED_CLASSES = ("city", "town", "suburb", "village")
CORE_CLASSES = ("city", "town")
#: A station's catchment when choosing the main one: residents within this distance.
STATION_CATCHMENT_M = 2000.0


def _area(folder: Path) -> BaseGeometry:
    path = folder / "service_area.geojson"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return shape(data["features"][0]["geometry"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        msg = f"cannot read the service area {path}: {exc}"
        raise GraphSourceError(msg, field="area_dir") from None


def _rows(path: Path, columns: tuple[str, ...], numbers: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of a town folder's CSV, with ``numbers`` as floats; a missing file or column,
    or a bad number, is a GraphSourceError naming ``area_dir``, the file and the line."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                msg = f"{path}: needs the column(s) {', '.join(missing)}"
                raise GraphSourceError(msg, field="area_dir")
            out = []
            for row in reader:
                try:
                    out.append({**row, **{c: float(row[c]) for c in numbers}})
                except (TypeError, ValueError):
                    msg = f"{path} line {reader.line_num}: {', '.join(numbers)} must be numbers"
                    raise GraphSourceError(msg, field="area_dir") from None
            return out
    except OSError as exc:
        raise GraphSourceError(f"cannot read {path}: {exc}", field="area_dir") from None


def residents(folder: Path) -> list[tuple[float, float, float]]:
    """(lat, lon, pop_est) of a folder's residential cells with anyone living there."""
    rows = _rows(
        folder / "residential_cells.csv", ("lat", "lon", "pop_est"), ("lat", "lon", "pop_est")
    )
    return [(r["lat"], r["lon"], r["pop_est"]) for r in rows if r["pop_est"] > 0]


def pois_inside(folder: Path) -> list[dict[str, Any]]:
    """A folder's POIs inside the service area (``lat`` and ``lon`` as floats)."""
    columns = ("lat", "lon", "category", "subclass", "in_service_area")
    rows = _rows(folder / "pois.csv", columns, ("lat", "lon"))
    return [row for row in rows if row["in_service_area"] == "yes"]


def estimated_districts(folder: Path) -> Districts:
    """The districts of a town's folder, estimated from its OSM places (module docstring)."""
    area = _area(folder)
    places = sorted(folder.glob("*_area_places.csv"))
    if len(places) != 1:
        raise GraphSourceError(f"{folder}: needs one *_area_places.csv", field="area_dir")
    seeds: list[tuple[str, Point]] = []
    for row in _rows(places[0], ("name", "place_class", "lat", "lon"), ("lat", "lon")):
        pt = Point(row["lon"], row["lat"])
        if row["place_class"] in SEED_CLASSES and area.contains(pt):
            core = row["place_class"] in CORE_CLASSES
            seeds.append((f"{row['name']} (Kernstadt)" if core else row["name"], pt))
    if not seeds:
        raise GraphSourceError(
            f"{places[0]}: no town, suburb or village inside the service area", field="area_dir"
        )
    seen: Counter[str] = Counter()
    named = []
    for name, pt in seeds:  # two places of one name (OSM has them) stay two districts
        seen[name] += 1
        named.append((name if seen[name] == 1 else f"{name} ({seen[name]})", pt))
    if len(named) == 1:
        cells: list[BaseGeometry] = [area]
    else:
        regions = shapely.voronoi_polygons(MultiPoint([pt for _, pt in named]), extend_to=area)
        by_seed = {}
        for region in regions.geoms:
            owner = next(i for i, (_, pt) in enumerate(named) if region.contains(pt))
            by_seed[owner] = region
        cells = [by_seed[i].intersection(area) for i in range(len(named))]
    people = [0.0] * len(cells)
    tree = shapely.STRtree(cells)
    for lat, lon, pop in residents(folder):
        hit = tree.query(Point(lon, lat), predicate="intersects")
        if len(hit):
            people[int(hit[0])] += pop
    return Districts(
        [
            District(name, round(pop), cell)
            for (name, _), cell, pop in zip(named, cells, people, strict=True)
            if not cell.is_empty
        ]
    )


def load_districts(path: Path) -> Districts:
    """Districts from a GeoJSON file, or estimated from a town folder's places CSV (what
    ``Settings.districts_source`` gives for an ``area_dir`` without a districts file)."""
    if path.suffix == ".csv":
        return estimated_districts(path.parent)
    return Districts.from_geojson(path)


def main_station(folder: Path) -> tuple[float, float] | None:
    """The main station of a town's folder (:func:`main_station_of` its POIs and residents)."""
    return main_station_of(pois_inside(folder), residents(folder))


def main_station_of(
    pois: list[dict[str, Any]], cells: list[tuple[float, float, float]]
) -> tuple[float, float] | None:
    """(lat, lon) of the railway station among ``pois`` (inside the service area) with the most
    residents within 2 km (the one riders from trains mostly come from); None if none is."""
    stations = [
        (row["lat"], row["lon"])
        for row in pois
        if (row["category"], row["subclass"]) == ("transport", "station")
    ]
    if not stations:
        return None

    def catchment(st: tuple[float, float]) -> float:
        k = math.cos(math.radians(st[0]))
        r2 = (STATION_CATCHMENT_M / 111_320) ** 2
        return sum(
            pop for lat, lon, pop in cells if (lat - st[0]) ** 2 + ((lon - st[1]) * k) ** 2 <= r2
        )

    return max(stations, key=catchment)
