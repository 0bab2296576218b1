"""The committed schema files match the contracts, and the contracts keep the interface's names."""

from __future__ import annotations

import msgspec
import pytest

from contracts import events
from contracts.generate import SCHEMAS, documents, render
from contracts.sessions import SessionView


@pytest.mark.parametrize("name", sorted(documents()))
def test_committed_schema_is_current(name: str) -> None:
    committed = (SCHEMAS / name).read_text(encoding="utf-8")
    assert committed == render(documents()[name]), f"contracts/schemas/{name} is stale: run `make schemas`"


def test_event_types_are_spec_names() -> None:
    assert events.INBOUND_TYPES == (
        "checkout.session.created",
        "checkout.session.payment_succeeded",
        "checkout.session.expired",
    )
    assert events.OUTBOUND_TYPES == (
        "checkout.session.upsell_evaluated",
        "checkout.session.line_items_updated",
        "checkout.session.completed",
        "subscription.product_switched",
        "upgrade_order.created",
    )


def test_session_view_has_spec_fields() -> None:
    spec = {
        "id", "status", "mode", "currency", "customer", "locale", "line_items", "amount_subtotal",
        "amount_discount", "amount_total", "discounts", "trial_period_days", "upsell", "version", "metadata",
    }  # fmt: skip
    assert spec <= set(SessionView.__struct_fields__)


def test_consumed_events_accept_unknown_fields() -> None:
    body = b'{"id": "e", "type": "checkout.session.expired", "data": {"session": "s", "later": 1}, "new": true}'
    event = msgspec.json.decode(body, type=events.InboundEvent)
    assert isinstance(event, events.SessionExpired)


def test_an_envelope_of_another_version_is_refused() -> None:
    body = b'{"id": "e1", "type": "checkout.session.expired", "version": 2, "data": {"session": "cs_1"}}'
    with pytest.raises(msgspec.ValidationError, match="version"):
        msgspec.json.decode(body, type=events.InboundEvent)
    assert msgspec.json.decode(body.replace(b'"version": 2', b'"version": 1'), type=events.InboundEvent).id == "e1"
