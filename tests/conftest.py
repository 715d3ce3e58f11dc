"""Shared fixtures: a tiny synthetic network, and the real Soest network from ../shared."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from graphs.build import SpeedProfile, graph_to_network, load_network, read_osm_graph
from graphs.districts import Districts
from graphs.network import RoadNetwork
from routing.world import RoadWorld, load_world
from tests.helpers import SOEST_AREA, SOEST_DISTRICTS, SOEST_OSM, write_tiny_osm


@pytest.fixture()
def tiny_osm(tmp_path: Path) -> Path:
    return write_tiny_osm(tmp_path / "tiny.osm")


@pytest.fixture()
def tiny_network(tiny_osm: Path, tmp_path: Path) -> RoadNetwork:
    net, _ = load_network(tiny_osm, SpeedProfile.default(), tmp_path / "cache")
    return net


def _require_shared() -> tuple[Path, Path]:
    if SOEST_OSM is None or SOEST_AREA is None:
        pytest.skip("../shared with the Soest OSM data is not beside this checkout")
    return SOEST_OSM, SOEST_AREA


@pytest.fixture(scope="session")
def soest_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("soest-cache")


@pytest.fixture(scope="session")
def soest_osmnx_graph() -> nx.MultiDiGraph:
    """The real Soest graph as osmnx reads it (about 8 s, once per test session)."""
    osm, _ = _require_shared()
    return read_osm_graph(osm)


@pytest.fixture(scope="session")
def soest_world(soest_osmnx_graph: nx.MultiDiGraph, soest_cache_dir: Path) -> RoadWorld:
    """The real Soest road world, built from the osmnx graph above and cached once."""
    osm, area = _require_shared()
    from graphs.build import source_key

    profile = SpeedProfile.default()
    key = source_key(osm, profile)
    path = soest_cache_dir / f"network-{key}.npz"
    if not path.exists():
        net = graph_to_network(soest_osmnx_graph, profile, {"source": str(osm), "key": key})
        net.save(path)
    return load_world(osm, area, soest_cache_dir, profile=profile)


@pytest.fixture(scope="session")
def soest_districts() -> Districts:
    """The 19 districts of Soest (Kernstadt and Ortsteile) from ../shared."""
    if SOEST_DISTRICTS is None:
        pytest.skip("../shared with the Soest districts is not beside this checkout")
    return Districts.from_geojson(SOEST_DISTRICTS)
