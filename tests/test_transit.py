"""The GTFS parts on their own: the timetable reader (gtfs-kit), GTFS-Realtime delays in,
the GTFS-Flex writer and the checker of the reference's Flex rules."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import gtfs_kit
import pytest
from shapely.geometry import box
from shapely.geometry import shape as to_shape

from nachtbus.cli import main
from nachtbus.errors import ConfigError, InvalidInput
from nachtbus.transit import flex, realtime
from nachtbus.transit.timetable import EXAMPLE_FEED, load
from tests.helpers import STATION

BERLIN = ZoneInfo("Europe/Berlin")
SOEST_BOX = box(8.0, 51.5, 8.2, 51.65)  # lon/lat around Soest


def test_the_example_timetable_counts_night_trains_to_the_evening_before() -> None:
    """Trains after midnight belong to the night that began the evening before, whether
    written 24:58 on the evening's date or 01:31 on the next date's service."""
    tt = load(EXAMPLE_FEED, BERLIN, inside=SOEST_BOX)
    assert list(tt.stations) == ["SOE"]
    calls = {c.trip_id: c for c in tt.calls(date(2026, 12, 4))}
    assert calls["RE1X-E-2458"].arrival_s == 24 * 3600 + 58 * 60
    assert calls["RB59X-E-0131"].arrival_s == 25 * 3600 + 31 * 60
    assert calls["RB59X-E-0131"].last and not calls["RB59X-E-0131"].first
    assert calls["RB59X-W-2215"].first  # starts at Soest: nobody arrives on it
    arrivals = tt.arrivals(date(2026, 12, 4))
    assert "RB59X-W-2215" not in {c.trip_id for c in arrivals}
    assert [c.arrival_s for c in arrivals] == sorted(c.arrival_s for c in arrivals)


def test_on_the_night_the_clocks_go_back_gtfs_noon_minus_12h_is_kept() -> None:
    """25 Oct 2026: GTFS times of that date count from noon minus 12 h (01:00 summer time
    on the evening before's clock), so 24:58 on the 25th is 00:58 winter time on the 26th:
    one elapsed hour more than the wall clock says."""
    tt = load(EXAMPLE_FEED, BERLIN, stop_ids=["SOE"])
    calls = {c.trip_id: c for c in tt.calls(date(2026, 10, 25))}
    assert calls["RE1X-E-2458"].arrival_s == 24 * 3600 + 58 * 60 + 3600
    plain = {c.trip_id: c for c in tt.calls(date(2026, 11, 25))}
    assert plain["RE1X-E-2458"].arrival_s == 24 * 3600 + 58 * 60


def test_calendar_dates_remove_a_night(tmp_path: Path) -> None:
    """A calendar_dates.txt removal (exception 2) takes that date's trains out."""
    feed = tmp_path / "feed"
    shutil.copytree(EXAMPLE_FEED, feed)
    (feed / "calendar_dates.txt").write_text("service_id,date,exception_type\nDAILY,20261224,2\n")
    tt = load(feed, BERLIN, stop_ids=["SOE"])
    evening = [c for c in tt.calls(date(2026, 12, 24)) if c.arrival_s < 24 * 3600]
    assert evening == []
    # the 01:31 of the 25th's service still runs, in the night of the 24th
    assert [c.trip_id for c in tt.calls(date(2026, 12, 24))][-1] == "RB59X-E-0131"
    assert tt.example is False


def test_a_feed_without_a_stop_in_the_area_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load(EXAMPLE_FEED, BERLIN, inside=box(0, 0, 1, 1))
    assert err.value.field == "gtfs_feed"
    with pytest.raises(ConfigError):
        load(tmp_path / "missing.zip", BERLIN, inside=SOEST_BOX)


def test_trip_update_delays_are_read_at_our_station() -> None:
    """The StopTimeUpdate at our stop wins over the trip's delay; an absolute time is read
    against the timetable; other stops are ignored; garbage is an error naming the body."""
    from google.transit import gtfs_realtime_pb2 as rt

    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    a = msg.entity.add(id="a").trip_update
    a.trip.trip_id = "A"
    a.delay = 60
    s = a.stop_time_update.add(stop_id="HAM")
    s.arrival.delay = 900
    s = a.stop_time_update.add(stop_id="SOE")
    s.arrival.delay = 300
    b = msg.entity.add(id="b").trip_update
    b.trip.trip_id = "B"
    s = b.stop_time_update.add(stop_id="SOE")
    s.arrival.time = 1_000_420
    c = msg.entity.add(id="c").trip_update
    c.trip.trip_id = "C"
    c.delay = -120
    got = realtime.delays(
        msg.SerializeToString(), ["SOE"], lambda t: 1_000_000 if t == "B" else None
    )
    assert got == {"A": 300, "B": 420, "C": -120}
    with pytest.raises(InvalidInput) as err:
        realtime.delays(b"\xff\xff not protobuf", ["SOE"], lambda t: None)
    assert err.value.field == "body"


def _service() -> flex.FlexService:
    return flex.FlexService(
        agency_name="Nachtbus Test",
        agency_url="https://example.org/",
        timezone="Europe/Berlin",
        area=box(8.0, 51.5, 8.2, 51.65),
        area_name="Test",
        service_start_s=20 * 3600,
        service_end_s=29 * 3600,
        start_date=date(2026, 12, 1),
        end_date=date(2027, 12, 1),
        prebook_horizon_s=24 * 3600,
        phone="+49 2921 1234",
    )


def test_the_flex_feed_keeps_the_rules_and_loads_in_gtfs_kit(tmp_path: Path) -> None:
    files = flex.files(_service())
    assert flex.check(files) == []
    flex.write_dir(_service(), tmp_path / "feed")
    feed = gtfs_kit.read_feed(tmp_path / "feed", dist_units="km")
    assert feed.agency["agency_name"].iloc[0] == "Nachtbus Test"
    assert list(feed.calendar["start_date"]) == ["20261201"]
    zone = json.loads(files["locations.geojson"])["features"][0]
    assert to_shape(zone["geometry"]).equals(box(8.0, 51.5, 8.2, 51.65))


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


def _analyzer_findings(files: dict[str, str]) -> list[str]:
    """What gtfs-analyzer (an independent validator with Flex rules) finds, above LOW."""
    import gtfs_analyzer

    report = gtfs_analyzer.validate_gtfs(_zip(files))
    return [
        f"{n['severity']} {n['rule_id']} {n['file']}: {n['field']}: {n['message']}"
        for n in report["notices"]
        if n["severity"] not in ("INFO", "LOW")
    ]


def test_gtfs_analyzer_finds_nothing_in_the_flex_feed_and_agrees_on_broken_ones() -> None:
    """The same feed through gtfs-analyzer: no finding above LOW (and no LOW either); a
    regular pickup in a window and an unknown booking rule are found by it as by ours."""
    import gtfs_analyzer

    good = flex.files(_service())
    report = gtfs_analyzer.validate_gtfs(_zip(good))
    assert [n["rule_id"] for n in report["notices"] if n["severity"] != "INFO"] == []
    broken = _edit(good, "stop_times.txt", 0, "pickup_type", "0")
    broken = _edit(broken, "stop_times.txt", 0, "pickup_booking_rule_id", "nope")
    theirs = _analyzer_findings(broken)
    assert any("pickup_type" in f for f in theirs) and any("nope" in f for f in theirs)
    ours = flex.check(broken)
    assert any("pickup_type" in p for p in ours) and any("nope" in p for p in ours)


def _edit(files: dict[str, str], name: str, row: int, field: str, value: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(files[name])))
    if field not in rows[0]:
        for r in rows:
            r[field] = ""
    rows[row][field] = value
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return {**files, name: buf.getvalue()}


