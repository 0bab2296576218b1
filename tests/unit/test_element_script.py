"""The component's script as merchants load it: small, a classic script, nothing that stores or prints
the client secret, and gzipped for the browsers that take it."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.entrypoints.http import element_routes
from service.entrypoints.http.element_routes import ELEMENT, Script, accepts_gzip

SOURCE = ELEMENT.read_text(encoding="utf-8")
PATH = "/v1/elements/upsell.js"


def test_is_small() -> None:
    # What a checkout page downloads is the gzipped script; the plain one is for the few that take no gzip.
    assert len(Script.read().gzipped.body) < 5_000
    assert len(ELEMENT.read_bytes()) < 16_000


def test_is_a_classic_script_with_no_dependencies() -> None:
    # It loads with a plain <script src>: no module syntax, nothing imported, defines its element itself.
    assert not re.search(r"^\s*(import|export)\b", SOURCE, re.MULTILINE)
    assert "import(" not in SOURCE
    assert "require(" not in SOURCE
    assert 'customElements.define("upsell-offer"' in SOURCE


def test_stores_and_prints_nothing() -> None:
    for forbidden in ("localStorage", "sessionStorage", "indexedDB", "document.cookie", "innerHTML"):
        assert forbidden not in SOURCE, forbidden
    assert not re.search(r"\bconsole\.\w+\(", SOURCE)


def test_etag_follows_the_bytes(tmp_path: Path) -> None:
    copy = tmp_path / "upsell.js"
    copy.write_bytes(ELEMENT.read_bytes())
    assert Script.read(copy).identity.etag == Script.read().identity.etag
    copy.write_bytes(ELEMENT.read_bytes() + b"\n")
    assert Script.read(copy).identity.etag != Script.read().identity.etag
    assert Script.read(copy).gzipped.etag != Script.read().gzipped.etag


def test_gzips_once_to_the_same_bytes_with_an_etag_of_its_own() -> None:
    script = Script.read()
    assert gzip.decompress(script.gzipped.body) == ELEMENT.read_bytes()
    assert script.gzipped.body == Script.read().gzipped.body
    assert script.gzipped.etag != script.identity.etag
    assert (script.identity.encoding, script.gzipped.encoding) == (None, "gzip")


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("x-gzip", True),
        ("*", True),
        ("GZIP", True),
        ("", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000, *", False),
        ("*;q=0", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding(header: str, gzipped: bool) -> None:
    assert accepts_gzip(header) is gzipped


@pytest.fixture
async def http() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app[element_routes.SCRIPT] = Script.read()
    app.add_routes(element_routes.routes)
    async with TestClient(TestServer(app), auto_decompress=False) as client:
        yield client


async def test_serves_gzip_to_who_takes_it_and_the_plain_script_to_the_rest(
    http: TestClient[web.Request, web.Application],
) -> None:
    packed = await http.get(PATH, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.status == 200
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert packed.content_type == "text/javascript"
    assert gzip.decompress(await packed.read()) == ELEMENT.read_bytes()

    plain = await http.get(PATH, headers={"Accept-Encoding": "identity"})
    assert plain.status == 200
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert await plain.read() == ELEMENT.read_bytes()
    assert plain.headers["ETag"] != packed.headers["ETag"]


async def test_revalidates_each_encoding_by_its_own_etag(http: TestClient[web.Request, web.Application]) -> None:
    gzip_etag = (await http.get(PATH, headers={"Accept-Encoding": "gzip"})).headers["ETag"]
    plain_etag = (await http.get(PATH, headers={"Accept-Encoding": "identity"})).headers["ETag"]

    same = await http.get(PATH, headers={"Accept-Encoding": "gzip", "If-None-Match": gzip_etag})
    assert same.status == 304
    assert (same.headers["ETag"], same.headers["Vary"]) == (gzip_etag, "Accept-Encoding")
    assert "Content-Encoding" not in same.headers
    weak = await http.get(PATH, headers={"Accept-Encoding": "identity", "If-None-Match": f'"x", W/{plain_etag}'})
    assert weak.status == 304
    # A tag of the other encoding does not validate the one this request gets: the full answer comes.
    other = await http.get(PATH, headers={"Accept-Encoding": "gzip", "If-None-Match": plain_etag})
    assert other.status == 200
    assert other.headers["Content-Encoding"] == "gzip"
    assert other.headers["ETag"] == gzip_etag
