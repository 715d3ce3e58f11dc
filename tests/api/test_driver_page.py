"""The driver's tablet page in headless Chromium, on the real API and store: a whole trip
(arrive, board, arrive, alight) at a phone-sized viewport seen on the dispatcher page; reports
queued through a loss of signal and sent once, in order; live plan changes announced; a driver
key sees nothing of another bus."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from nachtbus.clock import ManualClock
from routing.world import RoadWorld
from tests.api.conftest import DISPATCHER, Api, driver, open_api, serving
from tests.api.test_dispatcher_page import CHROMIUM, FLAGS
from tests.helpers import AMPEN, MARKT, OSTOENNEN, REPO_OUTPUT

PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def browser() -> Any:
    if not Path(CHROMIUM).exists() and os.environ.get("NACHTBUS_SKIP_BROWSER") == "1":
        pytest.skip("no chromium and NACHTBUS_SKIP_BROWSER=1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _booking(api: Api, bid: str) -> dict:
    r = api.client.get(f"/v1/bookings/{bid}", headers=DISPATCHER)  # sees every booking
    assert r.status_code == 200, r.text
    return dict(r.json())


def _driver_page(browser: Any, served: str, bus: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{served}/driver?key=dev-driver-{bus}")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return context, page


def _tap(page: Any, button: str) -> None:
    page.locator(f"#{button}").tap()
    page.wait_for_function("document.body.dataset.queued === '0'", timeout=15_000)


def _events(api: Api, types: set[str]) -> list[tuple[str, dict]]:
    """The store's event stream, oldest first, of these types."""
    out = []
    for _, e in reversed(api.store.recent_events(1000)):
        if e.type in types:
            out.append((e.type, e.data))
    return out


def test_a_driver_works_through_a_trip_and_the_dispatcher_sees_each_step(
    api: Api, served: str, browser: Any
) -> None:
    """Phone-sized: the next stop shows street, booking, travellers and window with the
    way there on a map of our roads and as streets; ARRIVED, BOARDED, ARRIVED, ALIGHTED; the
    dispatcher page shows STARTED and then FINISHED; NO SHOW stays disabled before its time."""
    b = api.booked(MARKT, OSTOENNEN, nrOfTravelers=2, prams=1)
    bus = b["vehicle"]["vehicleId"]
    context, page = _driver_page(browser, served, bus)
    desk = browser.new_page(viewport={"width": 1400, "height": 850})
    desk.goto(f"{served}/dispatcher?key=dev-dispatcher-key")
    desk.wait_for_selector("body[data-ready='1']", timeout=30_000)
    text = page.locator("#next").inner_text()
    assert "PICK UP" in text and "2 travellers" in text and "1 pram" in text
    assert page.locator(f"[data-booking='{b['id']}']").count() == 1
    assert page.locator("#directions li").count() >= 1
    data = page.evaluate("({...document.body.dataset})")
    assert int(data["roads"]) > 0 and int(data["path"]) > 1  # the way drawn on our roads
    shot = REPO_OUTPUT / f"driver-page-{api.runtime.world.area.name.split()[0].lower()}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))

    _tap(page, "arrived")
    assert page.locator("#noshow").is_disabled()  # the documented wait has not passed
    _tap(page, "boarded")
    desk.wait_for_function(
        f"[...document.querySelectorAll('#bookings tr[data-booking=\"{b['id']}\"] td')]"
        ".some(td => td.textContent === 'STARTED')",
        timeout=15_000,
    )
    assert "DROP OFF" in page.locator("#next").inner_text()
    _tap(page, "arrived")
    _tap(page, "alighted")
    desk.wait_for_function(
        f"[...document.querySelectorAll('#bookings tr[data-booking=\"{b['id']}\"] td')]"
        ".some(td => td.textContent === 'FINISHED')",
        timeout=15_000,
    )
    assert _booking(api, b["id"])["state"] == "FINISHED"
    assert "No stops" in page.locator("#next").inner_text()
    context.close()


