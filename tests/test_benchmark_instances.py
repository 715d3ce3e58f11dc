"""The benchmark loaders and checker reproduce the published best-known solutions."""

from __future__ import annotations

import csv

import pytest

from tests.helpers import SHARED

pytestmark = pytest.mark.skipif(SHARED is None, reason="../shared is not beside the checkout")


def test_every_lilim_bks_route_file_is_feasible_at_its_published_cost() -> None:
    """All 56 SINTEF best-known route files pass our checker (integer and double precision)
    with the published vehicle count and distance: loaders, scaling and checker agree with
    the literature."""
    from benchmarks.instances import (
        benchmarks_dir,
        check_double,
        cost_double,
        load_set,
        read_sintef_routes,
        vehicles_used,
    )
    from routing.checker import violations

    base = benchmarks_dir() / "pdptw-lilim-100"
    with (base / "bks.csv").open() as f:
        files = {r["instance"]: r["solution_file"] for r in csv.DictReader(f)}
    instances = load_set("lilim")
    assert len(instances) == 56
    for inst in instances:
        sol = read_sintef_routes(inst, base / files[inst.name])
        assert violations(inst.problem, sol) == [], inst.name
        assert check_double(inst, sol) == [], inst.name
        assert vehicles_used(sol) == inst.bks_vehicles
        assert inst.bks_cost is not None
        assert abs(cost_double(inst, sol) - inst.bks_cost) < 0.01, inst.name


def test_cordeau_instances_load_with_their_rules() -> None:
    from benchmarks.instances import SCALE, load_set

    darp = load_set("darp")
    assert len(darp) == 24
    a2 = darp[0]
    assert a2.name == "a2-16" and a2.bks_cost == pytest.approx(294.25)
    assert len(a2.problem.requests) == 16 and len(a2.problem.vehicles) == 2
    assert a2.problem.vehicles[0].max_duration_s == 480 * SCALE
    assert all(r.max_ride_s == 30 * SCALE for r in a2.problem.requests)


def test_small_cordeau_instance_is_solved_feasibly() -> None:
    """Our solver on a2-16 in 3 s: every request served, checked in double precision,
    within 2 % of the optimum."""
    from benchmarks.solver import run_one

    row = run_one("darp", "a2-16", "ours", 3.0)
    assert row.feasible and row.served == 16
    assert row.gap_pct is not None and row.gap_pct < 2.0
