"""<upsell-offer> in Chromium, on a merchant's page served from another origin than the service."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Locator, Page, expect

from service.entrypoints.http.element_routes import ELEMENT
from tests.broker import peer
from tests.browser.conftest import (
    SCREENSHOTS,
    SESSION,
    WCAG_AA,
    Running,
    Shop,
    Watched,
    axe_violations,
    open_checkout,
)
from tests.integration.helpers import eventually

pytestmark = pytest.mark.browser

NAME_EN = "Pay $1,000.00/year instead of $100.00/month Save 16%"


def component(page: Page) -> Locator:
    return page.locator("upsell-offer")


def switch(page: Page) -> Locator:
    return component(page).get_by_role("switch")


async def test_renders_the_offer_with_savings_and_both_prices_in_en(
    service: Running, shop: Shop, watched: Watched
) -> None:
    await open_checkout(service, shop, watched)
    page = watched.page
    toggle = switch(page)
    # The savings are in the switch's accessible name, what a screen reader announces with it.
    await expect(toggle).to_have_accessible_name(NAME_EN)
    snapshot = await page.locator("upsell-offer").aria_snapshot()
    assert f'switch "{NAME_EN}"' in snapshot, snapshot
    await expect(toggle).to_have_accessible_description("$83.33/month, billed yearly Total today: $150.00")
    await expect(page.get_by_text("Special offer")).to_be_visible()
    await expect(page.get_by_text("Save 16%", exact=True)).to_be_visible()
    await expect(page.get_by_text("$83.33/month, billed yearly")).to_be_visible()
    await expect(toggle).to_have_attribute("aria-checked", "false")
    await expect(page.locator("#total")).to_have_text("15000")
    assert await axe_violations(page, "upsell-offer", WCAG_AA) == []

    # The savings stand out: a badge of its own colour behind bold text.
    savings = page.get_by_text("Save 16%", exact=True)
    badge = await savings.evaluate(
        "(node) => { const s = getComputedStyle(node); return [s.backgroundColor, s.fontWeight, s.color]; }"
    )
    assert badge[0] not in ("rgba(0, 0, 0, 0)", "transparent"), badge
    assert int(badge[1]) >= 700, badge
    assert contrast(badge[2], badge[0]) >= 4.5, badge
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("upsell-offer").screenshot(path=SCREENSHOTS / "upsell-offer.png")


async def test_renders_the_offer_in_ja(service: Running, shop: Shop, watched: Watched) -> None:
    await open_checkout(
        service, shop, watched, currency="jpy", locale="ja", line_items=[{"price": "price_pro_monthly_jpy"}]
    )
    page = watched.page
    # 12 x 1,500 yen against 16,000 yen a year: 2,000 yen, 11.11 %, shown as the shorter "11%".
    await expect(switch(page)).to_have_accessible_name("￥1,500/月ではなく￥16,000/年で支払う 11%お得")
    await expect(switch(page)).to_have_accessible_description("￥1,333/月\uff08年払い\uff09 本日のお支払い: ￥1,500")
    await expect(page.get_by_text("特別オファー")).to_be_visible()
    await expect(page.locator("upsell-offer > [lang]")).to_have_attribute("lang", "ja")
    assert await axe_violations(page, "upsell-offer", WCAG_AA) == []


def _channels(color: str) -> tuple[float, ...]:
    found = re.findall(r"[\d.]+", color)
    assert len(found) in (3, 4), color
    return tuple(float(value) for value in found[:3])


def contrast(first: str, second: str) -> float:
    """WCAG's contrast ratio of two computed `rgb()` colours."""

    def luminance(color: str) -> float:
        linear = [
            c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in _channels(color)
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


FOCUS = """(node) => {
  const own = getComputedStyle(node), around = getComputedStyle(node.parentElement);
  return {
    focused: document.activeElement === node,
    visible: node.matches(":focus-visible"),
    outline: [own.outlineStyle, own.outlineWidth, own.outlineColor],
    shadow: own.boxShadow,
    background: around.backgroundColor,
  };
}"""


async def test_the_switch_has_a_focus_style_of_its_own(service: Running, shop: Shop, watched: Watched) -> None:
    await open_checkout(service, shop, watched)
    page = watched.page
    toggle = switch(page)
    await expect(toggle).to_have_attribute("aria-checked", "false")
    before = await toggle.evaluate(FOCUS)
    assert before["outline"][0] == "none" or before["outline"][1] == "0px", before

    await page.keyboard.press("Tab")
    focused = await toggle.evaluate(FOCUS)
    assert focused["focused"], focused
    assert focused["visible"], focused
    style, width, color = focused["outline"]
    # Its own outline, not the browser's default ring (style `auto`): solid, 3 px, AA contrast (3:1 for a
    # focus indicator) against the component's background.
    assert (style, width) == ("solid", "3px"), focused
    assert contrast(color, focused["background"]) >= 3, focused
    await page.locator("upsell-offer").screenshot(path=SCREENSHOTS / "upsell-offer-focus.png")


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
    await expect(toggle).to_have_accessible_description(re.compile(r"Total today: \$1,050\.00$"))
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


async def test_a_page_on_an_origin_not_listed_is_refused_by_the_browser_and_says_so(
    service: Running, shop: Shop, watched: Watched
) -> None:
    await open_checkout(service, shop, watched, other_origin=True)
    page = watched.page
    # The failure is shown and announced: an alert, visible, with the offer it could not read hidden.
    alert = component(page).get_by_role("alert")
    await expect(alert).to_have_text("The offer could not be loaded.")
    await expect(alert).to_be_visible()
    assert await page.evaluate("window.lastError") == {"status": 0, "code": None}
    await expect(switch(page)).to_be_hidden()
    assert any("CORS" in line for line in watched.console), watched.console
    assert await axe_violations(page, "upsell-offer", WCAG_AA) == []
    await page.locator("upsell-offer").screenshot(path=SCREENSHOTS / "upsell-offer-failed.png")


async def test_a_read_the_service_refuses_shows_an_alert(service: Running, shop: Shop, watched: Watched) -> None:
    session_id, _ = await service.create(**SESSION)
    shop.secrets[session_id] = "cs_secret_of_another_session"
    await watched.page.goto(shop.url(session_id))
    page = watched.page
    await expect(component(page).get_by_role("alert")).to_have_text("The offer could not be loaded.")
    await expect(component(page).get_by_role("alert")).to_be_visible()
    assert (await page.evaluate("window.lastError"))["status"] in (401, 403, 404)
    await expect(switch(page)).to_be_hidden()


async def test_a_toggle_refused_by_cors_leaves_the_switch_as_it_was(
    service: Running, shop: Shop, watched: Watched
) -> None:
    session_id, _ = await open_checkout(service, shop, watched)
    page = watched.page
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    # The merchant's origin is taken off the list while the page is open.
    await service.restart(UPSELL_CORS_ORIGINS=shop.origins.other)
    await switch(page).click()
    await expect(component(page).get_by_role("alert")).to_have_text("Your choice could not be saved. Please try again.")
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    await expect(switch(page)).to_be_enabled()
    await expect(page.locator("#total")).to_have_text("15000")
    assert await page.evaluate("window.changes.length") == 0
    assert (await service.view(session_id))["upsell"]["selected"] is False


CLOSED = """(node) => {
  const root = node.parentElement, label = document.getElementById(node.getAttribute("aria-labelledby").split(" ")[0]);
  const status = root.querySelector("[role=status]"), style = (element) => getComputedStyle(element);
  return {
    label: [style(label).color, style(label).textDecorationLine],
    background: style(root).backgroundColor,
    status: [style(status).display, style(status).borderLeftWidth, style(status).backgroundColor],
  };
}"""


async def _closed_looks(toggle: Locator) -> dict[str, Any]:
    looks: dict[str, Any] = await toggle.evaluate(CLOSED)
    return looks


async def _assert_closed(page: Page, message: str, open_looks: dict[str, Any]) -> None:
    """The offer no longer looks available: the switch disabled, the offer struck through and greyed,
    the reason a status of its own."""
    toggle = switch(page)
    await expect(toggle).to_be_disabled()
    await expect(component(page).get_by_role("status")).to_have_text(message)
    await expect(component(page).get_by_role("status")).to_be_visible()
    looks = await _closed_looks(toggle)
    assert looks["label"][1] == "line-through", looks
    assert looks["label"][0] != open_looks["label"][0], (looks, open_looks)
    assert looks["background"] != open_looks["background"], (looks, open_looks)
    display, border, background = looks["status"]
    assert display != "none", looks
    assert border != "0px", looks
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), looks
    assert contrast(looks["label"][0], looks["background"]) >= 4.5, looks
    assert await axe_violations(page, "upsell-offer", WCAG_AA) == []


