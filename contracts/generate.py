"""Writes the JSON Schema, OpenAPI and AsyncAPI files beside the contracts: `python -m contracts.generate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from contracts.asyncapi import asyncapi
from contracts.catalog import CatalogFile
from contracts.events import InboundEvent, OutboundEvent
from contracts.openapi import openapi

SCHEMAS = Path(__file__).parent / "schemas"


def documents() -> dict[str, Any]:
    return {
        "inbound-events.json": msgspec.json.schema(InboundEvent),
        "outbound-events.json": msgspec.json.schema(OutboundEvent),
        "catalog-file.json": msgspec.json.schema(CatalogFile),
        "openapi.json": openapi(),
        "asyncapi.json": asyncapi(),
    }


def render(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMAS.mkdir(exist_ok=True)
    for name, document in documents().items():
        (SCHEMAS / name).write_text(render(document), encoding="utf-8")
        print(f"wrote contracts/schemas/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
