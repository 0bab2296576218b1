"""A checkout session with its upsell: toggle, completion, expiry and invoice totals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.domain.catalog import Coupon, Price, Recurring
from service.domain.savings import Savings
from service.domain.session import (
    CheckoutSession,
    Discount,
    LineItem,
    PaymentMismatch,
    PaymentRequired,
    SessionClosed,
    Upsell,
    UpsellUnavailable,
    complete,
    due_today,
    expire,
    invoice,
    toggle,
)

CREATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = CREATED + timedelta(hours=24)
NOW = CREATED + timedelta(minutes=5)

MONTHLY = Price(
    "price_monthly", "prod_pro", "usd", unit_amount=10000, recurring=Recurring("month"), upsell="price_yearly"
)
YEARLY = Price("price_yearly", "prod_pro", "usd", unit_amount=100000, recurring=Recurring("year"))
SETUP_FEE = Price("price_setup", "prod_setup", "usd", type="one_time", unit_amount=5000)
HALF_FOR_FOUR_MONTHS = Coupon("half", percent_off=Decimal(50), duration="repeating", duration_in_months=4)
HALF_ON_PLAN = replace(HALF_FOR_FOUR_MONTHS, id="half_plan", applies_to=("prod_pro",))


def make_session(
    *,
    quantity: int = 1,
    coupons: tuple[Coupon, ...] = (HALF_ON_PLAN,),
    upsell: Upsell | None = None,
    locale: str = "en",
) -> CheckoutSession:
    return CheckoutSession(
        id="cs_1",
        mode="subscription",
        currency="usd",
        line_items=(LineItem(MONTHLY, quantity), LineItem(SETUP_FEE, 1)),
        upsell=upsell or Upsell(True, None, original_price=MONTHLY, price=YEARLY),
        created_at=CREATED,
        expires_at=EXPIRES,
        customer="cus_1",
        locale=locale,
        discounts=tuple(Discount(c) for c in coupons),
        trial_period_days=14,
        metadata={"order": "42"},
    )


def test_toggle_on_swaps_only_the_recurring_price() -> None:
    session = make_session(quantity=3)
    toggled = toggle(session, True, NOW)
    assert toggled.upsell.selected
    assert toggled.version == session.version + 1
    assert toggled.current_line_items() == (LineItem(YEARLY, 3), LineItem(SETUP_FEE, 1))
    assert toggled.line_items == session.line_items
    assert toggled.trial_period_days == 14
    assert toggled.discounts == session.discounts
    assert toggled.metadata == {"order": "42"}
    assert toggled.status == "open"
    assert session.current_line_items() == (LineItem(MONTHLY, 3), LineItem(SETUP_FEE, 1))
    assert not session.upsell.selected


def test_toggle_off_again_restores_the_initial_price() -> None:
    on = toggle(make_session(), True, NOW)
    off = toggle(on, False, NOW)
    assert not off.upsell.selected
    assert off.version == on.version + 1 == 3
    assert off.current_line_items() == (LineItem(MONTHLY, 1), LineItem(SETUP_FEE, 1))


@pytest.mark.parametrize("selected", [False, True], ids=["unselect-unselected", "select-selected"])
def test_toggle_to_same_value_changes_nothing(selected: bool) -> None:
    session = make_session(upsell=Upsell(True, None, MONTHLY, YEARLY, selected=selected))
    assert toggle(session, selected, NOW) is session
    assert session.version == 1


def test_toggle_on_complete_session_is_refused() -> None:
    done = complete(make_session(), NOW, "pi_1")
    with pytest.raises(SessionClosed) as raised:
        toggle(done, True, NOW)
    assert raised.value.status == "complete"


@pytest.mark.parametrize(
    "now",
    [EXPIRES, EXPIRES + timedelta(seconds=1), EXPIRES + timedelta(days=3)],
    ids=["at-expires-at", "just-after", "days-after"],
)
def test_toggle_after_expiry_is_refused(now: datetime) -> None:
    session = make_session()
    assert session.status_at(now) == "expired"
    with pytest.raises(SessionClosed) as raised:
        toggle(session, True, now)
    assert raised.value.status == "expired"


def test_toggle_just_before_expiry_works() -> None:
    assert toggle(make_session(), True, EXPIRES - timedelta(microseconds=1)).upsell.selected


def test_toggle_on_explicitly_expired_session_is_refused() -> None:
    with pytest.raises(SessionClosed) as raised:
        toggle(expire(make_session()), True, NOW)
    assert raised.value.status == "expired"


@pytest.mark.parametrize("selected", [True, False], ids=["select", "unselect"])
def test_toggle_on_ineligible_session_is_refused(selected: bool) -> None:
    session = make_session(upsell=Upsell(False, "no_upsell_configured", original_price=MONTHLY))
    with pytest.raises(UpsellUnavailable, match="no_upsell_configured"):
        toggle(session, selected, NOW)


def test_complete_once() -> None:
    session = toggle(make_session(), True, NOW)
    done = complete(session, NOW, "pi_1")
    assert done.status == "complete"
    assert done.version == session.version + 1
    assert done.completed_at == NOW
    assert done.payment == "pi_1"
    assert done.upsell.selected
    assert complete(done, NOW + timedelta(minutes=1), "pi_1") is done
    assert complete(done, NOW + timedelta(minutes=1), None) is done


def test_a_second_completion_by_another_payment_names_the_first() -> None:
    done = complete(make_session(), NOW, "pi_123")
    with pytest.raises(PaymentMismatch) as mismatch:
        complete(done, NOW, "pi_999")
    assert mismatch.value.first == "pi_123"


def test_what_is_due_today_leaves_out_recurring_lines_under_a_trial() -> None:
    # The setup fee is charged at checkout; the plan bills when the 14-day trial ends.
    session = make_session(coupons=())
    assert due_today(session) == invoice(session).lines[1].total > 0
    assert due_today(replace(session, trial_period_days=None)) == invoice(session).total


def test_a_session_that_charges_today_needs_its_payment_reference() -> None:
    with pytest.raises(PaymentRequired):
        complete(make_session(), NOW, None, reference_required=True)
    assert complete(make_session(), NOW, "pi_1", reference_required=True).status == "complete"
    # Without the requirement (a payment event is itself the payment's word), it completes.
    assert complete(make_session(), NOW, None).status == "complete"


def test_a_session_with_nothing_due_today_completes_without_a_reference() -> None:
    free = make_session(coupons=())
    free = replace(free, line_items=free.line_items[:1])
    assert due_today(free) == 0
    assert complete(free, NOW, None, reference_required=True).status == "complete"


def test_complete_after_expires_at_still_completes_a_paid_open_session() -> None:
    done = complete(make_session(), EXPIRES + timedelta(hours=1), "pi_1")
    assert done.status == "complete"


def test_complete_on_explicitly_expired_session_is_refused() -> None:
    with pytest.raises(SessionClosed) as raised:
        complete(expire(make_session()), NOW, "pi_1")
    assert raised.value.status == "expired"


def test_expire() -> None:
    session = make_session()
    expired = expire(session)
    assert expired.status == "expired"
    assert expired.version == session.version + 1
    assert expire(expired) is expired
    done = complete(session, NOW, None)
    assert expire(done) is done


@pytest.mark.parametrize(
    ("selected", "coupons", "lines", "subtotal", "discount", "total"),
    [
        (False, (), [(10000, 0), (5000, 0)], 15000, 0, 15000),
        (True, (), [(100000, 0), (5000, 0)], 105000, 0, 105000),
        (False, (HALF_ON_PLAN,), [(10000, 5000), (5000, 0)], 15000, 5000, 10000),
        (True, (HALF_ON_PLAN,), [(100000, 50000), (5000, 0)], 105000, 50000, 55000),
        (False, (HALF_FOR_FOUR_MONTHS,), [(10000, 5000), (5000, 2500)], 15000, 7500, 7500),
        (True, (HALF_FOR_FOUR_MONTHS,), [(100000, 50000), (5000, 2500)], 105000, 52500, 52500),
    ],
    ids=[
        "initial-no-coupon",
        "upsell-no-coupon",
        "initial-plan-coupon",
        "upsell-plan-coupon-50-percent-of-100000",
        "initial-coupon-on-all-lines",
        "upsell-coupon-on-all-lines",
    ],
)
def test_invoice_totals(
    selected: bool,
    coupons: tuple[Coupon, ...],
    lines: list[tuple[int, int]],
    subtotal: int,
    discount: int,
    total: int,
) -> None:
    session = make_session(coupons=coupons)
    if selected:
        session = toggle(session, True, NOW)
    bill = invoice(session)
    assert [(line.subtotal, line.discount) for line in bill.lines] == lines
    assert [line.total for line in bill.lines] == [s - d for s, d in lines]
    assert (bill.subtotal, bill.discount, bill.total) == (subtotal, discount, total)
    assert bill.discount_amounts == ([discount] if coupons else [])
    assert [line.item.price.id for line in bill.lines] == [
        "price_yearly" if selected else "price_monthly",
        "price_setup",
    ]


def test_invoice_applies_quantity_to_the_swapped_price() -> None:
    bill = invoice(toggle(make_session(quantity=2), True, NOW))
    assert [line.subtotal for line in bill.lines] == [200000, 5000]
    assert bill.discount == 100000


def test_invoice_applies_discounts_in_order_to_what_is_left() -> None:
    ten_off = Coupon("ten", amount_off=1000, currency="usd")
    session = make_session(coupons=(HALF_FOR_FOUR_MONTHS, ten_off))
    bill = invoice(session)
    assert bill.discount_amounts == [7500, 1000]
    assert bill.total == 15000 - 7500 - 1000
    big = Coupon("big", amount_off=10**6, currency="usd")
    capped = invoice(make_session(coupons=(HALF_FOR_FOUR_MONTHS, big)))
    assert capped.discount_amounts == [7500, 7500]
    assert capped.total == 0


def test_session_savings() -> None:
    assert make_session().savings() == Savings(20000, Decimal("16.67"), "16%")
    assert make_session(quantity=3).savings() == Savings(60000, Decimal("16.67"), "16%")
    assert make_session(locale="de").savings() == Savings(20000, Decimal("16.67"), "16\xa0%")
    assert toggle(make_session(), True, NOW).savings() == make_session().savings()


def test_no_savings_when_ineligible() -> None:
    assert make_session(upsell=Upsell(False, "upsell_invalid", original_price=MONTHLY)).savings() is None


def test_status_at() -> None:
    session = make_session()
    assert session.status_at(NOW) == "open"
    assert session.status_at(EXPIRES) == "expired"
    assert complete(session, NOW, None).status_at(EXPIRES) == "complete"


def test_metered_usage_is_not_due_on_the_first_invoice() -> None:
    usage = Price("price_calls", "prod_api", "usd", unit_amount=25, recurring=Recurring("month", usage_type="metered"))
    session = replace(make_session(coupons=()), line_items=(LineItem(usage, 3), LineItem(SETUP_FEE, 1)))
    bill = invoice(session)
    assert [line.subtotal for line in bill.lines] == [0, 5000]
    assert bill.total == 5000
