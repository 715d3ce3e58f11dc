"""Domain objects -> API schemas: times as local ISO date-times, places as road points."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import numpy as np

from api import schemas as s
from api.train_feed import FeedStatus
from dispatch.service import OverdueBus, RoundsStatus, StoreStatus, owner_of
from graphs.network import RoadNetwork
from graphs.snapping import ServiceArea
from nachtbus.billing.co2 import TripCo2
from nachtbus.billing.ledger import Ledger, LedgerEntry, Receipt
from nachtbus.clock import DAY_START_S, Clock, ManualClock, to_datetime
from nachtbus.domain import (
    Booking,
    BookingStatus,
    Connection,
    ConnectionKind,
    Fare,
    FleetState,
    Offer,
    Place,
    Plan,
    PlannedStop,
    StopType,
)
from nachtbus.errors import NachtbusError
from routing.matrix import TravelTimes


def fare_view(f: Fare | None) -> s.FareOut | None:
    if f is None:
        return None
    return s.FareOut(
        currency=f.currency,
        total_cents=f.total_cents,
        vat_percent=f.vat_percent,
        vat_cents=f.vat_cents,
        net_cents=f.net_cents,
        tariff=f.tariff,
        lines=[
            s.FareLineOut(
                traveler=x.traveller, kind=x.kind, description=x.text, amount_cents=x.cents
            )
            for x in f.lines
        ],
    )


STORE_FULL_WARN = 0.8  # of the store's memory ceiling
ROUNDS_STALE_S = 600  # no round gone through for this long, after one did tonight
MB = 2**20  # as Redis counts its maxmemory (NACHTBUS_STORE_MAXMEMORY_MB)


class Views:
    """Builds the API's answers for one service (its clock and roads)."""

    def __init__(
        self,
        clock: Clock,
        times: TravelTimes,
        train_buffer_s: int = 0,
        no_show_due: Callable[[FleetState, str, str], int] | None = None,
    ) -> None:
        """``train_buffer_s``: the policy's buffer before a train's departure (at risk);
        ``no_show_due``: when a bus arrived at a pickup may report a NO_SHOW (the
        dispatcher's rule), for the driver's page."""
        self.clock = clock
        self.train_buffer_s = train_buffer_s
        self.no_show_due = no_show_due
        self.times = times
        self._route_nodes: Callable[[int, int], tuple[tuple[float, float], ...]] = lru_cache(
            maxsize=4096
        )(lambda u, v: self.times.route(u, v).polyline)

    def of_day(self, day: date) -> Views:
        """The same views for service day ``day`` (a past night's times and date)."""
        if day == self.clock.service_date():
            return self
        other = copy.copy(self)
        other.clock = ManualClock(DAY_START_S, day, self.clock.tz.key)
        return other

    def status(
        self,
        now: datetime,
        st: StoreStatus,
        rounds: RoundsStatus,
        feed: FeedStatus | None,
        overdue: Sequence[OverdueBus] = (),
    ) -> s.StatusOut:
        """The service's own state for the control room, with a warning for each thing that
        needs a look."""
        used, ceiling = st.used_bytes, st.max_bytes
        warnings = []
        for bus in overdue:
            what = "pickup" if bus.stop == StopType.PICKUP else "drop-off"
            if bus.not_left:
                warnings.append(
                    f"{bus.vehicle_id} has not left for its next stop ({what} of "
                    f"{bus.booking_id}, {self._hm(bus.expected_s)} at the earliest; last heard "
                    f"{self._hm(bus.heard_s)}) and can no longer keep a promise: call the "
                    "driver. Its times run from now; riders another bus can reach in time "
                    "are moved to it, the others are told. If it cannot go on, take it out "
                    "of service"
                )
                continue
            warnings.append(
                f"{bus.vehicle_id} has not reported reaching its next stop ({what} of "
                f"{bus.booking_id}, expected {self._hm(bus.expected_s)}; last heard "
                f"{self._hm(bus.heard_s)}): call the driver; its plan still assumes it on "
                "time. If it cannot go on, take it out of service: its riders not on board "
                "are re-planned"
            )
        if ceiling and used >= STORE_FULL_WARN * ceiling:
            warnings.append(
                f"the store is {used / ceiling:.0%} full ({used / MB:.0f} of {ceiling / MB:.0f} "
                f"MB; {st.nights_stored} nights kept, NACHTBUS_KEEP_NIGHTS); when full, "
                "bookings are refused"
            )
        if st.archive_error:
            warnings.append(f"old nights could not be archived: {st.archive_error}")
        warnings.extend(st.troubles)
        ok_at, error_at = rounds.last_ok_at, rounds.last_error_at
        if error_at is not None and (ok_at is None or error_at > ok_at):
            warnings.append(f"the last background round failed: {rounds.last_error}")
        elif ok_at is not None and (now - ok_at).total_seconds() > ROUNDS_STALE_S:
            since = ok_at.astimezone(self.clock.tz).strftime("%H:%M")
            warnings.append(f"no background round has gone through since {since}")
        if (
            feed is not None
            and feed.last_error_at is not None
            and (feed.last_ok_at is None or feed.last_error_at > feed.last_ok_at)
        ):
            warnings.append(f"the trains' delay feed fails: {feed.last_error}")
        return s.StatusOut(
            now=now,
            warnings=warnings,
            store=s.StoreStatusOut(
                used_mb=round(used / MB, 2),
                max_mb=round(ceiling / MB, 2) if ceiling else None,
                nights_stored=st.nights_stored,
                archive_error=st.archive_error,
            ),
            rounds=s.RoundsOut(
                rounds=rounds.rounds,
                last_ok_at=ok_at,
                last_error_at=error_at,
                last_error=rounds.last_error,
            ),
            train_feed=None if feed is None else self.train_feed(feed),
        )

    def _hm(self, seconds: int) -> str:
        return to_datetime(self.clock, seconds).strftime("%H:%M")

    @staticmethod
    def train_feed(st: FeedStatus) -> s.TrainFeedOut:
        return s.TrainFeedOut(
            url=st.url,
            last_ok_at=st.last_ok_at,
            last_error=st.last_error,
            last_error_at=st.last_error_at,
            trains_late=st.trains_late,
        )

    def t(self, seconds: int) -> datetime:
        return to_datetime(self.clock, seconds)

    def opt(self, seconds: int | None) -> datetime | None:
        return None if seconds is None else self.t(seconds)

    @staticmethod
    def point(p: Place) -> dict[str, Any]:
        return {"lat": round(p.lat, 6), "lon": round(p.lon, 6), "street": p.label}

    # ------------------------------------------------------------------ riders
    def offer(self, o: Offer) -> s.OfferOut:
        r = o.request
        return s.OfferOut(
            offer_id=o.offer_id,
            valid_until=self.t(o.expires_s),
            pickup=s.PickupInfo(
                **self.point(r.origin),
                window_start=self.t(o.pickup_window[0]),
                window_end=self.t(o.pickup_window[1]),
                expected_time=self.t(o.pickup_eta_s),
            ),
            dropoff=s.DropoffInfo(
                **self.point(r.destination),
                expected_time=self.t(o.dropoff_eta_s),
                latest_time=self.t(o.latest_dropoff_s),
            ),
            nr_of_travelers=r.passengers,
            wheelchairs=r.wheelchairs,
            prams=r.prams,
            direct_travel_time_s=o.direct_time_s,
            max_ride_time_s=o.max_ride_s,
            fare=fare_view(o.fare),
            alternative=o.shift_s != 0,
            shift_s=o.shift_s,
            connection=self.connection(r.connection, o.dropoff_eta_s),
        )

    def connection(
        self, c: Connection | None, dropoff_eta_s: int | None = None
    ) -> s.ConnectionOut | None:
        """The train of a trip; ``at_risk`` when a rider to it is expected after the buffer
        before its expected departure."""
        if c is None:
            return None
        at_risk = (
            c.kind == ConnectionKind.TO_TRAIN
            and dropoff_eta_s is not None
            and dropoff_eta_s > c.expected_s - self.train_buffer_s
        )
        return s.ConnectionOut(
            direction=c.kind.value,
            trip_id=c.trip_id,
            route=c.route,
            headsign=c.headsign,
            stop_id=c.stop_id,
            station=c.station,
            scheduled_time=self.t(c.scheduled_s),
            expected_time=self.t(c.expected_s),
            delay_s=c.delay_s,
            at_risk=at_risk,
        )

    def late_notice(self, b: Booking) -> s.LateNoticeOut | None:
        if b.late_notice is None:
            return None
        told, expected, stop, why = b.late_notice
        return s.LateNoticeOut(
            stop=stop, told_at=self.t(told), expected_time=self.t(expected), reason=why
        )

    def waiting_for_train(self, state: FleetState, plan: Plan) -> s.ConnectionOut | None:
        """The train a bus's next stop waits for (a pickup of a rider off a train not yet in)."""
        if not plan.stops or plan.stops[0].type != StopType.PICKUP:
            return None
        c = state.bookings[plan.stops[0].booking_id].request.connection
        if c is None or c.kind != ConnectionKind.FROM_TRAIN or c.expected_s <= state.now_s:
            return None
        return self.connection(c)

    def position(self, state: FleetState, vehicle_id: str) -> s.VehiclePosition:
        st = state.states[vehicle_id]
        return s.VehiclePosition(vehicle_id=vehicle_id, lat=st.lat, lon=st.lon, at=self.t(st.at_s))

    @staticmethod
    def expected(state: FleetState, b: Booking) -> tuple[int | None, int | None]:
        """The pickup and drop-off times the rider is shown: the plan's, but never in the
        past for a stop not reached yet (a bus overdue at its stop, not heard of since, is
        due now at the soonest, and the ride takes at least the direct time after it)."""
        pickup, dropoff = b.pickup_eta_s, b.dropoff_eta_s
        if b.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED) and pickup is not None:
            pickup = max(pickup, state.now_s)
            if dropoff is not None:
                dropoff = max(dropoff, pickup + b.direct_time_s)
        elif b.status == BookingStatus.STARTED and dropoff is not None:
            dropoff = max(dropoff, state.now_s)
        return pickup, dropoff

    def booking(self, state: FleetState, b: Booking) -> s.BookingOut:
        r = b.request
        pickup_s, dropoff_s = self.expected(state, b)
        return s.BookingOut(
            id=b.booking_id,
            state=b.status.value,
            service_date=self.clock.service_date().isoformat(),
            pickup=s.PickupInfo(
                **self.point(r.origin),
                window_start=self.t(b.pickup_window[0]),
                window_end=self.t(b.pickup_window[1]),
                expected_time=self.opt(pickup_s),
            ),
            dropoff=s.DropoffInfo(
                **self.point(r.destination),
                expected_time=self.opt(dropoff_s),
                latest_time=self.t(b.latest_dropoff_s),
            ),
            nr_of_travelers=r.passengers,
            wheelchairs=r.wheelchairs,
            prams=r.prams,
            customer_id=customer_of(b),
            vehicle=self.position(state, b.vehicle_id) if b.status.open and b.vehicle_id else None,
            picked_up_at=self.opt(b.picked_up_s),
            dropped_off_at=self.opt(b.dropped_off_s),
            fare=fare_view(b.fare),
            connection=self.connection(r.connection, b.dropoff_eta_s),
            late_notice=self.late_notice(b),
        )

    # ------------------------------------------------------------------ billing
    def entry(self, e: LedgerEntry) -> s.LedgerEntryOut:
        return s.LedgerEntryOut(
            entry_id=e.entry_id,
            booking_id=e.booking_id,
            kind=e.kind.value,
            at=self.t(e.at_s),
            amount_cents=e.amount_cents,
            vat_cents=e.vat_cents,
            currency=e.currency,
        )

    def receipt(self, rc: Receipt, trip: TripCo2 | None) -> s.ReceiptOut:
        b, r = rc.booking, rc.booking.request
        co2 = None
        if trip is not None:
            co2 = s.TripCo2Out(
                bus_km=round(trip.bus_km, 3),
                passenger_km=round(trip.passenger_km, 3),
                bus_g_co2=round(trip.bus_g, 1),
                car_g_co2=round(trip.car_g, 1),
                saved_g_co2=round(trip.saved_g, 1),
            )
        return s.ReceiptOut(
            booking_id=b.booking_id,
            state=b.status.value,
            service_date=self.clock.service_date().isoformat(),
            **{"from": s.StopPoint(**self.point(r.origin))},
            to=s.StopPoint(**self.point(r.destination)),
            picked_up_at=self.opt(b.picked_up_s),
            dropped_off_at=self.opt(b.dropped_off_s),
            nr_of_travelers=r.passengers,
            fare=fare_view(rc.fare),
            payments=[self.entry(e) for e in rc.entries],
            paid_cents=rc.paid_cents,
            vat_cents=rc.vat_cents,
            co2=co2,
        )

    def ledger(self, ledger: Ledger) -> s.LedgerOut:
        t = ledger.totals()
        return s.LedgerOut(
            service_date=self.clock.service_date().isoformat(),
            totals=s.LedgerTotalsOut(
                charges_cents=t.charges_cents,
                refunds_cents=t.refunds_cents,
                balance_cents=t.balance_cents,
                vat_cents=t.vat_cents,
                net_cents=t.net_cents,
                entries=t.entries,
            ),
            entries=[self.entry(e) for e in ledger.entries],
        )

    # ------------------------------------------------------------------ drivers
    def stop(self, state: FleetState, st: PlannedStop, vehicle_id: str | None = None) -> s.StopOut:
        """A planned stop; with ``vehicle_id``, a pickup the bus has arrived at also says
        from when a NO_SHOW may be reported."""
        prams = state.bookings[st.booking_id].request.prams
        no_show_from = None
        vs = state.states.get(vehicle_id or "")
        if (
            vehicle_id is not None
            and self.no_show_due is not None
            and st.type == StopType.PICKUP
            and vs is not None
            and vs.arrived_node == st.place.node
        ):
            try:
                no_show_from = self.t(self.no_show_due(state, vehicle_id, st.booking_id))
            except NachtbusError:  # not arrived at this one (another stop at the same node)
                no_show_from = None
        return s.StopOut(
            no_show_from=no_show_from,
            booking_id=st.booking_id,
            type=st.type.value,
            **self.point(st.place),
            expected_time=self.t(st.eta_s),
            window_start=self.t(st.window[0]),
            window_end=self.t(st.window[1]),
            nr_of_travelers=st.passengers,
            wheelchairs=st.wheelchairs,
            prams=prams,
        )

    @staticmethod
    def on_board(state: FleetState, vehicle_id: str) -> list[str]:
        return sorted(
            b.booking_id
            for b in state.bookings.values()
            if b.status == BookingStatus.STARTED and b.vehicle_id == vehicle_id
        )

    def way(
        self, state: FleetState, plan: Plan
    ) -> tuple[list[tuple[float, float]], list[s.DirectionOut]]:
        """The road from the bus to its next stop (or reposition): points and streets."""
        start = state.states[plan.vehicle_id].node
        target = (
            plan.stops[0].place.node
            if plan.stops
            else (plan.reposition.node if plan.reposition is not None else start)
        )
        if target == start:
            return [], []
        route = self.times.route(start, target)
        net = self.times.network
        streets: list[s.DirectionOut] = []
        for u, v in itertools.pairwise(route.nodes):
            e = net.edge_index(u, v)
            name, metres = net.street_name(e), int(net.length_cm[e]) // 100
            if streets and streets[-1].street == name:
                last = streets.pop()
                metres += last.distance_m
            streets.append(s.DirectionOut(street=name, distance_m=metres))
        points = [(round(a, 5), round(b, 5)) for a, b in route.polyline]
        return points, streets

    def plan(self, state: FleetState, vehicle_id: str) -> s.PlanOut:
        plan = state.plans[vehicle_id]
        path, directions = self.way(state, plan)
        vs = state.states[vehicle_id]
        return s.PlanOut(
            vehicle_id=vehicle_id,
            now=self.t(state.now_s),
            arrived_at_next=bool(plan.stops) and vs.arrived_node == plan.stops[0].place.node,
            position=self.position(state, vehicle_id),
            path=path,
            directions=directions,
            stops=[self.stop(state, st, vehicle_id) for st in plan.stops],
            on_board=self.on_board(state, vehicle_id),
            shift_end=self.t(state.vehicles[vehicle_id].shift_end_s),
            reposition=None
            if plan.reposition is None
            else s.RepositionOut(
                **self.point(plan.reposition),
                expected_time=None
                if plan.reposition_eta_s is None
                else self.t(plan.reposition_eta_s),
            ),
        )

    # ------------------------------------------------------------------ dispatchers
    def route(self, state: FleetState, plan: Plan) -> list[tuple[float, float]]:
        """The bus's planned path through its stops as (lat, lon) points."""
        nodes = [state.states[plan.vehicle_id].node, *(st.place.node for st in plan.stops)]
        points: list[tuple[float, float]] = []
        for u, v in itertools.pairwise(nodes):
            if u != v:
                points.extend(self._route_nodes(u, v))
        return [(round(a, 5), round(b, 5)) for a, b in points]

    @staticmethod
    def lateness(b: Booking) -> int:
        """Forecast lateness beyond the promise (pickup window end, latest arrival), seconds."""
        late = 0
        if b.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED) and b.pickup_eta_s:
            late = max(late, b.pickup_eta_s - b.pickup_window[1])
        if b.status.open and b.dropoff_eta_s:
            late = max(late, b.dropoff_eta_s - b.latest_dropoff_s)
        if b.picked_up_s is not None:
            late = max(late, b.picked_up_s - b.pickup_window[1])
        if b.dropped_off_s is not None:
            late = max(late, b.dropped_off_s - b.latest_dropoff_s)
        return late

    def fleet(self, state: FleetState, rejections: list[dict[str, Any]]) -> s.FleetOut:
        bookings = sorted(state.bookings.values(), key=lambda b: (b.pickup_window[0], b.booking_id))
        vehicles = []
        for vid in sorted(state.vehicles):
            v, plan = state.vehicles[vid], state.plans[vid]
            late = max(
                (self.lateness(state.bookings[st.booking_id]) for st in plan.stops), default=0
            )
            vehicles.append(
                s.FleetVehicleOut(
                    vehicle_id=vid,
                    seats=v.seats,
                    wheelchair_places=v.wheelchair_places,
                    position=self.position(state, vid),
                    stops=[self.stop(state, st) for st in plan.stops],
                    on_board=self.on_board(state, vid),
                    route=self.route(state, plan),
                    late_s=late,
                    shift_end=self.t(v.shift_end_s),
                    waiting_for_train=self.waiting_for_train(state, plan),
                    out_of_service=v.out_of_service,
                )
            )
        return s.FleetOut(
            version=state.version,
            now=self.t(state.now_s),
            vehicles=vehicles,
            bookings=[
                s.FleetBookingOut(
                    id=b.booking_id,
                    state=b.status.value,
                    vehicle_id=b.vehicle_id,
                    customer_id=customer_of(b),
                    pickup_window_start=self.t(b.pickup_window[0]),
                    pickup_window_end=self.t(b.pickup_window[1]),
                    pickup_expected=self.opt(b.pickup_eta_s),
                    dropoff_expected=self.opt(b.dropoff_eta_s),
                    latest_arrival=self.t(b.latest_dropoff_s),
                    late_s=self.lateness(b),
                    **{"from": s.StopPoint(**self.point(b.request.origin))},
                    to=s.StopPoint(**self.point(b.request.destination)),
                    connection=self.connection(b.request.connection, b.dropoff_eta_s),
                    late_notice=self.late_notice(b),
                )
                for b in bookings
            ],
            rejections=rejections,
        )


def customer_of(b: Booking) -> str | None:
    return b.request.rider_id.partition("/")[2] or None


def area_rings(area: ServiceArea) -> list[list[tuple[float, float]]]:
    """Outer rings of the service area as (lat, lon) points."""
    geom = area.geometry
    polygons = list(getattr(geom, "geoms", [geom]))
    return [[(y, x) for x, y in poly.exterior.coords] for poly in polygons]


def network_view(network: RoadNetwork, area_rings: list[list[tuple[float, float]]]) -> s.NetworkOut:
    """The road map for the dispatcher page, each two-way road drawn once."""
    tails = network.tails
    seen: set[tuple[int, int]] = set()
    roads: list[list[float]] = []
    for e in range(network.n_edges):
        u, v = int(tails[e]), int(network.heads[e])
        if (v, u) in seen:
            continue
        seen.add((u, v))
        flat = np.round(np.asarray(network.edge_polyline(e), dtype=np.float64), 5).ravel()
        roads.append(flat.tolist())
    rings = [np.round(np.asarray(r), 5).ravel().tolist() for r in area_rings]
    return s.NetworkOut(bbox=network.bbox, roads=roads, area=rings)


__all__ = ["StopType", "Views", "area_rings", "customer_of", "network_view", "owner_of"]
