"""The road world of one service area: network, snapping, service area and travel times.

Assembled once at start-up (CLI, API, simulator) from explicit sources; nothing here reads the
environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphs.build import CacheInfo, SpeedProfile, load_network, load_service_area_source
from graphs.network import RoadNetwork
from graphs.snapping import ServiceArea, SnappedPoint, Snapper
from nachtbus.domain import Place
from nachtbus.settings import Settings
from routing.matrix import Route, TravelTimes


@dataclass(frozen=True)
class RoadWorld:
    """Everything routing needs about one service area's roads."""

    network: RoadNetwork
    snapper: Snapper
    area: ServiceArea
    times: TravelTimes
    cache: CacheInfo

    def locate(self, lat: float, lon: float, field: str = "position") -> SnappedPoint:
        """Check a point is in the service area and place it on the nearest road."""
        self.area.require_inside(lat, lon, field)
        return self.snapper.snap(lat, lon, field)

    def place(self, lat: float, lon: float, field: str, *, in_area: bool = True) -> Place:
        """A rider's or a bus's position as a domain Place: the point on the road, its routing
        node and the street name. ``in_area`` checks the service area first (riders do; a bus
        may report from outside, e.g. on its way back from a neighbouring town)."""
        p = self.locate(lat, lon, field) if in_area else self.snapper.snap(lat, lon, field)
        return Place(p.lat, p.lon, p.node, p.street)

    def route_between(self, a: SnappedPoint, b: SnappedPoint) -> Route:
        return self.times.route(a.node, b.node)


def load_world(
    graph_source: Path | str,
    area_source: Path | str,
    cache_dir: Path,
    *,
    profile: SpeedProfile | None = None,
    apsp_max_nodes: int = 12_000,
    row_cache_size: int = 4096,
    snap_max_distance_m: int = 1000,
) -> RoadWorld:
    """Load (or build and cache) the network and the service area."""
    network, cache = load_network(graph_source, profile or SpeedProfile.default(), cache_dir)
    area = ServiceArea.from_geojson(load_service_area_source(area_source, cache_dir))
    return RoadWorld(
        network=network,
        snapper=Snapper(network, max_distance_m=snap_max_distance_m),
        area=area,
        times=TravelTimes(network, apsp_max_nodes=apsp_max_nodes, row_cache_size=row_cache_size),
        cache=cache,
    )


def speed_profile(settings: Settings) -> SpeedProfile:
    """The night-speed profile the settings name (the built-in one by default)."""
    if settings.speed_profile_file:
        return SpeedProfile.from_toml(settings.speed_profile_file)
    return SpeedProfile.default()


def world_from_settings(settings: Settings) -> RoadWorld:
    """The RoadWorld that the settings describe (network cached in ``settings.cache_dir``)."""
    return load_world(
        settings.graph_source(),
        settings.service_area_source(),
        settings.cache_dir,
        profile=speed_profile(settings),
        apsp_max_nodes=settings.apsp_max_nodes,
        row_cache_size=settings.row_cache_size,
        snap_max_distance_m=settings.snap_max_distance_m,
    )
