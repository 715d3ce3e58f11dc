"""Shared fixtures: a tiny synthetic network, and the real Soest network from ../shared."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

from graphs.build import SpeedProfile, graph_to_network, load_network, read_osm_graph
from graphs.districts import Districts
from graphs.network import RoadNetwork
from routing import isolated
from routing.world import RoadWorld, load_world
from tests.helpers import (
    SOEST_AREA,
    SOEST_DISTRICTS,
    SOEST_OSM,
    write_tiny_osm,
    write_town_area,
    write_town_osm,
)


@pytest.fixture(scope="session", autouse=True)
def _no_search_child_left() -> Iterator[None]:
    """Every process the tests start is stopped: at the end, the OR-Tools child of the live
    rounds (routing.isolated) too, checked by its pid."""
    yield
    pid = isolated.child_pid()
    isolated.close()
    # close() waited for it: a pid still in /proc is a child that did not stop
    assert pid is None or not os.path.exists(f"/proc/{pid}"), f"search child {pid} still runs"


@pytest.fixture()
def tiny_osm(tmp_path: Path) -> Path:
    return write_tiny_osm(tmp_path / "tiny.osm")


@pytest.fixture()
def tiny_network(tiny_osm: Path, tmp_path: Path) -> RoadNetwork:
    net, _ = load_network(tiny_osm, SpeedProfile.default(), tmp_path / "cache")
    return net


@pytest.fixture(scope="session")
def town_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Testdorf, the synthetic town over Soest's coordinates (tests/helpers.py), as the
    settings that point a service at it: its OSM file, service area and network cache."""
    folder = tmp_path_factory.mktemp("town")
    return {
        "NACHTBUS_OSM_FILE": str(write_town_osm(folder / "town.osm")),
        "NACHTBUS_SERVICE_AREA_FILE": str(write_town_area(folder / "town-area.geojson")),
        "NACHTBUS_CACHE_DIR": str(folder / "cache"),
    }


@pytest.fixture(scope="session")
def town_world(town_sources: dict[str, str]) -> RoadWorld:
    """Testdorf's road world: no ../shared needed, a second to build."""
    return load_world(
        Path(town_sources["NACHTBUS_OSM_FILE"]),
        Path(town_sources["NACHTBUS_SERVICE_AREA_FILE"]),
        Path(town_sources["NACHTBUS_CACHE_DIR"]),
    )


@pytest.fixture(scope="session")
def soest_sources(soest_world: RoadWorld, soest_cache_dir: Path) -> dict[str, str]:
    """The settings that point a service at the real Soest network (built once, cached)."""
    osm, area = _require_shared()
    return {
        "NACHTBUS_OSM_FILE": str(osm),
        "NACHTBUS_SERVICE_AREA_FILE": str(area),
        "NACHTBUS_CACHE_DIR": str(soest_cache_dir),
    }


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
