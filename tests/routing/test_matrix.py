"""Travel times, distances and paths: kernels against networkx and hand-made networks."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from graphs.build import SpeedProfile
from nachtbus.errors import InvalidInput, Unreachable
from routing.matrix import TravelTimes
from tests.helpers import network_from_edges


def _diamond() -> TravelTimes:
    """0 -> 1 -> 3 (fast, long) and 0 -> 2 -> 3 (as fast, shorter); 4 is cut off."""
    edges = [
        (0, 1, 10_000, 50_000),
        (1, 3, 10_000, 50_000),
        (0, 2, 12_000, 30_000),
        (2, 3, 8_000, 30_000),
        (3, 0, 30_400, 90_000),
        (4, 3, 1_000, 100),  # 4 -> 3 one way: 4 can leave but never be reached
    ]
    return TravelTimes(network_from_edges(5, edges))


def test_ties_in_time_take_the_shorter_path() -> None:
    """Two 20 s paths to node 3: the 600 m one wins over the 1,000 m one."""
    tt = _diamond()
    t, d = tt.matrix([0], [3])
    assert (int(t[0, 0]), int(d[0, 0])) == (20, 600)
    assert tt.route(0, 3).nodes == (0, 2, 3)


def test_rounding_is_half_up_on_the_total() -> None:
    """30.4 s back to node 0 rounds to 30; 30.4 + 20 = 50.4 s rounds to 50; half rounds up."""
    tt = _diamond()
    t, _ = tt.matrix([3, 3], [0, 1])
    assert t[0].tolist() == [30, 40]
    half = TravelTimes(network_from_edges(2, [(0, 1, 1_500, 150), (1, 0, 2_499, 249)]))
    t, d = half.matrix([0, 1], [1, 0])
    assert (int(t[0, 0]), int(d[0, 0]), int(t[1, 1]), int(d[1, 1])) == (2, 2, 2, 2)


def test_unreachable_is_minus_one_and_a_typed_error() -> None:
    tt = _diamond()
    t, d = tt.matrix([0], [4])
    assert (int(t[0, 0]), int(d[0, 0])) == (-1, -1)
    with pytest.raises(Unreachable):
        tt.time_s(0, 4)
    with pytest.raises(Unreachable):
        tt.route(0, 4)


def test_node_index_out_of_range_names_the_argument() -> None:
    tt = _diamond()
    with pytest.raises(InvalidInput, match="out of range") as err:
        tt.matrix([0], [9])
    assert err.value.field == "targets"
    with pytest.raises(InvalidInput, match="integers"):
        tt.matrix([0.5], [1])


def test_row_cache_answers_like_the_table_and_stays_bounded() -> None:
    table = _diamond()
    rows = TravelTimes(table.network, apsp_max_nodes=0, row_cache_size=2)
    assert not rows.uses_table
    for u in range(4):
        for v in range(4):
            assert rows.time_s(u, v) == table.time_s(u, v)
    assert len(rows._rows) == 2
    with pytest.raises(InvalidInput, match="apsp_max_nodes"):
        rows.all_pairs()


def test_distances_with_the_table_match_the_rows_and_keep_few_pairs(monkeypatch) -> None:
    """With the table, a distance is searched for its pair alone: the same metres as the
    rows and the matrix give (the shorter of two equally fast paths, rounded half up), an
    unreachable pair a typed error, and no more pairs kept than the cache's size."""
    import routing.matrix as m

    monkeypatch.setattr(m, "PAIR_CACHE_SIZE", 3)
    table = _diamond()
    rows = TravelTimes(table.network, apsp_max_nodes=0)
    assert table.uses_table and not rows.uses_table
    _, d = table.matrix(list(range(4)), list(range(4)))
    for u in range(4):
        for v in range(4):
            assert table.distance_m(u, v) == rows.distance_m(u, v) == int(d[u, v])
    assert table.distance_m(0, 3) == 600
    assert len(table._pairs) == 3 and not table._rows
    with pytest.raises(Unreachable):
        table.distance_m(0, 4)


def _nx_graph(tt: TravelTimes, attr: str) -> nx.DiGraph:
    net = tt.network
    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    values = net.weight if attr == "weight" else getattr(net, attr)
    for u, v, w in zip(net.tails.tolist(), net.heads.tolist(), values.tolist(), strict=True):
        g.add_edge(u, v, w=w)
    return g


