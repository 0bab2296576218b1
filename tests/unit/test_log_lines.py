"""Log lines: written in the order they come, flushed once per turn of the event loop, errors at once."""

from __future__ import annotations

import asyncio
import io

from service.logging import LineWriter


class Counted(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.flushed: list[bytes] = []

    def flush(self) -> None:
        self.flushes += 1
        self.flushed.append(self.getvalue())


async def test_the_lines_of_one_turn_go_out_in_one_flush_at_its_end() -> None:
    stream = Counted()
    writer = LineWriter(stream)
    for number in range(50):
        writer.info(b'{"n":%d}' % number)
    assert stream.flushes == 0
    await asyncio.sleep(0)
    assert stream.flushes == 1
    assert stream.flushed[0].splitlines() == [b'{"n":%d}' % number for number in range(50)]


async def test_a_warning_or_an_error_goes_out_at_once_with_what_came_before_it() -> None:
    stream = Counted()
    writer = LineWriter(stream)
    writer.info(b"before")
    writer.error(b"failed")
    assert stream.flushed == [b"before\nfailed\n"]
    writer.warning(b"odd")
    assert stream.flushes == 2


def test_outside_an_event_loop_each_line_goes_out_at_once() -> None:
    stream = Counted()
    writer = LineWriter(stream)
    writer.info(b"one")
    writer.info(b"two")
    assert stream.flushed == [b"one\n", b"one\ntwo\n"]
