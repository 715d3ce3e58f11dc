"""Service rules: windows, ride limits, and the policy file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatch.policies import RequestWindows, ServicePolicy
from nachtbus.domain import Rejection, RejectionReason
from nachtbus.errors import ConfigError
from tests.helpers import request

NOW = 22 * 3600


def test_ride_limit_is_alpha_direct_plus_beta() -> None:
    p = ServicePolicy(detour_alpha=1.5, detour_beta_s=300)
    assert p.max_ride_s(600) == 1200
    assert p.dwell(0) == p.dwell_s and p.dwell(2) == p.dwell_s + 2 * p.wheelchair_dwell_s


def test_immediate_and_prebooked_windows() -> None:
    p = ServicePolicy(max_wait_s=900, prebook_window_s=600)
    now = p.windows(request("a", 1, 2, NOW), 300, NOW)
    assert not isinstance(now, Rejection)
    assert (now.pickup_earliest_s, now.pickup_latest_s, now.prebooked) == (NOW, NOW + 900, False)
    later = p.windows(request("b", 1, 2, NOW, at=NOW + 3600), 300, NOW)
    assert not isinstance(later, Rejection)
    assert (later.pickup_earliest_s, later.pickup_latest_s) == (NOW + 3600, NOW + 4200)


def test_a_pickup_asked_for_a_few_minutes_ahead_keeps_a_whole_window() -> None:
    """Asked for 10 min from now (inside the 15 min wait): the window does not shrink to the
    5 min left of the wait but keeps the pre-booked 10 min; a far pickup asked 20 min ahead
    (inside its 25 min wait) likewise; further ahead it is the ordinary pre-booked window."""
    p = ServicePolicy(max_wait_s=900, prebook_window_s=600, far_max_wait_s=1500)
    soon = p.windows(request("a", 1, 2, NOW, at=NOW + 600), 300, NOW)
    assert not isinstance(soon, Rejection)
    assert (soon.pickup_earliest_s, soon.pickup_latest_s) == (NOW + 600, NOW + 1200)
    far = p.windows(request("b", 1, 2, NOW, at=NOW + 1200), 300, NOW, far=True)
    assert not isinstance(far, Rejection)
    assert (far.pickup_earliest_s, far.pickup_latest_s) == (NOW + 1200, NOW + 1800)
    just = p.windows(request("c", 1, 2, NOW, at=NOW + 120), 300, NOW)
    assert not isinstance(just, Rejection)
    assert (just.pickup_earliest_s, just.pickup_latest_s) == (NOW + 120, NOW + 900)


def test_told_ahead_a_pickup_keeps_the_window_of_asking_then() -> None:
    """prebook_window_as_asked: a later pickup gets the wait of a rider asking at that time
    (15 min, 25 min far out), however far ahead; the same windows as asking then."""
    p = ServicePolicy(max_wait_s=900, far_max_wait_s=1500, prebook_window_as_asked=True)
    for at, far in ((NOW + 300, False), (NOW + 3600, False), (NOW + 3600, True)):
        told = p.windows(request("a", 1, 2, NOW, at=at), 300, NOW, far=far)
        then = p.windows(request("a", 1, 2, at), 300, at, far=far)
        assert not isinstance(told, Rejection) and not isinstance(then, Rejection)
        assert told.prebooked and not then.prebooked
        assert (told.pickup_earliest_s, told.pickup_latest_s) == (
            then.pickup_earliest_s,
            then.pickup_latest_s,
        )
        assert told.pickup_latest_s - told.pickup_earliest_s == (1500 if far else 900)


@given(
    ahead=st.integers(0, 3 * 3600),
    direct=st.integers(120, 2400),
    far=st.booleans(),
    as_asked=st.booleans(),
)
def test_an_arrive_by_trip_is_never_promised_after_its_arrival(
    ahead: int, direct: int, far: bool, as_asked: bool
) -> None:
    """Whenever it is asked, every window an arrive-by trip may get promises the arrival by
    then (latest pickup plus ride limit), with a ride limit of at least the direct ride; it is
    refused only when the direct ride from now is too late. Asked further ahead than a wait,
    window and ride limit are the rule's own; asked soon, the first try shares what is left
    beyond the direct ride between window and detour alike, the second leaves only the
    direct ride (and its dwell) and so the longest window."""
    p = ServicePolicy(prebook_window_as_asked=as_asked, far_max_wait_s=1500)
    arrive = NOW + ahead
    asked = max(p.arrive_by_pickup_s(arrive, direct), NOW)
    r = request("a", 1, 2, NOW, at=asked)
    w = p.windows(r, direct, NOW, far=far)
    assert isinstance(w, RequestWindows)
    got = p.arrive_by_windows(r, w, arrive, direct)
    if NOW + direct > arrive:
        assert isinstance(got, Rejection) and got.reason == RejectionReason.NO_VEHICLE_IN_TIME
        return
    assert isinstance(got, tuple) and 1 <= len(got) <= 2
    for g in got:
        assert g.pickup_latest_s + g.max_ride_s <= arrive
        assert g.pickup_earliest_s == w.pickup_earliest_s <= g.pickup_latest_s <= w.pickup_latest_s
        assert direct <= g.max_ride_s <= p.max_ride_s(direct)
    if asked > NOW + 1500 and not as_asked:  # pre-booked: the rule's window and ride limit
        assert got == (w,)
        assert w.pickup_latest_s == arrive - p.max_ride_s(direct)
    if got == (w,):
        return
    first, last = got[0], got[-1]
    spare = arrive - w.pickup_earliest_s - direct
    window, detour = w.pickup_latest_s - w.pickup_earliest_s, w.max_ride_s - direct
    got_window = first.pickup_latest_s - first.pickup_earliest_s
    got_detour = first.max_ride_s - direct
    assert got_window + got_detour == spare
    assert abs(got_window * detour - got_detour * window) <= window + detour
    direct_only = max(
        w.pickup_earliest_s, min(w.pickup_latest_s, arrive - direct - w.pickup_dwell_s)
    )
    assert last.pickup_latest_s == max(direct_only, first.pickup_latest_s)


def test_last_pickup_is_capped_at_service_end() -> None:
    p = ServicePolicy(service_end_s=29 * 3600, max_wait_s=900)
    w = p.windows(request("a", 1, 2, 29 * 3600 - 300), 300, 29 * 3600 - 300)
    assert not isinstance(w, Rejection) and w.pickup_latest_s == 29 * 3600


def test_rejections_carry_reason_codes() -> None:
    p = ServicePolicy()
    r = p.windows(request("a", 1, 2, NOW, passengers=9), 300, NOW)
    assert isinstance(r, Rejection) and r.reason == RejectionReason.TOO_MANY_TRAVELLERS
    assert "at most 6" in r.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[policy]\nmax_wait_s = -1\n", "max_wait_s"),
        ("[policy]\ndetour_alpha = 0.5\n", "detour_alpha"),
        ("[policy]\nmax_wait = 300\n", "max_wait"),
        ("[policy]\nmax_wait_s = 'soon'\n", "max_wait_s"),
        ("[policy]\nmax_wait_s = 12.5\n", "max_wait_s"),
        ("[policy]\nprebook_window_as_asked = 1\n", "prebook_window_as_asked"),
        ("[policy]\nservice_end_s = 3600\n", "service_end_s"),
    ],
)
def test_bad_policy_file_names_the_setting(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "policy.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        ServicePolicy.from_toml(f)
    assert err.value.field == field
    assert str(f) in str(err.value)


def test_good_policy_file_loads(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text("[policy]\nmax_wait_s = 600\ndetour_alpha = 2\nprebook_window_as_asked = true\n")
    p = ServicePolicy.from_toml(f)
    assert p.max_wait_s == 600 and p.detour_alpha == 2 and p.prebook_window_as_asked is True
