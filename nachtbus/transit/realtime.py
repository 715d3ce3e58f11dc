"""GTFS-Realtime in and out, with the protobuf classes of ``gtfs-realtime-bindings`` (the
only module that imports them).

In: the trains' delays from TripUpdates (trip id -> seconds late at our station). Out: the
buses' VehiclePositions and TripUpdates for their planned stops, for journey planners. A
bus's night is one trip, ``<route_id>-<vehicle>-<date>`` (added to the static feed's
schedule: the GTFS-Flex trip only says when and where the service runs). Stops carry times
and their order only, never the riders' addresses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from nachtbus.domain import FleetState
from nachtbus.errors import InvalidInput

FeedMessage = rt.FeedMessage


def delays(
    body: bytes, stop_ids: Iterable[str], scheduled: Callable[[str], int | None]
) -> dict[str, int]:
    """Trip id -> delay (s) from a TripUpdate feed: the StopTimeUpdate at one of
    ``stop_ids`` (its arrival, else departure: ``delay``, or ``time`` against the timetabled
    time that ``scheduled(trip_id)`` gives as POSIX seconds), else the trip's own delay. A
    body that is not a FeedMessage is an error naming the body."""
    msg = rt.FeedMessage()
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidInput(f"not a GTFS-Realtime FeedMessage: {exc}", field="body") from exc
    ours = set(stop_ids)
    out: dict[str, int] = {}
    for entity in msg.entity:
        if not entity.HasField("trip_update"):
            continue
        tu = entity.trip_update
        trip_id = tu.trip.trip_id
        if not trip_id:
            continue
        found: int | None = None
        for stu in tu.stop_time_update:
            if stu.stop_id and stu.stop_id not in ours:
                continue
            for ev in (stu.arrival, stu.departure):
                if ev.HasField("delay"):
                    found = ev.delay
                elif ev.HasField("time") and (at := scheduled(trip_id)) is not None:
                    found = ev.time - at
                if found is not None:
                    break
            if found is not None:
                break
        if found is None and tu.HasField("delay"):
            found = tu.delay
        if found is not None:
            out[trip_id] = int(found)
    return out


def trip_update_feed(updates: dict[str, int], stop_id: str, at: datetime) -> bytes:
    """A TripUpdate feed saying each train's delay at ``stop_id`` (for tests and the
    simulator: how a railway's feed says it)."""
    msg = _header(at)
    for trip_id, delay in updates.items():
        e = msg.entity.add()
        e.id = f"tu-{trip_id}"
        e.trip_update.trip.trip_id = trip_id
        stu = e.trip_update.stop_time_update.add()
        stu.stop_id = stop_id
        stu.arrival.delay = int(delay)
        stu.departure.delay = int(delay)
    return bytes(msg.SerializeToString())


def _header(at: datetime) -> rt.FeedMessage:
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.incrementality = rt.FeedHeader.FULL_DATASET
    msg.header.timestamp = int(at.timestamp())
    return msg


def bus_trip_id(route_id: str, vehicle_id: str, night: str) -> str:
    return f"{route_id}-{vehicle_id}-{night}"


def vehicle_positions(
    state: FleetState, posix: Callable[[int], int], route_id: str, night: str, at: datetime
) -> bytes:
    """VehiclePositions of every bus with a known position (``posix``: night seconds ->
    POSIX seconds)."""
    msg = _header(at)
    for vid in sorted(state.vehicles):
        st = state.states[vid]
        if st.lat is None or st.lon is None:
            continue
        e = msg.entity.add()
        e.id = f"vp-{vid}"
        vp = e.vehicle
        vp.vehicle.id = vid
        vp.vehicle.label = vid
        vp.trip.trip_id = bus_trip_id(route_id, vid, night)
        vp.trip.route_id = route_id
        vp.trip.schedule_relationship = rt.TripDescriptor.NEW
        vp.position.latitude = st.lat
        vp.position.longitude = st.lon
        vp.timestamp = posix(st.at_s)
        if st.arrived_node is not None:
            vp.current_status = rt.VehiclePosition.STOPPED_AT
        else:
            vp.current_status = rt.VehiclePosition.IN_TRANSIT_TO
    return bytes(msg.SerializeToString())


def trip_updates(
    state: FleetState, posix: Callable[[int], int], route_id: str, night: str, at: datetime
) -> bytes:
    """A TripUpdate per bus with planned stops: each stop's expected time, in order."""
    msg = _header(at)
    for vid in sorted(state.plans):
        plan = state.plans[vid]
        if not plan.stops:
            continue
        e = msg.entity.add()
        e.id = f"tu-{vid}"
        tu = e.trip_update
        tu.trip.trip_id = bus_trip_id(route_id, vid, night)
        tu.trip.route_id = route_id
        tu.trip.schedule_relationship = rt.TripDescriptor.NEW
        tu.vehicle.id = vid
        tu.timestamp = posix(state.now_s)
        for i, stop in enumerate(plan.stops):
            stu = tu.stop_time_update.add()
            stu.stop_sequence = i + 1
            stu.arrival.time = posix(stop.eta_s)
    return bytes(msg.SerializeToString())


def decode(body: bytes) -> rt.FeedMessage:
    """A FeedMessage from its bytes (tests and clients)."""
    msg = rt.FeedMessage()
    msg.ParseFromString(body)
    return msg
