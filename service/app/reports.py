"""The summary report: first purchases, upgrades and upsells kept apart, per currency."""

from __future__ import annotations

from datetime import datetime

from contracts.subscriptions import Counted, CurrencyReport, Report, UpsellFigures
from service.app.ports import UnitOfWork
from service.domain import reports


async def summary(uow: UnitOfWork, start: datetime, end: datetime) -> Report:
    """Figures over `[start, end)`, computed by the domain from the sessions and orders stored in it."""
    sessions = await uow.reports.sessions(start, end)
    orders = await uow.reports.upgrade_orders(start, end)
    figures = reports.summarize(sessions, orders, start, end)
    return Report(from_=start, to=end, currencies={c: _contract(f) for c, f in figures.items()})


def _contract(figures: reports.CurrencyFigures) -> CurrencyReport:
    purchases, upgrades, upsells = figures.first_purchases, figures.upgrades, figures.upsells
    return CurrencyReport(
        first_purchases=Counted(purchases.count, purchases.amount),
        upgrades=Counted(upgrades.count, upgrades.amount),
        upsells=UpsellFigures(upsells.offered, upsells.accepted, str(upsells.take_rate), upsells.amount),
    )
