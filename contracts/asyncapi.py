"""The AsyncAPI 3.0 document of the events on RabbitMQ, built from the contract Structs.

The broker's names are those the service declares (`service/adapters/rabbitmq/topology.py`, also in
`deploy/rabbitmq/definitions.json`); contracts import no service code, so a test holds them equal.
"""

from __future__ import annotations

from typing import Any

import msgspec

from contracts import events as e
from contracts.openapi import VERSION

INBOUND_EXCHANGE = "checkout"
OUTBOUND_EXCHANGE = "upsell"
DEAD_LETTER_EXCHANGE = "upsell.dead-letter"
PARTITION_EXCHANGE = "upsell.checkout.partitions"
QUEUE = "upsell.checkout.{partition}"
QUEUE_BINDING = "checkout.session.*"
DEAD_LETTER_QUEUE = "upsell.checkout.dead-letter"
DELIVERY_LIMIT = 20
AMQP_BINDINGS = "0.3.0"
"""The version of AsyncAPI's AMQP 0-9-1 bindings that the `bindings` objects follow."""

CORRELATION: dict[type[Any], str] = {
    e.SessionCreated: "id",
    e.SessionPaymentSucceeded: "session",
    e.SessionExpired: "session",
    e.UpsellEvaluated: "id",
    e.LineItemsUpdated: "id",
    e.SessionCompleted: "id",
    e.SubscriptionProductSwitched: "subscription",
    e.UpgradeOrderCreated: "subscription",
}
"""The field of `data` whose value the AMQP `correlation_id` carries: the session's or subscription's id."""

INBOUND: tuple[type[Any], ...] = e.InboundEvent.__args__
OUTBOUND: tuple[type[Any], ...] = e.OutboundEvent.__args__

_PROPERTIES = (
    "AMQP properties: `message_id` is the envelope's `id` (an event sent again keeps it, so a consumer drops "
    "duplicates by it), `type` is the envelope's `type`, `content_type` is `application/json`, `delivery_mode` "
    "is 2 (persistent), `timestamp` is set, and `correlation_id` is the value that `correlationId` points at."
)

_DEAD_LETTER_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "Application headers of a dead letter, beside the headers the message came with.",
    "properties": {
        "x-upsell-reason": {
            "type": "string",
            "description": "A stable code: `malformed_json`, `unknown_event_type`, `invalid_event`, "
            "`processing_failed`, or the code of the rule that refused the event.",
        },
        "x-upsell-detail": {"type": "string", "description": "What was wrong, for a person to read."},
        "x-upsell-dead-lettered-at": {"type": "string", "format": "date-time"},
        "x-original-routing-key": {"type": "string", "description": "The routing key the message came with."},
    },
}


def _tag(kind: type[Any]) -> str:
    return str(kind.__struct_config__.tag)


def _message(kind: type[Any], exchange: str) -> dict[str, Any]:
    tag = _tag(kind)
    return {
        "name": tag,
        "title": kind.__name__,
        "summary": (kind.__doc__ or "").strip(),
        "description": f"Routing key `{tag}` on the `{exchange}` exchange. {_PROPERTIES}",
        "contentType": "application/json",
        "correlationId": {
            "location": f"$message.payload#/data/{CORRELATION[kind]}",
            "description": "Also the AMQP `correlation_id` property of the message.",
        },
        "payload": {"$ref": f"#/components/schemas/{kind.__name__}"},
        "bindings": _amqp(messageType=tag),
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead_letter",
        "title": "DeadLetter",
        "summary": "An inbound message the service refused, kept with the reason.",
        "description": "Body, routing key and the AMQP properties `message_id`, `type`, `correlation_id`, "
        "`content_type` and `timestamp` are those of the refused message; `delivery_mode` is 2. A message the "
        f"broker dead-lettered after {DELIVERY_LIMIT} redeliveries carries the broker's `x-death` header "
        "instead of the `x-upsell-*` ones.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The refused message's body as it came (it need not be JSON)."},
    }


def _amqp(**fields: Any) -> dict[str, Any]:
    return {"amqp": {**fields, "bindingVersion": AMQP_BINDINGS}}


def _refs(kinds: tuple[type[Any], ...], prefix: str) -> dict[str, Any]:
    return {kind.__name__: {"$ref": f"{prefix}/{kind.__name__}"} for kind in kinds}


def _exchange(name: str, kind: str) -> dict[str, Any]:
    exchange = {"name": name, "type": kind, "durable": True, "autoDelete": False, "vhost": "/"}
    return _amqp(**{"is": "routingKey", "exchange": exchange})


def _queue(name: str) -> dict[str, Any]:
    queue = {"name": name, "durable": True, "exclusive": False, "autoDelete": False, "vhost": "/"}
    return _amqp(**{"is": "queue", "queue": queue})


def _routing_key(kinds: tuple[type[Any], ...]) -> dict[str, Any]:
    return {
        "routingKey": {
            "description": "The routing key is the event's type, the envelope's `type`.",
            "enum": [_tag(kind) for kind in kinds],
            "location": "$message.payload#/type",
        }
    }


