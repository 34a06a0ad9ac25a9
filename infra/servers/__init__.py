"""Launchers for the real servers of the scale stack (Kafka, Cassandra, Redis, S3)."""
