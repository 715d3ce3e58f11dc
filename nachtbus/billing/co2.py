"""The CO2 account: what the bus emitted for each trip, against what the riders would have
done otherwise.

The bus's distance is kept as *legs*: every time it serves a stop, the road distance from the
previous stop it served (or its depot) is one leg, with the riders who were on board. A leg's
emissions are ``km x kWh/km x g CO2/kWh`` and are shared over the riders on board in proportion
to their number of passengers (a group of three carries three shares). A leg with nobody on
board is empty running (repositioning included): it counts in the night's total but in no trip.

Two references, both over each served booking's direct road distance:

- **one car per booking** (``car_kg``): every booking by private car (a group shares a car);
- **what riders would otherwise do** (``counterfactual_kg``): a share drives a car
  (``car_share``), a share takes a taxi (``taxi_share``: the taxi's empty drive to the pickup
  and back to its rank adds ``taxi_empty_per_km`` empty km per occupied km), a share walks or
  cycles (``walk_cycle_share``, no emissions) and a share would not travel at all
  (``stay_home_share``, no emissions: for them the bus's emissions are new ones).

The factors and shares are documented assumptions with their sources in ``docs/co2.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nachtbus.errors import InvalidInput
from nachtbus.settings import Settings


@dataclass(frozen=True)
class Co2Params:
    """Emission factors (documented defaults; set them in settings for a real account)."""

    bus_kwh_per_km: float = 0.45  # electric minibus, heating in winter nights included
    grid_g_per_kwh: float = 380.0  # German grid mix 2023 (UBA), g CO2 per kWh
    car_g_per_km: float = 160.0  # average private car, well-to-wheel, g CO2 per km
    # what the riders would do without the night bus (shares of bookings, sum 1)
    car_share: float = 0.40
    taxi_share: float = 0.20
    walk_cycle_share: float = 0.15
    stay_home_share: float = 0.25
    taxi_empty_per_km: float = 1.0  # taxi's empty km (to the pickup, back) per occupied km

    def __post_init__(self) -> None:
        for name in (
            "bus_kwh_per_km",
            "grid_g_per_kwh",
            "car_g_per_km",
            "car_share",
            "taxi_share",
            "walk_cycle_share",
            "stay_home_share",
            "taxi_empty_per_km",
        ):
            if getattr(self, name) < 0:
                raise InvalidInput("must be >= 0", field=name)
        total = self.car_share + self.taxi_share + self.walk_cycle_share + self.stay_home_share
        if abs(total - 1.0) > 1e-6:
            raise InvalidInput(
                f"the shares of car, taxi, walk/cycle and staying home must sum to 1, "
                f"got {total:.4f}",
                field="car_share",
            )

    @property
    def counterfactual_g_per_km(self) -> float:
        """Expected g CO2 per direct km of a booking without the night bus."""
        return self.car_g_per_km * (self.car_share + self.taxi_share * (1 + self.taxi_empty_per_km))

    @property
    def bus_g_per_km(self) -> float:
        return self.bus_kwh_per_km * self.grid_g_per_kwh

    @classmethod
    def from_settings(cls, settings: Settings) -> Co2Params:
        """The factors a deployment's settings name (``NACHTBUS_BUS_KWH_PER_KM``, ...)."""
        return cls(
            settings.bus_kwh_per_km,
            settings.grid_g_co2_per_kwh,
            settings.car_g_co2_per_km,
            settings.co2_car_share,
            settings.co2_taxi_share,
            settings.co2_walk_cycle_share,
            settings.co2_stay_home_share,
            settings.co2_taxi_empty_per_km,
        )


@dataclass(frozen=True)
class Leg:
    """One driven stretch of a bus between two served stops, with who was on board."""

    vehicle_id: str
    from_node: int
    to_node: int
    start_s: int
    end_s: int
    distance_m: int
    onboard: Mapping[str, int] = field(default_factory=dict)  # booking id -> passengers
    reposition: bool = False  # an idle bus driving to where riders are expected

    def to_json(self) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id,
            "from_node": self.from_node,
            "to_node": self.to_node,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "distance_m": self.distance_m,
            "onboard": dict(self.onboard),
            "reposition": self.reposition,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Leg:
        return cls(
            d["vehicle_id"],
            int(d["from_node"]),
            int(d["to_node"]),
            int(d["start_s"]),
            int(d["end_s"]),
            int(d["distance_m"]),
            {k: int(v) for k, v in d["onboard"].items()},
            bool(d.get("reposition", False)),
        )


