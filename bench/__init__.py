"""Benchmarks: run by hand, print figures; never part of the test suite."""
