"""nachtbus: dispatch and routing engine of the Soest on-demand night bus.

This package is the front door: domain types, units, errors, settings and the CLI. The road
network lives in :mod:`graphs`, shortest paths and solvers in :mod:`routing`.
"""

__version__ = "0.1.0"
