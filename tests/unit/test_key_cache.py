"""Live API keys kept in memory: what is kept, when it is dropped, and what is never kept."""

from __future__ import annotations

import pytest

from service.entrypoints.http.auth import Authenticator, KeyCache, Principal, digest

BACKEND = Principal("key_1", frozenset({"backend"}))
TOKEN = "uk_live-backend-key"


class Keys:
    """A stand-in for the api_keys table: what a lookup would find, and how many lookups there were."""

    def __init__(self) -> None:
        self.live: dict[bytes, tuple[str, list[str]]] = {digest(TOKEN): ("key_1", ["backend"])}
        self.lookups = 0
        self.during_lookup: list[KeyCache] = []

    async def __call__(self, hashed: bytes) -> tuple[str, list[str]] | None:
        self.lookups += 1
        for cache in self.during_lookup:
            cache.changed("key_1")  # a revocation arrives while this lookup is on its way
        return self.live.get(hashed)


def listening_cache(**limits: float) -> KeyCache:
    cache = KeyCache(**limits)  # type: ignore[arg-type]
    cache.listening_changed(True)
    return cache


async def test_nothing_is_kept_until_the_cache_listens() -> None:
    keys = Keys()
    auth = Authenticator(None, keys, cache=KeyCache())
    assert await auth.api_key(TOKEN) == BACKEND
    assert await auth.api_key(TOKEN) == BACKEND
    assert keys.lookups == 2
    assert auth.cache.kept == 0


async def test_a_listening_cache_answers_from_memory_until_a_key_changes() -> None:
    keys = Keys()
    auth = Authenticator(None, keys, cache=listening_cache())
    for _ in range(3):
        assert await auth.api_key(TOKEN) == BACKEND
    assert keys.lookups == 1
    del keys.live[digest(TOKEN)]
    auth.cache.changed("key_1")
    assert await auth.api_key(TOKEN) is None
    assert keys.lookups == 2


async def test_a_lookup_that_overlapped_a_change_is_not_kept() -> None:
    keys = Keys()
    auth = Authenticator(None, keys, cache=listening_cache())
    keys.during_lookup.append(auth.cache)
    assert await auth.api_key(TOKEN) == BACKEND
    assert auth.cache.kept == 0


async def test_losing_the_listener_drops_every_key() -> None:
    keys = Keys()
    auth = Authenticator(None, keys, cache=listening_cache())
    await auth.api_key(TOKEN)
    assert auth.cache.kept == 1
    auth.cache.listening_changed(False)
    assert auth.cache.kept == 0
    await auth.api_key(TOKEN)
    assert auth.cache.kept == 0


@pytest.mark.parametrize("token", ["uk_unknown", "not-a-key-at-all", "cs_a-client-secret"])
async def test_unknown_tokens_are_never_kept(token: str) -> None:
    keys = Keys()
    auth = Authenticator(None, keys, cache=listening_cache())
    assert await auth.api_key(token) is None
    assert auth.cache.kept == 0


async def test_a_kept_key_is_looked_up_again_after_its_maximum_age() -> None:
    keys = Keys()
    auth = Authenticator(None, keys, cache=listening_cache(max_age=0.0))
    await auth.api_key(TOKEN)
    await auth.api_key(TOKEN)
    assert keys.lookups == 2


def test_the_oldest_key_goes_first() -> None:
    cache = listening_cache(max_keys=2)
    for name in ("a", "b", "c"):
        cache.keep(digest(name), Principal(name, frozenset()), cache.start_read())
    assert cache.get(digest("a")) is None
    assert cache.get(digest("c")) is not None
    assert cache.kept == 2


async def test_the_admin_token_needs_no_lookup() -> None:
    keys = Keys()
    auth = Authenticator("bootstrap-token", keys, cache=listening_cache())
    principal = await auth.api_key("bootstrap-token")
    assert principal is not None
    assert "admin" in principal.roles
    assert keys.lookups == 0
