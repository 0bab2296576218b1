"""An option's price per the other option's interval: `$83.33/month, billed yearly`, in each locale of
the component, rounded half-up to the minor unit once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.app.views import session_view
from service.domain.catalog import Price, Recurring
from service.domain.equivalent import equivalent_amount, format_equivalent
from service.domain.session import CheckoutSession, LineItem, Upsell

NBSP = "\xa0"
NNBSP = "\u202f"
MONTH = Recurring("month")
YEAR = Recurring("year")


def ja(every: str, billed: str) -> str:
    """ja writes how it bills in full-width parentheses."""
    return f"{every}\uff08{billed}\uff09"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (100000, "usd", "en", "$83.33/month, billed yearly"),
        (100000, "usd", "de", f"83,33{NBSP}$/Monat, jährlich abgerechnet"),
        (100000, "usd", "fr", f"83,33{NBSP}$US/mois, facturé annuellement"),
        (16000, "jpy", "ja", ja("￥1,333/月", "年払い")),
        (100000, "usd", "ja", ja("$83.33/月", "年払い")),
        (16000, "jpy", "en", "¥1,333/month, billed yearly"),
        # Other locales: their own amounts and units, the English words for how it bills.
        (100000, "usd", "es", f"83,33{NBSP}US$/mes, billed yearly"),
    ],
)
def test_a_yearly_price_per_month(amount: int, currency: str, locale: str, expected: str) -> None:
    assert format_equivalent(amount, currency, YEAR, MONTH, locale) == expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "$1,200.00/year, billed monthly"),
        ("de", f"1.200,00{NBSP}$/Jahr, monatlich abgerechnet"),
        ("fr", f"1{NNBSP}200,00{NBSP}$US/an, facturé mensuellement"),
        ("ja", ja("$1,200.00/年", "月払い")),
    ],
)
def test_a_monthly_price_per_year(locale: str, expected: str) -> None:
    assert format_equivalent(10000, "usd", MONTH, YEAR, locale) == expected


@pytest.mark.parametrize(
    ("billed", "per", "locale", "expected"),
    [
        (YEAR, Recurring("month", 3), "en", "$250.00/3 months, billed yearly"),
        (Recurring("year", 2), MONTH, "en", "$41.67/month, billed every 2 years"),
        (Recurring("year", 2), MONTH, "de", f"41,67{NBSP}$/Monat, alle 2 Jahre abgerechnet"),
        (Recurring("week", 2), Recurring("day"), "fr", f"71,43{NBSP}$US/jour, facturé toutes les 2{NBSP}semaines"),
        (Recurring("month", 3), MONTH, "fr", f"333,33{NBSP}$US/mois, facturé tous les 3{NBSP}mois"),
        (Recurring("month", 3), MONTH, "ja", ja("$333.33/月", "3 か月ごとのお支払い")),
        (Recurring("week"), Recurring("day"), "de", f"142,86{NBSP}$/Tag, wöchentlich abgerechnet"),
        (YEAR, Recurring("week"), "en", "$19.23/week, billed yearly"),
    ],
)
def test_counts_and_other_intervals(billed: Recurring, per: Recurring, locale: str, expected: str) -> None:
    assert format_equivalent(100000, "usd", billed, per, locale) == expected


@pytest.mark.parametrize(
    ("amount", "billed", "per", "expected"),
    [
        (100000, YEAR, MONTH, 8333),  # 8,333.33...
        (100002, YEAR, MONTH, 8334),  # 8,333.5: a half goes up
        (99994, YEAR, MONTH, 8333),  # 8,332.83...
        (16000, YEAR, MONTH, 1333),  # yen have no minor unit: 1,333.33 yen
        (10000, MONTH, YEAR, 120000),
        (100000, YEAR, Recurring("month", 3), 25000),
        (100000, YEAR, Recurring("day"), 274),  # 365 days: 273.97
        (10000, Recurring("week"), Recurring("day"), 1429),  # 1,428.57
    ],
)
def test_amount_is_rounded_half_up_once(amount: int, billed: Recurring, per: Recurring, expected: int) -> None:
    assert equivalent_amount(amount, billed, per) == expected


@pytest.mark.parametrize(
    ("billed", "per"),
    [
        (Recurring("week"), MONTH),
        (MONTH, Recurring("week")),
        (MONTH, Recurring("day")),
        (YEAR, YEAR),
        (Recurring("month", 3), Recurring("month", 3)),
    ],
)
def test_none_without_an_exact_ratio_or_with_the_same_interval(billed: Recurring, per: Recurring) -> None:
    assert equivalent_amount(100000, billed, per) is None
    assert format_equivalent(100000, "usd", billed, per, "en") is None


def _session(initial: Price, upsell: Price, locale: str) -> CheckoutSession:
    created = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return CheckoutSession(
        id="cs_1",
        mode="subscription",
        currency=initial.currency,
        line_items=(LineItem(initial, 1),),
        upsell=Upsell(True, None, original_price=initial, price=upsell),
        created_at=created,
        expires_at=created + timedelta(hours=24),
        locale=locale,
    )


@pytest.mark.parametrize(
    ("currency", "monthly", "yearly", "locale", "current", "upsell"),
    [
        ("usd", 10000, 100000, "en", "$1,200.00/year, billed monthly", "$83.33/month, billed yearly"),
        (
            "usd",
            10000,
            100000,
            "de",
            f"1.200,00{NBSP}$/Jahr, monatlich abgerechnet",
            f"83,33{NBSP}$/Monat, jährlich abgerechnet",
        ),
        (
            "usd",
            10000,
            100000,
            "fr",
            f"1{NNBSP}200,00{NBSP}$US/an, facturé mensuellement",
            f"83,33{NBSP}$US/mois, facturé annuellement",
        ),
        ("jpy", 1500, 16000, "ja", ja("￥18,000/年", "月払い"), ja("￥1,333/月", "年払い")),
    ],
)
def test_the_session_view_carries_both_options_equivalents(
    currency: str, monthly: int, yearly: int, locale: str, current: str, upsell: str
) -> None:
    initial = Price("p_m", "prod", currency, unit_amount=monthly, recurring=MONTH, upsell="p_y")
    upsold = Price("p_y", "prod", currency, unit_amount=yearly, recurring=YEAR)
    options = session_view(_session(initial, upsold, locale), datetime(2026, 3, 1, 12, 1, tzinfo=UTC)).upsell.options
    assert options is not None
    assert (options.current.display.equivalent, options.upsell.display.equivalent) == (current, upsell)


def test_the_session_view_has_none_for_week_to_month() -> None:
    weekly = Price("p_w", "prod", "usd", unit_amount=2500, recurring=Recurring("week"), upsell="p_m")
    monthly = Price("p_m", "prod", "usd", unit_amount=9000, recurring=MONTH)
    options = session_view(_session(weekly, monthly, "en"), datetime(2026, 3, 1, 12, 1, tzinfo=UTC)).upsell.options
    assert options is not None
    assert (options.current.display.equivalent, options.upsell.display.equivalent) == (None, None)
