"""The command line: route and graph info on the real graph, one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nachtbus.cli import main
from tests.helpers import BAD_SASSENDORF, MARKT, OSTOENNEN


@pytest.fixture()
def soest_env(soest_world, soest_cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Point the CLI at the session's Soest cache so it does not rebuild the network."""
    monkeypatch.setenv("NACHTBUS_CACHE_DIR", str(soest_cache_dir))
    monkeypatch.delenv("NACHTBUS_OSM_FILE", raising=False)


def _coord(p: tuple[float, float]) -> str:
    return f"{p[0]},{p[1]}"


@pytest.mark.soest
def test_route_json_markt_to_ostoennen(soest_env, soest_world, capsys) -> None:  # type: ignore[no-untyped-def]
    """--json prints one object whose time and distance equal the engine's for the snapped ends."""
    assert main(["route", "--from", _coord(MARKT), "--to", _coord(OSTOENNEN), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    a, b = soest_world.locate(*MARKT), soest_world.locate(*OSTOENNEN)
    assert out["travel_time_s"] == soest_world.times.time_s(a.node, b.node)
    assert out["distance_m"] == soest_world.times.distance_m(a.node, b.node)
    assert 5_000 < out["distance_m"] < 12_000 and 300 < out["travel_time_s"] < 1_200
    assert out["path_points"] > 10


@pytest.mark.soest
def test_route_text_names_time_distance_and_points(soest_env, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["route", "--from", _coord(MARKT), "--to", _coord(OSTOENNEN)]) == 0
    out = capsys.readouterr().out
    assert "travel time" in out and "distance" in out and "points" in out


@pytest.mark.soest
def test_graph_info_json(soest_env, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["graph", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 6384 and info["cache_hit"] is True
    assert info["source"].endswith("soest_roads_drive.osm.bz2")
    assert info["lookups"] == "all-pairs table"


@pytest.mark.soest
@pytest.mark.parametrize(
    ("frm", "message"),
    [
        ("abc,8.1", "--from: lat 'abc' is not a number"),
        ("51.5", "--from: must be LAT,LON"),
        ("51.5,190", "--from: lon '190' is outside the valid range"),
        (_coord(BAD_SASSENDORF), "--from: (51.58300, 8.17200) is 14"),
    ],
)
def test_bad_route_input_is_one_line_exit_2(soest_env, capsys, frm: str, message: str) -> None:  # type: ignore[no-untyped-def]
    assert main(["route", "--from", frm, "--to", _coord(MARKT)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nachtbus: error: ")
    assert message in err


def test_missing_osm_file_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
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


def test_unreadable_osm_file_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><node id='x'")
    assert main(["graph", "info", "--osm-file", str(bad), "--cache-dir", str(tmp_path)]) == 2
    assert "as OSM XML" in capsys.readouterr().err


def test_graph_info_on_a_tiny_file(tiny_osm: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
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
