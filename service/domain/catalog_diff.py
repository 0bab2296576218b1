"""What differs between two versions of one catalog item, field by field, for a plan of a catalog file."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class FieldChange(NamedTuple):
    path: str
    """The field's name; a field of a nested item is a dotted path (`recurring.interval`)."""
    old: object
    new: object


def field_changes(before: DataclassInstance | None, after: DataclassInstance) -> tuple[FieldChange, ...]:
    """The fields that differ, in the order the item declares them; none for a new item (`before` None),
    which a plan shows as created.

    A nested item present in both versions (a price's `recurring`) is compared field by field; one that
    appears or goes, and tuples such as tiers, are shown whole.
    """
    if before is None:
        return ()
    if type(before) is not type(after):
        raise TypeError(f"cannot compare a {type(before).__name__} with a {type(after).__name__}")
    return _changes(before, after, "")


def _changes(before: DataclassInstance, after: DataclassInstance, prefix: str) -> tuple[FieldChange, ...]:
    found: list[FieldChange] = []
    for field in dataclasses.fields(before):
        old, new = getattr(before, field.name), getattr(after, field.name)
        if old == new:
            continue
        path = prefix + field.name
        if _is_item(old) and type(old) is type(new):
            found.extend(_changes(old, new, path + "."))
        else:
            found.append(FieldChange(path, old, new))
    return tuple(found)


def _is_item(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)
