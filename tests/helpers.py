"""Test helpers: tiny synthetic OSM files and the location of the real Soest data."""

from __future__ import annotations

import socket
from pathlib import Path

from nachtbus.settings import (
    DEFAULT_AREA_RELPATH,
    DEFAULT_DISTRICTS_RELPATH,
    DEFAULT_OSM_RELPATH,
    find_shared_dir,
)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SHARED = find_shared_dir()
REPO_OUTPUT = Path(__file__).resolve().parents[1] / "test-output"  # screenshots and reports
SOEST_OSM = SHARED / DEFAULT_OSM_RELPATH if SHARED else None
SOEST_AREA = SHARED / DEFAULT_AREA_RELPATH if SHARED else None
SOEST_DISTRICTS = SHARED / DEFAULT_DISTRICTS_RELPATH if SHARED else None

# Named places in Soest (lat, lon): data/soest/README.md and osm/SOURCE.md.
MARKT = (51.5711, 8.1057)
STATION = (51.57813, 8.10494)
OSTOENNEN = (51.5494, 8.0007)
BERGEDE = (51.52903, 8.16715)
AMPEN = (51.55298, 8.05413)
BAD_SASSENDORF = (51.583, 8.172)

# A 3 x 3 grid of residential streets, 0.001 deg (111 m) by 0.0016 deg (110 m) apart, nodes 1..9
# row by row from the south-west; node 10 hangs off node 9 by a one-way street that leads nowhere
# (not strongly connected, so it must be dropped); 11 is reached from 3 by a long living street.
# Stubs 12, 13, 14 (two-way dead ends off 11, 1 and 7) make every grid node a junction, so that
# osmnx's simplification keeps them all.
GRID_LAT0, GRID_LON0, DLAT, DLON = 51.5700, 8.1000, 0.001, 0.0016


def grid_node(i: int) -> tuple[float, float]:
    r, c = divmod(i - 1, 3)
    return GRID_LAT0 + r * DLAT, GRID_LON0 + c * DLON


