"""Fares, the billing ledger and the CO2 account: the money and emissions of the service.

A room of its own above the domain types: it knows bookings, fares and driven legs, never the
road network, the solvers, the store or HTTP.
"""