def test_reports_made_without_signal_arrive_once_and_in_order(
    api: Api, served: str, browser: Any
) -> None:
    """Offline (Playwright's offline mode) the driver taps ARRIVED and BOARDED: the page
    says two reports wait and moves on to the drop-off; nothing reaches the service. Back
    online, both arrive exactly once, ARRIVED before BOARDED."""
    b = api.booked(MARKT, AMPEN)
    bus = b["vehicle"]["vehicleId"]
    context, page = _driver_page(browser, served, bus)
    context.set_offline(True)
    page.locator("#arrived").tap()
    page.wait_for_function("document.body.dataset.offline === '1'", timeout=15_000)
    page.locator("#boarded").tap()
    page.wait_for_function("document.body.dataset.queued === '2'", timeout=15_000)
    assert "offline · 2 reports waiting" in page.locator("#net").inner_text()
    assert "DROP OFF" in page.locator("#next").inner_text()  # the page goes on meanwhile
    assert _booking(api, b["id"])["state"] == "CONFIRMED"
    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("document.body.dataset.queued === '0'", timeout=20_000)
    assert _booking(api, b["id"])["state"] == "STARTED"
    seen = [
        t
        for t, d in _events(api, {"vehicle.arrived", "booking.started"})
        if d.get("booking_id") == b["id"]
    ]
    assert seen == ["vehicle.arrived", "booking.started"]
    assert page.locator("#net").inner_text() == "online"
    context.close()


def test_a_plan_change_is_announced_live(api: Api, served: str, browser: Any) -> None:
    """A new booking put on the driver's bus appears on the page through its event stream,
    with an announcement, without the driver doing anything."""
    b = api.booked(MARKT, OSTOENNEN)
    bus = b["vehicle"]["vehicleId"]
    context, page = _driver_page(browser, served, bus)
    for _ in range(6):  # until one lands on this bus
        nb = api.booked(MARKT, AMPEN)
        if nb["vehicle"]["vehicleId"] == bus:
            break
    else:
        pytest.fail("no second booking on the same bus")
    page.wait_for_function("Number(document.body.dataset.announced || 0) >= 1", timeout=15_000)
    assert "Plan changed" in page.locator("#announce").inner_text()
    assert int(page.evaluate("document.body.dataset.stops")) >= 3
    context.close()


def test_a_booking_moved_between_buses_shows_on_both_tablets_at_once(
    api: Api, served: str, browser: Any
) -> None:
    """The dispatcher moves a booking from one bus to another: the tablet of the bus it
    joins shows its stops and the one it left drops them, each from its event stream (well
    before the page's own refresh every 20 s)."""
    b = api.booked(MARKT, OSTOENNEN)
    old = b["vehicle"]["vehicleId"]
    new = "bus-2" if old == "bus-1" else "bus-1"
    old_ctx, old_page = _driver_page(browser, served, old)
    new_ctx, new_page = _driver_page(browser, served, new)
    assert old_page.evaluate("document.body.dataset.stops") == "2"
    assert new_page.evaluate("document.body.dataset.stops") == "0"
    r = api.client.post(
        f"/v1/fleet/bookings/{b['id']}/move", json={"vehicleId": new}, headers=DISPATCHER
    )
    assert r.status_code == 200, r.text
    new_page.wait_for_function("document.body.dataset.stops === '2'", timeout=10_000)
    old_page.wait_for_function("document.body.dataset.stops === '0'", timeout=10_000)
    old_ctx.close()
    new_ctx.close()


def test_a_driver_key_sees_nothing_of_another_bus(api: Api) -> None:
    """bus-1's key: bus-2's plan and stream are refused, bus-1's stream carries no event of
    bus-2 (only its own and the re-optimisations)."""
    assert api.client.get("/v1/vehicles/bus-2/plan", headers=driver("bus-1")).status_code == 403
    r = api.client.get("/v1/vehicles/bus-2/stream?limit=1", headers=driver("bus-1"))
    assert r.status_code == 403
    api.vehicle_event("bus-2", type="POSITION", lat=MARKT[0], lon=MARKT[1])
    api.vehicle_event("bus-1", type="POSITION", lat=AMPEN[0], lon=AMPEN[1])
    first = api.store.recent_events(1000)[-1][0]  # from the start of the stream
    with api.client.stream(
        "GET",
        "/v1/vehicles/bus-1/stream?limit=1&wait_s=0.2",
        headers={**driver("bus-1"), "Last-Event-ID": first},
    ) as r:
        assert r.status_code == 200
        body = "".join(r.iter_text())
    datas = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert datas and all(d.get("vehicle_id") in ("bus-1", None) for d in datas)
    assert all(d.get("vehicle_id") != "bus-2" for d in datas)
    who = api.client.get("/v1/whoami", headers=driver("bus-1")).json()
    assert who == {"role": "driver", "vehicleId": "bus-1"}
    assert api.client.get("/v1/whoami", headers=DISPATCHER).json()["vehicleId"] is None


def _desk(browser: Any, served: str) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{served}/dispatcher?key=dev-dispatcher-key")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page


