"""Rebalancing: targets from expected demand, a min-cost assignment, never a bus with stops."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.rebalancing import RebalanceParams, Zone, shares, targets
from nachtbus.domain import FleetState, Offer
from nachtbus.errors import VehicleBusy
from tests.helpers import bus, grid_town, place, request

NOW = 21 * 3600
TIMES = grid_town()


class TwoCorners:
    """Demand expected in the grid's two far corners (nodes 4 and 20), in a given ratio."""

    def __init__(self, at_4: float, at_20: float) -> None:
        self.weights = {"ne": at_4, "sw": at_20}

    def zones(self) -> Sequence[Zone]:
        return (Zone("ne", place(4)), Zone("sw", place(20)))

    def expected(self, t0_s: int, t1_s: int) -> dict[str, float]:
        return dict(self.weights)

    def zone_of(self, lat: float, lon: float) -> str | None:
        for z in self.zones():
            if abs(z.place.lat - lat) < 1e-6 and abs(z.place.lon - lon) < 1e-6:
                return z.zone_id
        return None


def test_shares_split_by_largest_remainder() -> None:
    assert shares(3, {"a": 1.0, "b": 1.0, "c": 1.0}) == {"a": 1, "b": 1, "c": 1}
    assert shares(4, {"a": 2.5, "b": 1.0, "c": 0.5}) == {"a": 3, "b": 1}
    assert shares(2, {"a": 0.0}) == {}
    assert sum(shares(7, {"a": 0.3, "b": 0.3, "c": 0.4}).values()) == 7


def test_idle_buses_go_to_the_expected_demand_by_least_driving() -> None:
    """Two idle buses at the depot (node 0) and one demand corner each: the assignment sends
    one to each corner; the bus with a stop is left alone."""
    d = Dispatcher(TIMES, ServicePolicy())
    state = FleetState.create(NOW, [bus("A"), bus("B"), bus("C")])
    offer = d.offer(state, request("r1", 2, 7, NOW))
    assert isinstance(offer, Offer)
    confirmed = d.confirm(state, offer)
    assert isinstance(confirmed, tuple)
    state = confirmed[0]
    busy = offer.vehicle_id
    got = targets(state, TwoCorners(1.0, 1.0), TIMES, RebalanceParams())
    assert busy not in got
    assert sorted(p.node for p in got.values() if p is not None) == [4, 20]
    # all demand in one corner: both idle buses go there
    got = targets(state, TwoCorners(3.0, 0.0), TIMES, RebalanceParams())
    assert [p.node if p else None for p in got.values()] == [4, 4]
    with pytest.raises(VehicleBusy):
        d.reposition(state, busy, place(4))


def test_a_repositioning_bus_is_planned_from_where_it_will_be_free() -> None:
    """A bus on its way to node 12, there at NOW + 240, gets a trip from node 13: the pickup
    is planned one block after it gets there, not earlier; the reposition gives way to it."""
    d = Dispatcher(TIMES, ServicePolicy())
    state = FleetState.create(NOW, [bus("A")])
    state = d.reposition(state, "A", place(24), NOW + 480)
    state = d.heading(state, "A", 12, NOW + 240)
    assert state.now_s == NOW  # the state's clock does not run ahead with the bus
    offer = d.offer(state, request("r1", 13, 3, NOW))
    assert isinstance(offer, Offer)
    assert offer.pickup_eta_s == NOW + 240 + TIMES.time_s(12, 13)
    booked = d.confirm(state, offer)
    assert isinstance(booked, tuple)
    plan = booked[0].plans["A"]
    assert plan.reposition is None and [s.booking_id for s in plan.stops] == ["b-r1"] * 2
