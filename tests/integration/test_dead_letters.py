"""`upsell dead-letters list|replay|drop` as an operator runs it, on the real RabbitMQ and PostgreSQL.

Poison events are dead-lettered by the running consumer; the catalog is fixed with `upsell catalog
apply`; `replay` brings each event through with its original id, and the sessions complete. A replay
killed with SIGKILL half-way loses none and applies none twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from service.bootstrap import Service
from tests.broker import Peer, peer
from tests.integration.helpers import cli, eventually
from tests.process import UPSELL

pytestmark = pytest.mark.integration

# The price a catalog file forgot, and the file that adds it.
LATER = "price_pro_quarterly"
FIX = f"""
products:
  - id: prod_pro
    name: Pro
    plan_group: main
    plan_rank: 2
prices:
  - id: {LATER}
    product: prod_pro
    currency: usd
    unit_amount: 27000
    recurring: {{ interval: month, interval_count: 3 }}
"""


def created(session_id: str, price: str = LATER) -> dict[str, Any]:
    return {"id": session_id, "mode": "subscription", "currency": "usd", "line_items": [{"price": price}]}


@pytest.fixture
async def broker(service: Service, amqp_url: str) -> AsyncIterator[Peer]:
    async with peer(amqp_url) as p:
        yield p


async def depth(broker: Peer, queue: str) -> int:
    declared = await broker.channel.declare_queue(queue, passive=True)
    return int(declared.declaration_result.message_count or 0)


async def listed(database_url: str, amqp_url: str, *args: str) -> list[dict[str, Any]]:
    code, out, err = await cli(database_url, amqp_url, "dead-letters", "list", "--json", *args)
    assert code == 0, err
    return [msgspec.json.decode(line) for line in out.splitlines()]


async def inbound_depth(broker: Peer) -> int:
    return sum([await depth(broker, name) for name in broker.topology.partition_queues])


async def consume(service: Service) -> None:
    await service.subscriptions.take_all()


async def test_poison_listed_fixed_replayed_with_its_id_and_completed(
    service: Service, broker: Peer, database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    await consume(service)
    dlq = broker.topology.dead_letter_queue
    await broker.send("checkout.session.created", created("cs_dl_1"), event_id="evt-created-1")
    await broker.send("checkout.session.payment_succeeded", {"session": "cs_dl_1", "payment": "pi_1"}, "evt-paid-1")
    await broker.publish(b"{not json", "checkout.session.created", message_id="evt-garbled")
    assert await eventually(lambda: _at_least(broker, dlq, 2))

    letters = await listed(database_url, amqp_url)
    by_id = {letter["event_id"]: letter for letter in letters}
    assert set(by_id) == {"evt-created-1", "evt-garbled"}
    assert by_id["evt-created-1"]["reason"] == "unknown_price"
    assert LATER in by_id["evt-created-1"]["detail"]
    assert (by_id["evt-created-1"]["type"], by_id["evt-created-1"]["session"]) == (
        "checkout.session.created",
        "cs_dl_1",
    )
    assert by_id["evt-garbled"]["reason"] == "malformed_json"
    assert all(letter["dead_lettered_at"].endswith("Z") or "+00:00" in letter["dead_lettered_at"] for letter in letters)
    assert [letter["event_id"] for letter in await listed(database_url, amqp_url, "--reason", "unknown_price")] == [
        "evt-created-1"
    ]
    assert len(await listed(database_url, amqp_url, "--limit", "1")) == 1
    code, table, _ = await cli(database_url, amqp_url, "dead-letters", "list")
    assert code == 0
    assert table.splitlines()[0].split() == ["EVENT", "ID", "TYPE", "SESSION", "REASON", "DEAD-LETTERED", "DETAIL"]
    assert any(line.startswith("evt-created-1 ") and "unknown_price" in line for line in table.splitlines())
    # Listing takes nothing.
    assert await depth(broker, dlq) == 2

    code, out, err = await cli(
        database_url, amqp_url, "dead-letters", "replay", "--reason", "unknown_price", "--dry-run"
    )
    assert code == 0, err
    assert "would replay evt-created-1" in out
    assert await depth(broker, dlq) == 2
    assert await service.pool.fetchval("select count(*) from checkout_sessions") == 0

    catalog = tmp_path / "fix.yaml"
    catalog.write_text(FIX, encoding="utf-8")
    code, _, err = await cli(database_url, amqp_url, "catalog", "apply", str(catalog))
    assert code == 0, err
    code, out, err = await cli(database_url, amqp_url, "dead-letters", "replay", "--reason", "unknown_price")
    assert code == 0, err
    assert out.splitlines() == ["replayed evt-created-1 checkout.session.created session=cs_dl_1 (unknown_price)"]
    assert "replayed 1 of 2 dead letter(s)" in err

    async def completed() -> bool:
        status = await service.pool.fetchval("select status from checkout_sessions where id = 'cs_dl_1'")
        return bool(status == "complete")

    assert await eventually(completed)
    seen = await service.pool.fetch("select event_id from inbox where event_id like 'evt-%' order by event_id")
    assert [row["event_id"] for row in seen] == ["evt-created-1", "evt-paid-1"]
    types: list[str | None] = []
    while len(types) < 2:
        message = await broker.next_event()
        assert message.correlation_id == "cs_dl_1"
        types.append(message.type)
    assert types == ["checkout.session.upsell_evaluated", "checkout.session.completed"]
    assert [letter["event_id"] for letter in await listed(database_url, amqp_url)] == ["evt-garbled"]

    # Replayed and refused again: back with its reason, counted as replayed once.
    code, _, err = await cli(database_url, amqp_url, "dead-letters", "replay", "--id", "evt-garbled")
    assert code == 0, err

    async def back_once() -> bool:
        letters = await listed(database_url, amqp_url)
        return [(x["event_id"], x["reason"], x["replays"]) for x in letters] == [("evt-garbled", "malformed_json", 1)]

    assert await eventually(back_once)

    code, _, err = await cli(database_url, amqp_url, "dead-letters", "drop", "--id", "evt-garbled", "--id", "evt-none")
    assert code == 3
    assert "not in the dead-letter queue: evt-none" in err
    assert "dead_letter_dropped" in err
    assert await depth(broker, dlq) == 0
    assert service.metrics.dead_letters.labels("unknown_price")._value.get() == 1
    assert service.metrics.dead_letters.labels("malformed_json")._value.get() == 2


async def _at_least(broker: Peer, queue: str, count: int) -> bool:
    return await depth(broker, queue) >= count


async def test_a_parked_event_refused_on_registration_is_replayed_and_refused_again(
    service: Service, broker: Peer, database_url: str, amqp_url: str
) -> None:
    """Dead-lettered through the outbox (parked, then refused when its session came): a replay of it is
    a first delivery, refused again with its reason, not dropped as a duplicate."""
    await consume(service)
    await broker.send("checkout.session.expired", {"session": "cs_dl_2"}, "evt-expired-2")
    await broker.send("checkout.session.payment_succeeded", {"session": "cs_dl_2", "payment": "pi_2"}, "evt-paid-2")
    await broker.send("checkout.session.created", created("cs_dl_2", "price_pro_monthly"), "evt-created-2")
    assert await eventually(lambda: _at_least(broker, broker.topology.dead_letter_queue, 1))
    [letter] = await listed(database_url, amqp_url)
    assert (letter["event_id"], letter["session"]) == ("evt-paid-2", "cs_dl_2")
    first_reason = letter["reason"]
    code, _, err = await cli(database_url, amqp_url, "dead-letters", "replay", "--id", "evt-paid-2")
    assert code == 0, err

    async def refused_again() -> bool:
        letters = await listed(database_url, amqp_url)
        return [(x["event_id"], x["reason"], x["replays"]) for x in letters] == [("evt-paid-2", first_reason, 1)]

    assert await eventually(refused_again)
    assert service.metrics.messages_consumed.labels("checkout.session.payment_succeeded", "duplicate")._value.get() == 0


async def test_bad_arguments_and_a_missing_queue_exit_2(database_url: str, amqp_url: str) -> None:
    for args in (
        ("dead-letters", "replay"),
        ("dead-letters", "replay", "--reason", "x", "--id", "y"),
        ("dead-letters", "list", "--limit", "0"),
        ("dead-letters", "list", "--limit", "many"),
        ("dead-letters", "drop"),
        ("dead-letters", "drop", "--id", " "),
    ):
        code, out, err = await cli(database_url, amqp_url, *args)
        assert code == 2, (args, err)
        assert out == ""
        assert "error:" in err
    # A vhost where the service never ran has no dead-letter queue.
    code, _, err = await cli(database_url, amqp_url, "dead-letters", "list")
    assert code == 2
    assert "has the service run on this vhost?" in err
    unreachable = "amqp://guest:guest@127.0.0.1:1/"
    code, _, err = await cli(database_url, unreachable, "dead-letters", "list")
    assert code == 1, err
    assert "cannot reach" in err


REPLAYED = 1500


async def test_a_replay_killed_half_way_loses_none_and_applies_none_twice(
    service: Service, broker: Peer, database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    await consume(service)
    ids = [f"evt-{uuid.uuid4()}" for _ in range(REPLAYED)]
    for number, event_id in enumerate(ids):
        await broker.send("checkout.session.created", created(f"cs_kill_{number}"), event_id)
    dlq = broker.topology.dead_letter_queue
    assert await eventually(lambda: _at_least(broker, dlq, REPLAYED), timeout=120)
    # The consumer stops while the replay runs, so that the kill lands with most events still queued.
    await service.subscriptions.cancel_all()
    catalog = tmp_path / "fix.yaml"
    catalog.write_text(FIX, encoding="utf-8")
    code, _, err = await cli(database_url, amqp_url, "catalog", "apply", str(catalog))
    assert code == 0, err

    env = {**os.environ, "UPSELL_AMQP_URL": amqp_url, "UPSELL_DATABASE_URL": database_url}
    replay = await asyncio.create_subprocess_exec(
        UPSELL,
        "dead-letters",
        "replay",
        "--all",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert await eventually(lambda: _at_most(broker, dlq, REPLAYED - 200), timeout=60)
    finally:
        replay.send_signal(signal.SIGKILL)
        await replay.wait()
    left = await _eventually_settled(broker, dlq)
    inbound = await inbound_depth(broker)
    assert 0 < left < REPLAYED
    # Each event is in one queue or the other, the one in flight possibly in both.
    assert REPLAYED <= left + inbound <= REPLAYED + 1

    code, _, err = await cli(database_url, amqp_url, "dead-letters", "replay", "--all")
    assert code == 0, err
    await consume(service)

    async def all_registered() -> bool:
        return bool(await service.pool.fetchval("select count(*) from checkout_sessions") == REPLAYED)

    assert await eventually(all_registered, timeout=120)
    assert await depth(broker, dlq) == 0
    seen = await service.pool.fetchval("select count(*) from inbox where event_id = any($1::text[])", ids)
    assert seen == REPLAYED
    duplicates = service.metrics.messages_consumed.labels("checkout.session.created", "duplicate")._value.get()
    assert duplicates <= 1
    assert await inbound_depth(broker) == 0


async def _at_most(broker: Peer, queue: str, count: int) -> bool:
    return await depth(broker, queue) <= count


async def _eventually_settled(broker: Peer, queue: str) -> int:
    """The queue's depth once the broker has taken back what the killed command held."""
    previous = -1
    while True:
        await asyncio.sleep(0.5)
        now = await depth(broker, queue)
        if now == previous:
            return now
        previous = now
