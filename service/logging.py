"""JSON logs through structlog (on stdout, or the stream a command asks for), with the standard library's
loggers routed the same way."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
from collections.abc import Callable
from typing import BinaryIO, TextIO

import msgspec
import structlog

# Log lines are encoded by msgspec straight to bytes: a canonical line per request or message is on the
# hot path, and the standard library's json is a tenth of a GET's time. Unknown objects become strings.
_encoder = msgspec.json.Encoder(enc_hook=str)


def _dumps(event: object, **_: object) -> bytes:
    return _encoder.encode(event)


class LineWriter:
    """Writes log lines to a binary stream. Info and debug lines written while the event loop runs are
    flushed once at the end of the loop's turn, so the lines of one turn (under load, those of many
    requests and messages) go out in one write rather than a write each; warnings and errors, and every
    line outside a running loop, are flushed at once, so that what explains a crash is never held back."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending = False
        atexit.register(self.flush)

    def msg(self, line: bytes) -> None:
        self._stream.write(line + b"\n")
        if self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._stream.flush()
            return
        self._pending = True
        loop.call_soon(self.flush)

    def now(self, line: bytes) -> None:
        self._stream.write(line + b"\n")
        self.flush()

    def flush(self) -> None:
        self._pending = False
        # An output that is gone (a closed pipe) cannot be told so; the service goes on without its lines.
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    debug = info = log = msg
    warning = warn = error = err = critical = fatal = exception = failure = now


def _line_writer(stream: BinaryIO) -> Callable[..., LineWriter]:
    writer = LineWriter(stream)
    return lambda *_: writer


def configure(level: int = logging.INFO, stream: TextIO = sys.stdout) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_line_writer(stream.buffer),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