@pytest.mark.parametrize(
    ("name", "row", "field", "value", "rule"),
    [
        ("stop_times.txt", 0, "pickup_type", "0", "pickup_type: 0"),
        ("stop_times.txt", 0, "pickup_type", "3", "pickup_type: 0"),
        ("stop_times.txt", 1, "drop_off_type", "0", "drop_off_type: 0"),
        ("stop_times.txt", 0, "end_pickup_drop_off_window", "", "required with a location"),
        ("stop_times.txt", 0, "end_pickup_drop_off_window", "19:00:00", "after the start"),
        ("stop_times.txt", 0, "start_pickup_drop_off_window", "8pm", "HH:MM:SS"),
        ("stop_times.txt", 0, "arrival_time", "20:00:00", "arrival_time: forbidden"),
        ("stop_times.txt", 0, "location_id", "elsewhere", "does not resolve"),
        ("stop_times.txt", 0, "stop_id", "S1", "exactly one of"),
        ("stop_times.txt", 0, "pickup_booking_rule_id", "nope", "does not resolve"),
        ("stop_times.txt", 1, "stop_sequence", "1", "must increase"),
        ("trips.txt", 0, "service_id", "weekdays", "service_id"),
        ("trips.txt", 0, "route_id", "", "route_id: required"),
        ("booking_rules.txt", 0, "booking_type", "1", "prior_notice_duration_min: required"),
        ("booking_rules.txt", 0, "booking_type", "7", "must be 0, 1 or 2"),
        ("booking_rules.txt", 0, "prior_notice_last_day", "1", "forbidden for booking_type 0"),
        ("calendar.txt", 0, "end_date", "20251201", "before start_date"),
        ("calendar.txt", 0, "monday", "yes", "must be 0 or 1"),
        ("agency.txt", 0, "agency_timezone", "", "agency_timezone: required"),
    ],
)
def test_the_flex_checker_finds_each_broken_rule(
    name: str, row: int, field: str, value: str, rule: str
) -> None:
    """Each rule the checker knows, broken once in an otherwise good feed, is reported."""
    broken = _edit(flex.files(_service()), name, row, field, value)
    problems = flex.check(broken)
    assert any(rule in p for p in problems), problems


