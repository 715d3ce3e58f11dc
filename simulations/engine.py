"""The event-driven simulation of one night: riders ask, buses drive, the service decides.

It drives exactly the production path: the :class:`~dispatch.service.DispatchService` with the
real Redis store (embedded, in a scratch area), the same dispatcher, tariff and policy, over a
:class:`~nachtbus.clock.ManualClock` that jumps from event to event. Buses behave as drivers
following their tablet:

- an idle bus with stops leaves for its first stop as soon as it is free (it reports its
  position, which fixes that stop), and arrives after the road travel time;
- at a pickup it reports ARRIVED, waits for the window to open, then BOARDED (or NO_SHOW after
  ``no_show_wait_s`` for a rider who does not come); at a drop-off ARRIVED and ALIGHTED;
- at the end of the night it ends its shift (the drive back to the depot is the last leg).

Riders book the offer they get at once (PENDING then COMMIT, as the app does) and some cancel
later. A rider whose wish cannot be kept is shown the counter-offers and takes the closest with
the scenario's documented chance (``demand.alternative_accept``, falling with the shift).
Every ``reopt_interval_s`` the service re-optimises, as the live background does.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.rebalancing import DemandForecast, RebalanceParams
from dispatch.redis_store import RedisStore, connect
from dispatch.service import DispatchService, ServiceConfig
from nachtbus.billing.fares import Pricer
from nachtbus.clock import ManualClock
from nachtbus.domain import INPUT_REASONS, BookingRequest, ConnectionKind, StopType, Vehicle
from nachtbus.errors import BookingRejected, NachtbusError
from nachtbus.settings import Settings
from nachtbus.transit.timetable import Timetable
from nachtbus.units import parse_clock
from routing.solver import SolveParams
from routing.world import RoadWorld
from simulations.demand import Trip
from simulations.scenario import Scenario

SIM_DAY = date(2026, 11, 20)  # a Friday: the date every simulated night runs on
DEPOT = (51.5781, 8.1049)  # Soest, by the station (as the service's default depot)
#: while a driver is late setting off, the service re-times the bus as often as the live
#: background rounds run (their default interval)
RETIME_EVERY_S = int(Settings.model_fields["reopt_interval_s"].default)


@dataclass
class TripOutcome:
    trip: Trip
    booking_id: str | None = None
    rejection: str | None = None  # reason code
    #: why no bus could keep the wished time (the fleet's reason), also when a counter-offer
    #: was then taken or declined; None when the wish was kept or the rules refused it
    wish_reason: str | None = None
    cancelled_by_rider: bool = False
    #: counter-offers: the shift of the one taken (0: served at the wish); ``offered`` also
    #: when the rider declined the counter-offer
    shift_s: int = 0
    offered: bool = False
    connection_missed: bool = False  # cancelled by the service: the train was too late
    bus_at_pickup_s: int | None = None  # when the bus got to the pickup (punctuality)


@dataclass(frozen=True)
class BusPoint:
    """Where a bus was at a time: the timeline of its night (for plots and the teleport test)."""

    t: int
    node: int
    onboard: int  # passengers on board after what happened here
    what: str  # depart | arrive | board | alight | no_show | reposition | depot


@dataclass
class SimResult:
    scenario: Scenario
    seed: int
    outcomes: list[TripOutcome]
    service: DispatchService
    timelines: dict[str, list[BusPoint]]
    reopt_rounds: int = 0
    reopt_commits: int = 0
    events: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    late_starts: int = 0  # departures the noise made late (drivers held up)


def _policy(scenario: Scenario) -> ServicePolicy:
    d = scenario.dispatching
    changes: dict[str, Any] = {
        "service_start_s": scenario.start_s,
        "service_end_s": scenario.end_s,
        # the rescue on its step limit alone: a night plays the same on any machine
        "rescue_time_ms": 0,
    }
    for name in (
        "max_wait_s",
        "detour_alpha",
        "detour_beta_s",
        "max_alternatives",
        "alternative_shift_max_s",
        "far_pickup_s",
        "far_max_wait_s",
        "plan_buffer_s",
        "rescue_steps",
        "prebook_window_as_asked",
    ):
        if getattr(d, name) is not None:
            changes[name] = getattr(d, name)
    return replace(ServicePolicy(), **changes)


class Simulation:
    """One night of one scenario; :meth:`run` plays it and returns the raw result."""

    def __init__(
        self,
        world: RoadWorld,
        scenario: Scenario,
        trips: list[Trip],
        pricer: Pricer | None,
        *,
        store_dir: Path | None = None,
        seed: int = 0,
        progress: Callable[[int], None] | None = None,
        forecast: DemandForecast | None = None,
        timetable: Timetable | None = None,
        depot: tuple[float, float] = DEPOT,
    ) -> None:
        """``forecast``: expected demand per zone for rebalancing (with
        ``dispatching.rebalance``; none: idle buses wait where they are); ``timetable``: the
        trains that riders with a ``train`` meet (``[trains]`` of the scenario); ``depot``:
        (lat, lon) where the buses start and end (default: Soest station)."""
        self.world = world
        self.scenario = scenario
        self.trips = trips
        self.seed = seed
        self.progress = progress
        self.forecast = forecast if scenario.dispatching.rebalance else None
        self.clock = ManualClock(scenario.start_s, service_date=SIM_DAY)
        self.timetable = timetable
        policy = _policy(scenario)
        d = scenario.dispatching
        self.dispatcher = Dispatcher(
            world.times,
            policy,
            # OR-Tools stops at its local optimum (guided local search may run to the time
            # limit on a small problem, which no step limit makes reproducible)
            reopt=SolveParams.live(
                d.reopt_time_limit_s,
                d.reopt_lns_steps,
                d.reopt_solution_limit,
                seed=seed,
                metaheuristic="GREEDY_DESCENT",
            ),
        )
        self._tmp = None
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="nachtbus-sim-")
            store_dir = Path(self._tmp.name)
        client = connect(None, store_dir)
        store = RedisStore(client, f"sim-{uuid.uuid4().hex[:10]}")
        self.service = DispatchService(
            self.dispatcher,
            store,
            self.clock,
            world,
            ServiceConfig(),
            pricer=pricer,
            offer_ids=(f"sim{n:06d}" for n in itertools.count()).__next__,
            timetable=timetable,
        )
        start = world.place(*depot, "depot", in_area=False)
        f = scenario.fleet
        self.vehicles = [
            Vehicle(
                f"bus-{i + 1}",
                f.seats,
                f.wheelchair_places,
                start,
                scenario.start_s,
                scenario.end_s + 2 * 3600,
            )
            for i in range(f.buses)
        ]
        self.service.start(self.vehicles)
        self._heap: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._busy: dict[str, bool] = {v.vehicle_id: False for v in self.vehicles}
        #: the booking a bus waits for at its pickup (window not open yet, or a no-show)
        #: with when its NO_SHOW is due (None: the rider comes, the bus waits for the window)
        self._waiting: dict[str, tuple[str, int | None]] = {}
        self._waits_checked = -1  # the fleet version the no-show waits were last checked on
        self._ticks: set[tuple[str, int]] = set()
        self._legs_driven = 0
        self._leg_id: dict[str, int] = {}
        #: where a bus is driving: (booking of its next stop, that stop's node, arrival)
        self._driving: dict[str, tuple[str, int, int]] = {}
        #: a driver late setting off (noise): until when the bus stands; the stop drawn for
        self._held_until: dict[str, int] = {}
        self._drawn: dict[str, tuple[str, str]] = {}
        self.late_starts = 0
        self.timelines: dict[str, list[BusPoint]] = {
            v.vehicle_id: [BusPoint(scenario.start_s, start.node, 0, "depot")]
            for v in self.vehicles
        }
        self.outcomes: dict[str, TripOutcome] = {}
        self._by_booking: dict[str, TripOutcome] = {}

    # ------------------------------------------------------------------ scheduling
    def _push(self, t: int, kind: str, *data: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), kind, data))

    def run(self) -> SimResult:
        for trip in self.trips:
            self._push(trip.ask_s, "ask", trip)
        self._push_delays()
        for bd in self.scenario.faults.breakdowns:
            self._push(parse_clock(bd.at), "breakdown", bd.bus)
        rounds = commits = events = 0
        d = self.scenario.dispatching
        if d.reoptimise:
            for t in range(
                self.scenario.start_s + d.reopt_interval_s,
                self.scenario.end_s + 3600,
                d.reopt_interval_s,
            ):
                self._push(t, "reopt")
        if self.forecast is not None:
            for t in range(self.scenario.start_s, self.scenario.end_s, d.rebalance_interval_s):
                self._push(t, "rebalance")
        done = 0
        while self._heap:
            t, _, kind, data = heapq.heappop(self._heap)
            if kind == "reopt" and not any(self._busy.values()) and not self._open():
                continue  # nothing to improve
            self.clock.set(max(t, self.clock.now_s()))
            events += 1
            if kind == "ask":
                self._ask(data[0])
                done += 1
                if self.progress:
                    self.progress(1)
            elif kind == "cancel":
                self._cancel(data[0])
            elif kind == "reopt":
                rounds += 1
                commits += int(self.service.reoptimise())
            elif kind == "arrive":
                self._arrive(*data)
            elif kind == "serve":
                waited = self._waiting.get(data[0])
                if waited is not None and waited[0] == data[1]:  # not ended by a cancellation
                    self._serve(*data)
            elif kind == "tick":
                pass  # a bus's time to leave for its first stop: _dispatch_idle below
            elif kind == "retime":
                self.service.retime_not_left()
            elif kind == "rebalance":
                assert self.forecast is not None
                self.service.rebalance(
                    self.forecast,
                    RebalanceParams(horizon_s=d.rebalance_horizon_s),
                )
            elif kind == "wake":
                self._busy[data[0]] = False
            elif kind == "delay":
                self._train_late(*data)
            elif kind == "report":
                self._report(*data)
            elif kind == "breakdown":
                self._break_down(data[0])
            self._dispatch_idle()
        self._end_shifts()
        return SimResult(
            self.scenario,
            self.seed,
            [self.outcomes[t.trip_id] for t in self.trips],
            self.service,
            self.timelines,
            rounds,
            commits,
            events,
            late_starts=self.late_starts,
        )

    def _push_delays(self) -> None:
        """Each late train's delay is told ``trains.delay_notice_min`` before its arrival."""
        if self.timetable is None:
            return
        if not self.scenario.trains.connect:
            return  # the baseline's riders know nothing of the trains' delays
        late = {t.train: t.train_delay_s for t in self.trips if t.train and t.train_delay_s}
        notice = self.scenario.trains.delay_notice_min * 60
        for c in self.timetable.calls(SIM_DAY):
            if c.trip_id in late:
                self._push(
                    max(c.arrival_s - notice, self.scenario.start_s),
                    "delay",
                    c.trip_id,
                    late.pop(c.trip_id),
                )

    def _train_late(self, trip_id: str, delay_s: int) -> None:
        """A TripUpdate: the service moves its riders' windows (or cancels and refunds); a
        bus already on its way to one of those pickups is planned from where it gets to."""
        for e in self.service.train_delays({trip_id: delay_s}):
            bid = e.data.get("booking_id")
            if bid is None or e.type == "booking.connection_at_risk":
                continue
            if e.type == "booking.connection_missed" and bid in self._by_booking:
                self._by_booking[bid].connection_missed = True
            self._release(bid)

    def _open(self) -> bool:
        return any(b.status.open for b in self.service.snapshot().bookings.values())

    # ------------------------------------------------------------------ riders
    def _ask(self, trip: Trip) -> None:
        out = TripOutcome(trip)
        self.outcomes[trip.trip_id] = out
        now = self.clock.now_s()
        try:
            req = BookingRequest(
                request_id=trip.trip_id,
                origin=self.world.place(*trip.origin, "from"),
                destination=self.world.place(*trip.destination, "to"),
                requested_at_s=now,
                pickup_at_s=trip.pickup_s,
                passengers=trip.passengers,
                wheelchairs=trip.wheelchairs,
                prams=trip.prams,
                rider_id=f"sim/{trip.trip_id}",
            )
            arrive_by = None
            if trip.train and not self.scenario.trains.connect and trip.train_kind == "to_train":
                # the baseline: an ordinary arrive-by trip, the buffer before the train
                arrive_by = trip.train_at_s - self.dispatcher.policy.train_buffer_s
            elif trip.train and self.scenario.trains.connect:
                # the station and the time come from the timetable
                kind = ConnectionKind(trip.train_kind)
                conn, station = self.service.find_train(kind, trip_id=trip.train)
                req, arrive_by = self.service.with_train(req, conn, station)
            offers, no = self.service.options(req, arrive_by)
        except NachtbusError as exc:
            out.rejection = exc.code
            return
        if no is not None and no.reason not in INPUT_REASONS:  # the fleet's, not the rules'
            out.wish_reason = no.reason.value
        if not offers:
            assert no is not None
            out.rejection = no.reason.value
            return
        out.offered = True
        answer = offers[0]  # the wish, or the closest counter-offer
        if no is not None and not self._takes(trip, answer.shift_s):
            out.rejection = "declined_alternative"
            return
        out.shift_s = answer.shift_s
        try:
            booking = self.service.book(answer.offer_id)
            self.service.commit(booking.booking_id)
        except BookingRejected as exc:
            out.rejection = exc.code
            return
        out.booking_id = booking.booking_id
        self._by_booking[booking.booking_id] = out
        if trip.cancel_after_s is not None:
            self._push(now + trip.cancel_after_s, "cancel", booking.booking_id)

    def _takes(self, trip: Trip, shift_s: int) -> bool:
        """Whether the rider takes a counter-offer ``shift_s`` from the wish (seeded per
        trip): ``alternative_accept`` halved every ``alternative_accept_halving_min``."""
        d = self.scenario.demand
        p = d.alternative_accept * 0.5 ** (abs(shift_s) / 60 / d.alternative_accept_halving_min)
        return random.Random(f"{self.seed}:{trip.trip_id}:alt").random() < p

    def _cancel(self, booking_id: str) -> None:
        try:
            self.service.cancel(booking_id)
            self._by_booking[booking_id].cancelled_by_rider = True
            self._release(booking_id)
        except NachtbusError:
            pass  # already on board or finished: too late to cancel

    def _release(self, booking_id: str) -> None:
        """A booking's pickup left a bus's plan (cancelled, or moved by a late train): the
        bus driving there is planned from where it gets to; one waiting there goes on."""
        for vid, (bid, node, at) in list(self._driving.items()):
            if bid == booking_id and at > self.clock.now_s():
                # the bus is on its way there and gets there first: plans start there
                net = self.world.network
                lat, lon = float(net.node_lat[node]), float(net.node_lon[node])
                self.service.heading(vid, lat, lon, at, reposition=False)
        for vid, (waited, _) in list(self._waiting.items()):
            if waited == booking_id:  # the bus waiting for this rider goes on now
                del self._waiting[vid]
                self._busy[vid] = False

    # ------------------------------------------------------------------ buses
    def _onboard(self, vid: str) -> int:
        state = self.service.snapshot()
        return sum(
            b.request.passengers
            for b in state.bookings.values()
            if b.vehicle_id == vid and b.status.value == "STARTED"
        )

    def _dispatch_idle(self) -> None:
        state = self.service.snapshot()
        now = self.clock.now_s()
        stored = self.service.version() or 0  # the snapshot's own version moves with the clock
        if stored != self._waits_checked:
            self._waits_checked = stored
            for vid, (bid, was_due) in self._waiting.items():
                # a trip inserted while the bus waits for a rider who does not come may make
                # the no-show due sooner: the driver goes on as soon as the rules say
                if was_due is None:
                    continue
                due = self.dispatcher.no_show_due_s(state, vid, bid)
                if due < was_due:
                    self._waiting[vid] = (bid, due)
                    self._push(max(due, now), "serve", vid, bid, "no_show")
        for vid, busy in self._busy.items():
            plan = state.plans[vid]
            if not busy and not plan.stops and plan.reposition is not None:
                self._hop(vid, plan.reposition.node)
                continue
            if busy or not plan.stops:
                continue
            s = state.states[vid]
            if s.at_s > now:  # still dwelling at the last stop
                self._busy[vid] = True
                self._push(s.at_s, "wake", vid)
                continue
            net = self.world.network
            node = s.node
            first = plan.stops[0]
            travel = int(self.world.times.times_s([node, first.place.node])[0, 1])
            leave_at = first.eta_s - travel
            if plan.fixed == 0 and leave_at > now:
                # the driver leaves when the plan needs it, not before: until then the bus may
                # take other riders first (its first stop is not fixed yet)
                if (vid, leave_at) not in self._ticks:
                    self._ticks.add((vid, leave_at))
                    self._push(leave_at, "tick", vid)
                continue
            if self._held_up(vid, first.booking_id, str(first.type), now):
                continue
            self._held_until.pop(vid, None)
            # the tablet reports where the bus is: its first stop is now fixed
            # (fixing it leaves the plan's order as it is: ``first`` and ``travel`` hold)
            self.service.position(vid, float(net.node_lat[node]), float(net.node_lon[node]))
            self.timelines[vid].append(BusPoint(now, node, self._onboard(vid), "depart"))
            self._busy[vid] = True
            actual = self._drive_s(vid, node, first.place.node, travel, now)
            self._driving[vid] = (first.booking_id, first.place.node, now + actual)
            self._push(now + actual, "arrive", vid, first.booking_id, first.type, first.place.node)
            self._leg_reports(vid, node, first.place.node, now, actual)

    def _held_up(self, vid: str, booking_id: str, kind: str, now: int) -> bool:
        """Whether the driver, due to leave for this stop, is still standing: with the noise's
        ``late_start_share`` a departure is made late by an exponential time (mean
        ``late_start_mean_s``), drawn once per stop, with the tablet silent meanwhile. The
        service hears nothing; with ``retime_not_left`` its rounds (every 20 s, as live)
        re-time the bus. A driver whose late start is over leaves for whatever stop is
        first then."""
        until = self._held_until.get(vid)
        if until is not None:
            return now < until
        n = self.scenario.noise
        if not n.enabled or n.late_start_share <= 0 or self._drawn.get(vid) == (booking_id, kind):
            return False
        self._drawn[vid] = (booking_id, kind)
        rng = random.Random(f"{self.seed}:{vid}:{booking_id}:{kind}:late-start")
        if rng.random() >= n.late_start_share:
            return False
        delay = round(rng.expovariate(1.0 / n.late_start_mean_s)) if n.late_start_mean_s else 0
        if delay <= 0:
            return False
        self.late_starts += 1
        self._held_until[vid] = now + delay
        self._push(now + delay, "tick", vid)
        if self.scenario.dispatching.retime_not_left:
            for t in range(now + RETIME_EVERY_S, now + delay, RETIME_EVERY_S):
                self._push(t, "retime")
        return True

    def _hop(self, vid: str, target: int) -> None:
        """One stretch (about ``rebalance_hop_s`` of driving) of a repositioning bus along the
        fastest path; the bus reports where it will be free at the end of it."""
        s = self.service.snapshot().states[vid]
        now = self.clock.now_s()
        if s.node == target or s.at_s > now:
            return
        net = self.world.network
        path = self.world.times.route(s.node, target).nodes
        limit_ms = self.scenario.dispatching.rebalance_hop_s * 1000
        reach, spent = 1, 0
        for k in range(1, len(path)):
            spent += int(net.weight[net.edge_index(path[k - 1], path[k])])
            if spent > limit_ms and k > 1:
                break
            reach = k
        node = path[reach]
        travel = int(self.world.times.times_s([s.node, node])[0, 1])
        self.service.heading(
            vid, float(net.node_lat[node]), float(net.node_lon[node]), now + travel
        )
        reached = self.service.snapshot().states[vid]
        self.timelines[vid].append(BusPoint(now, s.node, 0, "depart"))
        self.timelines[vid].append(BusPoint(now + travel, reached.node, 0, "reposition"))
        self._busy[vid] = True
        self._push(now + travel, "wake", vid)

    # ------------------------------------------------------------------ the real night
    def _drive_s(self, vid: str, a: int, b: int, travel: int, now: int) -> int:
        """How long the drive a -> b really takes: the model's time with the scenario's noise
        (a lognormal factor, heavier in a spell of heavy noise) and closed roads."""
        n = self.scenario.noise
        if not n.enabled and not self.scenario.faults.closures:
            return travel
        self._legs_driven += 1
        rng = random.Random(f"{self.seed}:{vid}:{self._legs_driven}:drive")
        bias, sigma = n.drive_bias, n.drive_sigma
        for h in self.scenario.faults.heavy_noise:
            if parse_clock(h.start) <= now < parse_clock(h.end):
                bias, sigma = h.drive_bias, h.drive_sigma
        factor = bias * math.exp(rng.gauss(0.0, sigma)) if n.enabled else 1.0
        for c in self.scenario.faults.closures:
            if parse_clock(c.start) <= now < parse_clock(c.end) and self._passes(a, b, c):
                factor *= c.factor
        return max(0, round(travel * factor))

    def _passes(self, a: int, b: int, c: Any) -> bool:
        net = self.world.network
        path = self.world.times.route(a, b).nodes if a != b else (a,)
        k = math.cos(math.radians(c.lat))
        for node in path:
            dy = (float(net.node_lat[node]) - c.lat) * 111_320
            dx = (float(net.node_lon[node]) - c.lon) * 111_320 * k
            if dx * dx + dy * dy <= c.radius_m**2:
                return True
        return False

    def _slow_rider_s(self, booking_id: str) -> int:
        n = self.scenario.noise
        if not n.enabled or n.slow_rider_mean_s <= 0:
            return 0
        rng = random.Random(f"{self.seed}:{booking_id}:slow")
        if rng.random() >= n.slow_rider_share:
            return 0
        return round(rng.expovariate(1.0 / n.slow_rider_mean_s))

    def _leg_reports(self, vid: str, a: int, b: int, now: int, actual: int) -> None:
        """A driving bus reports where it is every ``noise.report_s`` (with noise on): at
        each report the node it has reached along the fastest path, in proportion to the
        drive's real time (the path is found once per drive)."""
        n = self.scenario.noise
        if not n.enabled or actual <= n.report_s or a == b:
            return
        self._leg_id[vid] = self._leg_id.get(vid, 0) + 1
        route = self.world.times.route(a, b)
        net = self.world.network
        reached = list(
            itertools.accumulate(
                int(net.time_ms[net.edge_index(u, v)]) for u, v in itertools.pairwise(route.nodes)
            )
        )
        for t in range(now + n.report_s, now + actual, n.report_s):
            goal = (t - now) / actual * route.travel_time_s * 1000
            k = bisect.bisect_right(reached, goal)  # edges fully driven by then
            self._push(t, "report", vid, self._leg_id[vid], route.nodes[k])

    def _report(self, vid: str, leg: int, node: int) -> None:
        if self._leg_id.get(vid) != leg or vid not in self._driving:
            return  # that drive ended or changed
        net = self.world.network
        self.service.position(vid, float(net.node_lat[node]), float(net.node_lon[node]))

    def _break_down(self, vid: str) -> None:
        """A breakdown: the bus is out of service; it still brings its riders on board home
        (as a replacement would), then goes to the depot."""
        try:
            self.service.take_out(vid, "breakdown", "simulator")
        except NachtbusError:
            return  # out already, or no such bus

    def _arrive(self, vid: str, booking_id: str, stop: StopType, node: int) -> None:
        now = self.clock.now_s()
        self._driving.pop(vid, None)
        self.timelines[vid].append(BusPoint(now, node, self._onboard(vid), "arrive"))
        try:
            self.service.arrived(vid, booking_id, stop)
        except NachtbusError:  # the stop went away (cancelled) while driving: just stop here
            net = self.world.network
            self.service.position(vid, float(net.node_lat[node]), float(net.node_lon[node]))
            self._busy[vid] = False
            return
        b = self.service.snapshot().bookings[booking_id]
        if stop == StopType.PICKUP:
            out = self._by_booking[booking_id]
            out.bus_at_pickup_s = now
            start = max(now, b.pickup_window[0]) + self._slow_rider_s(booking_id)
            if out.trip.no_show:  # the driver waits as long as the rules let the bus wait
                due = self.dispatcher.no_show_due_s(self.service.snapshot(), vid, booking_id)
                self._waiting[vid] = (booking_id, due)
                self._push(max(due, now), "serve", vid, booking_id, "no_show")
            elif start > now:
                self._waiting[vid] = (booking_id, None)
                self._push(start, "serve", vid, booking_id, "board")
            else:
                self._serve(vid, booking_id, "board")
        else:
            self._serve(vid, booking_id, "alight")

    def _serve(self, vid: str, booking_id: str, what: str) -> None:
        self._waiting.pop(vid, None)
        try:
            if what == "no_show":
                self.service.no_show(vid, booking_id)
            else:
                stop = StopType.PICKUP if what == "board" else StopType.DROPOFF
                self.service.stop_done(vid, booking_id, stop)
        except NachtbusError:
            pass  # cancelled in the meantime
        node = self.service.snapshot().states[vid].node
        self.timelines[vid].append(BusPoint(self.clock.now_s(), node, self._onboard(vid), what))
        self._busy[vid] = False

    def _end_shifts(self) -> None:
        state = self.service.snapshot()
        for v in self.vehicles:
            vid = v.vehicle_id
            s = state.states[vid]
            t = max(self.clock.now_s(), s.at_s)
            travel = int(self.world.times.times_s([s.node, v.depot.node])[0, 1])
            self.clock.set(t + travel)
            try:
                self.service.shift(vid, start=False)
            except NachtbusError:
                continue
            if s.node != v.depot.node:
                self.timelines[vid].append(BusPoint(t, s.node, 0, "depart"))
                self.timelines[vid].append(BusPoint(t + travel, v.depot.node, 0, "depot"))
