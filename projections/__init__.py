"""Pure projections: event (+ reads through a port) -> operations on read-model tables.

Storage adapters (infra/) apply the operations; the same functions run in the
embedded process and in the Faust workers.
"""
