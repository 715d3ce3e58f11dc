"""The night-by-night comparison of several nights (simulations.compare), which planners' --seeds
and benchmarks.simulate use."""

from __future__ import annotations

import math

import pytest

from simulations.compare import combinations, nights_summary, paired, paired_text, summary_lines


def _nights(key: str, values: list[float | None]) -> list[dict[str, float | None]]:
    return [{key: v} for v in values]


def test_paired_differences_with_their_standard_error_and_the_nights_each_way() -> None:
    rows = _nights("s", [0.80, 0.90, 0.70, 0.75])
    ref = _nights("s", [0.70, 0.90, 0.80, 0.70])
    c = paired(rows, ref, "s", higher_better=True)
    diffs = [0.10, 0.0, -0.10, 0.05]
    mean = sum(diffs) / 4
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
    assert c["mean"] == pytest.approx(mean)
    assert c["se"] == pytest.approx(sd / 2)
    assert (c["better"], c["worse"], c["nights"]) == (2, 1, 4)
    # lower is better (km): the same differences count the other way
    low = paired(rows, ref, "s", higher_better=False)
    assert (low["better"], low["worse"]) == (1, 2)
    assert low["mean"] == pytest.approx(mean)


def test_paired_skips_nights_without_the_value_and_needs_two_for_an_error() -> None:
    c = paired(_nights("k", [1.2, None]), _nights("k", [1.0, 1.1]), "k", higher_better=False)
    assert c["nights"] == 1
    assert c["mean"] == pytest.approx(0.2)
    assert c["se"] is None
    assert (c["better"], c["worse"]) == (0, 1)
    none = paired(_nights("k", [None]), _nights("k", [1.0]), "k", higher_better=True)
    assert none["mean"] is None and none["nights"] == 0


def test_paired_refuses_nights_that_do_not_match() -> None:
    with pytest.raises(ValueError, match="2 nights against 1"):
        paired(_nights("k", [1.0, 2.0]), _nights("k", [1.0]), "k", higher_better=True)


def _table(seed: int, served: float, km: float, sweep: dict[str, int] | None = None) -> dict:
    overall = {
        "served_share": served,
        "served_at_wish_share": served,
        "vehicle_km": km,
        "bus_km_per_direct_km": km / 100,
        "promises_broken": 0,
        "requests": 10 + seed,
    }
    run = {"wall_s": 2.0}
    return {
        "seed": seed,
        "overall": overall,
        "villages": {"ratio": 1.0},
        "run": run,
        "sweep": sweep or {},
    }


def test_nights_summary_gives_each_kpis_mean_lowest_and_highest() -> None:
    s = nights_summary([_table(1, 0.8, 100), _table(2, 0.6, 140), _table(3, 0.7, 120)])
    assert s["nights"] == 3 and s["seeds"] == [1, 2, 3]
    served = s["kpis"]["served_share"]
    assert served["mean"] == pytest.approx(0.7)
    assert (served["min"], served["max"]) == (0.6, 0.8)
    assert served["hindsight_mean"] is None  # no night was solved with hindsight
    assert s["kpis"]["ratio"]["mean"] == 1.0  # the villages' figures are read too
    assert "wait_p50_s" not in s["kpis"]  # no night has it: not shown
    lines = {label: rest for label, *rest in summary_lines(s)}
    assert lines["served share (of requests not cancelled)"] == ["70.0%", "60.0%", "80.0%", "-"]
    assert lines["requests"][0] == "12.0"  # a count's mean with one decimal
    with pytest.raises(ValueError, match="no nights"):
        nights_summary([])


def test_combinations_compare_each_with_the_first_on_the_same_nights() -> None:
    tables = [
        _table(1, 0.50, 100, {"buses": 2}),
        _table(2, 0.70, 120, {"buses": 2}),
        _table(2, 0.80, 130, {"buses": 3}),  # in any order of the nights
        _table(1, 0.70, 110, {"buses": 3}),
    ]
    first, second = combinations(tables)
    assert first["sweep"] == {"buses": 2} and first["paired"] is None
    assert second["seeds"] == [1, 2]
    assert second["mean"]["served_share"] == pytest.approx(0.75)
    assert (second["min"]["vehicle_km"], second["max"]["vehicle_km"]) == (110, 130)
    c = second["paired"]["served_share"]
    assert c["mean"] == pytest.approx(0.15) and (c["better"], c["worse"]) == (2, 0)
    km = second["paired"]["bus_km_per_direct_km"]  # more km per direct km is worse
    assert km["mean"] == pytest.approx(0.1) and (km["better"], km["worse"]) == (0, 2)
    assert paired_text("served_share", c).startswith("+15.00 +-5.00 pt 2/0")
    assert paired_text("bus_km_per_direct_km", km) == "+0.10 +-0.00 0/2"
