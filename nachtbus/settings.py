"""Settings, read once at the edge (CLI, app) and passed down.

Core modules never read the environment.

Every field can be set as an environment variable with the ``NACHTBUS_`` prefix, e.g.
``NACHTBUS_OSM_FILE=/data/soest.osm.bz2``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nachtbus.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OSM_RELPATH = Path("data/osm/soest_roads_drive.osm.bz2")
DEFAULT_AREA_RELPATH = Path("data/soest/service_area.geojson")
DEFAULT_DISTRICTS_RELPATH = Path("data/soest/districts.geojson")
#: What a town's input folder (``area_dir``) must hold besides its road file and places.
AREA_FILES = ("service_area.geojson", "residential_cells.csv", "pois.csv")
EXAMPLE_TARIFF = Path(__file__).with_name("billing") / "tariffs" / "soest.toml"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nachtbus"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nachtbus"


UNSAFE_KEY_PREFIX = "dev-"
MIN_KEY_LENGTH = 24


def find_shared_dir() -> Path | None:
    """The project's ``shared/`` data folder beside the checkout or the working directory."""
    for candidate in (REPO_ROOT.parent / "shared", Path.cwd().parent / "shared"):
        if (candidate / DEFAULT_OSM_RELPATH).is_file():
            return candidate
    return None


