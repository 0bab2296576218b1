"""`Idempotency-Key` on the POSTs that create or complete: a retry gets the first answer again.

The answer is kept in the transaction of the work it answers, so a retry after a timeout finds either the
work done and its answer, or neither. Requests with the same key are serialized by a lock on the key: the
second waits for the first and replays it. Only successful answers are kept; a refusal changed nothing,
and its retry runs again. The same key with another method, path or body is refused: it is a bug in the
caller, and answering the first request's result would hide it.

The kept body is sealed (AES-GCM) with a key derived from the caller's bearer token and the idempotency
key. The service never stores the token itself, so the secrets an answer carries (a client secret, a new
API key) cannot be read from the database alone, as none of the service's secrets can.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.app.ports import KeptAnswer, UnitOfWork
from service.entrypoints.http.deps import deps
from service.entrypoints.http.problems import ProblemError

HEADER = "Idempotency-Key"
KEPT_FOR = timedelta(hours=24)
REPLAYED = "Idempotent-Replayed"
"""Set on a replayed answer (Stripe's name), so a caller can tell a retry from the first time."""
_NONCE = 12

Work = Callable[[UnitOfWork], Awaitable[web.Response]]


def idempotency_key(request: web.Request) -> str | None:
    """The request's key, or None; 422 when it is not 1 to 255 printable ASCII characters."""
    key = request.headers.get(HEADER)
    if key is not None and not (0 < len(key) <= 255 and key.isascii() and key.isprintable()):
        raise ProblemError(422, "invalid_idempotency_key", "an Idempotency-Key has 1 to 255 printable ASCII characters")
    return key


async def answered_once(request: web.Request, owner: str, work: Work) -> web.Response:
    """`work`'s answer in a unit of work of its own; with an Idempotency-Key, the answer kept for it."""
    d = deps(request)
    key = idempotency_key(request)
    if key is None:
        async with d.new_uow() as uow:
            return await work(uow)
    fingerprint = await _fingerprint(request)
    sealing = _sealing_key(d.auth.bearer(request), owner, key)
    now = d.clock()
    async with d.new_uow() as uow:
        await uow.lock_session(f"idempotency:{owner}:{key}")
        kept = await uow.idempotent_answers.find(owner, key, now - KEPT_FOR)
        if kept is not None:
            return _replay(kept, fingerprint, sealing)
        response = await work(uow)
        if 200 <= response.status < 300:
            body = response.body
            assert isinstance(body, bytes), "an answer kept for a retry is a whole body"
            sealed = _seal(sealing, body, owner, key)
            answer = KeptAnswer(owner, key, fingerprint, response.status, sealed, now)
            await uow.idempotent_answers.keep(answer, now - KEPT_FOR)
    return response


async def _fingerprint(request: web.Request) -> bytes:
    what = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    what.update(await request.read())
    return what.digest()


def _replay(kept: KeptAnswer, fingerprint: bytes, sealing: bytes) -> web.Response:
    if not hmac.compare_digest(kept.fingerprint, fingerprint):
        raise ProblemError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was sent before with another request; use a new key for a new request",
        )
    try:
        body = AESGCM(sealing).decrypt(kept.sealed[:_NONCE], kept.sealed[_NONCE:], _associated(kept.owner, kept.key))
    except InvalidTag:
        # The same caller under another token (a rotated key): the first answer cannot be read back.
        raise ProblemError(
            422, "idempotency_key_reused", "this Idempotency-Key was used with another token; use a new key"
        ) from None
    return web.Response(body=body, status=kept.status, content_type="application/json", headers={REPLAYED: "true"})


def _sealing_key(token: str, owner: str, key: str) -> bytes:
    return hmac.digest(token.encode(), b"upsell idempotent answer\0" + _associated(owner, key), "sha256")


def _associated(owner: str, key: str) -> bytes:
    return f"{owner}\0{key}".encode()


def _seal(sealing: bytes, body: bytes, owner: str, key: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(sealing).encrypt(nonce, body, _associated(owner, key))
