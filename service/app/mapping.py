"""Maps contract bodies to domain objects and back at the edges; the shapes match field for field."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def to_domain(body: msgspec.Struct, kind: type[T], **keys: Any) -> T:
    """A contract body as a domain object, with key fields (`id=...`) taken from the path or file."""
    data = msgspec.to_builtins(body)
    data.update(keys)
    return msgspec.convert(data, kind)


def to_contract(item: object, kind: type[T]) -> T:
    return msgspec.convert(msgspec.to_builtins(item), kind)
