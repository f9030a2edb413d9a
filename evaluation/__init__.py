"""Offline evaluation: metrics, reports and benchmarks (never imported by the live server)."""
