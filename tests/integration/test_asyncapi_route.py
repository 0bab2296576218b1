"""GET /asyncapi.json on the real app: the committed document, to anyone."""

from __future__ import annotations

import json

import asyncpg
import pytest

from contracts.generate import SCHEMAS
from tests.integration.helpers import Clock, http_client

pytestmark = pytest.mark.integration


async def test_the_asyncapi_document_is_served_without_a_token(pool: asyncpg.Pool) -> None:
    committed = json.loads((SCHEMAS / "asyncapi.json").read_text(encoding="utf-8"))
    async with http_client(pool, Clock()) as client:
        for _ in range(2):  # built on the first call, kept for the next
            response = await client.get("/asyncapi.json")
            assert response.status == 200
            assert response.content_type == "application/json"
            assert await response.json() == committed
        listed = await (await client.get("/openapi.json")).json()
        assert "/asyncapi.json" in listed["paths"]
