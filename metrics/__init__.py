"""Prometheus metrics: definitions, per-exchange recording, and the scrape."""
