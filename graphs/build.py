"""Build a RoadNetwork from OpenStreetMap with osmnx, with night speeds, cached on disk.

Sources: a local OSM XML file (``.osm`` / ``.osm.bz2``, read with ``osmnx.graph_from_xml``) or a
place name, whose drivable network osmnx downloads (and caches in its own HTTP cache). The network
keeps only the largest strongly connected component, so every node can reach every other: a bus
never gets stuck in a one-way pocket.

The cache key is the SHA-256 of the source file's bytes (or the place name), the speed profile
and the format version, so a changed file or profile builds a new network and a warm start reads
one ``.npz`` file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from graphs.network import FORMAT_VERSION, RoadNetwork
from nachtbus.errors import ConfigError, GraphSourceError
from nachtbus.units import to_int

_PROFILE_KEYS = {"fallback_kmh", "maxspeed_factor", "speeds_kmh"}


@dataclass(frozen=True)
class SpeedProfile:
    """Night driving speed per OSM highway class (km/h), with a fallback for unknown classes."""

    speeds_kmh: Mapping[str, float] = field(default_factory=dict)
    fallback_kmh: float = 30.0
    maxspeed_factor: float = 0.9

    def __post_init__(self) -> None:
        for name, value in [("fallback_kmh", self.fallback_kmh), *self._speed_items()]:
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"must be a positive number of km/h, got {value!r}", field=name)
        if not 0 < self.maxspeed_factor <= 1.5:
            raise ConfigError("must be in (0, 1.5]", field="maxspeed_factor")

    def _speed_items(self) -> list[tuple[str, Any]]:
        return [(f"speeds_kmh.{k}", v) for k, v in self.speeds_kmh.items()]

    @classmethod
    def from_toml(cls, path: Path) -> SpeedProfile:
        """Load a profile file; a malformed one raises ConfigError naming the file and field."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read speed profile {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"speed profile {path} is not valid TOML: {exc}") from exc
        unknown = set(data) - _PROFILE_KEYS
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_PROFILE_KEYS)}",
                field=sorted(unknown)[0],
            )
        speeds = data.get("speeds_kmh", {})
        if not isinstance(speeds, dict):
            raise ConfigError(f"{path}: must be a table of class = km/h", field="speeds_kmh")
        try:
            return cls(
                speeds_kmh=dict(speeds),
                fallback_kmh=data.get("fallback_kmh", 30.0),
                maxspeed_factor=data.get("maxspeed_factor", 0.9),
            )
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc.message}", field=exc.field) from exc

    @classmethod
    def default(cls) -> SpeedProfile:
        """The documented built-in profile, ``graphs/night_speeds.toml``."""
        ref = resources.files("graphs").joinpath("night_speeds.toml")
        with resources.as_file(ref) as path:
            return cls.from_toml(path)

    def fingerprint(self) -> str:
        payload = {
            "speeds_kmh": dict(sorted(self.speeds_kmh.items())),
            "fallback_kmh": self.fallback_kmh,
            "maxspeed_factor": self.maxspeed_factor,
        }
        return json.dumps(payload, sort_keys=True)

    def edge_speed_kmh(self, highway: Any, maxspeed: Any = None) -> float:
        """Speed of one edge: mean over its highway classes, capped by OSM maxspeed if tagged."""
        classes = highway if isinstance(highway, list) else [highway]
        speeds = [self.speeds_kmh.get(str(c), self.fallback_kmh) for c in classes if c]
        speed = sum(speeds) / len(speeds) if speeds else self.fallback_kmh
        limit = _parse_maxspeed(maxspeed)
        if limit is not None:
            speed = min(speed, limit * self.maxspeed_factor)
        return speed


def _parse_maxspeed(value: Any) -> float | None:
    """Lowest numeric km/h in an OSM maxspeed tag (or list of tags); None if there is none."""
    values = value if isinstance(value, list) else [value]
    found = []
    for v in values:
        m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", str(v)) if v is not None else None
        if m:
            kmh = float(m.group(1)) * (1.609344 if m.group(2) else 1.0)
            if kmh > 0:
                found.append(kmh)
    return min(found) if found else None


