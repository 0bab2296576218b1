"""The summary report's figures, per currency, over a range `[start, end)`.

First purchases, upgrades and upsells are kept apart, each counted once in its own figure:

- a first purchase is a checkout session completed in the range, for its first invoice's total;
- an upsell is offered on an eligible session created in the range, and accepted when that session
  completed (then or later) with the upsell selected; its amount is what the upsell added to the first
  invoice. A selected upsell on a session that was not eligible is neither offered nor accepted;
- an upgrade is an upgrade order placed in the range, for what it charged now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

_FOUR_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What the report reads of a checkout session; the amounts are set once it completed."""

    currency: str
    created_at: datetime
    completed_at: datetime | None
    amount_total: int | None
    eligible: bool
    selected: bool
    upsell_amount: int | None


@dataclass(frozen=True, slots=True)
class UpgradeOrderFacts:
    """What the report reads of an upgrade order."""

    currency: str
    created_at: datetime
    amount_due_now: int


@dataclass(frozen=True, slots=True)
class Counted:
    count: int = 0
    amount: int = 0


@dataclass(frozen=True, slots=True)
class UpsellFigures:
    offered: int = 0
    accepted: int = 0
    amount: int = 0

    @property
    def take_rate(self) -> Decimal:
        return take_rate(self.accepted, self.offered)


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    first_purchases: Counted
    upgrades: Counted
    upsells: UpsellFigures


def take_rate(accepted: int, offered: int) -> Decimal:
    """Accepted over offered to four places, halves up (0.2500); 0.0000 when none was offered."""
    if offered == 0:
        return Decimal(0).quantize(_FOUR_PLACES)
    return (Decimal(accepted) / Decimal(offered)).quantize(_FOUR_PLACES, rounding=ROUND_HALF_UP)


def summarize(
    sessions: Iterable[SessionFacts], orders: Iterable[UpgradeOrderFacts], start: datetime, end: datetime
) -> dict[str, CurrencyFigures]:
    """The figures of each currency with a session created or completed, or an order placed, in the range;
    facts outside it are ignored."""
    period = _Range(start, end)
    relevant = [s for s in sessions if period.holds(s.created_at) or period.holds(s.completed_at)]
    placed = [o for o in orders if period.holds(o.created_at)]
    return {
        currency: _figures(
            [s for s in relevant if s.currency == currency], [o for o in placed if o.currency == currency], period
        )
        for currency in sorted({s.currency for s in relevant} | {o.currency for o in placed})
    }


@dataclass(frozen=True, slots=True)
class _Range:
    start: datetime
    end: datetime

    def holds(self, instant: datetime | None) -> bool:
        return instant is not None and self.start <= instant < self.end


def _figures(sessions: list[SessionFacts], orders: list[UpgradeOrderFacts], period: _Range) -> CurrencyFigures:
    purchases = [s for s in sessions if period.holds(s.completed_at)]
    offered = [s for s in sessions if s.eligible and period.holds(s.created_at)]
    accepted = [s for s in offered if s.selected and s.completed_at is not None]
    return CurrencyFigures(
        first_purchases=Counted(len(purchases), sum(s.amount_total or 0 for s in purchases)),
        upgrades=Counted(len(orders), sum(o.amount_due_now for o in orders)),
        upsells=UpsellFigures(len(offered), len(accepted), sum(s.upsell_amount or 0 for s in accepted)),
    )