def write_tiny_osm(path: Path, *, residential_name: str = "Gitterweg") -> Path:
    """Write the tiny grid as OSM XML (readable by osmnx.graph_from_xml)."""
    nodes = {i: grid_node(i) for i in range(1, 10)}
    nodes[10] = (GRID_LAT0 + 3 * DLAT, GRID_LON0 + 2 * DLON)
    nodes[11] = (GRID_LAT0, GRID_LON0 + 4 * DLON)
    nodes[12] = (GRID_LAT0 - DLAT, GRID_LON0 + 4 * DLON)
    nodes[13] = (GRID_LAT0, GRID_LON0 - DLON)
    nodes[14] = (GRID_LAT0 + 2 * DLAT, GRID_LON0 - DLON)
    ways = [
        ([1, 2, 3], "residential", residential_name, False),
        ([4, 5, 6], "residential", residential_name, False),
        ([7, 8, 9], "residential", residential_name, False),
        ([1, 4, 7], "residential", "Westweg", False),
        ([2, 5, 8], "residential", "Mittelweg", False),
        ([3, 6, 9], "tertiary", "Ostring", False),
        ([9, 10], "residential", "Sackgasse", True),
        ([3, 11], "living_street", "Spielstraße", False),
        ([11, 6], "residential", "Bogen", False),
        ([11, 12], "residential", "Stichweg", False),
        ([13, 1], "residential", "Westeinfahrt", False),
        ([14, 7], "residential", "Nordeinfahrt", False),
    ]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests">']
    lines.append('<bounds minlat="51.56" minlon="8.09" maxlat="51.58" maxlon="8.12"/>')
    for i, (lat, lon) in nodes.items():
        lines.append(f'<node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for w, (refs, hw, name, oneway) in enumerate(ways, start=100):
        lines.append(f'<way id="{w}" version="1">')
        lines += [f'<nd ref="{r}"/>' for r in refs]
        lines.append(f'<tag k="highway" v="{hw}"/><tag k="name" v="{name}"/>')
        if oneway:
            lines.append('<tag k="oneway" v="yes"/>')
        lines.append("</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def network_from_edges(n: int, edges: list[tuple[int, int, int, int]]):
    """A RoadNetwork from (u, v, time_ms, length_cm) edges, nodes on a line 100 m apart."""
    import numpy as np

    from graphs.network import RoadNetwork

    edges = sorted(edges)
    tails = np.array([e[0] for e in edges], dtype=np.int32)
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(tails, minlength=n), out=indptr[1:])
    lat = GRID_LAT0 + np.arange(n) * 0.0009
    lon = np.full(n, GRID_LON0)
    geom_lat = np.array([lat[x] for u, v, *_ in edges for x in (u, v)])
    geom_lon = np.array([lon[x] for u, v, *_ in edges for x in (u, v)])
    return RoadNetwork(
        indptr=indptr,
        heads=np.array([e[1] for e in edges], dtype=np.int32),
        time_ms=np.array([e[2] for e in edges], dtype=np.int32),
        length_cm=np.array([e[3] for e in edges], dtype=np.int32),
        node_lat=lat.astype(np.float64),
        node_lon=lon.astype(np.float64),
        node_osmid=np.arange(n, dtype=np.int64),
        geom_indptr=np.arange(0, 2 * len(edges) + 1, 2, dtype=np.int32),
        geom_lat=geom_lat,
        geom_lon=geom_lon,
        edge_name=np.full(len(edges), -1, dtype=np.int32),
        names=(),
    )


GRID_EDGE_MS = 60_000  # one block of the synthetic grid town: 60 s, 500 m


def grid_town(size: int = 5):
    """A size x size grid of two-way streets, 60 s per block; node = row * size + col."""
    from routing.matrix import TravelTimes

    edges = []
    for r in range(size):
        for c in range(size):
            u = r * size + c
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                rr, cc = r + dr, c + dc
                if 0 <= rr < size and 0 <= cc < size:
                    edges.append((u, rr * size + cc, GRID_EDGE_MS, 50_000))
    return TravelTimes(network_from_edges(size * size, edges))


def place(node: int, size: int = 5):
    from nachtbus.domain import Place

    r, c = divmod(node, size)
    return Place(lat=GRID_LAT0 + r * 0.0045, lon=GRID_LON0 + c * 0.007, node=node, label=f"n{node}")


def bus(
    vid: str,
    seats: int = 4,
    wheelchairs: int = 1,
    depot: int = 0,
    shift: tuple[int, int] = (20 * 3600, 29 * 3600),
):
    from nachtbus.domain import Vehicle

    return Vehicle(vid, seats, wheelchairs, place(depot), shift[0], shift[1])


def request(
    rid: str,
    a: int,
    b: int,
    now: int,
    *,
    at: int | None = None,
    passengers: int = 1,
    wheelchairs: int = 0,
):
    from nachtbus.domain import BookingRequest

    return BookingRequest(rid, place(a), place(b), now, at, passengers, wheelchairs)


def assert_plans_match_bookings(state) -> None:
    """Every stop of every plan belongs to an open booking (pending, confirmed, on board)
    that names that bus, and every open booking's stops are in its bus's plan (the
    service's own check, ``FleetState.plan_errors``, and no booking waits without a bus)."""
    from nachtbus.domain import BookingStatus

    assert state.plan_errors() == []
    waiting = (BookingStatus.PENDING, BookingStatus.CONFIRMED)
    for b in state.bookings.values():
        assert b.status not in waiting or b.vehicle_id, f"{b.booking_id} is {b.status}, no bus"


def paired_requests(n: int, *, required: bool = True, spacing_s: int = 150):
    """n one-seat requests from location 2i to 2i + 1, windows ``spacing_s`` apart and 15 min
    wide, 30 s dwell, a 30 min ride limit; an optional one costs 100,000 to leave out."""
    from routing.problem import RequestSpec

    return tuple(
        RequestSpec(
            pickup=2 + 2 * i,
            dropoff=3 + 2 * i,
            pickup_window=(i * spacing_s, i * spacing_s + 900),
            seats=1,
            pickup_service_s=30,
            dropoff_service_s=30,
            max_ride_s=1800,
            required=required,
            penalty=100_000,
            key=f"r{i}",
        )
        for i in range(n)
    )


def random_routing_problem(
    rng, n_requests: int, n_vehicles: int, *, onboard: bool = False, open_ends: bool = False
):
    """A random RoutingProblem on 12 places: windows at either end, ride-time limits, seats
    and wheelchairs, route durations and shift ends; with ``onboard`` request 0 may already
    ride in bus 0 (then every request is optional), with ``open_ends`` some buses end anywhere.
    """
    import numpy as np

    from routing.problem import RequestSpec, RoutingProblem, VehicleSpec

    n_loc = 12
    xy = rng.integers(0, 1000, size=(n_loc, 2))
    t = np.rint(np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))).astype(np.int64)
    reqs = []
    for k in range(n_requests):
        a, b = rng.choice(n_loc, 2, replace=False)
        e = int(rng.integers(0, 3000))
        on = onboard and k == 0 and rng.random() < 0.5
        reqs.append(
            RequestSpec(
                pickup=int(a),
                dropoff=int(b),
                pickup_window=(e, e + int(rng.integers(0, 900))),
                dropoff_window=(0, e + int(rng.integers(600, 4000))),
                seats=int(rng.integers(1, 3)),
                wheelchairs=int(rng.random() < 0.2),
                pickup_service_s=int(rng.integers(0, 60)),
                dropoff_service_s=int(rng.integers(0, 60)),
                max_ride_s=int(rng.integers(300, 3000)),
                required=not onboard,
                onboard_vehicle=0 if on else None,
                picked_up_s=0 if on else None,
                key=str(k),
            )
        )
    vehicles = tuple(
        VehicleSpec(
            int(rng.integers(n_loc)),
            0,
            int(rng.integers(2, 5)),
            int(rng.integers(0, 2)),
            end=None if open_ends and rng.random() < 0.3 else int(rng.integers(n_loc)),
            end_latest_s=int(rng.integers(3000, 9000)),
            max_duration_s=int(rng.integers(2500, 9000)),
        )
        for _ in range(n_vehicles)
    )
    return RoutingProblem(t, vehicles, tuple(reqs))


