"""Kafka's binary protocol on a node (issue 18): the listener, its frames, the API table and
the handlers of the data and admin APIs. Codecs come from kio (generated from Kafka's JSON
message schemas); nothing here writes a message codec by hand."""
