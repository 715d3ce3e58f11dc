"""The dispatch service: load snapshot -> dispatcher -> commit-if-version -> event.

The API and the simulator both drive this class. Every change loads the current FleetState,
moves its clock to now, asks the pure Dispatcher, and commits the result with its events only if
nobody else committed in between (optimistic locking; on a clash it starts again from the newer
state). A decision is therefore either stored whole, or not at all.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

from dispatch.archive import NightRecord
from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.rebalancing import CellForecast, DemandForecast, RebalanceParams, targets
from dispatch.store import Event, StateStore
from nachtbus.billing import ledger as billing
from nachtbus.billing.co2 import Co2Params, Leg, NightCo2, account
from nachtbus.billing.fares import Pricer
from nachtbus.clock import Clock, DayClock, as_aware, service_day_of
from nachtbus.domain import (
    DELAYED_ON_THE_ROAD,
    NOT_LEFT,
    Booking,
    BookingRequest,
    BookingStatus,
    Connection,
    ConnectionKind,
    FleetState,
    Offer,
    Place,
    Plan,
    Rejection,
    RejectionReason,
    StopType,
    Vehicle,
    VehicleState,
)
from nachtbus.errors import (
    BookingRejected,
    BookingStateError,
    Busy,
    ConfigError,
    NachtbusError,
    NotFound,
    RateLimited,
    RejectedInput,
    UnknownBooking,
    UnknownOffer,
)
from nachtbus.transit.timetable import Timetable
from routing import isolated

log = logging.getLogger(__name__)
T = TypeVar("T")
ARCHIVE_RETRY_S = 3600.0  # after a failed archiving of old nights


class Locator(Protocol):
    """Places a coordinate on the road network (checking the service area when asked)."""

    def place(self, lat: float, lon: float, field: str, *, in_area: bool = True) -> Place: ...


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of the live service around the dispatcher's rules."""

    pending_ttl_s: int = 300  # a PENDING booking not committed within this expires
    offer_grace_s: int = 60  # an expired offer is kept this long to answer "expired", not "unknown"
    max_retries: int = 20  # commit attempts on version clashes before answering Busy
    max_pending_per_owner: int = 20  # PENDING bookings one rider app may hold at once

    def __post_init__(self) -> None:
        for name in ("pending_ttl_s", "offer_grace_s", "max_retries", "max_pending_per_owner"):
            if getattr(self, name) < 1:
                raise NachtbusError("must be >= 1", field=name)


def booking_event(kind: str, b: Booking, at_s: int) -> Event:
    return Event(
        f"booking.{kind}",
        at_s,
        {"booking_id": b.booking_id, "vehicle_id": b.vehicle_id, "status": b.status.value},
    )


class DistrictLookup(Protocol):
    """The districts (Ortsteile) of the area: which one a point is in, and their names."""

    @property
    def names(self) -> list[str]: ...

    def name_at(self, lat: float, lon: float) -> str | None: ...


class Nights(Protocol):
    """Where each service day's state is kept and which buses drive that night."""

    def store_for(self, day: date) -> StateStore:
        """The store of service day ``day`` (its own key space)."""
        ...

    def fleet_for(self, day: date, policy: ServicePolicy) -> list[Vehicle]:
        """The buses of that night, on shift by its rules (``policy`` in its seconds)."""
        ...

    def record_for(self, day: date) -> NightRecord | None:
        """A past night's state and journals, from the store or the archive; None if that
        night has no record (never served, or not kept)."""
        ...

    def archive_before(self, day: date) -> list[date]:
        """Move every night before ``day`` from the store to the archive; the nights moved."""
        ...

    def stored_days(self) -> list[date]:
        """The service days that still have a store (not archived), oldest first."""
        ...


@dataclass(frozen=True)
class FleetChange:
    """What :meth:`DispatchService.adopt_fleet` did: the buses that joined tonight's fleet,
    those that took new seats, places or depot, and those that kept tonight's (why)."""

    joined: list[str]
    refitted: list[str]
    kept: dict[str, str]


@dataclass(frozen=True)
class RoundsStatus:
    """Tonight's background rounds: how many went through, the last that did, the last
    that failed and why (aware instants)."""

    rounds: int = 0
    last_ok_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class StoreStatus:
    """The store's memory (bytes; ceiling 0: none), its nights, the last archiving error."""

    used_bytes: int
    max_bytes: int
    nights_stored: int
    archive_error: str | None
    troubles: tuple[str, ...] = ()  # what the store's server reports as wrong lately


RETIME_MIN_SHIFT_S = 60  # a bus that has not left is re-timed once this far behind its plan


@dataclass(frozen=True)
class OverdueBus:
    """A bus that has not reported reaching its next stop long after its plan expected it
    there (its driver's tablet is silent: no signal, switched off; the plans still assume it
    on time, only a report or the dispatcher can say where it is), or one that has not left
    for its next stop (``not_left``: no report since its plan was made) and so can no longer
    keep a rider's promise."""

    vehicle_id: str
    booking_id: str
    stop: StopType
    expected_s: int  # when the plan has it at the stop
    heard_s: int  # the bus's last report (or when it was done at its last stop)
    not_left: bool = False


@dataclass(frozen=True)
class Night:
    """One service day: its date, its store and the dispatcher with that night's rules."""

    day: date
    store: StateStore
    dispatcher: Dispatcher