# ---------------------------------------------------------------------- the synthetic town
# "Testdorf": a made-up town laid over Soest's coordinates, so that the named places above
# (MARKT, STATION, OSTOENNEN, AMPEN, BERGEDE; BAD_SASSENDORF outside) mean the same on it as on
# the real network. It is an example made for tests, not map data: a grid of streets for the
# Kernstadt, three village grids, and country roads between them. The API and dispatch tests
# run on it without ../shared; the real Soest network (../shared/data/osm) is used by the tests
# marked ``soest``.
TOWN_LAT, TOWN_LON = (51.560, 51.582), (8.090, 8.122)  # Kernstadt grid corners
TOWN_DLAT, TOWN_DLON = 0.002, 0.003  # about 220 m x 210 m blocks
VILLAGES = {"Ostönnen": OSTOENNEN, "Ampen": AMPEN, "Bergede": BERGEDE}
#: Service area: the town, the villages, and a cut that leaves Bad Sassendorf outside.
TOWN_AREA = [
    (7.985, 51.515),
    (8.185, 51.515),
    (8.185, 51.565),
    (8.140, 51.575),
    (8.140, 51.595),
    (7.985, 51.595),
    (7.985, 51.515),
]


def write_town_osm(path: Path) -> Path:
    """Write Testdorf as OSM XML (readable by osmnx.graph_from_xml); see above."""
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[list[int], str, str]] = []
    rows = round((TOWN_LAT[1] - TOWN_LAT[0]) / TOWN_DLAT) + 1
    cols = round((TOWN_LON[1] - TOWN_LON[0]) / TOWN_DLON) + 1

    def grid(base: int, lat0: float, lon0: float, n_r: int, n_c: int, dlat: float, dlon: float,
             streets: str, cls: str) -> list[list[int]]:  # fmt: skip
        ids = [[base + r * n_c + c for c in range(n_c)] for r in range(n_r)]
        for r in range(n_r):
            for c in range(n_c):
                nodes[ids[r][c]] = (lat0 + r * dlat, lon0 + c * dlon)
        for r in range(n_r):
            ways.append((ids[r], cls if r % 3 else "tertiary", f"{streets}straße {r + 1}"))
        for c in range(n_c):
            ways.append(([ids[r][c] for r in range(n_r)], cls, f"{streets}weg {c + 1}"))
        return ids

    town = grid(1000, TOWN_LAT[0], TOWN_LON[0], rows, cols, TOWN_DLAT, TOWN_DLON, "Markt",
                "residential")  # fmt: skip
    village_ids = {}
    for k, (name, (lat, lon)) in enumerate(VILLAGES.items()):
        village_ids[name] = grid(5000 + 100 * k, lat - 0.0015, lon - 0.002, 3, 3, 0.0015, 0.002,
                                 name, "residential")  # fmt: skip
    next_id = [9000]

    def road(a: int, b: int, name: str) -> None:
        """A country road from node a to node b with a bend point every ~500 m."""
        (la, oa), (lb, ob) = nodes[a], nodes[b]
        steps = max(1, round(max(abs(la - lb) / 0.0045, abs(oa - ob) / 0.007)))
        refs = [a]
        for s in range(1, steps):
            nodes[next_id[0]] = (la + (lb - la) * s / steps, oa + (ob - oa) * s / steps)
            refs.append(next_id[0])
            next_id[0] += 1
        ways.append(([*refs, b], "secondary", name))

    road(town[3][0], village_ids["Ampen"][1][2], "Ampener Landstraße")
    road(village_ids["Ampen"][1][0], village_ids["Ostönnen"][1][2], "Ostönner Straße")
    road(town[0][cols - 1], village_ids["Bergede"][2][1], "Bergeder Weg")
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests">']
    lines.append("<!-- An example town for tests (Testdorf), not map data. -->")
    lines.append('<bounds minlat="51.51" minlon="7.98" maxlat="51.60" maxlon="8.19"/>')
    for i, (lat, lon) in nodes.items():
        lines.append(f'<node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for w, (refs, hw, name) in enumerate(ways, start=100):
        lines.append(f'<way id="{w}" version="1">')
        lines += [f'<nd ref="{r}"/>' for r in refs]
        lines.append(f'<tag k="highway" v="{hw}"/><tag k="name" v="{name}"/>')
        lines.append("</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_town_area(path: Path) -> Path:
    """Testdorf's service area as GeoJSON (an example, like the town)."""
    import json

    feature = {
        "type": "Feature",
        "properties": {"name": "Testdorf (example service area for tests)"},
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in TOWN_AREA]]},
    }
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


class NoLocator:
    """A locator for services that nobody reports positions to (the grid town's tests)."""

    def place(self, lat: float, lon: float, field: str, *, in_area: bool = True):
        raise AssertionError("not used: nobody reports positions here")
