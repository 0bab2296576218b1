"""Bearer auth: API keys with roles, and a session's client secret for that session only.

Tokens are compared by their SHA-256 digests in constant time; no token is ever logged. Live API keys
are kept in memory for as long as PostgreSQL tells this process of every change to them (a trigger
sends a revoked key's id on `upsell_api_keys`), so a backend's key is not a database round trip per
request, and a revoked key is refused by every process as soon as the notification arrives.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from service.entrypoints.http.problems import ProblemError
from service.metrics import Metrics

ROLES = ("admin", "backend", "operator", "viewer")
CLIENT_SECRET_PREFIX = "cs_"  # noqa: S105 - a prefix that tells client secrets from API keys
API_KEY_PREFIX = "uk_"

KeyLookup = Callable[[bytes], Awaitable[tuple[str, list[str]] | None]]
"""Finds a live API key by the digest of its secret: its id and roles."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_api_key_secret() -> tuple[str, bytes]:
    """A new API key secret and the digest that is stored in its place."""
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return secret, digest(secret)


def new_client_secret() -> tuple[str, bytes]:
    """A new client secret and the digest that is stored in its place."""
    secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    return secret, digest(secret)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]


MAX_KEYS = 1024
"""Live keys kept at most; the oldest goes first."""
KEY_MAX_AGE = 30.0
"""Seconds after which a kept key is looked up again whatever was heard: a bound on what a notification
missed without the listener noticing could cost."""


class KeyCache:
    """Principals of live API keys by the digest of their secret.

    Nothing is kept while the listener is down, and a lookup that overlapped a change of any key is not
    kept: revocations are rare, so any change drops every key, and the next request of each reads again.
    Unknown tokens are never kept, so guessing cannot fill memory.
    """

    def __init__(self, max_keys: int = MAX_KEYS, max_age: float = KEY_MAX_AGE) -> None:
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._max_keys = max_keys
        self._max_age = max_age
        self._generation = 0
        self.listening = False

    def get(self, hashed: bytes) -> Principal | None:
        entry = self._entries.get(hashed)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def start_read(self) -> int:
        """To be called before looking a key up in the database, and passed to `keep`."""
        return self._generation

    def keep(self, hashed: bytes, principal: Principal, started: int) -> None:
        if not self.listening or started != self._generation:
            return
        if len(self._entries) >= self._max_keys:
            del self._entries[next(iter(self._entries))]
        self._entries[hashed] = (principal, time.monotonic() + self._max_age)

    def changed(self, _key_id: str = "") -> None:
        """A key changed (or every key: the table was emptied)."""
        self._generation += 1
        self._entries.clear()

    def listening_changed(self, listening: bool) -> None:
        """While not listening, a revocation may be missed: nothing is kept, and no lookup from before."""
        self.changed()
        self.listening = listening

    @property
    def kept(self) -> int:
        return len(self._entries)


class Authenticator:
    def __init__(
        self,
        admin_token: str | None,
        keys: KeyLookup | None = None,
        metrics: Metrics | None = None,
        cache: KeyCache | None = None,
    ) -> None:
        self._admin_digest = None if admin_token is None else digest(admin_token)
        self._keys = keys
        self._metrics = metrics or Metrics()
        self.cache = cache or KeyCache()
        """Kept keys; one that is not listening for changes keeps none."""

    def bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthenticated("send `Authorization: Bearer <token>`")
        if not (token.isascii() and token.isprintable()):
            # Every token this service issues is printable ASCII; other bytes cannot be one of them.
            raise _unauthenticated("the token is not a valid API key or client secret")
        return token

    async def api_key(self, token: str) -> Principal | None:
        """The bootstrap admin token, or a live API key; keys are looked up by digest, never by secret."""
        hashed = digest(token)
        if self._admin_digest is not None and hmac.compare_digest(hashed, self._admin_digest):
            return Principal("admin-token", frozenset(ROLES))
        if self._keys is None or not token.startswith(API_KEY_PREFIX):
            return None
        principal = self.cache.get(hashed)
        self._metrics.api_key_lookup("memory" if principal is not None else "database")
        if principal is not None:
            return principal
        started = self.cache.start_read()
        found = await self._keys(hashed)
        if found is None:
            return None
        principal = Principal(found[0], frozenset(found[1]))
        self.cache.keep(hashed, principal, started)
        return principal

    async def require(self, request: web.Request, *roles: str) -> Principal:
        """The caller's principal if its key has one of `roles`; 401 or 403 otherwise."""
        return await self.require_token(self.bearer(request), *roles)

    async def require_token(self, token: str, *roles: str) -> Principal:
        """As `require`, for a bearer token already taken from the request."""
        principal = await self.api_key(token)
        if principal is None:
            raise _unauthenticated("the token is not a valid API key")
        if principal.roles.isdisjoint(roles):
            raise ProblemError(403, "forbidden", f"this needs one of the roles: {', '.join(roles)}")
        return principal


def _unauthenticated(detail: str) -> ProblemError:
    error = ProblemError(401, "unauthenticated", detail)
    error.headers["WWW-Authenticate"] = "Bearer"
    return error
