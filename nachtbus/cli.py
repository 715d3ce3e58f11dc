"""The ``nachtbus`` command line: the edge where settings are read and errors become exit codes.

Every error the engine raises on purpose is printed as one line ``nachtbus: error: ...`` and exits
with status 2, like a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from nachtbus.errors import GraphSourceError, InvalidCoordinate, InvalidInput, NachtbusError
from nachtbus.settings import Settings

if TYPE_CHECKING:
    from api.app import Runtime
    from routing.world import RoadWorld

EXIT_ERROR = 2
#: the most nights one `simulate --seeds` plays
MAX_NIGHTS = 100


def parse_coordinate(text: str, option: str) -> tuple[float, float]:
    """Parse ``LAT,LON``; InvalidCoordinate names the option and the rule."""
    from graphs.snapping import validate_coordinate

    parts = text.split(",")
    if len(parts) != 2:
        raise InvalidCoordinate(f"must be LAT,LON (two numbers), got {text!r}", field=option)
    return validate_coordinate(parts[0].strip(), parts[1].strip(), option)


def _add_area_options(p: argparse.ArgumentParser, cache: str) -> None:
    """--service-area and --cache-dir (``cache``: what the cache holds for this command)."""
    p.add_argument(
        "--service-area",
        type=Path,
        help="GeoJSON service-area polygon; default: $NACHTBUS_SERVICE_AREA_FILE, "
        "else ../shared's Soest one",
    )
    p.add_argument(
        "--cache-dir", type=Path, help=f"cache folder ({cache}); default: ~/.cache/nachtbus"
    )


def _add_source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--area-dir",
        type=Path,
        help="a town's input folder, e.g. ../shared/data/areas/olpe: its roads, service area, "
        "districts, homes and POIs, depot at its main station; default: $NACHTBUS_AREA_DIR, "
        "else Soest from ../shared",
    )
    p.add_argument(
        "--osm-file",
        type=Path,
        help="OSM XML road network (.osm/.osm.bz2); default: $NACHTBUS_OSM_FILE, else the Soest "
        "file in ../shared, else the network of $NACHTBUS_PLACE downloaded with osmnx",
    )
    _add_area_options(p, "the network")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nachtbus",
        description="Dispatch and routing engine of the Soest on-demand night bus.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    graph = sub.add_parser("graph", help="inspect or build the road network")
    gsub = graph.add_subparsers(dest="graph_command", required=True, metavar="SUBCOMMAND")
    info = gsub.add_parser(
        "info", help="nodes, edges, bounding box, source and cache of the road network"
    )
    info.add_argument("--json", action="store_true", help="print one JSON object")
    _add_source_options(info)
    build = gsub.add_parser("build", help="build the road network cache (rebuild with --force)")
    build.add_argument("--force", action="store_true", help="drop the cached network and rebuild")
    _add_source_options(build)

    route = sub.add_parser(
        "route", help="fastest night route between two points in the service area"
    )
    route.add_argument(
        "--from",
        dest="origin",
        required=True,
        metavar="LAT,LON",
        help="start, e.g. 51.5711,8.1057 (the Markt)",
    )
    route.add_argument(
        "--to",
        dest="destination",
        required=True,
        metavar="LAT,LON",
        help="end, e.g. 51.5494,8.0007 (Ostönnen)",
    )
    route.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with travel_time_s, distance_m, path_points",
    )
    route.add_argument("--polyline", action="store_true", help="with --json: include the path")
    _add_source_options(route)
    serve = sub.add_parser(
        "serve",
        help="run the booking / driver / dispatcher API with the live dispatcher page",
        description="Start the API on the road network and service area of the settings, with "
        "an embedded Redis store under --data-dir (or $NACHTBUS_REDIS_URL). Every option "
        "can also be set as a NACHTBUS_* environment variable.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--buses", type=int, help="buses in the fleet (default 4)")
    serve.add_argument(
        "--clock",
        metavar="HH:MM",
        help="development: start the service clock at this time of night (e.g. 22:00) so the "
        "night bus can be tried in the daytime",
    )
    serve.add_argument(
        "--demo-drivers",
        action="store_true",
        help="development: simulated drivers drive every bus along its plan, so bookings are "
        "picked up and set down without buses (a bus whose driver's page reports is left to "
        "it); one worker only",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="where the embedded store keeps its data and old nights are archived (archive/)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API worker processes sharing one store and each key's rate limit (default 1; "
        "2 on a 2-core machine)",
    )
    _add_source_options(serve)
    sim = sub.add_parser(
        "simulate",
        help="simulate a whole night of a scenario (planners): KPIs, plots, report",
        description="Play a night of SCENARIO.toml through the production dispatch service "
        "(embedded store, simulated clock) on the real road network, and print its KPIs. "
        "With --report DIR also write index.html (map, charts), kpis.json, kpis.csv and "
        "trips.csv. With --seeds N play N nights (the seed and the next ones) on all cores "
        "and print each KPI's mean, lowest and highest. With --sweep run every combination "
        "of the scenario's [sweep] values (each on the same N nights) on all cores and write "
        "a summary with a trade-off chart.",
    )
    sim.add_argument(
        "scenario", type=Path, help="scenario file, e.g. simulations/scenarios/friday.toml"
    )
    sim.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    sim.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="play N nights, the seed's and the next ones (default 1). Nights differ more "
        "than most changes change them: a sweep then compares each combination with the "
        "first night by night (mean difference, its standard error, nights better / worse)",
    )
    sim.add_argument("--report", type=Path, metavar="DIR", help="write the report here")
    sim.add_argument("--sweep", action="store_true", help="run the scenario's [sweep] values")
    sim.add_argument("--json", action="store_true", help="print the KPI table as JSON")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    sim.add_argument(
        "--hindsight",
        action="store_true",
        help="also solve the same night with every request known in advance (ruin and "
        "recreate) and show the bound beside the online KPIs",
    )
    sim.add_argument(
        "--hindsight-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="search time of the hindsight solve (default 60)",
    )
    sim.add_argument(
        "--hindsight-steps",
        type=int,
        default=None,
        metavar="N",
        help="ruin-and-recreate step limit of the hindsight solve (reproducible); default "
        "only the time",
    )
    _add_source_options(sim)
    export = sub.add_parser("export", help="publish the service for journey planners")
    esub = export.add_subparsers(dest="export_command", required=True, metavar="FORMAT")
    gflex = esub.add_parser(
        "gtfs-flex",
        help="write the service as a GTFS-Flex feed into DIR",
        description="Write the service as GTFS-Flex into DIR: the service area as a flex "
        "location (locations.geojson), the service hours as pickup / drop-off windows, the "
        "booking rule (app; phone with $NACHTBUS_BOOKING_PHONE), agency, route, calendar, "
        "feed info; checked against the reference's Flex rules before it is written.",
    )
    gflex.add_argument("dir", type=Path, metavar="DIR", help="folder to write (made if missing)")
    gflex.add_argument(
        "--zip", action="store_true", help="also write DIR/nachtbus-flex.zip with the files"
    )
    gflex.add_argument(
        "--days", type=int, default=365, help="days the calendar runs from today (365)"
    )
    _add_area_options(gflex, "a downloaded area")
    bench = sub.add_parser("bench", help="run a benchmark (see benchmarks/)")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    solver = bsub.add_parser(
        "solver",
        help="solvers on the published Cordeau DARP / Li & Lim PDPTW instances in ../shared",
        description="Solve published instances with our solver, a plain OR-Tools model and "
        "(Li & Lim) PyVRP under the same time limit; every solution is checked and re-costed "
        "in double precision; prints a table with the gap to the best-known values.",
    )
    from benchmarks.args import add_solver_arguments  # argparse only: nothing heavy at parse time

    add_solver_arguments(solver)
    return parser


def _option_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command's road and area options give (setting -> value)."""
    found = {s: getattr(args, _OPTION_OF[s][1], None) for s in _ROAD_SETTINGS}
    return {setting: value for setting, value in found.items() if value is not None}


