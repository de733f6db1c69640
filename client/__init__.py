"""Speaks only HTTP: the wire contract (protocol.py), a Python client, and the
command-line tools."""
