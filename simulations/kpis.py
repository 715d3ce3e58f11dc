"""KPIs of a simulated night, overall and per district, from what the service stored.

Definitions (times in seconds, distances from the driven legs of :mod:`nachtbus.billing.co2`):

- **served**: the booking FINISHED; **rejected** by reason; **cancelled** by the rider;
  **no-show**; **lost**: confirmed but never finished (must be 0: conservation);
- **served at the wish** / **with an alternative** (a counter-offer the rider took); a rider
  who declines the counter-offer is rejected as ``declined_alternative``; **offered share**:
  requests with an offer (at the wish or a counter-offer) over the requests the rules allow
  (not refused for what was asked: outside the area or hours, too short, too many travellers);
- **promises broken**: riders picked up outside the promised window or dropped off after
  the promised latest arrival (the simulator's own count; must be 0);
- **wait**: pickup time minus the desired time (asking time, or the pre-booked time);
  **promised wait**: the end of the promised pickup window minus the desired time;
- **ride time** and **detour factor** = ride time / direct road time;
- **occupancy**: passenger-km / vehicle-km; **pooled share**: passenger-km ridden with another
  booking on board; **empty km**: driven with nobody on board;
- **vehicle-hours**: from each bus's first departure to its return to the depot;
- **fares**: the ledger's balance (charges minus refunds); **CO2 saved** against private cars.

**By hour**: the same figures for the requests asked in each clock hour (``hours``, e.g.
``01:00`` for 01:00 to 01:59): where in the night riders go without, and the bound's served
riders beside them.

The district of a trip is where it starts (the pickup). **Kernstadt and villages**: a
district whose name contains "Kernstadt" is the core town, every other named district is an
Ortsteil (village); ``villages`` compares their served shares (``ratio`` = villages / core).

**Bus km per direct km**: vehicle-km over the summed direct road distance of the served
bookings (one car per booking, as the CO2 reference): below 1 the pooling saves distance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatch.store import Event
from nachtbus.billing.co2 import Co2Params
from nachtbus.domain import INPUT_REASONS, Booking, BookingStatus
from nachtbus.units import format_clock
from simulations.engine import SimResult


@dataclass(frozen=True)
class TripRecord:
    trip_id: str
    district: str
    status: str  # served | rejected | cancelled | no_show | lost
    reason: str | None
    passengers: int
    wait_s: int | None
    promised_wait_s: int | None
    ride_s: int | None
    detour: float | None
    fare_cents: int
    offered: bool = False  # an offer was made (at the wish or a counter-offer)
    shift_s: int = 0  # the booked counter-offer's shift from the wish (0: at the wish)
    ask_s: int = 0  # when the rider asked (service-day seconds)
    wish_reason: str | None = None  # why no bus could keep the wished time (if none could)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def trip_records(
    result: SimResult, district_of: Callable[[float, float], str | None]
) -> list[TripRecord]:
    state = result.service.snapshot()
    ledger = result.service.ledger()
    out = []
    for o in result.outcomes:
        t = o.trip
        district = district_of(*t.origin) or "(outside districts)"
        desired = t.pickup_s if t.pickup_s is not None else t.ask_s
        if o.booking_id is None:
            out.append(
                TripRecord(
                    t.trip_id,
                    district,
                    "rejected",
                    o.rejection,
                    t.passengers,
                    None,
                    None,
                    None,
                    None,
                    0,
                    offered=o.offered,
                    ask_s=t.ask_s,
                    wish_reason=o.wish_reason,
                )
            )
            continue
        b = state.bookings[o.booking_id]
        paid = sum(e.signed_cents for e in ledger.of_booking(b.booking_id))
        wait = promised = ride = None
        detour = None
        if b.status == BookingStatus.FINISHED:
            status = "served"
            assert b.picked_up_s is not None and b.dropped_off_s is not None
            wait = b.picked_up_s - desired
            promised = b.pickup_window[1] - desired
            ride = b.dropped_off_s - b.picked_up_s
            detour = ride / max(b.direct_time_s, 1)
        elif b.status == BookingStatus.CANCELLED:
            status = "cancelled"
        elif b.status == BookingStatus.NO_SHOW:
            status = "no_show"
        else:
            status = "lost"
        out.append(
            TripRecord(
                t.trip_id,
                district,
                status,
                None,
                t.passengers,
                wait,
                promised,
                ride,
                detour,
                paid,
                offered=True,
                shift_s=o.shift_s,
                ask_s=t.ask_s,
                wish_reason=o.wish_reason,
            )
        )
    return out


def hour_of(ask_s: int) -> str:
    """The clock hour a request was asked in, e.g. ``01:00`` for 01:25 (25:25)."""
    return format_clock(ask_s - ask_s % 3600)[:5]


def by_hour(records: list[TripRecord]) -> dict[str, dict[str, Any]]:
    """The KPI block of each hour of asking, in the order of the night."""
    hours: dict[int, list[TripRecord]] = {}
    for r in records:
        hours.setdefault(r.ask_s // 3600, []).append(r)
    return {hour_of(h * 3600): _block(hours[h]) for h in sorted(hours)}


def _block(records: list[TripRecord]) -> dict[str, Any]:
    n = len(records)
    by = Counter(r.status for r in records)
    served = [r for r in records if r.status == "served"]
    waits = [float(r.wait_s) for r in served if r.wait_s is not None]
    promised = [float(r.promised_wait_s) for r in served if r.promised_wait_s is not None]
    rides = [float(r.ride_s) for r in served if r.ride_s is not None]
    detours = [r.detour for r in served if r.detour is not None]
    asked = n - by["cancelled"]
    allowed = [r for r in records if r.reason not in RULE_REASONS]
    at_wish = sum(1 for r in served if r.shift_s == 0)
    return {
        "requests": n,
        "served": by["served"],
        "rejected": by["rejected"],
        "cancelled": by["cancelled"],
        "no_show": by["no_show"],
        "lost": by["lost"],
        "served_share": by["served"] / asked if asked else None,
        "served_at_wish": at_wish,
        "served_alternative": len(served) - at_wish,
        "served_at_wish_share": at_wish / asked if asked else None,
        "served_alternative_share": (len(served) - at_wish) / asked if asked else None,
        "declined_alternative": sum(1 for r in records if r.reason == "declined_alternative"),
        # why the wished time could not be kept, whatever followed (a counter-offer taken or
        # declined, or a plain no): a full fleet's seats, no bus in reach, a detour, ...
        "wish_not_kept": dict(Counter(r.wish_reason for r in records if r.wish_reason)),
        "allowed": len(allowed),
        "offered_share": sum(r.offered for r in allowed) / len(allowed) if allowed else None,
        "wait_p50_s": _pct(waits, 50),
        "wait_p90_s": _pct(waits, 90),
        "promised_wait_p50_s": _pct(promised, 50),
        "promised_wait_p90_s": _pct(promised, 90),
        "ride_p50_s": _pct(rides, 50),
        "detour_p50": _pct([float(x) for x in detours], 50),
        "detour_p90": _pct([float(x) for x in detours], 90),
    }


CORE_MARK = "Kernstadt"
#: rejections by the rules (what was asked), not by the fleet: these requests are not
#: "allowed", the denominator of ``offered_share``
RULE_REASONS = frozenset(
    {r.value for r in INPUT_REASONS} | {"invalid_input", "invalid_coordinate", "no_road_nearby"}
)


def villages(
    districts: dict[str, dict[str, Any]], asked_from: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Served share of the core town against all villages together (``asked_from``: the
    blocks whose requests minus cancellations are the denominators; default ``districts``)."""
    asked_from = asked_from or districts
    tot = {"core": [0, 0], "villages": [0, 0]}
    for name, block in asked_from.items():
        if name.startswith("("):
            continue
        part = tot["core" if CORE_MARK in name else "villages"]
        part[0] += block["requests"] - block.get("cancelled", 0)
        part[1] += districts.get(name, {}).get("served", 0)
    core = tot["core"][1] / tot["core"][0] if tot["core"][0] else None
    vill = tot["villages"][1] / tot["villages"][0] if tot["villages"][0] else None
    return {
        "core_served_share": core,
        "villages_served_share": vill,
        "ratio": vill / core if core and vill is not None else None,
    }