@pytest.mark.soest
def test_soest_matrix_equals_networkx_on_the_same_weights(soest_world) -> None:
    """Random sources x random targets: time and distance equal networkx's Dijkstra exactly,
    and the one-pair distance search gives the same metres."""
    tt = soest_world.times
    g_lex = _nx_graph(tt, "weight")
    g_time = _nx_graph(tt, "time_ms")
    rng = np.random.default_rng(42)
    sources = rng.integers(0, tt.network.n_nodes, 25)
    targets = rng.integers(0, tt.network.n_nodes, 300)
    t, d = tt.matrix(sources, targets)
    for i, s in enumerate(sources.tolist()):
        lex = nx.single_source_dijkstra_path_length(g_lex, s, weight="w")
        fastest = nx.single_source_dijkstra_path_length(g_time, s, weight="w")
        for j, v in enumerate(targets.tolist()):
            k = lex[v]
            assert int(t[i, j]) == ((k >> 32) + 500) // 1000 == (fastest[v] + 500) // 1000
            assert int(d[i, j]) == ((k & 0xFFFFFFFF) + 50) // 100
            if j < 4:  # the one-pair search behind distance_m
                assert tt.distance_m(s, v) == int(d[i, j])


@pytest.mark.soest
def test_soest_times_match_the_osmnx_graph(soest_world, soest_osmnx_graph) -> None:
    """On the osmnx graph itself, with the profile's speeds, networkx agrees to the second."""
    profile = SpeedProfile.default()
    g = nx.DiGraph()
    for u, v, data in soest_osmnx_graph.edges(data=True):
        speed = profile.edge_speed_kmh(data.get("highway"), data.get("maxspeed"))
        secs = float(data["length"]) / (speed / 3.6)
        if u != v and (not g.has_edge(u, v) or g[u][v]["t"] > secs):
            g.add_edge(u, v, t=secs)
    net = soest_world.network
    rng = np.random.default_rng(3)
    src = rng.integers(0, net.n_nodes, 10)
    tgt = rng.integers(0, net.n_nodes, 100)
    t, _ = soest_world.times.matrix(src, tgt)
    osm = net.node_osmid.tolist()
    for i, s in enumerate(src.tolist()):
        ref = nx.single_source_dijkstra_path_length(g, osm[s], weight="t")
        for j, v in enumerate(tgt.tolist()):
            assert abs(int(t[i, j]) - ref[osm[v]]) <= 1.0


@pytest.mark.soest
def test_soest_all_pairs_table_equals_the_matrix(soest_world) -> None:
    tt = soest_world.times
    table = tt.all_pairs()
    assert table.shape == (tt.network.n_nodes,) * 2 and table.dtype == np.int32
    assert (table >= 0).all()  # one strongly connected component
    assert (np.diag(table) == 0).all()
    rng = np.random.default_rng(5)
    nodes = rng.integers(0, tt.network.n_nodes, 200)
    t, _ = tt.matrix(nodes, nodes)
    assert np.array_equal(table[np.ix_(nodes, nodes)], t)
    assert np.array_equal(tt.times_s(nodes.tolist()), t)


@pytest.mark.soest
def test_soest_route_is_a_connected_path_with_matching_totals(soest_world) -> None:
    """The path's edges exist, add up to the reported time and length, and the line is closed."""
    net = soest_world.network
    tt = soest_world.times
    rng = np.random.default_rng(11)
    for u, v in rng.integers(0, net.n_nodes, (15, 2)).tolist():
        r = tt.route(u, v)
        assert r.nodes[0] == u and r.nodes[-1] == v
        edges = [net.edge_index(a, b) for a, b in zip(r.nodes, r.nodes[1:], strict=False)]
        assert r.travel_time_s == (int(net.time_ms[edges].sum()) + 500) // 1000 == tt.time_s(u, v)
        assert r.distance_m == (int(net.length_cm[edges].sum()) + 50) // 100 == tt.distance_m(u, v)
        assert r.polyline[0] == (net.node_lat[u], net.node_lon[u])
        assert r.polyline[-1] == (net.node_lat[v], net.node_lon[v])
        assert len(r.polyline) >= len(r.nodes)
