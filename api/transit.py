"""Routes for the trains and the journey planners: tonight's trains, GTFS-Realtime delays
in, GTFS-Flex and GTFS-Realtime out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import schemas as s
from api.auth import Dispatcher, RiderApp
from api.routes import ERRORS, rt
from dispatch.assembly import flex_service, policy_from_settings
from dispatch.store import Event
from nachtbus.clock import service_day_of, to_datetime
from nachtbus.errors import RejectedInput
from nachtbus.transit import flex, realtime
from nachtbus.transit.timetable import Timetable

if TYPE_CHECKING:
    from api.app import Runtime

router = APIRouter(tags=["trains and GTFS"], responses=ERRORS)
PROTOBUF = "application/x-protobuf"
_PROTO: dict[int | str, dict[str, Any]] = {
    200: {"content": {PROTOBUF: {}}, "description": "A GTFS-Realtime FeedMessage."}
}


def _timetable(r: Runtime) -> Timetable:
    tt = r.service.timetable
    if tt is None:
        raise RejectedInput("no_timetable", "this service has no timetable", field="gtfs_feed")
    return tt


@router.get("/trains", response_model=s.TrainsOut)
def trains(
    request: Request,
    _: RiderApp,
    service_date: Annotated[
        date | None,
        Query(
            alias="serviceDate",
            description="The service night (YYYY-MM-DD, the evening's date): tonight (the "
            "default) or a later night that can be booked ahead (within the rules' "
            "prebook_horizon_s). A later night's trains have no delays yet.",
        ),
    ] = None,
) -> s.TrainsOut:
    """The night's trains at the service area's stations, with their latest delays: what a
    rider can book a connection with (``connection.tripId`` in an inquiry; for a later
    night with ``connection.time`` on that night)."""
    r = rt(request)
    tt = _timetable(r)
    tonight = r.service.clock.service_date()
    day = service_date or tonight
    horizon_s = r.service.dispatcher.policy.prebook_horizon_s
    now = r.service.clock.now()
    last = service_day_of(now + timedelta(seconds=horizon_s), r.service.clock.tz)[0]
    if not tonight <= day <= last:
        raise RejectedInput(
            "invalid_input",
            f"trains are listed for tonight ({tonight}) and the nights that can be booked "
            f"ahead (to {last}), not {day}",
            field="serviceDate",
        )
    views = r.views.of_day(day)
    out = []
    for c in tt.calls(day):
        out.append(
            s.TrainOut(
                trip_id=c.trip_id,
                route=c.route,
                headsign=c.headsign,
                stop_id=c.stop_id,
                station=tt.stations[c.stop_id].name,
                arrival=None if c.first else views.t(c.arrival_s),
                departure=None if c.last else views.t(c.departure_s),
                delay_s=r.service.train_delay(c.trip_id) if day == tonight else 0,
            )
        )
    feed = None if r.train_feed is None else r.views.train_feed(r.train_feed.status)
    return s.TrainsOut(example=tt.example, source=tt.source, trains=out, realtime=feed)


@router.post(
    "/trains/trip-updates",
    response_model=s.TrainDelaysOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}},
            "description": "A GTFS-Realtime FeedMessage with TripUpdates of the trains.",
        }
    },
)
async def train_delays(request: Request, _: Dispatcher) -> s.TrainDelaysOut:
    """Trains' delays in (a GTFS-Realtime TripUpdate feed, the railway's or a relay's): the
    riders off a late train get a new pickup window (the bus waits up to the policy's
    ``train_wait_max_s``), riders to a train are checked; each is told by an event."""
    r = rt(request)
    ours, events = apply_trip_updates(r, await request.body())
    return s.TrainDelaysOut(
        delays=ours, events=[{"type": e.type, **e.data} for e in events if e.journal is None]
    )


def apply_trip_updates(r: Runtime, body: bytes) -> tuple[dict[str, int], list[Event]]:
    """Read a GTFS-Realtime TripUpdate feed and apply the delays of tonight's trains at our
    stations (others are left out); the delays applied and what they did. Pushed to the
    route above, or fetched by :mod:`api.train_feed`."""
    tt = _timetable(r)
    day = r.service.clock.service_date()
    calls = {c.trip_id: c for c in tt.calls(day)}

    def scheduled(trip_id: str) -> int | None:
        c = calls.get(trip_id)
        return None if c is None else int(r.views.t(c.arrival_s).timestamp())

    found = realtime.delays(body, tt.stations, scheduled)
    ours = {k: v for k, v in found.items() if k in calls}
    return ours, r.service.train_delays(ours)


def _night(r: Runtime) -> str:
    return r.service.clock.service_date().strftime("%Y%m%d")


def _realtime(request: Request, build: Callable[..., bytes]) -> Response:
    """A GTFS-Realtime feed of tonight's fleet, as protobuf."""
    r = rt(request)
    clock = r.service.clock
    body = build(
        r.service.snapshot(),
        lambda t: int(to_datetime(clock, t).timestamp()),
        flex.ROUTE_ID,
        _night(r),
        clock.now(),
    )
    return Response(body, media_type=PROTOBUF)


@router.get("/gtfs-rt/vehicle-positions", response_class=Response, responses=_PROTO)
def vehicle_positions(request: Request, _: RiderApp) -> Response:
    """GTFS-Realtime VehiclePositions of the buses (protobuf), for journey planners: one
    trip per bus and night, ``nachtbus-<bus>-<date>``."""
    return _realtime(request, realtime.vehicle_positions)


@router.get("/gtfs-rt/trip-updates", response_class=Response, responses=_PROTO)
def trip_updates(request: Request, _: RiderApp) -> Response:
    """GTFS-Realtime TripUpdates (protobuf): each bus's planned stops in order with their
    expected times (no addresses)."""
    return _realtime(request, realtime.trip_updates)


@router.get(
    "/gtfs/flex.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "GTFS-Flex feed."}},
)
def flex_zip(request: Request) -> Response:
    """The service as GTFS-Flex (public, no key): the service area as a flex location, the
    service hours as pickup / drop-off windows, the booking rule (app, phone), agency,
    route and calendar, valid for a year from tonight."""
    r = rt(request)
    svc = flex_service(
        r.settings, r.world.area, policy_from_settings(r.settings), r.service.clock.service_date()
    )
    headers = {"Content-Disposition": 'attachment; filename="nachtbus-flex.zip"'}
    return Response(flex.zip_bytes(svc), media_type="application/zip", headers=headers)
