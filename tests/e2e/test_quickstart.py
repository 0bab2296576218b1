"""README.md's quickstart, as written, against `make run` as a new user starts it.

`make run` runs on a free port with a database and a vhost of its own; its hint must come only once
the service answers (its own first curl, run the moment the hint is read, is answered). Then the `sh`
blocks of the README's "## Quickstart" section run in bash with `set -euo pipefail`, the port handed in
through `UPSELL` (the blocks default it to 8080), and what they print is checked. Ctrl-C (SIGINT to the
process group) stops it all: the service stops cleanly and nothing of `make run` is left.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, Any

import pytest

from tests.process import ROOT, free_port

pytestmark = pytest.mark.e2e

HINT_TIMEOUT = 60.0


def quickstart() -> str:
    """The shell code of the README's quickstart: every `sh` block of its section, in order."""
    readme = (ROOT / "README.md").read_text()
    _, found, rest = readme.partition("\n## Quickstart\n")
    assert found, "README.md has no '## Quickstart' section"
    section = rest.split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, "the quickstart has no ```sh block"
    return "\n".join(blocks)


@dataclass
class MakeRun:
    """`make run` in a process group of its own, its output read line by line as it comes."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, deadline: float) -> str | None:
        try:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError("make run said nothing more in time") from None
        if line is not None:
            self.output.append(line)
        return line

    def hint(self, timeout: float) -> list[str]:
        """The lines of the hint: from 'upsell listens on' to the demo checkout's address."""
        deadline = time.monotonic() + timeout
        hint: list[str] = []
        while (line := self.next_line(deadline)) is not None:
            if line.startswith("upsell listens on") or hint:
                hint.append(line.rstrip("\n"))
            if line.startswith("the demo checkout"):
                return hint
        raise AssertionError("make run ended before its hint")

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C: SIGINT to the whole group; returns make's exit status once all its output has ended."""
        os.killpg(self.process.pid, signal.SIGINT)
        returncode = self.process.wait(timeout)
        # The pipe ends only when everything started by `make run` has let go of it.
        deadline = time.monotonic() + timeout
        while self.next_line(deadline) is not None:
            pass
        return returncode

    def kill(self) -> None:
        """Whatever of the group is left, gone; its output read to the end and closed."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.reader.join(10)
        while not self.lines.empty():
            if (line := self.lines.get_nowait()) is not None:
                self.output.append(line)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextmanager
def make_run(env: dict[str, str]) -> Iterator[MakeRun]:
    # The virtualenv is the one these tests run in: taken as installed (-o), never reinstalled under them.
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = MakeRun(process)
    try:
        yield running
    finally:
        running.kill()
        # Shown by pytest only when the test fails: what make run and the service said.
        print("".join(running.output[-120:]))


def answers(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the quickstart printed, one a line."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def one(found: list[dict[str, Any]], **expected: object) -> dict[str, Any]:
    matching = [a for a in found if all(a.get(k) == v for k, v in expected.items())]
    assert len(matching) == 1, (expected, found)
    return matching[0]


def test_the_readme_quickstart_runs_as_written_against_make_run(database_url: str, amqp_url: str) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))},
        "UPSELL_DATABASE_URL": database_url,
        "UPSELL_AMQP_URL": amqp_url,
        "UPSELL_HTTP_HOST": "127.0.0.1",
        "UPSELL_HTTP_PORT": str(port),
    }
    # As on a fresh machine: the admin token is the one make run keeps in .upsell-admin-token.
    env.pop("UPSELL_ADMIN_TOKEN", None)
    base = f"http://127.0.0.1:{port}"
    with make_run(env) as running:
        hint = running.hint(HINT_TIMEOUT)
        # The hint's own first curl, at once: the port answers by the time the hint is out.
        start = next(i for i, line in enumerate(hint) if line.startswith("try:"))
        curl = "\n".join(hint[start : start + 3]).removeprefix("try:")
        tried = subprocess.run(["bash", "-c", curl], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert tried.returncode == 0, tried.stderr
        assert json.loads(tried.stdout)["id"] == "cs_try_1", tried.stdout
        assert hint[0].startswith(f"upsell listens on {base} ")

        script = "set -euo pipefail\n" + quickstart()
        ran = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env={**env, "UPSELL": base},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}"
        printed = answers(ran.stdout)

        registered = next(a for a in printed if a.get("version") == 1)
        assert registered["id"].startswith("cs_quickstart_")
        assert registered["upsell"]["eligible"] is True
        assert registered["upsell"]["savings"]["display"] == "16%"
        toggled = one(printed, id=registered["id"], version=2)
        assert toggled["upsell"]["selected"] is True
        assert [item["price"] for item in toggled["line_items"]] == ["price_pro_yearly", "price_setup"]
        assert toggled["amount_total"] == 105000
        assert "client_secret" not in toggled

        subscription = one(printed, id="sub_1", customer="cus_1")
        assert subscription["price"] == "price_pro_monthly"
        preview = one(printed, price="price_team_monthly", direction="upgrade")
        assert preview["quantity"] == 10
        order = one(printed, subscription="sub_1", to_price="price_team_monthly")
        assert order["from_price"] == "price_pro_monthly"
        assert order["upgrade_path"] == "path_pro_to_team"
        assert order["quantity"] == 10
        assert order["amount_due_now"] > 0
        # The preview priced an order placed now; a second or so later it may differ by a cent.
        assert abs(order["amount_due_now"] - preview["amount_due_now"]) <= 1

        assert "PostgreSQL and RabbitMQ are reachable" in ran.stdout
        assert "0 change(s), 13 unchanged (dry run)" in ran.stdout

        running.interrupt()
        stopped = "".join(running.output)
        assert '"event":"service_stopped"' in stopped, stopped[-3000:]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