@dataclass(frozen=True)
class CacheInfo:
    """Where a network came from: cache hit or fresh build, the file, and how long it took."""

    path: Path
    hit: bool
    seconds: float


def source_key(source: Path | str, profile: SpeedProfile) -> str:
    """Cache key of a network: source content (or place name), profile and format version."""
    h = hashlib.sha256()
    if isinstance(source, Path):
        h.update(b"file:")
        h.update(_file_digest(source).encode())
    else:
        h.update(b"place:" + source.strip().lower().encode())
    h.update(profile.fingerprint().encode())
    h.update(f"format:{FORMAT_VERSION}".encode())
    return h.hexdigest()[:20]


def _file_digest(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except FileNotFoundError as exc:
        raise GraphSourceError(f"OSM file not found: {path}", field="osm_file") from exc
    except IsADirectoryError as exc:
        raise GraphSourceError(f"OSM file is a directory: {path}", field="osm_file") from exc
    except OSError as exc:
        raise GraphSourceError(
            f"cannot read OSM file {path}: {exc.strerror}", field="osm_file"
        ) from exc


def read_osm_graph(source: Path | str) -> nx.MultiDiGraph:
    """Read an OSM XML file, or download the drivable network of a place, as an osmnx graph."""
    import osmnx as ox

    if isinstance(source, Path):
        _file_digest(source)  # raises a clear error for missing / unreadable files
        try:
            return ox.graph_from_xml(source, simplify=True, retain_all=False)
        except Exception as exc:  # osmnx / XML parser errors come in many types
            raise GraphSourceError(
                f"cannot read {source} as OSM XML: {type(exc).__name__}: {exc}", field="osm_file"
            ) from exc
    try:
        return ox.graph_from_place(source, network_type="drive", simplify=True)
    except Exception as exc:
        raise GraphSourceError(
            f"cannot download the road network of {source!r}: {type(exc).__name__}: {exc}",
            field="place",
        ) from exc


def graph_to_network(
    graph: nx.MultiDiGraph, profile: SpeedProfile, meta: dict[str, Any] | None = None
) -> RoadNetwork:
    """Convert an osmnx graph to a RoadNetwork: largest SCC, night speeds, CSR arrays.

    Parallel edges between the same two nodes are reduced to the fastest one, self-loops dropped.
    """
    if graph.number_of_nodes() == 0:
        raise GraphSourceError("the road network is empty (no drivable roads)", field="osm_file")
    largest = max(nx.strongly_connected_components(graph), key=len)
    osmids = sorted(largest)
    index = {osmid: i for i, osmid in enumerate(osmids)}

    best: dict[tuple[int, int], tuple[int, int, list[tuple[float, float]], str | None]] = {}
    for u, v, data in graph.edges(data=True):
        if u == v or u not in index or v not in index:
            continue
        length_m = float(data.get("length", 0.0))
        speed = profile.edge_speed_kmh(data.get("highway"), data.get("maxspeed"))
        t_ms = max(1, to_int(length_m / (speed / 3.6) * 1000.0))
        key = (index[u], index[v])
        if key in best and best[key][0] <= t_ms:
            continue
        best[key] = (t_ms, to_int(length_m * 100.0), _edge_coords(graph, u, v, data), _name(data))

    order = sorted(best)
    n, m = len(osmids), len(order)
    tails = np.fromiter((k[0] for k in order), dtype=np.int32, count=m)
    names: dict[str, int] = {}
    geom_counts = np.array([len(best[k][2]) for k in order], dtype=np.int32)
    geom_indptr = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(geom_counts, out=geom_indptr[1:])
    coords = [pt for k in order for pt in best[k][2]]
    edge_name = np.array(
        [_name_index(names, best[k][3]) for k in order],
        dtype=np.int32,
    )
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(tails, minlength=n), out=indptr[1:])
    return RoadNetwork(
        indptr=indptr,
        heads=np.fromiter((k[1] for k in order), dtype=np.int32, count=m),
        time_ms=np.array([best[k][0] for k in order], dtype=np.int32),
        length_cm=np.array([best[k][1] for k in order], dtype=np.int32),
        node_lat=np.array([graph.nodes[o]["y"] for o in osmids], dtype=np.float64),
        node_lon=np.array([graph.nodes[o]["x"] for o in osmids], dtype=np.float64),
        node_osmid=np.array(osmids, dtype=np.int64),
        geom_indptr=geom_indptr,
        geom_lat=np.array([c[0] for c in coords], dtype=np.float64),
        geom_lon=np.array([c[1] for c in coords], dtype=np.float64),
        edge_name=edge_name,
        names=tuple(names),
        meta={**(meta or {}), "format_version": FORMAT_VERSION},
    )


