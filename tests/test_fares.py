"""The fare engine: every tariff rule, the rounding edges, and malformed tariff files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nachtbus.billing.fares import Pricer, Tariff, TariffError
from nachtbus.domain import Traveller
from nachtbus.settings import EXAMPLE_TARIFF
from tests.helpers import AMPEN, MARKT, OSTOENNEN, STATION

ELEVEN_PM = 23 * 3600
NINE_PM = 21 * 3600

BASE = """
name = "test"
vat_percent = 7
base = "distance"
comfort_surcharge_cents = 0
free_under_age = 6
reduced_under_age = 15
reduced_percent = 50
refund_cutoff_min = 30

[[distance_bands]]
up_to_km = 3.0
cents = 250

[[distance_bands]]
up_to_km = 10.0
cents = 345

[night_surcharge]
cents = 0

[group]
from_size = 3
discount_percent = 0
"""


def tariff(**changes: object) -> Tariff:
    t = Tariff.parse(BASE)
    return t.model_copy(update=changes)


def totals(t: Tariff, km: float, people: list[Traveller], at: int = ELEVEN_PM) -> int:
    return t.price(int(km * 1000), at, len(people), people).total_cents


def test_the_shipped_example_tariff_loads_and_prices_a_trip() -> None:
    t = Tariff.load(EXAMPLE_TARIFF)
    fare = t.price(4200, ELEVEN_PM, 1)
    # band up to 8 km (340) + night surcharge (100) + door-to-door (50), 7 % VAT contained
    assert fare.total_cents == 490
    assert fare.vat_cents == round(490 * 7 / 107)
    assert fare.net_cents == fare.total_cents - fare.vat_cents


def test_distance_bands_pick_the_first_band_that_covers_the_trip() -> None:
    t = tariff(rounding="down", rounding_cents=1)
    assert totals(t, 0.5, [Traveller()]) == 250
    assert totals(t, 3.0, [Traveller()]) == 250  # the upper end belongs to the band
    assert totals(t, 3.001, [Traveller()]) == 345
    assert totals(t, 25.0, [Traveller()]) == 345  # beyond the last band: the last band's fare


def test_rounding_to_ten_cents_half_up_up_and_down() -> None:
    # 345 ct: exactly half way between 340 and 350
    assert totals(tariff(), 5, [Traveller()]) == 350
    assert totals(tariff(rounding="down"), 5, [Traveller()]) == 340
    assert totals(tariff(rounding="up"), 5, [Traveller()]) == 350
    # 250 needs no rounding and gets no rounding line
    fare = tariff().price(1000, ELEVEN_PM, 1)
    assert [x.kind for x in fare.lines] == ["base"]
    # 344 -> 340, 346 -> 350 (nearest)
    for cents, rounded in ((344, 340), (346, 350)):
        t = Tariff.parse(BASE.replace("cents = 250", f"cents = {cents}"))
        assert totals(t, 1, [Traveller()]) == rounded


def test_each_travellers_sum_is_rounded_so_the_lines_add_up() -> None:
    fare = tariff().price(5000, ELEVEN_PM, 3)
    assert fare.total_cents == 3 * 350
    assert sum(x.cents for x in fare.lines) == fare.total_cents
    assert [x.cents for x in fare.lines if x.kind == "rounding"] == [5, 5, 5]


def test_children_under_the_age_ride_free_and_older_children_pay_reduced() -> None:
    t = tariff(night_surcharge=tariff().night_surcharge.model_copy(update={"cents": 100}))
    child_free = t.price(1000, ELEVEN_PM, 1, [Traveller(age=5)])
    assert child_free.total_cents == 0
    assert [x.kind for x in child_free.lines] == ["free"]
    six = t.price(1000, ELEVEN_PM, 1, [Traveller(age=6)])  # 125 reduced + 100 night -> 230
    assert six.total_cents == 230
    fifteen = t.price(1000, ELEVEN_PM, 1, [Traveller(age=15)])  # adult from 15
    assert fifteen.total_cents == 350


def test_reduced_fare_entitlement_halves_the_base_not_the_surcharges() -> None:
    t = tariff(
        comfort_surcharge_cents=50,
        night_surcharge=tariff().night_surcharge.model_copy(update={"cents": 100}),
    )
    fare = t.price(1000, ELEVEN_PM, 1, [Traveller(reduced=True)])
    assert fare.total_cents == 280  # 125 + 100 + 50 = 275 -> 280 half up
    assert [x.cents for x in fare.lines if x.kind == "reduction"] == [-125]


def test_subscription_holders_pay_only_the_surcharges() -> None:
    t = tariff(
        comfort_surcharge_cents=50,
        night_surcharge=tariff().night_surcharge.model_copy(update={"cents": 100}),
    )
    fare = t.price(8000, ELEVEN_PM, 1, [Traveller(subscription=True)])
    assert fare.total_cents == 150
    base = [x for x in fare.lines if x.kind == "base"]
    assert base[0].cents == 0 and "subscription" in base[0].text


def test_night_surcharge_only_inside_its_hours_across_midnight() -> None:
    t = tariff(
        night_surcharge=tariff().night_surcharge.model_copy(
            update={"cents": 100, "start": "22:00", "end": "06:00"}
        )
    )
    assert totals(t, 1, [Traveller()], at=NINE_PM) == 250
    assert totals(t, 1, [Traveller()], at=22 * 3600) == 350
    assert totals(t, 1, [Traveller()], at=26 * 3600) == 350  # 02:00 on the service-day clock
    assert totals(t, 1, [Traveller()], at=30 * 3600) == 250  # 06:00: no longer


def test_group_discount_from_the_threshold_counts_paying_travellers_only() -> None:
    t = tariff(group=tariff().group.model_copy(update={"from_size": 3, "discount_percent": 20}))
    two = t.price(1000, ELEVEN_PM, 2)
    assert two.total_cents == 500  # below the group size: no discount
    three = t.price(1000, ELEVEN_PM, 3)
    assert three.total_cents == 3 * 200  # 250 - 20 % = 200 each
    # a free child does not make a group
    with_child = t.price(1000, ELEVEN_PM, 3, [Traveller(), Traveller(), Traveller(age=3)])
    assert with_child.total_cents == 500


def test_group_discount_applies_after_the_reduction() -> None:
    t = tariff(group=tariff().group.model_copy(update={"from_size": 3, "discount_percent": 20}))
    fare = t.price(1000, ELEVEN_PM, 3, [Traveller(), Traveller(), Traveller(age=10)])
    child = [x.cents for x in fare.lines if x.traveller == 2]
    assert child[:3] == [250, -125, -25]  # 125 after reduction, 20 % of it is 25
    assert fare.total_cents == 200 + 200 + 100


def test_vat_share_is_rounded_half_up_and_never_exceeds_the_total() -> None:
    fare = tariff(vat_percent=19).price(1000, ELEVEN_PM, 1)
    assert fare.vat_cents == 40  # 250 * 19 / 119 = 39.9
    free = tariff().price(1000, ELEVEN_PM, 1, [Traveller(age=2)])
    assert free.vat_cents == 0


def test_zone_tariff_prices_by_zones_touched(soest_districts) -> None:
    text = BASE.replace('base = "distance"', 'base = "zones"\nzone_fares = [280, 380]') + (
        '\n[zones]\nKernstadt = ["Soest (Kernstadt)"]\n'
        'Ortsteile = ["Ampen", "Ostönnen", "Deiringsen", "Meiningsen", "Lendringsen"]\n'
    )
    pricer = Pricer(Tariff.parse(text), soest_districts.name_at)
    assert soest_districts.name_at(*OSTOENNEN) == "Ostönnen"
    assert soest_districts.name_at(*MARKT) == "Soest (Kernstadt)"
    inside = pricer.fare(2000, ELEVEN_PM, 1, (), [MARKT, STATION])
    across = pricer.fare(6000, ELEVEN_PM, 1, (), [MARKT, OSTOENNEN])
    villages = pricer.fare(6000, ELEVEN_PM, 1, (), [AMPEN, OSTOENNEN])  # one zone: Ortsteile
    assert (inside.total_cents, across.total_cents, villages.total_cents) == (280, 380, 280)


def test_zone_tariff_needs_districts() -> None:
    text = BASE.replace('base = "distance"', 'base = "zones"\nzone_fares = [280]') + (
        '\n[zones]\nAll = ["Soest (Kernstadt)"]\n'
    )
    with pytest.raises(TariffError) as err:
        Pricer(Tariff.parse(text), None)
    assert err.value.field == "districts_file"


@pytest.mark.parametrize(
    ("edit", "line", "field", "words"),
    [
        (("cents = 345", "cents = -5"), 17, "distance_bands[1].cents", "greater than or equal"),
        (("cents = 345", "cents = 3.45"), 17, "distance_bands[1].cents", "integer"),
        (("vat_percent = 7", "vat_percent = 107"), 3, "vat_percent", "less than or equal"),
        (("up_to_km = 10.0", "up_to_km = 2.0"), 11, "distance_bands", "grow"),
        (("discount_percent = 0", "discount_percent = 0\nextra = 1"), 25, "group.extra", "Extra"),
        (('name = "test"', 'name = "test"\nbase_fare = 1'), 3, "base_fare", "Extra"),
        (
            ("[night_surcharge]\ncents = 0", '[night_surcharge]\ncents = 0\nstart = "25:99"'),
            21,
            "night_surcharge.start",
            "25:99",
        ),
    ],
)
def test_a_malformed_tariff_names_line_and_field(
    edit: tuple[str, str], line: int, field: str, words: str
) -> None:
    text = BASE.replace(*edit)
    assert text != BASE
    with pytest.raises(TariffError) as err:
        Tariff.parse(text, "soest.toml")
    msg = str(err.value)
    assert err.value.field == field, msg
    assert f"soest.toml line {line}:" in msg, msg
    assert words in msg, msg


def test_broken_toml_is_refused_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text('name = "x"\nvat_percent = = 7\n', encoding="utf-8")
    with pytest.raises(TariffError, match=r"line 2"):
        Tariff.load(f)
    with pytest.raises(TariffError, match="cannot read"):
        Tariff.load(tmp_path / "missing.toml")


def test_amounts_are_integer_cents_never_negative() -> None:
    t = Tariff.load(EXAMPLE_TARIFF)
    for km in (0.2, 2.9, 3.1, 7.5, 14.0, 40.0):
        for people in (
            [Traveller()],
            [Traveller(age=4), Traveller(age=9), Traveller(reduced=True)],
            [Traveller(subscription=True)] * 4,
        ):
            fare = t.price(int(km * 1000), ELEVEN_PM, len(people), people)
            assert isinstance(fare.total_cents, int) and fare.total_cents >= 0
            assert fare.total_cents % t.rounding_cents == 0
            assert all(isinstance(x.cents, int) for x in fare.lines)