def compute(
    result: SimResult, district_of: Callable[[float, float], str | None], co2: Co2Params
) -> dict[str, Any]:
    """The KPI table of one run: ``overall``, ``districts`` and ``buses``."""
    records = trip_records(result, district_of)
    overall = _block(records)
    overall["rejections"] = dict(Counter(r.reason for r in records if r.status == "rejected"))
    night = result.service.co2(co2)
    totals = result.service.ledger().totals()
    hours = 0.0
    buses = {}
    for vid, points in result.timelines.items():
        departs = [p.t for p in points if p.what == "depart"]
        span = points[-1].t - departs[0] if departs else 0
        hours += span / 3600
        buses[vid] = {
            "stops": sum(1 for p in points if p.what in ("board", "alight", "no_show")),
            "max_onboard": max((p.onboard for p in points), default=0),
            "hours": round(span / 3600, 3),
            # the bus's night: [time s, road node, passengers on board, what happened]
            "timeline": [[p.t, p.node, p.onboard, p.what] for p in points],
        }
    bookings = result.service.snapshot().bookings.values()
    broken = sum(
        1
        for b in bookings
        if b.picked_up_s is not None
        and (
            not b.pickup_window[0] <= b.picked_up_s <= b.pickup_window[1]
            or (b.dropped_off_s is not None and b.dropped_off_s > b.latest_dropoff_s)
        )
    )
    direct_km = (
        sum(b.direct_distance_m for b in bookings if b.status == BookingStatus.FINISHED) / 1000
    )
    overall.update(
        {
            "promises_broken": broken,
            "direct_km": direct_km,
            "bus_km_per_direct_km": night.vehicle_km / direct_km if direct_km else None,
            "vehicle_km": night.vehicle_km,
            "empty_km": night.empty_km,
            "reposition_km": night.reposition_km,
            "passenger_km": night.passenger_km,
            "occupancy": night.passenger_km / night.vehicle_km if night.vehicle_km else 0.0,
            "pooled_share": night.pooled_share,
            "vehicle_hours": hours,
            "fares_cents": totals.balance_cents,
            "bus_kg_co2": night.bus_kg,
            "car_kg_co2": night.car_kg,
            "co2_saved_kg": night.saved_kg,
            "counterfactual_kg_co2": night.counterfactual_kg,
            "co2_saved_counterfactual_kg": night.saved_counterfactual_kg,
            "reopt_rounds": result.reopt_rounds,
            "reopt_commits": result.reopt_commits,
        }
    )
    districts = {}
    for name in sorted({r.district for r in records}):
        districts[name] = _block([r for r in records if r.district == name])
    overall.update(punctuality(result))
    trains = train_kpis(result)
    if trains is not None:
        overall.update({f"train_{k}": v for k, v in _train_summary(trains).items()})
    return {
        "scenario": result.scenario.name,
        "seed": result.seed,
        "buses": result.scenario.fleet.buses,
        "overall": overall,
        **({"trains": trains} if trains is not None else {}),
        "villages": villages(districts),
        "districts": districts,
        "hours": by_hour(records),
        "vehicles": buses,
    }


