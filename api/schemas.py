"""Request and response bodies of the HTTP API, apart from the domain types.

Names and states follow TOMP-API 1.6 where they fit (planning inquiry -> offers, booking ->
PENDING -> COMMIT / CANCEL events, camelCase fields, ISO 8601 date-times with offset).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,  # NaN / Infinity: "Input should be a finite number"
    )


class ErrorBody(Schema):
    """Every 4xx/5xx answer: a machine-readable code, the field at fault and the rule."""

    code: str = Field(description="Machine-readable reason, e.g. outside_service_area.")
    message: str = Field(description="The rule that was broken, for people.")
    field: str | None = Field(default=None, description="The request field at fault, if any.")
    errors: list[dict[str, Any]] = Field(
        default=[], description="For 422 validation errors: each field and its rule."
    )


class Coordinates(Schema):
    # numbers as JSON gives them (an integer is a number); "51.57" in quotes is refused
    lat: float = Field(ge=-90, le=90, strict=True, description="Latitude, WGS84 degrees.")
    lon: float = Field(ge=-180, le=180, strict=True, description="Longitude, WGS84 degrees.")
    address: str | None = Field(
        default=None, max_length=200, description="Address text as the rider typed it (kept)."
    )


class TravelerIn(Schema):
    """One traveller as the fare sees them (TOMP: traveler with age and cards)."""

    age: int | None = Field(
        default=None,
        ge=0,
        le=120,
        strict=True,
        description="Age in years; children may ride free or reduced.",
    )
    reduced: bool = Field(
        default=False, strict=True, description="Holds a reduced-fare entitlement."
    )
    subscription: bool = Field(
        default=False,
        strict=True,
        description="Holds a valid public-transport subscription: pays only the surcharges.",
    )


class ConnectionDirection(StrEnum):
    FROM_TRAIN = "from_train"
    TO_TRAIN = "to_train"


class ConnectionIn(Schema):
    """The train the trip meets: by its GTFS trip id, or by the station and the train's time
    (the train nearest to it, within 10 min). The station is the pickup (``from_train``) or
    the drop-off (``to_train``)."""

    direction: ConnectionDirection = Field(
        description="from_train: off the train, then the bus; to_train: the bus to the train."
    )
    trip_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="GTFS trip_id of the train."
    )
    stop_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="GTFS stop_id of the station (needed without tripId).",
    )
    time: datetime | None = Field(
        default=None,
        description="The train's timetabled arrival (from_train) or departure (to_train) at "
        "the station, when no tripId is given.",
    )

    @model_validator(mode="after")
    def _check(self) -> ConnectionIn:
        if self.trip_id is None and (self.stop_id is None or self.time is None):
            raise ValueError("connection: give tripId, or stopId and time")
        return self


class Inquiry(Schema):
    """A planning inquiry: from, to, when, who (and the train it meets, if any)."""

    from_: Coordinates | None = Field(
        default=None,
        alias="from",
        description="Where the riders want to be picked up (not needed from a train: the station).",
    )
    to: Coordinates | None = Field(
        default=None, description="Where they want to go (not needed to a train: the station)."
    )
    connection: ConnectionIn | None = Field(
        default=None,
        description="The train this trip meets: from a train, the pickup window opens at its "
        "arrival plus the walk from the platform and follows its delays; to a train, the bus "
        "arrives the policy's buffer before the departure. No departureTime or arrivalTime "
        "then: the train sets the time.",
    )
    departure_time: datetime | None = Field(
        default=None,
        description="Earliest pickup (ISO 8601): tonight, or a later night within the rules' "
        "booking horizon (prebook_horizon_s, 24 h by default). Omit both times to leave now.",
    )
    arrival_time: datetime | None = Field(
        default=None,
        description="Latest arrival (ISO 8601), tonight or a later night as departureTime; "
        "the pickup is planned to arrive by then.",
    )
    # counts are whole JSON numbers: strict, so true, 2.0 or "2" are refused, not read as 1 or 2
    nr_of_travelers: int = Field(
        default=1, ge=1, le=50, strict=True, description="Riders in this booking."
    )
    wheelchairs: int = Field(
        default=0, ge=0, le=10, strict=True, description="How many of them travel in a wheelchair."
    )
    prams: int = Field(
        default=0,
        ge=0,
        le=10,
        strict=True,
        description="Prams or large luggage; each takes one seat's place.",
    )
    customer_id: str | None = Field(
        default=None,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The app's own id of the rider (kept with the booking).",
    )
    travelers: list[TravelerIn] | None = Field(
        default=None,
        max_length=50,
        description="Who travels, for the fare: one entry per traveller (nrOfTravelers of them). "
        "Omitted: every traveller pays the full adult fare.",
    )

    @model_validator(mode="after")
    def _check(self) -> Inquiry:
        if self.travelers is not None and len(self.travelers) != self.nr_of_travelers:
            raise ValueError("travelers: needs one entry per traveller (nrOfTravelers)")
        if self.departure_time is not None and self.arrival_time is not None:
            raise ValueError("arrivalTime: give either departureTime or arrivalTime, not both")
        if self.wheelchairs > self.nr_of_travelers:
            raise ValueError("wheelchairs: must not exceed nrOfTravelers")
        c = self.connection
        if self.from_ is None and (c is None or c.direction != ConnectionDirection.FROM_TRAIN):
            raise ValueError("from: required (except from a train: the station)")
        if self.to is None and (c is None or c.direction != ConnectionDirection.TO_TRAIN):
            raise ValueError("to: required (except to a train: the station)")
        if c is not None and (self.departure_time or self.arrival_time):
            raise ValueError("connection: the train sets the time; no departureTime/arrivalTime")
        return self


class StopPoint(Schema):
    lat: float = Field(description="The pickup / drop-off point on the road (door to door).")
    lon: float
    street: str | None = Field(description="Street of the point, when the map names it.")


class PickupInfo(StopPoint):
    window_start: datetime = Field(description="The bus comes no earlier than this.")
    window_end: datetime = Field(description="... and no later than this (promised).")
    expected_time: datetime | None = Field(description="Current forecast of the pickup.")


class DropoffInfo(StopPoint):
    expected_time: datetime | None = Field(description="Current forecast of the arrival.")
    latest_time: datetime = Field(description="Promised latest arrival.")


class FareLineOut(Schema):
    traveler: int = Field(description="Index of the traveller in the inquiry (0-based).")
    kind: str = Field(description="base, reduction, group, surcharge, rounding or free.")
    description: str
    amount_cents: int = Field(description="Signed amount of this line in cents.")


class FareOut(Schema):
    """TOMP fare, in integer cents: gross total with the VAT it contains."""

    currency: str = Field(description="ISO 4217, e.g. EUR.")
    total_cents: int = Field(ge=0, description="What the riders pay, VAT included.")
    vat_percent: int
    vat_cents: int = Field(ge=0, description="The VAT contained in the total.")
    net_cents: int = Field(ge=0)
    tariff: str = Field(description="Name of the tariff that priced it.")
    lines: list[FareLineOut]


class ConnectionOut(Schema):
    """The train a trip meets, with its latest known delay."""

    direction: str = Field(description="from_train or to_train.")
    trip_id: str
    route: str = Field(description="The line, e.g. RE 1.")
    headsign: str
    stop_id: str
    station: str
    scheduled_time: datetime = Field(
        description="Timetabled arrival (from_train) or departure (to_train)."
    )
    expected_time: datetime = Field(description="With the latest delay heard.")
    delay_s: int = Field(description="Seconds late (GTFS-Realtime); negative: early.")
    at_risk: bool = Field(
        default=False,
        description="to_train: the bus is now expected after the buffer before the departure.",
    )


class LateNoticeOut(Schema):
    """The rider was told the promise cannot be kept: which stop, the new expected time."""

    stop: str = Field(description="pickup or dropoff.")
    told_at: datetime
    expected_time: datetime = Field(description="The expected time when the rider was told.")
    reason: str = Field(
        description="Why, for people: the bus is delayed on the road, or has not left yet."
    )


class OfferOut(Schema):
    offer_id: str = Field(description="Book it with POST /v1/bookings before validUntil.")
    valid_until: datetime
    pickup: PickupInfo
    dropoff: DropoffInfo
    nr_of_travelers: int
    wheelchairs: int
    prams: int
    direct_travel_time_s: int = Field(description="Time of the trip alone by road, seconds.")
    max_ride_time_s: int = Field(description="Longest the ride may take (pooling detours).")
    fare: FareOut | None = Field(
        default=None, description="The price and its breakdown (null if no tariff is loaded)."
    )
    alternative: bool = Field(
        default=False,
        description="A counter-offer: the wished time could not be kept, this window can.",
    )
    shift_s: int = Field(
        default=0,
        description="Seconds this pickup window lies after the wished one (negative: before "
        "it, for a trip that must arrive by a time); 0 at the wish.",
    )
    connection: ConnectionOut | None = Field(
        default=None, description="The train this offer meets (and reaches, to a train)."
    )


class RejectionOut(Schema):
    reason: str = Field(description="Machine-readable reason, e.g. fleet_full.")
    message: str


class PlanningOut(Schema):
    """Offers for an inquiry: the offer at the wished time, or, when that cannot be kept, up to
    three counter-offers (later pickup windows; earlier ones for an arrive-by trip; each
    bookable on its own, with its window, arrival and fare) and in ``rejection`` why the wish
    could not be kept. No offer at all (every bus full or too far, also at other times) is an
    answer, not an error: ``options`` is empty and ``rejection`` says why."""

    options: list[OfferOut]
    rejection: RejectionOut | None = None


class BookingRequestIn(Schema):
    offer_id: str = Field(min_length=1, max_length=64, description="An offer from an inquiry.")


class BookingOperation(StrEnum):
    COMMIT = "COMMIT"
    CANCEL = "CANCEL"


class BookingEventIn(Schema):
    operation: BookingOperation = Field(
        description="COMMIT a PENDING booking (the promise is made) or CANCEL it before pickup."
    )


class VehiclePosition(Schema):
    vehicle_id: str
    lat: float | None
    lon: float | None
    at: datetime


class BookingOut(Schema):
    id: str
    state: str = Field(
        description="PENDING, CONFIRMED, STARTED (on board), FINISHED, CANCELLED, NO_SHOW, EXPIRED."
    )
    service_date: str = Field(
        description="The service night the booking belongs to (YYYY-MM-DD, the evening's "
        "date): tonight's, or a later one it was booked ahead for."
    )
    pickup: PickupInfo
    dropoff: DropoffInfo
    nr_of_travelers: int
    wheelchairs: int
    prams: int
    customer_id: str | None
    vehicle: VehiclePosition | None = Field(
        description="The bus assigned and where it last reported (live trip progress)."
    )
    picked_up_at: datetime | None
    dropped_off_at: datetime | None
    fare: FareOut | None = Field(default=None, description="The fare agreed with the offer.")
    connection: ConnectionOut | None = Field(
        default=None,
        description="The train this trip meets, its delay, and whether the connection is at "
        "risk; a late train moves the pickup window above.",
    )
    late_notice: LateNoticeOut | None = Field(
        default=None,
        description="Set when the bus is delayed so that the promised window (or latest "
        "arrival) cannot be kept: the new expected time, told at once.",
    )


class StopOut(Schema):
    booking_id: str
    type: str = Field(description="pickup (riders board) or dropoff (riders alight).")
    lat: float
    lon: float
    street: str | None
    expected_time: datetime
    window_start: datetime
    window_end: datetime
    nr_of_travelers: int
    wheelchairs: int = Field(description="Wheelchair users: ramp needed.")
    prams: int
    no_show_from: datetime | None = Field(
        default=None,
        description="A pickup the bus has ARRIVED at: from when a NO_SHOW may be reported "
        "(the later of arrival and window start, plus the policy's no_show_wait_s).",
    )


class DirectionOut(Schema):
    """One street of the way to the next stop, in driving order."""

    street: str | None = Field(description="Street name (null where the map has none).")
    distance_m: int


class RepositionOut(Schema):
    """An idle bus's drive towards where the next riders are expected (no one waits there)."""

    lat: float
    lon: float
    street: str | None = None
    expected_time: datetime | None = Field(default=None, description="When the bus is there.")