def _channels() -> dict[str, Any]:
    messages = "#/components/messages"
    dead_letter = {"DeadLetter": {"$ref": f"{messages}/DeadLetter"}}
    return {
        "checkout": {
            "address": "{routingKey}",
            "title": f"Inbound events: the `{INBOUND_EXCHANGE}` exchange",
            "description": f"A durable topic exchange. A backend publishes each event with its type as the "
            f"routing key and `correlation_id` set to the session's id; the service's partition queues "
            f"`{QUEUE}` receive `{QUEUE_BINDING}`.",
            "parameters": _routing_key(INBOUND),
            "messages": _refs(INBOUND, messages),
            "bindings": _exchange(INBOUND_EXCHANGE, "topic"),
        },
        "checkoutQueue": {
            "address": QUEUE,
            "title": f"The service's partition queues `{QUEUE}`",
            "description": f"Quorum queues behind `{INBOUND_EXCHANGE}`: the consistent-hash exchange "
            f"`{PARTITION_EXCHANGE}`, bound to `{INBOUND_EXCHANGE}` by `{QUEUE_BINDING}`, spreads the events "
            "over them by `correlation_id`, so that the events of one session land in one queue, which one "
            "replica consumes at a time (an event without `correlation_id` is taken, with no order kept across "
            f"partitions). A message redelivered {DELIVERY_LIMIT} times goes to `{DEAD_LETTER_EXCHANGE}` (at "
            "least once); a full queue refuses publishes.",
            "parameters": {
                "partition": {
                    "description": "The partition, from 0 to `UPSELL_PARTITIONS` - 1 (16 by default).",
                    "examples": ["0", "15"],
                }
            },
            "messages": _refs(INBOUND, messages),
            "bindings": _queue(QUEUE),
        },
        "upsell": {
            "address": "{routingKey}",
            "title": f"Outbound events: the `{OUTBOUND_EXCHANGE}` exchange",
            "description": "A durable topic exchange; each consumer (fulfillment, say) binds its own queue by "
            "routing key. The broker drops an event that no queue is bound for.",
            "parameters": _routing_key(OUTBOUND),
            "messages": _refs(OUTBOUND, messages),
            "bindings": _exchange(OUTBOUND_EXCHANGE, "topic"),
        },
        "deadLetter": {
            "address": None,
            "title": f"Refused messages: the `{DEAD_LETTER_EXCHANGE}` exchange",
            "description": "A durable fanout exchange: the routing key, kept from the refused message, plays "
            f"no part. It is also the dead-letter exchange of `{QUEUE}`.",
            "messages": dead_letter,
            "bindings": _exchange(DEAD_LETTER_EXCHANGE, "fanout"),
        },
        "deadLetterQueue": {
            "address": DEAD_LETTER_QUEUE,
            "title": f"The dead-letter queue `{DEAD_LETTER_QUEUE}`",
            "description": f"A quorum queue bound to `{DEAD_LETTER_EXCHANGE}`: it keeps the refused messages "
            "for an operator to look at.",
            "messages": dead_letter,
            "bindings": _queue(DEAD_LETTER_QUEUE),
        },
    }


def _operations() -> dict[str, Any]:
    return {
        "consumeCheckoutEvents": {
            "action": "receive",
            "channel": {"$ref": "#/channels/checkoutQueue"},
            "summary": "Apply the inbound events.",
            "description": "A message is acknowledged after its effects and the events it causes are committed "
            "in one transaction; a delivery repeated with the same `id` has one effect. Bad input (not JSON, an "
            "unknown type, an invalid envelope, or refused by a rule) is published to "
            f"`{DEAD_LETTER_EXCHANGE}` with the reason, then acknowledged.",
            "messages": list(_refs(INBOUND, "#/channels/checkoutQueue/messages").values()),
            "bindings": _amqp(ack=True),
        },
        "publishUpsellEvents": {
            "action": "send",
            "channel": {"$ref": "#/channels/upsell"},
            "summary": "Publish what happened, from the transactional outbox.",
            "description": "An event is published, with publisher confirms, after the transaction that made "
            "it commits; one not confirmed is published again with the same `id`.",
            "messages": list(_refs(OUTBOUND, "#/channels/upsell/messages").values()),
            "bindings": _amqp(deliveryMode=2, mandatory=False, timestamp=True),
        },
        "deadLetterRefusedEvents": {
            "action": "send",
            "channel": {"$ref": "#/channels/deadLetter"},
            "summary": "Set a refused inbound message aside, with the reason in its headers.",
            "description": "Published with publisher confirms before the refused message is acknowledged.",
            "messages": [{"$ref": "#/channels/deadLetter/messages/DeadLetter"}],
            "bindings": _amqp(deliveryMode=2, timestamp=True),
        },
    }


def asyncapi() -> dict[str, Any]:
    kinds = sorted(INBOUND + OUTBOUND, key=lambda kind: kind.__name__)
    _, schemas = msgspec.json.schema_components(kinds, ref_template="#/components/schemas/{name}")
    messages = {kind.__name__: _message(kind, INBOUND_EXCHANGE) for kind in INBOUND}
    messages |= {kind.__name__: _message(kind, OUTBOUND_EXCHANGE) for kind in OUTBOUND}
    messages["DeadLetter"] = _dead_letter_message()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Checkout upsell service",
            "version": VERSION,
            "description": "The events the service consumes and publishes on RabbitMQ. Every event is an "
            'envelope `{"id", "type", "version": 1, "created", "data"}`; its `type` is also its routing key.',
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:5672",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "description": "The default of `UPSELL_AMQP_URL` (virtual host `/`).",
                "security": [{"$ref": "#/components/securitySchemes/userPassword"}],
            }
        },
        "channels": _channels(),
        "operations": _operations(),
        "components": {
            "schemas": {**schemas, "DeadLetterHeaders": _DEAD_LETTER_HEADERS},
            "messages": messages,
            "securitySchemes": {
                "userPassword": {"type": "userPassword", "description": "The user and password of the AMQP URL."}
            },
        },
    }
