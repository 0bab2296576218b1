"""CORS for what a buyer's browser may call: reading and toggling a session with its client secret, and
the component's script; for the exact origins of `UPSELL_CORS_ORIGINS` only.

Every other route has no CORS at all, so an API-key endpoint never answers a page on another origin in
a way its browser would hand over. Written here rather than taken from aiohttp-cors (see
docs/decisions.md): that library sends no `Vary: Origin`, and its response hook runs on every answer of
every route, which cost the cached GET 8 % of its CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.entrypoints.http.problems import ProblemError

BROWSER_ROUTES = frozenset(
    {
        ("GET", "/v1/checkout/sessions/{id}"),
        ("POST", "/v1/checkout/sessions/{id}/upsell"),
        ("GET", "/v1/elements/upsell.js"),
    }
)
ALLOWED_HEADERS = frozenset({"authorization", "content-type"})
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may reuse a preflight's answer (Chromium caps it at 7,200)."""


@dataclass(frozen=True, slots=True)
class BrowserAccess:
    """The origins allowed."""

    origins: frozenset[str]

    def answer(self, request: web.Request, response: web.StreamResponse) -> None:
        """Adds CORS to an answer of a browser route, its problem documents included (a page reads the
        409 of an expired session)."""
        _vary_on_origin(response)
        origin = request.headers.get(hdrs.ORIGIN)
        # A preflight names its origin itself when it grants it; a refused one names none.
        if origin is not None and origin in self.origins and request.method != hdrs.METH_OPTIONS:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin


BROWSER_ACCESS = web.AppKey("browser_access", BrowserAccess)


def preflights() -> list[tuple[str, Handler]]:
    """The paths of BROWSER_ROUTES with the handler that answers their preflights, for the origins of the
    app's BROWSER_ACCESS (none: every preflight is refused)."""
    methods: dict[str, set[str]] = {}
    for method, path in sorted(BROWSER_ROUTES):
        methods.setdefault(path, set()).add(method)
    return [(path, _preflight(frozenset(allowed))) for path, allowed in methods.items()]


def _preflight(methods: frozenset[str]) -> Handler:
    allow_methods = ", ".join(sorted(methods))

    async def preflight(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN, "")
        method = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_METHOD, "")
        asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "")
        headers = {h.strip().lower() for h in asked.split(",") if h.strip()}
        if origin not in request.app[BROWSER_ACCESS].origins:
            detail = f"pages of {origin or 'no origin'} may not call this from a browser (UPSELL_CORS_ORIGINS)"
            raise ProblemError(403, "cors_origin_not_allowed", detail)
        if method not in methods:
            raise ProblemError(403, "cors_method_not_allowed", f"{method or 'no method'}: only {allow_methods}")
        if headers - ALLOWED_HEADERS:
            refused = ", ".join(sorted(headers - ALLOWED_HEADERS))
            raise ProblemError(403, "cors_header_not_allowed", f"{refused}: only Authorization and Content-Type")
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: allow_methods,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: "Authorization, Content-Type",
                hdrs.ACCESS_CONTROL_MAX_AGE: str(PREFLIGHT_MAX_AGE),
            },
        )

    return preflight


def _vary_on_origin(response: web.StreamResponse) -> None:
    # The answer differs by Origin on these routes, so a shared cache must not hand one origin's answer
    # to another.
    vary = response.headers.get(hdrs.VARY)
    if vary is None:
        response.headers[hdrs.VARY] = hdrs.ORIGIN
    elif hdrs.ORIGIN.lower() not in vary.lower():
        response.headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}"
