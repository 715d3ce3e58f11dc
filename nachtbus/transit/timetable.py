"""The train timetable, read from a GTFS feed: which trains call at the stations of the
service area, and when, in service-night seconds.

The feed is read with gtfs-kit (the only module that imports it), once, at start-up; only the
stops inside the service area (or the stop ids asked for) and their calls are kept, so the
national feed works as well as the small example one shipped in ``example_feed/`` (an
EXAMPLE, invented; see its README).

GTFS times count from "noon minus 12 h" of a trip's service date and may pass 24:00; a night
of service day D holds the calls of D's trips from 12:00 on and the calls of D+1's trips before
12:00 (a night train written as 01:31 on the next date). Both become seconds from local
midnight of D, as every time of the night (:mod:`nachtbus.clock`), exact on the nights the
clocks change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from nachtbus.clock import day_start
from nachtbus.errors import ConfigError, InvalidInput

EXAMPLE_FEED = Path(__file__).parent / "example_feed"
NOON_S = 12 * 3600


@dataclass(frozen=True)
class Station:
    """A stop of the feed inside the service area, where the bus meets the trains."""

    stop_id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class TrainCall:
    """One train at one station on one night: arrival and departure in night seconds."""

    trip_id: str
    route: str  # the line as riders know it, e.g. "RE 1"
    headsign: str
    stop_id: str
    arrival_s: int
    departure_s: int
    first: bool  # the train starts here (nobody arrives on it)
    last: bool  # the train ends here (nobody leaves on it)


@dataclass(frozen=True)
class _Call:
    trip_id: str
    service_id: str
    stop_id: str
    arrival_s: int  # GTFS seconds of the service date
    departure_s: int
    first: bool
    last: bool


class Timetable:
    """The trains at the service area's stations, per service night."""

    def __init__(
        self,
        stations: dict[str, Station],
        calls: list[_Call],
        services: dict[str, set[date]],
        routes: dict[str, tuple[str, str]],
        tz: ZoneInfo,
        source: str,
    ) -> None:
        self.stations = stations
        self._calls = calls
        self._services = services
        self._routes = routes  # trip_id -> (route short name, headsign)
        self.tz = tz
        self.source = source
        self._nights: dict[date, list[TrainCall]] = {}

    @property
    def example(self) -> bool:
        """Whether this is the shipped example feed (invented trains)."""
        return Path(self.source).resolve() == EXAMPLE_FEED.resolve()

    def calls(self, day: date) -> list[TrainCall]:
        """Every train call of service night ``day``, by time."""
        if day not in self._nights:
            out = []
            midnight = day_start(day, self.tz)
            for c in self._calls:
                for service_day, morning in ((day, False), (day + timedelta(days=1), True)):
                    if service_day not in self._services.get(c.service_id, ()):
                        continue
                    if morning != (c.arrival_s < NOON_S):
                        continue
                    # GTFS's day origin: noon minus 12 h of the trip's service date
                    noon = datetime(
                        service_day.year, service_day.month, service_day.day, 12, tzinfo=self.tz
                    ).astimezone(UTC)
                    origin = int((noon - timedelta(hours=12) - midnight).total_seconds())
                    route, headsign = self._routes[c.trip_id]
                    out.append(
                        TrainCall(
                            c.trip_id,
                            route,
                            headsign,
                            c.stop_id,
                            origin + c.arrival_s,
                            origin + c.departure_s,
                            c.first,
                            c.last,
                        )
                    )
            out.sort(key=lambda t: (t.arrival_s, t.trip_id))
            self._nights[day] = out
        return self._nights[day]

    def arrivals(self, day: date, stop_id: str | None = None) -> list[TrainCall]:
        """The trains riders can come on (not those that start at the station)."""
        return [c for c in self.calls(day) if not c.first and stop_id in (None, c.stop_id)]

    def departures(self, day: date, stop_id: str | None = None) -> list[TrainCall]:
        """The trains riders can leave on (not those that end at the station)."""
        return [c for c in self.calls(day) if not c.last and stop_id in (None, c.stop_id)]

    def call(self, day: date, trip_id: str, stop_id: str | None, field: str) -> TrainCall:
        """The call of train ``trip_id`` (at ``stop_id``, or at the one station it calls at
        in the area) on night ``day``; an error naming ``field`` if there is none."""
        found = [
            c for c in self.calls(day) if c.trip_id == trip_id and stop_id in (None, c.stop_id)
        ]
        if not found:
            raise InvalidInput(
                f"no train {trip_id!r} calls at a station of the service area tonight"
                + (f" at stop {stop_id!r}" if stop_id else ""),
                field=field,
            )
        if len(found) > 1:
            raise InvalidInput(
                f"train {trip_id!r} calls at {len(found)} stations of the area; name the stop",
                field=field,
            )
        return found[0]

    def at(self, day: date, stop_id: str, time_s: int, *, arriving: bool, field: str) -> TrainCall:
        """The train that arrives (or leaves) at ``stop_id`` nearest to ``time_s`` within
        10 minutes: for an app that sends the stop and time instead of the trip."""
        pool = self.arrivals(day, stop_id) if arriving else self.departures(day, stop_id)
        best = min(
            pool,
            key=lambda c: abs((c.arrival_s if arriving else c.departure_s) - time_s),
            default=None,
        )
        if best is None or abs((best.arrival_s if arriving else best.departure_s) - time_s) > 600:
            raise InvalidInput(
                f"no train {'arrives' if arriving else 'leaves'} at {stop_id!r} within 10 min "
                "of that time",
                field=field,
            )
        return best

    def station(self, stop_id: str, field: str) -> Station:
        if stop_id not in self.stations:
            raise InvalidInput(
                f"unknown station {stop_id!r}; the area's are {sorted(self.stations)}",
                field=field,
            )
        return self.stations[stop_id]


