"""`upsell dead-letters list|replay|drop`: what an operator does with the events the service refused.

Exit codes: 0 done; 1 the broker cannot be reached; 2 bad arguments, or no dead-letter queue on the
broker; 3 an event id asked for is not in the queue (the others were done); 4 a replay stopped because
the broker routed an event to no queue (what was replayed before stays replayed, the rest stays queued).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC

import aio_pika
import msgspec
import structlog

from service.adapters.rabbitmq.dead_letters import DeadLetter, DeadLetterQueue, NotRouted, Outcome
from service.adapters.rabbitmq.topology import Topology
from service.settings import Settings

EXIT_NOT_FOUND = 3
EXIT_NOT_ROUTED = 4
DETAIL_WIDTH = 60

log = structlog.get_logger("upsell.dead_letters")


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _word(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dead-letters",
        help="list, replay or drop the events in the dead-letter queue",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a table of the dead letters, oldest first; takes none")
    listing.add_argument("--reason", type=_word, help="only those refused for this reason (e.g. unknown_price)")
    listing.add_argument("--limit", type=_limit, help="at most this many")
    listing.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")

    replay = actions.add_parser("replay", help="publish dead letters to `checkout` again, then remove them")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--reason", type=_word, help="every dead letter refused for this reason")
    which.add_argument("--id", dest="ids", action="append", type=_word, metavar="ID", help="this event (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--dry-run", action="store_true", help="print what would be replayed, change nothing")

    drop = actions.add_parser("drop", help="remove dead letters for good (logged)")
    drop.add_argument("--id", dest="ids", action="append", type=_word, metavar="ID", required=True, help="repeatable")


def _when(letter: DeadLetter) -> str:
    if letter.dead_lettered_at is None:
        return "-"
    return letter.dead_lettered_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(letter: DeadLetter) -> list[str]:
    detail = " ".join(letter.detail.split())
    if len(detail) > DETAIL_WIDTH:
        detail = detail[: DETAIL_WIDTH - 1] + "…"
    return [letter.event_id or "-", letter.type or "-", letter.session or "-", letter.reason, _when(letter), detail]


def table(letters: Sequence[DeadLetter]) -> str:
    """The letters as aligned columns under a header."""
    rows = [["EVENT ID", "TYPE", "SESSION", "REASON", "DEAD-LETTERED", "DETAIL"], *map(_row, letters)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    )


def _json(letter: DeadLetter) -> str:
    return msgspec.json.encode(letter).decode()


def _line(verb: str, letter: DeadLetter) -> str:
    return f"{verb} {letter.event_id or '-'} {letter.type or '-'} session={letter.session or '-'} ({letter.reason})"


class _Progress:
    """A line on stderr now and then, for replays long enough to wonder about."""

    def __init__(self, every: float = 1.0) -> None:
        self._every = every
        self._last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            print(f"replayed {done} (of at most {total})", file=sys.stderr, flush=True)


def _missing(asked: Sequence[str] | None, outcome: Outcome) -> int:
    gone = sorted(set(asked or ()) - {letter.event_id for letter in outcome.taken})
    if gone:
        print(f"upsell: not in the dead-letter queue: {', '.join(gone)}", file=sys.stderr)
        return EXIT_NOT_FOUND
    return 0


def _selection(args: argparse.Namespace) -> Callable[[DeadLetter], bool]:
    if args.ids:
        ids = set(args.ids)
        return lambda letter: letter.event_id in ids
    if args.reason is not None:
        reason: str = args.reason
        return lambda letter: letter.reason == reason
    return lambda _letter: True


async def run(settings: Settings, args: argparse.Namespace, topology: Topology | None = None) -> int:
    connection = await aio_pika.connect(settings.amqp_url, timeout=10)
    try:
        queue = DeadLetterQueue(connection, topology or Topology())
        if args.action == "list":
            letters = await queue.list(args.reason, args.limit)
            if args.json:
                for letter in letters:
                    print(_json(letter))
            else:
                print(table(letters))
                print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return 0
        if args.action == "replay":
            try:
                outcome = await queue.replay(_selection(args), dry_run=args.dry_run, progress=_Progress())
            except NotRouted as stopped:
                print(f"upsell: replay stopped, nothing consumes it: {stopped}", file=sys.stderr)
                return EXIT_NOT_ROUTED
            verb = "would replay" if args.dry_run else "replayed"
            for letter in outcome.taken:
                print(_line(verb, letter))
            print(f"{verb} {len(outcome.taken)} of {outcome.read} dead letter(s)", file=sys.stderr)
            return _missing(args.ids, outcome)
        outcome = await queue.drop(set(args.ids))
        for letter in outcome.taken:
            log.warning(
                "dead_letter_dropped",
                event_id=letter.event_id,
                type=letter.type,
                session=letter.session,
                reason=letter.reason,
            )
            print(_line("dropped", letter))
        return _missing(args.ids, outcome)
    finally:
        await connection.close()
