"""The in-memory GET answers: kept only while changes are heard, never kept from before a change."""

from __future__ import annotations

from datetime import timedelta

from service.entrypoints.http.session_cache import CachedSession, SessionCache
from tests.unit.test_session import EXPIRES, NOW


def answer(session_id: str = "cs_1", version: int = 1) -> CachedSession:
    return CachedSession(f"{session_id}@{version}".encode(), b"digest", EXPIRES)


def listening() -> SessionCache:
    cache = SessionCache()
    cache.listening_changed(True)
    return cache


def test_keeps_nothing_until_it_listens() -> None:
    cache = SessionCache()
    cache.keep("cs_1", answer(), cache.start_read())
    assert cache.get("cs_1", NOW) is None
    cache.listening_changed(True)
    cache.keep("cs_1", answer(), cache.start_read())
    assert cache.get("cs_1", NOW) == answer()


def test_a_change_drops_the_answer() -> None:
    cache = listening()
    cache.keep("cs_1", answer(), cache.start_read())
    cache.keep("cs_2", answer("cs_2"), cache.start_read())
    cache.changed_many(["cs_1"])
    assert cache.get("cs_1", NOW) is None
    assert cache.get("cs_2", NOW) == answer("cs_2")


def test_a_read_that_overlapped_a_change_of_its_session_is_not_kept() -> None:
    cache = listening()
    started = cache.start_read()
    cache.changed("cs_1")  # committed while the read was under way: the read may hold the old state
    cache.keep("cs_1", answer(), started)
    assert cache.get("cs_1", NOW) is None
    # Another session's change does not matter, nor a change before the read began.
    started = cache.start_read()
    cache.changed("cs_2")
    cache.keep("cs_1", answer(version=2), started)
    assert cache.get("cs_1", NOW) == answer(version=2)


def test_losing_the_listener_drops_everything_and_every_read_under_way() -> None:
    cache = listening()
    cache.keep("cs_1", answer(), cache.start_read())
    started = cache.start_read()
    cache.listening_changed(False)
    assert cache.get("cs_1", NOW) is None
    cache.keep("cs_2", answer("cs_2"), cache.start_read())
    assert cache.kept == 0
    cache.listening_changed(True)
    # Changes made while nobody listened were missed: a read from before is never kept.
    cache.keep("cs_1", answer(), started)
    assert cache.kept == 0
    cache.keep("cs_1", answer(), cache.start_read())
    assert cache.get("cs_1", NOW) == answer()


def test_an_answer_is_not_served_from_when_it_goes_stale() -> None:
    cache = listening()
    cache.keep("cs_1", answer(), cache.start_read())
    assert cache.get("cs_1", EXPIRES - timedelta(seconds=1)) is not None
    assert cache.get("cs_1", EXPIRES) is None


def test_a_change_of_every_session_drops_everything_and_every_read_under_way() -> None:
    cache = listening()
    cache.keep("cs_1", answer(), cache.start_read())
    started = cache.start_read()
    cache.changed("")  # the table was truncated
    assert cache.kept == 0
    cache.keep("cs_2", answer("cs_2"), started)
    assert cache.kept == 0


def test_the_oldest_answer_goes_first_beyond_the_limit() -> None:
    cache = SessionCache(max_sessions=2)
    cache.listening_changed(True)
    for name in ("cs_1", "cs_2", "cs_3"):
        cache.keep(name, answer(name), cache.start_read())
    assert [cache.get(name, NOW) is not None for name in ("cs_1", "cs_2", "cs_3")] == [False, True, True]


def test_a_read_older_than_the_changes_remembered_is_not_kept() -> None:
    cache = SessionCache(max_changes=2)
    cache.listening_changed(True)
    started = cache.start_read()
    for name in ("cs_1", "cs_2", "cs_3"):  # cs_1's change is forgotten: it may have been cs_9's
        cache.changed(name)
    cache.keep("cs_9", answer("cs_9"), started)
    assert cache.get("cs_9", NOW) is None
    cache.keep("cs_9", answer("cs_9"), cache.start_read())
    assert cache.get("cs_9", NOW) is not None