@dataclass(frozen=True)
class TripCo2:
    booking_id: str
    passengers: int
    bus_km: float  # km the rider's bus drove while they were on board
    passenger_km: float
    bus_g: float  # this trip's share of the bus's emissions
    car_g: float  # the same trip by car (direct distance)

    @property
    def saved_g(self) -> float:
        return self.car_g - self.bus_g


@dataclass(frozen=True)
class NightCo2:
    trips: Mapping[str, TripCo2]
    vehicle_km: float
    empty_km: float
    passenger_km: float
    pooled_passenger_km: float  # passenger-km on legs with two or more bookings on board
    bus_kg: float
    car_kg: float
    reposition_km: float = 0.0  # empty km driven to where riders were expected (rebalancing)
    counterfactual_kg: float = 0.0  # what the riders would otherwise have emitted

    @property
    def saved_kg(self) -> float:
        return self.car_kg - self.bus_kg

    @property
    def saved_counterfactual_kg(self) -> float:
        return self.counterfactual_kg - self.bus_kg

    @property
    def pooled_share(self) -> float:
        return self.pooled_passenger_km / self.passenger_km if self.passenger_km else 0.0

    def to_json(self) -> dict[str, float]:
        return {
            "vehicle_km": round(self.vehicle_km, 3),
            "empty_km": round(self.empty_km, 3),
            "reposition_km": round(self.reposition_km, 3),
            "passenger_km": round(self.passenger_km, 3),
            "pooled_share": round(self.pooled_share, 4),
            "bus_kg_co2": round(self.bus_kg, 3),
            "car_kg_co2": round(self.car_kg, 3),
            "saved_kg_co2": round(self.saved_kg, 3),
            "counterfactual_kg_co2": round(self.counterfactual_kg, 3),
            "saved_counterfactual_kg_co2": round(self.saved_counterfactual_kg, 3),
        }


def account(
    legs: Iterable[Leg],
    direct_m: Mapping[str, int],
    passengers: Mapping[str, int],
    params: Co2Params,
) -> NightCo2:
    """The night's account from the driven legs; trips are the bookings in ``direct_m`` that
    rode on at least one leg (served trips)."""
    bus_g: dict[str, float] = {}
    bus_km: dict[str, float] = {}
    pkm: dict[str, float] = {}
    vkm = empty = total_pkm = pooled = repo = 0.0
    for leg in legs:
        km = leg.distance_m / 1000
        vkm += km
        if leg.reposition:
            repo += km
        riders = sum(leg.onboard.values())
        if not riders:
            empty += km
            continue
        leg_g = km * params.bus_g_per_km
        leg_pkm = km * riders
        total_pkm += leg_pkm
        if len(leg.onboard) >= 2:
            pooled += leg_pkm
        for bid, n in leg.onboard.items():
            bus_g[bid] = bus_g.get(bid, 0.0) + leg_g * n / riders
            bus_km[bid] = bus_km.get(bid, 0.0) + km
            pkm[bid] = pkm.get(bid, 0.0) + km * n
    trips = {
        bid: TripCo2(
            bid,
            passengers.get(bid, 1),
            bus_km[bid],
            pkm[bid],
            bus_g[bid],
            direct_m.get(bid, 0) / 1000 * params.car_g_per_km,
        )
        for bid in bus_g
    }
    return NightCo2(
        trips=trips,
        vehicle_km=vkm,
        empty_km=empty,
        passenger_km=total_pkm,
        pooled_passenger_km=pooled,
        bus_kg=vkm * params.bus_g_per_km / 1000,
        car_kg=sum(t.car_g for t in trips.values()) / 1000,
        reposition_km=repo,
        counterfactual_kg=sum(direct_m.get(bid, 0) for bid in trips)
        / 1000
        * params.counterfactual_g_per_km
        / 1000,
    )
