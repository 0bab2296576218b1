"""Property on the real PostgreSQL: for any subscription, target and instant, a preview equals what
executing the change at that instant charges."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from service.app import catalog, subscriptions, upgrades
from service.domain.subscriptions import PaymentMethod, Subscription, UpgradePath, UpgradePricing
from tests.integration.helpers import seed_example_catalog

pytestmark = pytest.mark.integration

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "property-link-secret"
_ids = itertools.count()

pricings = st.one_of(
    st.just(UpgradePricing()),
    st.integers(min_value=0, max_value=1_000_000).map(lambda a: UpgradePricing("fixed", amount=a)),
    st.integers(min_value=1, max_value=100).map(lambda p: UpgradePricing("percent_off", percent=Decimal(p))),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Subscription, str, int, UpgradePricing, str | None, datetime]:
    start = EPOCH + timedelta(seconds=draw(st.integers(min_value=0, max_value=365 * 86_400)))
    length = timedelta(seconds=draw(st.integers(min_value=3_600, max_value=400 * 86_400)))
    at = start + timedelta(seconds=draw(st.integers(min_value=-86_400, max_value=int(length.total_seconds()) + 86_400)))
    current = draw(st.sampled_from(["price_pro_monthly", "price_pro_yearly"]))
    target = draw(st.sampled_from(["price_team_monthly", "price_team_yearly", "price_pro_monthly", "price_pro_yearly"]))
    target = target if target != current else "price_team_yearly"
    subscription = Subscription(
        id=f"sub_prop_{next(_ids)}",
        customer="cus_prop",
        price=current,
        status="active",
        current_period_start=start,
        current_period_end=start + length,
        payment_method=PaymentMethod("card"),
        currency="usd",
        quantity=draw(st.integers(min_value=1, max_value=20)),
    )
    quantity = draw(st.integers(min_value=1, max_value=20))
    return subscription, target, quantity, draw(pricings), draw(st.sampled_from([None, "WELCOME50"])), at


async def _check(url: str, case: tuple[Subscription, str, int, UpgradePricing, str | None, datetime]) -> None:
    subscription, target, quantity, pricing, code, at = case
    pool: asyncpg.Pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    new_uow = PostgresUnitOfWorkFactory(pool)
    try:
        path = UpgradePath(
            f"path_{subscription.id}", "property", target, from_price=subscription.price, pricing=pricing
        )
        async with new_uow() as uow:
            await subscriptions.put_subscription(uow, subscription)
            await catalog.put_upgrade_path(uow, path)
            token, _ = await upgrades.create_link(uow, path.id, subscription.id, 86_400, SECRET, at)
            twin = f"{subscription.id}_twin"
            await subscriptions.put_subscription(uow, dataclasses.replace(subscription, id=twin))
        # A link's preview, then accepting it at the same instant.
        async with new_uow() as uow:
            _, _, shown = await upgrades.open_link(uow, token, SECRET, at)
        async with new_uow() as uow:
            placed = await upgrades.accept_link(uow, token, SECRET, upgrades.OrderRequest("current"), at)
        assert (placed.amount_due_now, placed.discount) == (shown.amount_due_now, shown.discount)
        # A change preview with a quantity and a code, then the order for that price at the same instant
        # (both follow the same upgrade path, whichever of the paths to that price an order would take).
        async with new_uow() as uow:
            preview = await subscriptions.change_preview(uow, twin, target, quantity, code, at)
        request = upgrades.OrderRequest("current", to_price=target, quantity=quantity, promotion_code=code)
        async with new_uow() as uow:
            order = await upgrades.place_order(uow, twin, request, "property", at)
        async with new_uow() as uow:
            after = await subscriptions.get_subscription(uow, twin)
        assert (after.price, after.quantity) == (target, quantity)
        assert (order.amount_due_now, order.discount) == (preview.amount_due_now, preview.discount)
        assert after.current_period_end == preview.next_billing_date
    finally:
        await pool.close()


async def test_a_preview_equals_what_executing_the_change_charges(pool: asyncpg.Pool, database_url: str) -> None:
    await seed_example_catalog(pool)
    ran: list[int] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(case=cases())
    def holds(case: tuple[Subscription, str, int, UpgradePricing, str | None, datetime]) -> None:
        # Each example runs on an event loop of its own in this worker thread, with its own pool.
        asyncio.run(_check(database_url, case))
        ran.append(1)

    await asyncio.to_thread(holds)
    assert len(ran) >= 20  # the property ran on that many generated changes, not on none
