"""The examples' topics: created when missing, as a pipeline's setup step would."""

from __future__ import annotations

import sys

from client.admin import AsyncAdmin
from client.protocol import TOPIC_ALREADY_EXISTS, ApiError

# A topic's replicas: three where the cluster has three brokers or more (the launcher's
# min.insync.replicas=2 then lets a node die without stopping writes), else every broker.
REPLICATION_FACTOR_MAX = 3


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Creates each of ``topics`` that does not exist yet, with ``partitions`` partitions and
    min(3, brokers) replicas, printing Kafka's "Created topic T." to stderr; a topic that
    exists (made by hand, or by the other script a moment ago) is used as it is."""
    async with AsyncAdmin(bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if not missing:
            return
        brokers = len((await admin.describe_cluster()).get("brokers") or [])
        replicas = max(1, min(REPLICATION_FACTOR_MAX, brokers))
        for topic in missing:
            try:
                await admin.create_topic(topic, partitions, replicas)
            except ApiError as e:
                if e.code != TOPIC_ALREADY_EXISTS.code:
                    raise
                continue
            print(f"Created topic {topic}.", file=sys.stderr, flush=True)
