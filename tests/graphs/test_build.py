"""Building the road network: speed profile, conversion, cache, bad sources."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from graphs.build import SpeedProfile, graph_to_network, load_network, source_key
from graphs.network import RoadNetwork
from nachtbus.errors import ConfigError, GraphSourceError
from tests.helpers import SOEST_OSM, write_tiny_osm


def test_default_profile_is_the_documented_file() -> None:
    """The built-in profile is graphs/night_speeds.toml, with a fallback for unknown classes."""
    p = SpeedProfile.default()
    assert p.speeds_kmh["residential"] == 28.0
    assert p.edge_speed_kmh("no_such_class") == p.fallback_kmh


def test_edge_speed_mean_of_classes_capped_by_maxspeed() -> None:
    """An edge merged from several classes drives at their mean; a maxspeed tag caps it."""
    p = SpeedProfile(speeds_kmh={"primary": 60.0, "residential": 30.0}, maxspeed_factor=0.9)
    assert p.edge_speed_kmh(["primary", "residential"]) == 45.0
    assert p.edge_speed_kmh("primary", "30") == pytest.approx(27.0)
    assert p.edge_speed_kmh("primary", ["50", "20 mph"]) == pytest.approx(20 * 1.609344 * 0.9)
    assert p.edge_speed_kmh("primary", "none") == 60.0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("fallback_kmh = -5\n", "fallback_kmh"),
        ("[speeds_kmh]\nresidential = 0\n", "speeds_kmh.residential"),
        ("[speeds_kmh]\nresidential = 'fast'\n", "speeds_kmh.residential"),
        ("top_speed = 50\n", "top_speed"),
        ("maxspeed_factor = 3\n", "maxspeed_factor"),
    ],
)
def test_malformed_profile_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    """A bad profile is refused with the file and the offending field named."""
    f = tmp_path / "speeds.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        SpeedProfile.from_toml(f)
    assert err.value.field == field
    assert str(f) in str(err.value)


def test_profile_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "speeds.toml"
    f.write_text("speeds = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        SpeedProfile.from_toml(f)


def test_tiny_graph_keeps_only_the_strongly_connected_part(tiny_network: RoadNetwork) -> None:
    """The one-way dead end (node 10) cannot be left again, so it is not in the network."""
    assert 10 not in set(tiny_network.node_osmid.tolist())
    assert set(tiny_network.node_osmid.tolist()) == {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14}
    g = nx.DiGraph(list(zip(tiny_network.tails.tolist(), tiny_network.heads.tolist(), strict=True)))
    assert nx.is_strongly_connected(g)


def test_edge_time_is_length_over_class_speed(tiny_network: RoadNetwork) -> None:
    """Every edge's time is its length at its class's night speed.

    Length is stored to the centimetre, so the tolerance is 1 ms plus half a centimetre's time.
    """
    net = tiny_network
    osm = net.node_osmid
    idx = {int(o): i for i, o in enumerate(osm)}
    e = net.edge_index(idx[3], idx[11])  # living street
    expected_ms = net.length_cm[e] / 100 / (7.0 / 3.6) * 1000
    assert abs(int(net.time_ms[e]) - expected_ms) <= 1 + 0.005 / (7.0 / 3.6) * 1000
    e2 = net.edge_index(idx[3], idx[6])  # tertiary, 45 km/h
    expected2_ms = net.length_cm[e2] / 100 / (45 / 3.6) * 1000
    assert abs(int(net.time_ms[e2]) - expected2_ms) <= 1 + 0.005 / (45 / 3.6) * 1000
    assert 100 < net.length_cm[e2] / 100 < 125  # 0.001 deg of latitude is 111 m
    assert net.street_name(e2) == "Ostring"


def test_csr_arrays_are_frozen(tiny_network: RoadNetwork) -> None:
    with pytest.raises(ValueError):
        tiny_network.time_ms[0] = 1


def test_cache_hit_on_second_load(tiny_osm: Path, tmp_path: Path) -> None:
    """The first load builds and writes the cache; the second reads the same arrays back."""
    cache = tmp_path / "c"
    a, info_a = load_network(tiny_osm, SpeedProfile.default(), cache)
    b, info_b = load_network(tiny_osm, SpeedProfile.default(), cache)
    assert (info_a.hit, info_b.hit) == (False, True)
    assert info_a.path == info_b.path and info_b.path.is_file()
    assert np.array_equal(a.time_ms, b.time_ms) and np.array_equal(a.heads, b.heads)
    assert b.names == a.names and b.meta == a.meta


def test_cache_invalidated_by_profile_and_file_change(tiny_osm: Path, tmp_path: Path) -> None:
    """A changed speed profile or changed file content builds a new network."""
    cache = tmp_path / "c"
    base, info = load_network(tiny_osm, SpeedProfile.default(), cache)
    slow = SpeedProfile(speeds_kmh={"residential": 10.0}, fallback_kmh=10.0)
    other, info2 = load_network(tiny_osm, slow, cache)
    assert not info2.hit and info2.path != info.path
    assert other.time_ms.sum() > base.time_ms.sum()
    write_tiny_osm(tiny_osm, residential_name="Neuer Weg")
    renamed, info3 = load_network(tiny_osm, SpeedProfile.default(), cache)
    assert not info3.hit and info3.path != info.path
    assert "Neuer Weg" in renamed.names


def test_broken_cache_file_is_rebuilt(tiny_osm: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    _, info = load_network(tiny_osm, SpeedProfile.default(), cache)
    info.path.write_bytes(b"not an npz")
    net, info2 = load_network(tiny_osm, SpeedProfile.default(), cache)
    assert not info2.hit and net.n_nodes == 13


def test_missing_osm_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GraphSourceError, match="not found") as err:
        load_network(tmp_path / "nope.osm", SpeedProfile.default(), tmp_path)
    assert err.value.field == "osm_file"


def test_unreadable_osm_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("this is not xml")
    with pytest.raises(GraphSourceError, match=r"cannot read .* as OSM XML"):
        load_network(bad, SpeedProfile.default(), tmp_path / "c")


def test_directory_as_osm_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GraphSourceError, match="directory"):
        source_key(tmp_path, SpeedProfile.default())


def test_empty_graph_is_refused() -> None:
    with pytest.raises(GraphSourceError, match="empty"):
        graph_to_network(nx.MultiDiGraph(), SpeedProfile.default())


@pytest.mark.soest
def test_soest_network_matches_source_md(soest_world) -> None:
    """SOURCE.md: the largest SCC has 6,384 nodes; bbox lon 7.9321–8.2617, lat 51.4677–51.6726."""
    net = soest_world.network
    assert SOEST_OSM is not None
    assert net.n_nodes == 6384
    min_lon, min_lat, max_lon, max_lat = net.bbox
    assert (round(min_lon, 4), round(max_lon, 4)) == (7.9321, 8.2617)
    assert (round(min_lat, 4), round(max_lat, 4)) == (51.4677, 51.6726)
    # Parallel edges merged: never two edges between the same ordered pair.
    pairs = net.tails.astype(np.int64) * net.n_nodes + net.heads
    assert len(np.unique(pairs)) == net.n_edges
