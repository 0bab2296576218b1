"""CORS for what a buyer's browser may call: reading and toggling a session with its client secret, and
the component's script; for the exact origins of `UPSELL_CORS_ORIGINS` only.

aiohttp-cors answers the preflights and adds `Access-Control-Allow-Origin` for an allowed origin. Every
other route has no CORS at all, so an API-key endpoint never answers a page on another origin in a way
its browser would hand over.
"""

from __future__ import annotations

import aiohttp_cors
from aiohttp import hdrs, web

BROWSER_ROUTES = frozenset(
    {
        ("GET", "/v1/checkout/sessions/{id}"),
        ("POST", "/v1/checkout/sessions/{id}/upsell"),
        ("GET", "/v1/elements/upsell.js"),
    }
)
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may reuse a preflight's answer (Chromium caps it at 7,200)."""

_BROWSER_RESOURCES = web.AppKey("browser_resources", frozenset[web.AbstractResource])


def allow_browsers(app: web.Application, origins: tuple[str, ...]) -> None:
    """Enables CORS on the BROWSER_ROUTES of `app` for `origins` (none: every preflight is refused)."""
    # ResourceOptions has no annotations in aiohttp-cors 0.8.
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_headers=("Authorization", "Content-Type"), max_age=PREFLIGHT_MAX_AGE
    )
    cors = aiohttp_cors.setup(app)
    resources = set()
    for route in list(app.router.routes()):
        if route.resource is not None and (route.method, route.resource.canonical) in BROWSER_ROUTES:
            cors.add(route, dict.fromkeys(origins, options))
            resources.add(route.resource)
    app[_BROWSER_RESOURCES] = frozenset(resources)
    app.on_response_prepare.append(_vary_on_origin)


async def _vary_on_origin(request: web.Request, response: web.StreamResponse) -> None:
    # The answer differs by Origin on these routes, so a shared cache must not hand one origin's
    # answer to another.
    route = request.match_info.route
    if route.resource is not None and route.resource in request.app[_BROWSER_RESOURCES]:
        vary = response.headers.get(hdrs.VARY)
        if vary is None:
            response.headers[hdrs.VARY] = hdrs.ORIGIN
        elif hdrs.ORIGIN.lower() not in vary.lower():
            response.headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}"
