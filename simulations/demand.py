"""Night demand for Soest from ``data/soest``: who wants to go where, and when.

Model (every number is a scenario parameter, see :mod:`simulations.scenario`):

- **count**: Poisson with mean ``requests x scale``; **time** of asking drawn from the hourly
  profile of the night (weekday or weekend), uniform within the hour;
- **homes**: residential 250 m cells weighted by their population estimate ``pop_est``, a point
  spread ``home_jitter_m`` around the cell centre;
- **attractors** (points of interest inside the service area): going out and coming home use
  night-life (weight 5), food (2), culture and event venues (3), lodging (1); trains arrive at
  Soest station; shift workers go between homes and hospitals (3) or industry (2);
- **purposes**: going out (home -> attractor), coming home (attractor -> home), from the train
  (station -> home), shift work (home <-> work, either way);
- **group size** from the shares of 1..4 riders, wheelchair users and prams by their shares;
- **pre-booked** share asks ahead for a pickup ``prebook_lead_min`` later; a ``cancel_share``
  cancels some minutes after booking, a ``no_show_share`` does not come to the pickup.

A trip list can also be replayed from CSV (see :func:`read_trips_csv` for the columns).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from graphs.areas import main_station_of, pois_inside, residents
from nachtbus.errors import InvalidInput
from nachtbus.transit.timetable import TrainCall
from nachtbus.units import parse_clock
from simulations.scenario import Scenario

ATTRACT_OUT = {"nightlife": 5.0, "food": 2.0, "culture": 3.0, "event_venue": 3.0, "lodging": 1.0}
ATTRACT_WORK = {"health": 3.0, "work": 2.0}
PURPOSES = ("going_out", "coming_home", "from_train", "shift_work")


@dataclass(frozen=True)
class Trip:
    """One rider's (or group's) request, as the simulator replays it."""

    trip_id: str
    ask_s: int  # when the request is made
    origin: tuple[float, float]
    destination: tuple[float, float]
    passengers: int = 1
    wheelchairs: int = 0
    prams: int = 0
    pickup_s: int | None = None  # pre-booked pickup time; None: leave now
    cancel_after_s: int | None = None  # cancels this long after booking
    no_show: bool = False
    purpose: str = ""
    train: str = ""  # the GTFS trip id of the train this rider meets
    train_kind: str = ""  # from_train | to_train
    train_delay_s: int = 0  # how late that train will be (known delay_notice before it)
    train_at_s: int = 0  # its timetabled arrival (from_train) or departure (to_train)


@dataclass(frozen=True)
class SoestInputs:
    """The demand inputs of a town's folder (data/soest, or shared/data/areas/<town>): homes
    and attractors inside the service area, and its main station."""

    homes: np.ndarray  # (n, 2) lat, lon of residential cells
    home_weight: np.ndarray
    pois: dict[str, np.ndarray]  # category -> (m, 2) lat, lon
    station: tuple[float, float]

    @classmethod
    def load(cls, folder: Path) -> SoestInputs:
        cells = residents(folder)
        homes = [(lat, lon) for lat, lon, _ in cells]
        w = np.asarray([pop for _, _, pop in cells])
        inside = pois_inside(folder)
        pois: dict[str, list[tuple[float, float]]] = {}
        for row in inside:
            pois.setdefault(row["category"], []).append((row["lat"], row["lon"]))
        # riders from trains come off the main station; a town without one: its centre
        station = main_station_of(inside, cells) or tuple(np.average(homes, axis=0, weights=w))
        return cls(
            homes=np.asarray(homes),
            home_weight=w / w.sum(),
            pois={k: np.asarray(v) for k, v in pois.items()},
            station=station,
        )


def _pick(rng: np.random.Generator, pts: np.ndarray) -> tuple[float, float]:
    lat, lon = pts[int(rng.integers(len(pts)))]
    return float(lat), float(lon)


def _attractor(
    rng: np.random.Generator, inputs: SoestInputs, weights: dict[str, float]
) -> tuple[float, float]:
    cats = [c for c in weights if c in inputs.pois and len(inputs.pois[c])]
    w = np.asarray([weights[c] * len(inputs.pois[c]) for c in cats])
    cat = cats[int(rng.choice(len(cats), p=w / w.sum()))]
    return _pick(rng, inputs.pois[cat])


def _home(rng: np.random.Generator, inputs: SoestInputs, jitter_m: float) -> tuple[float, float]:
    lat, lon = inputs.homes[int(rng.choice(len(inputs.homes), p=inputs.home_weight))]
    dlat = rng.normal(0, jitter_m) / 111_320
    dlon = rng.normal(0, jitter_m) / (111_320 * math.cos(math.radians(lat)))
    return float(lat + dlat), float(lon + dlon)


def generate(scenario: Scenario, inputs: SoestInputs, seed: int) -> list[Trip]:
    """The night's trips, reproducible from the scenario and the seed, ordered by asking time."""
    d = scenario.demand
    rng = np.random.default_rng(seed)
    profile = np.asarray(scenario.hourly_profile())
    hours = min(len(profile), scenario.night_hours)
    profile = profile[:hours] / profile[:hours].sum()
    n = int(rng.poisson(d.requests * d.scale))
    # with a timetable, the trains' own riders replace the generic ones (train_trips)
    shares = np.asarray(scenario.purpose_shares())
    groups = np.asarray(d.group_sizes) / sum(d.group_sizes)
    trips = []
    for i in range(n):
        hour = int(rng.choice(hours, p=profile))
        ask = scenario.start_s + hour * 3600 + int(rng.integers(3600))
        ask = min(ask, scenario.end_s - 1)
        purpose = PURPOSES[int(rng.choice(4, p=shares / shares.sum()))]
        home = _home(rng, inputs, d.home_jitter_m)
        if purpose == "going_out":
            a, b = home, _attractor(rng, inputs, ATTRACT_OUT)
        elif purpose == "coming_home":
            a, b = _attractor(rng, inputs, ATTRACT_OUT), home
        elif purpose == "from_train":
            a, b = inputs.station, home
        else:
            work = _attractor(rng, inputs, ATTRACT_WORK)
            a, b = (home, work) if rng.random() < 0.5 else (work, home)
        size = 1 + int(rng.choice(len(groups), p=groups))
        wheel = int(rng.random() < d.wheelchair_share)
        pram = int(rng.random() < d.pram_share)
        pickup = None
        if rng.random() < d.prebooked_share:
            lead = int(rng.integers(d.prebook_lead_min[0], d.prebook_lead_min[1] + 1)) * 60
            pickup = ask + lead
        cancel = int(rng.integers(60, 900)) if rng.random() < d.cancel_share else None
        no_show = bool(rng.random() < d.no_show_share)
        trips.append(
            Trip(
                f"t{i:04d}",
                ask,
                a,
                b,
                size,
                min(wheel, size),
                pram,
                pickup,
                cancel,
                no_show,
                purpose,
            )
        )
    trips.sort(key=lambda t: (t.ask_s, t.trip_id))
    return trips


