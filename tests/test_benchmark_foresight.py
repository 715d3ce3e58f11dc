"""benchmarks/foresight.py: its rows and its means and targets, on hand-computed nights."""

from __future__ import annotations

import pytest

from benchmarks.foresight import DEFAULTS, rows_for, summarise


def _night(wish: float, bound: float, bkm: float, broken: int = 0) -> dict[str, object]:
    return {
        "served_share": wish + 0.05,
        "served_at_wish_share": wish,
        "offered_share": 1.0,
        "ratio": None,
        "bus_km_per_direct_km": bkm,
        "promises_broken": broken,
        "bound_share": bound,
        "bound_bus_km_per_direct_km": 1.1,
    }


def test_rows_are_the_defaults_then_each_lead_with_the_windows_as_asked() -> None:
    rows = rows_for([0, 30])
    assert rows[0] == (DEFAULTS, {}) and len(rows) == 3
    assert rows[1][1] == {"told_ahead_min": 0, "prebook_window_as_asked": True}
    assert rows[2] == ("told 30 min ahead", {"told_ahead_min": 30, "prebook_window_as_asked": True})


def test_means_ratio_and_targets_of_hand_computed_nights() -> None:
    r = summarise([_night(0.80, 0.90, 1.30), _night(0.90, 0.90, 1.10, broken=1)])
    assert r["served_at_wish_share"] == pytest.approx(0.85)
    assert r["bound_share"] == pytest.approx(0.90)
    assert r["wish_over_bound"] == pytest.approx(0.85 / 0.90)
    assert r["bus_km_per_direct_km"] == pytest.approx(1.20)
    assert r["ratio"] is None and r["promises_broken"] == 1
    assert r["targets"] == {
        "at the wish >= 0.95 x bound": False,
        "bus km per direct km <= 1.15": False,
    }
    good = summarise([_night(0.88, 0.90, 1.12), _night(0.86, 0.90, 1.14)])
    assert good["wish_over_bound"] == pytest.approx(0.87 / 0.90)
    assert all(good["targets"].values()) and good["promises_broken"] == 0
