"""Ops endpoints: liveness, readiness (database and broker), Prometheus metrics, the OpenAPI and AsyncAPI
documents."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.asyncapi import asyncapi
from contracts.openapi import openapi
from service.entrypoints.http.deps import deps
from service.entrypoints.http.problems import ProblemError
from service.entrypoints.http.responses import json_response

routes = web.RouteTableDef()
log = structlog.get_logger(__name__)


@routes.get("/livez")
async def livez(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    checks = await deps(request).readiness()
    if not all(checks.values()):
        failing = ", ".join(name for name, ok in checks.items() if not ok)
        raise ProblemError(503, "not_ready", f"unavailable: {failing}")
    return json_response({"status": "ready", "checks": checks})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    d = deps(request)
    # Gauges read from the database and broker at scrape time; a slow dependency leaves the last values.
    try:
        await asyncio.wait_for(d.refresh_gauges(), timeout=2.0)
    except Exception as error:
        log.warning("gauges_not_refreshed", error=type(error).__name__)
    body = generate_latest(d.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


_document: dict[str, object] = {}
_asyncapi_document: dict[str, object] = {}


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    if not _document:
        _document.update(openapi())
    return json_response(_document)


@routes.get("/asyncapi.json")
async def asyncapi_json(request: web.Request) -> web.Response:
    if not _asyncapi_document:
        _asyncapi_document.update(asyncapi())
    return json_response(_asyncapi_document)
