"""The kraft-* command-line tools, with Kafka's flags and output lines."""
