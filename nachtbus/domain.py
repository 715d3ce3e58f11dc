"""Domain types of the night bus: frozen dataclasses and enums, no behaviour beyond checks.

Time is integer seconds of the service day (which runs across midnight, see
:mod:`nachtbus.units`); places carry the road node they were snapped to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from nachtbus.errors import InvalidInput


class BookingStatus(StrEnum):
    """Booking states, named as in TOMP-API 1.6."""

    PENDING = "PENDING"  # booked from an offer, capacity held, not yet committed
    CONFIRMED = "CONFIRMED"  # promised: pickup window and latest arrival are hard
    STARTED = "STARTED"  # rider on board
    FINISHED = "FINISHED"  # dropped off
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"  # rider did not come; the bus went on
    EXPIRED = "EXPIRED"

    @property
    def open(self) -> bool:
        """Still to be served by a bus (its stops are in a plan)."""
        return self in (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.STARTED)


class StopType(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


class RejectionReason(StrEnum):
    """Machine-readable reasons why a request gets no offer."""

    OUTSIDE_SERVICE_AREA = "outside_service_area"
    OUTSIDE_SERVICE_HOURS = "outside_service_hours"
    PICKUP_IN_PAST = "pickup_in_past"
    BEYOND_BOOKING_HORIZON = "beyond_booking_horizon"
    TOO_MANY_TRAVELLERS = "too_many_travellers"
    NO_WHEELCHAIR_VEHICLE = "no_wheelchair_vehicle"
    TRIP_TOO_SHORT = "trip_too_short"
    NO_VEHICLE_IN_TIME = "no_vehicle_in_time"
    FLEET_FULL = "fleet_full"
    NO_WHEELCHAIR_PLACE = "no_wheelchair_place"
    DETOUR_TOO_LONG = "detour_too_long"
    SHIFT_ENDS = "shift_ends"
    NO_VEHICLE_ON_SHIFT = "no_vehicle_on_shift"
    OFFER_OUTDATED = "offer_outdated"
    AREA_PAUSED = "area_paused"  # a dispatcher paused new bookings there (e.g. black ice)


#: Rejections caused by what was asked (not by how full the buses are): bad input for the API
#: (422), and requests "the rules do not allow" in the planners' KPIs.
INPUT_REASONS = frozenset(
    {
        RejectionReason.OUTSIDE_SERVICE_AREA,
        RejectionReason.OUTSIDE_SERVICE_HOURS,
        RejectionReason.PICKUP_IN_PAST,
        RejectionReason.BEYOND_BOOKING_HORIZON,
        RejectionReason.TOO_MANY_TRAVELLERS,
        RejectionReason.TRIP_TOO_SHORT,
        RejectionReason.NO_WHEELCHAIR_VEHICLE,
    }
)


def latest_dropoff_s(pickup_window: tuple[int, int], max_ride_s: int) -> int:
    """The promised latest arrival: the latest pickup plus the ride limit.

    The dispatcher enforces it as a hard drop-off window, so the time told to the rider is the
    time the plans keep.
    """
    return pickup_window[1] + max_ride_s


# why a rider was told their promise cannot be kept (Booking.late_notice)
DELAYED_ON_THE_ROAD = "the bus is delayed on the road"
NOT_LEFT = "the bus has not left yet"


@dataclass(frozen=True)
class Place:
    """A point on the road network: where the rider stands and the node it routes from."""

    lat: float
    lon: float
    node: int
    label: str | None = None


@dataclass(frozen=True)
class Traveller:
    """Who travels, as far as the fare is concerned (age, reduced-fare and subscription)."""

    age: int | None = None
    reduced: bool = False
    subscription: bool = False

    def __post_init__(self) -> None:
        if self.age is not None and not 0 <= self.age <= 120:
            raise InvalidInput("must be between 0 and 120", field="age")


@dataclass(frozen=True)
class FareLine:
    """One line of a fare: whose (traveller index), what kind, signed amount in cents."""

    traveller: int
    kind: str  # base | reduction | group | surcharge | rounding | free
    text: str
    cents: int


@dataclass(frozen=True)
class Fare:
    """A priced trip: gross total in integer cents, its VAT share and the lines behind it."""

    currency: str
    lines: tuple[FareLine, ...]
    total_cents: int
    vat_percent: int
    vat_cents: int
    tariff: str = ""

    def __post_init__(self) -> None:
        if self.total_cents < 0 or not 0 <= self.vat_cents <= self.total_cents:
            raise InvalidInput("a fare is never negative", field="total_cents")
        if sum(line.cents for line in self.lines) != self.total_cents:
            raise InvalidInput("fare lines do not add up to the total", field="lines")

    @property
    def net_cents(self) -> int:
        return self.total_cents - self.vat_cents


class ConnectionKind(StrEnum):
    """Which way a rider meets a train."""

    FROM_TRAIN = "from_train"  # off the train, then the bus (pickup at the station)
    TO_TRAIN = "to_train"  # the bus, then the train (drop-off at the station)


@dataclass(frozen=True)
class Connection:
    """The train a booking connects with, from the timetable (and its delay, from
    GTFS-Realtime): arrival (``from_train``) or departure (``to_train``) at the station."""

    kind: ConnectionKind
    trip_id: str
    stop_id: str
    station: str  # the station's name
    route: str  # the line, e.g. "RE 1"
    headsign: str
    scheduled_s: int  # the train's timetabled arrival / departure, night seconds
    delay_s: int = 0  # the latest delay heard (GTFS-Realtime); negative: early

    @property
    def expected_s(self) -> int:
        """When the train is now expected to arrive / leave."""
        return self.scheduled_s + self.delay_s


@dataclass(frozen=True)
class BookingRequest:
    """What a rider asks for. ``pickup_at_s`` None means as soon as possible."""

    request_id: str
    origin: Place
    destination: Place
    requested_at_s: int
    pickup_at_s: int | None = None
    passengers: int = 1
    wheelchairs: int = 0
    rider_id: str = ""
    prams: int = 0
    travellers: tuple[Traveller, ...] = ()  # empty: every passenger an adult, full fare
    connection: Connection | None = None  # the train this trip meets

    def __post_init__(self) -> None:
        if self.passengers < 1:
            raise InvalidInput("must be at least 1", field="passengers")
        if self.travellers and len(self.travellers) != self.passengers:
            raise InvalidInput(
                f"lists {len(self.travellers)} travellers for {self.passengers} passengers",
                field="travellers",
            )
        if not 0 <= self.wheelchairs <= self.passengers:
            raise InvalidInput("must be between 0 and passengers", field="wheelchairs")
        if self.prams < 0:
            raise InvalidInput("must be >= 0", field="prams")

    @property
    def seats(self) -> int:
        """Ordinary places needed: wheelchair users ride in wheelchair places, and a pram or
        a large piece of luggage takes the place of a seat (folding seats in the minibus)."""
        return self.passengers - self.wheelchairs + self.prams


@dataclass(frozen=True)
class Vehicle:
    """A bus and its shift: seats, wheelchair places, depot, when it may drive."""

    vehicle_id: str
    seats: int
    wheelchair_places: int
    depot: Place
    shift_start_s: int
    shift_end_s: int
    planned_end_s: int | None = None  # set when the driver ended the shift early (undoable)
    #: why the bus is out of service (a breakdown): it takes no trip and keeps only the
    #: riders already on board; None in service
    out_of_service: str | None = None

    def __post_init__(self) -> None:
        if self.seats < 1 or self.wheelchair_places < 0:
            raise InvalidInput("needs >= 1 seat and >= 0 wheelchair places", field="seats")
        if self.shift_end_s <= self.shift_start_s:
            raise InvalidInput("shift must end after it starts", field="shift_end_s")


@dataclass(frozen=True)
class VehicleState:
    """Where the bus is (or will next be free): road node and the time it is there."""

    vehicle_id: str
    node: int
    at_s: int
    lat: float | None = None
    lon: float | None = None
    odometer_node: int | None = None  # where the distance account last stopped (None: depot)
    arrived_node: int | None = None  # the stop the driver reported ARRIVED at (None: driving)
    arrived_s: int | None = None
    position_s: int | None = None  # its last POSITION report (None: none, e.g. no geolocation)

    @property
    def placed_by_stops(self) -> bool:
        """Its tablet sends no positions but its driver reports stops (a tablet without
        geolocation): between two stops nothing tells whether it has left."""
        return self.position_s is None and self.odometer_node is not None


@dataclass(frozen=True)
class PlannedStop:
    """One stop of a plan: whose, where, when planned, and the window promised there."""

    booking_id: str
    type: StopType
    place: Place
    eta_s: int
    window: tuple[int, int]
    passengers: int
    wheelchairs: int


@dataclass(frozen=True)
class Plan:
    """A bus's remaining stops in order; the first ``fixed`` ones may not be reordered."""

    vehicle_id: str
    stops: tuple[PlannedStop, ...] = ()
    fixed: int = 0
    end_s: int | None = None
    #: an idle bus's drive towards where the next riders are expected (rebalancing): where
    #: to, and when it gets there. Only a plan without stops has one; any stop replaces it.
    reposition: Place | None = None
    reposition_eta_s: int | None = None


