"""The admin APIs of the Kafka listener (helper E builds them)."""

from server.kafka.apis import ApiSpec

ADMIN_APIS: tuple[ApiSpec, ...] = ()
