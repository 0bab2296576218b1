"""The summary report's figures: first purchases, upgrades and upsells kept apart, per currency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from service.domain.reports import (
    Counted,
    CurrencyFigures,
    SessionFacts,
    UpgradeOrderFacts,
    UpsellFigures,
    summarize,
    take_rate,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 2, tzinfo=UTC)
BEFORE = START - timedelta(days=3)
IN = START + timedelta(hours=10)
LATER_IN = START + timedelta(hours=20)
AFTER = END + timedelta(hours=1)


def session(
    created: datetime = IN,
    completed: datetime | None = None,
    *,
    currency: str = "usd",
    total: int = 10000,
    eligible: bool = True,
    selected: bool = False,
    added: int = 0,
) -> SessionFacts:
    """A session's facts; a completed one carries its first invoice's total and what the upsell added."""
    done = completed is not None
    return SessionFacts(
        currency=currency,
        created_at=created,
        completed_at=completed,
        amount_total=total if done else None,
        eligible=eligible,
        selected=selected,
        upsell_amount=(added if selected else 0) if done else None,
    )


def order(created: datetime = IN, amount: int = 965, currency: str = "usd") -> UpgradeOrderFacts:
    return UpgradeOrderFacts(currency, created, amount)


def figures(
    purchases: tuple[int, int] = (0, 0), upgrades: tuple[int, int] = (0, 0), upsells: tuple[int, int, int] = (0, 0, 0)
) -> CurrencyFigures:
    return CurrencyFigures(Counted(*purchases), Counted(*upgrades), UpsellFigures(*upsells))


@pytest.mark.parametrize(
    ("sessions", "orders", "expected"),
    [
        pytest.param([], [], {}, id="empty range"),
        pytest.param(
            [session(BEFORE), session(BEFORE, AFTER), session(AFTER, AFTER)],
            [order(BEFORE), order(AFTER)],
            {},
            id="nothing in range",
        ),
        pytest.param(
            # The seed's example: two eligible sessions, one taking the yearly plan.
            [
                session(IN, LATER_IN, total=100000, selected=True, added=90000),
                session(IN, LATER_IN, total=10000),
            ],
            [order()],
            {"usd": figures((2, 110000), (1, 965), (2, 1, 90000))},
            id="purchases, an upgrade and upsells kept apart",
        ),
        pytest.param(
            [session(IN, AFTER, total=100000, selected=True, added=90000)],
            [],
            {"usd": figures(upsells=(1, 1, 90000))},
            id="created in range and completed after it: offered and accepted, not a purchase",
        ),
        pytest.param(
            [session(BEFORE, IN, total=100000, selected=True, added=90000)],
            [],
            {"usd": figures(purchases=(1, 100000))},
            id="completed in range but created before: a purchase, its upsell counted in its own range",
        ),
        pytest.param(
            [session(IN)],
            [],
            {"usd": figures(upsells=(1, 0, 0))},
            id="offered and still open",
        ),
        pytest.param(
            [session(IN, LATER_IN, total=100000, eligible=False, selected=True, added=90000)],
            [],
            {"usd": figures(purchases=(1, 100000))},
            id="upsell selected but not eligible: neither offered nor accepted",
        ),
        pytest.param(
            [session(IN, eligible=False)],
            [],
            {"usd": figures()},
            id="an ineligible open session still names its currency",
        ),
        pytest.param(
            [],
            [order(START, 100), order(END, 200), order(END - timedelta(microseconds=1), 300)],
            {"usd": figures(upgrades=(2, 400))},
            id="upgrade orders on the boundaries: start included, end excluded",
        ),
        pytest.param(
            [session(END, END), session(START, START, total=500)],
            [],
            {"usd": figures((1, 500), upsells=(1, 0, 0))},
            id="sessions on the boundaries: start included, end excluded",
        ),
        pytest.param(
            [
                session(IN, LATER_IN, currency="usd", total=100000, selected=True, added=90000),
                session(IN, LATER_IN, currency="eur", total=9000),
                session(IN, currency="jpy"),
            ],
            [order(currency="eur", amount=700), order(currency="jpy", amount=1200)],
            {
                "eur": figures((1, 9000), (1, 700), (1, 0, 0)),
                "jpy": figures(upgrades=(1, 1200), upsells=(1, 0, 0)),
                "usd": figures((1, 100000), upsells=(1, 1, 90000)),
            },
            id="several currencies, each on its own",
        ),
    ],
)
def test_summarize(
    sessions: list[SessionFacts], orders: list[UpgradeOrderFacts], expected: dict[str, CurrencyFigures]
) -> None:
    result = summarize(sessions, orders, START, END)
    assert result == expected
    assert list(result) == sorted(result)


@pytest.mark.parametrize(
    ("accepted", "offered", "rate"),
    [
        (0, 0, "0.0000"),
        (0, 3, "0.0000"),
        (1, 2, "0.5000"),
        (1, 3, "0.3333"),
        (2, 3, "0.6667"),
        (1, 32, "0.0313"),  # 0.03125: halves go up
        (4, 4, "1.0000"),
    ],
)
def test_take_rate(accepted: int, offered: int, rate: str) -> None:
    assert str(take_rate(accepted, offered)) == rate
    assert UpsellFigures(offered, accepted).take_rate == Decimal(rate)