@dataclass(frozen=True)
class Booking:
    """A rider's booking and the promise made: pickup window and latest drop-off."""

    booking_id: str
    request: BookingRequest
    status: BookingStatus
    vehicle_id: str | None
    pickup_window: tuple[int, int]
    max_ride_s: int
    direct_time_s: int
    pickup_eta_s: int | None = None
    dropoff_eta_s: int | None = None
    picked_up_s: int | None = None
    dropped_off_s: int | None = None
    updated_s: int = 0
    fare: Fare | None = None
    direct_distance_m: int = 0
    #: the rider was told the promise cannot be kept: (when told, the expected time then,
    #: "pickup" or "dropoff", why); None: no such notice
    late_notice: tuple[int, int, str, str] | None = None

    @property
    def latest_dropoff_s(self) -> int:
        """The promised latest arrival (see :func:`latest_dropoff_s`)."""
        return latest_dropoff_s(self.pickup_window, self.max_ride_s)


@dataclass(frozen=True)
class Offer:
    """An answer to a request: which bus, pickup window and expected times, the plan behind it."""

    offer_id: str
    request: BookingRequest
    vehicle_id: str
    pickup_window: tuple[int, int]
    pickup_eta_s: int
    dropoff_eta_s: int
    direct_time_s: int
    max_ride_s: int
    fleet_version: int
    plan: Plan
    expires_s: int
    fare: Fare | None = None
    direct_distance_m: int = 0
    #: a counter-offer: its pickup window is this many seconds later (negative: earlier) than
    #: the wished one, which could not be kept; 0: the offer keeps the wish
    shift_s: int = 0
    #: the other buses' new plans that this offer needs (a rescue re-planned them: their
    #: riders keep their promises, some on another bus); booking it applies them with
    #: ``plan``
    moves: tuple[Plan, ...] = ()

    @property
    def latest_dropoff_s(self) -> int:
        """The latest arrival this offer promises (see :func:`latest_dropoff_s`)."""
        return latest_dropoff_s(self.pickup_window, self.max_ride_s)


