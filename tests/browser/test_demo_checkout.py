"""The reference checkout page of `UPSELL_DEMO=on`, as `make run` serves it, in Chromium."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import SCREENSHOTS, Running, Watched

pytestmark = pytest.mark.browser

NBSP = "\xa0"


async def test_demo_checkout_shows_the_offer_beside_line_items_and_totals(service: Running, watched: Watched) -> None:
    page = watched.page
    await page.goto(f"{service.base}/demo/checkout")
    toggle = page.locator("upsell-offer [role=switch]")
    await expect(toggle).to_have_attribute("aria-checked", "false")
    await expect(page.locator("#total")).to_have_text("$150.00")
    await expect(page.locator("#lines tr")).to_have_count(2)

    await toggle.click()
    await expect(toggle).to_have_attribute("aria-checked", "true")
    await expect(page.locator("#total")).to_have_text("$1,050.00")
    await expect(page.locator("#lines tr").first).to_contain_text("every year")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.set_viewport_size({"width": 1000, "height": 360})
    await page.screenshot(path=SCREENSHOTS / "demo-checkout.png", full_page=True)
    assert (SCREENSHOTS / "demo-checkout.png").stat().st_size > 10_000
    assert not [line for line in watched.console if "error" in line.lower()], watched.console


@pytest.mark.parametrize(
    ("locale", "label", "savings"),
    [
        ("de", f"1.000,00{NBSP}$/Jahr statt 100,00{NBSP}$/Monat zahlen", f"16{NBSP}% sparen"),
        ("fr", f"Payer 1{NBSP}000,00{NBSP}$US/an au lieu de 100,00{NBSP}$US/mois", "Économisez 16 %"),
    ],
)
async def test_demo_checkout_in_de_and_fr(
    service: Running, watched: Watched, locale: str, label: str, savings: str
) -> None:
    page = watched.page
    await page.goto(f"{service.base}/demo/checkout?locale={locale}")
    await expect(page.locator(".upsell-offer__label")).to_have_text(label)
    await expect(page.locator(".upsell-offer__savings")).to_have_text(savings)
