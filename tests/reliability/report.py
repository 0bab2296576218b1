"""Turns the outcomes of a reliability run into the table of docs/reliability.md (and prints it).

`python -m tests.reliability.report RESULTS.jsonl docs/reliability.md`
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HEADER = """# Reliability

The latest run of `make reliability`: each scenario of the fault-injection suite against the real
RabbitMQ and PostgreSQL of the machine, with `upsell serve` as separate processes. A scenario fails when
anything is lost. Streams are of {events} `checkout.session.created` events, published at a steady rate so
that each fault lands in the middle of one; `make test` runs the same scenarios with 400.

- *evaluated*: sessions that came out as `checkout.session.upsell_evaluated` (or `completed`, for the
  replica scenario) on the `upsell` exchange, counted by a worker bound to it.
- *lost*: sessions that never came out. *duplicates*: extra copies of a session's event; *same id*:
  whether every copy kept the event id (so consumers drop them).
- *recovery*: seconds from the moment the fault is lifted (the process restarted, the broker or the
  database started again, the connections closed) until the service has consumed 5 more messages; for
  SIGTERM, the seconds the process took to exit.

Run on {when}, {machine}.

| scenario | events in | sessions | evaluated | events out | lost | duplicates | same id | recovery (s) | notes |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |
"""


def table(rows: list[dict[str, object]]) -> str:
    lines = []
    for r in rows:
        recovery = "" if r["recovery_s"] is None else f"{r['recovery_s']}"
        lines.append(
            f"| {r['scenario']} | {r['events_in']} | {r['sessions']} | {r['evaluated']} | {r['events_out']} "
            f"| {r['lost']} | {r['duplicates']} | {'yes' if r['duplicates_kept_id'] else 'NO'} | {recovery} "
            f"| {r['notes']} |"
        )
    return "\n".join(lines) + "\n"


def main(results: Path, target: Path) -> int:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    if not rows:
        print("no outcomes recorded", file=sys.stderr)
        return 1
    events = max(int(str(r["sessions"])) for r in rows)
    broker = subprocess.run(["rabbitmqctl", "version"], capture_output=True, text=True).stdout.strip() or "?"
    machine = f"{platform.machine()}, Python {platform.python_version()}, RabbitMQ {broker}"
    text = HEADER.format(events=events, when=datetime.now(UTC).strftime("%Y-%m-%d"), machine=machine) + table(rows)
    target.write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
