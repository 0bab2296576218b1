"""The aiohttp application factory: routes, each answered with problem documents, metrics and log context."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import hdrs, web
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
from service.entrypoints.http.cors import BROWSER_ACCESS, BROWSER_ROUTES, BrowserAccess, preflights
from service.entrypoints.http.deps import DEPS, Deps
from service.entrypoints.http.problems import ProblemError, problem_response, violation_errors
from service.metrics import Metrics

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


_SESSION_ROUTES = "/v1/checkout/sessions/{id}"


def _session_of(request: web.Request) -> dict[str, str]:
    """The session a read names, for its log line (a write has it bound already)."""
    resource = request.match_info.route.resource
    if resource is None or not resource.canonical.startswith(_SESSION_ROUTES):
        return {}
    return {"session_id": request.match_info["id"]}


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
        log.exception("request_failed", **_session_of(request))
        return problem_response(ProblemError(500, "internal_error", "the request failed; it is logged").problem)


def served(handler: Handler, route: str, metrics: Metrics, browser: BrowserAccess | None = None) -> Handler:
    """`handler` as the service answers it: every error becomes a problem document, a browser route
    gets its CORS headers, and each request is counted. Each write and each failure is logged once; a
    successful read (most of what checkout pages send) is only counted, unless it was slow.

    Each route is wrapped once when the app is built, rather than by a middleware, which aiohttp runs
    through two more calls per request and which would look up again, at every request, what is known
    here: the route's name and whether browsers call it."""
    quiet = route in _QUIET_ROUTES
    of_session = route.startswith(_SESSION_ROUTES)

    async def answer(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        method = request.method
        read = method in _READS
        if of_session and not read:
            # What a write logs on its way carries its session. aiohttp runs each request in a task of
            # its own, so what is bound here is gone with the request.
            structlog.contextvars.bind_contextvars(session_id=request.match_info["id"])
        try:
            response = await _answer(request, handler)
            status = response.status
            if browser is not None:
                browser.answer(request, response)
            return response
        except asyncio.CancelledError:
            if _client_gone(request):
                status = CLIENT_CLOSED
            raise
        finally:
            elapsed = time.perf_counter() - started
            if not quiet and (not read or status >= 400 or elapsed >= SLOW_READ):
                context = _session_of(request) if read else {}
                log.info(
                    "http_request", method=method, route=route, status=status, ms=round(elapsed * 1000, 2), **context
                )
            metrics.http_request(method, route, status, elapsed)

    return answer


UNMATCHED = "unmatched"
"""The route name of requests that match none: a 404, or a 405 for a path with other methods."""


async def _unmatched(request: web.Request) -> web.StreamResponse:
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        detail = f"{request.method} is not allowed here: {', '.join(sorted(allowed))}"
        headers = {"Allow": ",".join(sorted(allowed))}
        return problem_response(ProblemError(405, "method_not_allowed", detail).problem, headers)
    return problem_response(ProblemError(404, "not_found", f"no route for {request.path}").problem)


_ANY_PATH = "/{path:.*}"


def init_app(dependencies: Deps) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[DEPS] = dependencies
    app[element_routes.SCRIPT] = element_routes.Script.read()
    tables = [catalog_routes, session_routes, subscription_routes, element_routes, ops_routes]
    if dependencies.demo:
        tables.append(demo_routes)
    access = app[BROWSER_ACCESS] = BrowserAccess(frozenset(dependencies.cors_origins))
    metrics = dependencies.metrics
    for table in tables:
        for route in table.routes:
            assert isinstance(route, web.RouteDef), route
            browser = access if (route.method, route.path) in BROWSER_ROUTES else None
            handler = served(route.handler, route.path, metrics, browser)
            web.RouteDef(route.method, route.path, handler, route.kwargs).register(app.router)
    for path, preflight in preflights():
        app.router.add_route(hdrs.METH_OPTIONS, path, served(preflight, path, metrics, access))
    app.router.add_route(hdrs.METH_ANY, _ANY_PATH, served(_unmatched, UNMATCHED, metrics))
    return app
