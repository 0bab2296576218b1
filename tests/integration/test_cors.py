"""CORS on the real app and database: what a page on an allowed origin may call, and nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.integration.helpers import ADMIN, Clock, http_client

pytestmark = pytest.mark.integration

SHOP = "https://shop.example"
OTHER = "https://evil.example"
SESSION: dict[str, Any] = {
    "id": "cs_cors_1",
    "mode": "subscription",
    "currency": "usd",
    "line_items": [{"price": "price_pro_monthly"}],
}
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(seeded: asyncpg.Pool) -> AsyncIterator[tuple[Client, Clock, str]]:
    clock = Clock()
    async with http_client(seeded, clock, cors_origins=(SHOP, "http://127.0.0.1:3000")) as client:
        created = await client.post("/v1/checkout/sessions", json=SESSION, headers=ADMIN)
        yield client, clock, (await created.json())["client_secret"]


def preflight(origin: str, method: str, headers: str = "authorization,content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/checkout/sessions/cs_cors_1/upsell"),
        ("GET", "/v1/checkout/sessions/cs_cors_1"),
        ("GET", "/v1/elements/upsell.js"),
    ],
)
async def test_preflight_of_an_allowed_origin(client: tuple[Client, Clock, str], method: str, path: str) -> None:
    http, _, _ = client
    answer = await http.options(path, headers=preflight(SHOP, method))
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == SHOP
    assert answer.headers["Access-Control-Allow-Methods"] == method
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type"}
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in answer.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in answer.headers


async def test_preflight_refused_for_an_origin_not_listed_or_a_header_or_method_not_allowed(
    client: tuple[Client, Clock, str],
) -> None:
    http, _, _ = client
    path = "/v1/checkout/sessions/cs_cors_1/upsell"
    for headers, code in (
        (preflight(OTHER, "POST"), "cors_origin_not_allowed"),
        (preflight("https://shop.example.evil.example", "POST"), "cors_origin_not_allowed"),
        (preflight("http://shop.example", "POST"), "cors_origin_not_allowed"),
        ({"Access-Control-Request-Method": "POST"}, "cors_origin_not_allowed"),
        (preflight(SHOP, "POST", "authorization,x-secret"), "cors_header_not_allowed"),
        (preflight(SHOP, "DELETE"), "cors_method_not_allowed"),
    ):
        answer = await http.options(path, headers=headers)
        assert answer.status == 403, headers
        assert answer.content_type == "application/problem+json"
        assert (await answer.json())["code"] == code
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Origin" in answer.headers["Vary"]


async def test_reads_and_toggles_answer_the_allowed_origin_only(client: tuple[Client, Clock, str]) -> None:
    http, _, secret = client
    frontend = {"Authorization": f"Bearer {secret}"}
    url = "/v1/checkout/sessions/cs_cors_1"
    read = await http.get(url, headers={**frontend, "Origin": SHOP})
    assert read.status == 200
    assert read.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in read.headers["Vary"]
    # From memory the second time: the same headers.
    again = await http.get(url, headers={**frontend, "Origin": "http://127.0.0.1:3000"})
    assert again.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"

    toggled = await http.post(f"{url}/upsell", json={"selected": True}, headers={**frontend, "Origin": SHOP})
    assert toggled.status == 200
    assert toggled.headers["Access-Control-Allow-Origin"] == SHOP

    refused = await http.get(url, headers={**frontend, "Origin": OTHER})
    # The service answers (CORS is the browser's to enforce), but without the header the browser
    # hands nothing to the page.
    assert refused.status == 200
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Origin" in refused.headers["Vary"]
    no_origin = await http.get(url, headers=frontend)
    assert "Access-Control-Allow-Origin" not in no_origin.headers


async def test_problem_answers_reach_the_allowed_page(client: tuple[Client, Clock, str]) -> None:
    http, clock, secret = client
    url = "/v1/checkout/sessions/cs_cors_1"
    wrong = await http.get(url, headers={"Authorization": "Bearer cs_wrong", "Origin": SHOP})
    assert wrong.status == 403
    assert wrong.headers["Access-Control-Allow-Origin"] == SHOP
    clock.advance(timedelta(hours=25))
    expired = await http.post(
        f"{url}/upsell", json={"selected": True}, headers={"Authorization": f"Bearer {secret}", "Origin": SHOP}
    )
    assert expired.status == 409
    assert (await expired.json())["code"] == "session_expired"
    assert expired.headers["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/checkout/sessions"),
        ("POST", "/v1/checkout/sessions/cs_cors_1/complete"),
        ("POST", "/v1/checkout/sessions/cs_cors_1/client-secret"),
        ("PUT", "/v1/prices/price_pro_monthly"),
        ("GET", "/v1/prices/price_pro_monthly"),
        ("POST", "/v1/api-keys"),
        ("GET", "/v1/subscriptions/sub_1"),
        ("GET", "/v1/reports/summary"),
    ],
)
async def test_api_key_endpoints_never_answer_with_cors(
    client: tuple[Client, Clock, str], method: str, path: str
) -> None:
    http, _, _ = client
    answer = await http.options(path, headers=preflight(SHOP, method))
    assert answer.status == 405
    assert not any(name.lower().startswith("access-control-") for name in answer.headers)
    actual = await http.request(method, path, headers={**ADMIN, "Origin": SHOP})
    assert not any(name.lower().startswith("access-control-") for name in actual.headers)


async def test_element_script_is_cached_by_etag(client: tuple[Client, Clock, str]) -> None:
    http, _, _ = client
    first = await http.get("/v1/elements/upsell.js", headers={"Origin": SHOP})
    assert first.status == 200
    assert first.content_type == "text/javascript"
    body = await first.read()
    assert b'customElements.define("upsell-offer"' in body
    assert first.headers["Access-Control-Allow-Origin"] == SHOP
    assert first.headers["Cache-Control"] == "public, max-age=300"
    etag = first.headers["ETag"]
    revalidated = await http.get("/v1/elements/upsell.js", headers={"If-None-Match": etag})
    assert revalidated.status == 304
    assert await revalidated.read() == b""
    assert revalidated.headers["ETag"] == etag
    weak = await http.get("/v1/elements/upsell.js", headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status == 304
    stale = await http.get("/v1/elements/upsell.js", headers={"If-None-Match": '"an-older-script"'})
    assert stale.status == 200
    assert await stale.read() == body
