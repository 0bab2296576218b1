"""The drop-in component's script, `GET /v1/elements/upsell.js`: read once, answered from memory.

Its ETag is a digest of its bytes, so a browser that has it revalidates with `If-None-Match` and gets
a `304` until the service ships a new script; `/v1` in the path is the version of its attributes and
events, which a new script keeps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

ELEMENT = Path(__file__).parent / "elements" / "upsell.js"
CACHE_CONTROL = "public, max-age=300"
"""Five minutes fresh, then revalidated: a new version reaches checkout pages within that."""

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Script:
    body: bytes
    etag: str

    @classmethod
    def read(cls, path: Path = ELEMENT) -> Script:
        body = path.read_bytes()
        return cls(body, hashlib.sha256(body).hexdigest()[:20])


SCRIPT = web.AppKey("element_script", Script)


@routes.get("/v1/elements/upsell.js")
async def upsell_js(request: web.Request) -> web.Response:
    script = request.app[SCRIPT]
    headers = {"Cache-Control": CACHE_CONTROL}
    if any(tag.value == script.etag or tag.value == "*" for tag in request.if_none_match or ()):
        response = web.Response(status=304, headers=headers)
    else:
        response = web.Response(body=script.body, content_type="text/javascript", charset="utf-8", headers=headers)
    response.etag = script.etag
    return response
