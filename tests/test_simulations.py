"""Planner simulations on the real Soest roads and data, through the production service."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from nachtbus.billing.co2 import Co2Params
from nachtbus.billing.fares import Tariff
from nachtbus.billing.ledger import receipt
from nachtbus.cli import main
from nachtbus.domain import Traveller
from nachtbus.settings import EXAMPLE_TARIFF
from routing.world import RoadWorld
from simulations import report
from simulations.demand import (
    SoestInputs,
    Trip,
    generate,
    read_trips_csv,
    told_ahead,
    write_trips_csv,
)
from simulations.engine import DEPOT, SimResult
from simulations.run import Inputs, run_one, trips_for
from simulations.scenario import SHIPPED, Noise, Scenario, ScenarioError
from tests.helpers import MARKT, OSTOENNEN, SHARED, STATION

SMALL = """
name = "small"
start = "22:00"
end = "23:30"
[fleet]
buses = 2
seats = 6
[demand]
requests = 30
prebooked_share = 0.3
cancel_share = 0.1
no_show_share = 0.1
[dispatching]
reopt_interval_s = 900
"""


@pytest.fixture(scope="module")
def inputs(soest_world: RoadWorld, soest_districts) -> Inputs:
    assert SHARED is not None
    return Inputs(
        world=soest_world,
        districts=soest_districts,
        soest=SoestInputs.load(SHARED / "data" / "soest"),
        tariff=Tariff.load(EXAMPLE_TARIFF),
        co2=Co2Params(),
    )


def scenario(tmp_path: Path, text: str = SMALL) -> Scenario:
    f = tmp_path / "s.toml"
    f.write_text(text, encoding="utf-8")
    return Scenario.load(f)


def test_demand_is_seeded_inside_the_area_and_replays_from_csv(
    inputs: Inputs, tmp_path: Path
) -> None:
    sc = scenario(tmp_path).with_values({"requests": 200})
    a, b = generate(sc, inputs.soest, 7), generate(sc, inputs.soest, 7)
    assert a == b and a != generate(sc, inputs.soest, 8)
    assert 150 < len(a) < 250  # Poisson around 200
    assert all(sc.start_s <= t.ask_s < sc.end_s for t in a)
    inside = sum(inputs.world.area.contains(*t.origin) for t in a) / len(a)
    assert inside > 0.97  # homes spread around their cell may cross the boundary
    purposes = {t.purpose for t in a}
    assert purposes == {"going_out", "coming_home", "from_train", "shift_work"}
    write_trips_csv(a, tmp_path / "trips.csv")
    assert read_trips_csv(tmp_path / "trips.csv") == [
        Trip(**{**t.__dict__, "purpose": "replay"}) for t in a
    ]


def test_same_seed_same_kpis_and_nobody_is_lost(inputs: Inputs, tmp_path: Path) -> None:
    sc = scenario(tmp_path)
    r1, k1 = run_one(sc, inputs, 3)
    _, k2 = run_one(sc, inputs, 3)
    k1.pop("run"), k2.pop("run")
    assert k1 == k2
    o = k1["overall"]
    assert o["requests"] == len(r1.outcomes) > 10
    # conservation: every request ends served, rejected, cancelled or as a no-show
    assert o["lost"] == 0
    assert o["served"] + o["rejected"] + o["cancelled"] + o["no_show"] == o["requests"]
    assert o["served"] > 0 and sum(o["rejections"].values()) == o["rejected"]
    assert o["served_at_wish"] + o["served_alternative"] == o["served"]
    assert o["declined_alternative"] == o["rejections"].get("declined_alternative", 0)
    offered = sum(r.offered for r in r1.outcomes)
    assert offered == o["requests"] - o["rejected"] + o["declined_alternative"]
    assert sum(b["requests"] for b in k1["districts"].values()) == o["requests"]
    state = r1.service.snapshot()
    assert not any(b.status.open for b in state.bookings.values())


def test_riders_told_ahead_are_the_same_trips_known_earlier(inputs: Inputs, tmp_path: Path) -> None:
    """told_ahead_min: a leave-now rider asks that much earlier for the time they wished
    (never before the night starts); pre-booked riders are unchanged. Played with the
    windows as asked, every served rider is picked up inside the window they would have had
    asking then, never before the wished time."""
    sc = scenario(tmp_path)
    trips = generate(sc, inputs.soest, 3)
    told = told_ahead(trips, 20, sc.start_s)
    assert told == sorted(told, key=lambda t: (t.ask_s, t.trip_id))
    before = {t.trip_id: t for t in trips}
    assert set(before) == {t.trip_id for t in told}
    for t in told:
        was = before[t.trip_id]
        if was.pickup_s is not None:
            assert t == was
        else:
            assert t.pickup_s == was.ask_s
            assert t.ask_s == max(sc.start_s, was.ask_s - 1200)
    assert sum(t.pickup_s is not None for t in told) > sum(t.pickup_s is not None for t in trips)
    # a replayed trip list is told ahead the same way
    write_trips_csv(trips, tmp_path / "trips.csv")
    replay = sc.model_copy(
        update={
            "demand": sc.demand.model_copy(
                update={"trips_csv": tmp_path / "trips.csv", "told_ahead_min": 20}
            )
        }
    )
    assert trips_for(replay, inputs, 3) == told_ahead(
        read_trips_csv(tmp_path / "trips.csv"), 20, sc.start_s
    )
    ahead = sc.with_values({"told_ahead_min": 20, "prebook_window_as_asked": True})
    result, k = run_one(ahead, inputs, 3)
    assert [o.trip for o in result.outcomes] == told  # trips_for applied the same shift
    assert k["overall"]["promises_broken"] == 0 and k["overall"]["served"] > 0
    policy = result.service.dispatcher.policy
    assert policy.prebook_window_as_asked
    for o in result.outcomes:
        if o.booking_id and o.bus_at_pickup_s is not None and o.shift_s == 0:
            wished = before[o.trip.trip_id]
            if wished.pickup_s is None:
                assert wished.ask_s <= o.bus_at_pickup_s
                assert o.bus_at_pickup_s <= wished.ask_s + policy.far_max_wait_s


def test_buses_keep_capacity_and_never_teleport(inputs: Inputs, tmp_path: Path) -> None:
    sc = scenario(tmp_path).with_values({"requests": 60, "buses": 2, "rebalance": True})
    result, _ = run_one(sc, inputs, 5)
    cap = sc.fleet.seats + sc.fleet.wheelchair_places
    legs = result.service.legs()
    assert legs
    for leg in legs:
        assert sum(leg.onboard.values()) <= cap
        assert not (leg.reposition and leg.onboard)  # repositioning is empty running
    # with rebalancing, idle buses drove towards expected demand, and no rider
    # was picked up outside the promised window for it
    assert any(leg.reposition for leg in legs)
    for b in result.service.snapshot().bookings.values():
        if b.picked_up_s is not None:
            assert b.pickup_window[0] <= b.picked_up_s <= b.pickup_window[1], b
    times = inputs.world.times
    for vid, points in result.timelines.items():
        assert all(p.onboard <= cap for p in points), vid
        for p, q in itertools.pairwise(points):
            assert q.t >= p.t, (vid, p, q)
            if p.node != q.node:  # moving from node to node takes at least the road time
                travel = int(times.times_s([p.node, q.node])[0, 1])
                assert q.t - p.t >= travel, (vid, p, q, travel)


def test_a_hand_made_night_gives_the_hand_computed_kpis(inputs: Inputs, tmp_path: Path) -> None:
    """One bus at the depot, two riders one after the other (no pooling possible):
    22:00 Markt -> Ostönnen, 23:30 Station -> Markt; no rebalancing (the bus waits where it
    is)."""
    csv_path = tmp_path / "trips.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("trip_id", "ask", "origin_lat", "origin_lon", "dest_lat", "dest_lon"))
        w.writerow(("a", "22:00", *MARKT, *OSTOENNEN))
        w.writerow(("b", "23:30", *STATION, *MARKT))
    text = SMALL.replace("buses = 2", "buses = 1").replace('end = "23:30"', 'end = "23:59"')
    text = text.replace(
        "[dispatching]", f'trips_csv = "{csv_path.name}"\n[dispatching]\nrebalance = false'
    )
    sc = scenario(tmp_path, text)
    _, k = run_one(sc, inputs, 1)
    o = k["overall"]
    world = inputs.world
    place = {n: world.place(*p, n) for n, p in {"m": MARKT, "o": OSTOENNEN, "s": STATION}.items()}
    depot = world.place(*DEPOT, "depot", in_area=False).node
    m, o_, s = place["m"].node, place["o"].node, place["s"].node
    t, dist = world.times.times_s, world.times.distance_m
    dwell = 30  # policy dwell per stop
    # a: the bus leaves the depot at 22:00, picks up at 22:00 + travel, drives to Ostönnen
    wait_a = int(t([depot, m])[0, 1])
    # b: asked 23:30; the bus waits at Ostönnen after a's drop-off, leaves at 23:30
    wait_b = int(t([o_, s])[0, 1])
    assert (o["served"], o["rejected"], o["lost"]) == (2, 0, 0)
    assert o["wait_p50_s"] == pytest.approx((wait_a + wait_b) / 2)
    ride_a = int(t([m, o_])[0, 1]) + dwell
    ride_b = int(t([s, m])[0, 1]) + dwell
    assert o["ride_p50_s"] == pytest.approx((ride_a + ride_b) / 2)
    km = (dist(depot, m) + dist(m, o_) + dist(o_, s) + dist(s, m) + dist(m, depot)) / 1000
    assert o["vehicle_km"] == pytest.approx(km, abs=1e-6)
    assert o["empty_km"] == pytest.approx(
        (dist(depot, m) + dist(o_, s) + dist(m, depot)) / 1000, abs=1e-6
    )
    assert o["pooled_share"] == 0.0
    assert o["occupancy"] == pytest.approx((dist(m, o_) + dist(s, m)) / 1000 / km)
    tariff = inputs.tariff
    fares = (
        tariff.price(dist(m, o_), 22 * 3600, 1, [Traveller()]).total_cents
        + tariff.price(dist(s, m), 23 * 3600 + 1800, 1, [Traveller()]).total_cents
    )
    assert o["fares_cents"] == fares
    assert k["districts"]["Soest (Kernstadt)"]["requests"] == 2
    # by the hour of asking: a at 22:00, b at 23:30
    assert {h: (b["requests"], b["served_at_wish"]) for h, b in k["hours"].items()} == {
        "22:00": (1, 1),
        "23:00": (1, 1),
    }


def test_why_a_wish_was_not_kept_is_counted_and_reported(inputs: Inputs, tmp_path: Path) -> None:
    """One bus of four seats: a group of four asks at 22:00, a pair half a minute later for
    the same trip. The bus cannot take the pair in its wished window (full, or back too
    late): the pair's wish is not kept, for the fleet's reason, whether a counter-offer then
    serves it or not; the group's wish is kept. The count is in the night's, the hour's and
    the district's KPIs, in kpis.csv, trips.csv and the report."""
    csv_path = tmp_path / "trips.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ("trip_id", "ask", "origin_lat", "origin_lon", "dest_lat", "dest_lon", "passengers")
        )
        w.writerow(("group", "22:00", *MARKT, *OSTOENNEN, 4))
        w.writerow(("pair", "22:00:30", *MARKT, *OSTOENNEN, 2))
    text = SMALL.replace("buses = 2", "buses = 1").replace("seats = 6", "seats = 4")
    text = text.replace("[dispatching]", f'trips_csv = "{csv_path.name}"\n[dispatching]')
    result, k = run_one(scenario(tmp_path, text), inputs, 1)
    why = {o.trip.trip_id: o.wish_reason for o in result.outcomes}
    assert why["group"] is None
    assert why["pair"] in ("fleet_full", "no_vehicle_in_time"), why
    assert k["overall"]["wish_not_kept"] == {why["pair"]: 1}
    assert k["hours"]["22:00"]["wish_not_kept"] == {why["pair"]: 1}
    assert k["districts"]["Soest (Kernstadt)"]["wish_not_kept"] == {why["pair"]: 1}
    out = report.write(result, k, inputs.world, inputs.districts.name_at, tmp_path / "r")
    page = out.read_text(encoding="utf-8")
    assert f"<li>{why['pair']}: 1</li>" in page.split('id="wish-not-kept"')[1]
    rows = list(csv.reader((tmp_path / "r" / "kpis.csv").open(encoding="utf-8")))
    assert ["overall", f"wish_not_kept:{why['pair']}", "1"] in rows
    trips = {r["trip_id"]: r for r in csv.DictReader((tmp_path / "r" / "trips.csv").open())}
    assert (trips["group"]["wish_reason"], trips["pair"]["wish_reason"]) == ("", why["pair"])


