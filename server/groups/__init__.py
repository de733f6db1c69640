"""Consumer groups: the group coordinator and its records in ``__consumer_offsets`` (issue 12)."""
