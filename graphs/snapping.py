"""From a rider's lat/lon to the road network, and the service area.

Door to door means the bus stops on the nearest drivable road, not at the nearest junction: a
point is projected onto the nearest edge geometry, and that projection is the pickup point handed
to rider and driver. For routing, the point is attached to the end of that edge that is nearer
along the road (travel times are node to node; the error is at most half an edge, in town a few
seconds).

Distances use a local equirectangular projection centred on the network: within a town-sized
region (±30 km) it is accurate to well under 1 %, and it needs no projection library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from graphs.network import RoadNetwork
from nachtbus.errors import (
    ConfigError,
    GraphSourceError,
    InvalidCoordinate,
    NoRoadNearby,
    OutsideServiceArea,
)
from nachtbus.units import to_int

EARTH_RADIUS_M = 6_371_008.8


def validate_coordinate(lat: object, lon: object, field: str = "position") -> tuple[float, float]:
    """Return (lat, lon) as floats or raise InvalidCoordinate naming ``field`` and the rule."""
    values = []
    for name, value, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        try:
            f = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidCoordinate(f"{name} {value!r} is not a number", field=field) from None
        if not math.isfinite(f):
            raise InvalidCoordinate(f"{name} {value!r} is not a finite number", field=field)
        if not -limit <= f <= limit:
            raise InvalidCoordinate(
                f"{name} {value!r} is outside the valid range -{limit:g}..{limit:g}", field=field
            )
        values.append(f)
    return values[0], values[1]


@dataclass(frozen=True)
class LocalProjection:
    """Equirectangular projection in metres around (lat0, lon0)."""

    lat0: float
    lon0: float

    @property
    def _kx(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def _ky(self) -> float:
        return math.radians(1.0) * EARTH_RADIUS_M

    def to_xy(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
        lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        return np.stack([(lon - self.lon0) * self._kx, (lat - self.lat0) * self._ky], axis=-1)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        return self.lat0 + y / self._ky, self.lon0 + x / self._kx

    def geometry_to_xy(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda c: self.to_xy(c[:, 1], c[:, 0]))


@dataclass(frozen=True)
class SnappedPoint:
    """A point placed on the road network.

    ``lat``/``lon`` is the pickup point on the road, ``node`` the graph node used for routing,
    ``offset_m`` the distance from the asked position to the road.
    """

    node: int
    lat: float
    lon: float
    offset_m: int
    edge: int
    street: str | None


class Snapper:
    """Nearest-road snapping over an STRtree of the network's edge geometries."""

    def __init__(self, network: RoadNetwork, max_distance_m: int = 1000) -> None:
        self.network = network
        self.max_distance_m = max_distance_m
        lat0 = float(network.node_lat.mean()) if network.n_nodes else 0.0
        lon0 = float(network.node_lon.mean()) if network.n_nodes else 0.0
        self.projection = LocalProjection(lat0, lon0)
        # One line per undirected road piece: u->v and v->u share a geometry.
        tails, heads = network.tails, network.heads
        keep = [
            e for e in range(network.n_edges) if tails[e] < heads[e] or not self._has_reverse(e)
        ]
        self._edge_of_line = np.array(keep, dtype=np.int64)
        xy = network.geom_lat, network.geom_lon
        pts = self.projection.to_xy(*xy)
        gi = network.geom_indptr
        self._lines = np.array(
            [shapely.LineString(pts[gi[e] : gi[e + 1]]) for e in keep], dtype=object
        )
        self._tree = shapely.STRtree(self._lines)

    def _has_reverse(self, e: int) -> bool:
        u, v = int(self.network.tails[e]), int(self.network.heads[e])
        try:
            self.network.edge_index(v, u)
        except KeyError:
            return False
        return True

    def snap(self, lat: float, lon: float, field: str = "position") -> SnappedPoint:
        """Place (lat, lon) on the nearest drivable road; NoRoadNearby beyond the radius."""
        lat, lon = validate_coordinate(lat, lon, field)
        xy = self.projection.to_xy(np.array(lat), np.array(lon))
        pt = Point(xy)
        idx, dist = self._tree.query_nearest(pt, return_distance=True, all_matches=False)
        if len(idx) == 0 or dist[0] > self.max_distance_m:
            d = f"{dist[0]:.0f} m" if len(dist) else "unknown distance"
            raise NoRoadNearby(
                f"no drivable road within {self.max_distance_m} m (nearest: {d})", field=field
            )
        line = self._lines[idx[0]]
        e = int(self._edge_of_line[idx[0]])
        along = line.project(pt)
        on_road = line.interpolate(along)
        node = self.network.tails[e] if along <= line.length / 2 else self.network.heads[e]
        plat, plon = self.projection.to_latlon(on_road.x, on_road.y)
        return SnappedPoint(
            node=int(node),
            lat=round(plat, 7),
            lon=round(plon, 7),
            offset_m=to_int(float(dist[0])),
            edge=e,
            street=self.network.street_name(e),
        )

    def nearest_nodes(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64]
    ) -> NDArray[np.int32]:
        """Vectorised snapping of many points to their routing nodes (no radius check)."""
        pts = shapely.points(self.projection.to_xy(lat, lon))
        line_idx = self._tree.query_nearest(pts, all_matches=False)[1]
        lines = self._lines[line_idx]
        along = shapely.line_locate_point(lines, pts)
        lengths = shapely.length(lines)
        edges = self._edge_of_line[line_idx]
        first_half = along <= lengths / 2
        return np.where(first_half, self.network.tails[edges], self.network.heads[edges]).astype(
            np.int32
        )


