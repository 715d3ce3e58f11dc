"""Property tests: random nights on the grid town never break a promise.

Each example plays a random sequence of requests, cancellations, bus progress (the bus serving
its next stop on time, as a driver following the plan would) and re-optimisations. After every
step the current plans are checked by the independent checker, and the promises are compared
with what was promised at booking time.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from nachtbus.domain import BookingRequest, BookingStatus, FleetState, Offer, Rejection, StopType
from routing.checker import violations
from routing.ortools_pdp import OrToolsParams
from routing.solver import SolveParams
from tests.helpers import assert_plans_match_bookings, bus, grid_town, request

NOW = 21 * 3600
TIMES = grid_town()
#: the rescue on its step limit alone, so an example plays the same every time
POLICY = ServicePolicy(max_wait_s=600, detour_alpha=1.5, detour_beta_s=180, rescue_time_ms=0)
#: the re-optimisations tried: OR-Tools alone, and the live round (ruin and recreate, then
#: OR-Tools from its best), each with step or solution limits
REOPTS = {
    "ortools": SolveParams(ortools=OrToolsParams(time_limit_s=5.0, solution_limit=10)),
    "lns+ortools": SolveParams.live(5.0, lns_steps=300, ortools_solutions=5, seed=3),
}

node = st.integers(0, 24)
action = st.one_of(
    st.tuples(
        st.just("request"),
        node,
        node,
        st.sampled_from([None, None, 900, 1800]),
        st.integers(1, 3),
        st.integers(0, 1),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("advance")),
    st.tuples(st.just("advance")),
    st.tuples(st.just("reopt")),
)


def _next_event(d: Dispatcher, state: FleetState) -> FleetState:
    """The bus whose next stop comes first serves it on time; buses due to leave leave."""
    due = [(p.stops[0].eta_s, vid) for vid, p in state.plans.items() if p.stops]
    if not due:
        return state
    eta, vid = min(due)
    before = state  # every bus leaves when it is free in this state (a report of one bus
    # still dwelling moves the clock to its departure, which must not delay the others)
    for other, plan in before.plans.items():
        if plan.stops and plan.fixed == 0:
            s = before.states[other]
            leave = d.problems.free_from(before, other)
            travel = int(TIMES.times_s([s.node, plan.stops[0].place.node])[0, 1])
            if plan.stops[0].eta_s - travel <= eta:
                state = d.vehicle_position(state, other, s.node, max(leave, before.now_s))
    # Leaving refreshes the buses' times: the next stop is served at its refreshed time, and
    # the clock moves to that time (not past it, or the bus would idle at a stop it left).
    eta, vid = min((p.stops[0].eta_s, v) for v, p in state.plans.items() if p.stops)
    first = state.plans[vid].stops[0]
    state = d.advance_clock(state, eta)
    state = d.vehicle_position(state, vid, first.place.node, first.eta_s, arrived=True)
    return d.stop_done(state, vid, first.booking_id, first.type, first.eta_s)


def _same_offers_as_a_fresh_dispatcher(d: Dispatcher, state: FleetState) -> None:
    """``d`` keeps the problem of the last state it saw and quotes on it by appending the new
    request; its offers must be exactly those of a dispatcher that builds everything anew,
    also a little later on the same bookings (only the clock moved)."""
    for at in (state, d.advance_clock(state, state.now_s + 120)):
        for k, (a, b) in enumerate([(3, 21), (7, 12), (24, 0), (3, 21)]):
            probe = request(f"probe{k}", a, b, at.now_s)
            fresh = Dispatcher(TIMES, POLICY).offer(at, probe, offer_id="p")
            assert d.offer(at, probe, offer_id="p") == fresh


def _checked_alternatives(
    d: Dispatcher, state: FleetState, req: BookingRequest, no: Rejection, n: int
) -> Offer | None:
    """The counter-offers for a rejected request: each, booked, keeps every rule and every
    promise (the checker decides), lies later than the wish within the policy's limit, and
    keeps the wished window's length; the first is what the rider takes (None: none)."""
    ids = iter(f"alt{n}-{k}" for k in range(10)).__next__
    alts = d.alternatives(state, req, no, ids)
    assert len(alts) <= POLICY.max_alternatives
    direct = int(TIMES.times_s([req.origin.node, req.destination.node])[0, 1])
    wish = POLICY.windows(req, direct, state.now_s)
    if isinstance(wish, Rejection):  # a rule refuses the trip at any time: no counter-offer
        assert alts == []
        return None
    for alt in alts:
        assert 0 < alt.shift_s <= POLICY.alternative_shift_max_s
        assert alt.shift_s % POLICY.alternative_step_s == 0
        assert alt.pickup_window[0] == wish.pickup_earliest_s + alt.shift_s
        lo, hi = alt.pickup_window
        assert lo <= alt.pickup_eta_s <= hi
        assert alt.dropoff_eta_s <= alt.latest_dropoff_s
        res = d.confirm(state, alt, booking_id=f"try-{alt.offer_id}")
        assert not isinstance(res, Rejection)
        snap, sol = d.current_solution(res[0])
        assert violations(snap.problem, sol) == []
        for bid, b in state.bookings.items():
            assert res[0].bookings[bid].pickup_window == b.pickup_window
    return alts[0] if alts else None