def test_a_bad_scenario_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, SMALL.replace("buses = 2", "buses = 0"))
    assert err.value.field == "fleet.buses"
    # the field once, then the rule, then the file
    assert str(err.value).startswith("fleet.buses: Input should be greater than or equal to 1")
    assert str(err.value).count("fleet.buses") == 1 and str(err.value).endswith("s.toml)")
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, SMALL + "\n[sweep]\ncolour = [1, 2]\n")
    assert err.value.field == "sweep"
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, SMALL.replace('start = "22:00"', 'start = "22:61"'))
    assert "start" in str(err.value)


@pytest.mark.parametrize(
    ("demand", "field", "rule"),
    [
        ("group_sizes = []", "demand.group_sizes", "needs at least one share"),
        ("group_sizes = [0, 0]", "demand.group_sizes", "must not all be 0"),
        ("group_sizes = [1, -1]", "demand.group_sizes", "must be >= 0"),
        ("profile = []", "demand.profile", "needs at least one share"),
        ("profile = [0, 0, 5]", "demand.profile", "the first 2 hourly shares"),
        ("prebook_lead_min = [90, 20]", "demand.prebook_lead_min", "0 <= low <= high"),
        ("prebook_lead_min = [-5, 20]", "demand.prebook_lead_min", "0 <= low <= high"),
        (
            "[demand.purposes]\ngoing_out = 0\ncoming_home = 0\nfrom_train = 0\nshift_work = 0",
            "demand.purposes",
            "must not all be 0",
        ),
    ],
)
def test_shares_that_cannot_be_drawn_from_name_their_field(
    tmp_path: Path, demand: str, field: str, rule: str
) -> None:
    """Shares the demand is drawn from (empty, negative, all 0, or all 0 within the night's
    hours) and a lead time range upside down are refused naming the field; they were taken
    and failed deep in numpy ("Probabilities contain NaN", "low >= high", a
    ZeroDivisionError), or an empty profile fell back to the default unsaid."""
    text = (
        SMALL.replace("requests = 30\n", f"requests = 30\n{demand}\n")
        if "[" not in demand[:1]
        else SMALL + demand + "\n"
    )
    with pytest.raises(ScenarioError) as err:
        scenario(tmp_path, text)
    assert err.value.field == field, str(err.value)
    assert rule in str(err.value) and str(err.value).startswith(f"{field}: ")


