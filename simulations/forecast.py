"""The rebalancing forecast of a simulated night: expected requests per zone and time.

It comes from the scenario's demand model, not from the night being played: the model
(hourly profile, homes, attractors, purposes) is sampled for ``nights`` other seeds, and the
expected demand of a zone over a time span is the mean number of sampled pickups there and
then. Zones are square cells of ``cell_m`` metres (a local equirectangular grid); a zone's
place is the road point nearest the mean of its sampled pickups.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from dispatch.rebalancing import Zone
from nachtbus.domain import Place
from simulations.demand import SoestInputs, generate
from simulations.scenario import Scenario

M_PER_DEG_LAT = 111_320.0


class ModelForecast:
    """Expected pickups per zone from samples of the scenario's demand model."""

    def __init__(
        self,
        scenario: Scenario,
        soest: SoestInputs,
        place: Callable[[float, float], Place],
        *,
        cell_m: float = 2000.0,
        nights: int = 8,
        seed: int = 0,
    ) -> None:
        if cell_m <= 0 or nights < 1:
            raise ValueError("cell_m must be > 0 and nights >= 1")
        self.cell_m = cell_m
        self.nights = nights
        self._lat0 = float(np.mean(soest.homes[:, 0]))
        self._lon0 = float(np.mean(soest.homes[:, 1]))
        self._cos = math.cos(math.radians(self._lat0))
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        times: dict[str, list[int]] = defaultdict(list)
        for k in range(nights):
            # other seeds than any night played with a small seed: the model, not the night
            for t in generate(scenario, soest, 10_007 * (seed + 1) + k):
                z = self.zone_of(*t.origin)
                points[z].append(t.origin)
                times[z].append(t.pickup_s if t.pickup_s is not None else t.ask_s)
        self._times = {z: np.sort(np.asarray(v, dtype=np.int64)) for z, v in times.items()}
        self._zones = tuple(
            Zone(z, place(*np.mean(np.asarray(points[z]), axis=0))) for z in sorted(points)
        )

    def zones(self) -> Sequence[Zone]:
        return self._zones

    def zone_of(self, lat: float, lon: float) -> str:
        x = (lon - self._lon0) * self._cos * M_PER_DEG_LAT
        y = (lat - self._lat0) * M_PER_DEG_LAT
        return f"{math.floor(x / self.cell_m)}:{math.floor(y / self.cell_m)}"

    def expected(self, t0_s: int, t1_s: int) -> dict[str, float]:
        out = {}
        for z, ts in self._times.items():
            n = int(np.searchsorted(ts, t1_s) - np.searchsorted(ts, t0_s))
            if n:
                out[z] = n / self.nights
        return out
