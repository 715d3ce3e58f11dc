"""Two towns, one store: a night planned on one road network is never read on another."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from api.app import build_runtime
from dispatch.redis_store import RedisStore, connect
from nachtbus.clock import ManualClock
from nachtbus.errors import ConfigError
from nachtbus.settings import Settings
from routing.world import RoadWorld, load_world
from tests.api.conftest import RIDER, TEN_PM, make_settings, open_api
from tests.helpers import MARKT, OSTOENNEN, write_tiny_osm


def test_a_night_planned_on_another_network_stops_the_start(
    town_world: RoadWorld, town_sources: dict[str, str], tmp_path: Path
) -> None:
    """Testdorf books a trip; a service on another road network opened on the same store and
    area id refuses to start, naming the setting (its bookings name Testdorf's nodes), and
    stops the store it started; Testdorf started again finds its booking."""
    data, clock = tmp_path / "data", ManualClock(TEN_PM)
    town = open_api(town_world, data, clock)
    with town.client:
        booked = town.booked(MARKT, OSTOENNEN)
    town.runtime.close()

    other = load_world(
        write_tiny_osm(tmp_path / "tiny.osm"),
        Path(town_sources["NACHTBUS_SERVICE_AREA_FILE"]),
        tmp_path / "cache",
    )
    assert other.network.node_key != town_world.network.node_key
    settings = make_settings(data)
    with pytest.raises(ConfigError, match="planned on another road network") as refused:
        build_runtime(settings, other, clock=clock)  # the settings' own embedded store
    assert refused.value.field == "area_id"
    assert "NACHTBUS_AREA_ID" in str(refused.value)
    stale = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(data) in " ".join(p.info["cmdline"] or [])
    ]
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in stale)

    again = open_api(town_world, data, clock)  # the same town: a restart reads its night
    with again.client:
        r = again.client.get(f"/v1/bookings/{booked['id']}", headers=RIDER)
    again.runtime.close()
    assert r.status_code == 200 and r.json()["state"] == "CONFIRMED"


def test_a_night_first_opened_by_an_older_service_is_taken_as_this_networks(
    town_world: RoadWorld, tmp_path: Path
) -> None:
    """A store written before the network was recorded is adopted, not refused."""
    data, clock = tmp_path / "data", ManualClock(TEN_PM)
    town = open_api(town_world, data, clock)
    with town.client:
        town.booked(MARKT, OSTOENNEN)
    town.runtime.service.store.forget("network")  # as an older service left it
    town.runtime.close()
    conn = connect(None, data)
    store = RedisStore(conn, f"soest:{clock.service_date().isoformat()}")
    try:
        rt = build_runtime(make_settings(data), town_world, clock=clock, store=store)
        assert rt.service.store.recall("network") == town_world.network.node_key
    finally:
        conn.close()


def test_a_town_folder_names_its_own_area(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Served from a town folder, the store prefix and archive are that town's unless
    NACHTBUS_AREA_ID says otherwise."""
    folder = tmp_path / "Bad_Berleburg"
    folder.mkdir()
    for name in ("service_area.geojson", "residential_cells.csv", "pois.csv",
                 "bad_roads_drive.osm.bz2", "bad_area_places.csv"):  # fmt: skip
        (folder / name).write_text("", encoding="utf-8")
    monkeypatch.delenv("NACHTBUS_AREA_ID", raising=False)
    assert Settings(area_dir=folder).area_id == "bad-berleburg"
    assert Settings().area_id == "soest"
    monkeypatch.setenv("NACHTBUS_AREA_ID", "berleburg")
    assert Settings(area_dir=folder).area_id == "berleburg"
