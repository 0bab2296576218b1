"""Catalog API and `upsell catalog apply` on the real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from service.adapters.postgres.migrate import migrate, migration_files
from tests.integration.helpers import ADMIN, EXAMPLE_CATALOG, Clock, http_client

pytestmark = pytest.mark.integration

UPSELL = str(Path(sys.executable).parent / "upsell")

MONTHLY: dict[str, Any] = {
    "product": "prod_a",
    "currency": "usd",
    "unit_amount": 1000,
    "recurring": {"interval": "month"},
    "tax_behavior": "exclusive",
}


async def test_products_and_prices_are_idempotent_upserts(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        first = await client.put("/v1/products/prod_a", json={"name": "A"}, headers=ADMIN)
        assert first.status == 201
        again = await client.put("/v1/products/prod_a", json={"name": "A"}, headers=ADMIN)
        assert again.status == 200
        assert (await again.json())["id"] == "prod_a"
        assert (await client.put("/v1/prices/p_m", json=MONTHLY, headers=ADMIN)).status == 201
        read = await (await client.get("/v1/prices/p_m", headers=ADMIN)).json()
        assert read["unit_amount"] == 1000
        assert read["recurring"]["interval"] == "month"
        mismatch = await client.put("/v1/products/prod_a", json={"id": "prod_b", "name": "A"}, headers=ADMIN)
        assert mismatch.status == 422
        assert (await mismatch.json())["code"] == "key_mismatch"
        assert (await client.get("/v1/prices/p_none", headers=ADMIN)).status == 404
        assert (await client.put("/v1/products/prod_a", json={"name": "A"})).status == 401


async def test_upsell_pair_lists_every_broken_rule(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        for product in ("prod_a", "prod_b"):
            await client.put(f"/v1/products/{product}", json={"name": product}, headers=ADMIN)
        await client.put("/v1/prices/p_m", json=MONTHLY, headers=ADMIN)
        other = {
            "product": "prod_b",
            "currency": "eur",
            "unit_amount": 9000,
            "recurring": {"interval": "year", "usage_type": "metered"},
            "tax_behavior": "inclusive",
            "transform_quantity": {"divide_by": 5, "round": "up"},
            "active": False,
        }
        await client.put("/v1/prices/p_y", json=other, headers=ADMIN)
        refused = await client.put("/v1/prices/p_m/upsell", json={"price": "p_y"}, headers=ADMIN)
        problem = await refused.json()
        assert refused.status == 422
        assert [e["code"] for e in problem["errors"]] == [
            "different_product",
            "different_currency",
            "metered",
            "tax_behavior_mismatch",
            "transform_quantity_mismatch",
            "inactive",
        ]
        self_pair = await client.put("/v1/prices/p_m/upsell", json={"price": "p_m"}, headers=ADMIN)
        assert [e["code"] for e in (await self_pair.json())["errors"]] == ["same_price"]

        await client.put("/v1/prices/p_y2", json={**MONTHLY, "recurring": {"interval": "year"}}, headers=ADMIN)
        accepted = await client.put("/v1/prices/p_m/upsell", json={"price": "p_y2"}, headers=ADMIN)
        assert accepted.status == 200
        assert (await accepted.json())["upsell"] == "p_y2"
        removed = await client.delete("/v1/prices/p_m/upsell", headers=ADMIN)
        assert (await removed.json())["upsell"] is None


async def test_invalid_prices_and_coupons_list_every_rule(pool: asyncpg.Pool) -> None:
    async with http_client(pool, Clock()) as client:
        price = {
            "product": "prod_missing",
            "currency": "xyz",
            "billing_scheme": "tiered",
            "tiers": [{"up_to": 10, "unit_amount": 5}],
            "recurring": {"interval": "month"},
        }
        refused = await client.put("/v1/prices/p_bad", json=price, headers=ADMIN)
        codes = [e["code"] for e in (await refused.json())["errors"]]
        assert codes == [
            "tiers_mode_required",
            "tiers_last_unbounded",
            "unknown_currency",
            "product_not_found",
        ]
        coupon = await client.put("/v1/coupons/c_bad", json={"amount_off": 500, "duration": "repeating"}, headers=ADMIN)
        codes = [e["code"] for e in (await coupon.json())["errors"]]
        assert codes == ["currency_required", "duration_in_months_required"]
        good = await client.put("/v1/coupons/c_ok", json={"percent_off": "12.5", "duration": "forever"}, headers=ADMIN)
        assert (await good.json())["percent_off"] == "12.5"
        promo = await client.put(
            "/v1/promotion-codes/SAVE", json={"coupon": "c_ok", "times_redeemed": 99}, headers=ADMIN
        )
        assert promo.status == 201
        assert (await promo.json())["times_redeemed"] == 0
        orphan = await client.put("/v1/promotion-codes/LOST", json={"coupon": "c_none"}, headers=ADMIN)
        assert (await orphan.json())["code"] == "coupon_not_found"


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UPSELL_DATABASE_URL": database_url}
    return subprocess.run([UPSELL, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_catalog_apply_dry_run_then_apply_then_idempotent(database_url: str, pool: asyncpg.Pool) -> None:
    dry = _cli(database_url, "catalog", "apply", str(EXAMPLE_CATALOG), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "price price_pro_monthly: would be created" in dry.stdout
    assert await pool.fetchval("select count(*) from prices") == 0
    applied = _cli(database_url, "catalog", "apply", str(EXAMPLE_CATALOG))
    assert "13 change(s), 0 unchanged" in applied.stdout
    upsell = await pool.fetchval("select body->>'upsell' from prices where id = 'price_pro_monthly'")
    assert upsell == "price_pro_yearly"
    again = _cli(database_url, "catalog", "apply", str(EXAMPLE_CATALOG))
    assert "0 change(s), 13 unchanged" in again.stdout
    skipped = _cli(database_url, "catalog", "apply", str(EXAMPLE_CATALOG), "--if-empty")
    assert "nothing applied" in skipped.stdout


async def test_catalog_apply_refuses_bad_files_clearly(database_url: str, tmp_path: Path, pool: asyncpg.Pool) -> None:
    missing = _cli(database_url, "catalog", "apply", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("products: [ {id: a, name: A}\n")
    assert "not YAML or JSON" in _cli(database_url, "catalog", "apply", str(broken)).stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"products": [{"id": "a"}]}')
    assert "name" in _cli(database_url, "catalog", "apply", str(wrong)).stderr
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "products: [{id: a, name: A}]\n"
        "prices:\n"
        "  - {id: m, product: a, currency: usd, unit_amount: 100, recurring: {interval: month}, upsell: y}\n"
        "  - {id: y, product: a, currency: eur, unit_amount: 900, recurring: {interval: year}}\n"
    )
    refused = _cli(database_url, "catalog", "apply", str(rules))
    assert refused.returncode == 2
    assert "different_currency" in refused.stderr
    assert "nothing applied" in refused.stderr
    assert await pool.fetchval("select count(*) from products") == 0


async def test_migrate_creates_the_database_and_applies_once(database_url: str, pool: asyncpg.Pool) -> None:
    versions = [v for v, _ in migration_files()]
    recorded = [r["version"] for r in await pool.fetch("select version from schema_migrations order by version")]
    assert recorded == versions
    assert await migrate(database_url) == []


@pytest.mark.parametrize("path", ["/v1/products/a%20b", "/v1/subscriptions/sub%00x", "/v1/upgrade-paths/%C3%A9"])
async def test_a_key_in_the_path_is_held_to_the_id_pattern(pool: asyncpg.Pool, path: str) -> None:
    async with http_client(pool, Clock()) as client:
        response = await client.put(path, json={"name": "Pro"}, headers=ADMIN)
        assert response.status == 422
        assert (await response.json())["code"] == "invalid_path"
    assert await pool.fetchval("select count(*) from products") == 0


def _example_with(tmp_path: Path, price_id: str, **changes: Any) -> tuple[Path, dict[str, Any]]:
    """A file of one price of the example catalog with some of its fields changed (None removes one)."""
    example = yaml.safe_load(EXAMPLE_CATALOG.read_text())
    price = next(p for p in example["prices"] if p["id"] == price_id)
    changed = {key: value for key, value in {**price, **changes}.items() if value is not None}
    file = tmp_path / f"{price_id}.yaml"
    file.write_text(yaml.safe_dump({"prices": [changed]}))
    return file, changed


async def test_catalog_dry_run_shows_each_changed_field_and_writes_nothing(
    database_url: str, tmp_path: Path, seeded: asyncpg.Pool
) -> None:
    file, _ = _example_with(tmp_path, "price_pro_yearly", unit_amount=90000, trial_period_days=14)
    dry = _cli(database_url, "catalog", "apply", str(file), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "~ price price_pro_yearly: would be updated",
        "    unit_amount: 100000 -> 90000",
        "    trial_period_days: null -> 14",
        "1 change(s), 0 unchanged (dry run)",
    ]
    assert await seeded.fetchval("select body->>'unit_amount' from prices where id = 'price_pro_yearly'") == "100000"
    applied = _cli(database_url, "catalog", "apply", str(file))
    assert applied.stdout.splitlines()[:2] == ["~ price price_pro_yearly: updated", "    unit_amount: 100000 -> 90000"]
    assert await seeded.fetchval("select body->>'unit_amount' from prices where id = 'price_pro_yearly'") == "90000"


@pytest.mark.parametrize(
    ("changes", "field_line", "violation"),
    [
        (
            {"currency": "eur"},
            '    currency: "usd" -> "eur"',
            "different_currency: both prices must have the same currency",
        ),
        (
            {"recurring": {"interval": "month", "usage_type": "metered"}},
            '    recurring.interval: "year" -> "month"',
            "metered: metered prices cannot be upsold",
        ),
    ],
    ids=["currency", "interval_and_usage"],
)
async def test_a_file_that_breaks_an_upsell_pair_elsewhere_is_refused(
    database_url: str, tmp_path: Path, seeded: asyncpg.Pool, changes: dict[str, Any], field_line: str, violation: str
) -> None:
    file, yearly = _example_with(tmp_path, "price_pro_yearly", **changes)
    pair = f"upsell pair price_pro_monthly -> price_pro_yearly would be invalid: {violation}"
    dry = _cli(database_url, "catalog", "apply", str(file), "--dry-run")
    assert dry.returncode == 2
    assert field_line in dry.stdout.splitlines()
    assert f"! {pair}" in dry.stdout.splitlines()
    assert dry.stdout.splitlines()[-1] == "1 change(s), 0 unchanged (dry run)"
    assert "an apply would refuse this file" in dry.stderr
    refused = _cli(database_url, "catalog", "apply", str(file))
    assert refused.returncode == 2
    assert "nothing applied" in refused.stderr
    assert f"  ! {pair}" in refused.stderr.splitlines()
    assert await seeded.fetchval("select body->>'currency' from prices where id = 'price_pro_yearly'") == "usd"
    assert (
        await seeded.fetchval("select body->'recurring'->>'interval' from prices where id = 'price_pro_yearly'")
        == "year"
    )
    # The same change with the pair removed in the file is applied.
    monthly = next(p for p in yaml.safe_load(EXAMPLE_CATALOG.read_text())["prices"] if p["id"] == "price_pro_monthly")
    monthly.pop("upsell")
    file.write_text(yaml.safe_dump({"prices": [monthly, yearly]}))
    applied = _cli(database_url, "catalog", "apply", str(file))
    assert applied.returncode == 0, applied.stderr
    assert '    upsell: "price_pro_yearly" -> null' in applied.stdout.splitlines()


@pytest.mark.parametrize(
    ("changes", "violation"),
    [
        ({"active": False}, "price_inactive: price 'price_team_monthly' is not active"),
        ({"type": "one_time", "recurring": None}, "not_recurring: price 'price_team_monthly' is not recurring"),
    ],
    ids=["inactive", "one_time"],
)
async def test_a_file_that_breaks_an_upgrade_path_elsewhere_is_refused(
    database_url: str, tmp_path: Path, seeded: asyncpg.Pool, changes: dict[str, Any], violation: str
) -> None:
    # Without its own upsell, which the change would break too (and which the file would be refused for).
    file, _ = _example_with(tmp_path, "price_team_monthly", upsell=None, **changes)
    path = f"upgrade path path_pro_to_team (to price_team_monthly) would be invalid: {violation}"
    dry = _cli(database_url, "catalog", "apply", str(file), "--dry-run")
    assert dry.returncode == 2
    assert f"! {path}" in dry.stdout.splitlines()
    refused = _cli(database_url, "catalog", "apply", str(file))
    assert refused.returncode == 2
    assert f"  ! {path}" in refused.stderr.splitlines()
    assert await seeded.fetchval("select body->>'upsell' from prices where id = 'price_team_monthly'") == (
        "price_team_yearly"
    )
