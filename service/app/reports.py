"""The summary report: first purchases, upgrades and upsells kept apart, per currency."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from contracts.subscriptions import Counted, CurrencyReport, Report, UpsellFigures
from service.app.ports import UnitOfWork


def take_rate(accepted: int, offered: int) -> str:
    """Accepted over offered as a decimal string with four places ("0.2500"); "0.0000" when none offered."""
    if offered == 0:
        return "0.0000"
    return str((Decimal(accepted) / Decimal(offered)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


async def summary(uow: UnitOfWork, start: datetime, end: datetime) -> Report:
    """Figures over `[start, end)`."""
    currencies = {
        row["currency"]: CurrencyReport(
            first_purchases=Counted(row["purchases"], row["purchase_amount"]),
            upgrades=Counted(row["upgrades"], row["upgrade_amount"]),
            upsells=UpsellFigures(
                row["offered"], row["accepted"], take_rate(row["accepted"], row["offered"]), row["upsell_amount"]
            ),
        )
        for row in await uow.reports.summary(start, end)
    }
    return Report(from_=start, to=end, currencies=currencies)
