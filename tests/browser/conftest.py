"""Browser tests: `upsell serve` as a process, a merchant's checkout page served by a server of the test
on another origin, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import html
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright, expect

from tests.process import Server, apply_example_catalog, free_port, service_env, start, wait_ready

TOKEN = "browser-admin-token-3d7a"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
# Chromium as root in a sandbox-less container, with nothing reaching out to the closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("UPSELL_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the browser tests need Chromium: `make test` installs Debian's `chromium` where apt-get is there; "
            "elsewhere install Chromium and put it on PATH or set UPSELL_TEST_CHROMIUM to its path",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    # Each test starts its own service: its first answers (a cold process, babel's locale data) on a
    # busy two-core machine can take longer than Playwright's 5 s default.
    expect.set_options(timeout=15_000)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Watched:
    """A page with everything it did that a secret could leak through: requests and console lines."""

    page: Page
    requests: list[Request] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1100, "height": 640})
    page = await context.new_page()
    seen = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        seen.console.append(message.text)

    def on_request(request: Request) -> None:
        seen.requests.append(request)

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.console.append(f"pageerror: {error}"))
    yield seen
    await context.close()


@dataclass
class Running:
    server: Server
    env: dict[str, str]

    @property
    def base(self) -> str:
        return self.server.base

    async def create(self, **session: Any) -> tuple[str, str]:
        """Registers a session as a merchant's backend does; its id and client secret."""
        body = {"id": f"cs_browser_{uuid.uuid4().hex[:12]}", **session}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.base}/v1/checkout/sessions", json=body, headers=self.server.admin) as answer,
        ):
            assert answer.status == 201, await answer.text()
            body = await answer.json()
            return str(body["id"]), str(body["client_secret"])

    async def complete(self, session_id: str) -> None:
        """Completes a session as a merchant's backend does once the payment went through."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.base}/v1/checkout/sessions/{session_id}/complete",
                json={"payment": "pi_browser"},
                headers=self.server.admin,
            ) as answer,
        ):
            assert answer.status == 200, await answer.text()

    async def view(self, session_id: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.base}/v1/checkout/sessions/{session_id}", headers=self.server.admin) as answer,
        ):
            assert answer.status == 200
            body: dict[str, Any] = await answer.json()
            return body

    async def restart(self, **env: str) -> None:
        """Stops the process and starts it again on the same port with `env` changed."""
        self.server.stop()
        self.env = {**self.env, **env}
        self.server = start(self.env, self.server.log)
        await wait_ready(self.server)


@dataclass(frozen=True)
class Origins:
    """The merchant's page is served on two ports: `allowed` is in UPSELL_CORS_ORIGINS, `other` is not."""

    allowed_port: int
    other_port: int

    @property
    def allowed(self) -> str:
        return f"http://127.0.0.1:{self.allowed_port}"

    @property
    def other(self) -> str:
        return f"http://127.0.0.1:{self.other_port}"


@pytest.fixture(scope="session")
def origins() -> Origins:
    return Origins(free_port(), free_port())


@pytest.fixture
async def service(database_url: str, amqp_url: str, tmp_path: Path, origins: Origins) -> AsyncIterator[Running]:
    """`upsell serve` with the merchant's page origin allowed and the demo checkout on."""
    env = {
        **service_env(database_url, amqp_url, TOKEN),
        "UPSELL_CORS_ORIGINS": origins.allowed,
        "UPSELL_DEMO": "on",
    }
    apply_example_catalog(env)
    running = Running(start(env, tmp_path / "serve.log"), env)
    try:
        await wait_ready(running.server)
        yield running
    finally:
        running.server.kill()
        print("".join(running.server.log.read_text().splitlines(keepends=True)[-40:]))


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop checkout</title></head>
<body>
  <p>Total: <output id="total"></output></p>
  <upsell-offer session="{session}" client-secret="{secret}" api="{api}"></upsell-offer>
  <!-- The listeners before the component: its first read can answer before a later script runs (the
       parser may yield after a script, and a refused preflight on loopback is back within a
       millisecond). -->
  <script>
    window.changes = [];
    const offer = document.querySelector("upsell-offer");
    const total = document.getElementById("total");
    offer.addEventListener("upsell-load", (event) => {{ total.value = event.detail.amount_total; }});
    offer.addEventListener("upsell-change", (event) => {{
      window.changes.push(event.detail);
      total.value = event.detail.amount_total;
    }});
    offer.addEventListener("upsell-error", (event) => {{ window.lastError = event.detail; }});
  </script>
  <script src="{api}/v1/elements/upsell.js"></script>
</body></html>
"""


@dataclass
class Shop:
    """The merchant's site: its server renders the checkout page with the session's client secret in the
    component's attribute, as a server-side template would. `url(id)` on the allowed origin, `other_url`
    on one not listed."""

    secrets: dict[str, str]
    api: str
    origins: Origins

    def url(self, session_id: str) -> str:
        return f"{self.origins.allowed}/checkout/{session_id}"

    def other_url(self, session_id: str) -> str:
        return f"{self.origins.other}/checkout/{session_id}"


@pytest.fixture
async def shop(service: Running, origins: Origins) -> AsyncIterator[Shop]:
    known = Shop({}, service.base, origins)

    async def checkout(request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        page = PAGE.format(
            session=html.escape(session_id), secret=html.escape(known.secrets[session_id]), api=known.api
        )
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/checkout/{id}", checkout)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in (origins.allowed_port, origins.other_port):
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield known
    finally:
        await runner.cleanup()


SESSION: dict[str, Any] = {
    "mode": "subscription",
    "currency": "usd",
    "line_items": [{"price": "price_pro_monthly"}, {"price": "price_setup"}],
}


async def open_checkout(
    service: Running, shop: Shop, watched: Watched, other_origin: bool = False, **session: Any
) -> tuple[str, str]:
    """Registers a session, opens its checkout page, and waits for the component to settle."""
    session_id, secret = await service.create(**{**SESSION, **session})
    shop.secrets[session_id] = secret
    await watched.page.goto(shop.other_url(session_id) if other_origin else shop.url(session_id))
    return session_id, secret


# axe-core as its Python package ships it; injected into the page under test.
AXE = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


async def axe_violations(page: Page, within: str | None = None, tags: list[str] | None = None) -> list[str]:
    """What axe-core finds on the page (or inside the `within` selector): one line per rule broken, with
    the elements that break it. `tags` limits the rules (the WCAG A and AA ones, say); all by default."""
    await page.evaluate(AXE)
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if tags is not None:
        options["runOnly"] = {"type": "tag", "values": tags}
    results: dict[str, Any] = await page.evaluate(
        "([within, options]) => axe.run(within ?? document, options)", [within, options]
    )
    return [
        f"{found['id']} ({found['impact']}): {[node['target'] for node in found['nodes']]} {found['help']}"
        for found in results["violations"]
    ]