PUNCTUALITY_EVENTS = (
    "booking.late_notice",
    "booking.moved",
    "vehicle.out_of_service",
    "vehicle.retimed",
)


def punctuality(result: SimResult) -> dict[str, Any]:
    """Whether the buses came when promised: the share of pickups the bus reached by the
    window's end (an early bus waits), lateness past it (s, p50 / p95 over all pickups), the
    late notices riders got and how long before the bus came (p50), the riders moved off a
    late bus to one that keeps their promise, the departures the noise made late and the
    re-timings of buses that had not left, and the buses taken out of service with their
    riders re-planned or cancelled."""
    state = result.service.snapshot()
    late: list[float] = []
    arrived: dict[str, int] = {}
    for o in result.outcomes:
        if o.booking_id is None or o.bus_at_pickup_s is None:
            continue
        b = state.bookings[o.booking_id]
        if b.picked_up_s is None:
            continue
        arrived[o.booking_id] = o.bus_at_pickup_s
        late.append(float(max(0, o.bus_at_pickup_s - b.pickup_window[1])))
    # one pass over the night's event stream (each call reads all of it)
    seen: dict[str, list[Event]] = {t: [] for t in PUNCTUALITY_EVENTS}
    for _, e in result.service.store.recent_events(100_000, PUNCTUALITY_EVENTS):
        seen[e.type].append(e)
    notices = seen["booking.late_notice"]
    leads = [
        float(arrived[e.data["booking_id"]] - e.at_s)
        for e in notices
        if e.data.get("stop") == "pickup" and e.data["booking_id"] in arrived
    ]
    outs = [e.data for e in seen["vehicle.out_of_service"]]
    moved = [e.data for e in seen["booking.moved"]]
    return {
        "pickups": len(late),
        "punctual_share": sum(1 for x in late if x == 0) / len(late) if late else None,
        "lateness_p50_s": _pct(late, 50),
        "lateness_p95_s": _pct(late, 95),
        "late_pickups": sum(1 for x in late if x > 0),
        "late_notices": len(notices),
        "notice_lead_p50_s": _pct(leads, 50),
        "breakdowns": len(outs),
        "breakdown_replanned": sum(len(d["replanned"]) for d in outs),
        "breakdown_cancelled": sum(len(d["cancelled"]) for d in outs),
        "late_starts": result.late_starts,
        "buses_retimed": len(seen["vehicle.retimed"]),
        "late_replanned": sum(1 for d in moved if d.get("by") == "re-planning"),
    }


