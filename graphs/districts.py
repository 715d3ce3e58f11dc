"""Districts of a service area (Kernstadt and Ortsteile): which one a point is in.

Read from a GeoJSON FeatureCollection of (Multi)Polygons with a ``name`` property (and, when
present, ``population``), e.g. ``data/soest/districts.geojson``. Used by zone tariffs and by the
planners' per-district figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from nachtbus.errors import GraphSourceError


@dataclass(frozen=True)
class District:
    name: str
    population: int
    geometry: BaseGeometry


class Districts:
    """A point -> district lookup over non-overlapping polygons."""

    def __init__(self, districts: list[District]) -> None:
        if not districts:
            raise GraphSourceError("no districts given", field="districts_file")
        self.districts = tuple(districts)
        self._tree = shapely.STRtree([d.geometry for d in districts])
        for d in districts:
            shapely.prepare(d.geometry)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.districts]

    @classmethod
    def from_geojson(cls, path: Path) -> Districts:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GraphSourceError(
                f"cannot read districts {path}: {exc}", field="districts_file"
            ) from None
        out = []
        for i, feat in enumerate(data.get("features", []) if isinstance(data, dict) else []):
            props = feat.get("properties") or {}
            geom = feat.get("geometry") or {}
            if geom.get("type") not in ("Polygon", "MultiPolygon") or "name" not in props:
                raise GraphSourceError(
                    f"{path}: feature {i} needs a (Multi)Polygon and a name",
                    field="districts_file",
                )
            out.append(District(str(props["name"]), int(props.get("population") or 0), shape(geom)))
        return cls(out)

    def name_at(self, lat: float, lon: float) -> str | None:
        """The district containing the point (None outside all of them)."""
        pt = Point(lon, lat)
        for i in self._tree.query(pt):
            d = self.districts[int(i)]
            if d.geometry.covers(pt):
                return d.name
        return None
