"""Kafka's on-disk formats (record batches, segments, indexes, checkpoints, recovery)
and the tools that work on files."""
