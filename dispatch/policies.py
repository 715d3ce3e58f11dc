"""Service rules: each a documented setting; they turn a request into time windows or a 'no'.

The ride-time limit is the standard DRT detour rule: ``max ride = alpha x direct + beta``
(MATSim DRT's maxTravelTimeAlpha / Beta). An immediate request may be picked up within
``max_wait_s`` of asking; a pre-booked one within ``prebook_window_s`` after the asked time.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from nachtbus.clock import wall_to_elapsed
from nachtbus.domain import BookingRequest, Connection, ConnectionKind, Rejection, RejectionReason
from nachtbus.errors import ConfigError
from nachtbus.units import format_clock


@dataclass(frozen=True)
class RequestWindows:
    """What a request gets if it is served: pickup window, ride limit and dwell times (s)."""

    pickup_earliest_s: int
    pickup_latest_s: int
    max_ride_s: int
    pickup_dwell_s: int
    dropoff_dwell_s: int
    prebooked: bool


@dataclass(frozen=True)
class ServicePolicy:
    """The rules of one service area. Defaults are the Soest night bus's starting values.

    Times are service-day seconds (20:00 = 72000, 05:00 next morning = 104400).
    """

    service_start_s: int = 20 * 3600  # first pickup at 20:00
    service_end_s: int = 29 * 3600  # last pickup by 05:00 the next morning
    max_wait_s: int = 15 * 60  # immediate trip: pickup within 15 min of asking
    prebook_horizon_s: int = 24 * 3600  # how far ahead a trip may be booked
    prebook_window_s: int = 10 * 60  # pre-booked: pickup within 10 min after the asked time
    # True: a pickup asked for a later time gets the window a rider asking at that time would
    # get (``max_wait_s``, ``far_max_wait_s`` far out) instead of ``prebook_window_s``: a rider
    # who tells the trip ahead keeps the leave-now wait (benchmarks/foresight.py)
    prebook_window_as_asked: bool = False
    detour_alpha: float = 1.5  # max ride = alpha * direct time + beta
    detour_beta_s: int = 5 * 60
    dwell_s: int = 30  # per stop: doors, greeting, belt
    wheelchair_dwell_s: int = 120  # extra per wheelchair boarding or alighting (ramp)
    max_group_size: int = 6  # travellers in one booking
    min_direct_time_s: int = 60  # shorter trips are a walk, not a bus ride
    offer_ttl_s: int = 120  # an offer not booked within this expires
    no_show_wait_s: int = 180  # the bus waits this long at a pickup before a NO_SHOW counts
    unserved_penalty: int = 100_000  # re-optimisation: cost of dropping an unconfirmed request
    # plans keep this slack inside every promise (latest pickup, latest arrival) for the road
    # being slower than the model; the promise told to the rider is the full window
    plan_buffer_s: int = 180
    # no village left behind: a pickup at least ``far_pickup_s`` by road from the nearest
    # depot (the Ortsteile, in Soest) may be asked with ``far_max_wait_s`` instead of
    # ``max_wait_s`` (the longer of the two; a bus that far out needs longer to come);
    # far_pickup_s 0 = the same rule everywhere
    far_pickup_s: int = 8 * 60
    far_max_wait_s: int = 25 * 60
    # counter-offers: when the wished window cannot be kept, up to ``max_alternatives`` other
    # windows, ``alternative_step_s`` apart, at most ``alternative_shift_max_s`` from the wish
    # (later pickups; earlier ones for an arrive-by trip); 0 alternatives: a plain "no"
    max_alternatives: int = 3
    alternative_step_s: int = 5 * 60
    alternative_shift_max_s: int = 30 * 60
    # a rescue before "no": when no bus can take a trip as its plan stands, ruin and recreate
    # re-plans every open trip with the new one for this many steps (riders may change bus,
    # every promise is kept, the checker decides); 0: insertion alone decides. The live
    # service also stops it after ``rescue_time_ms`` (0: the step limit alone, reproducible:
    # the simulator), so that a quote stays fast. The two go together: on the reference
    # machine (2 cores) 150 steps on a Friday peak's plans take 10 ms at the median, so the
    # live service searches as far as the simulator in about nine rescues of ten
    # (benchmarks/insertion.py measures both); 300 steps in 5 ms were cut to about 100
    rescue_steps: int = 150
    rescue_time_ms: int = 10
    # trains (a booking with a connection, see nachtbus.transit): a rider off a train is
    # picked up at the station from the train's arrival + ``train_walk_s`` for
    # ``train_window_s``, also after the service hours if the train is due within them (the
    # last bus waits for the last train); a late train moves the window, the bus waits up to
    # ``train_wait_max_s`` of delay; a rider to a train is at the station ``train_buffer_s``
    # before it leaves
    train_walk_s: int = 3 * 60
    train_window_s: int = 8 * 60
    train_wait_max_s: int = 20 * 60
    train_buffer_s: int = 5 * 60
    #: set by :meth:`for_night`: the wall-clock service hours the night's seconds came from
    wall_hours: tuple[int, int] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        rules: list[tuple[str, bool, str]] = [
            ("service_end_s", self.service_end_s > self.service_start_s, "must be after start"),
            ("max_wait_s", self.max_wait_s > 0, "must be positive"),
            ("prebook_horizon_s", self.prebook_horizon_s >= 0, "must be >= 0"),
            ("prebook_window_s", self.prebook_window_s > 0, "must be positive"),
            (
                "detour_alpha",
                math.isfinite(self.detour_alpha) and self.detour_alpha >= 1.0,
                "must be a number >= 1",
            ),
            ("detour_beta_s", self.detour_beta_s >= 0, "must be >= 0"),
            ("dwell_s", self.dwell_s >= 0, "must be >= 0"),
            ("wheelchair_dwell_s", self.wheelchair_dwell_s >= 0, "must be >= 0"),
            ("max_group_size", self.max_group_size >= 1, "must be >= 1"),
            ("min_direct_time_s", self.min_direct_time_s >= 0, "must be >= 0"),
            ("offer_ttl_s", self.offer_ttl_s > 0, "must be positive"),
            ("no_show_wait_s", self.no_show_wait_s >= 0, "must be >= 0"),
            ("unserved_penalty", self.unserved_penalty > 0, "must be positive"),
            ("max_alternatives", 0 <= self.max_alternatives <= 6, "must be 0 to 6"),
            ("far_pickup_s", self.far_pickup_s >= 0, "must be >= 0"),
            ("far_max_wait_s", self.far_max_wait_s > 0, "must be positive"),
            ("alternative_step_s", self.alternative_step_s >= 60, "must be >= 60"),
            (
                "alternative_shift_max_s",
                0 <= self.alternative_shift_max_s <= 3 * 3600,
                "must be 0 to 10800",
            ),
            ("plan_buffer_s", 0 <= self.plan_buffer_s <= 900, "must be 0 to 900"),
            ("rescue_steps", 0 <= self.rescue_steps <= 100_000, "must be 0 to 100000"),
            ("rescue_time_ms", 0 <= self.rescue_time_ms <= 10_000, "must be 0 to 10000"),
            ("train_walk_s", 0 <= self.train_walk_s <= 1800, "must be 0 to 1800"),
            ("train_window_s", 60 <= self.train_window_s <= 3600, "must be 60 to 3600"),
            ("train_wait_max_s", 0 <= self.train_wait_max_s <= 3600, "must be 0 to 3600"),
            ("train_buffer_s", 0 <= self.train_buffer_s <= 3600, "must be 0 to 3600"),
        ]
        for name, ok, rule in rules:
            if not ok:
                raise ConfigError(f"{rule}, got {getattr(self, name)!r}", field=name)

    @classmethod
    def from_toml(cls, path: Path) -> ServicePolicy:
        """Load from a TOML file (a [policy] table or top-level keys); unknown keys are errors."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc}") from exc
        return cls.from_dict(data.get("policy", data), source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, object], source: str = "policy") -> ServicePolicy:
        known = {f.name: f for f in fields(cls) if f.name != "wall_hours"}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown setting", field=key)
            if known[key].type == "bool":
                if not isinstance(value, bool):
                    raise ConfigError(f"{source}: must be true or false, got {value!r}", field=key)
                continue
            expected = float if known[key].type == "float" else int
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (expected is int and not isinstance(value, int))
            ):
                raise ConfigError(
                    f"{source}: must be {expected.__name__}, got {value!r}", field=key
                )
        try:
            return cls(**data)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc.message}", field=exc.field) from exc

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out.pop("wall_hours")
        return out

    def for_night(self, day: date, tz: ZoneInfo) -> ServicePolicy:
        """The rules of service day ``day``: the service hours, given as wall-clock times,
        become that night's seconds (see :mod:`nachtbus.clock`); the same numbers except on
        the nights of the clock changes. Durations (waits, ride limits) stay as they are."""
        if self.wall_hours is not None:
            raise ValueError("for_night takes the wall-clock rules, not a night's")
        start = wall_to_elapsed(day, self.service_start_s, tz)
        end = wall_to_elapsed(day, self.service_end_s, tz)
        return replace(
            self,
            service_start_s=start,
            service_end_s=end,
            wall_hours=(self.service_start_s, self.service_end_s),
        )

    def hours_text(self) -> str:
        start, end = self.wall_hours or (self.service_start_s, self.service_end_s)
        return f"the night bus picks up from {format_clock(start)} to {format_clock(end)}"

    def max_ride_s(self, direct_s: int) -> int:
        return math.floor(self.detour_alpha * direct_s) + self.detour_beta_s

    def dwell(self, wheelchairs: int) -> int:
        return self.dwell_s + self.wheelchair_dwell_s * wheelchairs

    def train_pickup_s(self, train: Connection) -> int:
        """Earliest pickup of a rider off ``train``: its expected arrival (the delay counted
        up to ``train_wait_max_s``, how long a bus waits) plus the walk from the platform."""
        delay = min(train.delay_s, self.train_wait_max_s)
        return train.scheduled_s + delay + self.train_walk_s

    def train_arrive_by_s(self, train: Connection) -> int:
        """Latest drop-off of a rider to ``train``: its expected departure less the buffer."""
        return train.expected_s - self.train_buffer_s

    def arrive_by_pickup_s(self, arrive_by_s: int, direct_s: int) -> int:
        """The pickup asked for a trip that must arrive by ``arrive_by_s``: the window
        (``prebook_window_s`` long) ends when the longest ride still arrives in time."""
        return arrive_by_s - self.max_ride_s(direct_s) - self.prebook_window_s

    def arrive_by_windows(
        self, request: BookingRequest, w: RequestWindows, arrive_by_s: int, direct_s: int
    ) -> tuple[RequestWindows, ...] | Rejection:
        """The windows of a trip that must arrive by ``arrive_by_s``, made from its windows
        ``w`` so that the promised latest arrival (latest pickup plus ride limit) is no later:
        the ones to try, best first.

        Asked well ahead, ``w`` already ends when the longest ride still arrives in time
        (:meth:`arrive_by_pickup_s`): just ``w``. Asked less than that ahead (the wait's
        window would promise an arrival after the asked one), first the time to spare beyond
        the direct ride shared between the pickup window and the detour in the proportion
        the rules give them (both shrink alike), then, for a bus that needs the longer
        window, the window that leaves just the direct ride (no detour for others). Refused
        when not even the direct ride from the earliest pickup arrives in time."""
        if w.pickup_latest_s + w.max_ride_s <= arrive_by_s:
            return (w,)
        e = w.pickup_earliest_s
        spare = arrive_by_s - e - direct_s
        if spare < 0:
            return Rejection(
                request.request_id,
                RejectionReason.NO_VEHICLE_IN_TIME,
                f"picked up at {format_clock(e)} at the earliest, even the direct ride "
                f"({math.ceil(direct_s / 60)} min) arrives after {format_clock(arrive_by_s)}",
            )
        window, detour = w.pickup_latest_s - e, max(0, w.max_ride_s - direct_s)
        shared = e + (spare * window // (window + detour) if window + detour else 0)
        direct_only = max(e, min(w.pickup_latest_s, arrive_by_s - direct_s - w.pickup_dwell_s))
        tries = (shared, direct_only) if direct_only > shared else (shared,)
        return tuple(
            replace(w, pickup_latest_s=latest, max_ride_s=arrive_by_s - latest) for latest in tries
        )

    def is_far(self, from_depot_s: int) -> bool:
        """Whether a pickup this many road seconds from the nearest depot gets the far rule."""
        return self.far_pickup_s > 0 and from_depot_s >= self.far_pickup_s

    def windows(
        self, request: BookingRequest, direct_s: int, now_s: int, *, far: bool = False
    ) -> RequestWindows | Rejection:
        """The windows of a request asked at ``now_s``, or the rule it breaks; ``far``: the
        pickup is far out (:meth:`is_far`) and may wait ``far_max_wait_s``."""

        def no(reason: RejectionReason, message: str) -> Rejection:
            return Rejection(request.request_id, reason, message)

        if request.passengers > self.max_group_size:
            return no(
                RejectionReason.TOO_MANY_TRAVELLERS,
                f"{request.passengers} travellers; at most {self.max_group_size} per booking",
            )
        if direct_s < self.min_direct_time_s:
            return no(
                RejectionReason.TRIP_TOO_SHORT,
                f"the trip takes {direct_s} s by road; the bus serves trips from "
                f"{self.min_direct_time_s} s",
            )
        asked = request.pickup_at_s
        if asked is not None and asked < now_s - 60:
            return no(
                RejectionReason.PICKUP_IN_PAST,
                f"pickup time {format_clock(asked)} is before now ({format_clock(now_s)})",
            )
        dwell = self.dwell(request.wheelchairs)
        train = request.connection
        if train is not None and train.kind == ConnectionKind.FROM_TRAIN:
            if not self.service_start_s <= train.scheduled_s <= self.service_end_s:
                return no(RejectionReason.OUTSIDE_SERVICE_HOURS, self.hours_text())
            earliest = self.train_pickup_s(train)
            if earliest < now_s - 60:
                return no(
                    RejectionReason.PICKUP_IN_PAST,
                    f"the train arrived at {format_clock(train.expected_s)}, before now",
                )
            return RequestWindows(
                max(earliest, now_s),
                max(earliest, now_s) + self.train_window_s,
                self.max_ride_s(direct_s),
                dwell,
                dwell,
                True,
            )
        max_wait = max(self.far_max_wait_s, self.max_wait_s) if far else self.max_wait_s
        ahead = self.prebook_window_as_asked and asked is not None and asked > now_s
        prebooked = ahead or (asked is not None and asked > now_s + max_wait)
        if prebooked:
            assert asked is not None
            if asked > now_s + self.prebook_horizon_s:
                return no(
                    RejectionReason.BEYOND_BOOKING_HORIZON,
                    f"trips can be booked at most {self.prebook_horizon_s // 3600} h ahead",
                )
            earliest = asked
            latest = asked + (max_wait if self.prebook_window_as_asked else self.prebook_window_s)
        else:
            earliest = max(now_s, asked or now_s)
            # a pickup asked for a few minutes from now keeps at least a pre-booked window
            # (it would shrink to nothing as the asked time nears the wait's end)
            latest = max(now_s + max_wait, earliest + min(self.prebook_window_s, max_wait))
        if not self.service_start_s <= earliest <= self.service_end_s:
            return no(
                RejectionReason.OUTSIDE_SERVICE_HOURS,
                self.hours_text(),
            )
        latest = min(latest, self.service_end_s)
        return RequestWindows(earliest, latest, self.max_ride_s(direct_s), dwell, dwell, prebooked)
