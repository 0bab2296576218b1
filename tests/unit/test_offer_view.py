"""The offer as data: both options of the upsell block, their amounts, totals and display strings."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.sessions import UpsellOption
from service.app.views import session_view
from service.domain.catalog import Coupon, Interval, Price, Recurring, Tier, TransformQuantity
from service.domain.money import format_per_interval
from service.domain.session import CheckoutSession, Discount, LineItem, Upsell, invoice, toggle

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = CREATED + timedelta(minutes=1)
NBSP = "\xa0"


def pair(currency: str, monthly: int, yearly: int, **extra: object) -> tuple[Price, Price]:
    initial = Price("p_m", "prod", currency, unit_amount=monthly, recurring=Recurring("month"), upsell="p_y", **extra)  # type: ignore[arg-type]
    upsell = Price("p_y", "prod", currency, unit_amount=yearly, recurring=Recurring("year"), **extra)  # type: ignore[arg-type]
    return initial, upsell


def session(
    initial: Price,
    upsell: Price,
    *,
    quantity: int = 1,
    locale: str = "en",
    extra: tuple[LineItem, ...] = (),
    coupon: Coupon | None = None,
) -> CheckoutSession:
    return CheckoutSession(
        id="cs_1",
        mode="subscription",
        currency=initial.currency,
        line_items=(LineItem(initial, quantity), *extra),
        upsell=Upsell(True, None, original_price=initial, price=upsell),
        created_at=CREATED,
        expires_at=CREATED + timedelta(hours=24),
        locale=locale,
        discounts=() if coupon is None else (Discount(coupon),),
    )


def both(checkout: CheckoutSession) -> tuple[UpsellOption, UpsellOption]:
    options = session_view(checkout, NOW).upsell.options
    assert options is not None
    return options.current, options.upsell


@pytest.mark.parametrize(
    ("currency", "locale", "monthly", "yearly", "current", "upsell"),
    [
        ("usd", "en", 10000, 100000, ("$100.00", "$100.00/month"), ("$1,000.00", "$1,000.00/year")),
        (
            "usd",
            "de",
            10000,
            100000,
            (f"100,00{NBSP}$", f"100,00{NBSP}$/Monat"),
            (f"1.000,00{NBSP}$", f"1.000,00{NBSP}$/Jahr"),
        ),
        ("eur", "fr", 999, 9999, (f"9,99{NBSP}€", f"9,99{NBSP}€/mois"), (f"99,99{NBSP}€", f"99,99{NBSP}€/an")),
        # Zero decimals: CLDR writes the yen with the full-width sign in ja.
        ("jpy", "ja", 1200, 12000, ("￥1,200", "￥1,200/月"), ("￥12,000", "￥12,000/年")),
        ("jpy", "en", 1200, 12000, ("¥1,200", "¥1,200/month"), ("¥12,000", "¥12,000/year")),
        # Three decimals: 1.250 KWD is 1250 minor units.
        ("kwd", "en", 1250, 12500, ("KWD1.250", "KWD1.250/month"), ("KWD12.500", "KWD12.500/year")),
        ("kwd", "ar", 1250, 12500, None, None),
    ],
)
def test_display_strings_follow_currency_exponent_and_locale(
    currency: str,
    locale: str,
    monthly: int,
    yearly: int,
    current: tuple[str, str] | None,
    upsell: tuple[str, str] | None,
) -> None:
    initial, upsold = pair(currency, monthly, yearly)
    now, offer = both(session(initial, upsold, locale=locale))
    assert (now.amount, offer.amount) == (monthly, yearly)
    if current is None or upsell is None:
        # A right-to-left locale: only that the exponent is kept (three digits after the separator).
        assert "1.250" in now.display.amount
        assert "12.500" in offer.display.amount
        return
    assert (now.display.amount, now.display.per_interval) == current
    assert (offer.display.amount, offer.display.per_interval) == upsell


def test_three_decimal_totals_and_savings_are_exact() -> None:
    initial, upsold = pair("kwd", 1250, 12500)
    setup = Price("p_setup", "prod_setup", "kwd", type="one_time", unit_amount=5005)
    checkout = session(initial, upsold, quantity=3, extra=(LineItem(setup, 1),))
    now, offer = both(checkout)
    assert (now.amount, now.amount_total) == (3750, 3750 + 5005)
    assert (offer.amount, offer.amount_total) == (37500, 37500 + 5005)
    assert offer.display.amount_total == "KWD42.505"
    view = session_view(checkout, NOW)
    assert view.upsell.savings is not None
    assert view.upsell.savings.amount == 12 * 3750 - 37500


def test_zero_decimal_amounts_keep_no_fraction() -> None:
    initial, upsold = pair("jpy", 1500, 16000)
    now, offer = both(session(initial, upsold, locale="ja", quantity=2))
    assert (now.amount, offer.amount) == (3000, 32000)
    assert now.display.per_interval == "￥3,000/月"
    assert offer.display.amount_total == "￥32,000"


def test_current_is_always_the_original_price_whichever_is_selected() -> None:
    initial, upsold = pair("usd", 10000, 100000)
    checkout = session(initial, upsold)
    before = both(checkout)
    selected = toggle(checkout, True, NOW)
    after = both(selected)
    assert after == before
    assert after[0].price == "p_m"
    assert session_view(selected, NOW).amount_total == after[1].amount_total
    assert session_view(checkout, NOW).amount_total == after[0].amount_total


def test_amounts_apply_quantity_tiers_transforms_and_totals_apply_discounts() -> None:
    tiers = (Tier(5, unit_amount=2000), Tier(None, unit_amount=1500))
    initial = Price(
        "p_m",
        "prod",
        "usd",
        billing_scheme="tiered",
        tiers_mode="graduated",
        tiers=tiers,
        recurring=Recurring("month"),
        upsell="p_y",
    )
    upsold = replace(
        initial,
        id="p_y",
        tiers=(Tier(5, unit_amount=20000), Tier(None, unit_amount=15000)),
        recurring=Recurring("year"),
    )
    half = Coupon("half", percent_off=Decimal(50), duration="once")
    now, offer = both(session(initial, upsold, quantity=7, coupon=half))
    assert now.amount == 5 * 2000 + 2 * 1500
    assert offer.amount == 5 * 20000 + 2 * 15000
    assert (now.amount_total, offer.amount_total) == (now.amount // 2, offer.amount // 2)

    packs = TransformQuantity(divide_by=5, round="up")
    initial, upsold = pair("usd", 1000, 10000, transform_quantity=packs)
    now, offer = both(session(initial, upsold, quantity=11))
    assert (now.amount, offer.amount) == (3 * 1000, 3 * 10000)


@pytest.mark.parametrize(
    ("interval", "count", "locale", "expected"),
    [
        ("month", 3, "en", "$300.00/3 months"),
        ("week", 2, "de", f"300,00{NBSP}$/2 Wochen"),
        ("day", 1, "fr", f"300,00{NBSP}$US/jour"),
        ("month", 3, "ja", "$300.00/3 か月"),
        ("year", 2, "en", "$300.00/2 years"),
    ],
)
def test_per_interval_names_the_count(interval: Interval, count: int, locale: str, expected: str) -> None:
    assert format_per_interval(30000, "usd", interval, count, locale) == expected


def test_ineligible_session_has_no_options() -> None:
    initial, upsold = pair("usd", 10000, 100000)
    checkout = replace(session(initial, upsold), upsell=Upsell(False, "no_upsell_configured"))
    assert session_view(checkout, NOW).upsell.options is None


@given(
    monthly=st.integers(1, 10**7),
    yearly=st.integers(1, 10**8),
    quantity=st.integers(1, 50),
    percent=st.sampled_from([None, 10, 33, 50]),
    selected=st.booleans(),
)
def test_each_option_total_is_the_invoice_with_it_selected(
    monthly: int, yearly: int, quantity: int, percent: int | None, selected: bool
) -> None:
    initial, upsold = pair("usd", monthly, yearly)
    coupon = None if percent is None else Coupon("c", percent_off=Decimal(percent), duration="forever")
    checkout = session(initial, upsold, quantity=quantity, coupon=coupon)
    if selected:
        checkout = toggle(checkout, True, NOW)
    now, offer = both(checkout)
    unselected = checkout if not selected else toggle(checkout, False, NOW)
    assert now.amount_total == invoice(unselected).total
    assert offer.amount_total == invoice(toggle(unselected, True, NOW)).total
    assert now.amount == monthly * quantity
    assert offer.amount == yearly * quantity


@given(
    monthly=st.integers(1, 10**7),
    yearly=st.integers(1, 10**8),
    quantity=st.integers(1, 50),
    percent=st.sampled_from([None, 10, 33]),
    locale=st.sampled_from(["en", "de", "ja"]),
    selected=st.booleans(),
)
def test_a_view_from_a_kept_cart_is_the_view_worked_out_afresh(
    monthly: int, yearly: int, quantity: int, percent: int | None, locale: str, selected: bool
) -> None:
    from service.adapters.postgres.repositories import decode_session
    from service.app import views

    initial, upsold = pair("usd", monthly, yearly)
    coupon = None if percent is None else Coupon("c", percent_off=Decimal(percent), duration="forever")
    checkout = session(initial, upsold, quantity=quantity, locale=locale, coupon=coupon)
    if selected:
        checkout = toggle(checkout, True, NOW)
    first = session_view(checkout, NOW)
    # Another session with the same cart, as a read from the database gives it: equal values, new objects.
    other = replace(decode_session(msgspec.json.encode(checkout)), id="cs_2", customer="cus_2", version=7)
    second = session_view(other, NOW)
    afresh = views._priced(other)
    assert (second.id, second.customer, second.version) == ("cs_2", "cus_2", 7)
    assert second.line_items == list(afresh.lines)
    assert second.discounts == list(afresh.discounts)
    assert second.upsell == afresh.upsell
    assert second.upsell.selected is selected
    assert (second.amount_subtotal, second.amount_discount, second.amount_total) == (
        afresh.subtotal,
        afresh.discount,
        afresh.total,
    )
    assert first.line_items == second.line_items
    assert first.upsell == second.upsell
    # The other choice is another cart: its own totals, not the kept ones.
    flipped = session_view(toggle(checkout, not selected, NOW), NOW)
    assert flipped.upsell.selected is not selected
    assert flipped.amount_total == invoice(toggle(checkout, not selected, NOW)).total
