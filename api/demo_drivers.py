"""Simulated drivers, so that the service can be tried without buses (``serve --demo-drivers``).

Development only (refused in production). Without drivers nothing moves: every bus stays
where it started, its plan falls behind the clock, and a few minutes after the first
bookings no bus can keep a new promise any more. With ``--demo-drivers`` a thread plays the
driver of every bus through the same service calls as the driver's tablet
(``DispatchService.position`` / ``arrived`` / ``stop_done``), on the service clock:

- a bus leaves for its first stop when its plan needs it (not before: until then another
  rider may still come first), drives the fastest path of our road network in the time the
  plans assume, and reports where it is every ``report_s`` seconds on the way;
- at a pickup it reports ARRIVED, and BOARDED once the pickup window has opened (the rider
  is always there: the demo has no no-shows); at a drop-off ARRIVED and ALIGHTED;
- a stop that went away while the bus drove to it (cancelled, moved by a dispatcher) ends
  the leg where the bus is; the next look takes the plan as it is then.

A bus whose real driver reports anything through the API (``/v1/vehicles/{id}/events``) is
handed over (:meth:`DemoDrivers.hand_over`): from then on the demo leaves it alone, so the
driver's page can be tried on one bus while the others drive themselves.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nachtbus.domain import StopType
from nachtbus.errors import NachtbusError

if TYPE_CHECKING:
    from api.app import Runtime

log = logging.getLogger(__name__)

LOOK_EVERY_S = 1.0  # wall seconds between two looks at the fleet


@dataclass
class _Leg:
    """A bus on its way to a stop: the path's junctions and when it passes each."""

    booking_id: str
    kind: StopType
    nodes: list[int]
    at_s: np.ndarray  # service seconds at which the bus is at nodes[k]
    reported_s: int

    def node_at(self, now_s: int) -> int:
        k = int(np.searchsorted(self.at_s, now_s, side="right")) - 1
        return self.nodes[max(0, min(k, len(self.nodes) - 1))]


class DemoDrivers:
    """Plays the drivers of the buses that no real driver has reported for."""

    def __init__(self, rt: Runtime, report_s: int = 30) -> None:
        self.rt, self.report_s = rt, report_s
        self._legs: dict[str, _Leg] = {}
        self._boarding: dict[str, tuple[str, StopType, int]] = {}  # at a stop: who, when done
        self._human: set[str] = set()
        self._lock = threading.Lock()

    def hand_over(self, vehicle_id: str) -> None:
        """A real driver reported for this bus: the demo no longer drives it."""
        with self._lock:
            self._human.add(vehicle_id)
            self._legs.pop(vehicle_id, None)
            self._boarding.pop(vehicle_id, None)

    def driven(self) -> list[str]:
        """The buses the demo drives (every bus in service that no real driver took)."""
        state = self.rt.service.snapshot()
        with self._lock:
            return sorted(
                vid
                for vid, v in state.vehicles.items()
                if vid not in self._human and v.out_of_service is None
            )

    def step(self) -> None:
        """One look at every driven bus: leave, report on the way, arrive, board or alight."""
        for vid in self.driven():
            with self._lock:
                if vid in self._human:
                    continue
                try:
                    self._drive(vid)
                except NachtbusError as exc:  # the plan changed under the driver: look again
                    log.info("demo driver of %s: %s", vid, exc)
                    self._legs.pop(vid, None)
                    self._boarding.pop(vid, None)

    def _report(self, vid: str, node: int) -> None:
        net = self.rt.world.network
        self.rt.service.position(vid, float(net.node_lat[node]), float(net.node_lon[node]))

    def _drive(self, vid: str) -> None:
        service = self.rt.service
        state = service.snapshot()
        now, plan, where = state.now_s, state.plans[vid], state.states[vid]
        if vid in self._boarding:
            booking_id, kind, due = self._boarding[vid]
            if now >= due:
                del self._boarding[vid]
                service.stop_done(vid, booking_id, kind)
            return
        if where.at_s > now:  # still serving the last stop
            return
        first = plan.stops[0] if plan.stops else None
        leg = self._legs.get(vid)
        if leg is not None:
            if first is None or (first.booking_id, first.type) != (leg.booking_id, leg.kind):
                del self._legs[vid]  # the stop went away: stop where the bus is
                self._report(vid, leg.node_at(now))
                return
            if now >= int(leg.at_s[-1]):
                del self._legs[vid]
                service.arrived(vid, leg.booking_id, leg.kind)
                booking = service.snapshot().bookings[leg.booking_id]
                due = max(now, booking.pickup_window[0]) if leg.kind == StopType.PICKUP else now
                self._boarding[vid] = (leg.booking_id, leg.kind, due)
            elif now - leg.reported_s >= self.report_s:
                leg.reported_s = now
                self._report(vid, leg.node_at(now))
            return
        if first is None:
            return
        times = self.rt.world.times
        travel = int(times.times_s([where.node, first.place.node])[0, 1])
        if plan.fixed == 0 and first.eta_s - travel > now:
            return  # leaves when the plan needs it
        nodes = list(times.route(where.node, first.place.node).nodes) or [where.node]
        net = self.rt.world.network
        legs_ms = [int(net.weight[net.edge_index(a, b)]) for a, b in itertools.pairwise(nodes)]
        passed = np.concatenate([[0.0], np.cumsum(legs_ms, dtype=np.float64)])
        share = passed / passed[-1] if passed[-1] > 0 else np.zeros_like(passed)
        at_s = now + np.rint(share * travel).astype(np.int64)  # in the travel time planned
        at_s[-1] = now + travel
        self._report(vid, where.node)  # leaving: the first stop is now fixed
        self._legs[vid] = _Leg(first.booking_id, first.type, nodes, at_s, now)

    def run(self, stop: threading.Event) -> None:
        """Look at the fleet every second until ``stop`` is set."""
        while not stop.wait(LOOK_EVERY_S):
            try:
                self.step()
            except Exception:  # keep driving; the next look tries again
                log.exception("demo drivers failed")


def start_demo_drivers(rt: Runtime, stop: threading.Event) -> threading.Thread:
    """Start the demo drivers' thread (``rt.demo_drivers``); it ends when ``stop`` is set."""
    assert rt.demo_drivers is not None
    worker = threading.Thread(
        target=rt.demo_drivers.run, args=(stop,), daemon=True, name="demo drivers"
    )
    worker.start()
    return worker
