"""The OpenAPI 3.1 document of the HTTP interface, built from the contract Structs."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from contracts import catalog as c
from contracts import sessions as s
from contracts import subscriptions as sub
from contracts.problems import Problem

VERSION = "1"
"""The interface's version, in the OpenAPI and the AsyncAPI document alike."""

# (method, path, summary, roles, request body, answer body, success status)
Operation = tuple[str, str, str, str, type[Any] | None, type[Any] | None, int]

OPERATIONS: list[Operation] = [
    ("put", "/v1/products/{id}", "Create or replace a product", "admin", c.Product, c.Product, 200),
    ("get", "/v1/products/{id}", "Read a product", "admin", None, c.Product, 200),
    ("put", "/v1/prices/{id}", "Create or replace a price", "admin", c.Price, c.Price, 200),
    ("get", "/v1/prices/{id}", "Read a price", "admin", None, c.Price, 200),
    (
        "put",
        "/v1/prices/{id}/upsell",
        "Set the upsell of a price (422 lists every broken rule)",
        "admin",
        c.UpsellPair,
        c.Price,
        200,
    ),
    (
        "delete",
        "/v1/prices/{id}/upsell",
        "Remove the upsell of a price (new sessions only)",
        "admin",
        None,
        c.Price,
        200,
    ),
    ("put", "/v1/coupons/{id}", "Create or replace a coupon", "admin", c.Coupon, c.Coupon, 200),
    ("get", "/v1/coupons/{id}", "Read a coupon", "admin", None, c.Coupon, 200),
    (
        "put",
        "/v1/promotion-codes/{id}",
        "Create or replace a promotion code",
        "admin",
        c.PromotionCode,
        c.PromotionCode,
        200,
    ),
    ("get", "/v1/promotion-codes/{id}", "Read a promotion code", "admin", None, c.PromotionCode, 200),
    (
        "post",
        "/v1/checkout/sessions",
        "Register a checkout session",
        "backend",
        s.SessionInput,
        s.CreatedSession,
        201,
    ),
    (
        "get",
        "/v1/checkout/sessions/{id}",
        "Read a session",
        "backend or client secret",
        None,
        s.SessionView,
        200,
    ),
    (
        "post",
        "/v1/checkout/sessions/{id}/upsell",
        "Select or unselect the upsell",
        "backend or client secret",
        s.UpsellToggle,
        s.SessionView,
        200,
    ),
    (
        "post",
        "/v1/checkout/sessions/{id}/complete",
        "Complete a paid session (idempotent)",
        "backend",
        s.CompleteRequest,
        s.CompletedSession,
        200,
    ),
    (
        "post",
        "/v1/checkout/sessions/{id}/client-secret",
        "Issue a new client secret",
        "backend",
        None,
        s.ClientSecret,
        200,
    ),
    ("put", "/v1/upgrade-paths/{id}", "Create or replace an upgrade path", "admin", c.UpgradePath, c.UpgradePath, 200),
    ("get", "/v1/upgrade-paths/{id}", "Read an upgrade path", "admin", None, c.UpgradePath, 200),
    ("post", "/v1/api-keys", "Create an API key (its secret is shown once)", "admin", sub.ApiKeyInput, sub.ApiKey, 201),
    ("delete", "/v1/api-keys/{id}", "Revoke an API key", "admin", None, None, 204),
    (
        "put",
        "/v1/subscriptions/{id}",
        "Create or replace a subscription's mirror",
        "backend",
        sub.Subscription,
        sub.Subscription,
        200,
    ),
    ("get", "/v1/subscriptions/{id}", "Read a subscription", "backend", None, sub.Subscription, 200),
    (
        "get",
        "/v1/subscriptions/{id}/change-options",
        "Plans of the plan group with previews (query `at`: RFC 3339, default now)",
        "backend, operator",
        None,
        sub.ChangeOptions,
        200,
    ),
    (
        "post",
        "/v1/subscriptions/{id}/change-preview",
        "Preview one change (query `at`: RFC 3339, default now)",
        "backend, operator",
        sub.ChangePreviewRequest,
        sub.ChangeOption,
        200,
    ),
    (
        "post",
        "/v1/subscriptions/{id}/product-switch",
        "Switch to another product at the next billing date",
        "backend, operator",
        sub.ProductSwitchRequest,
        sub.ProductSwitched,
        200,
    ),
    (
        "post",
        "/v1/subscriptions/{id}/upgrade-orders",
        "Place an upgrade order on the customer's behalf (header `Idempotency-Key` makes a retry safe)",
        "operator",
        sub.UpgradeOrderRequest,
        sub.UpgradeOrder,
        201,
    ),
    (
        "post",
        "/v1/upgrade-paths/{id}/links",
        "Create a signed, expiring, single-use upgrade link",
        "backend, operator",
        sub.UpgradeLinkRequest,
        sub.UpgradeLink,
        201,
    ),
    (
        "get",
        "/v1/upgrade-links/{token}",
        "Open an upgrade link",
        "anyone with the token",
        None,
        sub.UpgradeLinkView,
        200,
    ),
    (
        "post",
        "/v1/upgrade-links/{token}/accept",
        "Accept an upgrade link: places the order",
        "anyone with the token",
        sub.UpgradeLinkAccept,
        sub.UpgradeOrder,
        201,
    ),
    (
        "get",
        "/v1/reports/summary",
        "First purchases, upgrades and upsells per currency over [from, to) (query `from`, `to`: RFC 3339)",
        "viewer",
        None,
        sub.Report,
        200,
    ),
]


