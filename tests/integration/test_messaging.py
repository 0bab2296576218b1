"""The consumer, inbox, outbox and relay on the real RabbitMQ and PostgreSQL (own vhost and database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
import aiormq
import msgspec
import pytest
from aio_pika.exceptions import ChannelInvalidStateError
from pamqp.commands import Basic

from contracts.events import OutboundEvent
from service.adapters.rabbitmq.relay import Message, OutboxRelay, outbox_properties, publish_together
from service.bootstrap import Service, build, utcnow
from service.domain.partitions import partition_of
from service.settings import Settings
from tests.broker import Peer, envelope, peer, session_data
from tests.integration.helpers import eventually, seed_example_catalog

pytestmark = pytest.mark.integration

CREATED: dict[str, Any] = {
    "id": "cs_msg_1",
    "mode": "subscription",
    "currency": "usd",
    "line_items": [{"price": "price_pro_monthly"}],
}
decode_outbound = msgspec.json.Decoder(OutboundEvent).decode


@pytest.fixture
async def running(database_url: str, amqp_url: str) -> AsyncIterator[Service]:
    """The service's consumer and relay in this process, against the test's database and vhost."""
    service = await build(Settings(amqp_url=amqp_url, database_url=database_url, admin_token="t"))
    await seed_example_catalog(service.pool)
    # A long poll: events must arrive by NOTIFY (the polling fallback has a test of its own).
    service.relay = OutboxRelay(
        service.pool, service.declared.outbound, service.declared.dead_letter, service.metrics, poll_interval=60.0
    )
    relay = asyncio.create_task(service.relay.run())
    await service.subscriptions.take_all()
    yield service
    await service.subscriptions.cancel_all()
    relay.cancel()
    await asyncio.gather(relay, return_exceptions=True)
    await service.connection.close()
    await service.pool.close()


@pytest.fixture
async def broker(running: Service, amqp_url: str) -> AsyncIterator[Peer]:
    async with peer(amqp_url) as p:
        yield p


async def test_created_event_is_evaluated_and_published_with_properties(running: Service, broker: Peer) -> None:
    await broker.send("checkout.session.created", CREATED, event_id="evt-1")
    message = await broker.next_event()
    event = decode_outbound(message.body)
    assert message.routing_key == "checkout.session.upsell_evaluated"
    assert message.type == "checkout.session.upsell_evaluated"
    assert message.message_id == event.id
    assert message.correlation_id == "cs_msg_1"
    assert message.content_type == "application/json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.timestamp is not None
    upsell = session_data(message.body).upsell
    assert upsell.eligible is True
    assert upsell.savings is not None
    assert upsell.savings.amount == 20000

    async def marked() -> bool:
        # The relay marks its batch after the broker's confirms, so just after the event arrives.
        return bool(await running.pool.fetchval("select count(*) from outbox where published_at is not null") == 1)

    assert await eventually(marked)


async def test_duplicate_deliveries_have_one_effect(running: Service, broker: Peer) -> None:
    for _ in range(3):
        await broker.send("checkout.session.created", CREATED, event_id="evt-dup")
    await broker.send("checkout.session.payment_succeeded", {"session": "cs_msg_1"}, event_id="evt-pay")
    await broker.send("checkout.session.payment_succeeded", {"session": "cs_msg_1"}, event_id="evt-pay")
    first = await broker.next_event()
    second = await broker.next_event()
    assert [first.type, second.type] == ["checkout.session.upsell_evaluated", "checkout.session.completed"]
    assert await broker.no_more_events()
    assert await running.pool.fetchval("select count(*) from inbox") == 2


async def test_concurrent_duplicates_have_one_effect(running: Service, broker: Peer) -> None:
    body = envelope("checkout.session.created", CREATED, "evt-race")
    await asyncio.gather(*(broker.publish(body, "checkout.session.created") for _ in range(10)))
    assert (await broker.next_event()).type == "checkout.session.upsell_evaluated"
    assert await broker.no_more_events(1.5)
    assert await running.pool.fetchval("select count(*) from outbox") == 1


async def test_payment_before_created_is_parked_then_applied(running: Service, broker: Peer) -> None:
    await broker.send("checkout.session.payment_succeeded", {"session": "cs_msg_1", "payment": "pi_9"})

    async def parked() -> bool:
        return bool(await running.pool.fetchval("select count(*) from parked_events") == 1)

    assert await eventually(parked)
    await broker.send("checkout.session.created", CREATED)
    evaluated, completed = await broker.next_event(), await broker.next_event()
    assert evaluated.type == "checkout.session.upsell_evaluated"
    assert completed.type == "checkout.session.completed"
    assert session_data(completed.body).status == "complete"
    assert await running.pool.fetchval("select count(*) from parked_events") == 0


POISON = [
    (b"{this is not json", "checkout.session.created", "malformed_json"),
    # Not JSON either, but the typed decoder fails on its shape (an array) before reaching the cut.
    (b"[1, 2", "checkout.session.created", "malformed_json"),
    (
        envelope("checkout.session.refunded", {"session": "x"}),
        "checkout.session.refunded",
        "unknown_event_type",
    ),
    (
        envelope("checkout.session.created", {"id": "cs_bad", "mode": "subscription"}),
        "checkout.session.created",
        "invalid_event",
    ),
    (
        envelope("checkout.session.created", {**CREATED, "id": "cs_unknown", "line_items": [{"price": "price_x"}]}),
        "checkout.session.created",
        "unknown_price",
    ),
]


@pytest.mark.parametrize(("body", "routing_key", "reason"), POISON, ids=[f"{p[2]}-{i}" for i, p in enumerate(POISON)])
async def test_bad_input_is_dead_lettered_with_reason_and_the_queue_goes_on(
    running: Service, broker: Peer, body: bytes, routing_key: str, reason: str
) -> None:
    await broker.publish(body, routing_key, message_id="poison-1")
    await broker.send("checkout.session.created", CREATED)
    dead = await broker.dead_letter()
    assert dead.body == body
    assert dead.headers["x-upsell-reason"] == reason
    assert dead.headers["x-upsell-detail"]
    assert dead.message_id == "poison-1"
    good = await broker.next_event()
    assert good.type == "checkout.session.upsell_evaluated"
    # Undecodable messages without an AMQP type are counted as "unknown"; decoded ones by their type.
    label = "checkout.session.created" if reason == "unknown_price" else "unknown"
    assert running.metrics.messages_consumed.labels(label, "dead_lettered")._value.get() == 1


async def test_expired_event_then_toggle_is_refused(running: Service, broker: Peer) -> None:
    from service.app.checkout import toggle_upsell
    from service.app.errors import Conflict

    await broker.send("checkout.session.created", CREATED)
    await broker.next_event()
    await broker.send("checkout.session.expired", {"session": "cs_msg_1"})

    async def expired() -> bool:
        return bool(await running.pool.fetchval("select status from checkout_sessions") == "expired")

    assert await eventually(expired)
    async with running.new_uow() as uow:
        with pytest.raises(Conflict) as refused:
            await toggle_upsell(uow, "cs_msg_1", True, utcnow())
    assert refused.value.code == "session_expired"


async def test_relay_publishes_committed_rows_in_order(running: Service, broker: Peer) -> None:
    async with running.pool.acquire() as conn, conn.transaction():
        for index in range(50):
            await conn.execute(
                "insert into outbox (event_id, type, correlation_id, body) values ($1, 'test.event', 's', $2)",
                f"e-{index}",
                msgspec.json.encode({"n": index}),
            )
    received = [await broker.next_event() for _ in range(50)]
    assert [m.message_id for m in received] == [f"e-{i}" for i in range(50)]

    async def all_marked() -> bool:
        return bool(await running.pool.fetchval("select count(*) from outbox where published_at is null") == 0)

    assert await eventually(all_marked)


async def test_payment_after_an_explicit_expiry_is_dead_lettered(running: Service, broker: Peer) -> None:
    await broker.send("checkout.session.created", CREATED)
    await broker.next_event()
    await broker.send("checkout.session.expired", {"session": "cs_msg_1"})
    await broker.send("checkout.session.payment_succeeded", {"session": "cs_msg_1"})
    dead = await broker.dead_letter()
    assert dead.headers["x-upsell-reason"] == "session_expired"
    assert await broker.no_more_events()


async def test_notify_wakes_the_relay_long_before_its_poll(running: Service, broker: Peer) -> None:
    # The fixture's relay polls only every 60 s (its first poll ran at start-up), so an event that
    # arrives within the 15 s wait came by NOTIFY.
    await asyncio.sleep(0.5)
    async with running.new_uow() as uow:
        await uow.outbox.add("e-notify", "test.event", "s", b"{}")
    message = await broker.next_event(timeout=15.0)
    assert message.message_id == "e-notify"


async def test_a_relay_whose_channel_is_closed_backs_off_without_holding_a_database_connection(
    running: Service,
) -> None:
    running.relay.stop()
    async with running.new_uow() as uow:
        await uow.outbox.add("e-closed", "test.event", "s-closed", b"{}")
    channel = await running.connection.channel(publisher_confirms=True)
    outbound = await channel.get_exchange(running.topology.outbound_exchange)
    await channel.close()
    relay = OutboxRelay(running.pool, outbound, running.declared.dead_letter, running.metrics)
    idle = running.pool.get_idle_size()
    with pytest.raises(ChannelInvalidStateError):
        await relay.publish_batch()
    assert running.pool.get_idle_size() == idle
    unmarked = await running.pool.fetchval("select count(*) from outbox where published_at is null")
    assert unmarked == 1


async def test_polling_publishes_what_no_notification_announced(running: Service, broker: Peer) -> None:
    # The fixture's relay (which polls once a minute) gives the relay lock up; this one takes it over.
    running.relay.stop()
    polling = OutboxRelay(
        running.pool, running.declared.outbound, running.declared.dead_letter, running.metrics, poll_interval=0.2
    )
    async with relaying(polling):
        async with running.pool.acquire() as conn, conn.transaction():
            # As a replica the session fires no triggers: the row is written without its NOTIFY.
            await conn.execute("set local session_replication_role = replica")
            await conn.execute(
                "insert into outbox (event_id, type, correlation_id, body) values ('e-quiet', 'test.event', 's', '{}')"
            )
        assert (await broker.next_event(timeout=5.0)).message_id == "e-quiet"


async def test_a_relay_publishes_the_partitions_it_owns_and_those_it_takes_over(running: Service, broker: Peer) -> None:
    running.relay.stop()
    await asyncio.sleep(0.2)
    partitions = running.topology.partitions
    mine = "s-mine"
    theirs = next(f"s-{n}" for n in range(100) if partition_of(f"s-{n}", partitions) != partition_of(mine, partitions))
    async with running.new_uow() as uow:
        await uow.outbox.add("e-theirs", "test.event", theirs, b"{}")
        await uow.outbox.add("e-mine", "test.event", mine, b"{}")
    relay = OutboxRelay(
        running.pool,
        running.declared.outbound,
        running.declared.dead_letter,
        running.metrics,
        partitions=[partition_of(mine, partitions)],
    )
    async with relaying(relay):
        assert (await broker.next_event(timeout=10.0)).message_id == "e-mine"
        assert await broker.no_more_events(0.5)
        relay.own([partition_of(theirs, partitions)])
        assert (await broker.next_event(timeout=10.0)).message_id == "e-theirs"


@asynccontextmanager
async def relaying(relay: OutboxRelay) -> AsyncIterator[None]:
    """The relay runs for the block and is cancelled after it."""
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value


class Held:
    """Publishes as the relay does, except that the events of one session go to the broker, and are
    confirmed, only once `release` is set: a broker slow to confirm them."""

    def __init__(self, held: str) -> None:
        self.held = held
        self.release = asyncio.Event()
        self.attempted: list[str] = []

    async def __call__(
        self, channel: aiormq.Channel, messages: list[Message], confirm_within: float
    ) -> list[asyncio.Future[Any]]:
        self.attempted += [properties.message_id or "" for _, _, properties, _ in messages]
        passing = [message for message in messages if message[2].correlation_id != self.held]
        confirmed = iter(await publish_together(channel, passing, confirm_within))
        return [
            next(confirmed)
            if message[2].correlation_id != self.held
            else asyncio.ensure_future(self._later(channel, message, confirm_within))
            for message in messages
        ]

    async def _later(self, channel: aiormq.Channel, message: Message, confirm_within: float) -> Any:
        await self.release.wait()
        return await (await publish_together(channel, [message], confirm_within))[0]


async def test_a_slow_confirm_holds_up_only_its_own_session(running: Service, broker: Peer) -> None:
    running.relay.stop()
    await asyncio.sleep(0.2)
    for event_id in ("e-a1", "e-a2"):
        async with running.new_uow() as uow:
            await uow.outbox.add(event_id, "test.event", "s-a", b"{}")
    held = Held("s-a")
    relay = OutboxRelay(
        running.pool, running.declared.outbound, running.declared.dead_letter, running.metrics, publish=held
    )
    async with relaying(relay):
        assert await eventually(lambda: _true(held.attempted == ["e-a1"]))
        # s-a's first event is on its way and not confirmed: an event committed since goes out meanwhile,
        # and s-a's second waits for the first's confirm.
        async with running.new_uow() as uow:
            await uow.outbox.add("e-b1", "test.event", "s-b", b"{}")
        assert (await broker.next_event(timeout=10.0)).message_id == "e-b1"
        await asyncio.sleep(0.3)
        assert held.attempted == ["e-a1", "e-b1"]
        held.release.set()
        assert [(await broker.next_event(timeout=10.0)).message_id for _ in range(2)] == ["e-a1", "e-a2"]
        assert await eventually(lambda: _count_unmarked(running, 0))


async def test_a_session_with_a_backlog_does_not_hold_up_the_others(running: Service, broker: Peer) -> None:
    running.relay.stop()
    await asyncio.sleep(0.2)
    async with running.new_uow() as uow:
        for index in range(30):
            await uow.outbox.add(f"hot-{index}", "test.event", "s-hot", b"{}")
        await uow.outbox.add("cold-0", "test.event", "s-cold", b"{}")
    relay = OutboxRelay(
        running.pool, running.declared.outbound, running.declared.dead_letter, running.metrics, batch_size=10
    )
    async with relaying(relay):
        arrived = [(await broker.next_event(timeout=10.0)).message_id for _ in range(31)]
    # The other session's event goes out with the first of the backlog, not after it; the backlog in order.
    assert arrived.index("cold-0") <= 1
    assert [m for m in arrived if m != "cold-0"] == [f"hot-{index}" for index in range(30)]


async def _count_unmarked(running: Service, expected: int) -> bool:
    unmarked = await running.pool.fetchval("select count(*) from outbox where published_at is null")
    return bool(unmarked == expected)


async def test_readiness_reports_a_database_that_is_gone(running: Service) -> None:
    assert await running.readiness() == {"database": True, "broker": True}
    running.pool.terminate()
    assert await running.readiness() == {"database": False, "broker": True}


async def test_publishes_together_share_a_channel_with_single_ones(running: Service, broker: Peer) -> None:
    # Delivery tags stay in step with aiormq's own publishes on the same channel, and a body larger than
    # a frame goes in several.
    channel = await running.connection.channel(publisher_confirms=True)
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    exchange = running.topology.outbound_exchange
    large = b'{"pad": "' + b"x" * (3 * underlay.max_content_size) + b'"}'

    def message(event_id: str, body: bytes = b"{}") -> Message:
        return (exchange, "test.event", outbox_properties(event_id, "test.event", "s-t", utcnow()), body)

    first = await publish_together(underlay, [message("t-1"), message("t-2", large), message("t-3")], 10.0)
    single = await underlay.basic_publish(
        b"{}", exchange=exchange, routing_key="test.event", properties=message("t-4")[2]
    )
    last = await publish_together(underlay, [message("t-5"), message("t-6")], 10.0)
    confirms = await asyncio.gather(*first, *last)
    assert all(isinstance(confirm, Basic.Ack) for confirm in [*confirms, single])
    arrived = [await broker.next_event(timeout=10.0) for _ in range(6)]
    assert [m.message_id for m in arrived] == ["t-1", "t-2", "t-3", "t-4", "t-5", "t-6"]
    assert arrived[1].body == large
    assert not underlay.confirmations

    # Confirmations still open when the channel closes fail; none is left hanging.
    pending = await publish_together(underlay, [message(f"t-c{index}") for index in range(200)], 10.0)
    await channel.close()
    ended = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 10.0)
    assert all(isinstance(end, Basic.Ack | BaseException) for end in ended)
