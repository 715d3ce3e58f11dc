"""Instance files that are not in ../shared: either published format read from any file,
decimals rounded inwards, and the solver benchmark's ``--files``
(no ../shared needed: the files are examples written by the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def _write_cordeau(path: Path, n: int, rng: np.random.Generator) -> None:
    """A Cordeau-format file with decimals everywhere (windows, service times, L, T), as
    other dial-a-ride sets than the shipped "a" one have: an example made for the test."""
    lines = [f"3 {n} 480.5 4 45.25"]
    xy = rng.uniform(-10, 10, size=(2 * n, 2))
    lines.append("0 0.0 0.0 0 0 0.0 480.5")
    for i in range(2 * n):
        e = float(rng.uniform(0, 300)) + 0.37
        window = f"{e:.3f} {e + 15.5:.3f}" if i < n else "0 1440"
        load = 1 if i < n else -1
        lines.append(f"{i + 1} {xy[i, 0]:.3f} {xy[i, 1]:.3f} 2.5 {load} {window}")
    lines.append(f"{2 * n + 1} 0.0 0.0 0 0 0.0 480.5")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("seed", [1, 2])
def test_an_instance_file_with_decimals_loads_no_looser_and_solves(
    tmp_path: Path, seed: int
) -> None:
    """An unshipped Cordeau file with fractional windows, service times and limits: the
    integer problem is rounded inwards (never looser than the file; with int() truncation an
    earliest time of 12.37 became 12), and a solution of it passes the double-precision
    check against the exact distances."""
    from benchmarks.instances import SCALE, check_double, file_family, load_file
    from routing.checker import violations
    from routing.insertion import insert_all
    from routing.lns import LnsParams, improve

    path = tmp_path / "frac-12.txt"
    _write_cordeau(path, 12, np.random.default_rng(seed))
    assert file_family(path) == "darp"
    inst = load_file(path)
    assert inst.bks_cost is None and len(inst.problem.requests) == 12
    rows = [line.split() for line in path.read_text().splitlines()]
    for k, r in enumerate(inst.problem.requests):
        e, l_ = float(rows[k + 2][5]), float(rows[k + 2][6])
        lo, hi = r.pickup_window
        assert e * SCALE - 1e-6 <= lo < e * SCALE + 1 and l_ * SCALE - 1 < hi <= l_ * SCALE + 1e-6
        assert r.pickup_service_s == 2500 and r.max_ride_s == 45250
    assert inst.problem.vehicles[0].max_duration_s == 480500
    best = improve(
        inst.problem, insert_all(inst.problem), LnsParams(time_limit_s=None, max_steps=2000)
    )
    assert violations(inst.problem, best) == []
    assert check_double(inst, best) == []


def test_the_solver_benchmark_takes_files_and_names_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nachtbus bench solver --files``: a file not in ../shared is solved and checked (no
    best-known value: no gap); a broken file or a mix of formats is a usage error naming
    ``--files`` and the line."""
    import argparse

    from benchmarks.args import add_solver_arguments
    from benchmarks.solver import main_from_args

    def cli(*argv: str) -> int:
        ap = argparse.ArgumentParser()
        add_solver_arguments(ap)
        return main_from_args(ap.parse_args(list(argv)))

    good = tmp_path / "frac-6.txt"
    _write_cordeau(good, 6, np.random.default_rng(3))
    assert cli("--files", str(good), "--time-limit", "0.5", "--methods", "ours") == 0
    out = capsys.readouterr().out
    assert "frac-6" in out and "6/6" in out and " yes" in out
    bad = tmp_path / "bad.txt"
    bad.write_text(
        "2 1 480 3 30\n0 0 0 0 0 0 480\n1 1 1 3 1 0 x\n2 2 2 3 -1 0 1440\n3 0 0 0 0 0 480\n"
    )
    assert cli("--files", str(bad)) == 2
    assert "--files: bad.txt line 3: not a number" in capsys.readouterr().err
    lilim = tmp_path / "l.txt"
    lilim.write_text(
        "2\t10\t1\n0\t0\t0\t0\t0\t1000\t0\t0\t0\n1\t1\t1\t5\t0\t1000\t0\t0\t2\n2\t2\t2\t-5\t0\t1000\t0\t1\t0\n"
    )
    assert cli("--files", str(good), str(lilim)) == 2
    assert "mixes Cordeau and Li & Lim" in capsys.readouterr().err


def test_the_solver_benchmark_without_pyvrp_says_so_before_solving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyVRP comes with the ``bench`` extra only. Without it, Li & Lim files get the other
    columns and a line saying why PyVRP's is missing; asked for by ``--methods`` it is a usage
    error naming the option before anything is solved (it was a ModuleNotFoundError traceback
    after every other method had run)."""
    import argparse
    import sys

    from benchmarks.args import add_solver_arguments
    from benchmarks.solver import main_from_args

    monkeypatch.setitem(sys.modules, "pyvrp", None)  # what an install without the extra sees

    def cli(*argv: str) -> int:
        ap = argparse.ArgumentParser()
        add_solver_arguments(ap)
        return main_from_args(ap.parse_args(list(argv)))

    lilim = tmp_path / "l.txt"
    lilim.write_text(
        "2\t10\t1\n0\t0\t0\t0\t0\t1000\t0\t0\t0\n1\t1\t1\t5\t0\t1000\t0\t0\t2\n"
        "2\t2\t2\t-5\t0\t1000\t0\t1\t0\n"
    )
    assert cli("--files", str(lilim), "--methods", "ours,pyvrp", "--time-limit", "0.5") == 2
    captured = capsys.readouterr()
    assert "--methods: pyvrp is not installed" in captured.err and captured.out == ""
    assert cli("--files", str(lilim), "--time-limit", "0.5") == 0
    captured = capsys.readouterr()
    assert "PyVRP is not installed" in captured.err
    assert " ours " in captured.out and " plain " in captured.out and "pyvrp" not in captured.out
