"""The AsyncAPI document: valid against the official 3.0.0 JSON Schema, every event with its routing key,
references that resolve, and the broker names the service declares."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from contracts import asyncapi as a
from contracts import events
from contracts.openapi import openapi
from service.adapters.rabbitmq.topology import DELIVERY_LIMIT, Topology

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_SCHEMA = ROOT / "build/asyncapi-specs/node_modules/@asyncapi/specs/schemas/3.0.0.json"
DEFINITIONS = ROOT / "deploy/rabbitmq/definitions.json"


def _offline(uri: str) -> Any:
    # The official file bundles every definition it refers to under its $id; nothing is fetched.
    raise LookupError(f"{uri} is not bundled in {OFFICIAL_SCHEMA.name}")


@pytest.fixture(scope="module")
def validator() -> jsonschema_rs.Validator:
    assert OFFICIAL_SCHEMA.is_file(), (
        f"{OFFICIAL_SCHEMA.relative_to(ROOT)} is missing: run `make asyncapi-schema` "
        "(npm installs the pinned @asyncapi/specs package, the AsyncAPI project's own schemas)"
    )
    schema = json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(schema, retriever=_offline, validate_formats=True)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return a.asyncapi()


def _errors(validator: jsonschema_rs.Validator, instance: Any) -> list[str]:
    return [f"/{'/'.join(map(str, e.instance_path))}: {e.message[:300]}" for e in validator.iter_errors(instance)]


def _pointer(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a reference inside the document"
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} does not resolve (at {part!r})"
        assert part in node, f"{ref} does not resolve (at {part!r})"
        node = node[part]
    return node


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _pointer(document, node["$ref"])
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_the_document_is_valid_asyncapi_3(validator: jsonschema_rs.Validator, document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert _errors(validator, document) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("channels", "checkout", "bindings", "amqp", "exchange", "type"), "fan-out"),
        (("channels", "checkoutQueue", "bindings", "amqp", "is"), "routingKey"),
        (("components", "messages", "SessionCreated", "correlationId", "location"), "header.correlation_id"),
        (("operations", "publishUpsellEvents", "bindings", "amqp", "deliveryMode"), 3),
        (("servers", "local", "protocol"), 5672),
    ],
)
def test_the_official_schema_catches_a_broken_document(
    validator: jsonschema_rs.Validator, document: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    broken = copy.deepcopy(document)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _errors(validator, broken) != []


def test_every_event_type_has_its_routing_key_and_payload(document: dict[str, Any]) -> None:
    for channel, exchange, types in [
        ("checkout", "checkout", events.INBOUND_TYPES),
        ("upsell", "upsell", events.OUTBOUND_TYPES),
    ]:
        described = document["channels"][channel]
        assert described["address"] == "{routingKey}"
        assert described["parameters"]["routingKey"]["enum"] == list(types)
        assert described["parameters"]["routingKey"]["location"] == "$message.payload#/type"
        assert described["bindings"]["amqp"]["exchange"]["name"] == exchange
        messages = [_resolve(document, ref) for ref in described["messages"].values()]
        assert sorted(m["name"] for m in messages) == sorted(types)
        for message in messages:
            assert message["bindings"]["amqp"]["messageType"] == message["name"]
            assert f"Routing key `{message['name']}` on the `{exchange}` exchange" in message["description"]
            payload = _resolve(document, message["payload"])
            assert payload["properties"]["type"] == {"enum": [message["name"]]}
            assert {"id", "type", "data"} <= set(payload["required"])


def test_the_service_consumes_the_inbound_types_and_publishes_the_outbound_ones(document: dict[str, Any]) -> None:
    def handled(operation: dict[str, Any]) -> list[str]:
        channel = _resolve(document, operation["channel"])
        names = []
        for ref in operation["messages"]:
            # An operation's messages must be its own channel's.
            assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/"), ref
            names.append(_resolve(document, ref)["name"])
        assert len(names) == len(channel["messages"])
        return names

    received = {name: op for name, op in document["operations"].items() if op["action"] == "receive"}
    sent = {name: op for name, op in document["operations"].items() if op["action"] == "send"}
    assert handled(received["consumeCheckoutEvents"]) == list(events.INBOUND_TYPES)
    assert handled(sent["publishUpsellEvents"]) == list(events.OUTBOUND_TYPES)
    assert handled(sent["deadLetterRefusedEvents"]) == ["dead_letter"]
    assert sent["publishUpsellEvents"]["bindings"]["amqp"]["deliveryMode"] == 2


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert len(refs) > 50
    for ref in refs:
        _pointer(document, ref)
    # The payloads are the contracts' schemas, each one used.
    schemas = set(document["components"]["schemas"])
    assert {kind.__name__ for kind in a.INBOUND + a.OUTBOUND} <= schemas
    assert schemas <= {ref.rsplit("/", 1)[1] for ref in refs if ref.startswith("#/components/schemas/")}


def test_correlation_ids_point_at_a_required_payload_field(document: dict[str, Any]) -> None:
    for name, message in document["components"]["messages"].items():
        if "correlationId" not in message:
            continue
        location = message["correlationId"]["location"]
        assert location.startswith("$message.payload#/"), name
        node = _resolve(document, message["payload"])
        for field in location.split("#/", 1)[1].split("/"):
            assert field in node["required"], f"{name}: {location} is optional at {field}"
            node = _resolve(document, node["properties"][field])
        assert node["type"] == "string", f"{name}: {location} is not a string"
    assert set(a.CORRELATION) == set(a.INBOUND + a.OUTBOUND)


def test_the_broker_names_are_those_the_service_declares(document: dict[str, Any]) -> None:
    topology = Topology()
    channels = document["channels"]

    def exchange(channel: str) -> dict[str, Any]:
        return dict(channels[channel]["bindings"]["amqp"]["exchange"])

    def queue(channel: str) -> str:
        return str(channels[channel]["bindings"]["amqp"]["queue"]["name"])

    assert exchange("checkout")["name"] == topology.inbound_exchange
    assert exchange("upsell")["name"] == topology.outbound_exchange
    assert exchange("deadLetter")["name"] == topology.dead_letter_exchange
    assert queue("checkoutQueue") == topology.queue_prefix + ".{partition}"
    assert queue("deadLetterQueue") == topology.dead_letter_queue
    queue_text = channels["checkoutQueue"]["description"]
    assert f"`{topology.partition_exchange}`, bound to `{topology.inbound_exchange}` by `{topology.binding}`" in (
        queue_text
    )
    assert f"redelivered {DELIVERY_LIMIT} times goes to `{topology.dead_letter_exchange}`" in queue_text
    definitions = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    declared = {e["name"]: e for e in definitions["exchanges"]}
    for channel in ("checkout", "upsell", "deadLetter"):
        described = exchange(channel)
        broker = declared[described["name"]]
        assert (described["type"], described["durable"], described["autoDelete"]) == (
            broker["type"],
            broker["durable"],
            broker["auto_delete"],
        )
    queues = {q["name"] for q in definitions["queues"]}
    assert queue("deadLetterQueue") in queues
    partitions = {queue("checkoutQueue").format(partition=p) for p in range(topology.partitions)}
    assert partitions == set(topology.partition_queues) <= queues


def test_the_openapi_document_lists_the_route() -> None:
    assert "/asyncapi.json" in openapi()["paths"]