def _settings(args: argparse.Namespace, **changes: Any) -> Settings:
    """The settings (environment) with the command's options over them, all validated."""
    return Settings(**{**changes, **_option_settings(args)})


# setting -> (option, its attribute on args): an error in a value given by the option names it
_OPTION_OF = {"buses": ("--buses", "buses"), "data_dir": ("--data-dir", "data_dir"),
              "area_dir": ("--area-dir", "area_dir"), "osm_file": ("--osm-file", "osm_file"),
              "service_area_file": ("--service-area", "service_area"),
              "cache_dir": ("--cache-dir", "cache_dir")}  # fmt: skip
# the settings every command's road and area options (_add_area_options) may give
_ROAD_SETTINGS = ("area_dir", "osm_file", "service_area_file", "cache_dir")


def _world(settings: Settings) -> RoadWorld:
    from routing.world import world_from_settings

    return world_from_settings(settings)


def _cmd_graph_info(args: argparse.Namespace) -> int:
    settings = _settings(args)
    world = _world(settings)
    net = world.network
    n = net.n_nodes
    info: dict[str, Any] = {
        "nodes": n,
        "edges": net.n_edges,
        "bbox": dict(zip(("min_lon", "min_lat", "max_lon", "max_lat"), net.bbox, strict=True)),
        "source": net.meta.get("source"),
        "built_at": net.meta.get("built_at"),
        "cache_file": str(world.cache.path),
        "cache_hit": world.cache.hit,
        "load_seconds": round(world.cache.seconds, 3),
        "service_area": world.area.name,
        "lookups": "all-pairs table" if world.times.uses_table else "cached rows",
        "all_pairs_table_mb": round(n * n * 4 / 1e6, 1),
    }
    if args.json:
        print(json.dumps(info))
        return 0
    b = info["bbox"]
    print(f"source        {info['source']}")
    print(f"nodes         {n:,}")
    print(f"edges         {net.n_edges:,}")
    print(
        f"bbox          lon {b['min_lon']:.4f}..{b['max_lon']:.4f}, "
        f"lat {b['min_lat']:.4f}..{b['max_lat']:.4f}"
    )
    print(f"service area  {world.area.name}")
    print(
        f"cache         {info['cache_file']} ({'hit' if world.cache.hit else 'built'}, "
        f"{world.cache.seconds:.2f} s)"
    )
    print(f"lookups       {info['lookups']} ({info['all_pairs_table_mb']} MB as int32)")
    return 0