def test_simulate_command_writes_report_and_sweep(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    soest_world: RoadWorld,
    soest_cache_dir: Path,
) -> None:
    if SHARED is None:
        pytest.skip("needs ../shared")
    f = tmp_path / "tiny.toml"
    f.write_text(
        SMALL.replace("requests = 30", "requests = 12") + "\n[sweep]\nbuses = [1, 2]\n",
        encoding="utf-8",
    )
    cache = ["--cache-dir", str(soest_cache_dir)]  # the network the session built already
    assert (
        main(
            [
                "simulate",
                str(f),
                "--report",
                str(tmp_path / "r"),
                "--no-progress",
                "--json",
                "--hindsight",
                "--hindsight-steps",
                "200",
                *cache,
            ]
        )
        == 0
    )
    table = json.loads(capsys.readouterr().out.splitlines()[-1])
    page = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert 'id="kpis"' in page and page.count("data:image/png;base64,") == 6
    assert table["run"]["area"] == "Soest" and "<p>Soest, seed 1," in page
    assert "hindsight bound" in page and "villages (Ortsteile) served share" in page
    bound = table["hindsight"]
    # the bound serves at the wish at least what the online run served at the wish, and its
    # per-district and per-hour counts add up
    assert bound["served"] >= table["overall"]["served_at_wish"]
    # the same night's requests on both sides; the bound plans those the rules allow
    assert bound["requests"] == table["overall"]["requests"]
    assert bound["served"] <= bound["planned"] <= table["overall"]["allowed"]
    assert "planned by the bound" in page
    assert sum(d["served"] for d in bound["districts"].values()) == bound["served"]
    assert sum(h["served"] for h in bound["hours"].values()) == bound["served"]
    # the night by the hour of asking: every request in one hour, in the order of the night
    hours = table["hours"]
    for key in ("requests", "served", "served_at_wish", "rejected", "cancelled"):
        assert sum(h[key] for h in hours.values()) == table["overall"][key], key
    assert list(hours) == sorted(hours, key=lambda h: (int(h[:2]) - 12) % 24)
    assert set(bound["hours"]) <= set(hours)
    assert page.count("<tr><td>") >= len(hours) and 'id="hours"' in page
    assert json.loads((tmp_path / "r" / "kpis.json").read_text())["overall"] == table["overall"]
    timeline = table["vehicles"]["bus-1"]["timeline"]
    assert timeline[0][3] == "depot" and all(a[0] <= b[0] for a, b in itertools.pairwise(timeline))
    rows = list(csv.DictReader((tmp_path / "r" / "trips.csv").open(encoding="utf-8")))
    assert len(rows) == table["overall"]["requests"]
    assert (
        main(
            [
                "simulate",
                str(f),
                "--sweep",
                "--report",
                str(tmp_path / "sw"),
                "--no-progress",
                *cache,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "{'buses': 1}" in out and "{'buses': 2}" in out
    assert (tmp_path / "sw" / "tradeoffs.png").stat().st_size > 1000
    sweep = list(csv.DictReader((tmp_path / "sw" / "sweep.csv").open(encoding="utf-8")))
    assert [r["buses"] for r in sweep] == ["1", "2"]


def test_several_nights_are_summed_up_and_a_sweep_compares_on_the_same_nights(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    inputs: Inputs,
    soest_cache_dir: Path,
) -> None:
    """``--seeds 2`` plays the scenario's night and the next (each as one night of that seed
    plays alone) and sums them up: each KPI's mean, lowest and highest, the bound's mean;
    ``--sweep --seeds 2`` plays every combination on the same two nights and compares each
    with the first night by night. A number of nights out of range, and a sweep with
    hindsight, are refused naming the option."""
    f = tmp_path / "tiny.toml"
    f.write_text(
        SMALL.replace("requests = 30", "requests = 12") + "\n[sweep]\nbuses = [1, 2]\n",
        encoding="utf-8",
    )
    cache = ["--cache-dir", str(soest_cache_dir)]
    argv = ["simulate", str(f), "--seeds", "2", "--no-progress", *cache]
    bound = ["--hindsight", "--hindsight-steps", "100"]
    assert main([*argv, *bound, "--report", str(tmp_path / "n")]) == 0
    text = capsys.readouterr().out
    assert "seeds 1 to 2 (2 nights)" in text and "lowest" in text and "bound mean" in text
    out = json.loads((tmp_path / "n" / "nights.json").read_text(encoding="utf-8"))
    nights, summary = out["nights"], out["summary"]
    assert [t["seed"] for t in nights] == summary["seeds"] == [1, 2]
    alone = run_one(scenario(tmp_path, f.read_text(encoding="utf-8")), inputs, 2)[1]
    assert nights[1]["overall"] == alone["overall"]  # the second night is seed 2's night
    served = [t["overall"]["served_share"] for t in nights]
    k = summary["kpis"]["served_share"]
    assert k["mean"] == pytest.approx(sum(served) / 2)
    assert (k["min"], k["max"]) == (min(served), max(served))
    assert k["hindsight_mean"] == pytest.approx(
        sum(t["hindsight"]["served_share"] for t in nights) / 2
    )
    assert summary["promises_broken"] == 0
    rows = list(csv.DictReader((tmp_path / "n" / "nights.csv").open(encoding="utf-8")))
    assert [r["seed"] for r in rows] == ["1", "2"]
    assert "bound (mean)" in (tmp_path / "n" / "index.html").read_text(encoding="utf-8")

    assert main([*argv, "--sweep", "--report", str(tmp_path / "sw")]) == 0
    text = capsys.readouterr().out
    assert "(mean of 2 nights); against the first: served_share" in text
    sweep = list(csv.DictReader((tmp_path / "sw" / "sweep.csv").open(encoding="utf-8")))
    assert [(r["buses"], r["seed"]) for r in sweep] == [
        ("1", "1"),
        ("1", "2"),
        ("2", "1"),
        ("2", "2"),
    ]
    one = [float(r["served_share"]) for r in sweep[:2]]
    two = [float(r["served_share"]) for r in sweep[2:]]
    diff = (two[0] - one[0] + two[1] - one[1]) / 2
    assert f"served_share {diff * 100:+.2f}" in text
    assert "against the first" in (tmp_path / "sw" / "index.html").read_text(encoding="utf-8")

    for bad, option in (
        (["--seeds", "0"], "--seeds"),
        (["--seeds", "101"], "--seeds"),
        (["--sweep", "--hindsight"], "--hindsight"),
    ):
        assert main(["simulate", str(f), "--no-progress", *cache, *bad]) == 2
        assert f"nachtbus: error: {option}: " in capsys.readouterr().err


TRAINS = (
    SMALL
    + """
[trains]
feed = "example"
riders_per_arrival = 2.0
riders_per_departure = 1.0
delay_share = 0.6
delay_max_min = 12
"""
)


def test_train_riders_meet_their_trains_late_or_not(inputs: Inputs, tmp_path: Path) -> None:
    """With the example timetable, riders off the trains are picked up only after their
    train's actual arrival (late trains told ahead), riders to the trains arrive by the
    departure; no booked connection is missed, no promise broken; the KPIs count both
    directions. Without the link (the baseline), riders off a train wait longer."""
    sc = scenario(tmp_path, TRAINS)
    result, table = run_one(sc, inputs, 2)
    trains = table["trains"]
    mine = [o for o in result.outcomes if o.trip.train]
    assert {o.trip.train_kind for o in mine} == {"from_train", "to_train"}
    assert any(o.trip.train_delay_s for o in mine)  # some trains are late
    assert not [o for o in result.outcomes if o.trip.purpose == "from_train" and not o.trip.train]
    state = result.service.snapshot()
    for o in mine:
        if o.booking_id is None:
            continue
        b = state.bookings[o.booking_id]
        actual = o.trip.train_at_s + o.trip.train_delay_s
        assert b.request.connection is not None
        if o.trip.train_kind == "from_train":  # told before the train came in
            assert b.request.connection.delay_s == o.trip.train_delay_s
        else:  # told unless the rider was there before the delay was known
            assert b.request.connection.delay_s in (0, o.trip.train_delay_s)
        if o.trip.train_kind == "from_train" and b.picked_up_s is not None:
            assert b.picked_up_s >= actual + 180  # the train in, the walk done
        if o.trip.train_kind == "to_train" and b.dropped_off_s is not None:
            assert b.dropped_off_s <= actual - 300  # the buffer before the departure
    a, d = trains["from_train"], trains["to_train"]
    assert a["requests"] + d["requests"] == len(mine)
    assert a["served"] > 0 and d["served"] > 0
    assert a["missed"] == d["missed"] == 0
    assert d["buffer_kept"] == d["served"]
    assert table["overall"]["promises_broken"] == 0
    assert table["overall"]["train_requests"] == len(mine)
    base = scenario(
        tmp_path, TRAINS.replace('feed = "example"', 'feed = "example"\nconnect = false')
    )
    _, plain = run_one(base, inputs, 2)
    assert plain["trains"]["from_train"]["requests"] == a["requests"]
    assert plain["trains"]["from_train"]["wait_after_arrival_p50_s"] > a["wait_after_arrival_p50_s"]


NOISY = (
    SMALL.replace("requests = 30", "requests = 45")
    + """
[noise]
enabled = true
"""
)


def test_a_noisy_night_keeps_its_pickups_in_the_window(inputs: Inputs, tmp_path: Path) -> None:
    """The shipped weekday night with seeded road noise and slow riders (the documented
    defaults): drives differ from the model, buses report positions while driving, and with
    the plan's buffer at least 98 % of pickups begin inside their promised windows; without
    the buffer and with heavy noise, fewer do and riders are told."""
    shipped = SHIPPED / "weekday.toml"
    sc = Scenario.load(shipped).model_copy(update={"noise": Noise(enabled=True)})
    result, table = run_one(sc, inputs, 1)
    o = table["overall"]
    assert o["pickups"] > 80
    assert o["punctual_share"] >= 0.98, o
    reports = result.service.store.recent_events(100_000, ("vehicle.position",))
    departs = sum(1 for pts in result.timelines.values() for p in pts if p.what == "depart")
    assert len(reports) > departs  # reports while driving, not only at departures
    # the drives are not the model's: some leg took longer or shorter than the table says
    times = inputs.world.times
    off = 0
    for pts in result.timelines.values():
        for a, b in itertools.pairwise(pts):
            if a.what == "depart" and b.what == "arrive" and a.node != b.node:
                off += abs((b.t - a.t) - int(times.times_s([a.node, b.node])[0, 1])) > 5
    assert off > 0
    rough = sc.model_copy(
        update={"noise": sc.noise.model_copy(update={"drive_sigma": 0.5, "drive_bias": 1.4})}
    ).with_values({"plan_buffer_s": 0})
    _, worse = run_one(rough, inputs, 1)
    w = worse["overall"]
    assert w["punctual_share"] < o["punctual_share"]
    assert w["late_notices"] > 0 and w["notice_lead_p50_s"] is not None


def test_drivers_late_setting_off_are_noticed_by_the_rounds(inputs: Inputs, tmp_path: Path) -> None:
    """Every second departure made late (mean 6 min, tablet silent): with the rounds
    re-timing a bus that has not left, its riders see it (vehicle.retimed) and those it can
    no longer reach in time are moved to a bus that can, or told "the bus has not left yet"
    before the bus comes; without, nothing is re-timed and no notice names that reason.
    Nobody is lost either way, and the late starts are the same (drawn per stop)."""
    text = NOISY + "late_start_share = 0.5\nlate_start_mean_s = 360\n"
    on_result, on = run_one(scenario(tmp_path, text), inputs, 2)
    off_sc = scenario(tmp_path, text).with_values({"retime_not_left": False})
    off_result, off = run_one(off_sc, inputs, 2)
    a, b = on["overall"], off["overall"]
    assert a["late_starts"] > 5 and b["late_starts"] > 5
    assert a["buses_retimed"] > 0 and b["buses_retimed"] == 0
    assert a["lost"] == 0 and b["lost"] == 0

    def not_left(result: SimResult) -> list[dict[str, Any]]:
        notices = result.service.store.recent_events(100_000, ("booking.late_notice",))
        moves = result.service.store.recent_events(100_000, ("booking.moved",))
        return [e.data for _, e in notices if e.data["reason"] == "the bus has not left yet"] + [
            e.data for _, e in moves if "(the bus has not left yet)" in e.data.get("reason", "")
        ]

    assert not_left(on_result) and not not_left(off_result)


def test_a_breakdown_replans_or_cancels_and_refunds(inputs: Inputs, tmp_path: Path) -> None:
    """bus-1 breaks down mid-night: every rider it had not picked up is re-planned on bus-2
    or cancelled and refunded (ledger = receipts), its riders on board still get home, and
    nobody is lost."""
    text = (
        NOISY
        + """
[[faults.breakdowns]]
bus = "bus-1"
at = "22:40"
"""
    )
    result, table = run_one(scenario(tmp_path, text), inputs, 4)
    o = table["overall"]
    (alert,) = [
        e.data for _, e in result.service.store.recent_events(1000, ("vehicle.out_of_service",))
    ]
    assert alert["vehicle_id"] == "bus-1"
    assert o["breakdowns"] == 1
    assert o["breakdown_replanned"] + o["breakdown_cancelled"] == len(alert["replanned"]) + len(
        alert["cancelled"]
    )
    state = result.service.snapshot()
    for bid in alert["replanned"]:
        assert state.bookings[bid].vehicle_id == "bus-2"
    for bid in alert["cancelled"]:
        assert state.bookings[bid].status.value == "CANCELLED"
    for bid in alert["on_board"]:
        assert state.bookings[bid].status.value == "FINISHED"
    ledger = result.service.ledger()
    receipts = sum(receipt(b, ledger).paid_cents for b in state.bookings.values())
    assert ledger.totals().balance_cents == receipts
    assert o["lost"] == 0
    later = [
        o.booking_id for o in result.outcomes if o.booking_id and o.trip.ask_s > 22 * 3600 + 40 * 60
    ]
    assert all(state.bookings[b].vehicle_id != "bus-1" for b in later)


@pytest.mark.skipif(
    SHARED is None or not (SHARED / "data" / "areas" / "olpe").is_dir(),
    reason="needs ../shared/data/areas/olpe",
)
def test_a_night_in_another_town_from_its_folder(tmp_path: Path) -> None:
    """Olpe from shared/data/areas/olpe alone (NACHTBUS_AREA_DIR): its roads, its estimated
    districts, riders drawn from its homes, the buses at its main station; nobody is lost."""
    from graphs.areas import main_station
    from nachtbus.settings import Settings
    from simulations.run import load_inputs

    assert SHARED is not None
    folder = SHARED / "data" / "areas" / "olpe"
    olpe = load_inputs(Settings(area_dir=folder, cache_dir=tmp_path / "cache"))
    assert "Olpe (Kernstadt)" in olpe.districts.names
    result, table = run_one(scenario(tmp_path), olpe, 4)
    o = table["overall"]
    assert o["requests"] > 10 and o["served"] > 0 and o["lost"] == 0
    assert o["served"] + o["rejected"] + o["cancelled"] + o["no_show"] == o["requests"]
    assert set(table["districts"]) <= set(olpe.districts.names) | {"(outside)", "(none)"}
    assert "Olpe (Kernstadt)" in table["districts"]
    station = main_station(folder)
    assert station is not None and olpe.depot == station
    depot = olpe.world.place(*station, "depot", in_area=False).node
    assert all(points[0].node == depot for points in result.timelines.values())
    for b in result.service.snapshot().bookings.values():
        assert olpe.world.area.contains(b.request.origin.lat, b.request.origin.lon)


def test_a_run_names_its_town() -> None:
    """The heading of a night names the town it was played in (the scenario's name may be
    another town's, as when Soest's Friday is played in Bad Berleburg)."""
    from nachtbus.settings import Settings

    assert Settings(shared_dir=None).area_label() == "Soest"
    if SHARED is None:
        pytest.skip("needs ../shared")
    town = Settings(area_dir=SHARED / "data" / "areas" / "bad_berleburg")
    assert town.area_label() == "Bad Berleburg"
