"""Benchmarks live here (make bench); see README."""
