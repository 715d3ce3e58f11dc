"""How a fleet state becomes a routing problem: riders on board a late bus."""

from __future__ import annotations

import numpy as np

from dispatch.snapshot import _late_rides
from routing.problem import RequestSpec, StopKind, VehicleSpec

# four places on a line, 100 s apart
T = np.array([[abs(i - j) * 100 for j in range(4)] for i in range(4)], dtype=np.int64)


def onboard(dropoff: int, picked_up_s: int, max_ride_s: int, latest_s: int) -> RequestSpec:
    return RequestSpec(
        pickup=0,
        dropoff=dropoff,
        pickup_window=(0, picked_up_s),
        dropoff_window=(0, latest_s),
        pickup_service_s=30,
        dropoff_service_s=30,
        max_ride_s=max_ride_s,
        onboard_vehicle=0,
        picked_up_s=picked_up_s,
    )


def test_riders_on_board_in_time_are_left_as_they_are() -> None:
    """The bus is at place 0 at 1,000 s: both riders can still be set down in time, even
    though one of them only straight away; nothing is relaxed."""
    reqs = (onboard(3, 900, 370, 2000), onboard(1, 900, 400, 2000))
    bus = VehicleSpec(start=0, start_s=1000, seats=8)
    assert _late_rides(reqs, (bus,), T, [1000]) is None


def test_late_riders_get_the_earliest_the_bus_can_still_set_them_down() -> None:
    """The bus is free at place 0 at 1,000 s. Rider a (to 1) and rider b (to 3) boarded at
    500 s with 300 s ride limits: both are late. Set down nearest first: a at 1,100 s (ride
    570 s), then b at 1,100 + 30 + 200 = 1,330 s (ride 800 s); each limit and latest
    arrival becomes that. Rider c (to 2, 1,000 s limit) is in time and keeps its limit."""
    a, b, c = onboard(1, 500, 300, 900), onboard(3, 500, 300, 2000), onboard(2, 500, 1000, 3000)
    bus = VehicleSpec(start=0, start_s=1000, seats=8)
    out = _late_rides((b, c, a), (bus,), T, [1000])
    assert out is not None
    rb, rc, ra = out
    assert (ra.max_ride_s, ra.dropoff_window) == (570, (0, 1100))
    assert (rb.max_ride_s, rb.dropoff_window) == (800, (0, 2000))
    assert rc is c


def test_the_fixed_stop_comes_first() -> None:
    """The bus is driving to a pickup at place 2 (fixed), whose window opens at 1,500 s:
    the late rider to place 1 can be set down only after it, at 1,500 + 30 + 100 s."""
    pick = RequestSpec(pickup=2, dropoff=3, pickup_window=(1500, 1800), pickup_service_s=30)
    late = onboard(1, 500, 300, 900)
    bus = VehicleSpec(start=0, start_s=1000, seats=8, fixed=((0, StopKind.PICKUP),))
    out = _late_rides((pick, late), (bus,), T, [1000])
    assert out is not None
    assert out[0] is pick
    assert (out[1].max_ride_s, out[1].dropoff_window) == (1630 - 530, (0, 1630))


def test_a_bus_standing_still_does_not_stretch_the_ride() -> None:
    """The bus was done at place 0 at 1,000 s and is still there at 1,600 s (its plan held
    it, or it waited at a door): the late rider's limit is what the bus could do from
    1,000 s, not from now; a plan from now has no solution, as without the relaxation."""
    late = onboard(1, 500, 300, 900)
    bus = VehicleSpec(start=0, start_s=1600, seats=8)
    out = _late_rides((late,), (bus,), T, [1000])
    assert out is not None
    assert (out[0].max_ride_s, out[0].dropoff_window) == (570, (0, 1100))
