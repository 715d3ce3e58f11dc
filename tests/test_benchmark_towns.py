"""benchmarks.towns plays the night it is given in each town."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.towns import main, run_town
from tests.helpers import SHARED
from tests.test_simulations import SMALL as SIMULATIONS_SMALL

# the simulations' small night ([dispatching] is its last table), without counter-offers
SMALL = SIMULATIONS_SMALL + "max_alternatives = 0\n"


def test_a_missing_scenario_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"--scenario: .*nothing\.toml is not a file"):
        main(["--scenario", str(tmp_path / "nothing.toml")])


@pytest.mark.soest
@pytest.mark.skipif(
    SHARED is None or not (SHARED / "data" / "areas" / "olpe").is_dir(),
    reason="needs ../shared/data/areas/olpe",
)
def test_the_given_scenario_is_played_with_its_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small night without counter-offers in Olpe: its own number of riders (not the
    shipped Friday's 421), nobody served with an alternative, no promise broken."""
    assert SHARED is not None
    monkeypatch.setenv("NACHTBUS_CACHE_DIR", str(tmp_path / "cache"))
    night = tmp_path / "small.toml"
    night.write_text(SMALL, encoding="utf-8")
    r = run_town(SHARED / "data" / "areas" / "olpe", buses=2, seeds=1, scenario=night)
    assert 10 < r["requests"] < 60
    assert r["served_at_wish_share"] == pytest.approx(r["served_share"])  # no alternatives
    assert r["served_share"] > 0
    assert r["promises_broken"] == 0 and r["lost"] == 0
