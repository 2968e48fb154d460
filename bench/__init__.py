"""Benchmark scripts, one per hot path, each printing its numbers."""
