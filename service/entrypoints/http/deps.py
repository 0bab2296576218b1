"""What the routes are given: the service's dependencies, kept on the application under a typed key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from service.app.ports import UnitOfWorkFactory
from service.entrypoints.http.auth import Authenticator
from service.entrypoints.http.session_cache import SessionCache
from service.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Deps:
    new_uow: UnitOfWorkFactory
    auth: Authenticator
    metrics: Metrics
    clock: Callable[[], datetime]
    readiness: Callable[[], Awaitable[dict[str, bool]]]
    refresh_gauges: Callable[[], Awaitable[None]]
    link_secret: str | None = None
    public_url: str | None = None
    sessions: SessionCache = field(default_factory=SessionCache)
    """GET answers kept in memory; one that is not listening for changes keeps none."""
    cors_origins: tuple[str, ...] = ()
    """Origins whose pages may read and toggle a session with its client secret."""
    demo: bool = False
    """Serve the reference checkout page at /demo/checkout."""


DEPS = web.AppKey("deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]
