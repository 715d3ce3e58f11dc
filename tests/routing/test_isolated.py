"""A search in a child process: the same answer as in this one, and a child that ends when it
should (crash, overrun, close), checked by pid."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from routing import isolated
from routing.checker import violations
from routing.insertion import insert_all
from routing.ortools_pdp import OrToolsParams
from routing.ortools_pdp import solve as ortools_solve
from routing.solver import SolveParams, solve
from tests.routing.test_solver import _problem

FEW = OrToolsParams(time_limit_s=30.0, solution_limit=30, metaheuristic="GREEDY_DESCENT")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


@pytest.fixture(autouse=True)
def _no_child_left() -> Iterator[None]:
    yield
    pid = isolated.child_pid()
    isolated.close()
    assert pid is None or not _alive(pid)


def test_an_isolated_ortools_solve_gives_the_same_routes_in_a_child_process() -> None:
    """Solution limits make OR-Tools reproducible: the child's answer is the parent's."""
    p = _problem(10)
    start = insert_all(p)
    here = ortools_solve(p, FEW, start)
    there = isolated.run_isolated(ortools_solve, p, FEW, start, timeout_s=120)
    assert here is not None and there is not None
    assert there.routes == here.routes and violations(p, there) == []
    pid = isolated.child_pid()
    assert pid is not None and pid != os.getpid() and _alive(pid)


def test_the_front_door_runs_ortools_isolated_when_asked() -> None:
    p = _problem(10)
    plain = solve(p, SolveParams(ortools=FEW))
    iso = solve(p, SolveParams(ortools=OrToolsParams(**{**FEW.__dict__, "isolated": True})))
    assert plain is not None and iso is not None and iso.routes == plain.routes
    assert iso.info.get("ortools") == plain.info.get("ortools")
    assert isolated.child_pid() is not None


def test_the_child_is_kept_for_the_next_call_and_stops_on_close() -> None:
    isolated.run_isolated(abs, -3, timeout_s=60)
    pid = isolated.child_pid()
    assert isolated.run_isolated(abs, -4, timeout_s=60) == 4
    assert isolated.child_pid() == pid
    isolated.close()
    assert isolated.child_pid() is None and pid is not None and not _alive(pid)


def test_an_exception_in_the_child_is_raised_in_the_parent() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        isolated.run_isolated(int, "seven", timeout_s=60)
    assert isolated.run_isolated(int, "7", timeout_s=60) == 7


def test_a_child_that_dies_mid_call_gives_none_and_the_next_call_a_new_child() -> None:
    """As a native crash of the solver would: the round loses its search, not the service."""
    isolated.run_isolated(abs, 1, timeout_s=60)
    first = isolated.child_pid()
    assert isolated.run_isolated(os._exit, 3, timeout_s=60) is None
    assert first is not None and not _alive(first)
    assert isolated.run_isolated(abs, -5, timeout_s=60) == 5
    assert isolated.child_pid() not in (None, first)


def test_a_call_that_overruns_its_timeout_is_stopped() -> None:
    isolated.run_isolated(abs, 1, timeout_s=60)  # the child is up: the timeout is the call's
    pid = isolated.child_pid()
    assert isolated.run_isolated(time.sleep, 60, timeout_s=0.5) is None
    assert pid is not None and not _alive(pid) and isolated.child_pid() is None
