"""scripts/bench/vs-kafka: the side-by-side harness against Kafka 4.4.0 (docs/benchmarks.md)."""
