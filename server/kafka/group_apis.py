"""Kafka's group APIs on the Kafka listener, over the group coordinator (server/groups/)."""

from __future__ import annotations

from server.kafka.apis import ApiSpec

GROUP_APIS: tuple[ApiSpec, ...] = ()
