"""The FastAPI application: built once from Settings, with its road world, store and clock.

``create_app`` is what tests and ``nachtbus serve`` call; ``create_app_from_env`` is the factory
uvicorn workers import (settings from the environment).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from api import errors
from api.auth import KeyRing
from api.demo_drivers import DemoDrivers, start_demo_drivers
from api.limits import BodyLimit, KeyLimit, KeyRate, StreamSlots
from api.routes import dispatcher_router, driver_router, rider_router
from api.train_feed import TrainFeed
from api.transit import router as transit_router
from api.views import Views
from dispatch.assembly import build_service
from dispatch.rebalancing import RebalanceParams
from dispatch.redis_store import RedisStore, SharedBuckets
from dispatch.service import DispatchService
from dispatch.store import StateStore
from graphs.addresses import StreetIndex
from graphs.areas import load_districts
from nachtbus.billing.co2 import Co2Params
from nachtbus.clock import Clock
from nachtbus.errors import ConfigError
from nachtbus.procs import end_with_parent
from nachtbus.settings import Settings
from routing.world import RoadWorld, world_from_settings

log = logging.getLogger("nachtbus.api")
STATIC = Path(__file__).with_name("static")
ROUNDS_NICENESS = 10

DESCRIPTION = """
Booking, driver and dispatcher API of the on-demand night bus.

* **Rider apps** send a planning inquiry and get offers (pickup window, door-to-door pickup
  point, expected and latest arrival), book one (PENDING), then COMMIT or CANCEL it through a
  booking event; the booking shows the bus's live position and the current pickup forecast.
* **Drivers** read their bus's plan and report position, arrival, boarding, no-show, alighting
  and shift start / end.
* **Dispatchers** see the fleet, tonight's bookings, rejected requests, an event stream, and
  the live page at `/dispatcher`.

