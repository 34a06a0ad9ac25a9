"""Cassandra adapters of the scale stack: the session, schema migrations, the read
models (`readmodel.CassandraReadModel`) and the command store (reservations,
idempotent results, projection positions). Nothing here connects at import time."""
