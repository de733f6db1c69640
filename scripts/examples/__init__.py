"""Runnable examples on the project's Python client (the weather pipeline: weather.py)."""
