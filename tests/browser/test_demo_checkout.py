"""The reference checkout page of `UPSELL_DEMO=on`, as `make run` serves it, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import SCREENSHOTS, Running, Watched, axe_violations

pytestmark = pytest.mark.browser

NBSP = "\xa0"
NNBSP = "\u202f"
# The page's own words in English; none of them may be left on a page in another language.
ENGLISH = [
    "Demo shop",
    "Language",
    "Your order",
    "Subtotal",
    "Discount",
    "Total today",
    "Billing",
    "Pay",
    "Pro plan",
    "Onboarding",
    "every",
    "Special offer",
    "Save",
    "instead of",
    "billed",
]


async def test_demo_checkout_shows_the_offer_beside_line_items_and_totals(service: Running, watched: Watched) -> None:
    page = watched.page
    await page.goto(f"{service.base}/demo/checkout")
    toggle = page.get_by_role("switch")
    await expect(toggle).to_have_attribute("aria-checked", "false")
    total = page.get_by_role("row", name="Total today")
    await expect(total).to_contain_text("$150.00")
    order = page.get_by_role("region", name="Your order")
    await expect(order.get_by_role("row")).to_have_count(4)  # two line items, subtotal and total

    await toggle.click()
    await expect(toggle).to_have_attribute("aria-checked", "true")
    await expect(total).to_contain_text("$1,050.00")
    await expect(order.get_by_role("row").first).to_contain_text("every year")
    assert await axe_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.set_viewport_size({"width": 1000, "height": 360})
    await page.screenshot(path=SCREENSHOTS / "demo-checkout.png", full_page=True)
    assert (SCREENSHOTS / "demo-checkout.png").stat().st_size > 10_000
    assert not [line for line in watched.console if "error" in line.lower()], watched.console


async def _scroll_width(page: Page) -> int:
    width: int = await page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    return width


@pytest.mark.parametrize("locale", ["en", "de", "fr", "ja"])
async def test_demo_checkout_fits_320_px(service: Running, watched: Watched, locale: str) -> None:
    page = watched.page
    await page.set_viewport_size({"width": 320, "height": 640})
    await page.goto(f"{service.base}/demo/checkout?locale={locale}")
    await expect(page.get_by_role("switch")).to_be_visible()
    await expect(page.get_by_role("row").nth(1)).to_contain_text(re.compile(r"\d"))
    assert await _scroll_width(page) <= 320
    await page.screenshot(path=SCREENSHOTS / f"demo-checkout-320-{locale}.png", full_page=True)


LABELS = ("shop", "languages", "order", "subtotal", "total", "billing", "pay")


@pytest.mark.parametrize(
    ("locale", "words", "name", "equivalent"),
    [
        (
            "de",
            ("Demo-Shop", "Sprache", "Ihre Bestellung", "Zwischensumme", "Heute fällig", "Abrechnung", "Bezahlen"),
            f"1.000,00{NBSP}$/Jahr statt 100,00{NBSP}$/Monat zahlen 16{NBSP}% sparen",
            f"83,33{NBSP}$/Monat, jährlich abgerechnet",
        ),
        (
            "fr",
            (
                "Boutique de démonstration",
                "Langue",
                "Votre commande",
                "Sous-total",
                "Total aujourd\u2019hui",
                "Facturation",
                "Payer",
            ),
            f"Payer 1{NNBSP}000,00{NBSP}$US/an au lieu de 100,00{NBSP}$US/mois Économisez 16{NNBSP}%",
            f"83,33{NBSP}$US/mois, facturé annuellement",
        ),
        (
            "ja",
            ("デモショップ", "言語", "ご注文内容", "小計", "本日のお支払い", "お支払い", "支払う"),
            "￥1,500/月ではなく￥16,000/年で支払う 11%お得",
            "￥1,333/月\uff08年払い\uff09",
        ),
    ],
)
async def test_demo_checkout_speaks_the_buyers_language(
    service: Running, watched: Watched, locale: str, words: tuple[str, ...], name: str, equivalent: str
) -> None:
    page = watched.page
    said = dict(zip(LABELS, words, strict=True))
    await page.goto(f"{service.base}/demo/checkout?locale={locale}")
    await expect(page.get_by_role("switch")).to_have_accessible_name(name)
    await expect(page.get_by_text(equivalent)).to_be_visible()
    await expect(page.locator("html")).to_have_attribute("lang", locale)
    await expect(page.get_by_role("banner")).to_contain_text(said["shop"])
    await expect(page.get_by_role("navigation", name=said["languages"])).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_have_text(said["order"])
    await expect(page.get_by_role("heading", level=2)).to_have_text(said["billing"])
    await expect(page.get_by_role("row", name=said["subtotal"])).to_contain_text(re.compile(r"\d"))
    await expect(page.get_by_role("row", name=said["total"])).to_contain_text(re.compile(r"\d"))
    await expect(page.get_by_role("button", name=said["pay"], exact=True)).to_be_visible()
    await expect(page.get_by_role("region", name=said["order"]).get_by_role("row").first).to_contain_text("1")
    text = await page.locator("body").inner_text()
    left = [word for word in ENGLISH if re.search(rf"\b{re.escape(word)}\b", text)]
    assert left == [], text
    assert await page.title() != "Checkout · upsell demo"
    assert await axe_violations(page) == []


async def test_an_unknown_locale_gets_the_english_page(service: Running, watched: Watched) -> None:
    page = watched.page
    await page.goto(f"{service.base}/demo/checkout?locale=xx")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("switch")).to_have_accessible_name(
        "Pay $1,000.00/year instead of $100.00/month Save 16%"
    )