class PlanOut(Schema):
    vehicle_id: str
    now: datetime | None = Field(default=None, description="Service time of this answer.")
    position: VehiclePosition
    arrived_at_next: bool = Field(
        default=False, description="The driver reported ARRIVED at the first stop's point."
    )
    stops: list[StopOut]
    on_board: list[str] = Field(description="Bookings whose riders are on the bus.")
    shift_end: datetime
    reposition: RepositionOut | None = Field(
        default=None,
        description="With no stops: drive here and wait, the next riders are expected nearby "
        "(any booked stop replaces it).",
    )
    path: list[tuple[float, float]] = Field(
        default=[],
        description="The way from the bus to its next stop (or reposition) as [lat, lon] "
        "points along our road network.",
    )
    directions: list[DirectionOut] = Field(
        default=[], description="The same way as a list of streets with their lengths."
    )


class WhoAmIOut(Schema):
    role: str = Field(description="rider_app, driver or dispatcher.")
    vehicle_id: str | None = Field(description="A driver key's bus.")


class AddressOut(Schema):
    street: str
    lat: float
    lon: float
    district: str | None = Field(description="The district (Ortsteil) the point lies in.")
    house_number: str | None = Field(description="The house number asked for, if any.")
    house_number_found: bool = Field(
        description="Whether the map data placed that number (false: the point is the "
        "street's; the Soest road data has no house numbers)."
    )


