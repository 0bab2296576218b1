"""Checkout session use cases: register, toggle the upsell, complete, expire.

Each runs inside a unit of work that the caller opens, so that an inbound event's inbox row, the
session change and the outgoing event commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from contracts.events import LineItemsUpdated, SessionCompleted, UpsellEvaluated
from contracts.sessions import DiscountInput, SessionInput, SessionView
from service.app import views
from service.app.errors import Conflict, InvalidInput, NotFound, UseCaseError
from service.app.outgoing import emit
from service.app.ports import UnitOfWork
from service.app.prepared import NOTHING, Prepared
from service.domain import session as domain
from service.domain.catalog import Price, Violations
from service.domain.coupons import promotion_code_refusal
from service.domain.money import is_known_locale
from service.domain.upsell import evaluate

log = structlog.get_logger(__name__)

DEFAULT_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Registered:
    session: domain.CheckoutSession
    view: SessionView
    """The session's view as of `now`: the one its `checkout.session.upsell_evaluated` carries, unless
    events parked for it were applied after."""


async def register_session(
    uow: UnitOfWork,
    data: SessionInput,
    now: datetime,
    secret_hash: bytes | None,
    *,
    late_ok: bool = False,
    prepared: Prepared = NOTHING,
) -> Registered:
    """Registers a session, decides its upsell against the catalog as it is now, and announces it.

    `late_ok`: an event consumed after its session's `expires_at` (a backlog, an outage) still registers
    the session, already expired by time, so that its payment completes it and nothing paid is lost.
    `prepared`: what the caller's batch read under the session's lock (its prices, whether the id is free).
    """
    await uow.lock_session(data.id)
    problems = Violations()
    wanted = {item.price for item in data.line_items}
    found = prepared.prices_of(wanted)
    if found is None:
        found = await uow.prices.with_upsells(wanted)
    prices = _line_prices(found, data, problems)
    discounts = [await _discount(uow, d, data.currency, now, problems, i) for i, d in enumerate(data.discounts)]
    locale = data.locale or "en"
    if not is_known_locale(locale):
        problems.add("invalid_locale", f"unknown locale {locale!r}", "$.locale")
    if data.expires_at is not None and data.expires_at <= now and not late_ok:
        problems.add("expires_at_past", "`expires_at` must be in the future", "$.expires_at")
    if problems:
        raise InvalidInput(problems.items, "the session cannot be registered")
    upsell_of = {p.id: found[p.upsell] for p in prices if p.upsell in found}
    decision = evaluate(data.mode, prices, upsell_of)
    trial = data.subscription_data.trial_period_days if data.subscription_data else None
    if trial is None and decision.initial is not None:
        trial = decision.initial.trial_period_days
    session = domain.CheckoutSession(
        id=data.id,
        mode=data.mode,
        currency=data.currency,
        line_items=tuple(domain.LineItem(p, item.quantity) for p, item in zip(prices, data.line_items, strict=True)),
        upsell=domain.Upsell(decision.eligible, decision.reason, decision.initial, decision.upsell),
        created_at=now,
        expires_at=data.expires_at or now + DEFAULT_LIFETIME,
        customer=data.customer,
        locale=locale,
        discounts=tuple(d for d in discounts if d is not None),
        trial_period_days=trial,
        metadata=data.metadata,
    )
    if not await uow.sessions.add(session, secret_hash, free=data.id in prepared.free):
        raise Conflict(f"session {data.id!r} already exists", "session_exists")
    view = views.session_view(session, now)
    await emit(uow.outbox, UpsellEvaluated, view, session.id, now)
    return Registered(session, view)


def _line_prices(found: dict[str, Price], data: SessionInput, problems: Violations) -> list[Price]:
    prices = []
    for index, item in enumerate(data.line_items):
        field = f"$.line_items[{index}].price"
        price = found.get(item.price)
        if price is None:
            problems.add("unknown_price", f"price {item.price!r} does not exist", field)
            continue
        if not price.active:
            problems.add("price_inactive", f"price {item.price!r} is not active", field)
        if price.currency != data.currency:
            problems.add("currency_mismatch", f"price {item.price!r} is in {price.currency}", field)
        prices.append(price)
    return prices


async def _discount(
    uow: UnitOfWork, given: DiscountInput, currency: str, now: datetime, problems: Violations, index: int
) -> domain.Discount | None:
    field = f"$.discounts[{index}]"
    if (given.coupon is None) == (given.promotion_code is None):
        problems.add("invalid_discount", "give exactly one of `coupon` and `promotion_code`", field)
        return None
    coupon_id = given.coupon
    if given.promotion_code is not None:
        promo = await uow.promotion_codes.get(given.promotion_code)
        refusal = "promotion_code_unknown" if promo is None else promotion_code_refusal(promo, now)
        if promo is None or refusal is not None:
            problems.add(
                refusal or "promotion_code_unknown",
                f"promotion code {given.promotion_code!r} cannot be used",
                field,
            )
            return None
        coupon_id = promo.coupon
    assert coupon_id is not None
    coupon = await uow.coupons.get(coupon_id)
    if coupon is None:
        problems.add("coupon_not_found", f"coupon {coupon_id!r} does not exist", field)
        return None
    if not coupon.active:
        problems.add("coupon_inactive", f"coupon {coupon_id!r} is not active", field)
    if coupon.amount_off is not None and coupon.currency != currency:
        problems.add("coupon_currency_mismatch", f"coupon {coupon_id!r} is in {coupon.currency}", field)
    return domain.Discount(coupon, given.promotion_code)


Authorize = Callable[[bytes | None], None]
"""Given the digest of a session's client secret, raises when the caller may not change the session."""


