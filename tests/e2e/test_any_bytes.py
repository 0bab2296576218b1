"""No request of any shape gets a 5xx: arbitrary bytes as header values and bodies, sent over a plain socket
(no client library to tidy them up) to every route of `upsell serve`."""

from __future__ import annotations

import asyncio
import re
import socket
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.openapi import OPERATIONS
from tests.process import Server

pytestmark = pytest.mark.e2e

_IDS = {"id": "cs_1", "token": "x"}
ROUTES = sorted(
    {(method.upper(), re.sub(r"{(\w+)}", lambda m: _IDS[m[1]], path)) for method, path, *_ in OPERATIONS}
    | {
        ("GET", "/v1/elements/upsell.js"),
        ("OPTIONS", "/v1/checkout/sessions/cs_1"),
        ("GET", "/livez"),
        ("GET", "/openapi.json"),
        ("POST", "/no/such/route"),
    }
)
# Anything but the line breaks that end a header (those make another request, or none).
header_bytes = st.binary(max_size=64).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
bodies = st.one_of(
    st.binary(max_size=256),
    st.sampled_from([b"[", b"[1", b"0 0", b'"a" 1', b"6x", b"{}", b"null", b"[" * 5000, b'{"id": 3623.0}']),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    ).map(lambda v: repr(v).replace("'", '"').replace("None", "null").encode()),
)


def _status(server: Server, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    address = urlsplit(server.base)
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {address.netloc}".encode(), b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Content-Length: " + str(len(body)).encode())
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        first = connection.makefile("rb").readline()
    return int(first.split()[1])


async def test_no_header_value_or_body_gets_a_server_error(server: Server) -> None:
    admin = f"Bearer {server.token}".encode()

    @settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(
        route=st.sampled_from(ROUTES),
        authorization=st.one_of(st.just(admin), header_bytes, header_bytes.map(lambda b: b"Bearer " + b)),
        other=st.sampled_from([b"Idempotency-Key", b"Origin", b"Accept-Encoding", b"If-None-Match", b"Content-Type"]),
        value=header_bytes,
        body=bodies,
    )
    def check(route: tuple[str, str], authorization: bytes, other: bytes, value: bytes, body: bytes) -> None:
        method, path = route
        headers = [(b"Authorization", authorization), (other, value)]
        status = _status(server, method, path, headers, body)
        assert status < 500, (method, path, headers, body[:100])

    await asyncio.to_thread(check)
    assert "request_failed" not in server.log.read_text()
