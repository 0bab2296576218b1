"""run-hint.py PID URL DEMO: what `make run` prints once the service answers.

`upsell serve` (process PID) runs in the foreground; this waits beside it until URL/readyz answers 200,
then prints where the service listens, a first curl and the demo checkout's address in one write. It
ends without a word as soon as the service has exited (it did not start, or Ctrl-C came first).
Standard library only: it runs with the virtualenv's python before anything else is known to work.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.request

# The local service, never a proxy set in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ready(url: str) -> bool:
    try:
        with _OPENER.open(f"{url}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        # Refused while the port is not open yet, 503 (an HTTPError) while a dependency is not reachable.
        return False


def _hint(url: str, demo: str) -> str:
    authorization = '"Authorization: Bearer $(cat .upsell-admin-token)"'
    session = '{"id":"cs_try_1","mode":"subscription","currency":"usd","line_items":[{"price":"price_pro_monthly"}]}'
    return f"""
upsell listens on {url} (admin token in .upsell-admin-token; README.md's quickstart goes on from here)
try:  curl -s -H {authorization} -H 'Content-Type: application/json' \\
        -d '{session}' \\
        {url}/v1/checkout/sessions
the demo checkout (UPSELL_DEMO={demo}): {url}/demo/checkout

"""


def main(argv: list[str]) -> int:
    pid, url, demo = int(argv[1]), argv[2].rstrip("/"), argv[3]
    while _running(pid):
        if _ready(url):
            sys.stdout.write(_hint(url, demo))
            sys.stdout.flush()
            return 0
        time.sleep(0.1)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