async def test_an_expired_session_shows_the_message_and_disables_the_switch(
    service: Running, shop: Shop, watched: Watched, amqp_url: str
) -> None:
    session_id, _ = await open_checkout(service, shop, watched)
    page = watched.page
    await expect(switch(page)).to_be_enabled()
    open_looks = await _closed_looks(switch(page))
    assert open_looks["label"][1] == "none", open_looks
    async with peer(amqp_url) as broker:
        await broker.send("checkout.session.expired", {"session": session_id})
        assert await eventually(lambda: _status(service, session_id, "expired"))

    await switch(page).click()
    await _assert_closed(page, "This checkout has expired.", open_looks)
    await expect(switch(page)).to_have_attribute("aria-checked", "false")
    assert await page.evaluate("window.lastError") == {"status": 409, "code": "session_expired"}

    await page.reload()
    await _assert_closed(page, "This checkout has expired.", open_looks)
    await page.locator("upsell-offer").screenshot(path=SCREENSHOTS / "upsell-offer-expired.png")


async def test_a_completed_session_shows_the_offer_closed(service: Running, shop: Shop, watched: Watched) -> None:
    session_id, _ = await open_checkout(service, shop, watched)
    page = watched.page
    await expect(switch(page)).to_be_enabled()
    open_looks = await _closed_looks(switch(page))
    await service.complete(session_id)
    await page.reload()
    await _assert_closed(page, "This checkout is already complete.", open_looks)
    await expect(switch(page)).to_have_accessible_name(NAME_EN)