def _seconds(text: object) -> int | None:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    try:
        h, m, s = (int(x) for x in str(text).strip().split(":"))
    except ValueError:
        return None
    return h * 3600 + m * 60 + s


def load(
    path: Path,
    tz: ZoneInfo,
    *,
    inside: object | None = None,
    stop_ids: Iterable[str] = (),
) -> Timetable:
    """Read a GTFS feed (a zip or a folder) with gtfs-kit: the stops that lie ``inside`` (a
    shapely geometry in lon/lat: the service area) or are named in ``stop_ids``, their
    trains and the dates each train runs. A feed that cannot be read, or that has no stop in
    the area, is a ConfigError naming the setting."""
    import gtfs_kit
    from shapely.geometry import Point

    path = Path(path)
    try:
        feed = gtfs_kit.read_feed(path, dist_units="km")
    except Exception as exc:  # gtfs-kit raises plain ValueErrors and pandas errors
        raise ConfigError(f"cannot read the GTFS feed {path}: {exc}", field="gtfs_feed") from exc
    if feed.stops is None or feed.stop_times is None or feed.trips is None:
        raise ConfigError(f"{path}: needs stops, trips and stop_times", field="gtfs_feed")
    wanted = set(stop_ids)
    stations: dict[str, Station] = {}
    for row in feed.stops.itertuples(index=False):
        lat, lon = float(row.stop_lat), float(row.stop_lon)
        ok = row.stop_id in wanted or (
            inside is not None and inside.contains(Point(lon, lat))  # type: ignore[attr-defined]
        )
        if ok and int(getattr(row, "location_type", 0) or 0) in (0, 1):
            stations[str(row.stop_id)] = Station(str(row.stop_id), str(row.stop_name), lat, lon)
    if not stations:
        raise ConfigError(
            f"{path}: no stop of the feed lies in the service area", field="gtfs_feed"
        )
    st = feed.stop_times
    seqs = st.groupby("trip_id")["stop_sequence"].agg(["min", "max"])
    ours = st[st["stop_id"].isin(list(stations))]
    trips = feed.trips.set_index("trip_id")
    routes = feed.routes.set_index("route_id") if feed.routes is not None else None
    calls: list[_Call] = []
    names: dict[str, tuple[str, str]] = {}
    for row in ours.itertuples(index=False):
        arr = _seconds(row.arrival_time)
        dep = _seconds(row.departure_time)
        if arr is None and dep is None:
            continue  # an untimed stop: no time to meet the train at
        arr = arr if arr is not None else dep
        dep = dep if dep is not None else arr
        assert arr is not None and dep is not None
        trip = trips.loc[row.trip_id]
        lo, hi = seqs.loc[row.trip_id]
        calls.append(
            _Call(
                str(row.trip_id),
                str(trip["service_id"]),
                str(row.stop_id),
                arr,
                dep,
                row.stop_sequence == lo,
                row.stop_sequence == hi,
            )
        )
        route = ""
        if routes is not None and trip["route_id"] in routes.index:
            r = routes.loc[trip["route_id"]]
            route = str(r.get("route_short_name") or r.get("route_long_name") or "")
        head = trip.get("trip_headsign")
        names[str(row.trip_id)] = (route, "" if head is None or head != head else str(head))
    return Timetable(stations, calls, _service_dates(feed), names, tz, str(path))


def _service_dates(feed: object) -> dict[str, set[date]]:
    """The dates each service id runs: calendar.txt's weekdays in its range, with
    calendar_dates.txt's additions (1) and removals (2)."""
    out: dict[str, set[date]] = {}
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    cal = getattr(feed, "calendar", None)
    if cal is not None:
        for row in cal.itertuples(index=False):
            start = datetime.strptime(str(row.start_date), "%Y%m%d").date()
            end = datetime.strptime(str(row.end_date), "%Y%m%d").date()
            runs = out.setdefault(str(row.service_id), set())
            d = start
            while d <= end:
                if int(getattr(row, days[d.weekday()])) == 1:
                    runs.add(d)
                d += timedelta(days=1)
    extra = getattr(feed, "calendar_dates", None)
    if extra is not None:
        for row in extra.itertuples(index=False):
            d = datetime.strptime(str(row.date), "%Y%m%d").date()
            runs = out.setdefault(str(row.service_id), set())
            if int(row.exception_type) == 1:
                runs.add(d)
            else:
                runs.discard(d)
    return out
