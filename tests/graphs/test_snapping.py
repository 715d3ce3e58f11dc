"""Snapping to the road and the service area."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from graphs.network import RoadNetwork
from graphs.snapping import Snapper, validate_coordinate
from nachtbus.errors import InvalidCoordinate, NoRoadNearby, OutsideServiceArea
from tests.helpers import (
    AMPEN,
    BAD_SASSENDORF,
    BERGEDE,
    DLAT,
    DLON,
    MARKT,
    OSTOENNEN,
    STATION,
    grid_node,
)


@pytest.mark.parametrize(
    ("lat", "lon", "rule"),
    [
        ("abc", 8.1, "not a number"),
        (None, 8.1, "not a number"),
        (91, 8.1, "valid range"),
        (51.5, -180.5, "valid range"),
        (float("nan"), 8.1, "not a finite number"),
        (51.5, float("inf"), "not a finite number"),
    ],
)
def test_bad_coordinates_name_field_and_rule(lat: object, lon: object, rule: str) -> None:
    with pytest.raises(InvalidCoordinate, match=rule) as err:
        validate_coordinate(lat, lon, "pickup")
    assert err.value.field == "pickup"


def test_snap_is_door_to_door_not_to_the_junction(tiny_network: RoadNetwork) -> None:
    """A point beside the middle of a street lands on the street, not on a junction."""
    snapper = Snapper(tiny_network)
    lat1, lon1 = grid_node(1)
    # 20 m north of the middle of the street 1-2.
    p = snapper.snap(lat1 + 20 / 111_000, lon1 + DLON / 2)
    assert abs(p.lat - lat1) < 1e-6 and abs(p.lon - (lon1 + DLON / 2)) < 1e-6
    assert 18 <= p.offset_m <= 22
    assert p.street == "Gitterweg"
    assert int(tiny_network.node_osmid[p.node]) in (1, 2)


def test_snap_routes_from_the_nearer_end(tiny_network: RoadNetwork) -> None:
    snapper = Snapper(tiny_network)
    lat1, lon1 = grid_node(1)
    near_2 = snapper.snap(lat1 + 5e-5, lon1 + DLON * 0.9)
    assert int(tiny_network.node_osmid[near_2.node]) == 2
    many = snapper.nearest_nodes(np.array([lat1 + 5e-5]), np.array([lon1 + DLON * 0.9]))
    assert many.tolist() == [near_2.node]


def test_far_from_any_road_is_refused(tiny_network: RoadNetwork) -> None:
    snapper = Snapper(tiny_network, max_distance_m=200)
    lat, lon = grid_node(9)
    with pytest.raises(NoRoadNearby, match="within 200 m") as err:
        snapper.snap(lat + 5 * DLAT, lon, field="dropoff")
    assert err.value.field == "dropoff"


@pytest.mark.soest
@pytest.mark.parametrize("place", [MARKT, STATION, OSTOENNEN, BERGEDE, AMPEN])
def test_soest_places_are_inside_and_on_a_road(soest_world, place) -> None:
    """The Markt, the station and the villages are served, each within 300 m of a road."""
    assert soest_world.area.contains(*place)
    p = soest_world.locate(*place)
    assert p.offset_m < 300
    assert soest_world.area.contains(p.lat, p.lon)


@pytest.mark.soest
def test_bad_sassendorf_is_outside_and_says_how_far(soest_world) -> None:
    """Bad Sassendorf's centre lies 1.47 km beyond the boundary (data/soest/README.md)."""
    with pytest.raises(OutsideServiceArea) as err:
        soest_world.locate(*BAD_SASSENDORF, field="dropoff")
    assert 1400 <= err.value.distance_m <= 1550
    assert err.value.field == "dropoff"
    assert f"{err.value.distance_m} m outside" in str(err.value)


@pytest.mark.soest
def test_snapped_point_lies_on_its_edge(soest_world) -> None:
    """The pickup point is on the polyline of the edge it names (within a metre)."""
    rng = np.random.default_rng(7)
    net = soest_world.network
    for _ in range(20):
        lat = 51.55 + rng.random() * 0.04
        lon = 8.06 + rng.random() * 0.08
        p = soest_world.snapper.snap(lat, lon)
        pts = net.edge_polyline(p.edge)
        best = min(_seg_dist_m(p.lat, p.lon, a, b) for a, b in itertools.pairwise(pts))
        assert best < 1.0


def _seg_dist_m(lat: float, lon: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    kx = 111_195 * math.cos(math.radians(lat))
    ky = 111_195
    px, py = (lon - a[1]) * kx, (lat - a[0]) * ky
    bx, by = (b[1] - a[1]) * kx, (b[0] - a[0]) * ky
    t = max(0.0, min(1.0, (px * bx + py * by) / (bx * bx + by * by or 1.0)))
    return math.hypot(px - t * bx, py - t * by)
