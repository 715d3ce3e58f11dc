"""The fare engine: a tariff file (TOML) that a transport authority edits, and the prices it gives.

A tariff prices one trip for each traveller in integer cents:

1. **base fare** by the direct road distance (``[[distance_bands]]``) or by the zones the trip
   touches (``[zones]`` names districts, ``zone_fares`` prices 1, 2, ... zones);
2. **reductions** on the base fare: children under ``free_under_age`` ride free (no line but a
   zero), children under ``reduced_under_age`` and riders with a reduced-fare entitlement pay
   ``reduced_percent`` less, holders of a valid public-transport subscription pay no base fare
   (only the surcharges);
3. **group** pricing: in a booking with at least ``group.from_size`` paying travellers the base
   fare (after reductions) of each is ``group.discount_percent`` lower;
4. **surcharges** per paying traveller: the night surcharge when the pickup is inside its hours,
   and the comfort (door-to-door) surcharge;
5. **rounding** of each traveller's sum to ``rounding_cents`` (``nearest`` half up, ``up`` or
   ``down``), so the receipt's lines add up to the total exactly;
6. the **VAT share** of the gross total: ``round(total * vat / (100 + vat))``, half up.

Percentages are whole numbers and all arithmetic is on integers (fractions rounded half up), so
a price never has fractional cents. A malformed file is refused with its line and field named.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nachtbus.domain import Fare, FareLine, Traveller
from nachtbus.errors import InvalidInput, located
from nachtbus.units import check_clocks, parse_clock

Cents = Annotated[int, Field(ge=0, strict=True, description="integer cents, >= 0")]
Percent = Annotated[int, Field(ge=0, le=100, strict=True, description="whole percent 0..100")]


class TariffError(InvalidInput):
    """The tariff file is malformed; the message names the file, line and field."""

    code = "invalid_tariff"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DistanceBand(_Model):
    up_to_km: float = Field(gt=0, description="upper end of the band (direct road distance)")
    cents: Cents


class Surcharge(_Model):
    cents: Cents = 0
    start: str = Field(default="20:00", description="first pickup time it applies to (HH:MM)")
    end: str = Field(default="06:00", description="pickup time it no longer applies (HH:MM)")

    @model_validator(mode="after")
    def _times(self) -> Surcharge:
        check_clocks(self, "start", "end")
        return self

    def applies(self, pickup_s: int) -> bool:
        """Service-day seconds run past midnight; the hours are compared on the 24 h clock."""
        start, end = parse_clock(self.start) % 86400, parse_clock(self.end) % 86400
        t = pickup_s % 86400
        return start <= t < end if start < end else t >= start or t < end


class Group(_Model):
    from_size: int = Field(default=3, ge=2, strict=True)
    discount_percent: Percent = 0


class Tariff(_Model):
    """One tariff; see the module doc for the rules and ``tariffs/soest.toml`` for an example."""

    name: str = Field(min_length=1)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    vat_percent: Percent
    rounding_cents: int = Field(default=10, ge=1, strict=True)
    rounding: Literal["nearest", "up", "down"] = "nearest"
    base: Literal["distance", "zones"]
    distance_bands: tuple[DistanceBand, ...] = ()
    zones: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    zone_fares: tuple[Cents, ...] = ()
    night_surcharge: Surcharge = Surcharge()
    comfort_surcharge_cents: Cents = 0
    free_under_age: int = Field(default=6, ge=0, le=120, strict=True)
    reduced_under_age: int = Field(default=15, ge=0, le=120, strict=True)
    reduced_percent: Percent = 50
    group: Group = Group()
    refund_cutoff_min: int = Field(default=30, ge=0, strict=True)

    @model_validator(mode="after")
    def _consistent(self) -> Tariff:
        if self.base == "distance":
            if not self.distance_bands:
                raise ValueError("distance_bands: base = 'distance' needs at least one band")
            ups = [b.up_to_km for b in self.distance_bands]
            if ups != sorted(ups) or len(set(ups)) != len(ups):
                raise ValueError("distance_bands: up_to_km must grow from band to band")
        else:
            if not self.zones or not self.zone_fares:
                raise ValueError("zones: base = 'zones' needs [zones] and zone_fares")
            seen: dict[str, str] = {}
            for zone, districts in self.zones.items():
                for d in districts:
                    if d in seen:
                        raise ValueError(f"zones: district {d!r} is in {seen[d]} and {zone}")
                    seen[d] = zone
        if self.free_under_age > self.reduced_under_age:
            raise ValueError("free_under_age: must not be above reduced_under_age")
        return self

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: Path | str) -> Tariff:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TariffError(f"{path}: cannot read: {exc.strerror}", field="tariff_file") from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "tariff") -> Tariff:
        """Parse TOML text; errors name ``source``, the line and the field."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TariffError(f"{source}: not valid TOML: {exc}", field="tariff_file") from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            loc, msg = located(exc.errors()[0])
            field = _dotted(loc)
            line = _line_of(text, loc)
            raise TariffError(f"{source} line {line}: {field}: {msg}", field=field) from None

    # ------------------------------------------------------------------ pricing
    def zone_of(self, district: str | None) -> str | None:
        for zone, districts in self.zones.items():
            if district in districts:
                return zone
        return None

    def base_cents(self, distance_m: int, districts: Sequence[str | None] = ()) -> tuple[int, str]:
        """The base fare for one adult and the words for it."""
        if self.base == "distance":
            km = distance_m / 1000
            for band in self.distance_bands:
                if km <= band.up_to_km:
                    return band.cents, f"base fare up to {band.up_to_km:g} km ({km:.1f} km)"
            last = self.distance_bands[-1]
            return last.cents, f"base fare over {last.up_to_km:g} km ({km:.1f} km)"
        zones = {self.zone_of(d) for d in districts}
        if None in zones:
            raise InvalidInput("the trip starts or ends outside every tariff zone", field="zones")
        n = min(len(zones), len(self.zone_fares))
        names = ", ".join(sorted(z for z in zones if z))
        return self.zone_fares[n - 1], f"base fare {len(zones)} zone(s) ({names})"

    def price(
        self,
        distance_m: int,
        pickup_s: int,
        passengers: int,
        travellers: Sequence[Traveller] = (),
        districts: Sequence[str | None] = (),
    ) -> Fare:
        """The fare of one booking: every traveller's lines, the total and its VAT share."""
        people = list(travellers) or [Traveller() for _ in range(passengers)]
        base, base_text = self.base_cents(distance_m, districts)
        paying = [i for i, t in enumerate(people) if not self._free(t)]
        group = len(paying) >= self.group.from_size and self.group.discount_percent > 0
        night = self.night_surcharge.cents if self.night_surcharge.applies(pickup_s) else 0
        lines: list[FareLine] = []
        for i, t in enumerate(people):
            if self._free(t):
                lines.append(FareLine(i, "free", f"child under {self.free_under_age}", 0))
                continue
            own: list[FareLine] = []
            if t.subscription:
                own.append(FareLine(i, "base", "base fare covered by subscription", 0))
                fare_base = 0
            else:
                own.append(FareLine(i, "base", base_text, base))
                fare_base = base
                if t.reduced or (t.age is not None and t.age < self.reduced_under_age):
                    cut = _pct(fare_base, self.reduced_percent)
                    own.append(
                        FareLine(i, "reduction", f"reduced fare -{self.reduced_percent}%", -cut)
                    )
                    fare_base -= cut
                if group:
                    cut = _pct(fare_base, self.group.discount_percent)
                    own.append(
                        FareLine(
                            i,
                            "group",
                            f"group of {len(paying)} -{self.group.discount_percent}%",
                            -cut,
                        )
                    )
            if night:
                own.append(FareLine(i, "surcharge", "night surcharge", night))
            if self.comfort_surcharge_cents:
                own.append(
                    FareLine(i, "surcharge", "door-to-door surcharge", self.comfort_surcharge_cents)
                )
            subtotal = sum(x.cents for x in own)
            rounded = self._round(subtotal)
            if rounded != subtotal:
                own.append(
                    FareLine(
                        i, "rounding", f"rounded to {self.rounding_cents} ct", rounded - subtotal
                    )
                )
            lines.extend(own)
        total = sum(x.cents for x in lines)
        vat = _half_up(Fraction(total * self.vat_percent, 100 + self.vat_percent))
        return Fare(self.currency, tuple(lines), total, self.vat_percent, vat, self.name)

    def _free(self, t: Traveller) -> bool:
        return t.age is not None and t.age < self.free_under_age

    def _round(self, cents: int) -> int:
        step = self.rounding_cents
        if self.rounding == "up":
            return -(-cents // step) * step
        if self.rounding == "down":
            return cents // step * step
        return _half_up(Fraction(cents, step)) * step

    def refundable(self, pickup_earliest_s: int, now_s: int) -> bool:
        """A cancellation at ``now_s`` is refunded if it is at least the cutoff before pickup."""
        return now_s <= pickup_earliest_s - self.refund_cutoff_min * 60


def _half_up(x: Fraction) -> int:
    return int((x + Fraction(1, 2)).__floor__())


def _pct(cents: int, percent: int) -> int:
    return _half_up(Fraction(cents * percent, 100))


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "tariff"


def _line_of(text: str, loc: tuple[Any, ...]) -> int:
    """The line of ``loc`` in the TOML text: its key's line, else its table's header, else 1."""
    table: tuple[Any, ...] = ()
    counts: dict[tuple[Any, ...], int] = {}
    best = 1
    best_len = -1
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[[") and line.endswith("]]"):
            name = tuple(line[2:-2].strip().split("."))
            counts[name] = counts.get(name, -1) + 1
            table = (*name, counts[name])
            key_path = table
        elif line.startswith("[") and line.endswith("]"):
            table = tuple(line[1:-1].strip().split("."))
            key_path = table
        elif "=" in line:
            key_path = (*table, *line.split("=", 1)[0].strip().strip('"').split("."))
        else:
            continue
        common = 0
        for a, b in zip(key_path, loc, strict=False):
            if a != b:
                break
            common += 1
        if common == min(len(key_path), len(loc)) and common > best_len:
            best, best_len = n, common
    return best


@dataclass(frozen=True)
class Pricer:
    """Prices a request with a tariff, the road distance and (for zone tariffs) districts."""

    tariff: Tariff
    district_of: Callable[[float, float], str | None] | None = None

    def __post_init__(self) -> None:
        if self.tariff.base == "zones" and self.district_of is None:
            raise TariffError(
                "the tariff prices by zones but no districts file is loaded",
                field="districts_file",
            )

    def fare(
        self,
        distance_m: int,
        pickup_s: int,
        passengers: int,
        travellers: Sequence[Traveller],
        points: Sequence[tuple[float, float]],
    ) -> Fare:
        districts = [self.district_of(lat, lon) for lat, lon in points] if self.district_of else []
        return self.tariff.price(distance_m, pickup_s, passengers, travellers, districts)
