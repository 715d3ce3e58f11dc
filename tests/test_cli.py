"""The command line: route and graph info on Testdorf and the real graph, one-line errors with
exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nachtbus.cli import main
from routing.world import RoadWorld
from tests.helpers import BAD_SASSENDORF, MARKT, OSTOENNEN

WORLDS = ["town", pytest.param("soest", marks=pytest.mark.soest)]


@pytest.fixture(params=WORLDS)
def net(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> RoadWorld:
    """Point the CLI at a built network (Testdorf, then the real Soest one) through the
    settings' environment, and give the test the same world to compare with."""
    for key, value in request.getfixturevalue(f"{request.param}_sources").items():
        monkeypatch.setenv(key, value)
    world: RoadWorld = request.getfixturevalue(f"{request.param}_world")
    return world


def _coord(p: tuple[float, float]) -> str:
    return f"{p[0]},{p[1]}"


def test_route_json_markt_to_ostoennen(net: RoadWorld, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one object whose time and distance equal the engine's for the snapped ends."""
    assert main(["route", "--from", _coord(MARKT), "--to", _coord(OSTOENNEN), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    a, b = net.locate(*MARKT), net.locate(*OSTOENNEN)
    assert out["travel_time_s"] == net.times.time_s(a.node, b.node)
    assert out["distance_m"] == net.times.distance_m(a.node, b.node)
    assert 5_000 < out["distance_m"] < 12_000 and 300 < out["travel_time_s"] < 1_200
    assert out["path_points"] > 10


def test_route_text_names_time_distance_and_points(
    net: RoadWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["route", "--from", _coord(MARKT), "--to", _coord(OSTOENNEN)]) == 0
    out = capsys.readouterr().out
    assert "travel time" in out and "distance" in out and "points" in out


def test_graph_info_json(net: RoadWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == net.network.n_nodes and info["cache_hit"] is True
    assert info["source"] == net.network.meta["source"]
    assert info["lookups"] == "all-pairs table"


@pytest.mark.soest
def test_graph_info_of_soest_matches_its_source(
    soest_sources: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The real network: 6,384 nodes (see README), read from the OSM file in ../shared."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in soest_sources.items():
            mp.setenv(key, value)
        assert main(["graph", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 6384 and info["source"].endswith("soest_roads_drive.osm.bz2")


@pytest.mark.parametrize(
    ("frm", "message"),
    [
        ("abc,8.1", "--from: lat 'abc' is not a number"),
        ("51.5", "--from: must be LAT,LON"),
        ("51.5,190", "--from: lon '190' is outside the valid range"),
        (_coord(BAD_SASSENDORF), "--from: (51.58300, 8.17200) is 1"),
    ],
)
def test_bad_route_input_is_one_line_exit_2(
    net: RoadWorld, capsys: pytest.CaptureFixture[str], frm: str, message: str
) -> None:
    assert main(["route", "--from", frm, "--to", _coord(MARKT)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nachtbus: error: ")
    assert message in err
    if "8.17200" in frm:
        assert "m outside the service area" in err


def test_missing_osm_file_exit_2(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "graph",
            "info",
            "--osm-file",
            str(tmp_path / "none.osm.bz2"),
            "--cache-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "OSM file not found" in err and err.count("\n") == 1


def test_unreadable_osm_file_exit_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='x'")
    assert main(["graph", "info", "--osm-file", str(bad), "--cache-dir", str(tmp_path)]) == 2
    assert "as OSM XML" in capsys.readouterr().err


def test_graph_info_on_a_tiny_file(tiny_osm: Path, tmp_path: Path, capsys) -> None:
    """graph build then info: built once, then a cache hit, with the file named as source."""
    area = tmp_path / "area.geojson"
    area.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [
                    [[8.09, 51.56], [8.12, 51.56], [8.12, 51.58], [8.09, 51.58], [8.09, 51.56]]
                ],
            }
        )
    )
    common = [
        "--osm-file",
        str(tiny_osm),
        "--service-area",
        str(area),
        "--cache-dir",
        str(tmp_path),
    ]
    assert main(["graph", "build", *common]) == 0
    assert "built" in capsys.readouterr().out
    assert main(["graph", "info", "--json", *common]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 13 and info["cache_hit"] is True and info["source"] == str(tiny_osm)


def test_a_bad_setting_names_the_setting_and_its_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """From the environment or an option: each broken setting on a line of its own, with its
    variable and the rule, exit 2 (not pydantic's bare "1 validation error")."""
    monkeypatch.setenv("NACHTBUS_BUSES", "0")
    assert main(["graph", "info", "--area-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    buses = next(line for line in err if "NACHTBUS_BUSES" in line)
    assert "setting buses" in buses and "greater than or equal to 1" in buses
    area = next(line for line in err if "--area-dir" in line)  # given as the option
    assert "not a town's input folder" in area and "missing service_area.geojson" in area
    assert "*_roads_drive.osm* (0 found, one needed)" in area  # the pattern that is missing too
    assert area.startswith("nachtbus: error: --area-dir: ") and "Value error" not in area


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--seed", "-1"], "--seed"),
        (["--hindsight", "--hindsight-steps", "-5"], "--hindsight-steps"),
        (["--hindsight-seconds", "-1"], "--hindsight-seconds"),  # even without --hindsight
        (["--report", "/proc/no-such-folder/r"], "--report"),
    ],
)
def test_simulate_refuses_bad_options_before_the_night(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], field: str
) -> None:
    """A bad option is a one-line error naming it, before the night is played (they came
    from numpy with no field, after the online run from the search, or as a traceback when
    the report could not be written at the end, or were ignored unsaid)."""
    f = tmp_path / "s.toml"
    f.write_text('name = "small"\nstart = "22:00"\nend = "23:00"\n[demand]\nrequests = 5\n')
    assert main(["simulate", str(f), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"nachtbus: error: {field}: "), err


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--buses", "0"], "--buses"),
        (["--buses", "51"], "--buses"),
        (["--port", "99999"], "--port"),
        (["--demo-drivers", "--workers", "2"], "--demo-drivers"),
    ],
)
def test_serve_refuses_bad_options_naming_them(
    capsys: pytest.CaptureFixture[str], extra: list[str], field: str
) -> None:
    """serve's options keep the settings' rules: 0 or 51 buses were taken past the setting's
    bounds (a service with no bus), a port past 65535 printed its pages' addresses and then
    listened nowhere; now each is a one-line error naming the option, before anything
    starts."""
    assert main(["serve", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"nachtbus: error: {field}: "), err
