"""Every outbound event goes out through `emit`, with its type taken from its envelope class's tag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import get_args

import msgspec
import pytest

from contracts.events import (
    LineItemsUpdated,
    OutboundEvent,
    SessionCompleted,
    SubscriptionProductSwitched,
    UpgradeOrderCreated,
    UpsellEvaluated,
)
from contracts.subscriptions import ProductSwitched, UpgradeOrder
from service.app.outgoing import emit
from service.app.ports import Outbox
from service.app.views import completed_view, session_view
from service.domain.catalog import Price, Recurring
from service.domain.session import CheckoutSession, LineItem, Upsell, complete

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MONTHLY = Price("price_m", "prod_pro", "usd", unit_amount=10000, recurring=Recurring("month"), upsell="price_y")
YEARLY = Price("price_y", "prod_pro", "usd", unit_amount=100000, recurring=Recurring("year"))
SESSION = CheckoutSession(
    id="cs_1",
    mode="subscription",
    currency="usd",
    line_items=(LineItem(MONTHLY, 1),),
    upsell=Upsell(True, None, original_price=MONTHLY, price=YEARLY),
    created_at=NOW,
    expires_at=NOW + timedelta(hours=24),
)
VIEW = session_view(SESSION, NOW)
COMPLETED = completed_view(complete(SESSION, NOW, "pi_1"), NOW)
SWITCHED = ProductSwitched("sub_1", "prod_team", "Team", "price_team", NOW + timedelta(days=30))
ORDER = UpgradeOrder("uo_1", "sub_1", "price_m", "price_y", 1, 965, 0, "key_1", "current", NOW, "usd")


@dataclass
class Row:
    event_id: str
    event_type: str
    correlation_id: str
    body: bytes


@dataclass
class FakeOutbox:
    rows: list[Row] = field(default_factory=list)

    async def add(self, event_id: str, event_type: str, correlation_id: str, body: bytes) -> None:
        self.rows.append(Row(event_id, event_type, correlation_id, body))

    async def add_dead_letter(
        self, event_id: str, event_type: str, correlation_id: str, body: bytes, reason: str, detail: str
    ) -> None:
        raise AssertionError("emit never dead-letters")


# How each outbound envelope class is emitted by the use cases, and the correlation id it carries.
EMITTED: dict[type[msgspec.Struct], tuple[Callable[[Outbox], Awaitable[None]], str]] = {
    UpsellEvaluated: (lambda outbox: emit(outbox, UpsellEvaluated, VIEW, VIEW.id, NOW), "cs_1"),
    LineItemsUpdated: (lambda outbox: emit(outbox, LineItemsUpdated, VIEW, VIEW.id, NOW), "cs_1"),
    SessionCompleted: (lambda outbox: emit(outbox, SessionCompleted, COMPLETED, COMPLETED.id, NOW), "cs_1"),
    SubscriptionProductSwitched: (
        lambda outbox: emit(outbox, SubscriptionProductSwitched, SWITCHED, SWITCHED.subscription, NOW),
        "sub_1",
    ),
    UpgradeOrderCreated: (lambda outbox: emit(outbox, UpgradeOrderCreated, ORDER, ORDER.subscription, NOW), "sub_1"),
}


def test_every_outbound_envelope_class_is_covered() -> None:
    assert set(EMITTED) == set(get_args(OutboundEvent))


@pytest.mark.parametrize("kind", get_args(OutboundEvent), ids=lambda kind: str(kind.__struct_config__.tag))
async def test_an_event_is_written_once_with_its_tag_as_type(kind: type[msgspec.Struct]) -> None:
    outbox = FakeOutbox()
    write, correlation_id = EMITTED[kind]
    await write(outbox)
    await write(outbox)

    first, second = outbox.rows
    assert first.event_type == second.event_type == kind.__struct_config__.tag
    assert first.correlation_id == correlation_id
    assert first.event_id != second.event_id  # each emission is a new event; a re-send keeps its row's id
    event = msgspec.json.decode(first.body, type=OutboundEvent)
    assert type(event) is kind
    assert (event.id, event.version, event.created) == (first.event_id, 1, NOW)
    assert msgspec.json.decode(first.body)["type"] == first.event_type
