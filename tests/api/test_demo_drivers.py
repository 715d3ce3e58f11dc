"""The simulated drivers of ``serve --demo-drivers``: without them a service with no buses
stops offering a few minutes after its first bookings (every plan falls behind the clock);
with them every booking is picked up in its window and set down in time, and the offers go
on. On the real store and roads, with the clock moved by hand and one look at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.demo_drivers import DemoDrivers
from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, TEN_PM, Api, driver, open_api

QUERY = ((51.570, 8.100), (51.575, 8.115))


@pytest.fixture()
def town(town_world: RoadWorld, tmp_path: Path) -> Iterator[Api]:
    api = open_api(town_world, tmp_path / "data", ManualClock(TEN_PM),
                   rate_per_key_per_s=1000, rate_burst=1000)  # fmt: skip
    with api.client:
        yield api
    api.runtime.close()


def _book_some(api: Api, n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    ids = []
    for _ in range(n):
        a = (rnd.uniform(51.561, 51.581), rnd.uniform(8.091, 8.121))
        b = (rnd.uniform(51.561, 51.581), rnd.uniform(8.091, 8.121))
        if api.inquire(a, b).json().get("options"):
            ids.append(api.booked(a, b)["id"])
    return ids


def _offers(api: Api) -> int:
    r = api.inquire(*QUERY)
    assert r.status_code == 200, r.text
    return len(r.json()["options"])


def _booking(api: Api, bid: str) -> dict:
    return dict(api.client.get(f"/v1/bookings/{bid}", headers=DISPATCHER).json())


def test_without_drivers_the_offers_stop(town: Api) -> None:
    """What the demo drivers are for: ten bookings, nobody drives, five minutes later no bus
    can keep a new promise (each plan is behind the clock)."""
    assert len(_book_some(town, 12, seed=2)) >= 8
    assert _offers(town) == 1
    town.clock.advance(300)
    assert _offers(town) == 0


@pytest.mark.parametrize("seed", [2, 5])
def test_the_demo_drivers_serve_every_booking_in_time(town: Api, seed: int) -> None:
    """Every booking is picked up within its window and set down by its latest arrival; the
    buses report where they are on the way; new offers go on while they drive."""
    drivers = DemoDrivers(town.runtime, report_s=30)
    ids = _book_some(town, 12, seed=seed)
    assert len(ids) >= 8
    positions: dict[str, set[tuple[float, float]]] = {}
    offered = []
    for k in range(90 * 6):  # 90 min in steps of 10 s
        drivers.step()
        if k % 30 == 0:  # every 5 min
            offered.append(_offers(town))
            for v in town.client.get("/v1/fleet", headers=DISPATCHER).json()["vehicles"]:
                p = v["position"]
                positions.setdefault(v["vehicleId"], set()).add((p["lat"], p["lon"]))
        town.clock.advance(10)
    assert min(offered) == 1, offered
    for bid in ids:
        seen = _booking(town, bid)
        assert seen["state"] == "FINISHED", seen
    state = town.runtime.service.snapshot()
    for bid in ids:
        b = state.bookings[bid]
        assert b.picked_up_s is not None and b.dropped_off_s is not None
        assert b.pickup_window[0] <= b.picked_up_s <= b.pickup_window[1], b
        assert b.dropped_off_s <= b.latest_dropoff_s, b
    assert sum(len(seen) > 2 for seen in positions.values()) >= 2  # they moved, and reported


def test_a_bus_whose_driver_reports_is_left_to_the_driver(town: Api) -> None:
    """The driver of bus-1 reports through the API: the demo drives the other buses only,
    and bus-1 stays where its driver said it is."""
    drivers = DemoDrivers(town.runtime)
    town.runtime.demo_drivers = drivers  # as serve --demo-drivers sets it
    _book_some(town, 12, seed=2)
    assert "bus-1" in drivers.driven()
    r = town.vehicle_event("bus-1", type="POSITION", lat=51.5701, lon=8.1001)
    assert r.status_code == 200, r.text
    assert "bus-1" not in drivers.driven() and drivers.driven()
    before = town.runtime.service.snapshot().states["bus-1"]
    for _ in range(60):
        drivers.step()
        town.clock.advance(20)
    after = town.runtime.service.snapshot()
    assert after.states["bus-1"].node == before.node
    others = [vid for vid in after.states if vid != "bus-1"]
    assert any(after.states[v].at_s > before.at_s for v in others)
    r = town.client.get("/v1/vehicles/bus-1/plan", headers=driver("bus-1"))
    assert r.status_code == 200 and r.json()["vehicleId"] == "bus-1"  # its page still reads it


def test_demo_drivers_are_refused_in_production_and_with_workers() -> None:
    """Simulated drivers are a development tool: production refuses them naming the setting;
    several worker processes are refused naming the option."""
    from nachtbus.cli import main
    from nachtbus.errors import ConfigError
    from nachtbus.settings import Settings

    good = "k" * 32
    with pytest.raises(ConfigError) as err:
        Settings(
            environment="production",
            rider_app_keys={good + "r": "app"},
            driver_keys={good + "d": "bus-1"},
            dispatcher_keys=[good],
            demo_drivers=True,
        ).check_production()
    assert err.value.field == "demo_drivers"
    assert main(["serve", "--demo-drivers", "--workers", "2"]) == 2
