"""Fault tests: killed workers, lost Redis, database outages, engine crashes, receivers down."""
