"""What a batch read under its locks, once, for all of its writes: handed to each use case as a value.

A use case given `Prepared()` (nothing known) reads what it needs itself; given what a batch read, it
reads nothing of that again. Either way it behaves the same: the snapshot holds facts taken under the
locks the batch holds, never a cache that outlives its unit of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from service.domain.catalog import Coupon, Price, Product, PromotionCode
from service.domain.session import CheckoutSession
from service.domain.subscriptions import Subscription, UpgradePath


@dataclass(frozen=True, slots=True)
class Parked:
    seq: int
    body: bytes


@dataclass(frozen=True, slots=True)
class LockedSession:
    session: CheckoutSession
    secret_hash: bytes | None


@dataclass(frozen=True, slots=True)
class Prepared:
    recorded: frozenset[str] = frozenset()
    """Inbound event ids the read recorded in the inbox."""
    first_deliveries: frozenset[str] = frozenset()
    """Those of them seen for the first time (the others are duplicates)."""
    new_sessions: frozenset[str] = frozenset()
    """Ids of sessions to be registered, locked and looked up."""
    free: frozenset[str] = frozenset()
    """Those of them no session has yet."""
    parked: Mapping[str, tuple[Parked, ...]] = field(default_factory=dict)
    """For each new session, the events that waited for it, in arrival order."""
    prices_asked: frozenset[str] = frozenset()
    prices: Mapping[str, Price] = field(default_factory=dict)
    """The prices asked for, and the prices they name as their upsell."""
    sessions: Mapping[str, LockedSession | None] = field(default_factory=dict)
    """Sessions locked and read for a change (None: no such session)."""

    def first_delivery(self, event_id: str) -> bool | None:
        """Whether the event is new, None when the read did not record it."""
        return event_id in self.first_deliveries if event_id in self.recorded else None

    def prices_of(self, wanted: Iterable[str]) -> dict[str, Price] | None:
        """The prices and their upsells, None unless the read asked for all of them."""
        keys = set(wanted)
        if not keys <= self.prices_asked:
            return None
        found = {key: self.prices[key] for key in keys if key in self.prices}
        for price in list(found.values()):
            if price.upsell is not None and price.upsell in self.prices:
                found[price.upsell] = self.prices[price.upsell]
        return found


NOTHING = Prepared()


@dataclass(frozen=True, slots=True)
class ChangeRead:
    """What pricing a change of a subscription reads, in one statement (one snapshot): the subscription,
    the price and product it is on, the price asked for with its product, a promotion code with its
    coupon, and every upgrade path. None where there is no such row."""

    subscription: Subscription | None
    price: Price | None
    product: Product | None
    target_price: Price | None
    target_product: Product | None
    promotion_code: PromotionCode | None
    coupon: Coupon | None
    upgrade_paths: tuple[UpgradePath, ...]
