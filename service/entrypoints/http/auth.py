"""Bearer auth: API keys with roles, and a session's client secret for that session only.

Tokens are compared by their SHA-256 digests in constant time; no token is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

from service.entrypoints.http.problems import ProblemError

ROLES = ("admin", "backend", "operator", "viewer")
CLIENT_SECRET_PREFIX = "cs_"  # noqa: S105 - a prefix that tells client secrets from API keys


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_client_secret() -> tuple[str, bytes]:
    """A new client secret and the digest that is stored in its place."""
    secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    return secret, digest(secret)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]


class Authenticator:
    def __init__(self, admin_token: str | None) -> None:
        self._admin_digest = None if admin_token is None else digest(admin_token)

    def bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("send `Authorization: Bearer <token>`")
        return token.strip()

    def api_key(self, token: str) -> Principal | None:
        if self._admin_digest is not None and hmac.compare_digest(digest(token), self._admin_digest):
            return Principal("admin-token", frozenset(ROLES))
        return None

    def require(self, request: web.Request, *roles: str) -> Principal:
        """The caller's principal if its key has one of `roles`; 401 or 403 otherwise."""
        principal = self.api_key(self.bearer(request))
        if principal is None:
            raise _unauthenticated("the token is not a valid API key")
        if principal.roles.isdisjoint(roles):
            raise ProblemError(403, "forbidden", f"this needs one of the roles: {', '.join(roles)}")
        return principal


def _unauthenticated(detail: str) -> ProblemError:
    error = ProblemError(401, "unauthenticated", detail)
    error.headers["WWW-Authenticate"] = "Bearer"
    return error