@pytest.mark.parametrize("search", sorted(REOPTS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(action, min_size=4, max_size=14))
def test_random_nights_keep_every_promise(search: str, actions) -> None:
    d = Dispatcher(TIMES, POLICY, reopt=REOPTS[search])
    state = FleetState.create(
        NOW, [bus("A", seats=3, wheelchairs=1), bus("B", seats=3, wheelchairs=1, depot=24)]
    )
    promised: dict[str, tuple[tuple[int, int], int]] = {}
    carried_by: dict[str, str] = {}
    n = 0
    for act in actions:
        if act[0] == "request":
            _, a, b, ahead, pax, wc = act
            n += 1
            at = state.now_s + ahead if ahead else None
            req = request(
                f"r{n}", a, b, state.now_s, at=at, passengers=pax, wheelchairs=min(wc, pax)
            )
            answer = d.offer(state, req)
            o = (
                _checked_alternatives(d, state, req, answer, n)
                if isinstance(answer, Rejection)
                else answer
            )
            if o is not None:
                res = d.confirm(state, o)
                assert not isinstance(res, Rejection)
                state, booking = res
                promised[booking.booking_id] = (booking.pickup_window, booking.max_ride_s)
        elif act[0] == "cancel":
            open_ = sorted(
                b for b, x in state.bookings.items() if x.status == BookingStatus.CONFIRMED
            )
            if open_:
                state = d.cancel(state, open_[act[1] % len(open_)])
        elif act[0] == "advance":
            state = _next_event(d, state)
        else:
            state = d.reoptimise(state) or state

        snap, current = d.current_solution(state)
        assert violations(snap.problem, current) == [], act
        _same_offers_as_a_fresh_dispatcher(d, state)
        for bid, bk in state.bookings.items():
            assert (bk.pickup_window, bk.max_ride_s) == promised[bid]
            if bk.status == BookingStatus.STARTED:
                carried_by.setdefault(bid, bk.vehicle_id or "")
                assert bk.vehicle_id == carried_by[bid]
                stops = [s for s in state.plans[bk.vehicle_id].stops if s.booking_id == bid]
                assert [s.type for s in stops] == [StopType.DROPOFF]
            if bk.picked_up_s is not None:
                lo, hi = bk.pickup_window
                assert lo <= bk.picked_up_s <= hi
            if bk.vehicle_id and bk.status.open:
                drops = [
                    s
                    for s in state.plans[bk.vehicle_id].stops
                    if s.booking_id == bid and s.type == StopType.DROPOFF
                ]
                assert [s.window[1] for s in drops] == [bk.latest_dropoff_s]
            if bk.status == BookingStatus.FINISHED:
                assert bk.picked_up_s is not None and bk.dropped_off_s is not None
                assert bk.dropped_off_s <= bk.latest_dropoff_s
                dwell = POLICY.dwell(bk.request.wheelchairs)
                assert bk.dropped_off_s - (bk.picked_up_s + dwell) <= bk.max_ride_s
        for vid in state.plans:
            load_seats = sum(
                bk.request.seats
                for bk in state.bookings.values()
                if bk.status == BookingStatus.STARTED and bk.vehicle_id == vid
            )
            assert load_seats <= state.vehicles[vid].seats


def test_rescued_offers_keep_every_promise() -> None:
    """Random busy nights on two small buses (5-minute waits, rides asked now and known
    ahead, all at one moment): every offer is booked, also those a rescue made (other
    riders re-planned, ``moves``); then the checker finds every plan keeping every rule,
    and each earlier rider has the same promise, with the expected pickup inside it.
    Every stop is on the bus its booking names, also after a rescue, so that each booking
    can be cancelled again without a trace. Rescues must happen for this to say anything:
    at least five over the nights."""
    rng = np.random.default_rng(11)
    d = Dispatcher(TIMES, replace(POLICY, max_wait_s=300))
    rescued = 0
    for night in range(40):
        state = FleetState.create(
            NOW, [bus("A", seats=2, wheelchairs=0), bus("B", seats=2, wheelchairs=0, depot=24)]
        )
        for k in range(14):
            a, b = (int(x) for x in rng.choice(25, size=2, replace=False))
            at = None if rng.random() < 0.6 else NOW + int(rng.integers(5, 30)) * 60
            offer = d.offer(state, request(f"n{night}-{k}", a, b, state.now_s, at=at))
            if not isinstance(offer, Offer):
                continue
            result = d.confirm(state, offer)
            assert not isinstance(result, Rejection), result
            new, booking = result
            snap, sol = d.current_solution(new)
            assert violations(snap.problem, sol) == []
            lo, hi = booking.pickup_window
            assert booking.pickup_eta_s is not None and lo <= booking.pickup_eta_s <= hi
            for bid, old in state.bookings.items():
                nb = new.bookings[bid]
                assert (nb.pickup_window, nb.max_ride_s) == (old.pickup_window, old.max_ride_s)
                assert nb.pickup_eta_s is not None
                assert nb.pickup_window[0] <= nb.pickup_eta_s <= nb.pickup_window[1]
            assert_plans_match_bookings(new)
            rescued += bool(offer.moves)
            state = new
        # each booking can be cancelled again and leaves no stop behind (the bus a rescue
        # put a rider on is the bus its booking names)
        for bid in sorted(state.bookings):
            state = d.cancel(state, bid)
            assert_plans_match_bookings(state)
        assert not any(p.stops for p in state.plans.values())
    assert rescued >= 5, rescued