def _cmd_graph_build(args: argparse.Namespace) -> int:
    from graphs.build import source_key
    from routing.world import speed_profile

    settings = _settings(args)
    if args.force:
        key = source_key(settings.graph_source(), speed_profile(settings))
        (settings.cache_dir / f"network-{key}.npz").unlink(missing_ok=True)
    world = _world(settings)
    print(
        f"{world.cache.path}: {world.network.n_nodes:,} nodes, {world.network.n_edges:,} edges "
        f"({'cache hit' if world.cache.hit else 'built'} in {world.cache.seconds:.2f} s)"
    )
    return 0


def _cmd_bench_solver(args: argparse.Namespace) -> int:
    from benchmarks.instances import benchmarks_dir
    from benchmarks.solver import main_from_args

    try:
        benchmarks_dir()
    except FileNotFoundError as exc:
        raise GraphSourceError(str(exc), field="benchmarks") from exc
    return main_from_args(args)


def _cmd_route(args: argparse.Namespace) -> int:
    settings = _settings(args)
    origin = parse_coordinate(args.origin, "--from")
    destination = parse_coordinate(args.destination, "--to")
    world = _world(settings)
    a = world.locate(*origin, field="--from")
    b = world.locate(*destination, field="--to")
    route = world.route_between(a, b)
    if args.json:
        out: dict[str, Any] = {
            "travel_time_s": route.travel_time_s,
            "distance_m": route.distance_m,
            "path_points": len(route.polyline),
            "from": {"lat": a.lat, "lon": a.lon, "street": a.street, "offset_m": a.offset_m},
            "to": {"lat": b.lat, "lon": b.lon, "street": b.street, "offset_m": b.offset_m},
        }
        if args.polyline:
            out["polyline"] = [list(p) for p in route.polyline]
        print(json.dumps(out, ensure_ascii=False))
        return 0
    m, s = divmod(route.travel_time_s, 60)
    for label, p in (("from", a), ("to", b)):
        street = p.street or "(unnamed road)"
        print(f"{label:<13}{p.lat:.5f}, {p.lon:.5f}  {street} ({p.offset_m} m off)")
    print(f"travel time  {m} min {s:02d} s ({route.travel_time_s} s)")
    print(f"distance     {route.distance_m / 1000:.2f} km ({route.distance_m} m)")
    print(f"path         {len(route.polyline)} points, {len(route.nodes)} junctions")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from api.app import build_runtime, create_app, start_background
    from dispatch.assembly import embedded_store
    from nachtbus.procs import end_with_parent, parent_env

    end_with_parent()  # started by a test or benchmark: end with it (nachtbus.procs)

    settings = _settings(args)
    changes: dict[str, Any] = {}
    if args.buses is not None:
        changes["buses"] = args.buses
    if args.data_dir is not None:
        changes["data_dir"] = args.data_dir
    if args.demo_drivers:
        if args.workers > 1:
            raise InvalidInput(
                "the simulated drivers run in the one API process: use --workers 1",
                field="--demo-drivers",
            )
        changes["demo_drivers"] = True
    if args.clock is not None:
        from nachtbus.clock import WallClock
        from nachtbus.units import parse_clock

        try:
            start = parse_clock(args.clock)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="--clock") from None
        changes["clock_offset_s"] = WallClock.starting_at(start, settings.timezone).offset_s
    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"a port is 0 to 65535, got {args.port}", field="--port")
    settings = _settings(args, **changes)  # validated: the options keep the settings' rules
    settings.check_production()
    world = _world(settings)

    def banner(rt: Runtime) -> None:  # once started: a refused start prints only why
        base = f"http://{args.host}:{args.port}"
        dev = settings.environment == "development"
        key = settings.dispatcher_keys[0] if dev else "<key>"
        buses = len(rt.service.snapshot().vehicles)  # tonight's fleet (a restart keeps its buses)
        print(f"nachtbus: {buses} buses on {world.network.n_nodes} road nodes")
        print(f"nachtbus: dispatcher page  {base}/dispatcher?key={key}")
        driver_key = next(iter(settings.resolved_driver_keys()), "<key>") if dev else "<key>"
        print(f"nachtbus: driver page      {base}/driver?key={driver_key}")
        print(f"nachtbus: API docs         {base}/docs", flush=True)

    if args.workers <= 1:
        rt = build_runtime(settings, world)
        banner(rt)
        try:  # SIGTERM / Ctrl-C end uvicorn.run; the embedded store stops with the service
            uvicorn.run(create_app(settings, world, rt), host=args.host, port=args.port,
                        log_level="warning")  # fmt: skip
        finally:
            rt.close()
        return 0
    # Several workers share one store: start the embedded server here and hand its socket on.
    # This process also runs the background rounds (expiry, OR-Tools re-optimisation), so a
    # solve never holds a serving worker's interpreter lock; the workers run none. Each worker
    # ends with this process (api.app.create_app_from_env), so a killed parent leaves no
    # worker holding the port; the store's keeper stops the embedded server likewise.
    # every setting an option gave reaches the workers too (they read only the environment):
    # else a worker would serve the default town's roads, or read the default data folder's
    # archive, while this process plans on the ones named
    given = {**_option_settings(args), **changes}
    env = {
        f"NACHTBUS_{k.upper()}": str(v.resolve() if isinstance(v, Path) else v)
        for k, v in given.items()
    }
    owned = embedded_store(settings) if settings.redis_url is None else None
    if owned is not None:
        env["NACHTBUS_REDIS_URL"] = owned.url
    # the workers count each key's rate together, in the store (else N times the rate)
    env.update(NACHTBUS_REOPT_INTERVAL_S="0", NACHTBUS_RATE_SHARED="true", **parent_env())
    os.environ.update(env)
    try:
        rt = build_runtime(
            settings.model_copy(update={"redis_url": env.get("NACHTBUS_REDIS_URL")}), world
        )
    except BaseException:
        if owned is not None:  # a refused start stops the store it started
            owned.close()
        raise
    stop, _ = start_background(rt)
    banner(rt)
    try:
        uvicorn.run(
            "api.app:create_app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
        )
    finally:
        stop.set()
        rt.close()
        if owned is not None:
            owned.close()
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simulations import report
    from simulations.compare import nights_summary, summary_lines
    from simulations.run import load_inputs, run_nights, run_one, run_sweep, trips_for
    from simulations.scenario import Scenario

    settings = _settings(args)
    scenario = Scenario.load(args.scenario)
    seed = scenario.seed if args.seed is None else args.seed
    if seed < 0:
        raise InvalidInput(f"the seed must be >= 0, got {seed}", field="--seed")
    if args.report is not None:  # before the night is played, not after
        try:
            args.report.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"cannot write the report to {args.report}: {exc.strerror}", field="--report"
            ) from None
    if not 1 <= args.seeds <= MAX_NIGHTS:
        raise InvalidInput(
            f"the number of nights must be 1 to {MAX_NIGHTS}, got {args.seeds}", field="--seeds"
        )
    if args.sweep:
        if not scenario.sweep:
            raise InvalidInput("the scenario has no [sweep] table", field="--sweep")
        if args.hindsight:
            raise InvalidInput(
                "a sweep is not solved with hindsight: play one setting with --hindsight",
                field="--hindsight",
            )
        runs = len(scenario.runs()) * args.seeds
        with tqdm(total=runs, desc="runs", unit="run", disable=args.no_progress) as bar:
            tables = run_sweep(settings, scenario, seed, progress=bar.update, nights=args.seeds)
        if args.report:
            print(f"nachtbus: sweep report {report.write_sweep(tables, args.report)}")
        if args.json:
            print(json.dumps(tables, default=str))
        else:
            _print_sweep(tables, args.seeds)
        return 0
    from simulations.hindsight import HindsightParams
    from simulations.kpis import summary_rows

    try:  # checked with or without --hindsight: a bad value is never ignored unsaid
        params = HindsightParams(args.hindsight_seconds, args.hindsight_steps, seed)
    except ValueError as exc:
        field = "--hindsight-steps" if "step" in str(exc) else "--hindsight-seconds"
        raise InvalidInput(str(exc), field=field) from None
    hindsight = params if args.hindsight else None
    if args.seeds > 1:
        with tqdm(total=args.seeds, desc="nights", unit="night", disable=args.no_progress) as bar:
            tables = run_nights(
                settings, scenario, seed, args.seeds, hindsight, progress=bar.update
            )
        summary = nights_summary(tables)
        if args.report:
            print(f"nachtbus: report {report.write_nights(tables, summary, args.report)}")
        if args.json:
            print(json.dumps({"nights": tables, "summary": summary}, default=str))
            return 0
        last = seed + args.seeds - 1
        print(
            f"{scenario.name} in {tables[0]['run']['area']}, seeds {seed} to {last} "
            f"({args.seeds} nights), {scenario.fleet.buses} buses"
        )
        head = f"  {'':<40}{'mean':>12}{'lowest':>12}{'highest':>12}"
        print(head + (f"{'bound mean':>12}" if hindsight else ""))
        for label, mean, low, high, bound in summary_lines(summary):
            row = f"  {label:<40}{mean:>12}{low:>12}{high:>12}"
            print(row + (f"{bound:>12}" if hindsight else ""))
        return 0
    inputs = load_inputs(settings)
    trips = trips_for(scenario, inputs, seed)
    with tqdm(total=len(trips), desc="requests", unit="req", disable=args.no_progress) as bar:
        result, table = run_one(
            scenario, inputs, seed, progress=bar.update, trips=trips, hindsight_params=hindsight
        )
    if args.report:
        page = report.write(result, table, inputs.world, inputs.districts.name_at, args.report)
        print(f"nachtbus: report {page}")
    if args.json:
        print(json.dumps(table, default=str))
        return 0
    o = table["overall"]
    print(
        f"{scenario.name} in {inputs.area}, seed {seed}: {o['requests']} requests, "
        f"{scenario.fleet.buses} buses"
    )
    with_bound = "hindsight" in table
    print(f"  {'':<40}{'online':>12}" + (f"{'hindsight':>12}" if with_bound else ""))
    for label, online, bound in summary_rows(table):
        print(f"  {label:<40}{online:>12}" + (f"{bound:>12}" if with_bound else ""))
    print(f"  {'rejections':<40}{o['rejections']}")
    print(f"  {'wished time not kept: why':<40}{o['wish_not_kept']}")
    return 0


