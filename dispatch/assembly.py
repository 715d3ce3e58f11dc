"""Wiring one service area's live dispatch service from its settings: rules, fleet, tariff,
districts, store and clock. The API and ``nachtbus serve`` call it; the simulator builds its
own service (a simulated clock and a throw-away store) from the same parts.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatch.archive import NightArchive, NightRecord
from dispatch.dispatcher import Dispatcher
from dispatch.policies import ServicePolicy
from dispatch.redis_store import RedisConnection, RedisStore, connect
from dispatch.service import DispatchService, ServiceConfig
from dispatch.store import StateStore
from graphs.areas import load_districts, main_station
from graphs.snapping import ServiceArea
from nachtbus.billing.fares import Pricer, Tariff
from nachtbus.clock import Clock, WallClock
from nachtbus.domain import Vehicle
from nachtbus.errors import ConfigError, NoRoadNearby
from nachtbus.settings import Settings
from nachtbus.transit.flex import FlexService
from nachtbus.transit.timetable import EXAMPLE_FEED, Timetable
from nachtbus.transit.timetable import load as load_timetable
from routing.solver import SolveParams
from routing.world import RoadWorld

log = logging.getLogger(__name__)


def policy_from_settings(settings: Settings) -> ServicePolicy:
    """The service rules: the settings' policy file, or the documented defaults."""
    if settings.policy_file:
        return ServicePolicy.from_toml(settings.policy_file)
    return ServicePolicy()


def timetable_from_settings(settings: Settings, world: RoadWorld) -> Timetable | None:
    """The trains at the area's stations: the settings' GTFS feed (default the shipped
    EXAMPLE timetable), or None with ``gtfs_feed = none``."""
    if settings.gtfs_feed.lower() == "none":
        return None
    example = settings.gtfs_feed == "example"
    path = EXAMPLE_FEED if example else Path(settings.gtfs_feed)
    try:
        return load_timetable(
            path,
            ZoneInfo(settings.timezone),
            inside=world.area.geometry,
            stop_ids=settings.gtfs_stop_ids,
        )
    except ConfigError:
        if not example:
            raise  # a feed the operator named must be right
        # the example's station is in Soest: another town runs without trains until its
        # feed is set
        log.warning("the example timetable has no station in this service area: no trains")
        return None


def flex_service(
    settings: Settings, area: ServiceArea, policy: ServicePolicy, today: date, days: int = 365
) -> FlexService:
    """What the GTFS-Flex export says of the service: the area, the rules' service hours
    (wall clock) and booking horizon, the settings' operator and booking phone, valid from
    ``today`` for ``days`` days."""
    return FlexService(
        agency_name=settings.agency_name,
        agency_url=settings.agency_url,
        timezone=settings.timezone,
        area=area.geometry,
        area_name=area.name if area.name != "service area" else settings.area_id.title(),
        service_start_s=policy.service_start_s,
        service_end_s=policy.service_end_s,
        start_date=today,
        end_date=today + timedelta(days=days),
        prebook_horizon_s=policy.prebook_horizon_s,
        phone=settings.booking_phone,
        booking_url=settings.booking_url,
    )


def depot_of(settings: Settings) -> tuple[float, float]:
    """Where the buses start and end: NACHTBUS_DEPOT_LAT/LON if set; else, for a town's
    folder (``area_dir``), its main station (``graphs.areas.main_station``); else the default
    (Soest station)."""
    if settings.area_dir is not None and not settings.depot_given():
        station = main_station(settings.area_dir)
        if station is not None:
            return station
    return settings.depot_lat, settings.depot_lon


def fleet_from_settings(
    settings: Settings, world: RoadWorld, policy: ServicePolicy
) -> list[Vehicle]:
    """The buses of the settings, each on shift from the first pickup until an hour after the
    last one (to drop its riders off), at the depot (:func:`depot_of`)."""
    lat, lon = depot_of(settings)
    try:
        depot = world.place(lat, lon, "depot", in_area=False)
    except NoRoadNearby as exc:
        # the default depot is Soest station: another town's network needs its own
        raise ConfigError(
            f"the depot ({lat}, {lon}) is off this road network: "
            f"{exc.message}; set NACHTBUS_DEPOT_LAT and NACHTBUS_DEPOT_LON to a place on it",
            field="depot_lat",
        ) from exc
    return [
        Vehicle(
            vid,
            settings.bus_seats,
            settings.bus_wheelchair_places,
            depot,
            policy.service_start_s,
            policy.service_end_s + 3600,
        )
        for vid in settings.vehicle_ids()
    ]


def open_store(settings: Settings, clock: Clock) -> StateStore:
    """The store of tonight's service day: ``settings.redis_url``, or the embedded one."""
    conn = connect(
        settings.redis_url,
        settings.data_dir,
        timeout_s=settings.store_timeout_s,
        maxmemory_mb=settings.store_maxmemory_mb,
    )
    return RedisStore(conn, _area(settings, clock.service_date()))


