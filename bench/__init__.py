"""Benchmarks: run as `python -m bench` (not part of `make test`)."""