_ID = msgspec.json.schema(c.Id)
_PATH_KEYS: dict[str, dict[str, Any]] = {
    "id": _ID,
    # `<link id>.<signature>`: base64url text and a dot.
    "token": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "^[A-Za-z0-9_.\\-]+$"},
}
_INSTANT = {"type": "string", "format": "date-time"}


def _query(name: str, required: bool, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": _INSTANT, "description": description}


_AT = _query("at", False, "The instant the answer is for (RFC 3339 with a time zone); now by default.")
QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("get", "/v1/subscriptions/{id}/change-options"): [_AT],
    ("post", "/v1/subscriptions/{id}/change-preview"): [_AT],
    ("get", "/v1/reports/summary"): [
        _query("from", True, "Start of the range, included (RFC 3339 with a time zone)."),
        _query("to", True, "End of the range, excluded; after `from`."),
    ],
}
IDEMPOTENT = {
    ("post", "/v1/checkout/sessions"),
    ("post", "/v1/checkout/sessions/{id}/complete"),
    ("post", "/v1/api-keys"),
    ("post", "/v1/subscriptions/{id}/upgrade-orders"),
    ("post", "/v1/upgrade-paths/{id}/links"),
}
"""The POSTs that create or complete, which take an Idempotency-Key."""
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key and body gets the first answer again (kept 24 hours, header "
    "Idempotent-Replayed: true); the same key with another request is 422 idempotency_key_reused.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}


def _ref(kind: type[Any]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def _operation(op: Operation) -> dict[str, Any]:
    method, path, summary, roles, request, answer, status = op
    ok = (
        {"description": "OK", "content": {"application/json": {"schema": _ref(answer)}}}
        if answer
        else {"description": "OK"}
    )
    responses: dict[str, Any] = {str(status): ok}
    if method == "put":
        # Idempotent upserts: 201 when the resource was created, 200 when it was replaced or unchanged.
        responses = {"200": ok, "201": {**ok, "description": "Created"}}
    responses["default"] = {
        "description": "A problem",
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }
    body: dict[str, Any] = {
        "summary": summary,
        "description": f"Who: {roles}.",
        # Upgrade links carry their own signed token in the path; they take no bearer token.
        "security": [] if roles == "anyone with the token" else [{"bearer": []}],
        "responses": responses,
    }
    parameters = [
        {"name": n, "in": "path", "required": True, "schema": _PATH_KEYS[n]} for n in re.findall(r"{(\w+)}", path)
    ]
    parameters += QUERIES.get((method, path), [])
    if (method, path) in IDEMPOTENT:
        parameters.append(_IDEMPOTENCY_KEY)
    if parameters:
        body["parameters"] = parameters
    if request is not None:
        body["requestBody"] = {
            "required": method != "post" or not path.endswith(("/complete", "/accept")),
            "content": {"application/json": {"schema": _ref(request)}},
        }
    return body


def _ops_paths() -> dict[str, Any]:
    plain = {"200": {"description": "OK"}, "503": {"description": "Not ready"}}
    return {
        p: {"get": {"summary": summary, "responses": plain}}
        for p, summary in [
            ("/livez", "The process is alive"),
            ("/readyz", "The database and the broker are reachable"),
            ("/metrics", "Prometheus metrics"),
            ("/openapi.json", "This document"),
            ("/asyncapi.json", "The AsyncAPI 3.0 document of the events consumed and published"),
        ]
    }


def _element_path() -> dict[str, Any]:
    script = {"text/javascript": {"schema": {"type": "string"}}}
    return {
        "get": {
            "summary": "The <upsell-offer> component: a classic script with no dependencies",
            "description": "Who: anyone; CORS for the origins of UPSELL_CORS_ORIGINS. Cached for 300 s, then "
            "revalidated with If-None-Match against its ETag.",
            "security": [],
            "responses": {
                "200": {"description": "The script", "content": script},
                "304": {"description": "The copy of the ETag sent is current"},
            },
        }
    }


def openapi() -> dict[str, Any]:
    kinds = {k for op in OPERATIONS for k in op[4:6] if k is not None} | {Problem}
    _, components = msgspec.json.schema_components(
        sorted(kinds, key=lambda k: k.__name__), ref_template="#/components/schemas/{name}"
    )
    for schema in components.values():
        if schema.get("type") == "object":
            # Request bodies with other fields are refused (a typo must not drop a coupon silently), and
            # answers carry exactly these.
            schema["additionalProperties"] = False
    paths: dict[str, Any] = {**_ops_paths(), "/v1/elements/upsell.js": _element_path()}
    for op in OPERATIONS:
        paths.setdefault(op[1], {})[op[0]] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Checkout upsell service", "version": VERSION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
