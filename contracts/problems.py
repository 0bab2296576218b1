"""Problem documents (RFC 9457) returned for every HTTP error."""

from __future__ import annotations

from msgspec import Struct


class FieldError(Struct):
    """One failing field: where (`$.line_items[0].price`), a stable code, and a sentence."""

    field: str | None
    code: str
    message: str


class Problem(Struct, omit_defaults=True):
    """`application/problem+json`: a stable `code`, and for validation every failing field."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[FieldError] | None = None
