"""Domain types to plain JSON-ready dicts and back: how a store keeps them.

Written out by hand (not by reflection) so that a stored record's shape is explicit and a
changed dataclass fails loudly in the round-trip tests instead of silently losing a field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from nachtbus.domain import (
    DELAYED_ON_THE_ROAD,
    Booking,
    BookingRequest,
    BookingStatus,
    Connection,
    ConnectionKind,
    Fare,
    FareLine,
    FleetState,
    Offer,
    Place,
    Plan,
    PlannedStop,
    StopType,
    Traveller,
    Vehicle,
    VehicleState,
)

Json = dict[str, Any]


def dumps(data: Json) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def place_to(p: Place) -> Json:
    return {"lat": p.lat, "lon": p.lon, "node": p.node, "label": p.label}


def place_from(d: Json) -> Place:
    return Place(float(d["lat"]), float(d["lon"]), int(d["node"]), d.get("label"))


def traveller_to(t: Traveller) -> Json:
    return {"age": t.age, "reduced": t.reduced, "subscription": t.subscription}


def traveller_from(d: Json) -> Traveller:
    return Traveller(d["age"], bool(d["reduced"]), bool(d["subscription"]))


def fare_to(f: Fare | None) -> Json | None:
    if f is None:
        return None
    return {
        "currency": f.currency,
        "lines": [[x.traveller, x.kind, x.text, x.cents] for x in f.lines],
        "total_cents": f.total_cents,
        "vat_percent": f.vat_percent,
        "vat_cents": f.vat_cents,
        "tariff": f.tariff,
    }


def fare_from(d: Json | None) -> Fare | None:
    if d is None:
        return None
    return Fare(
        currency=d["currency"],
        lines=tuple(FareLine(int(t), k, x, int(c)) for t, k, x, c in d["lines"]),
        total_cents=int(d["total_cents"]),
        vat_percent=int(d["vat_percent"]),
        vat_cents=int(d["vat_cents"]),
        tariff=d.get("tariff", ""),
    )


def connection_to(c: Connection | None) -> Json | None:
    if c is None:
        return None
    return {
        "kind": c.kind.value,
        "trip_id": c.trip_id,
        "stop_id": c.stop_id,
        "station": c.station,
        "route": c.route,
        "headsign": c.headsign,
        "scheduled_s": c.scheduled_s,
        "delay_s": c.delay_s,
    }


def connection_from(d: Json | None) -> Connection | None:
    if d is None:
        return None
    return Connection(
        ConnectionKind(d["kind"]),
        d["trip_id"],
        d["stop_id"],
        d["station"],
        d["route"],
        d["headsign"],
        int(d["scheduled_s"]),
        int(d["delay_s"]),
    )


def request_to(r: BookingRequest) -> Json:
    return {
        "request_id": r.request_id,
        "origin": place_to(r.origin),
        "destination": place_to(r.destination),
        "requested_at_s": r.requested_at_s,
        "pickup_at_s": r.pickup_at_s,
        "passengers": r.passengers,
        "wheelchairs": r.wheelchairs,
        "rider_id": r.rider_id,
        "prams": r.prams,
        "travellers": [traveller_to(t) for t in r.travellers],
        "connection": connection_to(r.connection),
    }


def request_from(d: Json) -> BookingRequest:
    return BookingRequest(
        request_id=d["request_id"],
        origin=place_from(d["origin"]),
        destination=place_from(d["destination"]),
        requested_at_s=int(d["requested_at_s"]),
        pickup_at_s=d["pickup_at_s"],
        passengers=int(d["passengers"]),
        wheelchairs=int(d["wheelchairs"]),
        rider_id=d["rider_id"],
        prams=int(d.get("prams", 0)),
        travellers=tuple(traveller_from(t) for t in d.get("travellers", ())),
        connection=connection_from(d.get("connection")),
    )


def booking_to(b: Booking) -> Json:
    return {
        "booking_id": b.booking_id,
        "request": request_to(b.request),
        "status": b.status.value,
        "vehicle_id": b.vehicle_id,
        "pickup_window": list(b.pickup_window),
        "max_ride_s": b.max_ride_s,
        "direct_time_s": b.direct_time_s,
        "pickup_eta_s": b.pickup_eta_s,
        "dropoff_eta_s": b.dropoff_eta_s,
        "picked_up_s": b.picked_up_s,
        "dropped_off_s": b.dropped_off_s,
        "updated_s": b.updated_s,
        "fare": fare_to(b.fare),
        "direct_distance_m": b.direct_distance_m,
        "late_notice": None if b.late_notice is None else list(b.late_notice),
    }


def booking_from(d: Json) -> Booking:
    return Booking(
        booking_id=d["booking_id"],
        request=request_from(d["request"]),
        status=BookingStatus(d["status"]),
        vehicle_id=d["vehicle_id"],
        pickup_window=(int(d["pickup_window"][0]), int(d["pickup_window"][1])),
        max_ride_s=int(d["max_ride_s"]),
        direct_time_s=int(d["direct_time_s"]),
        pickup_eta_s=d["pickup_eta_s"],
        dropoff_eta_s=d["dropoff_eta_s"],
        picked_up_s=d["picked_up_s"],
        dropped_off_s=d["dropped_off_s"],
        updated_s=int(d["updated_s"]),
        fare=fare_from(d.get("fare")),
        direct_distance_m=int(d.get("direct_distance_m", 0)),
        late_notice=_late_notice_from(d.get("late_notice")),
    )


def _late_notice_from(d: list[Any] | None) -> tuple[int, int, str, str] | None:
    if d is None:
        return None
    why = str(d[3]) if len(d) > 3 else DELAYED_ON_THE_ROAD  # stored before the reason was
    return int(d[0]), int(d[1]), str(d[2]), why


def stop_to(s: PlannedStop) -> Json:
    return {
        "booking_id": s.booking_id,
        "type": s.type.value,
        "place": place_to(s.place),
        "eta_s": s.eta_s,
        "window": list(s.window),
        "passengers": s.passengers,
        "wheelchairs": s.wheelchairs,
    }


def stop_from(d: Json) -> PlannedStop:
    return PlannedStop(
        booking_id=d["booking_id"],
        type=StopType(d["type"]),
        place=place_from(d["place"]),
        eta_s=int(d["eta_s"]),
        window=(int(d["window"][0]), int(d["window"][1])),
        passengers=int(d["passengers"]),
        wheelchairs=int(d["wheelchairs"]),
    )


def plan_to(p: Plan) -> Json:
    return {
        "vehicle_id": p.vehicle_id,
        "stops": [stop_to(s) for s in p.stops],
        "fixed": p.fixed,
        "end_s": p.end_s,
        "reposition": None if p.reposition is None else place_to(p.reposition),
        "reposition_eta_s": p.reposition_eta_s,
    }


def plan_from(d: Json) -> Plan:
    return Plan(
        vehicle_id=d["vehicle_id"],
        stops=tuple(stop_from(s) for s in d["stops"]),
        fixed=int(d["fixed"]),
        end_s=d["end_s"],
        reposition=None if d.get("reposition") is None else place_from(d["reposition"]),
        reposition_eta_s=d.get("reposition_eta_s"),
    )


def vehicle_to(v: Vehicle) -> Json:
    return {
        "vehicle_id": v.vehicle_id,
        "seats": v.seats,
        "wheelchair_places": v.wheelchair_places,
        "depot": place_to(v.depot),
        "shift_start_s": v.shift_start_s,
        "shift_end_s": v.shift_end_s,
        "planned_end_s": v.planned_end_s,
        "out_of_service": v.out_of_service,
    }


def vehicle_from(d: Json) -> Vehicle:
    return Vehicle(
        vehicle_id=d["vehicle_id"],
        seats=int(d["seats"]),
        wheelchair_places=int(d["wheelchair_places"]),
        depot=place_from(d["depot"]),
        shift_start_s=int(d["shift_start_s"]),
        shift_end_s=int(d["shift_end_s"]),
        planned_end_s=d.get("planned_end_s"),
        out_of_service=d.get("out_of_service"),
    )


def state_to(s: VehicleState) -> Json:
    return {
        "vehicle_id": s.vehicle_id,
        "node": s.node,
        "at_s": s.at_s,
        "lat": s.lat,
        "lon": s.lon,
        "odometer_node": s.odometer_node,
        "arrived_node": s.arrived_node,
        "arrived_s": s.arrived_s,
        "position_s": s.position_s,
    }


def state_from(d: Json) -> VehicleState:
    return VehicleState(
        d["vehicle_id"],
        int(d["node"]),
        int(d["at_s"]),
        d["lat"],
        d["lon"],
        d.get("odometer_node"),
        d.get("arrived_node"),
        d.get("arrived_s"),
        d.get("position_s"),
    )


def offer_to(o: Offer) -> Json:
    return {
        "offer_id": o.offer_id,
        "request": request_to(o.request),
        "vehicle_id": o.vehicle_id,
        "pickup_window": list(o.pickup_window),
        "pickup_eta_s": o.pickup_eta_s,
        "dropoff_eta_s": o.dropoff_eta_s,
        "direct_time_s": o.direct_time_s,
        "max_ride_s": o.max_ride_s,
        "fleet_version": o.fleet_version,
        "plan": plan_to(o.plan),
        "expires_s": o.expires_s,
        "fare": fare_to(o.fare),
        "direct_distance_m": o.direct_distance_m,
        "shift_s": o.shift_s,
        "moves": [plan_to(m) for m in o.moves],
    }


def offer_from(d: Json) -> Offer:
    return Offer(
        offer_id=d["offer_id"],
        request=request_from(d["request"]),
        vehicle_id=d["vehicle_id"],
        pickup_window=(int(d["pickup_window"][0]), int(d["pickup_window"][1])),
        pickup_eta_s=int(d["pickup_eta_s"]),
        dropoff_eta_s=int(d["dropoff_eta_s"]),
        direct_time_s=int(d["direct_time_s"]),
        max_ride_s=int(d["max_ride_s"]),
        fleet_version=int(d["fleet_version"]),
        plan=plan_from(d["plan"]),
        expires_s=int(d["expires_s"]),
        fare=fare_from(d.get("fare")),
        direct_distance_m=int(d.get("direct_distance_m", 0)),
        shift_s=int(d.get("shift_s", 0)),
        moves=tuple(plan_from(m) for m in d.get("moves", ())),
    )


#: The fleet state's record kinds: name -> (encode, decode), one JSON record per id.
RECORDS: dict[str, tuple[Callable[[Any], Json], Callable[[Json], Any]]] = {
    "vehicles": (vehicle_to, vehicle_from),
    "states": (state_to, state_from),
    "plans": (plan_to, plan_from),
    "bookings": (booking_to, booking_from),
}


def fleet_from(version: int, now_s: int, records: dict[str, dict[str, Json]]) -> FleetState:
    """A fleet state from its records (each kind: id -> JSON record), ids in sorted order."""
    parts = {
        name: MappingProxyType(
            {key: decode(value) for key, value in sorted(records.get(name, {}).items())}
        )
        for name, (_, decode) in RECORDS.items()
    }
    return FleetState(version=version, now_s=now_s, **parts)