def told_ahead(trips: Sequence[Trip], minutes: int, night_start_s: int) -> list[Trip]:
    """The same trips, each rider who asks to leave now telling the trip ``minutes`` before:
    asked then (the night's start at the earliest), the pickup at the time they asked
    before. Pre-booked riders and riders who meet a train are left as they are."""
    if minutes <= 0:
        return list(trips)
    out = [
        replace(t, ask_s=max(night_start_s, t.ask_s - 60 * minutes), pickup_s=t.ask_s)
        if t.pickup_s is None and not t.train
        else t
        for t in trips
    ]
    out.sort(key=lambda t: (t.ask_s, t.trip_id))
    return out


def train_trips(
    scenario: Scenario,
    inputs: SoestInputs,
    calls: Sequence[TrainCall],
    seed: int,
    walk_s: int = 180,
) -> list[Trip]:
    """The riders of the night's trains (``calls``: the timetable's, in the scenario's
    hours): Poisson(``riders_per_arrival``) bookings off each arriving train to homes,
    Poisson(``riders_per_departure``) from homes to each departing one, each booked
    ``book_lead_min`` before its train; a ``delay_share`` of the trains late by 1 to
    ``delay_max_min`` minutes (``walk_s``: platform to bus, for the baseline's riders who
    ask once off the train). Reproducible from the seed."""
    t = scenario.trains
    d = scenario.demand
    rng = np.random.default_rng([seed, 17])
    groups = np.asarray(d.group_sizes) / sum(d.group_sizes)
    out: list[Trip] = []
    delays: dict[str, int] = {}
    for c in calls:
        if c.trip_id not in delays:
            late = rng.random() < t.delay_share
            delays[c.trip_id] = int(rng.integers(1, t.delay_max_min + 1)) * 60 if late else 0
        for kind, mean, at in (
            ("from_train", 0.0 if c.first else t.riders_per_arrival, c.arrival_s),
            ("to_train", 0.0 if c.last else t.riders_per_departure, c.departure_s),
        ):
            for _ in range(int(rng.poisson(mean * d.scale))):
                lead = int(rng.integers(t.book_lead_min[0], t.book_lead_min[1] + 1)) * 60
                ask = at - lead - (0 if kind == "from_train" else 30 * 60)
                if not scenario.start_s <= at <= scenario.end_s or ask < scenario.start_s:
                    continue
                if kind == "from_train" and not t.connect:  # asks once off the train
                    ask = at + delays[c.trip_id] + walk_s
                home = _home(rng, inputs, d.home_jitter_m)
                size = 1 + int(rng.choice(len(groups), p=groups))
                out.append(
                    Trip(
                        f"r{len(out):04d}",
                        ask,
                        inputs.station if kind == "from_train" else home,
                        home if kind == "from_train" else inputs.station,
                        size,
                        int(rng.random() < d.wheelchair_share),
                        int(rng.random() < d.pram_share),
                        purpose=kind,
                        train=c.trip_id,
                        train_kind=kind,
                        train_delay_s=delays[c.trip_id],
                        train_at_s=at,
                    )
                )
    return out