def train_kpis(result: SimResult) -> dict[str, Any] | None:
    """Riders who meet trains, per direction (None: no such riders): requests, booked,
    served; from a train, the wait from the train's actual arrival to the pickup (s, p50 /
    p90); connections missed among the bookings the riders did not cancel themselves (from
    a train: not picked up; to a train: not at the station by the actual departure);
    to a train also how many arrived the buffer early."""
    rows = [o for o in result.outcomes if o.trip.train]
    if not rows:
        return None
    state = result.service.snapshot()
    buffer = result.service.dispatcher.policy.train_buffer_s
    out: dict[str, Any] = {}
    for kind in ("from_train", "to_train"):
        mine = [o for o in rows if o.trip.train_kind == kind]
        booked = [
            state.bookings[o.booking_id]
            for o in mine
            if o.booking_id is not None and not o.cancelled_by_rider
        ]
        served = [b for b in booked if b.status == BookingStatus.FINISHED]
        block: dict[str, Any] = {
            "requests": len(mine),
            "booked": len(booked),
            "served": len(served),
            "served_share": len(served) / len(mine) if mine else None,
        }
        if kind == "from_train":
            arrived = {o.booking_id: o.trip.train_at_s + o.trip.train_delay_s for o in mine}
            waits = [
                float(b.picked_up_s - arrived[b.booking_id])
                for b in served
                if b.picked_up_s is not None
            ]
            block["wait_after_arrival_p50_s"] = _pct(waits, 50)
            block["wait_after_arrival_p90_s"] = _pct(waits, 90)
            block["missed"] = sum(
                1 for b in booked if b.status not in (BookingStatus.FINISHED, BookingStatus.NO_SHOW)
            )
            block["cancelled_late_train"] = sum(1 for o in mine if o.connection_missed)
        else:
            leaves = {o.booking_id: o.trip.train_at_s + o.trip.train_delay_s for o in mine}

            def made_it(b: Booking, spare: int, leaves: dict[str | None, int] = leaves) -> bool:
                return b.dropped_off_s is not None and b.dropped_off_s <= (
                    leaves[b.booking_id] - spare
                )

            block["missed"] = sum(
                1 for b in booked if b.status != BookingStatus.NO_SHOW and not made_it(b, 0)
            )
            block["buffer_kept"] = sum(1 for b in served if made_it(b, buffer))
        out[kind] = block
    return out


def _train_summary(trains: dict[str, Any]) -> dict[str, Any]:
    a, d = trains["from_train"], trains["to_train"]
    return {
        "requests": a["requests"] + d["requests"],
        "served_share": (a["served"] + d["served"]) / (a["requests"] + d["requests"])
        if a["requests"] + d["requests"]
        else None,
        "wait_p50_s": a["wait_after_arrival_p50_s"],
        "wait_p90_s": a["wait_after_arrival_p90_s"],
        "missed": a["missed"] + d["missed"],
    }


