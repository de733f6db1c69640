"""``DELETE /v1/brokers/{broker}``: Kafka's UnregisterBroker (``kraft-cluster unregister``).

Written through the controller as every admin call is (``_admin``: planned on the controller,
forwarded there from any other node); the decision is ``server/broker_admin.py``'s pure plan.
"""

from __future__ import annotations

from aiohttp import web

from server.broker_admin import plan_unregister_broker
from server.http_api import _admin
from server.http_util import path_int


async def unregister_broker(request: web.Request) -> web.Response:
    """204 once the broker's registration is gone; 404 BROKER_ID_NOT_REGISTERED for an id no
    broker has; 400 INVALID_REQUEST while a partition lists it among its replicas."""
    broker_id = path_int(request, "broker")
    forwarded = await _admin(request, None, lambda s: plan_unregister_broker(s, broker_id))
    return forwarded or web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_delete("/v1/brokers/{broker}", unregister_broker)
