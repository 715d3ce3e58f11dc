"""A town's input folder: districts estimated from its OSM places, its main station, and the
settings that take everything from the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dispatch.assembly import depot_of
from graphs.areas import estimated_districts, load_districts, main_station
from nachtbus.settings import Settings

# a 4 km x 2 km box: a town in the west, a village in the east
W, E, S, N = 8.00, 8.056, 51.00, 51.018
POIS_HEAD = "name,class,subclass,lat,lon,category,in_service_area,source,note\n"


def _folder(tmp_path: Path, places: list[str], cells: list[str], pois: list[str]) -> Path:
    f = tmp_path / "town"
    f.mkdir()
    ring = [[W, S], [E, S], [E, N], [W, N], [W, S]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
               "coordinates": [ring]}}  # fmt: skip
    (f / "service_area.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8"
    )
    (f / "town_area_places.csv").write_text(
        "name,place_class,lat,lon\n" + "".join(p + "\n" for p in places), encoding="utf-8"
    )
    (f / "residential_cells.csv").write_text(
        "lat,lon,pop_est\n" + "".join(c + "\n" for c in cells), encoding="utf-8"
    )
    (f / "pois.csv").write_text(POIS_HEAD + "".join(p + "\n" for p in pois), encoding="utf-8")
    (f / "town_roads_drive.osm.bz2").write_bytes(b"")
    return f


PLACES = [
    "Burg,town,51.009,8.005",
    "Dorf,village,51.009,8.050",
    "Weiler,hamlet,51.012,8.048",  # no seed: it lies in Dorf's district
    "Fern,village,51.300,8.300",  # outside the area
    "Mühle,isolated_dwelling,51.002,8.010",
]
CELLS = ["51.009,8.004,1000", "51.010,8.010,500", "51.009,8.051,200", "51.010,8.052,0"]


def test_districts_are_the_places_cells_clipped_to_the_area_with_their_residents(
    tmp_path: Path,
) -> None:
    d = estimated_districts(_folder(tmp_path, PLACES, CELLS, []))
    by_name = {x.name: x for x in d.districts}
    assert set(by_name) == {"Burg (Kernstadt)", "Dorf"}
    assert by_name["Burg (Kernstadt)"].population == 1500 and by_name["Dorf"].population == 200
    assert d.name_at(51.012, 8.048) == "Dorf" and d.name_at(51.002, 8.010) == "Burg (Kernstadt)"
    total = sum(x.geometry.area for x in d.districts)
    assert total == pytest.approx((E - W) * (N - S), rel=1e-9)  # a partition of the area
    assert d.name_at(51.3, 8.3) is None


def test_two_places_of_one_name_stay_two_districts(tmp_path: Path) -> None:
    places = ["Burg,town,51.009,8.005", "Holzen,suburb,51.009,8.030", "Holzen,village,51.009,8.050"]
    d = estimated_districts(_folder(tmp_path, places, CELLS, []))
    assert d.names == ["Burg (Kernstadt)", "Holzen", "Holzen (2)"]


def test_a_folder_without_a_seed_place_is_refused_naming_area_dir(tmp_path: Path) -> None:
    from nachtbus.errors import GraphSourceError

    with pytest.raises(GraphSourceError) as err:
        estimated_districts(_folder(tmp_path, ["Weiler,hamlet,51.01,8.02"], CELLS, []))
    assert err.value.field == "area_dir"


def test_the_main_station_is_the_one_with_most_residents_near_it(tmp_path: Path) -> None:
    pois = [
        "Dorf (Haltepunkt),railway,station,51.009,8.050,transport,yes,x,",
        "Burg (Bahnhof),railway,station,51.009,8.006,transport,yes,x,",
        "Fern (Bahnhof),railway,station,51.009,8.004,transport,no,x,",  # outside the area
        "Bus,bus,bus_station,51.009,8.004,transport,yes,x,",
    ]
    assert main_station(_folder(tmp_path, PLACES, CELLS, pois)) == (51.009, 8.006)
    other = tmp_path / "b"
    other.mkdir()
    assert main_station(_folder(other, PLACES, CELLS, pois[2:])) is None


def test_settings_take_every_input_and_the_depot_from_the_folder(tmp_path: Path) -> None:
    pois = ["Burg (Bahnhof),railway,station,51.009,8.006,transport,yes,x,"]
    f = _folder(tmp_path, PLACES, CELLS, pois)
    s = Settings(area_dir=f)
    assert s.graph_source() == f / "town_roads_drive.osm.bz2"
    assert s.service_area_source() == f / "service_area.geojson"
    assert s.demand_dir() == f
    assert s.districts_source() == f / "town_area_places.csv"  # estimated from the places
    assert load_districts(f / "town_area_places.csv").names == ["Burg (Kernstadt)", "Dorf"]
    assert depot_of(s) == (51.009, 8.006)
    assert depot_of(Settings(area_dir=f, depot_lat=51.01, depot_lon=8.02)) == (51.01, 8.02)
    (f / "districts.geojson").write_text("{}", encoding="utf-8")
    assert Settings(area_dir=f).districts_source() == f / "districts.geojson"  # its own file


def test_a_folder_that_is_not_a_towns_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    f = _folder(tmp_path, PLACES, CELLS, [])
    (f / "pois.csv").unlink()
    with pytest.raises(ValidationError) as err:
        Settings(area_dir=f)
    assert err.value.errors()[0]["loc"] == ("area_dir",)
    assert "missing pois.csv" in str(err.value)


def test_a_broken_csv_is_refused_naming_the_file_and_the_line(tmp_path: Path) -> None:
    from nachtbus.errors import GraphSourceError

    f = _folder(tmp_path, ["Burg,town,51.009,not-a-number"], CELLS, [])
    with pytest.raises(GraphSourceError) as err:
        estimated_districts(f)
    assert err.value.field == "area_dir" and "town_area_places.csv line 2" in str(err.value)
    (f / "town_area_places.csv").write_text("name,lat,lon\nBurg,51.0,8.0\n", encoding="utf-8")
    with pytest.raises(GraphSourceError, match="needs the column"):
        estimated_districts(f)
    (f / "pois.csv").write_text("name\nx\n", encoding="utf-8")
    with pytest.raises(GraphSourceError, match=r"pois.csv: needs the column\(s\) lat, lon"):
        main_station(f)