Authenticate with the `X-Api-Key` header. Every change accepts an `Idempotency-Key` header.
Errors answer `{code, message, field}`; 422 names the field and the rule.
"""


@dataclass
class Runtime:
    """What the routes use: the service and its views, the keys and the settings."""

    settings: Settings
    world: RoadWorld
    service: DispatchService
    views: Views
    keys: KeyRing
    streams: StreamSlots
    train_feed: TrainFeed | None = None  # the trains' delays, polled (gtfs_rt_trip_updates_url)
    demo_drivers: DemoDrivers | None = None  # development: simulated drivers (demo_drivers)

    _streets: StreetIndex | None = None

    def streets(self) -> StreetIndex:
        """The street names of the road network, for the phone desk (built on first use)."""
        if self._streets is None:
            source = self.settings.districts_source()
            districts = load_districts(source) if source else None
            self._streets = StreetIndex(
                self.world.network, districts.name_at if districts else None
            )
        return self._streets

    @property
    def co2_params(self) -> Co2Params:
        return Co2Params.from_settings(self.settings)

    def close(self) -> None:
        """Close the store (an embedded server owned by this process stops), once a train
        feed poll under way has applied what it fetched."""
        if self.train_feed is not None:
            self.train_feed.wait()
        self.service.close()


def build_runtime(
    settings: Settings,
    world: RoadWorld,
    *,
    clock: Clock | None = None,
    store: StateStore | None = None,
) -> Runtime:
    """Wire settings, roads, store and clock into a started dispatch service and its views."""
    service = build_service(settings, world, clock=clock, store=store)
    views = Views(
        service.clock,
        world.times,
        service.dispatcher.policy.train_buffer_s,
        # the night's dispatcher (it changes at the turn of a service day)
        no_show_due=lambda st, vid, bid: service.dispatcher.no_show_due_s(st, vid, bid),
    )
    slots = StreamSlots(settings.max_streams_per_key)
    feed = None
    if settings.gtfs_rt_trip_updates_url:
        feed = TrainFeed(settings.gtfs_rt_trip_updates_url, settings.gtfs_rt_poll_s)
    rt = Runtime(settings, world, service, views, KeyRing(settings), slots, feed)
    if settings.demo_drivers:
        rt.demo_drivers = DemoDrivers(rt)
    return rt


def start_background(rt: Runtime) -> tuple[threading.Event, threading.Thread | None]:
    """Start the background rounds in a thread (none when reopt_interval_s is 0).

    Set the returned event to stop them.
    """
    stop = threading.Event()
    if rt.settings.reopt_interval_s <= 0:
        return stop, None
    worker = threading.Thread(target=_background, args=(rt, stop), daemon=True, name="rounds")
    worker.start()
    return stop, worker


def _background(rt: Runtime, stop: threading.Event) -> None:
    """Expire PENDING bookings (tonight's and those booked ahead for later nights), move on
    the times of buses that have not left for their next stop (riders told, or moved to a
    bus that keeps their promise), re-optimise changed plans, start a fetch of the trains'
    delays (when a feed is set, every gtfs_rt_poll_s, in its own thread: it is not waited
    for), move old nights to the archive (once a service day) and rebalance idle buses (from
    the last nights' demand), every reopt_interval_s.

    With several worker processes only the lease holder works, so rounds do not compete.
    """
    owner = f"{os.getpid()}-{threading.get_ident()}"
    with contextlib.suppress(OSError):  # a round yields the CPU to requests (Linux: per thread)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), ROUNDS_NICENESS)
    lease = max(5, int(rt.settings.reopt_interval_s * 3))
    while not stop.wait(rt.settings.reopt_interval_s):
        try:
            if not rt.service.lead_background(owner, lease):
                continue
            for svc in [rt.service, *rt.service.later_nights()]:  # and nights booked ahead
                svc.expire_pending()
            for vid in rt.service.retime_not_left():
                log.info("%s has not left for its next stop: its times now run from now", vid)
            if rt.service.reoptimise(only_if_changed=True):
                log.info("re-optimised plans committed")
            if rt.train_feed is not None:
                rt.train_feed.poll_if_due(rt)
            for day in rt.service.archive_nights(rt.settings.keep_nights):
                log.info("service day %s moved from the store to the archive", day)
            if rt.settings.rebalance_nights and rt.service.rebalance_from_history(
                rt.settings.rebalance_nights, RebalanceParams()
            ):
                log.info("idle buses sent towards expected demand")
            rt.service.note_round(None)
        except Exception as exc:  # keep the loop alive; the next round tries again
            log.exception("background round failed")
            with contextlib.suppress(Exception):  # the store may be what failed
                rt.service.note_round(f"{type(exc).__name__}: {exc}")


def create_app(settings: Settings, world: RoadWorld, runtime: Runtime | None = None) -> FastAPI:
    """The API over a road world; ``runtime`` lets tests bring their own clock and store."""
    rt = runtime or build_runtime(settings, world)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = rt.settings.api_threads
        stop, worker = start_background(rt)
        demo = start_demo_drivers(rt, stop) if rt.demo_drivers is not None else None
        yield
        stop.set()
        for thread in (worker, demo):
            if thread is not None:
                thread.join(timeout=30)

    app = FastAPI(
        title="nachtbus",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "planning", "description": "Inquiries and offers (TOMP planning)."},
            {"name": "booking", "description": "Bookings and their events (TOMP booking)."},
            {"name": "driver", "description": "A bus's plan and the driver's reports."},
            {"name": "dispatcher", "description": "The whole fleet, live."},
            {"name": "billing", "description": "Ledger, nightly export and CO2 account."},
            {"name": "keys", "description": "Who the calling key is."},
            {"name": "phone desk", "description": "Booking for riders who phone in."},
            {"name": "trains and GTFS", "description": "Trains, their delays, GTFS-Flex out."},
        ],
    )
    app.state.rt = rt
    app.add_middleware(BodyLimit, max_bytes=rt.settings.max_body_bytes)
    rate = KeyRate(rt.settings.rate_per_key_per_s, rt.settings.rate_burst)
    shared = None
    if rt.settings.rate_shared:
        store = rt.service.store
        if not isinstance(store, RedisStore):
            raise ConfigError("rate_shared needs the Redis store", field="rate_shared")
        shared = SharedBuckets(store.conn.url, f"nachtbus:{rt.settings.area_id}:rate:")
    # outermost: a refused request costs least
    app.add_middleware(KeyLimit, rate=rate, shared=shared, known=rt.keys.key_ids())
    # The road world is ~10^5 long-lived objects: keep them out of every full collection.
    gc.freeze()
    app.state.keys = rt.keys
    errors.install(app)
    app.include_router(rider_router, prefix="/v1")
    app.include_router(driver_router, prefix="/v1")
    app.include_router(dispatcher_router, prefix="/v1")
    app.include_router(transit_router, prefix="/v1")

    @app.get("/dispatcher", response_class=HTMLResponse, include_in_schema=False)
    def dispatcher_page() -> HTMLResponse:
        return HTMLResponse((STATIC / "dispatcher.html").read_text(encoding="utf-8"))

    @app.get("/driver", response_class=HTMLResponse, include_in_schema=False)
    def driver_page() -> HTMLResponse:
        return HTMLResponse((STATIC / "driver.html").read_text(encoding="utf-8"))

    @app.get("/health", tags=["dispatcher"], summary="Liveness: the store answers; service time")
    def health() -> dict[str, object]:
        return {
            "ok": True,
            "version": rt.service.version(),
            "now": rt.views.t(rt.service.clock.now_s()).isoformat(),
        }

    return app


def local_client(app: FastAPI) -> Any:
    """An in-process HTTP client of ``app`` (FastAPI's test client, used as a context manager
    to run the app's start-up and shutdown): benchmarks drive the real app through its HTTP
    interface without a socket, and without importing the web stack themselves."""
    from fastapi.testclient import TestClient

    return TestClient(app)


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn (``--factory``): settings from NACHTBUS_* variables. A worker of
    ``nachtbus serve --workers N`` ends with its parent (:mod:`nachtbus.procs`), so a killed
    parent never leaves workers holding the port."""
    end_with_parent()
    settings = Settings()
    return create_app(settings, world_from_settings(settings))