@dataclass(frozen=True)
class Rejection:
    """No offer, with a machine-readable reason and a sentence for people."""

    request_id: str
    reason: RejectionReason
    message: str


def _frozen(d: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class FleetState:
    """A consistent snapshot of the whole service: the input and output of every decision.

    ``version`` grows by one with every committed change; a store commits a new state only if
    the version it was computed from is still current.
    """

    version: int
    now_s: int
    vehicles: MappingProxyType[str, Vehicle] = field(default_factory=lambda: _frozen({}))
    states: MappingProxyType[str, VehicleState] = field(default_factory=lambda: _frozen({}))
    plans: MappingProxyType[str, Plan] = field(default_factory=lambda: _frozen({}))
    bookings: MappingProxyType[str, Booking] = field(default_factory=lambda: _frozen({}))

    @classmethod
    def create(
        cls,
        now_s: int,
        vehicles: list[Vehicle],
        states: list[VehicleState] | None = None,
    ) -> FleetState:
        """A fresh fleet: every bus at its depot from the later of now and its shift start."""
        states = states or [
            VehicleState(
                v.vehicle_id, v.depot.node, max(now_s, v.shift_start_s), v.depot.lat, v.depot.lon
            )
            for v in vehicles
        ]
        return cls(
            version=0,
            now_s=now_s,
            vehicles=_frozen({v.vehicle_id: v for v in vehicles}),
            states=_frozen({s.vehicle_id: s for s in states}),
            plans=_frozen({v.vehicle_id: Plan(v.vehicle_id) for v in vehicles}),
            bookings=_frozen({}),
        )

    def plan_errors(self) -> list[str]:
        """Where plans and bookings disagree (empty: nowhere). Every planned stop belongs to
        an open booking that names the stop's bus, and every open booking with a bus has a
        stop in that bus's plan."""
        errors = []
        planned: set[tuple[str, str]] = set()
        for vid, plan in self.plans.items():
            for st in plan.stops:
                b = self.bookings.get(st.booking_id)
                planned.add((st.booking_id, vid))
                if b is None:
                    errors.append(f"{vid} plans unknown booking {st.booking_id}")
                elif not b.status.open:
                    errors.append(f"{vid} plans {st.booking_id}, which is {b.status}")
                elif b.vehicle_id != vid:
                    errors.append(f"{vid} plans {st.booking_id}, booked on {b.vehicle_id}")
        for b in self.bookings.values():
            if b.status.open and b.vehicle_id and (b.booking_id, b.vehicle_id) not in planned:
                errors.append(f"{b.booking_id} is {b.status} on {b.vehicle_id}, not in its plan")
        return errors

    def with_derived(self, **changes: Any) -> FleetState:
        """The same snapshot (same version) with derived data refreshed, e.g. ETAs."""
        new = self.evolve(**changes)
        return FleetState(
            self.version, new.now_s, new.vehicles, new.states, new.plans, new.bookings
        )

    def evolve(self, **changes: Any) -> FleetState:
        """A new snapshot with some parts replaced and the version bumped."""
        for name in ("vehicles", "states", "plans", "bookings"):
            if name in changes:
                changes[name] = _frozen(changes[name])
        return FleetState(
            version=self.version + 1,
            now_s=changes.pop("now_s", self.now_s),
            vehicles=changes.pop("vehicles", self.vehicles),
            states=changes.pop("states", self.states),
            plans=changes.pop("plans", self.plans),
            bookings=changes.pop("bookings", self.bookings),
        )
