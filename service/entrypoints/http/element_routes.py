"""The drop-in component's script, `GET /v1/elements/upsell.js`: read and gzipped once, answered from memory.

Its ETag is a digest of its bytes, so a browser that has it revalidates with `If-None-Match` and gets
a `304` until the service ships a new script; `/v1` in the path is the version of its attributes and
events, which a new script keeps. The gzipped body is another representation of the script, so it has
an ETag of its own, and every answer says `Vary: Accept-Encoding` for the caches on the way.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web

ELEMENT = Path(__file__).parent / "elements" / "upsell.js"
CACHE_CONTROL = "public, max-age=300"
"""Five minutes fresh, then revalidated: a new version reaches checkout pages within that."""

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Encoded:
    """One representation of the script: its bytes, their ETag, and their `Content-Encoding` if any."""

    body: bytes
    etag: str
    encoding: str | None = None


@dataclass(frozen=True, slots=True)
class Script:
    identity: Encoded
    gzipped: Encoded

    @classmethod
    def read(cls, path: Path = ELEMENT) -> Script:
        body = path.read_bytes()
        etag = hashlib.sha256(body).hexdigest()[:20]
        # mtime 0: the same script gzips to the same bytes in every replica and at every start.
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        return cls(Encoded(body, etag), Encoded(packed, f"{etag}-gzip", "gzip"))

    def for_request(self, accept_encoding: str) -> Encoded:
        return self.gzipped if accepts_gzip(accept_encoding) else self.identity


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` takes gzip: named (or as `x-gzip`), or through `*`, with a weight above 0."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding.strip()] = weight
    named = weights.get("gzip", weights.get("x-gzip"))
    return (named if named is not None else weights.get("*", 0.0)) > 0


SCRIPT = web.AppKey("element_script", Script)


@routes.get("/v1/elements/upsell.js")
async def upsell_js(request: web.Request) -> web.Response:
    chosen = request.app[SCRIPT].for_request(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
    headers = {hdrs.CACHE_CONTROL: CACHE_CONTROL, hdrs.VARY: hdrs.ACCEPT_ENCODING}
    # If-None-Match is compared with the representation this request would get: a client that kept the
    # plain script and now takes gzip gets the gzipped one, not a 304 for bytes of another encoding.
    if any(tag.value in (chosen.etag, "*") for tag in request.if_none_match or ()):
        response = web.Response(status=304, headers=headers)
    else:
        if chosen.encoding is not None:
            headers[hdrs.CONTENT_ENCODING] = chosen.encoding
        response = web.Response(body=chosen.body, content_type="text/javascript", charset="utf-8", headers=headers)
    response.etag = chosen.etag
    return response
