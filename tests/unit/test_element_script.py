"""The component's script as merchants load it: small, a classic script, and nothing that stores or
prints the client secret."""

from __future__ import annotations

import re
from pathlib import Path

from service.entrypoints.http.element_routes import ELEMENT, Script

SOURCE = ELEMENT.read_text(encoding="utf-8")


def test_is_small() -> None:
    assert len(ELEMENT.read_bytes()) < 10_000


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
    assert Script.read(copy).etag == Script.read().etag
    copy.write_bytes(ELEMENT.read_bytes() + b"\n")
    assert Script.read(copy).etag != Script.read().etag