def _find(page: Any, end: str, street: str) -> None:
    page.fill(f"#{end}Q", street)
    page.click(f"#{end}Search")
    page.wait_for_function(f"document.body.dataset.{end}Set === '1'", timeout=10_000)


def _desk_trip(browser: Any, served: str, api: Api, caller: str) -> Any:
    """The desk with ``caller``'s reference and a trip between two streets found on the
    test's network."""
    testdorf = "Testdorf" in api.runtime.world.area.name
    page = _desk(browser, served)
    page.fill("#caller", caller)
    _find(page, "from", "Marktweg 2" if testdorf else "Ostenhellweg")
    _find(page, "to", "Ostönnenweg 2" if testdorf else "Walburger")
    return page


def test_a_phone_booking_reaches_the_fleet_and_the_driver(
    api: Api, served: str, browser: Any
) -> None:
    """At the phone desk: the caller's streets found offline on our map data, two
    travellers and a wheelchair, the offer read out, booked and committed with the phone
    reference; the booking is in the fleet view and on its bus's driver page; the caller's
    bookings are found again and one is cancelled for the caller."""
    page = _desk_trip(browser, served, api, "mueller-4711")
    page.fill("#travellers", "2")
    page.fill("#wheelchairs", "1")
    page.click("#getOffer")
    page.wait_for_selector("#deskOffer button[data-book]", timeout=10_000)
    offer_text = page.locator("#deskOffer div").first.inner_text()
    assert "pickup" in offer_text and "fare" in offer_text
    page.click("#deskOffer button[data-book='0']")
    page.wait_for_function("document.body.dataset.deskBooked", timeout=10_000)
    bid = page.evaluate("document.body.dataset.deskBooked")
    page.wait_for_selector(f"#bookings tr[data-booking='{bid}']", timeout=10_000)
    shot = REPO_OUTPUT / f"phone-desk-{api.runtime.world.area.name.split()[0].lower()}.png"
    page.screenshot(path=str(shot))
    got = api.client.get(f"/v1/bookings/{bid}", headers=DISPATCHER).json()
    assert got["state"] == "CONFIRMED" and got["customerId"] == "phone:mueller-4711"
    assert got["wheelchairs"] == 1 and got["nrOfTravelers"] == 2
    page.wait_for_selector(f"#bookings tr[data-booking='{bid}']", timeout=10_000)
    bus = got["vehicle"]["vehicleId"]
    context, driver_page = _driver_page(browser, served, bus)
    assert driver_page.locator(f"[data-booking='{bid}']").count() == 1
    assert "wheelchair" in driver_page.locator("#next").inner_text()
    context.close()
    page.click("#findCaller")
    page.wait_for_selector(f"[data-caller-booking='{bid}'] button[data-cancel]", timeout=10_000)
    page.click(f"[data-caller-booking='{bid}'] button[data-cancel]")
    page.wait_for_function(
        "(document.body.dataset.deskMsg || '').startsWith('cancelled')", timeout=10_000
    )
    assert _booking(api, bid)["state"] == "CANCELLED"
    page.close()


def test_the_desk_names_the_field_for_bad_input(api: Api, served: str, browser: Any) -> None:
    """An unknown street, a point outside the service area, a missing caller reference:
    each a clear message naming the field."""
    page = _desk(browser, served)
    page.fill("#fromQ", "Nirgendwostraße")
    page.click("#fromSearch")
    page.wait_for_function("(document.body.dataset.deskMsg || '').startsWith('from:')")
    assert "no street like" in page.evaluate("document.body.dataset.deskMsg")
    page.click("#getOffer")  # no caller reference yet
    assert page.evaluate("document.body.dataset.deskMsg").startswith("caller reference:")
    page.fill("#caller", "anna-1")
    # a point far outside the area, picked on the map's top-left corner
    page.click("#fromPick")
    page.locator("#map").click(position={"x": 3, "y": 3})
    page.wait_for_function("document.body.dataset.fromSet === '1'")
    _find(page, "to", "Marktweg" if "Testdorf" in api.runtime.world.area.name else "Ostenhellweg")
    page.click("#getOffer")
    page.wait_for_function("(document.body.dataset.deskMsg || '').startsWith('from')")
    msg = page.evaluate("document.body.dataset.deskMsg")
    assert "from" in msg and ("area" in msg or "road" in msg), msg
    page.close()


