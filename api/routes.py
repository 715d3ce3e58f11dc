"""Thin routes: check the caller, turn the body into domain values, call the dispatch service."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api import schemas as s
from api.auth import Dispatcher, Driver, Principal, RiderApp, Role, principal
from api.errors import rejection_error
from api.idempotency import idempotent
from api.views import area_rings, customer_of, network_view, owner_of
from dispatch.service import DispatchService
from dispatch.store import Event
from nachtbus.billing import ledger as billing
from nachtbus.clock import from_datetime
from nachtbus.domain import (
    INPUT_REASONS,
    Booking,
    BookingRequest,
    ConnectionKind,
    FleetState,
    StopType,
    Traveller,
)
from nachtbus.errors import (
    AccessDenied,
    NachtbusError,
    StoreUnavailable,
    UnknownBooking,
    UnknownVehicle,
)

if TYPE_CHECKING:
    from api.app import Runtime

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorBody, "description": text}
    for code, text in [
        (401, "No or unknown API key."),
        (403, "The key's role may not do this, or the booking / bus is not the caller's."),
        (404, "Unknown offer, booking or bus."),
        (409, "The change conflicts with the booking's state or the bus's plan."),
        (422, "A field breaks its rule (the field and the rule are named)."),
        (503, "The fleet changed too often while deciding; retry."),
    ]
}
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Repeat a change safely: the same key answers the same result.",
    ),
]

rider_router = APIRouter(responses=ERRORS)
driver_router = APIRouter(tags=["driver"], responses=ERRORS)
dispatcher_router = APIRouter(tags=["dispatcher"], responses=ERRORS)


def rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.rt
    return runtime


# ---------------------------------------------------------------------- riders
@rider_router.post("/planning/inquiries", response_model=s.PlanningOut, tags=["planning"])
def inquire(inquiry: s.Inquiry, request: Request, who: RiderApp) -> s.PlanningOut:
    """Offers for a trip tonight, or on a later night within the booking horizon (booked
    ahead: that night's buses and rules): pickup window and point, expected and latest
    arrival.

    Asking for something the service does not do (outside the area or the hours, too many
    travellers, a time in the past) is a 422 with the reason as ``code``. When the wished time
    cannot be kept, the options are up to three counter-offers (``alternative``, ``shiftS``:
    later pickups, or earlier ones for an arrive-by trip), with the ``rejection`` of the wish.
    When no bus can take the trip at all the answer is 200 with no options and the
    ``rejection``. With a ``connection`` the trip meets a train of the timetable
    (``GET /v1/trains``): from a train, the pickup is at the station from the train's arrival
    plus the walk (and follows its delays); to a train, the drop-off is at the station the
    policy's buffer before the departure; an unknown train is a 422 naming
    ``connection.tripId``.
    """
    r, conn = rt(request), inquiry.connection
    # a trip on a later night (booked ahead) is dealt with on that night's store and seconds
    if inquiry.departure_time or inquiry.arrival_time:
        field = "departureTime" if inquiry.departure_time else "arrivalTime"
        svc = r.service.service_for(inquiry.departure_time or inquiry.arrival_time, field)
    else:
        svc = r.service.service_for(conn.time if conn else None, "connection.time")
    clock, views = svc.clock, r.views.of_day(svc.night().day)
    request_id = uuid.uuid4().hex[:12]
    train, station = None, None
    if conn is not None:  # the station side of a train trip comes from the timetable
        train, station = svc.find_train(
            ConnectionKind(conn.direction.value),
            trip_id=conn.trip_id,
            stop_id=conn.stop_id,
            time_s=from_datetime(clock, conn.time, "connection.time") if conn.time else None,
        )
    from_train = train is not None and train.kind == ConnectionKind.FROM_TRAIN
    to_train = train is not None and train.kind == ConnectionKind.TO_TRAIN
    req = BookingRequest(
        request_id=request_id,
        origin=station
        if from_train and station
        else r.world.place(_lat(inquiry.from_), _lon(inquiry.from_), "from"),
        destination=station
        if to_train and station
        else r.world.place(_lat(inquiry.to), _lon(inquiry.to), "to"),
        requested_at_s=clock.now_s(),
        pickup_at_s=from_datetime(clock, inquiry.departure_time, "departureTime")
        if inquiry.departure_time
        else None,
        passengers=inquiry.nr_of_travelers,
        wheelchairs=inquiry.wheelchairs,
        prams=inquiry.prams,
        rider_id=f"{who.subject}/{inquiry.customer_id or ''}",
        travellers=tuple(
            Traveller(t.age, t.reduced, t.subscription) for t in inquiry.travelers or ()
        ),
    )
    arrive_by = (
        from_datetime(clock, inquiry.arrival_time, "arrivalTime") if inquiry.arrival_time else None
    )
    if train is not None:
        req, arrive_by = svc.with_train(req, train)
    offers, answer = svc.options(req, arrive_by)
    if answer is None:
        return s.PlanningOut(options=[views.offer(o) for o in offers])
    if answer.reason in INPUT_REASONS:
        raise rejection_error(answer)
    return s.PlanningOut(
        options=[views.offer(o) for o in offers],
        rejection=s.RejectionOut(reason=answer.reason.value, message=answer.message),
    )


def _lat(c: s.Coordinates | None) -> float:
    assert c is not None  # the schema requires it without a connection
    return c.lat


def _lon(c: s.Coordinates | None) -> float:
    assert c is not None
    return c.lon


def _own_booking(
    request: Request, who: Principal, booking_id: str
) -> tuple[DispatchService, FleetState, Booking]:
    """The booking (tonight's or a later night's), the service of its night and that
    night's state."""
    svc, state = rt(request).service.holding_booking(booking_id)
    b = state.bookings.get(booking_id)
    if b is None:
        raise UnknownBooking(f"no booking {booking_id!r}", field="id")
    return svc, state, _owned(who, b)


def _booking_out(
    request: Request, svc: DispatchService, b: Booking, state: FleetState | None = None
) -> s.BookingOut:
    """A booking as its night's service sees it (``state``, default now), its times on that
    night's date."""
    views = rt(request).views.of_day(svc.night().day)
    return views.booking(state or svc.snapshot(), b)


def _owned(who: Principal, b: Booking) -> Booking:
    if who.role == Role.RIDER_APP and owner_of(b.request) != who.subject:
        raise AccessDenied("this booking was made by another app", field="id")
    return b


ServiceDate = Annotated[
    date | None,
    Query(
        alias="serviceDate",
        description="A past service day (YYYY-MM-DD, the evening's date): kept in the store "
        "for keep_nights nights, then read from its archive file. Default: tonight.",
    ),
]


@rider_router.post("/bookings", response_model=s.BookingOut, status_code=201, tags=["booking"])
def book(
    body: s.BookingRequestIn,
    request: Request,
    who: RiderApp,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """Book an offer: the booking is PENDING (the seat is held) until COMMIT or CANCEL.

    An expired or unknown offer, or one that no longer fits the buses (``offer_outdated``),
    is refused; booking the same offer twice answers the same booking.
    """
    r = rt(request)

    def run() -> tuple[int, s.BookingOut]:
        svc, offer = r.service.holding_offer(body.offer_id)  # tonight's, or a later night's
        mine = offer is None or owner_of(offer.request) == who.subject
        if who.role == Role.RIDER_APP and not mine:
            raise AccessDenied("this offer was made to another app", field="offerId")
        b = svc.book(body.offer_id)
        return 201, _booking_out(request, svc, b)

    return idempotent(r.service.store, request, who, idempotency_key, body.model_dump_json(), run)


@rider_router.get("/bookings", response_model=list[s.BookingOut], tags=["booking"])
def list_bookings(
    request: Request,
    who: RiderApp,
    customer_id: Annotated[
        str | None,
        Query(
            alias="customerId",
            max_length=100,
            description="Only this rider's bookings (the app's customerId; the phone desk's "
            "``phone:<reference>``).",
        ),
    ] = None,
    booked_ahead: Annotated[
        bool,
        Query(
            alias="bookedAhead",
            description="Only the bookings of later nights (booked ahead), not tonight's.",
        ),
    ] = False,
) -> list[s.BookingOut]:
    """Tonight's bookings of the calling app (a dispatcher sees all), then those booked
    ahead for later nights, night by night (each with its ``serviceDate``)."""
    r = rt(request)
    out = []
    later = r.service.later_nights()
    for svc in later if booked_ahead else [r.service, *later]:
        state, views = svc.snapshot(), r.views.of_day(svc.night().day)
        out += [
            views.booking(state, b)
            for b in sorted(state.bookings.values(), key=lambda b: b.booking_id)
            if (who.role == Role.DISPATCHER or owner_of(b.request) == who.subject)
            and (customer_id is None or customer_of(b) == customer_id)
        ]
    return out


@rider_router.get("/bookings/{id}", response_model=s.BookingOut, tags=["booking"])
def get_booking(id: str, request: Request, who: RiderApp) -> s.BookingOut:
    """The booking, its bus's live position and the current pickup and arrival forecast
    (tonight's, or one booked ahead for a later night)."""
    svc, state, b = _own_booking(request, who, id)
    return _booking_out(request, svc, b, state)


@rider_router.post("/bookings/{id}/events", response_model=s.BookingOut, tags=["booking"])
def booking_event(
    id: str,
    event: s.BookingEventIn,
    request: Request,
    who: RiderApp,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """COMMIT a PENDING booking (CONFIRMED: the promise is made) or CANCEL it before pickup.

    A COMMIT after the booking expired or was cancelled is a 409 (``booking_state``).
    """
    r = rt(request)

    def run() -> tuple[int, s.BookingOut]:
        svc, _, _ = _own_booking(request, who, id)
        commit = event.operation == s.BookingOperation.COMMIT
        b = svc.commit(id) if commit else svc.cancel(id)
        return 200, _booking_out(request, svc, b)

    return idempotent(r.service.store, request, who, idempotency_key, event.model_dump_json(), run)


@rider_router.get("/bookings/{id}/receipt", response_model=s.ReceiptOut, tags=["booking"])
def receipt(
    id: str, request: Request, who: RiderApp, service_date: ServiceDate = None
) -> s.ReceiptOut:
    """The rider's receipt: trip and times, fare lines, what was charged and refunded (from the
    ledger), the VAT, and the trip's CO2 against a car once it has been driven. Without
    ``serviceDate`` the booking is looked for tonight and in the past nights still in the
    store (the last keep_nights); an older, archived night's booking needs its date."""
    r = rt(request)
    day, b = r.service.find_booking(id, service_date)
    _owned(who, b)
    trip = r.service.co2(r.co2_params, day).trips.get(id)
    return r.views.of_day(day).receipt(billing.receipt(b, r.service.ledger(day)), trip)


# ---------------------------------------------------------------------- drivers
def _own_bus(who: Principal, vehicle_id: str) -> None:
    if who.role == Role.DRIVER and who.subject != vehicle_id:
        raise AccessDenied("a driver sees only their own bus", field="vehicle_id")


@driver_router.get("/vehicles/{vehicle_id}/plan", response_model=s.PlanOut)
def plan(
    vehicle_id: str,
    request: Request,
    who: Driver,
) -> s.PlanOut:
    """The bus's next stops in order: who boards, who alights, wheelchairs, prams."""
    _own_bus(who, vehicle_id)
    state = rt(request).service.snapshot()
    if vehicle_id not in state.vehicles:
        raise UnknownVehicle(f"no bus {vehicle_id!r}", field="vehicle_id")
    return rt(request).views.plan(state, vehicle_id)


@driver_router.post("/vehicles/{vehicle_id}/events", response_model=s.PlanOut)
def vehicle_event(
    vehicle_id: str,
    event: s.VehicleEventIn,
    request: Request,
    who: Driver,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    """A driver's report; the answer is the bus's plan after it.

    POSITION (lat, lon), ARRIVED (bookingId, stop), BOARDED, NO_SHOW, ALIGHTED (bookingId),
    SHIFT_START, SHIFT_END (only with no stop left), BREAKDOWN (``note`` optional: the bus is
    out of service, its riders not yet on board go to other buses or are cancelled and
    refunded, the control room is alerted; see ``/fleet/vehicles/{id}/out-of-service``). A
    stop not in the bus's plan is a 409 (``stop_not_in_plan``) and changes nothing.
    """
    _own_bus(who, vehicle_id)
    r = rt(request)
    if r.demo_drivers is not None:  # a real driver reports: the demo leaves this bus to them
        r.demo_drivers.hand_over(vehicle_id)

    def run() -> tuple[int, s.PlanOut]:
        try:
            return report()
        except NachtbusError as exc:
            if exc.field == "booking_id":  # here the booking is the body's bookingId
                exc.field = "bookingId"
            raise

    def report() -> tuple[int, s.PlanOut]:
        svc, t, bid = r.service, s.VehicleEventType, event.booking_id or ""
        if vehicle_id not in svc.snapshot().vehicles:
            raise UnknownVehicle(f"no bus {vehicle_id!r}", field="vehicle_id")
        if event.type == t.POSITION:
            assert event.lat is not None and event.lon is not None
            svc.position(vehicle_id, event.lat, event.lon)
        elif event.type == t.ARRIVED:
            assert event.stop is not None
            svc.arrived(vehicle_id, bid, StopType(event.stop.value))
        elif event.type in (t.BOARDED, t.ALIGHTED):
            kind = StopType.PICKUP if event.type == t.BOARDED else StopType.DROPOFF
            svc.stop_done(vehicle_id, bid, kind)
        elif event.type == t.NO_SHOW:
            svc.no_show(vehicle_id, bid)
        elif event.type == t.BREAKDOWN:
            note = f"breakdown: {event.note}" if event.note else "breakdown"
            svc.take_out(vehicle_id, note, f"driver of {vehicle_id}")
        else:
            svc.shift(vehicle_id, start=event.type == t.SHIFT_START)
        return 200, r.views.plan(svc.snapshot(), vehicle_id)

    return idempotent(r.service.store, request, who, idempotency_key, event.model_dump_json(), run)


@rider_router.get("/whoami", response_model=s.WhoAmIOut, tags=["keys"])
def whoami(who: Annotated[Principal, Depends(principal)]) -> s.WhoAmIOut:
    """The caller's role, and a driver key's bus (the driver's page asks it first)."""
    return s.WhoAmIOut(
        role=who.role.value, vehicle_id=who.subject if who.role == Role.DRIVER else None
    )


# ---------------------------------------------------------------------- dispatchers
@dispatcher_router.get("/addresses", response_model=s.AddressesOut, tags=["phone desk"])
def addresses(
    request: Request,
    _: Dispatcher,
    q: Annotated[
        str,
        Query(min_length=2, max_length=120, description="Street, optionally a house number."),
    ],
    limit: Annotated[int, Query(ge=1, le=50, description="At most this many streets.")] = 10,
) -> s.AddressesOut:
    """The phone desk's address search, offline on our own map data: streets of the service
    area whose name starts with (or contains) ``q``, each at a point on it, with its district.
    The map data has no house numbers: a number asked for is returned with
    ``houseNumberFound`` false and the street's point."""
    r = rt(request)
    area = r.world.area
    found = [a for a in r.streets().search(q, limit * 4) if area.contains(a.lat, a.lon)][:limit]
    message = None
    if not found:
        message = f"no street like {q!r} in the service area"
    elif found[0].house_number is not None:
        message = (
            f"the map data has no house numbers: the point is on {found[0].street}; "
            "confirm the door with the caller"
        )
    return s.AddressesOut(
        query=q,
        addresses=[
            s.AddressOut(
                street=a.street,
                lat=round(a.lat, 6),
                lon=round(a.lon, 6),
                district=a.district,
                house_number=a.house_number,
                house_number_found=a.house_number_found,
            )
            for a in found
        ],
        message=message,
    )


def _rejections(r: Runtime, count: int = 50) -> list[dict[str, Any]]:
    return [{"at": r.views.t(e.at_s).isoformat(), **e.data} for e in r.service.rejections(count)]


@dispatcher_router.get("/fleet", response_model=s.FleetOut)
def fleet(request: Request, _: Dispatcher) -> s.FleetOut:
    """Every bus (position, plan, path, lateness), tonight's bookings, recent rejections and
    where new bookings are paused."""
    r = rt(request)
    out = r.views.fleet(r.service.snapshot(), _rejections(r))
    return out.model_copy(update={"pauses": r.service.pauses()})


@dispatcher_router.post("/fleet/bookings/{id}/move", response_model=s.BookingOut)
def move_booking(
    id: str, body: s.MoveIn, request: Request, who: Dispatcher, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Put a booking not yet picked up on another bus with its promised window and ride
    limit, every other promise kept; else a 409 ``move_refused`` naming the rule. Recorded as
    ``booking.moved`` with the dispatcher's name."""
    r = rt(request)

    def run() -> tuple[int, s.BookingOut]:
        b = r.service.move_booking(id, body.vehicle_id, who.name)
        return 200, r.views.booking(r.service.snapshot(), b)

    return idempotent(r.service.store, request, who, idempotency_key, body.model_dump_json(), run)


@dispatcher_router.post("/fleet/bookings/{id}/cancel", response_model=s.BookingOut)
def cancel_for_rider(
    id: str, body: s.CancelIn, request: Request, who: Dispatcher, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Cancel a booking on the rider's behalf (before pickup), refunded in full; the event
    ``booking.cancelled`` carries who and why."""
    r = rt(request)

    def run() -> tuple[int, s.BookingOut]:
        svc, _ = r.service.holding_booking(id)  # tonight's, or a later night's
        b = svc.cancel_for_rider(id, who.name, body.reason)
        return 200, _booking_out(request, svc, b)

    return idempotent(r.service.store, request, who, idempotency_key, body.model_dump_json(), run)


@dispatcher_router.post(
    "/fleet/vehicles/{vehicle_id}/out-of-service", response_model=s.OutOfServiceOut
)
def take_out(
    vehicle_id: str, body: s.CancelIn, request: Request, who: Dispatcher
) -> s.OutOfServiceOut:
    """Take a bus out of service (a breakdown): its riders not yet on board are re-planned on
    the other buses with their promises where possible, else cancelled with a full refund and
    given new offers; the riders on board and the bus's last position are in the answer and
    the alert ``vehicle.out_of_service``. A 409 if it is out already."""
    r = rt(request)
    return s.OutOfServiceOut.model_validate(r.service.take_out(vehicle_id, body.reason, who.name))


@dispatcher_router.post("/fleet/vehicles/{vehicle_id}/in-service", status_code=204)
def back_in_service(vehicle_id: str, request: Request, who: Dispatcher) -> Response:
    """The bus takes trips again (``vehicle.in_service``); repeating it changes nothing."""
    r = rt(request)
    if vehicle_id not in r.service.snapshot().vehicles:
        raise UnknownVehicle(f"no bus {vehicle_id!r}", field="vehicle_id")
    r.service.back_in_service(vehicle_id, who.name)
    return Response(status_code=204)


@dispatcher_router.get("/fleet/pauses", response_model=s.PausesOut)
def pauses(request: Request, _: Dispatcher) -> s.PausesOut:
    """Where new bookings are paused, and the districts a pause can name."""
    r = rt(request)
    return s.PausesOut(pauses=r.service.pauses(), districts=sorted(r.service.districts()))


@dispatcher_router.post("/fleet/pauses", response_model=s.PausesOut)
def pause_area(body: s.PauseIn, request: Request, who: Dispatcher) -> s.PausesOut:
    """Pause new bookings from or to a district (``*``: everywhere), e.g. for black ice:
    inquiries there answer no offer with ``rejection.reason`` ``area_paused`` and this
    reason; bookings made stand. Recorded as ``area.paused`` with the dispatcher's name."""
    r = rt(request)
    found = r.service.pause(body.district, body.reason, who.name)
    return s.PausesOut(pauses=found, districts=sorted(r.service.districts()))


@dispatcher_router.delete("/fleet/pauses/{district}", response_model=s.PausesOut)
def resume_area(district: str, request: Request, who: Dispatcher) -> s.PausesOut:
    """Take a pause back (``area.resumed``)."""
    r = rt(request)
    found = r.service.resume(district, who.name)
    return s.PausesOut(pauses=found, districts=sorted(r.service.districts()))


@dispatcher_router.get("/network", response_model=s.NetworkOut)
def network(request: Request, _: Driver) -> Response:
    """The road map of the service area from our own road network (no tile server needed);
    for the dispatcher page and the driver's tablet."""
    r = rt(request)
    cached = getattr(request.app.state, "network_json", None)
    if cached is None:
        view = network_view(r.world.network, area_rings(r.world.area))
        cached = view.model_dump_json(by_alias=True).encode()
        request.app.state.network_json = cached
    return Response(cached, media_type="application/json")


@dispatcher_router.get("/status", response_model=s.StatusOut)
def status(request: Request, _: Dispatcher) -> s.StatusOut:
    """The service itself: the store's memory against its ceiling and the nights it holds,
    tonight's background rounds, the trains' delay feed, and warnings for what needs a look
    (the store over 80 % full, old nights not archived, the last round failed or none for
    10 min, the delay feed failing, a bus not heard of reaching its next stop
    ``overdue_after_s`` after its plan expected it there, or one not heard of for as long
    that has not left for its next stop and so breaks a promise)."""
    r = rt(request)
    feed = r.train_feed.status if r.train_feed is not None else None
    svc = r.service
    overdue = svc.overdue(r.settings.overdue_after_s)
    return r.views.status(svc.clock.now(), svc.store_status(), svc.rounds(), feed, overdue)


@dispatcher_router.get("/ledger", response_model=s.LedgerOut, tags=["billing"])
def ledger(request: Request, _: Dispatcher, service_date: ServiceDate = None) -> s.LedgerOut:
    """A night's billing ledger (tonight's, or ``serviceDate``'s): every charge and refund in
    order, and the totals."""
    r = rt(request)
    day = service_date or r.service.clock.service_date()
    return r.views.of_day(day).ledger(r.service.ledger(day))


@dispatcher_router.get(
    "/ledger/export.csv",
    tags=["billing"],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per entry + TOTAL."}},
)
def ledger_export(request: Request, _: Dispatcher, service_date: ServiceDate = None) -> Response:
    """A night's ledger (tonight's, or ``serviceDate``'s) as CSV for the operator's
    accounting: signed cents (refunds negative), VAT and net per entry, and a TOTAL row."""
    r = rt(request)
    day = service_date or r.service.clock.service_date()
    views = r.views.of_day(day)
    entries = r.service.ledger(day).entries
    text = billing.export_csv(entries, day, lambda at: views.t(at).isoformat())
    headers = {"Content-Disposition": f'attachment; filename="ledger-{day.isoformat()}.csv"'}
    return Response(text, media_type="text/csv", headers=headers)


@dispatcher_router.get("/co2", response_model=s.Co2NightOut, tags=["billing"])
def co2(request: Request, _: Dispatcher, service_date: ServiceDate = None) -> s.Co2NightOut:
    """A night's CO2 account (tonight's, or ``serviceDate``'s): vehicle-km, empty km,
    passenger-km, pooled share, and the bus's emissions against the same trips by private
    car."""
    r = rt(request)
    night, p = r.service.co2(r.co2_params, service_date), r.co2_params
    return s.Co2NightOut(
        **night.to_json(),
        trips=len(night.trips),
        bus_kwh_per_km=p.bus_kwh_per_km,
        grid_g_co2_per_kwh=p.grid_g_per_kwh,
        car_g_co2_per_km=p.car_g_per_km,
    )


@dispatcher_router.post("/fleet/reoptimise", response_model=s.FleetOut)
def reoptimise(request: Request, _: Dispatcher) -> s.FleetOut:
    """Run one re-optimisation now (the service also does so in the background)."""
    r = rt(request)
    r.service.expire_pending()
    r.service.reoptimise()
    return r.views.fleet(r.service.snapshot(), _rejections(r))


#: The stream polls the store on its own two threads, never on the request handlers' pool, and
#: waits between polls without holding any thread: open streams cost no handler.
_STREAM_POLLERS = anyio.CapacityLimiter(2)
STREAM_POLL_S = 0.25


_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
    429: {"model": s.ErrorBody, "description": "Too many streams open for this key."},
}
Limit = Annotated[int | None, Query(ge=1, le=10_000, description="Stop after this many events.")]
WaitS = Annotated[
    float,
    Query(ge=0.1, le=60, description="Send a keep-alive comment after this long without events."),
]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        pattern=r"^\d+-\d+$",
        description="Resume after this event (sent by EventSource on reconnect).",
    ),
]


@dispatcher_router.get("/fleet/events", response_class=StreamingResponse, responses=_SSE)
async def events(
    request: Request,
    who: Dispatcher,
    limit: Limit = None,
    wait_s: WaitS = 15.0,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Server-sent events of every change: bookings, positions, stops, plans, rejections.

    Each event's ``event:`` is its type (``booking.confirmed``, ``vehicle.position``, ...) and
    ``data:`` a JSON object. Without ``limit`` the stream stays open (keep-alive comments). One
    key may hold ``NACHTBUS_MAX_STREAMS_PER_KEY`` streams open (4); one more is a 429. While
    the store is away the stream sends keep-alive comments and goes on when it is back.
    """
    return await _stream(request, who, limit, wait_s, last_event_id, lambda e: True)


@driver_router.get(
    "/vehicles/{vehicle_id}/stream", response_class=StreamingResponse, responses=_SSE
)
async def vehicle_stream(
    vehicle_id: str,
    request: Request,
    who: Driver,
    limit: Limit = None,
    wait_s: WaitS = 15.0,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Server-sent events of one bus, for the driver's tablet: the changes to its bookings,
    stops and position (a booking moved to it or away from it too), and every
    re-optimisation (``plans.reoptimised``: fetch the plan again). Nothing else of any other
    bus. As ``/fleet/events`` otherwise."""
    _own_bus(who, vehicle_id)

    def mine(e: Event) -> bool:
        return (
            vehicle_id in (e.data.get("vehicle_id"), e.data.get("from_vehicle_id"))
            or e.type == "plans.reoptimised"
        )

    return await _stream(request, who, limit, wait_s, last_event_id, mine)


async def _stream(
    request: Request,
    who: Principal,
    limit: int | None,
    wait_s: float,
    last_event_id: str | None,
    keep: Callable[[Event], bool],
) -> StreamingResponse:
    """The event stream from ``last_event_id`` (or now), the events ``keep`` admits."""
    runtime = rt(request)
    service, slots = runtime.service, runtime.streams
    start: str = (
        last_event_id
        if last_event_id is not None
        else await anyio.to_thread.run_sync(service.last_event_id, limiter=_STREAM_POLLERS)
    )
    slots.take(who.key_id)

    async def stream() -> AsyncIterator[str]:
        last, sent, quiet_s = start, 0, 0.0
        try:
            yield "retry: 2000\n\n"
            while limit is None or sent < limit:
                if await request.is_disconnected():
                    return
                try:
                    batch = await anyio.to_thread.run_sync(
                        partial(service.events_after, last, 0, 100), limiter=_STREAM_POLLERS
                    )
                except StoreUnavailable:
                    batch = []
                if not batch:
                    await anyio.sleep(STREAM_POLL_S)
                    quiet_s += STREAM_POLL_S
                    if quiet_s >= wait_s:
                        quiet_s = 0.0
                        yield ": keep-alive\n\n"
                    continue
                quiet_s = 0.0
                for eid, e in batch:
                    last = eid
                    if not keep(e):
                        continue
                    sent += 1
                    data = json.dumps({"at_s": e.at_s, **e.data})
                    yield f"id: {eid}\nevent: {e.type}\ndata: {data}\n\n"
                    if limit is not None and sent >= limit:
                        return
        finally:
            slots.give_back(who.key_id)

    return StreamingResponse(stream(), media_type="text/event-stream")