class Settings(BaseSettings):
    """Everything configurable about one nachtbus deployment."""

    model_config = SettingsConfigDict(env_prefix="NACHTBUS_", extra="ignore")

    shared_dir: Path | None = Field(
        default=None,
        description="Folder with data/osm and data/soest; default: ../shared beside the checkout.",
    )
    osm_file: Path | None = Field(
        default=None,
        description="OSM XML road network (.osm or .osm.bz2). Default: the Soest file in "
        "shared_dir; without one the network of `place` is downloaded with osmnx.",
    )
    area_dir: Path | None = Field(
        default=None,
        description="A town's input folder, laid out as shared/data/areas/<town> (one "
        "*_roads_drive.osm.bz2, service_area.geojson, residential_cells.csv, pois.csv, "
        "*_area_places.csv, optionally districts.geojson). Set, it is the default of the road "
        "file, the service area, the districts (estimated from the places when it has no "
        "districts.geojson), the simulator's demand and the depot (its main station); each "
        "can still be set on its own. Default: Soest from shared_dir.",
    )
    place: str = Field(
        default="Soest, Nordrhein-Westfalen, Germany",
        description="Place whose drivable network (and boundary) osmnx downloads when no file "
        "is set.",
    )
    service_area_file: Path | None = Field(
        default=None,
        description="GeoJSON polygon of the service area. Default: the Soest one in shared_dir; "
        "without one the boundary of `place` is downloaded with osmnx.",
    )
    speed_profile_file: Path | None = Field(
        default=None,
        description="TOML night-speed profile overriding the built-in graphs/night_speeds.toml.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Where built networks are cached."
    )
    apsp_max_nodes: int = Field(
        default=12_000,
        ge=0,
        description="Largest network for which the all-pairs travel-time table is built "
        "(n^2 x 4 bytes: 6,400 nodes = 164 MB); bigger networks use cached rows.",
    )
    row_cache_size: int = Field(
        default=4096, ge=1, description="Rows kept when the all-pairs table is not used."
    )
    snap_max_distance_m: int = Field(
        default=1000, ge=1, description="Farthest a point may be from a drivable road to be served."
    )

    # ------------------------------------------------------------------ the live service
    environment: Literal["development", "production"] = Field(
        default="development",
        description="In production the development API keys (and keys shorter than 24 "
        "characters) are refused at start-up.",
    )
    area_id: str = Field(
        default="soest",
        pattern=r"^[a-z0-9-]+$",
        description="Service area id (store key prefix, archive folder). Default: the town "
        "folder's name with area_dir (bad_berleburg -> bad-berleburg), else soest; each town "
        "needs its own, or two towns on one store would read each other's nights.",
    )
    timezone: str = Field(default="Europe/Berlin", description="Time zone of the service area.")
    redis_url: str | None = Field(
        default=None,
        description="External Redis, e.g. redis://host:6379/0. Default: an embedded "
        "server persisted under data_dir.",
    )
    store_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Longest wait for one call to the store; past it the request answers 503 "
        "store_unavailable instead of hanging.",
    )
    store_maxmemory_mb: int = Field(
        default=512,
        ge=16,
        description="Memory ceiling of the embedded store; only keys with a time to live "
        "(offers, idempotency records) are ever evicted, never bookings or the ledger.",
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded store keeps its data (append-only file).",
    )
    archive_dir: Path | None = Field(
        default=None,
        description="Where old nights are archived (one folder per area_id); default "
        "data_dir/archive. Several hosts on one external Redis must share this folder "
        "(a network mount), so that every host reads the nights any leader archived.",
    )
    policy_file: Path | None = Field(
        default=None, description="TOML file with the service rules (see dispatch/policies.py)."
    )
    buses: int = Field(default=4, ge=1, le=50, description="Buses in the fleet.")
    bus_seats: int = Field(default=8, ge=1, le=30, description="Seats per bus.")
    bus_wheelchair_places: int = Field(default=1, ge=0, le=4, description="Per bus.")
    depot_lat: float = Field(default=51.5781, ge=-90, le=90, description="Depot (Soest station).")
    depot_lon: float = Field(default=8.1049, ge=-180, le=180, description="Depot longitude.")
    gtfs_feed: str = Field(
        default="example",
        description="GTFS feed (zip or folder) of the trains at the service area's stations, "
        "e.g. the national GTFS publication; 'example' = the shipped EXAMPLE timetable "
        "(invented trains, nachtbus/transit/example_feed), 'none' = no trains.",
    )
    gtfs_rt_trip_updates_url: str | None = Field(
        default=None,
        description="URL (http, https or file) of a GTFS-Realtime TripUpdates feed of the "
        "trains (the railway's, or a relay's such as DELFI's): the background round fetches "
        "it every gtfs_rt_poll_s and applies the delays as POST /v1/trains/trip-updates "
        "does. None: delays come only by that POST.",
    )
    gtfs_rt_poll_s: float = Field(
        default=30.0,
        ge=5,
        le=3600,
        description="Seconds between two fetches of gtfs_rt_trip_updates_url (the background "
        "round checks every reopt_interval_s, so the real interval is the larger of the two).",
    )
    gtfs_stop_ids: list[str] = Field(
        default=[],
        description="Stop ids of the feed to meet trains at besides those inside the area.",
    )
    agency_name: str = Field(
        default="Nachtbus Soest", max_length=100, description="Operator's name (GTFS-Flex)."
    )
    agency_url: str = Field(
        default="https://www.soest.de/", description="Operator's web page (GTFS-Flex)."
    )
    booking_phone: str = Field(
        default="",
        max_length=40,
        description="Phone number riders call to book (GTFS-Flex booking rule; empty: none).",
    )
    booking_url: str = Field(
        default="", description="Web page where riders book (GTFS-Flex booking rule; optional)."
    )
    clock_offset_s: int = Field(
        default=0,
        description="Development only: shift the service clock by this many seconds, so the "
        "service can be tried in the daytime (`nachtbus serve --clock 22:00` sets it).",
    )
    rider_app_keys: dict[str, str] = Field(
        default={"dev-rider-app-key": "transit-app"},
        description="API key -> rider app id. An app sees only the bookings it made.",
    )
    driver_keys: dict[str, str] | None = Field(
        default=None,
        description="API key -> bus id. Default (development only): dev-driver-<bus id>.",
    )
    dispatcher_keys: list[str] = Field(
        default=["dev-dispatcher-key"], description="API keys of the dispatchers."
    )
    dispatcher_names: dict[str, str] = Field(
        default={"dev-dispatcher-key": "dev-dispatcher"},
        description="Dispatcher API key -> the name their actions are recorded under (moves, "
        "cancellations, pauses); a key without one is recorded as dispatcher-<n>.",
    )
    pending_ttl_s: int = Field(
        default=300, ge=1, description="A PENDING booking not committed within this expires."
    )
    reopt_interval_s: float = Field(
        default=20.0,
        ge=0,
        description="Seconds between background re-optimisations (and expiry sweeps); 0 = off.",
    )
    reopt_time_limit_s: float = Field(
        default=2.0,
        gt=0,
        description="Wall-clock cap of one background re-optimisation (ruin and recreate, "
        "then OR-Tools with what is left).",
    )
    reopt_lns_steps: int = Field(
        default=2000,
        ge=0,
        description="Ruin-and-recreate steps of one background re-optimisation, before "
        "OR-Tools; 0 = OR-Tools only.",
    )
    rebalance_nights: int = Field(
        default=0,
        ge=0,
        le=60,
        description="Each background round sends idle buses towards where riders were picked "
        "up at this time on the last N service days in the store (2 km zones, next 30 min); "
        "0 (default: no gain shown in simulation yet) = idle buses wait where they are.",
    )
    overdue_after_s: int = Field(
        default=300,
        ge=60,
        le=3600,
        description="A bus not heard of reaching its next stop this long after its plan "
        "expected it there is named in GET /v1/status's warnings (its tablet is silent; the "
        "plans still assume it on time); so is one that has not left for its next stop, not "
        "heard of for this long, once it breaks a promise (its times run from now).",
    )
    demo_drivers: bool = Field(
        default=False,
        description="Development only: simulated drivers drive every bus along its plan "
        "(report on the way, arrive, board, alight) so the service can be tried without "
        "buses; a bus whose real driver reports through the API is left to them. One API "
        "process only.",
    )
    keep_nights: int = Field(
        default=14,
        ge=1,
        le=366,
        description="Past service days kept in the store besides tonight; older ones are "
        "moved by the background round (once a service day) to one gzip JSON file each "
        "under data_dir/archive/<area_id>/, from where their receipts and ledger are still "
        "read. Bounds the store's memory over weeks of nights.",
    )
    tariff_file: Path = Field(
        default=EXAMPLE_TARIFF,
        description="Tariff (TOML) that prices offers; default: the Soest example tariff with "
        "plausible, not official, prices (nachtbus/billing/tariffs/soest.toml).",
    )
    districts_file: Path | None = Field(
        default=None,
        description="GeoJSON of the districts (for zone tariffs and per-district figures). "
        "Default: data/soest/districts.geojson in shared_dir, if there.",
    )
    bus_kwh_per_km: float = Field(
        default=0.45, ge=0, description="Energy use of the electric minibus, kWh per km."
    )
    grid_g_co2_per_kwh: float = Field(
        default=380.0, ge=0, description="CO2 of the charging electricity, g per kWh."
    )
    car_g_co2_per_km: float = Field(
        default=160.0, ge=0, description="CO2 of the same trip by private car, g per km."
    )
    co2_car_share: float = Field(
        default=0.40, ge=0, le=1, description="Share of riders who would otherwise drive a car."
    )
    co2_taxi_share: float = Field(
        default=0.20, ge=0, le=1, description="Share who would otherwise take a taxi."
    )
    co2_walk_cycle_share: float = Field(
        default=0.15, ge=0, le=1, description="Share who would otherwise walk or cycle."
    )
    co2_stay_home_share: float = Field(
        default=0.25, ge=0, le=1, description="Share who would otherwise not travel at all."
    )
    co2_taxi_empty_per_km: float = Field(
        default=1.0,
        ge=0,
        description="A taxi's empty km (to the pickup and back to its rank) per occupied km.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request body; more is a 413."
    )
    rate_per_key_per_s: float = Field(
        default=20.0, gt=0, description="Requests a second one API key may make (per process)."
    )
    rate_shared: bool = Field(
        default=False,
        description="Also count each key's requests in the store, so that all API processes "
        "on it together allow rate_per_key_per_s once (set for the workers of serve "
        "--workers N; set it for several hosts on one Redis). Off: each process counts alone.",
    )
    rate_burst: int = Field(default=40, ge=1, description="Requests one key may make at once.")
    max_pending_per_app: int = Field(
        default=20,
        ge=1,
        description="PENDING (booked, not committed) bookings one rider app may hold at once; "
        "one more is a 429, so that no app can hold the seats of the others.",
    )
    max_streams_per_key: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Event streams (dispatcher pages) one key may hold open at once; one more "
        "is a 429.",
    )
    api_threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description=(
            "Threads per API process that run request handlers. Handlers are CPU-bound Python, "
            "so a few threads (enough to overlap store round trips) beat many that fight over "
            "the interpreter lock."
        ),
    )

    @field_validator("osm_file", "service_area_file", "speed_profile_file", "shared_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("gtfs_rt_trip_updates_url")
    @classmethod
    def _feed_url(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme not in ("http", "https", "file"):
            raise ValueError(f"must be an http, https or file URL; got {value!r}")
        return value

    @field_validator("area_dir")
    @classmethod
    def _area_dir(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        missing = [n for n in AREA_FILES if not (value / n).is_file()]
        for pattern in ("*_roads_drive.osm*", "*_area_places.csv"):
            found = len(list(value.glob(pattern)))
            if found != 1:
                missing.append(f"{pattern} ({found} found, one needed)")
        if not value.is_dir() or missing:
            raise ValueError(
                f"{value} is not a town's input folder: it needs {', '.join(AREA_FILES)}, one "
                "*_roads_drive.osm.bz2 and one *_area_places.csv (shared/data/areas/README.md)"
                + (
                    "; it is not a folder"
                    if not value.is_dir()
                    else f"; missing {', '.join(missing)}"
                )
            )
        return value

    def vehicle_ids(self) -> list[str]:
        return [f"bus-{i + 1}" for i in range(self.buses)]

    def resolved_driver_keys(self) -> dict[str, str]:
        if self.driver_keys is not None:
            return self.driver_keys
        return {f"{UNSAFE_KEY_PREFIX}driver-{vid}": vid for vid in self.vehicle_ids()}

    def check_keys(self) -> None:
        """Refuse a key named in two roles (or twice) and a driver key for a bus the fleet does
        not have: both would silently give someone other rights than meant."""
        seen: dict[str, str] = {}
        for name, keys in (
            ("rider_app_keys", list(self.rider_app_keys)),
            ("driver_keys", list(self.resolved_driver_keys())),
            ("dispatcher_keys", self.dispatcher_keys),
        ):
            for key in keys:
                if key in seen:
                    raise ConfigError(
                        f"a key is listed in {seen[key]} and in {name}; each key has one role",
                        field=name,
                    )
                seen[key] = name
        buses = set(self.vehicle_ids())
        unknown = sorted(set(self.resolved_driver_keys().values()) - buses)
        if unknown:
            raise ConfigError(
                f"driver keys for buses the fleet does not have: {unknown} (buses are "
                f"bus-1..bus-{self.buses})",
                field="driver_keys",
            )

    def check_production(self) -> None:
        """Refuse inconsistent keys; outside development also unsafe keys and the development
        clock."""
        self.check_keys()
        if self.environment != "production":
            return
        named = [
            ("rider_app_keys", list(self.rider_app_keys)),
            ("driver_keys", list(self.resolved_driver_keys())),
            ("dispatcher_keys", self.dispatcher_keys),
        ]
        for name, keys in named:
            for key in keys:
                if key.startswith(UNSAFE_KEY_PREFIX) or len(key) < MIN_KEY_LENGTH:
                    raise ConfigError(
                        f"unsafe API key in production: keys must not start with "
                        f"{UNSAFE_KEY_PREFIX!r} and need >= {MIN_KEY_LENGTH} characters",
                        field=name,
                    )
        if self.clock_offset_s:
            raise ConfigError("the shifted clock is for development only", field="clock_offset_s")
        if self.demo_drivers:
            raise ConfigError("simulated drivers are for development only", field="demo_drivers")

    def resolved_archive_dir(self) -> Path:
        """The archive's folder (of all areas): archive_dir, else data_dir/archive."""
        return self.archive_dir if self.archive_dir is not None else self.data_dir / "archive"

    def resolved_shared_dir(self) -> Path | None:
        return self.shared_dir if self.shared_dir is not None else find_shared_dir()

    def graph_source(self) -> Path | str:
        """The OSM file to read, or the place name to download when there is none."""
        if self.osm_file is not None:
            return self.osm_file
        if self.area_dir is not None:
            return next(self.area_dir.glob("*_roads_drive.osm*"))
        shared = self.resolved_shared_dir()
        if shared is not None and (shared / DEFAULT_OSM_RELPATH).is_file():
            return shared / DEFAULT_OSM_RELPATH
        return self.place

    def districts_source(self) -> Path | None:
        """The districts GeoJSON, if any (none is needed unless the tariff prices by zones);
        for an ``area_dir`` without one its places CSV, from which
        :func:`graphs.areas.load_districts` estimates them."""
        if self.districts_file is not None:
            return self.districts_file
        if self.area_dir is not None:
            given = self.area_dir / "districts.geojson"
            return given if given.is_file() else next(self.area_dir.glob("*_area_places.csv"))
        shared = self.resolved_shared_dir()
        if shared is not None and (shared / DEFAULT_DISTRICTS_RELPATH).is_file():
            return shared / DEFAULT_DISTRICTS_RELPATH
        return None

    def demand_dir(self) -> Path | None:
        """The folder with residential_cells.csv and pois.csv that the simulator draws its
        riders from: ``area_dir``, else data/soest in shared_dir (None: neither is there)."""
        if self.area_dir is not None:
            return self.area_dir
        shared = self.resolved_shared_dir()
        folder = shared / DEFAULT_DISTRICTS_RELPATH.parent if shared is not None else None
        return folder if folder is not None and (folder / "pois.csv").is_file() else None

    def area_label(self) -> str:
        """The town the settings serve, for headings: the town folder's name
        (``bad_berleburg`` -> "Bad Berleburg"), else the place's first part ("Soest")."""
        if self.area_dir is not None:
            return self.area_dir.name.replace("_", " ").title()
        return self.place.split(",")[0].strip()

    @model_validator(mode="after")
    def _area_id_of_the_folder(self) -> Settings:
        """A town folder names its area unless NACHTBUS_AREA_ID does."""
        if self.area_dir is not None and "area_id" not in self.model_fields_set:
            slug = re.sub(r"[^a-z0-9-]+", "-", self.area_dir.resolve().name.lower()).strip("-")
            if slug:
                self.area_id = slug
        return self

    def depot_given(self) -> bool:
        """Whether the depot was set (NACHTBUS_DEPOT_LAT/LON); if not, a town's folder gives
        its main station (``graphs.areas.main_station``)."""
        return bool({"depot_lat", "depot_lon"} & self.model_fields_set)

    def service_area_source(self) -> Path | str:
        """The service-area GeoJSON, or the place whose boundary to download when there is none."""
        if self.service_area_file is not None:
            return self.service_area_file
        if self.area_dir is not None:
            return self.area_dir / "service_area.geojson"
        shared = self.resolved_shared_dir()
        if shared is not None and (shared / DEFAULT_AREA_RELPATH).is_file():
            return shared / DEFAULT_AREA_RELPATH
        return self.place