async def _status(service: Running, session_id: str, status: str) -> bool:
    return bool((await service.view(session_id))["status"] == status)


async def test_the_script_is_gzipped_for_browsers_that_take_it(service: Running, shop: Shop, watched: Watched) -> None:
    page = watched.page
    script_url = f"{service.base}/v1/elements/upsell.js"
    async with page.expect_response(script_url) as loading:
        await open_checkout(service, shop, watched)
    response = await loading.value
    assert "gzip" in (await response.request.all_headers())["accept-encoding"]
    headers = await response.all_headers()
    assert headers["content-encoding"] == "gzip"
    assert "accept-encoding" in headers["vary"].lower()
    # A plain <script src> is no CORS request (no Origin sent); a page's fetch of it is, below.
    assert await response.body() == ELEMENT.read_bytes()
    await expect(switch(page)).to_have_accessible_name(NAME_EN)

    # The bytes on the wire, as the browser got them: gzip that unpacks to the script itself.
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(script_url, headers={"Accept-Encoding": "gzip", "Origin": shop.origins.allowed}) as answer,
    ):
        assert answer.headers["Content-Encoding"] == "gzip"
        assert answer.headers["Access-Control-Allow-Origin"] == shop.origins.allowed
        assert gzip.decompress(await answer.read()) == ELEMENT.read_bytes()
        etag = answer.headers["ETag"]
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(script_url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag}) as again,
    ):
        assert again.status == 304
        assert again.headers["ETag"] == etag


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
