"""Run scenarios: one night, or a sweep over all cores; what ``nachtbus simulate`` calls."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.assembly import depot_of
from graphs.areas import load_districts
from graphs.districts import Districts
from nachtbus.billing.co2 import Co2Params
from nachtbus.billing.fares import Pricer, Tariff
from nachtbus.domain import BookingRequest, ConnectionKind
from nachtbus.errors import ConfigError
from nachtbus.settings import Settings
from nachtbus.transit.timetable import EXAMPLE_FEED, Timetable
from nachtbus.transit.timetable import load as load_timetable
from routing.world import RoadWorld
from simulations import hindsight, kpis
from simulations.demand import (
    SoestInputs,
    Trip,
    generate,
    read_trips_csv,
    told_ahead,
    train_trips,
)
from simulations.engine import DEPOT, SIM_DAY, SimResult, Simulation
from simulations.forecast import model_forecast
from simulations.scenario import Scenario


@dataclass(frozen=True)
class Inputs:
    """What every run needs besides the scenario: roads, districts, demand data, tariff."""

    world: RoadWorld
    districts: Districts
    soest: SoestInputs
    tariff: Tariff
    co2: Co2Params
    depot: tuple[float, float] = DEPOT  # lat, lon where the buses start and end
    area: str = "Soest"  # the town, for headings (Settings.area_label)


def load_inputs(settings: Settings) -> Inputs:
    from routing.world import world_from_settings

    folder = settings.demand_dir()
    districts_file = settings.districts_source()
    if folder is None or districts_file is None:
        raise ConfigError(
            "simulations need a town's districts, residential cells and POIs: set "
            "NACHTBUS_SHARED_DIR to the folder holding data/soest, or NACHTBUS_AREA_DIR to a "
            "town's folder (shared/data/areas/<town>)",
            field="shared_dir",
        )
    return Inputs(
        world=world_from_settings(settings),
        districts=load_districts(districts_file),
        soest=SoestInputs.load(folder),
        tariff=Tariff.load(settings.tariff_file),
        co2=Co2Params.from_settings(settings),
        depot=depot_of(settings),
        area=settings.area_label(),
    )


_TIMETABLES: dict[str, Timetable] = {}


def timetable_for(scenario: Scenario, inputs: Inputs) -> Timetable | None:
    """The trains of ``[trains] feed`` at the stations in the service area (read once per
    feed and process), or None."""
    if not scenario.trains.enabled:
        return None
    feed = scenario.trains.feed
    path = EXAMPLE_FEED if feed == "example" else Path(feed)
    key = str(path.resolve())
    if key not in _TIMETABLES:
        _TIMETABLES[key] = load_timetable(
            path, ZoneInfo("Europe/Berlin"), inside=inputs.world.area.geometry
        )
    return _TIMETABLES[key]


def trips_for(scenario: Scenario, inputs: Inputs, seed: int) -> list[Trip]:
    """The night's trips: the replayed list, or the generated demand and (with
    ``[trains]``) the trains' riders, by asking time."""
    ahead, start = scenario.demand.told_ahead_min, scenario.start_s
    if scenario.demand.trips_csv is not None:
        return told_ahead(read_trips_csv(scenario.demand.trips_csv), ahead, start)
    trips = told_ahead(generate(scenario, inputs.soest, seed), ahead, start)
    tt = timetable_for(scenario, inputs)
    if tt is not None:
        trips += train_trips(scenario, inputs.soest, tt.calls(SIM_DAY), seed)
        trips.sort(key=lambda t: (t.ask_s, t.trip_id))
    return trips


def run_one(
    scenario: Scenario,
    inputs: Inputs,
    seed: int,
    progress: Callable[[int], None] | None = None,
    trips: list[Trip] | None = None,
    hindsight_params: hindsight.HindsightParams | None = None,
) -> tuple[SimResult, dict[str, Any]]:
    """Play one night; the result and its KPI table (with the wall time in ``run``). With
    ``hindsight_params`` the table also has the bound: the same night solved with every
    request known in advance (:mod:`simulations.hindsight`), in ``hindsight``."""
    t0 = time.perf_counter()
    trips = trips if trips is not None else trips_for(scenario, inputs, seed)
    pricer = Pricer(inputs.tariff, inputs.districts.name_at)
    forecast = None
    if scenario.dispatching.rebalance:
        forecast = model_forecast(
            scenario,
            inputs.soest,
            lambda lat, lon: inputs.world.place(lat, lon, "zone", in_area=False),
            cell_m=scenario.dispatching.rebalance_cell_m,
            seed=seed,
        )
    sim = Simulation(
        inputs.world,
        scenario,
        trips,
        pricer,
        seed=seed,
        progress=progress,
        forecast=forecast,
        timetable=timetable_for(scenario, inputs),
        depot=inputs.depot,
    )
    result = sim.run()
    table = kpis.compute(result, inputs.districts.name_at, inputs.co2)
    table["run"] = {
        "wall_s": round(time.perf_counter() - t0, 2),
        "events": result.events,
        "area": inputs.area,
    }
    if hindsight_params is not None:
        t1 = time.perf_counter()
        table["hindsight"] = solve_hindsight(sim, trips, inputs, table, hindsight_params)
        table["run"]["hindsight_wall_s"] = round(time.perf_counter() - t1, 2)
    return result, table