CSV_COLUMNS = (
    "trip_id",
    "ask",
    "origin_lat",
    "origin_lon",
    "dest_lat",
    "dest_lon",
    "passengers",
    "wheelchairs",
    "prams",
    "pickup",
    "cancel_after_s",
    "no_show",
)


def read_trips_csv(path: Path) -> list[Trip]:
    """Replay a trip list. Columns: trip_id, ask (HH:MM[:SS]), origin_lat, origin_lon,
    dest_lat, dest_lon, and optional passengers (1), wheelchairs (0), prams (0), pickup
    (HH:MM, empty: leave now), cancel_after_s (empty: no), no_show (0/1)."""
    trips = []
    try:
        f = path.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="trips_csv") from None
    with f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                trips.append(
                    Trip(
                        trip_id=row["trip_id"],
                        ask_s=parse_clock(row["ask"]),
                        origin=(float(row["origin_lat"]), float(row["origin_lon"])),
                        destination=(float(row["dest_lat"]), float(row["dest_lon"])),
                        passengers=int(row.get("passengers") or 1),
                        wheelchairs=int(row.get("wheelchairs") or 0),
                        prams=int(row.get("prams") or 0),
                        pickup_s=parse_clock(row["pickup"]) if row.get("pickup") else None,
                        cancel_after_s=int(row["cancel_after_s"])
                        if row.get("cancel_after_s")
                        else None,
                        no_show=(row.get("no_show") or "0").strip() in ("1", "true", "yes"),
                        purpose="replay",
                    )
                )
            except (KeyError, ValueError) as exc:
                raise InvalidInput(f"{path} line {n}: {exc}", field="trips_csv") from None
    trips.sort(key=lambda t: (t.ask_s, t.trip_id))
    return trips


def write_trips_csv(trips: Sequence[Trip], path: Path) -> None:
    from nachtbus.units import format_clock

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for t in trips:
            w.writerow(
                (
                    t.trip_id,
                    format_clock(t.ask_s),
                    t.origin[0],
                    t.origin[1],
                    t.destination[0],
                    t.destination[1],
                    t.passengers,
                    t.wheelchairs,
                    t.prams,
                    format_clock(t.pickup_s) if t.pickup_s is not None else "",
                    t.cancel_after_s if t.cancel_after_s is not None else "",
                    int(t.no_show),
                )
            )