class ServiceArea:
    """The polygon in which the night bus picks up and drops off riders."""

    def __init__(self, geometry: BaseGeometry, name: str = "service area") -> None:
        if geometry.is_empty or geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise ConfigError(f"service area must be a (Multi)Polygon, got {geometry.geom_type}")
        self.name = name
        self.geometry = geometry
        c = geometry.centroid
        self.projection = LocalProjection(c.y, c.x)
        self._xy = self.projection.geometry_to_xy(geometry)
        shapely.prepare(self._xy)

    @classmethod
    def from_geojson(cls, path: Path) -> ServiceArea:
        """Read the first (Multi)Polygon feature of a GeoJSON file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise GraphSourceError(
                f"service area file not found: {path}", field="service_area_file"
            ) from exc
        except (OSError, ValueError) as exc:
            raise GraphSourceError(
                f"cannot read service area {path}: {exc}", field="service_area_file"
            ) from exc
        features = data.get("features", [data]) if isinstance(data, dict) else []
        for feat in features:
            geom = feat.get("geometry", feat) if isinstance(feat, dict) else None
            if isinstance(geom, dict) and geom.get("type") in ("Polygon", "MultiPolygon"):
                props = feat.get("properties") or {}
                return cls(shape(geom), name=str(props.get("name", path.stem)))
        raise GraphSourceError(
            f"{path} holds no Polygon or MultiPolygon", field="service_area_file"
        )

    def distance_outside_m(self, lat: float, lon: float) -> float:
        """0 inside (or on the boundary), else the distance to the boundary in metres."""
        pt = Point(self.projection.to_xy(np.array(lat), np.array(lon)))
        return 0.0 if self._xy.covers(pt) else float(self._xy.distance(pt))

    def contains(self, lat: float, lon: float) -> bool:
        return self.distance_outside_m(lat, lon) == 0.0

    def require_inside(self, lat: float, lon: float, field: str = "position") -> None:
        """Raise OutsideServiceArea, saying how far outside, for a point not in the area."""
        lat, lon = validate_coordinate(lat, lon, field)
        d = self.distance_outside_m(lat, lon)
        if d > 0:
            raise OutsideServiceArea(
                f"({lat:.5f}, {lon:.5f}) is {to_int(d)} m outside the service area {self.name}",
                field=field,
                distance_m=to_int(d),
            )