def solve_hindsight(
    sim: Simulation,
    trips: list[Trip],
    inputs: Inputs,
    table: dict[str, Any],
    params: hindsight.HindsightParams,
) -> dict[str, Any]:
    """The bound of a played night, its shares over the online run's denominators (requests
    not cancelled by the rider, overall and per district), so both columns compare."""
    world = inputs.world

    def trains(trip: Trip, req: BookingRequest) -> tuple[BookingRequest, int | None]:
        # as the service makes it, with the train's final delay (hindsight knows it)
        conn, station = sim.service.find_train(ConnectionKind(trip.train_kind), trip_id=trip.train)
        conn = replace(conn, delay_s=trip.train_delay_s)
        req, arrive_by = sim.service.with_train(req, conn, station)
        if arrive_by is None:
            return req, None
        direct = int(world.times.times_s([req.origin.node, req.destination.node])[0, 1])
        asked = sim.dispatcher.policy.arrive_by_pickup_s(arrive_by, direct)
        return replace(req, pickup_at_s=max(asked, trip.ask_s)), arrive_by

    reqs, _ = hindsight.requests_of_trips(
        trips, world.place, inputs.districts.name_at, trains=trains
    )
    night = hindsight.build(
        world.times, sim.dispatcher.policy, sim.vehicles, sim.scenario.start_s, reqs
    )
    sol = hindsight.solve_night(night, params)
    out = hindsight.kpis(night, sol, world.times, inputs.co2)
    online = table["overall"]
    out["requests"] = online["requests"]  # the same night's requests; "planned": what it could
    asked = online["requests"] - online["cancelled"]
    out["served_share"] = out["served"] / asked if asked else None
    out["served_at_wish"] = out["served"]  # with hindsight every rider gets the wish or nothing
    out["served_at_wish_share"] = out["served_share"]
    for part in ("districts", "hours"):
        for name, d in out[part].items():
            on = table[part].get(name)
            n = on["requests"] - on["cancelled"] if on else 0
            d["served_share"] = d["served"] / n if n else None
    out["villages"] = kpis.villages(out["districts"], table["districts"])
    return out


_INPUTS: Inputs | None = None
#: a pool job: the settings, the scenario, the night's seed, the swept values, the bound
_Job = tuple[Settings, Scenario, int, dict[str, Any], hindsight.HindsightParams | None]


def _sweep_worker(args: _Job) -> dict[str, Any]:
    global _INPUTS
    settings, scenario, seed, values, bound = args
    if _INPUTS is None:
        _INPUTS = load_inputs(settings)
    _, table = run_one(scenario.with_values(values), _INPUTS, seed, hindsight_params=bound)
    table["sweep"] = values  # (its "seed" is the night's already)
    return table


def _run_pool(
    jobs: list[_Job], workers: int | None, progress: Callable[[int], None] | None
) -> list[dict[str, Any]]:
    """The jobs on all cores (each process loads the roads once), their tables in order."""
    workers = workers or os.cpu_count() or 1
    out = []
    # spawn, not fork: the parent already runs OpenMP (numba, OR-Tools) threads
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        for table in pool.map(_sweep_worker, jobs):
            out.append(table)
            if progress:
                progress(1)
    return out


def night_seeds(seed: int, nights: int) -> list[int]:
    """The seeds of ``nights`` nights from ``seed`` on: the scenario's night and the next."""
    if nights < 1:
        raise ValueError(f"nights must be at least 1, got {nights}")
    return list(range(seed, seed + nights))


def run_sweep(
    settings: Settings,
    scenario: Scenario,
    seed: int,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    nights: int = 1,
) -> list[dict[str, Any]]:
    """One run per combination of swept values and night (``nights`` seeds from ``seed``:
    every combination plays the same nights), on all cores; each table has its ``sweep``
    values and ``seed``."""
    jobs: list[_Job] = [
        (settings, scenario, s, values, None)
        for values in scenario.runs()
        for s in night_seeds(seed, nights)
    ]
    return _run_pool(jobs, workers, progress)


def run_nights(
    settings: Settings,
    scenario: Scenario,
    seed: int,
    nights: int,
    bound: hindsight.HindsightParams | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """``nights`` nights of the scenario (seeds from ``seed`` on) on all cores, each with the
    hindsight bound when ``bound`` is given (its seed the night's); their tables by seed."""
    jobs: list[_Job] = [
        (settings, scenario, s, {}, None if bound is None else replace(bound, seed=s))
        for s in night_seeds(seed, nights)
    ]
    return _run_pool(jobs, workers, progress)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
