"""`upsell serve` as users run it: a separate process on a free port, with its log in a file."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
UPSELL = str(Path(sys.executable).parent / "upsell")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(database_url: str, amqp_url: str, admin_token: str, port: int | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "UPSELL_DATABASE_URL": database_url,
        "UPSELL_AMQP_URL": amqp_url,
        "UPSELL_HTTP_PORT": str(port or free_port()),
        "UPSELL_ADMIN_TOKEN": admin_token,
        "UPSELL_LINK_SECRET": "process-link-secret-7c1e",
    }


def apply_example_catalog(env: dict[str, str]) -> None:
    subprocess.run(
        [UPSELL, "catalog", "apply", str(ROOT / "deploy/catalog.example.yaml")],
        env=env,
        check=True,
        capture_output=True,
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path
    token: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM, then the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start(env: dict[str, str], log: Path) -> Server:
    """Starts `upsell serve`; the log is appended to, so a restarted process writes after the first."""
    with log.open("ab") as out:
        process = subprocess.Popen([UPSELL, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{env['UPSELL_HTTP_PORT']}", log, env["UPSELL_ADMIN_TOKEN"])


async def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"upsell serve exited: {server.log.read_text()[-3000:]}")
            try:
                async with http.get(f"{server.base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError("upsell serve did not become ready")
