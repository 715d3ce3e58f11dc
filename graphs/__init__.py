"""OpenStreetMap road networks: build, cache, snap. The only package that imports osmnx."""

from graphs.network import RoadNetwork

__all__ = ["RoadNetwork"]
