"""The HTTP baseline: an aiohttp hello-world handler. `python bench/hello.py PORT`"""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


if __name__ == "__main__":
    # The event loop the service runs on, so that the two are compared like for like.
    uvloop.install()
    app = web.Application()
    app.router.add_get("/hello", hello)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
