"""<upsell-offer> in Chromium, on a merchant's page served from another origin than the service."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Locator, Page, expect

from tests.broker import peer
from tests.browser.conftest import Running, Shop, Watched, open_checkout
from tests.integration.helpers import eventually

pytestmark = pytest.mark.browser


def switch(page: Page) -> Locator:
    return page.locator("upsell-offer [role=switch]")


async def test_renders_the_offer_with_savings_and_both_prices_in_en(
    service: Running, shop: Shop, watched: Watched
) -> None:
    await open_checkout(service, shop, watched)
    page = watched.page
    await expect(page.locator(".upsell-offer__label")).to_have_text("Pay $1,000.00/year instead of $100.00/month")
    await expect(page.locator(".upsell-offer__savings")).to_have_text("Save 16%")
    await expect(page.locator(".upsell-offer__total")).to_have_text("Total today: $150.00")
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    await expect(page.locator("#total")).to_have_text("15000")


async def test_renders_the_offer_in_ja(service: Running, shop: Shop, watched: Watched) -> None:
    await open_checkout(
        service, shop, watched, currency="jpy", locale="ja", line_items=[{"price": "price_pro_monthly_jpy"}]
    )
    page = watched.page
    # 12 x 1,500 yen against 16,000 yen a year: 2,000 yen, 11.11 %, shown as the shorter "11%".
    await expect(page.locator(".upsell-offer__label")).to_have_text("￥1,500/月ではなく￥16,000/年で支払う")
    await expect(page.locator(".upsell-offer__savings")).to_have_text("11%お得")
    await expect(page.locator(".upsell-offer__total")).to_have_text("本日のお支払い: ￥1,500")
    await expect(page.locator(".upsell-offer")).to_have_attribute("lang", "ja")


async def test_click_and_space_toggle_through_the_api_and_a_reload_shows_the_stored_state(
    service: Running, shop: Shop, watched: Watched
) -> None:
    session_id, secret = await open_checkout(service, shop, watched)
    page = watched.page
    toggle = switch(page)
    await expect(toggle).to_have_attribute("aria-checked", "false")

    await toggle.click()
    await expect(toggle).to_have_attribute("aria-checked", "true")
    await expect(page.locator("#total")).to_have_text("105000")
    await expect(page.locator(".upsell-offer__total")).to_have_text("Total today: $1,050.00")
    assert (await service.view(session_id))["upsell"]["selected"] is True
    posts = [r for r in watched.requests if r.method == "POST" and r.url.endswith(f"/{session_id}/upsell")]
    assert len(posts) == 1
    assert (await posts[0].all_headers())["authorization"] == f"Bearer {secret}"
    assert json.loads(posts[0].post_data or "") == {"selected": True}
    changes = await page.evaluate("window.changes.map((view) => [view.upsell.selected, view.version])")
    assert changes == [[True, 2]]

    await toggle.focus()
    await page.keyboard.press("Space")
    await expect(toggle).to_have_attribute("aria-checked", "false")
    await expect(page.locator("#total")).to_have_text("15000")
    assert (await service.view(session_id))["upsell"]["selected"] is False
    await page.keyboard.press("Space")
    await expect(toggle).to_have_attribute("aria-checked", "true")
    assert await eventually(lambda: _selected(service, session_id, True))

    await page.reload()
    await expect(switch(page)).to_have_attribute("aria-checked", "true")
    await expect(page.locator("#total")).to_have_text("105000")


async def _selected(service: Running, session_id: str, selected: bool) -> bool:
    return bool((await service.view(session_id))["upsell"]["selected"] is selected)


async def test_a_page_on_an_origin_not_listed_is_refused_by_the_browser(
    service: Running, shop: Shop, watched: Watched
) -> None:
    await open_checkout(service, shop, watched, other_origin=True)
    page = watched.page
    await expect(page.locator(".upsell-offer__message")).to_have_text("The offer could not be loaded.")
    assert await page.evaluate("window.lastError") == {"status": 0, "code": None}
    await expect(switch(page)).to_be_hidden()
    assert any("CORS" in line for line in watched.console), watched.console


async def test_a_toggle_refused_by_cors_leaves_the_switch_as_it_was(
    service: Running, shop: Shop, watched: Watched
) -> None:
    session_id, _ = await open_checkout(service, shop, watched)
    page = watched.page
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    # The merchant's origin is taken off the list while the page is open.
    await service.restart(UPSELL_CORS_ORIGINS=shop.origins.other)
    await switch(page).click()
    await expect(page.locator(".upsell-offer__message")).to_have_text(
        "Your choice could not be saved. Please try again."
    )
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    await expect(page.locator("#total")).to_have_text("15000")
    assert await page.evaluate("window.changes.length") == 0
    assert (await service.view(session_id))["upsell"]["selected"] is False


async def test_an_expired_session_shows_the_message_and_disables_the_switch(
    service: Running, shop: Shop, watched: Watched, amqp_url: str
) -> None:
    session_id, _ = await open_checkout(service, shop, watched)
    page = watched.page
    await expect(switch(page)).to_be_enabled()
    async with peer(amqp_url) as broker:
        await broker.send("checkout.session.expired", {"session": session_id})
        assert await eventually(lambda: _status(service, session_id, "expired"))

    await switch(page).click()
    await expect(page.locator(".upsell-offer__message")).to_have_text("This checkout has expired.")
    await expect(switch(page)).to_be_disabled()
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    assert await page.evaluate("window.lastError") == {"status": 409, "code": "session_expired"}

    await page.reload()
    await expect(page.locator(".upsell-offer__message")).to_have_text("This checkout has expired.")
    await expect(switch(page)).to_be_disabled()


async def _status(service: Running, session_id: str, status: str) -> bool:
    return bool((await service.view(session_id))["status"] == status)


async def test_the_client_secret_is_in_no_url_cookie_storage_dom_or_console_line(
    service: Running, shop: Shop, watched: Watched
) -> None:
    _, secret = await open_checkout(service, shop, watched)
    page = watched.page
    await switch(page).click()
    await expect(switch(page)).to_have_attribute("aria-checked", "true")
    await page.evaluate("console.log('checkout page log', document.querySelector('upsell-offer').outerHTML)")

    assert watched.requests
    for request in watched.requests:
        assert secret not in request.url
        assert secret not in (request.post_data or "")
    assert secret not in json.dumps(await page.context.cookies())
    storage = await page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}, window.name])")
    assert secret not in storage
    entries = await page.evaluate("JSON.stringify(performance.getEntries().map((entry) => entry.name))")
    assert secret not in entries
    # The attribute is taken off the element once read.
    assert secret not in await page.content()
    assert await page.locator("upsell-offer").get_attribute("client-secret") is None
    assert any("checkout page log" in line for line in watched.console)
    assert not [line for line in watched.console if secret in line]
