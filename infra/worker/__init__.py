"""The projection worker: Kafka in, the same projections as the embedded mode, Cassandra out."""