def test_no_show_is_enabled_only_after_the_wait(api: Api, served: str, browser: Any) -> None:
    """At a pickup the NO SHOW button is off until ``noShowFrom`` (arrival or window start
    plus the documented wait) and then reports the no-show."""
    b = api.booked(MARKT, OSTOENNEN)
    bus = b["vehicle"]["vehicleId"]
    context, page = _driver_page(browser, served, bus)
    _tap(page, "arrived")
    assert page.locator("#noshow").is_disabled()
    assert " from " in page.locator("#noshow").inner_text()
    plan = api.client.get(f"/v1/vehicles/{bus}/plan", headers=driver(bus)).json()
    due = plan["stops"][0]["noShowFrom"]
    assert due is not None
    api.clock.advance(api.runtime.service.dispatcher.policy.no_show_wait_s + 60)
    page.evaluate("refresh()")
    page.wait_for_function("!document.getElementById('noshow').disabled", timeout=10_000)
    _tap(page, "noshow")
    assert _booking(api, b["id"])["state"] == "NO_SHOW"
    context.close()


def _desk_booking(browser: Any, served: str, api: Api, when: str, night: str) -> tuple[str, str]:
    """At the desk, caller schmidt-12 books a pickup at ``when`` (HH:MM) of ``night`` (0:
    tonight, 1: the next night): the booking id and the offer as read out."""
    page = _desk_trip(browser, served, api, "schmidt-12")
    page.select_option("#when", "pickup")
    page.fill("#at", when)
    page.select_option("#night", night)
    page.click("#getOffer")
    page.wait_for_selector("#deskOffer button[data-book]", timeout=10_000)
    text = page.locator("#deskOffer div").first.inner_text()
    page.click("#deskOffer button[data-book='0']")
    page.wait_for_function("document.body.dataset.deskBooked", timeout=10_000)
    bid = str(page.evaluate("document.body.dataset.deskBooked"))
    page.close()
    return bid, text


def test_the_desk_books_the_next_night_and_tonight_from_the_morning(
    api: Api, served: str, browser: Any
) -> None:
    """A caller at 22:00 books 21:00 the next night ("the next night"): the offer read out
    carries its date and the booking is that night's. The next morning at 10:00, every
    shift over, "tonight 01:00" is the small hours of the coming night, not the past one."""
    next_night, text = _desk_booking(browser, served, api, "21:00", "1")
    assert "pickup 2026-11-21 21:00" in text
    got = api.client.get(f"/v1/bookings/{next_night}", headers=DISPATCHER).json()
    assert got["state"] == "CONFIRMED" and got["customerId"] == "phone:schmidt-12"
    assert got["pickup"]["windowStart"] == "2026-11-21T21:00:00+01:00"
    assert got["serviceDate"] == "2026-11-21"

    api.clock.advance(12 * 3600)  # 10:00 on the 21st
    small_hours, _ = _desk_booking(browser, served, api, "01:00", "0")
    got = api.client.get(f"/v1/bookings/{small_hours}", headers=DISPATCHER).json()
    assert got["pickup"]["windowStart"] == "2026-11-22T01:00:00+01:00"
    listed = api.client.get("/v1/bookings?customerId=phone:schmidt-12", headers=DISPATCHER)
    assert [b["id"] for b in listed.json()] == sorted([next_night, small_hours])


@pytest.mark.parametrize(
    ("evening", "asked", "promised"),
    [
        # the last Sunday of October: 03:00 summer time is 02:00 winter time
        (date(2026, 10, 24), "04:00", "2026-10-25T04:00:00+01:00"),
        # the last Sunday of March: 02:00 winter time is 03:00 summer time
        (date(2027, 3, 27), "04:00", "2027-03-28T04:00:00+02:00"),
    ],
)
def test_the_desk_books_across_the_clock_change(
    world: RoadWorld, tmp_path: Path, browser: Any, evening: date, asked: str, promised: str
) -> None:
    """At 22:00 on a clock-change night a caller asks for 04:00: the pickup is at 04:00 on
    the clocks of that morning, not at the offset of 22:00 (an hour off: 03:00 in October,
    05:00 in March, which is past the service hours)."""
    clock = ManualClock(22 * 3600, evening)
    api = open_api(world, tmp_path / "data", clock)
    try:
        with api.client, serving(api.client.app) as served:
            bid, text = _desk_booking(browser, served, api, asked, "0")
            got = api.client.get(f"/v1/bookings/{bid}", headers=DISPATCHER).json()
    finally:
        api.runtime.close()
    assert f"{promised[:10]} {asked}" in text
    assert got["pickup"]["windowStart"] == promised, got["pickup"]