def _area(settings: Settings, day: date) -> str:
    return f"{settings.area_id}:{day.isoformat()}"


class SettingsNights:
    """Service days as the settings describe them: each day's store under its own key prefix
    (``nachtbus:<area>:<date>:``) on one Redis, past nights moved to files under
    ``<data_dir>/archive/<area>/`` (see :mod:`dispatch.archive`), and the settings' buses on
    shift from the night's first pickup to an hour after its last."""

    def __init__(self, settings: Settings, world: RoadWorld, first: StateStore) -> None:
        self.settings, self.world, self.first = settings, world, first
        self.archive = NightArchive(settings.resolved_archive_dir() / settings.area_id)

    def store_for(self, day: date) -> StateStore:
        return self._redis(day) or self.first  # a store brought by the caller serves every day

    def fleet_for(self, day: date, policy: ServicePolicy) -> list[Vehicle]:
        return fleet_from_settings(self.settings, self.world, policy)

    def _redis(self, day: date) -> RedisStore | None:
        """That day's store in Redis (None for a store brought by the caller)."""
        first = self.first
        return first.for_area(_area(self.settings, day)) if isinstance(first, RedisStore) else None

    def record_for(self, day: date) -> NightRecord | None:
        store = self._redis(day)
        if store is None:
            return None  # a caller's store holds one night only
        if store.version() is not None:
            return store
        return self.archive.read(day)

    def stored_days(self) -> list[date]:
        first = self.first
        if not isinstance(first, RedisStore):
            return []
        days = []
        for area in first.areas_under(self.settings.area_id):
            with contextlib.suppress(ValueError):
                days.append(date.fromisoformat(area.removeprefix(f"{self.settings.area_id}:")))
        return sorted(days)

    def archive_before(self, day: date) -> list[date]:
        moved: list[date] = []
        first = self.first
        if not isinstance(first, RedisStore):
            return moved  # a caller's store holds one night only
        for past in self.stored_days():
            if past >= day:
                break
            store = first.for_area(_area(self.settings, past))
            dump = store.dump()
            if dump is None:
                continue
            self.archive.write(past, dump)  # read back and compared, or ArchiveError
            if store.wipe(dump["meta"]["version"]):
                moved.append(past)
                log.info("service day %s archived to %s", past, self.archive.path(past))
            else:
                log.warning("service day %s changed while archived; kept in the store", past)
        return moved


def embedded_store(settings: Settings) -> RedisConnection:
    """Start (and own) the embedded store of ``settings.data_dir``, for worker processes that
    share it through its ``url``; ``close()`` stops it."""
    return connect(None, settings.data_dir, maxmemory_mb=settings.store_maxmemory_mb)


def build_service(
    settings: Settings,
    world: RoadWorld,
    *,
    clock: Clock | None = None,
    store: StateStore | None = None,
) -> DispatchService:
    """A started dispatch service (tonight's fleet is created in an empty store) that rolls
    over to the next service day at noon, with warm kernels.

    A malformed policy or tariff file stops the start-up here, with its line and field named;
    so does a store whose night was planned on another road network (``area_id``).
    """
    settings.check_production()
    policy = policy_from_settings(settings)
    if clock is None:
        clock = WallClock(settings.timezone, offset_s=settings.clock_offset_s)
    opened = store is None
    if store is None:
        store = open_store(settings, clock)
    try:
        return _started(settings, world, clock, store, policy)
    except BaseException:
        if opened:  # a start that fails stops the embedded store it started
            store.close()
        raise


def _started(
    settings: Settings, world: RoadWorld, clock: Clock, store: StateStore, policy: ServicePolicy
) -> DispatchService:
    nights = SettingsNights(settings, world, store)
    # OR-Tools in a child process: its solve holds the interpreter lock that requests need
    reopt = SolveParams.live(settings.reopt_time_limit_s, settings.reopt_lns_steps, isolated=True)
    dispatcher = Dispatcher(world.times, policy, reopt=reopt)
    tariff = Tariff.load(settings.tariff_file)
    districts_file = settings.districts_source()
    districts = load_districts(districts_file) if districts_file else None
    pricer = Pricer(tariff, districts.name_at if districts else None)
    service = DispatchService(
        dispatcher,
        None,
        clock,
        world,
        ServiceConfig(
            pending_ttl_s=settings.pending_ttl_s, max_pending_per_owner=settings.max_pending_per_app
        ),
        pricer=pricer,
        nights=nights,
        timetable=timetable_from_settings(settings, world),
        districts=districts,
        network_key=world.network.node_key,
    )
    service.start()
    dispatcher.warm_up()
    return service
