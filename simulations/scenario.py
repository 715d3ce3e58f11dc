"""A planner's scenario (TOML): the night, the fleet, the service rules and the demand.

Every number of the demand model is a parameter here, with a documented default; a run is
reproducible from its scenario and seed. A ``[sweep]`` table lists values to try (e.g.
``buses = [2, 4, 6, 8]``, ``demand_scale = [0.5, 1.0, 2.0]``): one run per combination.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nachtbus.errors import InvalidInput, located
from nachtbus.units import check_clocks, parse_clock

# Share of the night's requests per hour from 20:00 (index 0) to 04:00 (index 8); they are
# normalised. Weekday nights fade after midnight; weekend nights peak after midnight.
#: the shipped scenarios (friday.toml, weekday.toml, ...)
SHIPPED = Path(__file__).resolve().parent / "scenarios"
WEEKDAY_PROFILE = (0.14, 0.16, 0.17, 0.16, 0.13, 0.10, 0.07, 0.04, 0.03)
WEEKEND_PROFILE = (0.07, 0.09, 0.11, 0.13, 0.16, 0.16, 0.13, 0.09, 0.06)


class ScenarioError(InvalidInput):
    code = "invalid_scenario"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Purposes(_Model):
    """Shares of trip purposes (normalised)."""

    going_out: float = Field(default=0.30, ge=0, description="home -> night-life, food, culture")
    coming_home: float = Field(default=0.45, ge=0, description="night-life, food -> home")
    from_train: float = Field(default=0.15, ge=0, description="Soest station -> home")
    shift_work: float = Field(default=0.10, ge=0, description="home <-> hospitals, industry")


class Demand(_Model):
    requests: int = Field(default=300, ge=0, description="Expected requests of the night.")
    scale: float = Field(default=1.0, gt=0, description="Multiplies `requests` (sweeps).")
    profile: tuple[float, ...] | None = Field(
        default=None, description="Hourly shares from the start hour; default by `night`."
    )
    purposes: Purposes = Purposes()
    group_sizes: tuple[float, ...] = Field(
        default=(0.62, 0.25, 0.09, 0.04), description="Shares of groups of 1, 2, 3, 4 riders."
    )
    wheelchair_share: float = Field(default=0.02, ge=0, le=1)
    pram_share: float = Field(default=0.02, ge=0, le=1)
    prebooked_share: float = Field(default=0.25, ge=0, le=1)
    prebook_lead_min: tuple[int, int] = Field(
        default=(20, 90), description="Pre-booked: minutes from booking to pickup (uniform)."
    )
    cancel_share: float = Field(default=0.04, ge=0, le=1)
    no_show_share: float = Field(default=0.02, ge=0, le=1)
    home_jitter_m: float = Field(default=100.0, ge=0, description="Spread inside a 250 m cell.")
    alternative_accept: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Chance that a rider whose wish cannot be kept takes a counter-offer, at a "
        "shift of 0; it halves every `alternative_accept_halving_min` of shift. The rider "
        "looks at the closest counter-offer only and takes it or gives up.",
    )
    alternative_accept_halving_min: float = Field(
        default=15.0,
        gt=0,
        description="Minutes of shift that halve the chance a counter-offer is taken (so 5 min "
        "later: 63 % of `alternative_accept`, 15 min: 50 %, 30 min: 25 %).",
    )
    told_ahead_min: int = Field(
        default=0,
        ge=0,
        le=180,
        description="Riders who would ask to leave now tell the service their trip this many "
        "minutes before (asked at the pickup they wished, from the night's start at the "
        "earliest), also in a replayed trip list; pre-booked and train riders unchanged. With "
        "the dispatching "
        "`prebook_window_as_asked` their windows stay those of asking then: the same trips, "
        "known earlier (benchmarks/foresight.py).",
    )
    trips_csv: Path | None = Field(
        default=None, description="Replay this trip list instead of generating demand."
    )

    @model_validator(mode="after")
    def _check(self) -> Demand:
        _check_shares("group_sizes", self.group_sizes)
        if self.profile is not None:
            _check_shares("profile", self.profile)
        lo, hi = self.prebook_lead_min
        if not 0 <= lo <= hi:
            raise ValueError(
                f"prebook_lead_min: must be [low, high] minutes with 0 <= low <= high, got "
                f"[{lo}, {hi}]"
            )
        return self


def _check_shares(name: str, shares: tuple[float, ...]) -> None:
    """Shares to draw from: at least one, none negative, not all 0 (the error names ``name``)."""
    if not shares:
        raise ValueError(f"{name}: needs at least one share")
    if any(x < 0 for x in shares):
        raise ValueError(f"{name}: shares must be >= 0, got {list(shares)}")
    if sum(shares) <= 0:
        raise ValueError(f"{name}: the shares must not all be 0")


class Fleet(_Model):
    buses: int = Field(default=4, ge=1, le=50)
    seats: int = Field(default=8, ge=1)
    wheelchair_places: int = Field(default=1, ge=0)


class Dispatching(_Model):
    reoptimise: bool = Field(
        default=True,
        description="Periodic re-optimisation: ruin and recreate, then OR-Tools from its best.",
    )
    reopt_interval_s: int = Field(default=600, ge=60, description="Simulated seconds between.")
    retime_not_left: bool = Field(
        default=True,
        description="As the live rounds do (every 20 s), re-time a bus whose driver has not "
        "set off (noise's late starts) and recover the promises it then breaks; off: its "
        "riders hear of it only once the bus reports driving.",
    )
    reopt_lns_steps: int = Field(
        default=2000,
        ge=0,
        description="Ruin-and-recreate steps of each re-optimisation (0: OR-Tools only); a "
        "step limit, so that a run is reproducible from its seed.",
    )
    reopt_solution_limit: int = Field(
        default=60,
        ge=1,
        description="OR-Tools, after ruin and recreate, stops after this many solutions, so "
        "that a run is reproducible from its seed (a time limit alone is not).",
    )
    reopt_time_limit_s: float = Field(
        default=2.0, gt=0, description="Safety cap of one re-optimisation (wall seconds)."
    )
    rebalance: bool = Field(
        default=False,
        description="Idle buses drive towards the zones where riders are expected next "
        "(dispatch.rebalancing; the forecast from this scenario's demand model). Off by "
        "default: on the shipped nights it showed no gain (benchmarks/simulate.py).",
    )
    rebalance_interval_s: int = Field(default=300, ge=60, description="Seconds between rounds.")
    rebalance_horizon_s: int = Field(
        default=1800, ge=60, description="The time slice whose expected demand sets targets."
    )
    rebalance_cell_m: float = Field(default=2000.0, gt=0, description="Zone cell size, m.")
    rebalance_hop_s: int = Field(
        default=60,
        ge=10,
        description="A repositioning bus reports where it will be free every this many seconds "
        "of driving (as a tablet reports its position).",
    )
    max_wait_s: int | None = Field(default=None, description="Override the policy's max wait.")
    detour_alpha: float | None = None
    detour_beta_s: int | None = None
    max_alternatives: int | None = Field(
        default=None, description="Override the policy's counter-offers per inquiry (0: none)."
    )
    far_pickup_s: int | None = Field(
        default=None,
        description="Override the policy's far-pickup rule: pickups this many seconds from the "
        "depot may wait far_max_wait_s (0: the same wait everywhere).",
    )
    far_max_wait_s: int | None = Field(default=None, description="Override the far wait.")
    plan_buffer_s: int | None = Field(
        default=None,
        description="Override the policy's slack that plans keep inside every promise.",
    )
    alternative_shift_max_s: int | None = Field(
        default=None, description="Override how far a counter-offer may be from the wish."
    )
    rescue_steps: int | None = Field(
        default=None,
        description="Override the policy's rescue: ruin-and-recreate steps that re-plan the "
        "open trips when no bus can take a new one as its plan stands (0: none).",
    )
    prebook_window_as_asked: bool | None = Field(
        default=None,
        description="Override the policy: a pickup asked for a later time gets the window of a "
        "rider asking at that time (the leave-now wait) instead of the pre-booked 10 min.",
    )


class Trains(_Model):
    """Riders who meet trains, from a GTFS timetable (nachtbus.transit): off each arriving
    train come Poisson(``riders_per_arrival``) bookings to homes, to each departing one
    Poisson(``riders_per_departure``) from homes; they replace the generic ``from_train``
    purpose. Riders off a train book ``book_lead_min`` before its arrival, riders to a
    train that plus 30 min before its departure. A share of trains is late, told
    ``delay_notice_min`` before the arrival (as a GTFS-Realtime TripUpdate would)."""

    feed: str = Field(
        default="none",
        description="'none' (no timetable), 'example' (the shipped EXAMPLE feed, invented "
        "trains) or the path of a GTFS feed.",
    )
    riders_per_arrival: float = Field(default=1.5, ge=0, description="Bookings per arrival.")
    riders_per_departure: float = Field(default=0.5, ge=0, description="Bookings per departure.")
    book_lead_min: tuple[int, int] = Field(
        default=(5, 45), description="Minutes before the train that riders book (uniform)."
    )
    delay_share: float = Field(default=0.3, ge=0, le=1, description="Share of late trains.")
    delay_max_min: int = Field(
        default=15, ge=1, le=120, description="A late train is 1 to this many minutes late."
    )
    delay_notice_min: int = Field(
        default=10, ge=0, description="The delay is known this long before the arrival."
    )
    connect: bool = Field(
        default=True,
        description="Riders book their train with the trip (the bus follows its delays). "
        "False, the baseline: they book as ordinary riders, off a train when they are at the "
        "station (its actual arrival plus the walk), to a train arriving by its departure "
        "less the buffer.",
    )

    @property
    def enabled(self) -> bool:
        return self.feed.lower() != "none"


class Noise(_Model):
    """How the real night differs from the model (off unless ``enabled``; the values are the
    documented defaults, assumptions to be replaced by measured ones): each leg's drive takes
    the modelled time x a lognormal factor with median ``drive_bias`` and log-sd
    ``drive_sigma`` (seeded per bus and leg); a ``slow_rider_share`` of riders take an
    exponential extra time with mean ``slow_rider_mean_s`` to board (the dwell's tail); the
    bus reports its position every ``report_s`` while driving, as a tablet would; a
    ``late_start_share`` of the departures for a next stop are made late by an exponential
    time with mean ``late_start_mean_s``, the tablet silent meanwhile (a driver held up;
    none by default)."""

    enabled: bool = False
    drive_bias: float = Field(default=1.05, gt=0.5, lt=2.0, description="Median factor.")
    drive_sigma: float = Field(default=0.12, ge=0, le=1.0, description="Log-sd of the factor.")
    slow_rider_share: float = Field(default=0.15, ge=0, le=1)
    slow_rider_mean_s: float = Field(default=60.0, ge=0, le=1800)
    report_s: int = Field(default=30, ge=5, le=600, description="Position report interval.")
    late_start_share: float = Field(
        default=0.0, ge=0, le=1, description="Share of departures the driver makes late."
    )
    late_start_mean_s: float = Field(
        default=240.0, ge=0, le=3600, description="Mean of a late start (exponential)."
    )


class Breakdown(_Model):
    bus: str = Field(description="Which bus, e.g. bus-2.")
    at: str = Field(description="When (HH:MM): it is taken out of service then.")

    @model_validator(mode="after")
    def _check(self) -> Breakdown:
        check_clocks(self, "at")
        return self


class _Spell(_Model):
    """A stretch of the night, ``start`` to ``end`` (HH:MM)."""

    start: str
    end: str

    @model_validator(mode="after")
    def _check(self) -> _Spell:
        check_clocks(self, "start", "end")
        return self


class Closure(_Spell):
    """A road closed or jammed: drives whose path comes within ``radius_m`` of the point
    between ``start`` and ``end`` take ``factor`` times as long (the planner does not know)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(default=300.0, gt=0, le=5000)
    factor: float = Field(default=3.0, ge=1.0, le=20.0)


class HeavyNoise(_Spell):
    """A spell of heavy noise (fog, an event): ``drive_sigma`` and ``drive_bias`` there."""

    drive_sigma: float = Field(default=0.35, ge=0, le=1.5)
    drive_bias: float = Field(default=1.25, gt=0.5, lt=3.0)


class Faults(_Model):
    """What goes wrong on the night: breakdowns, closed roads, spells of heavy noise."""

    breakdowns: tuple[Breakdown, ...] = ()
    closures: tuple[Closure, ...] = ()
    heavy_noise: tuple[HeavyNoise, ...] = ()


class Scenario(_Model):
    name: str = "scenario"
    night: Literal["weekday", "weekend"] = "weekday"
    start: str = "20:00"
    end: str = "05:00"
    seed: int = Field(default=1, ge=0, description="Random seed of the night's demand.")
    fleet: Fleet = Fleet()
    demand: Demand = Demand()
    dispatching: Dispatching = Dispatching()
    trains: Trains = Trains()
    noise: Noise = Noise()
    faults: Faults = Faults()
    sweep: dict[str, tuple[Any, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        check_clocks(self, "start", "end")
        hours = self.night_hours
        profile = self.demand.profile
        if profile is not None and sum(profile[:hours]) <= 0:
            raise ValueError(
                f"demand.profile: the first {hours} hourly shares (the night from {self.start} "
                f"to {self.end}) are all 0: no request could be asked"
            )
        if sum(self.purpose_shares()) <= 0:
            left_out = " (from_train is left out when [trains] is enabled)"
            raise ValueError(
                "demand.purposes: the shares must not all be 0"
                + (left_out if self.trains.enabled else "")
            )
        for key in self.sweep:
            if key not in SWEEPABLE:
                raise ValueError(f"sweep: {key!r} cannot be swept (one of {sorted(SWEEPABLE)})")
        return self

    @property
    def start_s(self) -> int:
        return parse_clock(self.start)

    @property
    def end_s(self) -> int:
        end = parse_clock(self.end)
        return end if end > self.start_s else end + 86400

    @property
    def night_hours(self) -> int:
        """Hours from start to end, a part hour counted whole (the profile's hours in use)."""
        return math.ceil((self.end_s - self.start_s) / 3600)

    def purpose_shares(self) -> tuple[float, float, float, float]:
        """The purposes' shares in the order of ``simulations.demand.PURPOSES``; with a
        timetable the trains' own riders replace the generic ones (from_train 0)."""
        p = self.demand.purposes
        from_train = 0.0 if self.trains.enabled else p.from_train
        return (p.going_out, p.coming_home, from_train, p.shift_work)

    def hourly_profile(self) -> tuple[float, ...]:
        raw = self.demand.profile or (
            WEEKEND_PROFILE if self.night == "weekend" else WEEKDAY_PROFILE
        )
        total = sum(raw)
        return tuple(x / total for x in raw)

    @classmethod
    def load(cls, path: Path | str) -> Scenario:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ScenarioError(f"{path}: {exc}", field="scenario") from None
        csv = data.get("demand", {}).get("trips_csv")
        if csv is not None and not Path(csv).is_absolute():
            data["demand"]["trips_csv"] = str(path.parent / csv)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            loc, msg = located(exc.errors()[0])
            field = ".".join(str(x) for x in loc) or "scenario"
            raise ScenarioError(f"{msg} (in {path})", field=field) from None

    def with_values(self, values: dict[str, Any]) -> Scenario:
        """This scenario with swept values set (``buses``, ``demand_scale``, ...)."""
        fleet, demand, disp = dict(self.fleet), dict(self.demand), dict(self.dispatching)
        for key, value in values.items():
            section, name = SWEEPABLE[key]
            {"fleet": fleet, "demand": demand, "dispatching": disp}[section][name] = value
        return self.model_copy(
            update={
                "fleet": Fleet(**fleet),
                "demand": Demand(**demand),
                "dispatching": Dispatching(**disp),
                "sweep": {},
            }
        )

    def runs(self) -> list[dict[str, Any]]:
        """One dict of swept values per run (one empty dict without a sweep)."""
        keys = sorted(self.sweep)
        return [
            dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(self.sweep[k] for k in keys))
        ]


SWEEPABLE: dict[str, tuple[str, str]] = {
    "buses": ("fleet", "buses"),
    "seats": ("fleet", "seats"),
    "demand_scale": ("demand", "scale"),
    "requests": ("demand", "requests"),
    "reoptimise": ("dispatching", "reoptimise"),
    "rebalance": ("dispatching", "rebalance"),
    "rebalance_horizon_s": ("dispatching", "rebalance_horizon_s"),
    "reopt_lns_steps": ("dispatching", "reopt_lns_steps"),
    "reopt_interval_s": ("dispatching", "reopt_interval_s"),
    "max_wait_s": ("dispatching", "max_wait_s"),
    "detour_alpha": ("dispatching", "detour_alpha"),
    "max_alternatives": ("dispatching", "max_alternatives"),
    "far_pickup_s": ("dispatching", "far_pickup_s"),
    "plan_buffer_s": ("dispatching", "plan_buffer_s"),
    "rescue_steps": ("dispatching", "rescue_steps"),
    "prebook_window_as_asked": ("dispatching", "prebook_window_as_asked"),
    "told_ahead_min": ("demand", "told_ahead_min"),
    "retime_not_left": ("dispatching", "retime_not_left"),
}
