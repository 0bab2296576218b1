"""RabbitMQ events: one envelope `{id, type, version, created, data}` tagged by `type`.

Inbound on exchange `checkout`; outbound on exchange `upsell` with the routing key equal to `type`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from contracts.catalog import Id, Instant, Text, in_utc
from contracts.sessions import CompletedSession, SessionInput, SessionView
from contracts.subscriptions import ProductSwitched, UpgradeOrder

EventId = Annotated[str, Meta(min_length=1, max_length=200)]


class SessionRef(Struct):
    """Names a session."""

    session: Id


class PaymentSucceeded(Struct):
    """A session was paid; `payment` is the payment provider's reference."""

    session: Id
    payment: Text | None = None
    payment_intent: Text | None = None
    """Stripe's name for the same reference; used when `payment` is absent."""

    @property
    def reference(self) -> str | None:
        return self.payment if self.payment is not None else self.payment_intent


class _Envelope(Struct, tag_field="type", kw_only=True):
    id: EventId
    """Unique per event; an event re-sent after a failure keeps its id."""
    version: Literal[1] = 1
    """The envelope's version; a breaking change is a new version, which this service does not take."""
    created: Instant | None = None

    def __post_init__(self) -> None:
        if self.created is not None:
            self.created = in_utc(self.created)


class SessionCreated(_Envelope, tag="checkout.session.created"):
    """A backend registers a checkout session."""

    data: SessionInput


class SessionPaymentSucceeded(_Envelope, tag="checkout.session.payment_succeeded"):
    """The session was paid; the service completes it once."""

    data: PaymentSucceeded


class SessionExpired(_Envelope, tag="checkout.session.expired"):
    """The session expired; it refuses toggles from now on."""

    data: SessionRef


InboundEvent = SessionCreated | SessionPaymentSucceeded | SessionExpired


class UpsellEvaluated(_Envelope, tag="checkout.session.upsell_evaluated"):
    """Published after a session is registered: its view with the upsell decision."""

    data: SessionView


class LineItemsUpdated(_Envelope, tag="checkout.session.line_items_updated"):
    """Published after a toggle changes the selection: the new view."""

    data: SessionView


class SessionCompleted(_Envelope, tag="checkout.session.completed"):
    """Published once when a session is paid: everything fulfillment needs."""

    data: CompletedSession


class SubscriptionProductSwitched(_Envelope, tag="subscription.product_switched"):
    """Confirms a product switch: the new product's name and price, effective at the next billing date."""

    data: ProductSwitched


class UpgradeOrderCreated(_Envelope, tag="upgrade_order.created"):
    """An upgrade order placed on a customer's behalf (or through an upgrade link)."""

    data: UpgradeOrder


OutboundEvent = (
    UpsellEvaluated | LineItemsUpdated | SessionCompleted | SubscriptionProductSwitched | UpgradeOrderCreated
)

INBOUND_TYPES: tuple[str, ...] = tuple(str(t.__struct_config__.tag) for t in InboundEvent.__args__)
OUTBOUND_TYPES: tuple[str, ...] = tuple(str(t.__struct_config__.tag) for t in OutboundEvent.__args__)
