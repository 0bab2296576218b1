"""Checkout session endpoints for backends (API key) and frontends (the session's client secret)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable

import structlog
from aiohttp import web

from contracts.sessions import ClientSecret, CompleteRequest, CreatedSession, SessionInput, SessionView, UpsellToggle
from service.app import checkout, views
from service.app.checkout import Registered
from service.app.errors import NotFound
from service.app.inbound import register
from service.app.ports import UnitOfWork
from service.app.prepared import Prepared
from service.entrypoints.http.auth import CLIENT_SECRET_PREFIX, digest, new_client_secret
from service.entrypoints.http.deps import deps
from service.entrypoints.http.idempotency import answered_once, idempotency_key
from service.entrypoints.http.problems import ProblemError, decode_body
from service.entrypoints.http.responses import encode, json_response
from service.entrypoints.http.session_cache import MAX_AGE, CachedSession

routes = web.RouteTableDef()


async def _client_secret(request: web.Request) -> str | None:
    """Checks an API key for the backend role here; a client secret is returned, to be checked
    against its session inside the request's unit of work."""
    d = deps(request)
    token = d.auth.bearer(request)
    if token.startswith(CLIENT_SECRET_PREFIX):
        return token
    await d.auth.require_token(token, "backend")
    return None


def _require_secret(stored: bytes | None, secret: str) -> None:
    if stored is None or not hmac.compare_digest(stored, digest(secret)):
        raise ProblemError(403, "forbidden", "the client secret is not valid for this session")


@routes.post("/v1/checkout/sessions")
async def create_session(request: web.Request) -> web.Response:
    d = deps(request)
    principal = await d.auth.require(request, "backend")
    data = decode_body(await request.read(), SessionInput)
    structlog.contextvars.bind_contextvars(session_id=data.id)
    secret, secret_hash = new_client_secret()
    now = d.clock()

    def created(registered: Registered) -> web.Response:
        return json_response(views.extended(registered.view, CreatedSession, client_secret=secret), 201)

    if idempotency_key(request) is not None:

        async def once(uow: UnitOfWork) -> web.Response:
            return created(await register(uow, data, now, secret_hash))

        return await answered_once(request, principal.name, once)

    def work(uow: UnitOfWork, prepared: Prepared) -> Awaitable[Registered]:
        return register(uow, data, now, secret_hash, prepared=prepared)

    prices = [item.price for item in data.line_items]
    return created(await d.new_uow.gathered_registration(data.id, prices, work))


@routes.get("/v1/checkout/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    d = deps(request)
    session_id = request.match_info["id"]
    secret = await _client_secret(request)
    now = d.clock()
    answer = d.sessions.get(session_id, now)
    d.metrics.session_read("memory" if answer is not None else "database")
    if answer is None:
        started = d.sessions.start_read()
        found = await d.new_uow.read_session(session_id)
        if found is None:
            if secret is not None:
                _require_secret(None, secret)
            raise NotFound("session", session_id)
        session, secret_hash = found
        view = views.session_view(session, now)
        stale_from = now + MAX_AGE
        if view.status == "open":
            stale_from = min(stale_from, session.expires_at)
        answer = CachedSession(encode(view), secret_hash, stale_from)
        d.sessions.keep(session_id, answer, started)
    if secret is not None:
        _require_secret(answer.secret_hash, secret)
    return web.Response(body=answer.body, content_type="application/json")


@routes.post("/v1/checkout/sessions/{id}/upsell")
async def toggle_upsell(request: web.Request) -> web.Response:
    d = deps(request)
    session_id = request.match_info["id"]
    secret = await _client_secret(request)
    toggle = decode_body(await request.read(), UpsellToggle)
    now = d.clock()

    def authorize(stored: bytes | None) -> None:
        if secret is not None:
            _require_secret(stored, secret)

    def work(uow: UnitOfWork, prepared: Prepared) -> Awaitable[SessionView]:
        return checkout.toggle_upsell(uow, session_id, toggle.selected, now, authorize, prepared)

    # Refusals come before the write, so the toggle may share its transaction with toggles of others.
    return json_response(await d.new_uow.gathered(session_id, work))


@routes.post("/v1/checkout/sessions/{id}/complete")
async def complete_session(request: web.Request) -> web.Response:
    d = deps(request)
    principal = await d.auth.require(request, "backend")
    session_id = request.match_info["id"]
    body = await request.read()
    payment = decode_body(body, CompleteRequest).reference if body.strip() else None
    now = d.clock()

    async def work(uow: UnitOfWork) -> web.Response:
        session = await checkout.complete_session(uow, session_id, payment, now, reference_required=True)
        return json_response(views.completed_view(session, now))

    return await answered_once(request, principal.name, work)


@routes.post("/v1/checkout/sessions/{id}/client-secret")
async def rotate_client_secret(request: web.Request) -> web.Response:
    """Issues a new client secret (for sessions registered by event, which have none)."""
    d = deps(request)
    await d.auth.require(request, "backend")
    session_id = request.match_info["id"]
    secret, secret_hash = new_client_secret()
    async with d.new_uow() as uow:
        if await uow.sessions.get(session_id, for_update=True) is None:
            raise NotFound("session", session_id)
        await uow.sessions.set_secret_hash(session_id, secret_hash)
    return json_response(ClientSecret(secret))
