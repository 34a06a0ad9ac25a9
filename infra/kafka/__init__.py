"""Kafka as the event log: one topic per stream, keyed by aggregate id."""