class DispatchService:
    """One service area's live decisions, kept in a StateStore.

    With ``nights`` the service runs day after day: when the clock passes into a new service
    day (at noon, see :mod:`nachtbus.clock`) the next call opens that day's store, creates the
    night's fleet there (if it is not there yet) with the service hours converted to that
    night's seconds, and from then on decides on it; the night before stays in its own store.
    Without ``nights`` it serves the one given store (the simulator and unit tests).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        store: StateStore | None,
        clock: Clock,
        locator: Locator,
        config: ServiceConfig | None = None,
        pricer: Pricer | None = None,
        *,
        nights: Nights | None = None,
        offer_ids: Callable[[], str] | None = None,
        timetable: Timetable | None = None,
        districts: DistrictLookup | None = None,
        network_key: str | None = None,
        on_commit: Callable[[list[Event]], None] | None = None,
    ) -> None:
        """``offer_ids`` makes the ids of offers (and so of bookings); default random ones,
        which nobody can guess. The simulator numbers them, so that a night's bookings sort
        the same way every run and the run is reproducible. ``on_commit`` hears the events
        of every change once it is stored (a later night's service tells tonight's)."""
        if store is None and nights is None:
            raise ValueError("a service needs a store or nights")
        self.clock = clock
        self.locator = locator
        self.config = config or ServiceConfig()
        self.pricer = pricer
        self._base = dispatcher
        self._nights = nights
        self._night: Night | None = (
            None if store is None else Night(clock.service_date(), store, dispatcher)
        )
        self._offer_ids = offer_ids or (lambda: uuid.uuid4().hex)
        self._forecast: tuple[date, CellForecast | None] | None = None
        self._archived_on: date | None = None
        self._archive_retry_at = 0.0  # monotonic; after a failed archiving
        self.archive_error: str | None = None  # why the last archiving failed (None: it did not)
        self.timetable = timetable
        self.district_map = districts
        self._lock = threading.Lock()
        self._ahead: dict[date, DispatchService] = {}  # later nights riders booked ahead for
        self._last_reopt: tuple[date, int] | None = None
        self.network_key = network_key
        self._on_commit = on_commit

    # ------------------------------------------------------------------ nights
    def night(self) -> Night:
        """The current service day (a new one is opened once the clock has passed noon)."""
        night = self._night
        if self._nights is None:
            assert night is not None
            return night
        day = self.clock.service_date()
        if night is not None and night.day == day:
            return night
        with self._lock:
            if self._night is None or self._night.day != day:
                opened, stored = self._open(day)
                self._night = opened
                self._ahead = {d: svc for d, svc in self._ahead.items() if d > day}
                if stored:  # a restart, or a night riders booked ahead for: today's buses
                    self.adopt_fleet(self._nights.fleet_for(day, opened.dispatcher.policy))
            return self._night

    def _open(self, day: date, clock: Clock | None = None) -> tuple[Night, bool]:
        """Service day ``day``'s night, its fleet created if its store has none yet (in the
        seconds of ``clock``, default the service's); and whether the store had one."""
        assert self._nights is not None
        clock = clock or self.clock
        policy = self._base.policy.for_night(day, self.clock.tz)
        night = Night(day, self._nights.store_for(day), self._base.with_policy(policy))
        stored = night.store.load() is not None
        if not stored:
            fleet = self._nights.fleet_for(day, policy)
            self._create_fleet(night.store, fleet, clock)
            night.store.append_events(
                [Event("service.night_opened", clock.now_s(), {"service_date": str(day)})]
            )
            log.info("service day %s opened with %d buses", day, len(fleet))
        self._same_network(night)
        return night, stored

    # ------------------------------------------------------------------ booking ahead
    def ahead(self, day: date) -> DispatchService:
        """The service of a later service day ``day``, for riders booking ahead (up to the
        rules' ``prebook_horizon_s``): that night's store, its fleet created now with that
        night's rules, and a clock in that night's seconds. Its offers, bookings, commits
        and cancellations are those of any night; it runs no rounds (the night's own service
        takes it over at noon of its date, with the buses of the settings then)."""
        tonight = self.night().day
        if self._nights is None or day <= tonight:
            raise ValueError(f"{day} is not a later service day than {tonight}")
        with self._lock:
            found = self._ahead.get(day)
            if found is None:
                clock = DayClock(self.clock, day)
                night, _ = self._open(day, clock)
                found = DispatchService(
                    night.dispatcher, night.store, clock, self.locator, self.config,
                    self.pricer, offer_ids=self._offer_ids, timetable=self.timetable,
                    districts=self.district_map, network_key=self.network_key,
                    on_commit=functools.partial(self._ahead_changed, day),
                )  # fmt: skip
                self._ahead[day] = found
            return found

    def _ahead_changed(self, day: date, events: list[Event]) -> None:
        """A later night's bookings changed (booked, committed, cancelled, expired): tonight's
        event stream says so (``booking.ahead``: the night, the bookings and what happened),
        so that the control room's list of bookings ahead follows at once. The change itself
        is stored already; a failure here only leaves the list to its next refresh."""
        changed = [e for e in events if e.type.startswith("booking.")]
        if not changed:
            return
        data = {
            "service_date": str(day),
            "booking_ids": sorted({str(e.data.get("booking_id")) for e in changed}),
            "types": sorted({e.type for e in changed}),
        }
        try:
            self.store.append_events([Event("booking.ahead", self.clock.now_s(), data)])
        except Exception:  # the booking is stored; only the notice is lost
            log.warning("tonight's stream was not told of a change on %s", day, exc_info=True)

    def service_for(self, moment: datetime | None, field: str) -> DispatchService:
        """The service whose night a trip at ``moment`` belongs to: a later night's
        (:meth:`ahead`) for a time on a later service day within the booking horizon, else
        this one (which names a time on no night it serves in its error). A time beyond the
        horizon is refused here, naming ``field``, before any night is opened for it."""
        if moment is None or self._nights is None:
            return self
        aware = as_aware(moment, self.clock.tz)
        try:
            day, _ = service_day_of(aware, self.clock.tz)
        except (OverflowError, ValueError):
            return self
        if day <= self.night().day:
            return self
        horizon = self.dispatcher.policy.prebook_horizon_s
        if (aware - self.clock.now()).total_seconds() > horizon:
            raise RejectedInput(
                RejectionReason.BEYOND_BOOKING_HORIZON.value,
                f"trips can be booked at most {horizon // 3600} h ahead",
                field=field,
            )
        return self.ahead(day)

    def later_nights(self) -> list[DispatchService]:
        """The services of the later nights that riders have booked ahead for (their stores
        exist), soonest first."""
        if self._nights is None:
            return []
        tonight = self.night().day
        return [self.ahead(d) for d in self._nights.stored_days() if d > tonight]

    def holding_offer(self, offer_id: str) -> tuple[DispatchService, Offer | None]:
        """The service (tonight's or a later night's) that made offer ``offer_id``, with the
        offer; tonight's and None when none did (which then answers that there is no such
        offer)."""
        offer = self.offer(offer_id)
        if offer is not None:
            return self, offer
        for svc in self.later_nights():
            offer = svc.offer(offer_id)
            if offer is not None:
                return svc, offer
        return self, None

    def holding_booking(self, booking_id: str) -> tuple[DispatchService, FleetState]:
        """The service (tonight's or a later night's) whose night has booking ``booking_id``,
        with that night's state now; tonight's when none has (whose state then lacks it)."""
        tonight = self.snapshot()
        if booking_id in tonight.bookings:
            return self, tonight
        for svc in self.later_nights():
            state = svc.snapshot()
            if booking_id in state.bookings:
                return svc, state
        return self, tonight

    NETWORK = "network"  # the road network a night's places are numbered on (no time to live)

    def _same_network(self, night: Night) -> None:
        """A night's bookings, plans and bus positions name road nodes by number, so they are
        read only on the network they were made on. A night first opened by this service (or
        by one that did not record it) is recorded as this network's; a night made on another
        network stops the start-up here (another town's night on this store, or tonight's
        plans from before a new road file), before anything reads it."""
        if self.network_key is None:
            return
        made_on = night.store.recall(self.NETWORK)
        if made_on is None:
            night.store.remember(self.NETWORK, self.network_key, None)
        elif made_on != self.network_key:
            raise ConfigError(
                f"the store's service day {night.day} was planned on another road network "
                f"({made_on}; this one is {self.network_key}): its bookings and buses name "
                "places of that network. Give each town its own NACHTBUS_AREA_ID (a town "
                "folder's name by default) or its own NACHTBUS_DATA_DIR / NACHTBUS_REDIS_URL; "
                "a new road file for the same town is taken up from the next service day "
                "(after noon), or start tonight with the network the night was planned on",
                field="area_id",
            )

    def _create_fleet(
        self, store: StateStore, vehicles: Sequence[Vehicle], clock: Clock | None = None
    ) -> FleetState:
        """Put a fresh fleet (every bus at its depot) into an empty store, at the time of
        ``clock`` (default the service's); the stored state."""
        store.initialise(FleetState.create((clock or self.clock).now_s(), list(vehicles)))
        state = store.load()
        assert state is not None
        return state

    def close(self) -> None:
        """Close the store connection (shared by every night's store; an embedded server
        owned by this process stops with it) and this process's search child (the next
        isolated solve starts a new one)."""
        night = self._night
        if night is not None:
            night.store.close()
        isolated.close()

    @property
    def store(self) -> StateStore:
        """Tonight's store."""
        return self.night().store

    @property
    def dispatcher(self) -> Dispatcher:
        """Tonight's dispatcher (tonight's rules)."""
        return self.night().dispatcher

    # ------------------------------------------------------------------ state
    def start(self, vehicles: Sequence[Vehicle] = ()) -> FleetState:
        """Load the stored state, or create the fleet if the store is empty (first start).

        With ``nights`` the fleet comes from them and ``vehicles`` is not used; opening a
        night that was stored already (a restart, or riders booked ahead for it) makes its
        fleet the settings' buses where its plans allow (:meth:`adopt_fleet`)."""
        store = self.store
        state = store.load()
        if state is None:
            return self._create_fleet(store, vehicles)
        return state

    def adopt_fleet(self, fleet: Sequence[Vehicle]) -> FleetChange:
        """Make tonight's fleet the buses of ``fleet`` (the settings, after a restart), as far
        as no promise suffers.

        A bus tonight's fleet lacks goes on shift now, at its depot, with an empty plan
        (event ``vehicle.joined``). A bus whose seats, wheelchair places or depot differ takes
        them at once when its plan keeps every rule with them (event ``vehicle.refitted``);
        otherwise it keeps tonight's until the next night, and the log says why. A bus
        tonight's fleet has and ``fleet`` does not keeps its riders and its plan (it is only
        named in the log): taking it out of service is the control room's decision."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], FleetChange]:
            now = state.now_s
            events: list[Event] = []
            refitted: list[str] = []
            kept: dict[str, str] = {}
            for bus in fleet:
                old = state.vehicles.get(bus.vehicle_id)
                if old is None or (old.seats, old.wheelchair_places, old.depot) == (
                    bus.seats, bus.wheelchair_places, bus.depot
                ):  # fmt: skip
                    continue
                got = self.dispatcher.refit(state, bus)
                if isinstance(got, str):
                    kept[bus.vehicle_id] = got
                    continue
                state = got
                refitted.append(bus.vehicle_id)
                events.append(Event("vehicle.refitted", now, {
                    "vehicle_id": bus.vehicle_id, "seats": bus.seats,
                    "wheelchair_places": bus.wheelchair_places,
                    "depot": [bus.depot.lat, bus.depot.lon],
                    "before": {"seats": old.seats, "wheelchair_places": old.wheelchair_places,
                               "depot": [old.depot.lat, old.depot.lon]},
                }))  # fmt: skip
            new = [v for v in fleet if v.vehicle_id not in state.vehicles]
            joined = [replace(v, shift_start_s=max(v.shift_start_s, now)) for v in new]
            if any(v.shift_end_s <= v.shift_start_s for v in joined):
                joined = []  # the night's shifts are over: nothing to join
            if joined:
                vehicles = {**state.vehicles, **{v.vehicle_id: v for v in joined}}
                states = {
                    **state.states,
                    **{
                        v.vehicle_id: VehicleState(
                            v.vehicle_id, v.depot.node, v.shift_start_s, v.depot.lat, v.depot.lon
                        )
                        for v in joined
                    },
                }
                plans = {**state.plans, **{v.vehicle_id: Plan(v.vehicle_id) for v in joined}}
                state = state.evolve(vehicles=vehicles, states=states, plans=plans)
                events += [
                    Event("vehicle.joined", now, {"vehicle_id": v.vehicle_id, "seats": v.seats,
                                                  "wheelchair_places": v.wheelchair_places})
                    for v in joined
                ]  # fmt: skip
            change = FleetChange([v.vehicle_id for v in joined], refitted, kept)
            return state, events, change

        stored, change = self._change(decide)
        extra = sorted(set(stored.vehicles) - {v.vehicle_id for v in fleet})
        if change.joined:
            log.info("buses %s joined tonight's fleet", ", ".join(change.joined))
        if change.refitted:
            log.info("buses %s took their new seats, places or depot", ", ".join(change.refitted))
        for vid, why in change.kept.items():
            log.warning(
                "%s keeps tonight's seats, wheelchair places and depot until the next night: "
                "%s with the new ones",
                vid,
                why,
            )
        if extra:
            log.warning(
                "tonight's fleet has buses the settings do not (%s): they keep their riders "
                "and plans; take them out of service from the control room if they stop",
                ", ".join(extra),
            )
        return change

    def snapshot(self) -> FleetState:
        """The current state with its clock moved to now (nothing is committed)."""
        state = self.store.load()
        if state is None:
            raise NachtbusError("the service was not started: no fleet in the store")
        return self.dispatcher.advance_clock(state, self.clock.now_s())

    def _change(
        self, decide: Callable[[FleetState], tuple[FleetState, list[Event], T]]
    ) -> tuple[FleetState, T]:
        """Run ``decide`` on the newest state until its result commits (or answer Busy)."""
        store = self.store  # one night for the whole decision
        for _ in range(self.config.max_retries):
            loaded = store.load()
            if loaded is None:
                raise NachtbusError("the service was not started: no fleet in the store")
            state = self.dispatcher.advance_clock(loaded, self.clock.now_s())
            new, events, result = decide(state)
            if new is state or new.version == loaded.version:
                return loaded, result
            errors = new.plan_errors()
            if errors:  # a defect: never store it (every later decision would build on it)
                known = set(state.plan_errors())  # stored before (by older code, say)
                fresh = [e for e in errors if e not in known]
                if fresh:
                    log.error("change refused, plans and bookings disagree: %s", "; ".join(fresh))
                    raise RuntimeError(f"plans and bookings would disagree: {fresh[0]}")
                log.warning("plans and bookings disagree in the store: %s", "; ".join(errors))
            if store.commit(new, loaded.version, events):
                if self._on_commit is not None and events:
                    self._on_commit(events)
                return new, result
        raise Busy("the fleet changed too often while deciding; try again")

    # ------------------------------------------------------------------ riders
    def quote(self, request: BookingRequest, arrive_by_s: int | None = None) -> Offer | Rejection:
        """The offer at the wish (kept until it expires) or a rejection with its reason
        (recorded); no counter-offers (see :meth:`options`)."""
        return self._quote(request, arrive_by_s, alternatives=False)[0]

    def options(
        self, request: BookingRequest, arrive_by_s: int | None = None
    ) -> tuple[list[Offer], Rejection | None]:
        """The offers for a request: the one at the wish, or else up to
        ``policy.max_alternatives`` counter-offers (later pickups; earlier ones for an
        arrive-by trip), each kept until it expires. The rejection says why the wish could
        not be kept (with counter-offers) or why there is nothing (without; recorded then)."""
        answer, alternatives = self._quote(request, arrive_by_s, alternatives=True)
        if isinstance(answer, Offer):
            return [answer], None
        return alternatives, answer

    def _quote(
        self, request: BookingRequest, arrive_by_s: int | None, *, alternatives: bool
    ) -> tuple[Offer | Rejection, list[Offer]]:
        state = self.snapshot()
        paused = self._paused(request)
        if paused is not None:
            self._record_rejection(paused, state.now_s)
            return paused, []
        late: Rejection | None = None
        if arrive_by_s is not None and arrive_by_s <= state.now_s:
            raise RejectedInput(
                RejectionReason.PICKUP_IN_PAST.value,
                "the asked arrival time is not after now",
                field="arrivalTime",
            )
        if arrive_by_s is not None:
            direct = self.dispatcher.times.times_s([request.origin.node, request.destination.node])
            earliest = self.dispatcher.policy.arrive_by_pickup_s(arrive_by_s, int(direct[0, 1]))
            request = _with_pickup(request, max(earliest, state.now_s))
            late = Rejection(
                request.request_id,
                RejectionReason.NO_VEHICLE_IN_TIME,
                "no bus can bring the riders there by the asked arrival time",
            )
        result = self.dispatcher.offer(
            state, request, offer_id=self._offer_ids(), arrive_by_s=arrive_by_s
        )
        if (
            late
            and isinstance(result, Offer)
            and arrive_by_s
            and result.dropoff_eta_s > arrive_by_s
        ):
            result = late
        others: list[Offer] = []
        if isinstance(result, Rejection) and alternatives:
            others = [
                o
                for o in self.dispatcher.alternatives(
                    state,
                    request,
                    result,
                    self._offer_ids,
                    earlier=arrive_by_s is not None,
                    arrive_by_s=arrive_by_s,
                )
                if arrive_by_s is None or o.dropoff_eta_s <= arrive_by_s
            ]
        if isinstance(result, Offer):
            result = self._keep(self._priced(result), state.now_s)
        others = [self._keep(self._priced(o), state.now_s) for o in others]
        if isinstance(result, Rejection) and not others:
            self._record_rejection(result, state.now_s)
        return result, others

    # ------------------------------------------------------------------ trains
    def find_train(
        self,
        kind: ConnectionKind,
        *,
        trip_id: str | None = None,
        stop_id: str | None = None,
        time_s: int | None = None,
    ) -> tuple[Connection, Place]:
        """The train a trip meets, found in the timetable by trip id (or by station and
        time), with the latest delay heard for it, and the station as a place on the road
        (the pickup from a train, the drop-off to one). Errors name the connection field."""
        tt = self.timetable
        if tt is None:
            raise RejectedInput(
                "invalid_input", "this service has no timetable", field="connection"
            )
        day = self.clock.service_date()
        if trip_id:
            call = tt.call(day, trip_id, stop_id, field="connection.tripId")
        elif stop_id and time_s is not None:
            call = tt.at(
                day,
                stop_id,
                time_s,
                arriving=kind == ConnectionKind.FROM_TRAIN,
                field="connection.time",
            )
        else:
            raise RejectedInput(
                "invalid_input",
                "a connection names the train (tripId) or the station and time",
                field="connection",
            )
        if kind == ConnectionKind.FROM_TRAIN and call.first:
            raise RejectedInput(
                "invalid_input",
                f"train {call.trip_id} starts here; nobody arrives on it",
                field="connection.tripId",
            )
        if kind == ConnectionKind.TO_TRAIN and call.last:
            raise RejectedInput(
                "invalid_input",
                f"train {call.trip_id} ends here; nobody leaves on it",
                field="connection.tripId",
            )
        station = tt.station(call.stop_id, field="connection.stopId")
        place = self.locator.place(station.lat, station.lon, "connection.stopId")
        scheduled = call.arrival_s if kind == ConnectionKind.FROM_TRAIN else call.departure_s
        conn = Connection(
            kind,
            call.trip_id,
            call.stop_id,
            station.name,
            call.route,
            call.headsign,
            scheduled,
            self.train_delay(call.trip_id),
        )
        return conn, replace(place, label=station.name)

    def with_train(
        self, request: BookingRequest, conn: Connection, station: Place | None = None
    ) -> tuple[BookingRequest, int | None]:
        """The request meeting train ``conn`` (picked up at, or brought to, ``station`` if
        given) and, to a train, the arrival it must keep (``arrive_by_s`` for
        :meth:`options`): the departure less ``policy.train_buffer_s``. From a train, the
        pickup is asked for the train's arrival plus the walk."""
        policy = self.dispatcher.policy
        request = replace(request, connection=conn)
        if conn.kind == ConnectionKind.FROM_TRAIN:
            if station is not None:
                request = replace(request, origin=station)
            return replace(request, pickup_at_s=policy.train_pickup_s(conn)), None
        if station is not None:
            request = replace(request, destination=station)
        return request, policy.train_arrive_by_s(conn)

    def train_delay(self, trip_id: str) -> int:
        """The latest delay heard for a train tonight (s; 0 if none)."""
        got = self.store.recall(f"train-delay:{trip_id}")
        return int(got) if got else 0

    def train_delays(self, delays: dict[str, int]) -> list[Event]:
        """Apply trains' delays (GTFS-Realtime TripUpdates: trip id -> seconds late): each
        open booking on such a train that is not yet picked up is told (an event), and a
        rider off a late train gets a new pickup window from the new arrival, on whichever
        bus can keep it and every other promise. When the train is later than a bus waits
        (``policy.train_wait_max_s``) or no bus can keep the new window, the booking is
        cancelled with a refund and the rider told why. A rider to a train that now leaves
        before the bus gets there is flagged at risk (also when on board). Returns the
        events."""
        ttl = 16 * 3600
        for trip, delay in delays.items():
            self.store.remember(f"train-delay:{trip}", str(int(delay)), ttl)
        policy = self.dispatcher.policy

        def decide(state: FleetState) -> tuple[FleetState, list[Event], list[Event]]:
            events: list[Event] = []
            new = state
            for b in sorted(state.bookings.values(), key=lambda x: x.booking_id):
                conn = b.request.connection
                waiting = b.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED)
                on_board_to_train = (
                    conn is not None
                    and conn.kind == ConnectionKind.TO_TRAIN
                    and b.status == BookingStatus.STARTED
                )
                if (
                    conn is None
                    or conn.trip_id not in delays
                    or not (waiting or on_board_to_train)
                    or delays[conn.trip_id] == conn.delay_s
                ):
                    continue
                moved = replace(conn, delay_s=int(delays[conn.trip_id]))
                request = replace(b.request, connection=moved)
                about = {
                    "booking_id": b.booking_id,
                    "trip_id": conn.trip_id,
                    "route": conn.route,
                    "delay_s": moved.delay_s,
                }
                if conn.kind == ConnectionKind.TO_TRAIN:
                    bookings = dict(new.bookings)
                    bookings[b.booking_id] = replace(new.bookings[b.booking_id], request=request)
                    new = new.evolve(bookings=bookings)
                    nb = new.bookings[b.booking_id]
                    risk = (nb.dropoff_eta_s or nb.latest_dropoff_s) > policy.train_arrive_by_s(
                        moved
                    )
                    kind = "connection_at_risk" if risk else "connection_delayed"
                    events.append(
                        Event(
                            f"booking.{kind}",
                            state.now_s,
                            {
                                **about,
                                "vehicle_id": nb.vehicle_id,
                                "status": nb.status.value,
                                "dropoff_eta_s": nb.dropoff_eta_s,
                                "departure_s": moved.expected_s,
                            },
                        )
                    )
                    continue
                reason = ""
                if moved.delay_s > policy.train_wait_max_s:
                    reason = (
                        f"the train is {moved.delay_s // 60} min late; a bus waits at most "
                        f"{policy.train_wait_max_s // 60} min"
                    )
                else:
                    start = max(policy.train_pickup_s(moved), state.now_s)
                    answer = self.dispatcher.rewindow(
                        new, b.booking_id, request, (start, start + policy.train_window_s)
                    )
                    if isinstance(answer, Rejection):
                        reason = f"no bus can wait for the late train: {answer.message}"
                    else:
                        new = answer
                        nb = new.bookings[b.booking_id]
                        events.append(
                            Event(
                                "booking.connection_delayed",
                                state.now_s,
                                {
                                    **about,
                                    "vehicle_id": nb.vehicle_id,
                                    "status": nb.status.value,
                                    "pickup_window": list(nb.pickup_window),
                                    "pickup_eta_s": nb.pickup_eta_s,
                                },
                            )
                        )
                        continue
                new, more = self._cancel_for_train(new, b, reason, about)
                events.extend(more)
            return new, events, events

        return self._change(decide)[1]

    def _cancel_for_train(
        self, state: FleetState, b: Booking, reason: str, about: dict[str, object]
    ) -> tuple[FleetState, list[Event]]:
        """Cancel a booking whose train the bus cannot wait for, refunded in full (it is
        not the rider's doing)."""
        new = self.dispatcher.cancel(state, b.booking_id)
        nb = new.bookings[b.booking_id]
        events = [
            Event(
                "booking.connection_missed",
                state.now_s,
                {
                    **about,
                    "vehicle_id": b.vehicle_id,
                    "status": nb.status.value,
                    "reason": reason,
                },
            )
        ]
        events.extend(_refund(b, state.now_s))
        return new, events

    # ------------------------------------------------------------------ the dispatcher's hand
    def move_booking(self, booking_id: str, vehicle_id: str, by: str) -> Booking:
        """Put a booking not yet picked up on another bus, its promise kept (or MoveRefused
        naming the rule); event ``booking.moved`` with who did it."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], Booking]:
            before = self.dispatcher.booking(state, booking_id)
            new = self.dispatcher.move(state, booking_id, vehicle_id)
            nb = new.bookings[booking_id]
            events = [moved_event(nb, before.vehicle_id, by, state.now_s)]
            if before.vehicle_id:  # the bus it left sees the change too
                events.append(
                    Event("plans.changed", state.now_s, {"vehicle_id": before.vehicle_id, "by": by})
                )
            return new, events, nb

        return self._change(decide)[1]

    def cancel_for_rider(self, booking_id: str, by: str, reason: str) -> Booking:
        """A dispatcher cancels a booking on the rider's behalf (a call, a mistake): the
        stops leave the plan, the fare is refunded in full, the event names who and why."""
        return self.cancel(booking_id, by, reason)

    ROUNDS = "status:rounds"  # how tonight's background rounds went (kept, not evicted)

    def note_round(self, error: str | None) -> None:
        """Record a background round that went through (``error`` None) or failed, so that
        every process can tell the dispatchers (the rounds run in one process only)."""
        raw = self.store.recall(self.ROUNDS)
        seen = dict(json.loads(raw)) if raw else {}
        at = self.clock.now().isoformat()
        if error is None:
            seen.update(last_ok_at=at, rounds=int(seen.get("rounds", 0)) + 1)
        else:
            seen.update(last_error_at=at, last_error=error[:300])
        self.store.remember(self.ROUNDS, json.dumps(seen), None)

    def rounds(self) -> RoundsStatus:
        """Tonight's background rounds, as :meth:`note_round` recorded them."""
        raw = self.store.recall(self.ROUNDS)
        seen = dict(json.loads(raw)) if raw else {}

        def instant(key: str) -> datetime | None:
            value = seen.get(key)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        return RoundsStatus(
            int(seen.get("rounds", 0)),
            instant("last_ok_at"),
            instant("last_error_at"),
            seen.get("last_error"),
        )

    def overdue(self, after_s: int) -> list[OverdueBus]:
        """Buses in service whose next stop was expected more than ``after_s`` ago with no
        ARRIVED there (a bus waiting at a pickup it reported is not overdue). A bus that
        reports where it is gets its stops' times from there, so one held up by the road is
        late (its forecast), not overdue; what is left is the bus nobody has heard from.

        A bus that has not left for its next stop (no report since its plan was made) is
        planned to leave from now on, and :meth:`retime_not_left` moves its times on as the
        clock runs; it is named once it breaks a promise so (a rider late, whom no other bus
        could take in time) and has not been heard of for ``after_s``."""
        state = self.snapshot()
        out = []
        for vid in sorted(state.vehicles):
            plan, where = state.plans[vid], state.states[vid]
            if state.vehicles[vid].out_of_service is not None or not plan.stops:
                continue
            first = plan.stops[0]
            if where.arrived_node == first.place.node:
                continue
            unheard = state.now_s - first.eta_s > after_s
            not_left = (
                not unheard
                and plan.fixed == 0
                and not where.placed_by_stops
                and state.now_s - where.at_s > after_s
                and any(self._late(state.bookings[st.booking_id]) for st in plan.stops)
            )
            if unheard or not_left:
                out.append(
                    OverdueBus(vid, first.booking_id, first.type, first.eta_s, where.at_s, not_left)
                )
        return out

    def store_status(self) -> StoreStatus:
        """The store's memory against its ceiling, the nights it holds, and why old nights
        could not be archived (if the last try failed)."""
        used, ceiling = self.store.memory()
        stored = self._nights.stored_days() if self._nights is not None else []
        troubles = tuple(self.store.troubles())
        return StoreStatus(used, ceiling, max(1, len(stored)), self.archive_error, troubles)

    PAUSES = "pauses"  # kept without a time to live: the memory ceiling never evicts a pause
    ALL_AREAS = "*"

    def pauses(self) -> dict[str, dict[str, object]]:
        """Where new bookings are paused now: district (or ``*``, everywhere) -> reason, who,
        since when (night seconds)."""
        raw = self.store.recall(self.PAUSES)
        return dict(json.loads(raw)) if raw else {}

    def pause(self, district: str, reason: str, by: str) -> dict[str, dict[str, object]]:
        """Pause new bookings from or to a district (``*``: the whole area), with the reason
        riders are told; bookings made stand. Event ``area.paused``."""
        known = self.districts()
        if district != self.ALL_AREAS and district not in known:
            raise RejectedInput(
                "invalid_input",
                f"unknown district {district!r}; one of {sorted(known)} or '*' for all",
                field="district",
            )
        now = self.clock.now_s()
        found = self.pauses()
        found[district] = {"reason": reason, "by": by, "since_s": now}
        self.store.remember(self.PAUSES, json.dumps(found), None)
        self.store.append_events(
            [Event("area.paused", now, {"district": district, "reason": reason, "by": by})]
        )
        return found

    def resume(self, district: str, by: str) -> dict[str, dict[str, object]]:
        """Take a pause back (event ``area.resumed``); resuming an unpaused district is no
        change."""
        found = self.pauses()
        if found.pop(district, None) is not None:
            self.store.remember(self.PAUSES, json.dumps(found), None)
            self.store.append_events(
                [Event("area.resumed", self.clock.now_s(), {"district": district, "by": by})]
            )
        return found

    def districts(self) -> set[str]:
        """The district names pauses can name (from the districts file)."""
        return set(self.district_map.names) if self.district_map else set()

    def _paused(self, request: BookingRequest) -> Rejection | None:
        found = self.pauses()
        if not found:
            return None
        for end in (request.origin, request.destination):
            where = self.district_map.name_at(end.lat, end.lon) if self.district_map else None
            for key in (self.ALL_AREAS, where):
                if key is not None and key in found:
                    name = "the service area" if key == self.ALL_AREAS else key
                    return Rejection(
                        request.request_id,
                        RejectionReason.AREA_PAUSED,
                        f"new bookings in {name} are paused: {found[key]['reason']}",
                    )
        return None

    def _priced(self, offer: Offer) -> Offer:
        if self.pricer is None:
            return offer
        r = offer.request
        fare = self.pricer.fare(
            offer.direct_distance_m,
            offer.pickup_window[0],
            r.passengers,
            r.travellers,
            [(r.origin.lat, r.origin.lon), (r.destination.lat, r.destination.lon)],
        )
        return replace(offer, fare=fare)

    def _keep(self, offer: Offer, now_s: int) -> Offer:
        self.store.put_offer(offer, offer.expires_s - now_s + self.config.offer_grace_s)
        return offer

    def _record_rejection(self, r: Rejection, at_s: int) -> None:
        self.store.append_events(
            [
                Event(
                    "request.rejected",
                    at_s,
                    {"request_id": r.request_id, "reason": r.reason.value, "message": r.message},
                )
            ]
        )

    def book(self, offer_id: str) -> Booking:
        """Book an offer: the booking is PENDING (capacity held) until COMMIT or CANCEL.

        Booking the same offer again answers the same booking.
        """
        offer = self.offer(offer_id)
        if offer is None:
            raise UnknownOffer(
                f"no offer {offer_id!r}: it was never made or was released after it expired",
                field="offer_id",
            )
        booking_id = f"bk-{offer_id}"

        owner = owner_of(offer.request)

        def decide(state: FleetState) -> tuple[FleetState, list[Event], Booking]:
            if booking_id in state.bookings:
                return state, [], state.bookings[booking_id]
            held = sum(
                1
                for b in state.bookings.values()
                if b.status == BookingStatus.PENDING and owner_of(b.request) == owner
            )
            if held >= self.config.max_pending_per_owner:
                raise RateLimited(
                    f"this app holds {held} bookings that are not committed; commit or cancel "
                    "them first",
                    retry_after_s=30,
                    field="offerId",
                    code="too_many_pending",
                )
            answer = self.dispatcher.confirm(state, offer, booking_id, BookingStatus.PENDING)
            if isinstance(answer, Rejection):
                raise BookingRejected(answer.reason.value, answer.message)
            new, booking = answer
            return new, [booking_event("pending", booking, state.now_s)], booking

        return self._change(decide)[1]

    def commit(self, booking_id: str) -> Booking:
        """PENDING -> CONFIRMED: the promise is made. Repeating it changes nothing.

        A PENDING booking past its time to live is expired instead (and the caller told so).
        """

        def decide(state: FleetState) -> tuple[FleetState, list[Event], Booking]:
            b = self.dispatcher.booking(state, booking_id)
            if b.status == BookingStatus.CONFIRMED:
                return state, [], b
            if b.status == BookingStatus.PENDING and self._pending_expired(state, b):
                new = self.dispatcher.cancel(state, booking_id, BookingStatus.EXPIRED)
                nb = new.bookings[booking_id]
                return new, [booking_event("expired", nb, state.now_s)], nb
            if b.status != BookingStatus.PENDING:
                raise BookingStateError(
                    f"booking {booking_id} is {b.status}; only a PENDING booking can be committed",
                    field="booking_id",
                )
            new = self.dispatcher.set_status(state, booking_id, BookingStatus.CONFIRMED)
            nb = new.bookings[booking_id]
            events = [booking_event("confirmed", nb, state.now_s)]
            if nb.fare is not None:  # the promise and its charge are stored together
                entry = billing.charge(nb, nb.fare, state.now_s)
                events.append(Event("ledger.charge", state.now_s, entry.to_json(), "ledger"))
            return new, events, nb

        booking = self._change(decide)[1]
        if booking.status == BookingStatus.EXPIRED:
            raise BookingStateError(
                f"booking {booking_id} expired: it was not committed within "
                f"{self.config.pending_ttl_s} s of booking",
                field="booking_id",
            )
        return booking

    def cancel(self, booking_id: str, by: str | None = None, reason: str = "") -> Booking:
        """Cancel before pickup; cancelling a cancelled booking again changes nothing. The
        rider's own cancellation is refunded as the tariff says; one made for the rider by a
        dispatcher (``by``, ``reason`` in the event) is refunded in full."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], Booking]:
            b = self.dispatcher.booking(state, booking_id)
            if b.status == BookingStatus.CANCELLED:
                return state, [], b
            new = self.dispatcher.cancel(state, booking_id)
            nb = new.bookings[booking_id]
            event = booking_event("cancelled", nb, state.now_s)
            if by is not None:
                event.data.update({"by": by, "reason": reason})
            refundable = by is not None or (
                self.pricer is not None
                and self.pricer.tariff.refundable(b.pickup_window[0], state.now_s)
            )
            return new, [event, *(_refund(b, state.now_s) if refundable else [])], nb

        return self._change(decide)[1]

    def offer(self, offer_id: str) -> Offer | None:
        """A kept offer, or None (never made, or released after it expired)."""
        return self.store.get_offer(offer_id)

    # ------------------------------------------------------------------ what happened
    def version(self) -> int | None:
        """The stored fleet's version (None before the first start): the store answers."""
        return self.store.version()

    def rejections(self, count: int = 50) -> list[Event]:
        """The latest rejected requests, newest first."""
        return [e for _, e in self.store.recent_events(count, ["request.rejected"])]

    def last_event_id(self) -> str:
        """The id of the newest event ("0-0" if there is none): where a live stream starts."""
        return next((eid for eid, _ in self.store.recent_events(1)), "0-0")

    def events_after(
        self, last_id: str, block_ms: int = 0, count: int = 100
    ) -> list[tuple[str, Event]]:
        """Events after ``last_id``, waiting up to ``block_ms`` for one (the live stream)."""
        return self.store.events_after(last_id, block_ms=block_ms, count=count)

    def lead_background(self, owner: str, ttl_s: int) -> bool:
        """Whether this process runs the background rounds (a lease in the store)."""
        return self.store.try_lead(owner, ttl_s)

    def record(self, day: date | None = None) -> NightRecord:
        """Service day ``day``'s state and journals (None: tonight's), from the store or, for
        an archived night, from its file; NotFound (field ``serviceDate``) when that night
        is not kept."""
        night = self.night()
        if day is None or day == night.day:
            return night.store
        found = self._nights.record_for(day) if self._nights is not None else None
        if found is None:
            raise NotFound(f"no service day {day.isoformat()} is kept", field="serviceDate")
        return found

    def ledger(self, day: date | None = None) -> billing.Ledger:
        """A night's charges and refunds (None: tonight's), checked (see
        :mod:`nachtbus.billing.ledger`)."""
        return billing.Ledger(
            billing.LedgerEntry.from_json(d) for d in self.record(day).journal("ledger")
        )

    def legs(self, day: date | None = None) -> list[Leg]:
        """A night's driven legs of every bus (None: tonight's; the distance and CO2
        account)."""
        return [Leg.from_json(d) for d in self.record(day).journal("legs")]

    def co2(self, params: Co2Params, day: date | None = None) -> NightCo2:
        """A night's CO2 account from its driven legs (None: tonight's; see
        :mod:`nachtbus.billing.co2`)."""
        state = self.snapshot() if day is None else self.record(day).load()
        bookings = state.bookings.values() if state is not None else ()
        direct = {b.booking_id: b.direct_distance_m for b in bookings}
        pax = {b.booking_id: b.request.passengers for b in bookings}
        return account(self.legs(day), direct, pax, params)

    def find_booking(self, booking_id: str, day: date | None = None) -> tuple[date, Booking]:
        """A booking and its service day: of night ``day`` (kept in the store or archived),
        or without ``day`` of tonight or another night still in the store, newest first
        (archived nights are searched only by date: one file each). UnknownBooking if none."""
        tonight = self.night().day
        days = [day] if day is not None else [tonight]
        if day is None and self._nights is not None:
            days += [d for d in reversed(self._nights.stored_days()) if d != tonight]
        for d in days:
            if d == tonight:
                b = self.snapshot().bookings.get(booking_id)
            else:
                b = self.record(d).booking(booking_id)  # one look-up, not the whole night
            if b is not None:
                return d, b
        raise UnknownBooking(f"no booking {booking_id!r}", field="id")

    def archive_nights(self, keep_nights: int) -> list[date]:
        """Move every night but tonight and the ``keep_nights`` before it from the store to
        the archive (see :mod:`dispatch.archive`); looked at once per service day. The
        nights moved. A failure (a full disk, say) is logged, leaves the nights in the
        store, and is tried again an hour later."""
        if self._nights is None or keep_nights < 1:
            return []
        today = self.night().day
        if self._archived_on == today or time.monotonic() < self._archive_retry_at:
            return []
        try:
            moved = self._nights.archive_before(today - timedelta(days=keep_nights))
        except (OSError, NachtbusError) as exc:
            log.exception("old nights not archived (they stay in the store); again in an hour")
            self._archive_retry_at = time.monotonic() + ARCHIVE_RETRY_S
            self.archive_error = f"{type(exc).__name__}: {exc}"[:300]
            return []
        self._archived_on = today
        self.archive_error = None
        return moved

    def _odometer(
        self, state: FleetState, vehicle_id: str, node: int, at_s: int, *, reposition: bool = False
    ) -> tuple[int, list[Event]]:
        """The leg the bus drove to ``node`` since the last stop it served (or its depot)."""
        vs = state.states[vehicle_id]
        prev = vs.odometer_node
        if prev is None:
            prev = state.vehicles[vehicle_id].depot.node
        if prev == node:
            return node, []
        times = self.dispatcher.times
        onboard = {
            b.booking_id: b.request.passengers
            for b in state.bookings.values()
            if b.status == BookingStatus.STARTED and b.vehicle_id == vehicle_id
        }
        travel = int(times.times_s([prev, node])[0, 1])
        leg = Leg(
            vehicle_id,
            prev,
            node,
            at_s - travel,
            at_s,
            times.distance_m(prev, node),
            onboard,
            reposition and not onboard,
        )
        return node, [Event("vehicle.leg", at_s, leg.to_json(), "legs")]

    @staticmethod
    def _at_odometer(state: FleetState, vehicle_id: str, node: int) -> FleetState:
        states = dict(state.states)
        states[vehicle_id] = replace(states[vehicle_id], odometer_node=node)
        return state.with_derived(states=states)

    def _pending_expired(self, state: FleetState, b: Booking) -> bool:
        return state.now_s - b.updated_s > self.config.pending_ttl_s

    def expire_pending(self) -> list[str]:
        """Release PENDING bookings not committed in time (their capacity is freed)."""
        state = self.snapshot()
        due = [
            b.booking_id
            for b in state.bookings.values()
            if b.status == BookingStatus.PENDING and self._pending_expired(state, b)
        ]
        return self._expire(due) if due else []

    def _expire(self, booking_ids: list[str]) -> list[str]:
        def decide(state: FleetState) -> tuple[FleetState, list[Event], list[str]]:
            done, events = [], []
            for bid in booking_ids:
                b = state.bookings.get(bid)
                if b is None or b.status != BookingStatus.PENDING:
                    continue
                state = self.dispatcher.cancel(state, bid, BookingStatus.EXPIRED)
                events.append(booking_event("expired", state.bookings[bid], state.now_s))
                done.append(bid)
            return state, events, done

        return self._change(decide)[1]

    # ------------------------------------------------------------------ drivers
    def position(self, vehicle_id: str, lat: float, lon: float) -> FleetState:
        """The bus reports its position (snapped to the road it is on)."""
        place = self.locator.place(lat, lon, "position", in_area=False)

        def decide(state: FleetState) -> tuple[FleetState, list[Event], None]:
            new = self.dispatcher.vehicle_position(
                state, vehicle_id, place.node, state.now_s, lat, lon
            )
            data = {"vehicle_id": vehicle_id, "lat": lat, "lon": lon}
            return new, [Event("vehicle.position", state.now_s, data)], None

        return self._recover_if_late(self._change(decide)[0], vehicle_id)

    @staticmethod
    def _late(b: Booking) -> str | None:
        """Which promise of a booking the forecast no longer keeps: "pickup", "dropoff" or
        None."""
        if (
            b.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED)
            and b.pickup_eta_s is not None
            and b.pickup_eta_s > b.pickup_window[1]
        ):
            return "pickup"
        if b.status.open and b.dropoff_eta_s is not None and b.dropoff_eta_s > b.latest_dropoff_s:
            return "dropoff"
        return None

    def recover(self, vehicle_id: str, why: str = DELAYED_ON_THE_ROAD) -> FleetState:
        """A bus's forecast breaks a promise (it is late): each rider it has not picked up
        whose promise it cannot keep is put on another bus that keeps it
        (``booking.moved`` by "re-planning"); whoever is still late is told at once
        (``booking.late_notice``: the new expected time and ``why``; the booking's
        ``late_notice``), again when the expected time slips by more than 5 min."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], None]:
            new, events = state, []
            others = self.dispatcher.serving(state, but=vehicle_id)
            for st in state.plans[vehicle_id].stops:
                b = new.bookings[st.booking_id]
                if st.type != StopType.PICKUP or self._late(b) != "pickup" or not others:
                    continue
                answer = self.dispatcher.rewindow(
                    new, b.booking_id, b.request, b.pickup_window, others
                )
                if isinstance(answer, FleetState):
                    new = answer
                    events.append(
                        moved_event(
                            new.bookings[b.booking_id],
                            vehicle_id,
                            "re-planning",
                            state.now_s,
                            f"{vehicle_id} is late ({why})",
                        )
                    )
            bookings, told_now = dict(new.bookings), False
            for st in new.plans[vehicle_id].stops:
                b = bookings[st.booking_id]
                which = self._late(b)
                if which is None:
                    continue
                expected = b.pickup_eta_s if which == "pickup" else b.dropoff_eta_s
                assert expected is not None
                told = b.late_notice
                if told is not None and told[2] == which and expected - told[1] < 300:
                    continue  # told already, and it has not slipped much since
                bookings[b.booking_id] = replace(b, late_notice=(state.now_s, expected, which, why))
                told_now = True
                promised = b.pickup_window[1] if which == "pickup" else b.latest_dropoff_s
                events.append(
                    Event(
                        "booking.late_notice",
                        state.now_s,
                        {
                            "booking_id": b.booking_id,
                            "vehicle_id": vehicle_id,
                            "status": b.status.value,
                            "stop": which,
                            "expected_s": expected,
                            "promised_s": promised,
                            "late_s": expected - promised,
                            "reason": why,
                        },
                    )
                )
            if new is state and not events:
                return state, [], None
            if told_now:
                new = (
                    new.evolve(bookings=bookings)
                    if new is state
                    else new.with_derived(bookings=bookings)
                )
            return new, events, None

        return self._change(decide)[0]

    def rebalance(self, forecast: DemandForecast, params: RebalanceParams) -> int:
        """Send idle buses towards the zones where riders are expected next (see
        :mod:`dispatch.rebalancing`); returns how many buses got a new target."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], int]:
            times = self.dispatcher.times
            new, events = state, []
            for vid, to in targets(state, forecast, times, params).items():
                old = state.plans[vid].reposition
                if (to is None and old is None) or (to and old and to.node == old.node):
                    continue
                eta = None
                if to is not None:
                    free = self.dispatcher.problems.free_from(new, vid)
                    eta = free + int(times.times_s([new.states[vid].node, to.node])[0, 1])
                new = self.dispatcher.reposition(new, vid, to, eta)
                data = {
                    "vehicle_id": vid,
                    "to": None if to is None else {"lat": to.lat, "lon": to.lon},
                    "eta_s": eta,
                }
                events.append(Event("vehicle.reposition", state.now_s, data))
            return new, events, len(events)

        return self._change(decide)[1]

    def rebalance_from_history(
        self, nights: int, params: RebalanceParams, cell_m: float = 2000.0
    ) -> int:
        """Rebalance with the demand of the last ``nights`` service days in the store (where
        and when their riders were to be picked up); nothing before there is a history."""
        night = self.night()
        if self._forecast is None or self._forecast[0] != night.day:
            self._forecast = (night.day, self._history(night.day, nights, cell_m))
        forecast = self._forecast[1]
        if forecast is None or not forecast.zones():
            return 0
        return self.rebalance(forecast, params)

    def _history(self, day: date, nights: int, cell_m: float) -> CellForecast | None:
        if self._nights is None:
            return None
        pickups: list[tuple[float, float, int]] = []
        seen = 0
        for k in range(1, nights + 1):
            record = self._nights.record_for(day - timedelta(days=k))
            past = record.load() if record is not None else None
            if past is None:
                continue
            seen += 1
            pickups.extend(
                (b.request.origin.lat, b.request.origin.lon, b.pickup_window[0])
                for b in past.bookings.values()
                if b.status not in (BookingStatus.PENDING, BookingStatus.EXPIRED)
            )
        if not seen:
            return None
        return CellForecast(
            pickups,
            seen,
            lambda lat, lon: self.locator.place(lat, lon, "zone", in_area=False),
            cell_m=cell_m,
        )

    def heading(
        self, vehicle_id: str, lat: float, lon: float, free_at_s: int, *, reposition: bool = True
    ) -> FleetState:
        """The bus reports the point it is driving to and when it is there (a repositioning
        bus's tablet, once a stretch; or a bus whose next stop was cancelled on the way, when
        it cannot turn before): plans start there. ``reposition``: the empty drive counts as
        repositioning km."""
        node = self.locator.place(lat, lon, "position", in_area=False).node

        def decide(state: FleetState) -> tuple[FleetState, list[Event], None]:
            at, legs = self._odometer(state, vehicle_id, node, free_at_s, reposition=reposition)
            new = self.dispatcher.heading(state, vehicle_id, node, free_at_s, lat, lon)
            new = self._at_odometer(new, vehicle_id, at)
            data = {"vehicle_id": vehicle_id, "lat": lat, "lon": lon}
            return new, [*legs, Event("vehicle.position", state.now_s, data)], None

        return self._change(decide)[0]

    def arrived(self, vehicle_id: str, booking_id: str, stop: StopType) -> FleetState:
        """The bus is at a stop of its plan: its position becomes the stop's."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], None]:
            idx = self.dispatcher.stop_index(state, vehicle_id, booking_id, stop)
            st = state.plans[vehicle_id].stops[idx]
            node, legs = self._odometer(state, vehicle_id, st.place.node, state.now_s)
            new = self.dispatcher.vehicle_position(
                state, vehicle_id, st.place.node, state.now_s, st.place.lat, st.place.lon,
                arrived=True,
            )  # fmt: skip
            new = self._at_odometer(new, vehicle_id, node)
            data = {"vehicle_id": vehicle_id, "booking_id": booking_id, "stop": stop.value}
            return new, [*legs, Event("vehicle.arrived", state.now_s, data)], None

        return self._change(decide)[0]

    def stop_done(self, vehicle_id: str, booking_id: str, stop: StopType) -> Booking:
        """A rider boarded (pickup) or alighted (drop-off)."""
        kind = "started" if stop == StopType.PICKUP else "finished"

        def decide(state: FleetState) -> tuple[FleetState, list[Event], Booking]:
            idx = self.dispatcher.stop_index(state, vehicle_id, booking_id, stop)
            at = state.plans[vehicle_id].stops[idx].place.node
            node, legs = self._odometer(state, vehicle_id, at, state.now_s)
            new = self.dispatcher.stop_done(state, vehicle_id, booking_id, stop, state.now_s)
            new = self._at_odometer(new, vehicle_id, node)
            b = new.bookings[booking_id]
            return new, [*legs, booking_event(kind, b, state.now_s)], b

        new, booking = self._change(decide)
        self._recover_if_late(new, vehicle_id)
        return booking

    def _recover_if_late(
        self, state: FleetState, vehicle_id: str, why: str = DELAYED_ON_THE_ROAD
    ) -> FleetState:
        """After a report that moved the bus's forecast: recover and tell if it is late."""
        if any(self._late(state.bookings[st.booking_id]) for st in state.plans[vehicle_id].stops):
            return self.recover(vehicle_id, why)
        return state

    def retime_not_left(self, min_shift_s: int = RETIME_MIN_SHIFT_S) -> list[str]:
        """Move on the times of the buses that have not left for their next stop.

        A bus whose plan was made since its last report (its first stop is not fixed: it has
        not reported driving towards it) is planned to leave from now on
        (:meth:`~dispatch.snapshot.SnapshotBuilder.free_from`), but its stops keep the times
        of when the plan was made, which the clock leaves behind while the bus stands. Each
        background round gives every such bus whose first stop is now ``min_shift_s`` or
        more later than planned its times from now (event ``vehicle.retimed``), so that its
        riders and the driver see when it can come; a promise it can then no longer keep is
        recovered as a late bus's (:meth:`recover`: another bus that keeps it, else the rider
        is told). A bus whose tablet sends no positions but whose driver reports stops
        (:attr:`~nachtbus.domain.VehicleState.placed_by_stops`) is left as it is: between two
        stops nothing tells whether it has left. Returns the buses re-timed."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], list[str]]:
            waiting = [
                vid
                for vid, plan in sorted(state.plans.items())
                if plan.stops
                and plan.fixed == 0
                and state.vehicles[vid].out_of_service is None
                and not state.states[vid].placed_by_stops
            ]
            if not waiting:
                return state, [], []
            fresh = self.dispatcher.refresh_etas(state, waiting)
            behind = [
                vid
                for vid in waiting
                if fresh.plans[vid].stops[0].eta_s - state.plans[vid].stops[0].eta_s >= min_shift_s
            ]
            if not behind:
                return state, [], []
            new = self.dispatcher.refresh_etas(state, behind)
            events = [
                Event(
                    "vehicle.retimed",
                    state.now_s,
                    {
                        "vehicle_id": vid,
                        "was_s": state.plans[vid].stops[0].eta_s,
                        "expected_s": new.plans[vid].stops[0].eta_s,
                        "booking_id": new.plans[vid].stops[0].booking_id,
                    },
                )
                for vid in behind
            ]
            return new, events, behind

        state, behind = self._change(decide)
        for vid in behind:
            state = self._recover_if_late(state, vid, NOT_LEFT)
        return behind

    def no_show(self, vehicle_id: str, booking_id: str) -> Booking:
        def decide(state: FleetState) -> tuple[FleetState, list[Event], Booking]:
            new = self.dispatcher.no_show(state, vehicle_id, booking_id, state.now_s)
            # the bus drove to the pickup and waited there: that leg is driven
            at = state.bookings[booking_id].request.origin.node
            node, legs = self._odometer(state, vehicle_id, at, state.now_s)
            new = self._at_odometer(new, vehicle_id, node)
            b = new.bookings[booking_id]
            return new, [*legs, booking_event("no_show", b, state.now_s)], b

        return self._change(decide)[1]

    def shift(self, vehicle_id: str, start: bool) -> None:
        """Shift start (recorded; the bus serves from its planned shift start, and an early
        shift end is undone while the planned shift lasts) or shift end (only with no stop
        left; no trip is offered on this bus afterwards, until a shift start)."""
        if start:

            def begin(state: FleetState) -> tuple[FleetState, list[Event], None]:
                new = self.dispatcher.start_shift(state, vehicle_id, state.now_s)
                event = Event("vehicle.shift_start", state.now_s, {"vehicle_id": vehicle_id})
                if new is state:
                    self.store.append_events([event])
                    return state, [], None
                return new, [event], None

            self._change(begin)
            return

        def decide(state: FleetState) -> tuple[FleetState, list[Event], None]:
            new = self.dispatcher.end_shift(state, vehicle_id, state.now_s)
            depot = state.vehicles[vehicle_id].depot.node
            node, legs = self._odometer(state, vehicle_id, depot, state.now_s)  # back to depot
            new = self._at_odometer(new, vehicle_id, node)
            event = Event("vehicle.shift_end", state.now_s, {"vehicle_id": vehicle_id})
            return new, [*legs, event], None

        self._change(decide)

    def take_out(self, vehicle_id: str, reason: str, by: str) -> dict[str, object]:
        """A bus out of service (a driver's breakdown report, or the control room): its riders
        not yet on board go to other buses with their promises where one can take them
        (``booking.moved``); the others are cancelled with a full refund
        (``booking.cancelled``, reason) and get new offers for the same trip from now
        (``booking.new_offers``: offer ids the rider app can book, if any). The riders on
        board stay with the bus: the alert ``vehicle.out_of_service`` has them and its last
        position. Returns what that event says."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], dict[str, object]]:
            self.dispatcher.check_vehicle(state, vehicle_id)
            if state.vehicles[vehicle_id].out_of_service is not None:
                raise BookingStateError(
                    f"{vehicle_id} is out of service already", field="vehicle_id"
                )
            new, moved, cancelled = self.dispatcher.take_out(state, vehicle_id, reason)
            st = state.states[vehicle_id]
            summary: dict[str, object] = {
                "vehicle_id": vehicle_id,
                "reason": reason,
                "by": by,
                "lat": st.lat,
                "lon": st.lon,
                "on_board": sorted(
                    b.booking_id
                    for b in state.bookings.values()
                    if b.vehicle_id == vehicle_id and b.status == BookingStatus.STARTED
                ),
                "replanned": moved,
                "cancelled": cancelled,
            }
            events = [Event("vehicle.out_of_service", state.now_s, summary)]
            events.extend(
                moved_event(new.bookings[bid], vehicle_id, by, state.now_s, reason) for bid in moved
            )
            for bid in cancelled:
                b = state.bookings[bid]
                event = booking_event("cancelled", new.bookings[bid], state.now_s)
                event.data.update({"by": by, "reason": f"bus out of service: {reason}"})
                events.append(event)
                events.extend(_refund(b, state.now_s))
            return new, events, summary

        _, summary = self._change(decide)
        state = self.snapshot()
        for bid in summary["cancelled"]:  # type: ignore[attr-defined]
            b = state.bookings[bid]
            again = replace(
                b.request,
                request_id=f"{b.request.request_id}-again",
                requested_at_s=state.now_s,
                pickup_at_s=None if b.pickup_window[0] <= state.now_s else b.pickup_window[0],
            )
            try:
                offers, _ = self.options(again)
            except NachtbusError:
                offers = []
            self.store.append_events(
                [
                    Event(
                        "booking.new_offers",
                        state.now_s,
                        {
                            "booking_id": bid,
                            "vehicle_id": vehicle_id,
                            "offers": [o.offer_id for o in offers],
                            "windows": [list(o.pickup_window) for o in offers],
                        },
                    )
                ]
            )
        return summary

    def back_in_service(self, vehicle_id: str, by: str) -> None:
        """The bus takes trips again (``vehicle.in_service``)."""

        def decide(state: FleetState) -> tuple[FleetState, list[Event], None]:
            new = self.dispatcher.back_in_service(state, vehicle_id)
            if new is state:
                return state, [], None
            data = {"vehicle_id": vehicle_id, "by": by}
            return new, [Event("vehicle.in_service", state.now_s, data)], None

        self._change(decide)

    # ------------------------------------------------------------------ background
    def reoptimise(self, only_if_changed: bool = False) -> bool:
        """One round of re-optimisation; True if better plans were committed.

        ``only_if_changed`` skips the round when no decision was committed since the last one
        (the background loop does so, to leave the CPU to quotes on a quiet fleet).
        """
        night = self.night()
        loaded = night.store.load()
        if loaded is None:
            return False
        if only_if_changed and self._last_reopt == (night.day, loaded.version):
            return False
        self._last_reopt = (night.day, loaded.version)
        state = night.dispatcher.advance_clock(loaded, self.clock.now_s())
        new = night.dispatcher.reoptimise(state)
        if new is None:
            return False
        event = Event("plans.reoptimised", state.now_s, {"version": new.version})
        if not night.store.commit(new, loaded.version, [event]):
            return False
        self._last_reopt = (night.day, new.version)  # its own commit is no reason for another
        return True


def moved_event(
    b: Booking, from_vehicle_id: str | None, by: str, at_s: int, reason: str | None = None
) -> Event:
    """``booking.moved``: a booking put on another bus (``b`` as it is now), by whom, why."""
    data: dict[str, object] = {
        "booking_id": b.booking_id,
        "from_vehicle_id": from_vehicle_id,
        "vehicle_id": b.vehicle_id,
        "status": b.status.value,
        "by": by,
    }
    if reason is not None:
        data["reason"] = reason
    return Event("booking.moved", at_s, data)


def _refund(b: Booking, at_s: int) -> list[Event]:
    """The full refund of a confirmed booking's fare (none for a booking never charged)."""
    if b.status != BookingStatus.CONFIRMED or b.fare is None:
        return []
    entry = billing.refund(billing.charge(b, b.fare, b.updated_s), at_s)
    return [Event("ledger.refund", at_s, entry.to_json(), "ledger")]


def owner_of(request: BookingRequest) -> str:
    """Who asked: the rider app's id (the part of ``rider_id`` before its ``/``)."""
    return request.rider_id.split("/", 1)[0]


def _with_pickup(request: BookingRequest, pickup_at_s: int) -> BookingRequest:
    return replace(request, pickup_at_s=pickup_at_s)
