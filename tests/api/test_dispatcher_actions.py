"""The dispatcher acts: move a booking to another bus, cancel on a rider's behalf, pause new
bookings for an area; each recorded with who did it; refused for rider and driver keys."""

from __future__ import annotations

import pytest

from tests.api.conftest import DISPATCHER, RIDER, Api, driver
from tests.helpers import AMPEN, MARKT, OSTOENNEN


def _events(api: Api, kind: str) -> list[dict]:
    return [e.data for _, e in api.store.recent_events(500) if e.type == kind]


def test_a_booking_moves_to_another_bus_with_its_promise(api: Api) -> None:
    """The booking lands on the named bus, its window unchanged, and the stream records the
    move with the dispatcher's name; the old bus's plan no longer has it."""
    b = api.booked(MARKT, OSTOENNEN)
    old = b["vehicle"]["vehicleId"]
    target = next(v for v in ("bus-1", "bus-2", "bus-3") if v != old)
    r = api.client.post(
        f"/v1/fleet/bookings/{b['id']}/move", json={"vehicleId": target}, headers=DISPATCHER
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["vehicle"]["vehicleId"] == target
    assert moved["pickup"]["windowStart"] == b["pickup"]["windowStart"]
    assert moved["pickup"]["windowEnd"] == b["pickup"]["windowEnd"]
    plan_old = api.client.get(f"/v1/vehicles/{old}/plan", headers=driver(old)).json()
    assert all(st["bookingId"] != b["id"] for st in plan_old["stops"])
    plan_new = api.client.get(f"/v1/vehicles/{target}/plan", headers=driver(target)).json()
    assert {st["type"] for st in plan_new["stops"] if st["bookingId"] == b["id"]} == {
        "pickup",
        "dropoff",
    }
    (event,) = _events(api, "booking.moved")
    assert event == {
        "booking_id": b["id"],
        "from_vehicle_id": old,
        "vehicle_id": target,
        "status": "CONFIRMED",
        "by": "dev-dispatcher",
    }


def test_a_move_that_would_break_a_promise_is_refused_with_the_rule(api: Api) -> None:
    """Six riders fill most of one bus to Ostönnen; three more wanting the same trip at the
    same time cannot join them (8 seats) and keep their window: 409 move_refused naming the
    failed rule; nothing changes. A move onto the same bus and to an unknown bus are
    refused too."""
    full = api.booked(MARKT, OSTOENNEN, nrOfTravelers=6)
    bus_full = full["vehicle"]["vehicleId"]
    near = api.booked(MARKT, OSTOENNEN, nrOfTravelers=3)
    if near["vehicle"]["vehicleId"] == bus_full:
        pytest.skip("both on one bus; the fleet chose differently")
    version = api.client.get("/v1/fleet", headers=DISPATCHER).json()["version"]
    r = api.client.post(
        f"/v1/fleet/bookings/{near['id']}/move", json={"vehicleId": bus_full}, headers=DISPATCHER
    )
    assert r.status_code == 409, r.text
    err = r.json()
    assert err["code"] == "move_refused" and err["field"] == "vehicleId"
    assert "keep every promise" in err["message"] and "(" in err["message"]
    assert api.client.get("/v1/fleet", headers=DISPATCHER).json()["version"] == version
    same = api.client.post(
        f"/v1/fleet/bookings/{near['id']}/move",
        json={"vehicleId": near["vehicle"]["vehicleId"]},
        headers=DISPATCHER,
    )
    assert same.status_code == 409
    unknown = api.client.post(
        f"/v1/fleet/bookings/{near['id']}/move", json={"vehicleId": "bus-9"}, headers=DISPATCHER
    )
    assert unknown.status_code == 404 and unknown.json()["field"] == "vehicle_id"


def test_a_cancellation_for_the_rider_is_refunded_and_recorded(api: Api) -> None:
    b = api.booked(MARKT, AMPEN)
    r = api.client.post(
        f"/v1/fleet/bookings/{b['id']}/cancel",
        json={"reason": "the rider called: not needed"},
        headers=DISPATCHER,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "CANCELLED"
    ledger = api.client.get("/v1/ledger", headers=DISPATCHER).json()["totals"]
    assert ledger["balanceCents"] == 0 and ledger["refundsCents"] == b["fare"]["totalCents"]
    (event,) = _events(api, "booking.cancelled")
    assert event["by"] == "dev-dispatcher" and event["reason"] == "the rider called: not needed"


def test_a_paused_area_gets_no_new_bookings_with_the_reason(api: Api) -> None:
    """Pausing the whole area (``*``; a district needs the districts file): an inquiry gets
    no offer, the rejection says why; bookings made stand; after resuming, offers again."""
    b = api.booked(MARKT, AMPEN)
    r = api.client.post(
        "/v1/fleet/pauses", json={"district": "*", "reason": "black ice"}, headers=DISPATCHER
    )
    assert r.status_code == 200, r.text
    assert r.json()["pauses"]["*"]["by"] == "dev-dispatcher"
    answer = api.inquire(MARKT, OSTOENNEN).json()
    assert answer["options"] == []
    assert answer["rejection"]["reason"] == "area_paused"
    assert "black ice" in answer["rejection"]["message"]
    assert api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()["state"] == "CONFIRMED"
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    assert fleet["pauses"]["*"]["reason"] == "black ice"
    bad = api.client.post(
        "/v1/fleet/pauses", json={"district": "Atlantis", "reason": "flood"}, headers=DISPATCHER
    )
    assert bad.status_code == 422 and bad.json()["field"] == "district"
    r = api.client.delete("/v1/fleet/pauses/*", headers=DISPATCHER)
    assert r.status_code == 200 and r.json()["pauses"] == {}
    assert api.inquire(MARKT, OSTOENNEN).json()["options"]
    kinds = [e.type for _, e in api.store.recent_events(500) if e.type.startswith("area.")]
    assert kinds == ["area.resumed", "area.paused"]  # newest first


@pytest.mark.parametrize("key", [RIDER, driver("bus-1")])
def test_every_dispatcher_action_is_refused_for_rider_and_driver_keys(
    api: Api, key: dict[str, str]
) -> None:
    b = api.booked(MARKT, AMPEN)
    calls = [
        ("post", f"/v1/fleet/bookings/{b['id']}/move", {"vehicleId": "bus-2"}),
        ("post", f"/v1/fleet/bookings/{b['id']}/cancel", {"reason": "x"}),
        ("post", "/v1/fleet/pauses", {"district": "*", "reason": "black ice"}),
        ("delete", "/v1/fleet/pauses/*", None),
        ("get", "/v1/fleet/pauses", None),
        ("post", "/v1/fleet/vehicles/bus-1/out-of-service", {"reason": "x"}),
        ("post", "/v1/fleet/vehicles/bus-1/in-service", {}),
    ]
    for method, path, body in calls:
        kwargs = {"json": body} if body is not None else {}
        r = getattr(api.client, method)(path, headers=key, **kwargs)
        assert r.status_code == 403, (path, r.text)
    assert api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json()["state"] == "CONFIRMED"


def test_the_page_moves_a_booking_takes_a_bus_out_and_pauses_an_area(api: Api, served: str) -> None:
    """In headless Chromium: the move button puts the booking on the chosen bus (the stream
    records it with the dispatcher's name); taking that bus out hands the rider on and
    shows the alert, and it comes back in; the pause button pauses the area and the resume
    button takes it back."""
    import os
    from pathlib import Path

    from tests.api.test_driver_page import CHROMIUM, FLAGS

    if not Path(CHROMIUM).exists() and os.environ.get("NACHTBUS_SKIP_BROWSER") == "1":
        pytest.skip("no chromium and NACHTBUS_SKIP_BROWSER=1")
    from playwright.sync_api import sync_playwright

    b = api.booked(MARKT, OSTOENNEN)
    old = b["vehicle"]["vehicleId"]
    target = next(v for v in ("bus-1", "bus-2", "bus-3") if v != old)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"{served}/dispatcher?key=dev-dispatcher-key")
        page.wait_for_selector(f"button[data-move='{b['id']}']", timeout=30_000)
        page.select_option(f"select[data-move-to='{b['id']}']", target)
        page.click(f"button[data-move='{b['id']}']")
        page.wait_for_function("(document.body.dataset.actMsg || '').startsWith('moved')")
        page.wait_for_function(
            f"[...document.querySelectorAll('#bookings tr[data-booking=\"{b['id']}\"] td')]"
            f".some(td => td.textContent === '{target}')",
            timeout=10_000,
        )
        # take the booking's (new) bus out: its rider goes to another bus, the alert shows
        page.once("dialog", lambda d: d.accept("flat tyre"))
        page.click(f"button[data-take-out='{target}']")
        page.wait_for_selector("#alerts [data-alert]", timeout=10_000)
        alert_text = page.locator("#alerts [data-alert]").first.inner_text()
        page.wait_for_selector(f"button[data-in-service='{target}']", timeout=10_000)
        page.click(f"button[data-in-service='{target}']")
        page.wait_for_selector(f"button[data-take-out='{target}']", timeout=10_000)
        page.fill("#pauseReason", "black ice")
        page.click("#pauseGo")
        page.wait_for_selector("#pauseList [data-paused='*']", timeout=10_000)
        page.click("#pauseList button[data-resume='*']")
        page.wait_for_function("document.querySelectorAll('#pauseList [data-paused]').length === 0")
        browser.close()
    moved = _events(api, "booking.moved")[-1]  # the first: the page's move
    assert moved["vehicle_id"] == target and moved["by"] == "dev-dispatcher"
    assert [e["reason"] for e in _events(api, "area.paused")] == ["black ice"]
    assert len(_events(api, "area.resumed")) == 1
    assert f"{target} out of service (flat tyre, by dev-dispatcher)" in alert_text
    (out,) = _events(api, "vehicle.out_of_service")
    assert out["replanned"] == [b["id"]] or out["cancelled"] == [b["id"]]
    assert [e["vehicle_id"] for e in _events(api, "vehicle.in_service")] == [target]


def _bus_of(api: Api, bid: str) -> str:
    return str(
        api.client.get(f"/v1/bookings/{bid}", headers=DISPATCHER).json()["vehicle"]["vehicleId"]
    )


def test_a_bus_out_of_service_hands_its_riders_on(api: Api) -> None:
    """Bus X has a rider on board and one to pick up: out of service, the waiting rider is
    on another bus with the same window, the one on board stays (listed with the bus's last
    position), X gets no new trip; back in service it does again."""
    a = api.booked(MARKT, OSTOENNEN)
    bus = a["vehicle"]["vehicleId"]
    api.clock.advance(120)
    assert api.at_stop(bus, a["id"], "pickup").status_code == 200
    waiting = None
    for _ in range(6):
        c = api.booked(MARKT, AMPEN)
        if c["vehicle"]["vehicleId"] == bus:
            waiting = c
            break
    assert waiting is not None, "no second booking on the same bus"
    r = api.client.post(
        f"/v1/fleet/vehicles/{bus}/out-of-service", json={"reason": "flat tyre"}, headers=DISPATCHER
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["onBoard"] == [a["id"]] and out["replanned"] == [waiting["id"]]
    assert out["cancelled"] == [] and out["lat"] is not None
    moved = api.client.get(f"/v1/bookings/{waiting['id']}", headers=DISPATCHER).json()
    assert moved["vehicle"]["vehicleId"] != bus
    assert moved["pickup"]["windowEnd"] == waiting["pickup"]["windowEnd"]
    plan = api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()
    assert [(s["bookingId"], s["type"]) for s in plan["stops"]] == [(a["id"], "dropoff")]
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    assert (
        next(v for v in fleet["vehicles"] if v["vehicleId"] == bus)["outOfService"] == "flat tyre"
    )
    for _ in range(4):  # new trips go to the other buses
        assert api.booked(MARKT, AMPEN)["vehicle"]["vehicleId"] != bus
    # nor does a re-optimisation give it any
    assert api.client.post("/v1/fleet/reoptimise", headers=DISPATCHER).status_code == 200
    plan = api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()
    assert [(s["bookingId"], s["type"]) for s in plan["stops"]] == [(a["id"], "dropoff")]
    again = api.client.post(
        f"/v1/fleet/vehicles/{bus}/out-of-service", json={"reason": "x"}, headers=DISPATCHER
    )
    assert again.status_code == 409
    assert (
        api.client.post(f"/v1/fleet/vehicles/{bus}/in-service", headers=DISPATCHER).status_code
        == 204
    )
    fleet = api.client.get("/v1/fleet", headers=DISPATCHER).json()
    assert next(v for v in fleet["vehicles"] if v["vehicleId"] == bus)["outOfService"] is None
    (alert,) = _events(api, "vehicle.out_of_service")
    assert alert["by"] == "dev-dispatcher" and alert["on_board"] == [a["id"]]


def test_riders_no_bus_can_take_are_cancelled_refunded_and_offered_again(api: Api) -> None:
    """Every bus out, one by one (the last by its driver's BREAKDOWN report): the last bus's
    riders have nowhere to go: cancelled with a full refund (ledger = receipts), a
    booking.new_offers event for each (none: no bus in service), the alert names them."""
    booked = [api.booked(MARKT, OSTOENNEN) for _ in range(3)]
    for bus in ("bus-1", "bus-2"):
        r = api.client.post(
            f"/v1/fleet/vehicles/{bus}/out-of-service", json={"reason": "test"}, headers=DISPATCHER
        )
        assert r.status_code == 200, r.text
    last = "bus-3"
    r = api.vehicle_event(last, type="BREAKDOWN", note="engine")
    assert r.status_code == 200, r.text
    alert = _events(api, "vehicle.out_of_service")[0]  # newest first
    assert alert["vehicle_id"] == last and alert["reason"] == "breakdown: engine"
    assert alert["by"] == f"driver of {last}"
    states = {
        b["id"]: api.client.get(f"/v1/bookings/{b['id']}", headers=RIDER).json() for b in booked
    }
    assert all(s["state"] == "CANCELLED" for s in states.values())
    ledger = api.client.get("/v1/ledger", headers=DISPATCHER).json()["totals"]
    assert ledger["balanceCents"] == 0
    assert ledger["refundsCents"] == sum(b["fare"]["totalCents"] for b in booked)
    for b in booked:
        receipt = api.client.get(f"/v1/bookings/{b['id']}/receipt", headers=RIDER).json()
        assert receipt["paidCents"] == 0
    offered = {e["booking_id"]: e for e in _events(api, "booking.new_offers")}
    assert set(offered) == {b["id"] for b in booked}
    assert set(alert["cancelled"]) <= set(offered) and alert["cancelled"]
    assert all(offered[bid]["offers"] == [] for bid in alert["cancelled"])  # no bus left
    answer = api.inquire(MARKT, AMPEN).json()
    assert answer["options"] == [] and answer["rejection"]["reason"] == "no_vehicle_on_shift"
