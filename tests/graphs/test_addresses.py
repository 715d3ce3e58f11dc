"""The phone desk's street search on our own map data (offline)."""

from __future__ import annotations

import math

import pytest

from graphs.addresses import StreetIndex
from routing.world import RoadWorld


def test_streets_are_found_as_callers_spell_them(town_world: RoadWorld) -> None:
    """Prefix, no umlauts, "str." for "straße", a house number kept apart unless the name
    ends so; the point lies on the street; nothing for an unknown name."""
    ix = StreetIndex(town_world.network, lambda lat, lon: "Testdorf")
    exact = ix.search("Marktweg 2")
    assert exact[0].street == "Marktweg 2" and exact[0].house_number is None
    numbered = ix.search("Marktstr. 3 5")
    assert numbered[0].street == "Marktstraße 3"
    assert numbered[0].house_number == "5" and numbered[0].house_number_found is False
    assert any(a.street.startswith("Ostönnen") for a in ix.search("ostonnen"))
    assert ix.search("Nirgendwostraße") == []
    assert ix.search("   ") == []
    assert len(ix.search("Markt", limit=3)) == 3
    a = ix.search("Ampener Landstraße")[0]
    net = town_world.network
    names = [net.street_name(e) for e in range(net.n_edges)]
    near = min(
        math.dist(
            (a.lat, a.lon),
            ((net.node_lat[u] + net.node_lat[v]) / 2, (net.node_lon[u] + net.node_lon[v]) / 2),
        )
        for e, (u, v) in enumerate(zip(net.tails, net.heads, strict=True))
        if names[e] == "Ampener Landstraße"
    )
    assert near < 1e-9  # the point is an edge midpoint of that street
    assert a.district == "Testdorf"


@pytest.mark.soest
def test_the_same_name_in_two_villages_is_two_results(soest_world: RoadWorld) -> None:
    """Soest's many Dorfstraßen come back one per village, each more than 1.5 km apart."""
    found = StreetIndex(soest_world.network).search("Dorfstraße", limit=50)
    points = [(a.lat, a.lon) for a in found if a.street == "Dorfstraße"]
    assert len(points) >= 3
    for i, p in enumerate(points):
        for q in points[i + 1 :]:
            dy = (p[0] - q[0]) * 111_320
            dx = (p[1] - q[1]) * 111_320 * math.cos(math.radians(p[0]))
            assert math.hypot(dx, dy) > 1500