class AddressesOut(Schema):
    query: str
    addresses: list[AddressOut] = Field(description="Streets in the service area, best first.")
    message: str | None = Field(default=None, description="Why nothing was found, for people.")


class VehicleEventType(StrEnum):
    POSITION = "POSITION"
    ARRIVED = "ARRIVED"
    BOARDED = "BOARDED"
    NO_SHOW = "NO_SHOW"
    ALIGHTED = "ALIGHTED"
    SHIFT_START = "SHIFT_START"
    SHIFT_END = "SHIFT_END"
    BREAKDOWN = "BREAKDOWN"


class StopKindIn(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


_NEEDS_BOOKING = {"ARRIVED", "BOARDED", "NO_SHOW", "ALIGHTED"}


class VehicleEventIn(Schema):
    """What a driver's tablet reports."""

    type: VehicleEventType
    lat: float | None = Field(
        default=None, ge=-90, le=90, strict=True, description="POSITION: latitude."
    )
    lon: float | None = Field(
        default=None, ge=-180, le=180, strict=True, description="POSITION: longitude."
    )
    booking_id: str | None = Field(
        default=None, max_length=80, description="ARRIVED, BOARDED, NO_SHOW, ALIGHTED: whose stop."
    )
    stop: StopKindIn | None = Field(
        default=None, description="ARRIVED: at the pickup or the drop-off of bookingId."
    )
    note: str | None = Field(
        default=None, max_length=300, description="BREAKDOWN: what happened, in words."
    )

    @model_validator(mode="after")
    def _check(self) -> VehicleEventIn:
        if self.type == VehicleEventType.POSITION and (self.lat is None or self.lon is None):
            raise ValueError("lat: POSITION needs lat and lon")
        if self.type.value in _NEEDS_BOOKING and not self.booking_id:
            raise ValueError(f"bookingId: {self.type.value} needs the booking")
        if self.type == VehicleEventType.ARRIVED and self.stop is None:
            raise ValueError("stop: ARRIVED needs stop (pickup or dropoff)")
        return self


class FleetBookingOut(Schema):
    id: str
    state: str
    vehicle_id: str | None
    customer_id: str | None
    pickup_window_start: datetime
    pickup_window_end: datetime
    pickup_expected: datetime | None
    dropoff_expected: datetime | None
    latest_arrival: datetime
    late_s: int = Field(description="Forecast lateness beyond the promise, seconds (0 = on time).")
    from_: StopPoint = Field(alias="from")
    to: StopPoint
    connection: ConnectionOut | None = Field(default=None, description="The train it meets.")
    late_notice: LateNoticeOut | None = Field(default=None, description="A delay told.")


class FleetVehicleOut(Schema):
    vehicle_id: str
    seats: int
    wheelchair_places: int
    position: VehiclePosition
    stops: list[StopOut]
    on_board: list[str]
    route: list[tuple[float, float]] = Field(
        description="Planned path as [lat, lon] points from the bus through its stops."
    )
    late_s: int = Field(description="Worst forecast lateness over its stops, seconds.")
    shift_end: datetime
    out_of_service: str | None = Field(
        default=None, description="Why the bus is out of service (null: in service)."
    )
    waiting_for_train: ConnectionOut | None = Field(
        default=None,
        description="The train the bus's next stop waits for: its next pickup is a rider off "
        "this train, and the train has not arrived yet.",
    )


class FleetOut(Schema):
    version: int
    now: datetime
    vehicles: list[FleetVehicleOut]
    bookings: list[FleetBookingOut]
    rejections: list[dict[str, Any]] = Field(
        description="Recent rejected requests: time, reason and message, newest first."
    )
    pauses: dict[str, dict[str, Any]] = Field(
        default={}, description="Where new bookings are paused, with the reason."
    )


class NetworkOut(Schema):
    bbox: tuple[float, float, float, float] = Field(
        description="min lon, min lat, max lon, max lat of the road network"
    )
    roads: list[list[float]] = Field(
        description="Road polylines, each flat [lat0, lon0, lat1, lon1, ...] (5 decimals)."
    )
    area: list[list[float]] = Field(description="Service-area rings, flat like roads.")


class LedgerEntryOut(Schema):
    entry_id: str
    booking_id: str
    kind: str = Field(description="charge (at COMMIT) or refund (cancelled before the cutoff).")
    at: datetime
    amount_cents: int = Field(ge=0, description="Always positive; the kind gives the sign.")
    vat_cents: int = Field(ge=0)
    currency: str


class TripCo2Out(Schema):
    bus_km: float = Field(description="Km the bus drove with these riders on board.")
    passenger_km: float
    bus_g_co2: float = Field(description="The riders' share of the bus's emissions.")
    car_g_co2: float = Field(description="The same trip by private car (direct distance).")
    saved_g_co2: float


class ReceiptOut(Schema):
    """A rider's receipt: the booking, the trip, the fare lines, what was paid, the VAT."""

    booking_id: str
    state: str
    service_date: str
    from_: StopPoint = Field(alias="from")
    to: StopPoint
    picked_up_at: datetime | None
    dropped_off_at: datetime | None
    nr_of_travelers: int
    fare: FareOut | None
    payments: list[LedgerEntryOut] = Field(description="Charge and refund, from the ledger.")
    paid_cents: int = Field(description="Charges minus refunds.")
    vat_cents: int = Field(description="VAT contained in paid_cents.")
    co2: TripCo2Out | None = Field(description="Once the trip has been driven.")


class LedgerTotalsOut(Schema):
    charges_cents: int
    refunds_cents: int
    balance_cents: int = Field(description="Charges minus refunds: the night's revenue.")
    vat_cents: int
    net_cents: int
    entries: int


class LedgerOut(Schema):
    service_date: str
    totals: LedgerTotalsOut
    entries: list[LedgerEntryOut]


class Co2NightOut(Schema):
    """The night's CO2 account (see nachtbus/billing/co2.py for the rules and factors)."""

    vehicle_km: float
    empty_km: float
    passenger_km: float
    pooled_share: float = Field(description="Share of passenger-km ridden with other bookings.")
    bus_kg_co2: float
    car_kg_co2: float
    saved_kg_co2: float = Field(description="Against one private car per booking.")
    reposition_km: float = Field(description="Empty km driven to where riders were expected.")
    counterfactual_kg_co2: float = Field(
        description="What the riders would otherwise have emitted (car, taxi with its empty "
        "drives, walk or cycle, staying home; shares in the settings)."
    )
    saved_counterfactual_kg_co2: float = Field(
        description="counterfactual_kg_co2 minus the bus's emissions."
    )
    trips: int
    bus_kwh_per_km: float
    grid_g_co2_per_kwh: float
    car_g_co2_per_km: float


class TrainOut(Schema):
    """A train at a station of the service area tonight (from the GTFS timetable)."""

    trip_id: str
    route: str
    headsign: str
    stop_id: str
    station: str
    arrival: datetime | None = Field(description="Timetabled arrival; null if it starts here.")
    departure: datetime | None = Field(description="Timetabled departure; null if it ends here.")
    delay_s: int = Field(description="Latest delay heard (GTFS-Realtime), seconds.")


class TrainFeedOut(Schema):
    """The trains' delays feed the service polls (NACHTBUS_GTFS_RT_TRIP_UPDATES_URL)."""

    url: str
    last_ok_at: datetime | None = Field(description="The last fetch that was read and applied.")
    last_error: str | None = Field(description="What went wrong the last time one failed.")
    last_error_at: datetime | None
    trains_late: int = Field(description="Tonight's trains late at our stations in the feed.")


class RoundsOut(Schema):
    """Tonight's background rounds (expiry, re-optimisation, train feed, archiving)."""

    rounds: int = Field(description="Rounds gone through tonight.")
    last_ok_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None


class StoreStatusOut(Schema):
    used_mb: float = Field(description="Memory the store uses, MB (2^20 bytes, as Redis counts).")
    max_mb: float | None = Field(description="Its ceiling, MB (None: no ceiling set).")
    nights_stored: int = Field(description="Service days in the store (tonight included).")
    archive_error: str | None = Field(description="Why old nights could not be archived.")


class StatusOut(Schema):
    """What the control room should know about the service itself, with warnings."""

    now: datetime
    warnings: list[str] = Field(description="What needs a look; empty when all is well.")
    store: StoreStatusOut
    rounds: RoundsOut
    train_feed: TrainFeedOut | None


class TrainsOut(Schema):
    example: bool = Field(description="The timetable is the shipped EXAMPLE (invented trains).")
    source: str = Field(description="Where the timetable was read from.")
    trains: list[TrainOut]
    realtime: TrainFeedOut | None = Field(
        default=None,
        description="The polled delays feed, if one is set (else delays come only by POST "
        "/v1/trains/trip-updates).",
    )


class TrainDelaysOut(Schema):
    delays: dict[str, int] = Field(description="Trip id -> seconds late, as read from the feed.")
    events: list[dict[str, Any]] = Field(
        description="What the delays did: booking.connection_delayed (new pickup window), "
        "booking.connection_at_risk, booking.connection_missed (cancelled and refunded)."
    )


class MoveIn(Schema):
    vehicle_id: str = Field(min_length=1, max_length=40, description="The bus to put it on.")


class CancelIn(Schema):
    reason: str = Field(
        min_length=1,
        max_length=300,
        description="Why, for the morning report (the rider asked, ...).",
    )


class PauseIn(Schema):
    district: str = Field(
        min_length=1, max_length=120, description="A district (Ortsteil) name, or * for all."
    )
    reason: str = Field(
        min_length=3, max_length=300, description="What riders are told, e.g. black ice."
    )


class PausesOut(Schema):
    pauses: dict[str, dict[str, Any]] = Field(
        description="District -> reason, by, sinceS: where new bookings are paused."
    )
    districts: list[str] = Field(description="The districts a pause can name.")


class OutOfServiceOut(Schema):
    """What taking a bus out of service did."""

    vehicle_id: str
    reason: str
    by: str
    lat: float | None = Field(description="The bus's last reported position.")
    lon: float | None
    on_board: list[str] = Field(description="Bookings whose riders are on the broken bus.")
    replanned: list[str] = Field(description="Bookings put on other buses, promises kept.")
    cancelled: list[str] = Field(
        description="Bookings no bus could take: cancelled, refunded, given new offers."
    )