def test_the_flex_checker_reads_the_geojson_rules() -> None:
    files = flex.files(_service())
    data = json.loads(files["locations.geojson"])
    data["features"][0]["geometry"] = {"type": "Point", "coordinates": [8.1, 51.6]}
    assert any(
        "(Multi)Polygon" in p for p in flex.check({**files, "locations.geojson": json.dumps(data)})
    )
    missing = {k: v for k, v in files.items() if k != "trips.txt"}
    assert "trips.txt: required file missing" in flex.check(missing)


def test_cli_exports_a_flex_feed_that_keeps_the_rules(
    town_sources: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nachtbus export gtfs-flex DIR --zip`` writes the files and the zip; both keep the
    rules, and the booking rule carries the settings' phone number."""
    out = tmp_path / "flex"
    code = main(
        [
            "export",
            "gtfs-flex",
            str(out),
            "--zip",
            "--service-area",
            town_sources["NACHTBUS_SERVICE_AREA_FILE"],
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert flex.check(flex.read(out)) == []
    assert flex.check(flex.read(out / "nachtbus-flex.zip")) == []
    zone = json.loads((out / "locations.geojson").read_text())["features"][0]
    assert to_shape(zone["geometry"]).contains(
        to_shape({"type": "Point", "coordinates": [STATION[1], STATION[0]]})
    )
    assert main(["export", "gtfs-flex", str(out), "--days", "0"]) != 0


def test_gtfs_rt_trip_update_feed_round_trips() -> None:
    body = realtime.trip_update_feed({"T1": 720}, "SOE", datetime(2026, 12, 1, 22, tzinfo=BERLIN))
    assert realtime.delays(body, ["SOE"], lambda t: None) == {"T1": 720}
    assert realtime.decode(body).header.timestamp == int(
        datetime(2026, 12, 1, 22, tzinfo=BERLIN).timestamp()
    )


def test_another_town_runs_without_the_example_trains_but_a_named_feed_must_fit(
    tmp_path: Path,
) -> None:
    """The example's station is in Soest: a service area elsewhere starts without trains;
    a feed the operator names that has no stop in the area stops the start-up."""
    from types import SimpleNamespace
    from typing import Any

    from dispatch.assembly import timetable_from_settings
    from nachtbus.settings import Settings

    far: Any = SimpleNamespace(area=SimpleNamespace(geometry=box(7.0, 51.0, 7.1, 51.1)))
    assert timetable_from_settings(Settings(data_dir=tmp_path), far) is None
    named = Settings(data_dir=tmp_path, gtfs_feed=str(EXAMPLE_FEED))
    with pytest.raises(ConfigError):
        timetable_from_settings(named, far)
    soest: Any = SimpleNamespace(area=SimpleNamespace(geometry=SOEST_BOX))
    tt = timetable_from_settings(named, soest)
    assert tt is not None and list(tt.stations) == ["SOE"]
    assert timetable_from_settings(Settings(data_dir=tmp_path, gtfs_feed="none"), soest) is None
