"""The night-by-night comparison of benchmarks.simulate against the defaults."""

from __future__ import annotations

import math

import pytest

from benchmarks.simulate import paired


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
