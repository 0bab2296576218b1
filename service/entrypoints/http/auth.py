"""Bearer auth: API keys with roles, and a session's client secret for that session only.

Tokens are compared by their SHA-256 digests in constant time; no token is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from service.entrypoints.http.problems import ProblemError

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


class Authenticator:
    def __init__(self, admin_token: str | None, keys: KeyLookup | None = None) -> None:
        self._admin_digest = None if admin_token is None else digest(admin_token)
        self._keys = keys

    def bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("send `Authorization: Bearer <token>`")
        return token.strip()

    async def api_key(self, token: str) -> Principal | None:
        """The bootstrap admin token, or a live API key; keys are looked up by digest, never by secret."""
        hashed = digest(token)
        if self._admin_digest is not None and hmac.compare_digest(hashed, self._admin_digest):
            return Principal("admin-token", frozenset(ROLES))
        if self._keys is None or not token.startswith(API_KEY_PREFIX):
            return None
        found = await self._keys(hashed)
        return None if found is None else Principal(found[0], frozenset(found[1]))

    async def require(self, request: web.Request, *roles: str) -> Principal:
        """The caller's principal if its key has one of `roles`; 401 or 403 otherwise."""
        principal = await self.api_key(self.bearer(request))
        if principal is None:
            raise _unauthenticated("the token is not a valid API key")
        if principal.roles.isdisjoint(roles):
            raise ProblemError(403, "forbidden", f"this needs one of the roles: {', '.join(roles)}")
        return principal


def _unauthenticated(detail: str) -> ProblemError:
    error = ProblemError(401, "unauthenticated", detail)
    error.headers["WWW-Authenticate"] = "Bearer"
    return error