def _name_index(names: dict[str, int], name: str | None) -> int:
    """Index of ``name`` in the growing street-name table; -1 for an unnamed road."""
    return -1 if name is None else names.setdefault(name, len(names))


def _name(data: dict[str, Any]) -> str | None:
    name = data.get("name") or data.get("ref")
    if isinstance(name, list):
        name = " / ".join(str(x) for x in name)
    return str(name) if name else None


def _edge_coords(
    graph: nx.MultiDiGraph, u: int, v: int, data: dict[str, Any]
) -> list[tuple[float, float]]:
    """(lat, lon) points of an edge from u to v; straight line where osmnx kept no geometry."""
    start = (graph.nodes[u]["y"], graph.nodes[u]["x"])
    end = (graph.nodes[v]["y"], graph.nodes[v]["x"])
    geom = data.get("geometry")
    if geom is None:
        return [start, end]
    pts = [(y, x) for x, y in geom.coords]
    if _sq(pts[0], start) > _sq(pts[-1], start):
        pts.reverse()
    pts[0], pts[-1] = start, end
    return pts


def _sq(a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def load_network(
    source: Path | str, profile: SpeedProfile, cache_dir: Path
) -> tuple[RoadNetwork, CacheInfo]:
    """The network of ``source``: from the cache when it is there, else built and cached."""
    started = time.perf_counter()
    key = source_key(source, profile)
    path = cache_dir / f"network-{key}.npz"
    if path.is_file():
        try:
            net = RoadNetwork.load(path)
            return net, CacheInfo(path, True, time.perf_counter() - started)
        except (ValueError, OSError, KeyError):
            path.unlink(missing_ok=True)  # stale or broken cache: rebuild below
    graph = read_osm_graph(source)
    meta = {
        "source": str(source),
        "source_kind": "file" if isinstance(source, Path) else "place",
        "key": key,
        "profile": json.loads(profile.fingerprint()),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    net = graph_to_network(graph, profile, meta)
    try:
        net.save(path)
    except OSError as exc:
        raise GraphSourceError(f"cannot write the network cache {path}: {exc.strerror}") from exc
    return net, CacheInfo(path, False, time.perf_counter() - started)


def load_service_area_source(source: Path | str, cache_dir: Path) -> Path:
    """A GeoJSON file of the service area: ``source`` itself, or the boundary of a place name
    downloaded with osmnx (once; then cached in ``cache_dir``)."""
    if isinstance(source, Path):
        return source
    key = hashlib.sha256(source.strip().lower().encode()).hexdigest()[:16]
    path = cache_dir / f"area-{key}.geojson"
    if path.is_file():
        return path
    import osmnx as ox

    try:
        gdf = ox.geocode_to_gdf(source)
    except Exception as exc:
        raise GraphSourceError(
            f"cannot download the boundary of {source!r}: {type(exc).__name__}: {exc}",
            field="place",
        ) from exc
    feature = {
        "type": "Feature",
        "properties": {"name": source, "source": "OpenStreetMap via osmnx (ODbL)"},
        "geometry": gdf.geometry.iloc[0].__geo_interface__,
    }
    cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path