async def _locked(
    uow: UnitOfWork, session_id: str, authorize: Authorize | None = None, prepared: Prepared = NOTHING
) -> domain.CheckoutSession:
    """The session, locked for this transaction against every other writer, in any process (by the
    caller's batch, when `prepared` holds it); `authorize` is asked first, under the lock, so a caller
    refused learns nothing of the session."""
    if session_id in prepared.sessions:
        found = prepared.sessions[session_id]
    else:
        found = await uow.locked_session(session_id)
    if authorize is not None:
        authorize(None if found is None else found.secret_hash)
    if found is None:
        raise NotFound("session", session_id)
    return found.session


async def toggle_upsell(
    uow: UnitOfWork,
    session_id: str,
    selected: bool,
    now: datetime,
    authorize: Authorize | None = None,
    prepared: Prepared = NOTHING,
) -> SessionView:
    """Selects or unselects the upsell; a change is saved with the next version and announced. The view
    answered is the one the event carries."""
    session = await _locked(uow, session_id, authorize, prepared)
    try:
        changed = domain.toggle(session, selected, now)
    except domain.SessionClosed as closed:
        raise Conflict(str(closed), f"session_{closed.status}") from None
    except domain.UpsellUnavailable:
        raise Conflict(f"the session has no upsell ({session.upsell.reason})", "upsell_not_available") from None
    view = views.session_view(changed, now)
    if changed is not session:
        await uow.sessions.save(changed)
        await emit(uow.outbox, LineItemsUpdated, view, view.id, now)
    return view


async def complete_session(
    uow: UnitOfWork, session_id: str, payment: str | None, now: datetime, *, reference_required: bool = False
) -> domain.CheckoutSession:
    """Completes a paid session once; later calls with the same payment (or none) return it unchanged and
    publish nothing, one with another payment is refused naming the first."""
    session = await _locked(uow, session_id)
    try:
        done = domain.complete(session, now, payment, reference_required=reference_required)
    except domain.SessionClosed as closed:
        raise Conflict(str(closed), f"session_{closed.status}") from None
    except domain.PaymentMismatch as mismatch:
        raise Conflict(str(mismatch), "payment_mismatch") from None
    except domain.PaymentRequired as required:
        raise UseCaseError(str(required), "payment_required") from None
    if done is not session:
        await uow.sessions.save(done)
        for applied in done.discounts:
            # The limit is checked when the session is registered; a payment that completes after
            # the last redemption was taken by another session is honoured, and reported.
            if applied.promotion_code is not None and not await uow.promotion_codes.redeem(applied.promotion_code):
                log.warning("promotion_code_over_redeemed", promotion_code=applied.promotion_code)
        await emit(uow.outbox, SessionCompleted, views.completed_view(done, now), done.id, now)
    return done


async def expire_session(uow: UnitOfWork, session_id: str) -> domain.CheckoutSession:
    session = await _locked(uow, session_id)
    expired = domain.expire(session)
    if expired is not session:
        await uow.sessions.save(expired)
    return expired
