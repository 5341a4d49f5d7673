"""Benchmarks: how close agentflows gets to the cost of its model calls (`python -m benchmarks`)."""
