"""The rebalancing forecast of a simulated night: expected requests per zone and time.

It comes from the scenario's demand model, not from the night being played: the model
(hourly profile, homes, attractors, purposes) is sampled for ``nights`` other seeds, and the
expected demand of a zone over a time span is the mean number of sampled pickups there and
then (a :class:`dispatch.rebalancing.CellForecast` over those samples).
"""

from __future__ import annotations

from collections.abc import Callable

from dispatch.rebalancing import CellForecast
from nachtbus.domain import Place
from simulations.demand import SoestInputs, generate
from simulations.scenario import Scenario


def model_forecast(
    scenario: Scenario,
    soest: SoestInputs,
    place: Callable[[float, float], Place],
    *,
    cell_m: float = 2000.0,
    nights: int = 8,
    seed: int = 0,
) -> CellForecast:
    """Expected pickups per zone from ``nights`` samples of the scenario's demand model."""
    pickups = [
        (t.origin[0], t.origin[1], t.pickup_s if t.pickup_s is not None else t.ask_s)
        # other seeds than the night played: the model, not the night
        for k in range(nights)
        for t in generate(scenario, soest, 10_007 * (seed + 1) + k)
    ]
    return CellForecast(pickups, nights, place, cell_m=cell_m)
