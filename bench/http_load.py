"""A closed-loop HTTP load generator in its own process: C connections for D seconds against one URL.

`python bench/http_load.py METHOD URL SECONDS CONCURRENCY [TOKEN] [BODY] [SPREAD]` prints JSON: requests,
errors, requests a second, p50 and p99 in ms. A POST body of `toggle` alternates `{"selected": true|false}`.
With SPREAD, `{i}` in the URL takes the values 0 to SPREAD - 1 in turn.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main(method: str, url: str, seconds: float, concurrency: int, token: str, body: str, spread: int) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker(index: int) -> None:
            nonlocal errors, sent
            flip = index % 2 == 0
            while time.perf_counter() < deadline:
                payload = {"selected": flip} if body == "toggle" else None
                flip = not flip
                target = url.format(i=sent % spread) if spread else url
                sent += 1
                started = time.perf_counter()
                async with http.request(method, target, json=payload, headers=headers) as response:
                    await response.read()
                    if response.status >= 400:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "errors": errors,
                "rps": round(len(latencies) / elapsed, 1),
                "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
                "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            }
        )
    )


if __name__ == "__main__":
    args = [*sys.argv[1:], "", "", ""]
    asyncio.run(main(args[0], args[1], float(args[2]), int(args[3]), args[4], args[5], int(args[6] or 0)))
