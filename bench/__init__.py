"""Benchmarks: each module runs with `python -m bench.NAME`; `python -m bench` runs all."""