def _print_sweep(tables: list[dict[str, Any]], nights: int) -> None:
    """A sweep's combinations, each the mean over its nights; with several nights, each
    after the first against the first, night by night."""
    from simulations.compare import PAIRED, combinations, paired_text
    from simulations.kpis import fmt

    for c in combinations(tables):
        m = c["mean"]
        line = (
            f"{c['sweep']}: served {fmt(m['served_share'], '%')} (at the wish "
            f"{fmt(m['served_at_wish_share'], '%')}), vehicle-km {fmt(m['vehicle_km'], 'km')}, "
            f"bus km per direct km {fmt(m['bus_km_per_direct_km'], 'x')}, "
            f"pooled {fmt(m['pooled_share'], '%')}"
        )
        if nights > 1:
            line += f" (mean of {nights} nights)"
            if c["paired"] is not None:
                cells = ", ".join(f"{k} {paired_text(k, c['paired'][k])}" for k in PAIRED)
                line += f"; against the first: {cells}"
        print(line)


def _cmd_export_flex(args: argparse.Namespace) -> int:
    from datetime import date

    from dispatch.assembly import flex_service, policy_from_settings
    from graphs.build import load_service_area_source
    from graphs.snapping import ServiceArea
    from nachtbus.transit import flex

    if args.days < 1:
        print("nachtbus: error: --days: must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    settings = _settings(args)
    area = ServiceArea.from_geojson(
        load_service_area_source(settings.service_area_source(), settings.cache_dir)
    )
    svc = flex_service(settings, area, policy_from_settings(settings), date.today(), args.days)
    problems = flex.check(flex.files(svc))
    if problems:  # never publish a feed that breaks the rules
        print("nachtbus: error: the feed breaks GTFS-Flex rules:", *problems, sep="\n  ")
        return EXIT_ERROR
    written = flex.write_dir(svc, args.dir)
    if args.zip:
        path = args.dir / "nachtbus-flex.zip"
        path.write_bytes(flex.zip_bytes(svc))
        written.append(path)
    print(f"nachtbus: GTFS-Flex feed in {args.dir}: {', '.join(p.name for p in written)}")
    return 0


_COMMANDS = {
    ("serve", None): _cmd_serve,
    ("graph", "info"): _cmd_graph_info,
    ("graph", "build"): _cmd_graph_build,
    ("route", None): _cmd_route,
    ("bench", "solver"): _cmd_bench_solver,
    ("simulate", None): _cmd_simulate,
    ("export", "gtfs-flex"): _cmd_export_flex,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    sub = (
        getattr(args, "graph_command", None)
        or getattr(args, "bench_command", None)
        or getattr(args, "export_command", None)
    )
    handler = _COMMANDS[(args.command, sub)]
    try:
        return handler(args)
    except NachtbusError as exc:
        print(f"nachtbus: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValidationError as exc:  # a setting (NACHTBUS_* or an option): each field and rule
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"])
            option, attr = _OPTION_OF.get(name, ("", ""))
            if option and getattr(args, attr, None) is not None:  # given as an option
                msg = str(err["msg"]).removeprefix("Value error, ")
                print(f"nachtbus: error: {option}: {msg}", file=sys.stderr)
                continue
            env = f"NACHTBUS_{name.upper()}"
            print(f"nachtbus: error: setting {name} ({env}): {err['msg']}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:  # other validation
        print(f"nachtbus: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
