"""What the use cases need from storage: typed protocols that the PostgreSQL adapter implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, TypeVar

from service.app.prepared import ChangeRead, LockedSession, Prepared
from service.domain.catalog import Coupon, Price, Product, PromotionCode
from service.domain.reports import SessionFacts, UpgradeOrderFacts
from service.domain.session import CheckoutSession
from service.domain.subscriptions import Subscription, UpgradeLinkRecord, UpgradeOrder, UpgradePath

T = TypeVar("T")


class Documents(Protocol[T]):
    """A catalog table of documents keyed by id."""

    async def get(self, key: str) -> T | None: ...

    async def put(self, key: str, item: T) -> None: ...


class Products(Documents[Product], Protocol):
    async def in_group(self, plan_group: str) -> list[Product]: ...


class Prices(Documents[Price], Protocol):
    async def of_product(self, product_id: str) -> list[Price]: ...

    async def with_upsells(self, keys: Iterable[str]) -> dict[str, Price]:
        """The prices with these ids and the prices they name as their upsell, in one read."""
        ...

    async def upselling_to(self, keys: Iterable[str]) -> list[Price]:
        """The prices that name one of these as their upsell, by id."""
        ...


class PromotionCodes(Documents[PromotionCode], Protocol):
    async def redeem(self, code: str) -> bool:
        """Counts one redemption, safely under concurrent completions; False past the limit."""
        ...


class Sessions(Protocol):
    async def get(self, session_id: str, *, for_update: bool = False) -> CheckoutSession | None: ...

    async def add(self, session: CheckoutSession, secret_hash: bytes | None, *, free: bool = False) -> bool:
        """Inserts a new session; False when the id is taken. `free`: the id is known to be free under the
        session's lock, and the row is written with the commit."""
        ...

    async def save(self, session: CheckoutSession) -> None: ...

    async def set_secret_hash(self, session_id: str, secret_hash: bytes) -> None: ...


class Inbox(Protocol):
    async def first_delivery(self, event_id: str, event_type: str) -> bool:
        """Records the event id; False when it was seen before (a duplicate)."""
        ...

    async def forget(self, event_id: str) -> None:
        """Drops the record of an event that was refused, so that a replay of it is applied, not skipped."""
        ...


class ParkedEvents(Protocol):
    async def park(self, event_id: str, session_id: str, body: bytes) -> None: ...

    async def take(self, session_id: str) -> list[bytes]:
        """Removes and returns the events parked for a session, in arrival order."""
        ...

    async def drop(self, seqs: Iterable[int]) -> None:
        """Removes parked events read already (with the commit)."""
        ...


class Outbox(Protocol):
    async def add(self, event_id: str, event_type: str, correlation_id: str, body: bytes) -> None: ...

    async def add_dead_letter(
        self, event_id: str, event_type: str, correlation_id: str, body: bytes, reason: str, detail: str
    ) -> None:
        """Queues an inbound event for the dead-letter exchange, with its reason, in this transaction."""
        ...


class UpgradePaths(Documents[UpgradePath], Protocol):
    async def all(self) -> list[UpgradePath]: ...


class ApiKeys(Protocol):
    async def add(self, key_id: str, name: str, roles: list[str], secret_hash: bytes) -> None: ...

    async def revoke(self, key_id: str) -> bool:
        """Revokes a live key; False when there is none with this id."""
        ...


class UpgradeOrders(Protocol):
    async def add(self, order: UpgradeOrder) -> None: ...


class UpgradeLinks(Protocol):
    async def add(self, link: UpgradeLinkRecord) -> None: ...

    async def get(self, link_id: str, *, for_update: bool = False) -> UpgradeLinkRecord | None: ...

    async def use(self, link_id: str, order_id: str, now: datetime) -> None: ...


class Reports(Protocol):
    """The facts the summary report is computed from (in `service.domain.reports`), as stored."""

    async def sessions(self, start: datetime, end: datetime) -> list[SessionFacts]:
        """The checkout sessions created or completed in `[start, end)`."""
        ...

    async def upgrade_orders(self, start: datetime, end: datetime) -> list[UpgradeOrderFacts]:
        """The upgrade orders placed in `[start, end)`."""
        ...


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """The answer to a request sent with an Idempotency-Key, kept for its retries: `sealed` is its body,
    readable only with the key of the caller who sent it."""

    owner: str
    key: str
    fingerprint: bytes
    status: int
    sealed: bytes
    created: datetime


class IdempotentAnswers(Protocol):
    async def find(self, owner: str, key: str, since: datetime) -> KeptAnswer | None:
        """The answer kept for `owner`'s `key` at `since` or later."""
        ...

    async def keep(self, answer: KeptAnswer, expired_before: datetime) -> None:
        """Keeps an answer, in place of one for the same key kept before `expired_before`."""
        ...


class UnitOfWork(Protocol):
    """One transaction around one use case: everything it writes commits together or not at all."""

    products: Products
    prices: Prices
    coupons: Documents[Coupon]
    promotion_codes: PromotionCodes
    sessions: Sessions
    inbox: Inbox
    parked: ParkedEvents
    outbox: Outbox
    api_keys: ApiKeys
    subscriptions: Documents[Subscription]
    upgrade_paths: UpgradePaths
    upgrade_orders: UpgradeOrders
    upgrade_links: UpgradeLinks
    reports: Reports
    idempotent_answers: IdempotentAnswers

    async def lock_session(self, session_id: str) -> None:
        """Serializes the work on one session across processes until the transaction ends."""
        ...

    async def locked_session(self, session_id: str) -> LockedSession | None:
        """Locks one session as `lock_session` does and reads it with its client secret's digest, in one
        round trip; None when there is no such session (the lock is taken all the same)."""
        ...

    async def lock_sessions(self, session_ids: Iterable[str]) -> None:
        """Locks several sessions in one round trip."""
        ...

    async def read_ahead(
        self,
        events: Sequence[tuple[str, str]],
        new_sessions: Sequence[str],
        prices: Iterable[str],
        lock: Iterable[str] = (),
    ) -> Prepared:
        """For a batch: locks the sessions of `lock` as `lock_sessions` does, then records the events (id,
        type) in the inbox and reads which of `new_sessions` (locked by then) are free, the events
        parked for them and the prices with their upsells, all in one round trip."""
        ...

    async def change_read(self, subscription_id: str, price_id: str, promotion_code: str | None) -> ChangeRead:
        """What pricing a move of the subscription to `price_id` reads (`ChangeRead`), in one round trip."""
        ...

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """A unit of work; `read_only` ones only read, with no transaction around them."""
        ...

    async def read_session(self, session_id: str) -> tuple[CheckoutSession, bytes | None] | None:
        """A session and its client secret's hash as committed, outside any unit of work."""
        ...

    async def gathered(self, session_id: str, work: Callable[[UnitOfWork, Prepared], Awaitable[T]]) -> T:
        """Runs `work` in a unit of work, committed before this returns, with what the unit of work read
        of the session under its lock. The unit of work may carry works
        on other sessions too: `work` changes `session_id` only, and a refusal of it (an exception) must
        come before it writes, or every work of that unit of work runs again alone."""
        ...

    async def gathered_registration(
        self, session_id: str, prices: Iterable[str], work: Callable[[UnitOfWork, Prepared], Awaitable[T]]
    ) -> T:
        """As `gathered`, for `work` registering the session `session_id`, whose line items have `prices`."""
        ...
