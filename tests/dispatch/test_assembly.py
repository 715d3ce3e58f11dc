"""Wiring a service from its settings: a depot off the network is a clear settings error."""

from __future__ import annotations

import pytest

from dispatch.assembly import fleet_from_settings
from dispatch.policies import ServicePolicy
from nachtbus.errors import ConfigError
from nachtbus.settings import Settings
from routing.world import RoadWorld


def test_the_default_depot_is_on_testdorf(town_world: RoadWorld) -> None:
    buses = fleet_from_settings(Settings(buses=2), town_world, ServicePolicy())
    assert [b.depot.node for b in buses] == [buses[0].depot.node] * 2


def test_a_depot_off_the_network_names_the_settings_to_change(town_world: RoadWorld) -> None:
    # Arnsberg station, 20 km from Testdorf (which lies over Soest)
    settings = Settings(depot_lat=51.3967, depot_lon=8.0644)
    with pytest.raises(ConfigError) as err:
        fleet_from_settings(settings, town_world, ServicePolicy())
    assert err.value.field == "depot_lat"
    assert "NACHTBUS_DEPOT_LAT" in err.value.message and "nearest" in err.value.message
