"""The benchmarks' command-line options, apart from the benchmarks themselves: the CLI builds its
parser from them without importing a solver (``nachtbus graph info`` loads no OR-Tools)."""

from __future__ import annotations

import argparse


def add_solver_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of ``nachtbus bench solver`` and ``python -m benchmarks.solver``."""
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--set",
        dest="family",
        choices=["darp", "lilim"],
        help="darp: 24 Cordeau dial-a-ride instances; lilim: 56 Li & Lim PDPTW (from ../shared)",
    )
    which.add_argument(
        "--files",
        nargs="+",
        metavar="FILE",
        help="instance files of one format instead (Cordeau 'm n T Q L' or Li & Lim 'K Q S' "
        "files, told apart by their first line); best-known values from a bks.csv beside them "
        "when it lists them",
    )
    ap.add_argument("--instances", help="comma-separated names (default: the whole set)")
    ap.add_argument(
        "--time-limit",
        type=float,
        default=20.0,
        help="seconds per instance and method (default 20)",
    )
    ap.add_argument(
        "--methods",
        default=None,
        help="comma-separated from ours,plain,pyvrp (default: ours,plain and, for lilim, pyvrp)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="instances solved at once (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
