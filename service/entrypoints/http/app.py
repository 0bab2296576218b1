"""The aiohttp application factory: routes, problem documents, metrics and log context."""

from __future__ import annotations

import asyncio
import functools
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from service.app.errors import Conflict, Gone, InvalidInput, NotFound, UseCaseError
from service.entrypoints.http import (
    catalog_routes,
    demo_routes,
    element_routes,
    ops_routes,
    session_routes,
    subscription_routes,
)
from service.entrypoints.http.cors import BROWSER_ACCESS, allow_browsers
from service.entrypoints.http.deps import DEPS, Deps
from service.entrypoints.http.problems import ProblemError, problem_response, violation_errors

log = structlog.get_logger(__name__)

MAX_BODY = 1024 * 1024
_QUIET_ROUTES = frozenset({"/livez", "/readyz", "/metrics"})


def _problem_of(error: Exception) -> ProblemError:
    if isinstance(error, ProblemError):
        return error
    if isinstance(error, InvalidInput):
        return ProblemError(422, error.code, error.detail, violation_errors(error.violations))
    if isinstance(error, NotFound):
        return ProblemError(404, error.code, error.detail)
    if isinstance(error, Conflict):
        return ProblemError(409, error.code, error.detail)
    if isinstance(error, Gone):
        return ProblemError(410, error.code, error.detail)
    assert isinstance(error, UseCaseError)
    return ProblemError(422, error.code, error.detail)


CLIENT_CLOSED = 499
"""The status a request is counted under when its client went away before the answer (nginx's)."""
SLOW_READ = 0.1
"""Seconds after which a successful read is logged too."""
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer, or the problem document of what it raised; an unexpected error is logged."""
    try:
        return await handler(request)
    except (ProblemError, UseCaseError) as error:
        problem = _problem_of(error)
        return problem_response(problem.problem, problem.headers)
    except web.HTTPException as http:
        code = {413: "body_too_large", 404: "not_found", 405: "method_not_allowed"}.get(http.status, "http_error")
        detail = http.text if http.status != 404 else f"no route for {request.path}"
        return problem_response(ProblemError(http.status, code, detail).problem)
    except Exception as error:
        if isinstance(error, ConnectionResetError) and _client_gone(request):
            # The client closed its connection (reading its body, say): nobody is there to answer, and
            # it is no failure of the service. What was committed before stays committed.
            return web.Response(status=CLIENT_CLOSED)
        log.exception("request_failed")
        return problem_response(ProblemError(500, "internal_error", "the request failed; it is logged").problem)


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error becomes a problem document, browser routes get their CORS headers, and each request
    is counted. Each write and each failure is logged once; a successful read (most of what checkout
    pages send) is only counted, unless it was slow."""
    started = time.perf_counter()
    status = 500
    # Keep-alive requests share a task, so the log context starts empty for each request.
    structlog.contextvars.clear_contextvars()
    if request.path.startswith("/v1/checkout/sessions/"):
        structlog.contextvars.bind_contextvars(session_id=request.match_info.get("id"))
    try:
        response = await _answer(request, handler)
        status = response.status
        request.app[BROWSER_ACCESS].answer(request, response)
        return response
    except asyncio.CancelledError:
        if _client_gone(request):
            status = CLIENT_CLOSED
        raise
    finally:
        resource = request.match_info.route.resource
        name = "unmatched" if resource is None else _route_name(resource)
        elapsed = time.perf_counter() - started
        quiet = request.method in _READS and status < 400 and elapsed < SLOW_READ
        if not quiet and name not in _QUIET_ROUTES:
            log.info("http_request", method=request.method, route=name, status=status, ms=round(elapsed * 1000, 2))
        request.app[DEPS].metrics.http_request(request.method, name, status, elapsed)


@functools.lru_cache(maxsize=256)
def _route_name(resource: web.AbstractResource) -> str:
    # `canonical` is worked out anew at every call.
    return resource.canonical


def init_app(dependencies: Deps) -> web.Application:
    app = web.Application(middlewares=[problems_middleware], client_max_size=MAX_BODY)
    app[DEPS] = dependencies
    app[element_routes.SCRIPT] = element_routes.Script.read()
    app.add_routes(catalog_routes.routes)
    app.add_routes(session_routes.routes)
    app.add_routes(subscription_routes.routes)
    app.add_routes(element_routes.routes)
    app.add_routes(ops_routes.routes)
    if dependencies.demo:
        app.add_routes(demo_routes.routes)
    allow_browsers(app, dependencies.cors_origins)
    return app