def fmt(value: Any, unit: str) -> str:
    """A KPI's value for a reader in its unit ("%", "min" from seconds, "km", "kg", "x"); "-"
    for none."""
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.1%}"
    if unit == "min":
        return f"{value / 60:.1f} min"
    if unit == "km":
        return f"{value:,.0f} km"
    if unit == "kg":
        return f"{value:,.1f} kg"
    if unit == "x":
        return f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else f"{value:.2f}"


#: the planner's summary: (label with unit, key in ``overall`` or ``villages``, unit)
SUMMARY: tuple[tuple[str, str, str], ...] = (
    ("requests", "requests", ""),
    ("  planned by the bound (allowed, not cancelled first)", "planned", ""),
    ("served (trips)", "served", ""),
    ("served share (of requests not cancelled)", "served_share", "%"),
    ("  served at the wished time", "served_at_wish_share", "%"),
    ("  served with an alternative", "served_alternative_share", "%"),
    ("offered (wish or alternative, of allowed)", "offered_share", "%"),
    ("Kernstadt served share", "core_served_share", "%"),
    ("villages (Ortsteile) served share", "villages_served_share", "%"),
    ("villages / Kernstadt", "ratio", "x"),
    ("wait p50 (pickup - wished time)", "wait_p50_s", "min"),
    ("wait p90", "wait_p90_s", "min"),
    ("ride time p50", "ride_p50_s", "min"),
    ("detour p90 (ride / direct time)", "detour_p90", "x"),
    ("vehicle-km", "vehicle_km", "km"),
    ("  empty km", "empty_km", "km"),
    ("  repositioning km", "reposition_km", "km"),
    ("bus km per direct km", "bus_km_per_direct_km", "x"),
    ("pooled share of passenger-km", "pooled_share", "%"),
    ("occupancy (passenger-km / vehicle-km)", "occupancy", "x"),
    ("bus CO2", "bus_kg_co2", "kg"),
    ("CO2 saved vs one car per booking", "co2_saved_kg", "kg"),
    ("CO2 saved vs what riders would do", "co2_saved_counterfactual_kg", "kg"),
    ("pickups by the promised window's end", "punctual_share", "%"),
    ("  lateness p95 (past the window)", "lateness_p95_s", "min"),
    ("  late notices sent", "late_notices", ""),
    ("  notice lead p50 (before the bus came)", "notice_lead_p50_s", "min"),
    ("  riders moved off a late bus", "late_replanned", ""),
    ("drivers late setting off (noise)", "late_starts", ""),
    ("promises broken", "promises_broken", ""),
    ("breakdowns: riders re-planned", "breakdown_replanned", ""),
    ("breakdowns: riders cancelled", "breakdown_cancelled", ""),
    ("train riders (from and to trains)", "train_requests", ""),
    ("  train riders served", "train_served_share", "%"),
    ("  wait after the train p50", "train_wait_p50_s", "min"),
    ("  wait after the train p90", "train_wait_p90_s", "min"),
    ("  connections missed (booked)", "train_missed", ""),
)


def summary_rows(table: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(label, online, hindsight) for the planner's summary; "-" where a run has no value."""
    online = {**table["overall"], **table.get("villages", {})}
    bound = table.get("hindsight")
    bound_all = {**bound, **bound.get("villages", {})} if bound else {}
    rows = []
    for label, key, unit in SUMMARY:
        if key not in online and key not in bound_all:
            continue
        rows.append((label, fmt(online.get(key), unit), fmt(bound_all.get(key), unit)))
    return rows


def occupancy_over_night(result: SimResult, step_s: int = 600) -> tuple[list[int], list[float]]:
    """Mean passengers on board per bus, sampled every ``step_s`` (for the report chart)."""
    start, end = result.scenario.start_s, result.scenario.end_s + 3600
    times = list(range(start, end, step_s))
    values = []
    for t in times:
        total = 0
        for points in result.timelines.values():
            before = [p for p in points if p.t <= t]
            total += before[-1].onboard if before else 0
        values.append(total / max(len(result.timelines), 1))
    return times, values
