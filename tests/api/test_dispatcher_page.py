"""The dispatcher page in headless Chromium: map, buses, routes, bookings and rejections drawn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.api.conftest import DISPATCHER, RIDER, Api, evening_s
from tests.helpers import AMPEN, MARKT, OSTOENNEN, REPO_OUTPUT, STATION

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def dispatcher_page(served: str, init_script: str | None = None) -> Iterator[Page]:
    """The dispatcher page of ``served`` in headless Chromium (``init_script`` runs before
    the page's own); the browser closes after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 850})
            if init_script is not None:
                page.add_init_script(init_script)
            page.goto(f"{served}/dispatcher?key=dev-dispatcher-key")
            yield page
        finally:
            browser.close()


def test_page_draws_buses_routes_and_bookings(api: Api, served: str) -> None:
    """Three bookings (one on board) and a rejection: all drawn, screenshot saved."""
    if not Path(CHROMIUM).exists() and os.environ.get("NACHTBUS_SKIP_BROWSER") == "1":
        pytest.skip("no chromium and NACHTBUS_SKIP_BROWSER=1")
    a = api.booked(MARKT, OSTOENNEN)
    api.booked(STATION, AMPEN)
    api.booked(AMPEN, MARKT, nrOfTravelers=2)
    bus = a["vehicle"]["vehicleId"]
    api.clock.advance(200)
    assert api.at_stop(bus, a["id"], "pickup").status_code == 200
    api.inquire(MARKT, OSTOENNEN, nrOfTravelers=9)  # rejected: too many travellers

    shot = REPO_OUTPUT / f"dispatcher-page-{api.runtime.world.area.name.split()[0].lower()}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with dispatcher_page(served) as page:
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        page.wait_for_function("document.getElementById('status').textContent === 'live'")
        data = page.evaluate("({...document.body.dataset})")
        rows = page.locator("#bookings tbody tr").count()
        # every column (the actions last) is in view without scrolling the side panel
        wide = page.evaluate(
            "(a => [a.scrollWidth, a.clientWidth])(document.querySelector('aside'))"
        )
        reasons = page.locator("#rejections tbody tr").first.get_attribute("data-reason")
        status = page.locator("#status").inner_text()
        page.wait_for_selector("body[data-warnings]", timeout=30_000)
        well = page.locator("#service").inner_text()
        page.screenshot(path=str(shot))
        api.runtime.service.note_round("RuntimeError: the solver child died")
        page.reload()
        page.wait_for_selector("body[data-warnings='1']", timeout=30_000)
        warning = page.locator("#service [data-warning]").inner_text()
    network = api.client.get("/v1/network", headers={"X-Api-Key": "dev-dispatcher-key"}).json()
    assert int(data["roads"]) == len(network["roads"]) > 100  # drawn from our own network
    assert int(data["drawnBuses"]) == 3
    assert wide[0] <= wide[1], f"the side panel scrolls sideways: {wide}"
    assert int(data["drawnRoutes"]) >= 2  # buses with stops have their path drawn
    assert int(data["drawnStops"]) == 5  # 3 pickups + 3 drop-offs, one rider on board
    assert rows == 3
    assert reasons == "too_many_travellers"
    assert status == "live"  # the event stream is connected
    assert well.startswith("all well · store ") and "1 night" in well
    assert warning == "the last background round failed: RuntimeError: the solver child died"
    assert shot.stat().st_size > 20_000


def test_page_shows_a_bus_waiting_for_a_late_train(api: Api, served: str) -> None:
    """A rider off the 22:31 (example timetable), the train 12 min late: the page's bus row
    says the bus waits for that train with its delay, and the booking row names the train."""
    if not Path(CHROMIUM).exists() and os.environ.get("NACHTBUS_SKIP_BROWSER") == "1":
        pytest.skip("no chromium and NACHTBUS_SKIP_BROWSER=1")
    from nachtbus.transit import realtime

    r = api.client.post(
        "/v1/planning/inquiries",
        json={
            "to": {"lat": OSTOENNEN[0], "lon": OSTOENNEN[1]},
            "connection": {"direction": "from_train", "tripId": "RB59X-E-2231"},
        },
        headers={"X-Api-Key": "dev-rider-app-key"},
    )
    assert r.status_code == 200, r.text
    oid = r.json()["options"][0]["offerId"]
    r = api.client.post(
        "/v1/bookings", json={"offerId": oid}, headers={"X-Api-Key": "dev-rider-app-key"}
    )
    assert r.status_code == 201, r.text
    body = realtime.trip_update_feed({"RB59X-E-2231": 720}, "SOE", api.clock.now())
    r = api.client.post(
        "/v1/trains/trip-updates",
        content=body,
        headers={"X-Api-Key": "dev-dispatcher-key", "Content-Type": "application/x-protobuf"},
    )
    assert r.status_code == 200, r.text
    with dispatcher_page(served) as page:
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        waiting = page.locator("#buses td.waiting [data-trip='RB59X-E-2231']").inner_text()
        booked = page.locator("#bookings [data-trip='RB59X-E-2231']").inner_text()
    assert waiting.startswith("waits for RB 59X 22:31") and "+12 min" in waiting
    assert booked.startswith("off RB 59X 22:31")


def test_bus_names_near_one_another_do_not_overlap(api: Api, served: str) -> None:
    """Buses a few metres apart (one street, just off the depot) are drawn on one spot at the
    map's scale: each name is still drawn clear of the others and of every bus."""
    if not Path(CHROMIUM).exists() and os.environ.get("NACHTBUS_SKIP_BROWSER") == "1":
        pytest.skip("no chromium and NACHTBUS_SKIP_BROWSER=1")
    fleet = api.client.get("/v1/fleet", headers={"X-Api-Key": "dev-dispatcher-key"}).json()
    buses = [v["vehicleId"] for v in fleet["vehicles"]]
    assert len(buses) >= 3
    for k, bus in enumerate(buses):  # 0 to about 20 m apart, no two at the same point
        lat, lon = MARKT[0] + 0.00004 * k, MARKT[1] + 0.00003 * (k % 2)
        r = api.vehicle_event(bus, type="POSITION", lat=lat, lon=lon)
        assert r.status_code == 200, r.text
    with dispatcher_page(served, WATCH_TEXT) as page:
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        data = page.evaluate("({...document.body.dataset})")
        texts = page.evaluate("window.__texts")
    assert int(data["drawnBuses"]) == len(buses)
    names = {t["text"]: t for t in texts if t["text"] in buses}  # the last drawing of each
    assert sorted(names) == sorted(buses)
    boxes = {n: (t["x"], t["y"] - 9, t["x"] + t["w"], t["y"] + 3) for n, t in names.items()}
    clashes = [
        (a, b)
        for a in boxes
        for b in boxes
        if a < b
        and boxes[a][0] < boxes[b][2]
        and boxes[b][0] < boxes[a][2]
        and boxes[a][1] < boxes[b][3]
        and boxes[b][1] < boxes[a][3]
    ]
    assert clashes == []
    assert int(data["labelOverlaps"]) == 0  # the page's own count agrees


# Records every text the page draws on a canvas, where, and how wide (the page's own font).
WATCH_TEXT = """
window.__texts = [];
const fill = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, x, y, ...rest) {
  window.__texts.push({text: String(text), x, y, w: this.measureText(text).width});
  return fill.call(this, text, x, y, ...rest);
};
"""


def test_the_page_says_why_when_the_store_does_not_answer(api: Api, served: str) -> None:
    """The store paused (SIGSTOP of its redis-server): the service line shows the service's
    own answer (the store does not answer), as a warning, not a bare "HTTP 503"."""
    if not Path(CHROMIUM).exists() and os.environ.get("NACHTBUS_SKIP_BROWSER") == "1":
        pytest.skip("no chromium and NACHTBUS_SKIP_BROWSER=1")
    import signal

    server = api.store.conn.server
    assert server is not None and server.redis_pid is not None
    pid = server.redis_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with dispatcher_page(served) as page:
            page.wait_for_selector("#service [data-warning]", timeout=60_000)
            said = page.locator("#service [data-warning]").inner_text()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert said.startswith("the state store does not answer"), said
    assert "(/v1/status: HTTP 503)" in said


def test_a_booking_ahead_shows_on_the_open_page_at_once(api: Api, served: str) -> None:
    """The page is open when a rider books the next evening and later cancels: the list of
    bookings ahead follows each from tonight's event stream (booking.ahead), well before the
    page's own refresh every 30 s; tonight's stream names the night and the booking."""
    with dispatcher_page(served) as page:
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        assert page.evaluate("document.body.dataset.ahead") == "0"
        b = api.booked(MARKT, OSTOENNEN, departureTime="2026-11-21T21:00:00+01:00")
        page.wait_for_function("document.body.dataset.ahead === '1'", timeout=10_000)
        row = f"#ahead tr[data-ahead-booking='{b['id']}']"
        assert "CONFIRMED" in page.locator(row).inner_text()
        r = api.client.post(
            f"/v1/bookings/{b['id']}/events", json={"operation": "CANCEL"}, headers=RIDER
        )
        assert r.status_code == 200, r.text
        page.wait_for_function(
            f"document.querySelector(\"{row}\").innerText.includes('CANCELLED')", timeout=10_000
        )
    told = [e.data for _, e in api.store.recent_events(200) if e.type == "booking.ahead"]
    assert all(d["service_date"] == "2026-11-21" and d["booking_ids"] == [b["id"]] for d in told)
    assert {t for d in told for t in d["types"]} >= {"booking.confirmed", "booking.cancelled"}


def test_a_late_phone_rider_is_listed_to_be_called(api: Api, served: str) -> None:
    """A rider booked by phone has no app to read a late notice: once the bus (which has
    not left) cannot keep the pickup, the page lists the caller's reference to call, with
    the new time and the reason, and the booking's row says so instead of "told"."""
    b = api.booked(MARKT, OSTOENNEN, customerId="phone:mueller-4711")
    drive = evening_s(b["pickup"]["expectedTime"]) - api.clock.now_s()
    with dispatcher_page(served) as page:
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        assert page.evaluate("document.body.dataset.calls") == "0"
        api.clock.set(evening_s(b["pickup"]["windowEnd"]) - drive + 120)  # leaving now: 2 min late
        assert api.runtime.service.retime_not_left()
        got = api.client.get(f"/v1/bookings/{b['id']}", headers=DISPATCHER).json()
        assert got["lateNotice"] is not None, got
        page.wait_for_selector(f"[data-call='{b['id']}']", timeout=10_000)
        call = page.locator(f"[data-call='{b['id']}']").inner_text()
        row = page.locator(f"tr[data-booking='{b['id']}'] [data-notice]").inner_text()
    assert "mueller-4711" in call and "the bus has not left yet" in call, call
    assert "pickup now" in call
    assert row.startswith("no app: call mueller-4711"), row


def test_the_page_lists_bookings_ahead_and_cancels_one(api: Api, served: str) -> None:
    """A rider books the next evening (ahead, on that night's store) and another rider
    tonight: the page lists the first under "booked ahead" with its night and window, not
    tonight's; the dispatcher cancels it there for the rider, and it is refunded."""
    ahead = api.booked(MARKT, OSTOENNEN, departureTime="2026-11-21T21:00:00+01:00")
    tonight = api.booked(STATION, AMPEN)
    with dispatcher_page(served) as page:
        page.on("dialog", lambda d: d.accept("the rider called"))
        row = f"#ahead tr[data-ahead-booking='{ahead['id']}']"
        page.wait_for_selector(row, timeout=30_000)
        text = page.locator(row).inner_text()
        listed = page.locator("#ahead tr[data-ahead-booking]").count()
        page.click(f"{row} button[data-cancel-for]")
        page.wait_for_function(
            "(document.body.dataset.actMsg || '').startsWith('cancelled')", timeout=10_000
        )
        page.wait_for_function(
            f"document.querySelector(\"{row}\").innerText.includes('CANCELLED')", timeout=10_000
        )
    assert listed == 1  # tonight's booking is in tonight's table only
    assert "2026-11-21" in text and "21:00" in text and "CONFIRMED" in text, text
    got = api.client.get(f"/v1/bookings/{ahead['id']}", headers=DISPATCHER).json()
    assert got["state"] == "CANCELLED" and got["serviceDate"] == "2026-11-21"
    ledger = api.client.get("/v1/ledger?serviceDate=2026-11-21", headers=DISPATCHER).json()
    assert sorted(e["kind"] for e in ledger["entries"]) == ["charge", "refund"]
    mine = api.client.get(f"/v1/bookings/{tonight['id']}", headers=DISPATCHER).json()
    assert mine["state"] == "CONFIRMED" and mine["serviceDate"] == "2026-11-20"
