"""Request bodies held to their contract's shape: unknown fields named, whole numbers taken as integers.

A body is first read as plain JSON, then walked along its contract's type before msgspec converts it.
The walk names every field the contract does not have (a typo such as `discount` for `discounts` must
not drop a coupon silently), and turns a whole number written with a fraction (`3623.0`, which JSON
Schema counts as an integer) into an integer where the contract expects one. Consumed events are not
read this way: they stay tolerant of fields added later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec.inspect as mi

_DIGITS = 20
"""Digits past which a number is too large to be taken as an integer (and no integer field allows it)."""


@dataclass
class Shape:
    """A body after the walk: `value` to convert, and the path of each field the contract lacks."""

    value: Any
    unknown: list[str] = field(default_factory=list)


_INFO: dict[type[Any], mi.Type] = {}
"""Each contract's type, walked once."""


def _info(kind: type[Any]) -> mi.Type:
    info = _INFO.get(kind)
    if info is None:
        info = _INFO[kind] = mi.type_info(kind)
    return info


def shaped(raw: Any, kind: type[Any]) -> Shape:
    """`raw` (decoded with decimals for numbers) walked along `kind`."""
    shape = Shape(None)
    shape.value = _walk(raw, _info(kind), "$", shape.unknown)
    return shape


def _plain(info: mi.Type) -> mi.Type:
    return info.type if isinstance(info, mi.Metadata) else info


def _walk(value: Any, info: mi.Type, path: str, unknown: list[str]) -> Any:
    info = _plain(info)
    if isinstance(value, Decimal):
        return _number(value, info)
    if isinstance(info, mi.UnionType):
        return _walk(value, _member(value, info), path, unknown)
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        return _struct(value, info, path, unknown)
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType) and isinstance(value, list):
        return [_walk(item, info.item_type, f"{path}[{i}]", unknown) for i, item in enumerate(value)]
    if isinstance(info, mi.DictType) and isinstance(value, dict):
        return {k: _walk(v, info.value_type, f"{path}.{k}", unknown) for k, v in value.items()}
    return value


def _struct(value: dict[str, Any], info: mi.StructType, path: str, unknown: list[str]) -> dict[str, Any]:
    fields = {f.encode_name: f for f in info.fields}
    walked: dict[str, Any] = {}
    for name, item in value.items():
        known = fields.get(name)
        if known is not None:
            walked[name] = _walk(item, known.type, f"{path}.{name}", unknown)
        elif name == info.tag_field:
            walked[name] = item
        else:
            unknown.append(f"{path}.{name}")
    return walked


def _member(value: Any, info: mi.UnionType) -> mi.Type:
    """The member of a union that `value` is meant for: a struct picked by its tag, or the first that
    fits the JSON kind of the value."""
    members = [_plain(t) for t in info.types]
    structs = [t for t in members if isinstance(t, mi.StructType)]
    if isinstance(value, dict) and structs:
        tagged = [s for s in structs if s.tag_field is not None and value.get(s.tag_field) == s.tag]
        return (tagged or structs)[0]
    if isinstance(value, list):
        lists = [t for t in members if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType)]
        if lists:
            return lists[0]
    if isinstance(value, Decimal):
        numbers = [t for t in members if isinstance(t, mi.IntType | mi.FloatType | mi.DecimalType)]
        if numbers:
            return numbers[0]
    return mi.AnyType()


def _number(value: Decimal, info: mi.Type) -> Any:
    """A JSON number as the contract expects it: an integer where one is expected and it is whole; a
    float where an integer is expected and it is not (so the refusal says it got a fraction)."""
    if isinstance(info, mi.UnionType):
        info = _member(value, info)
    if isinstance(info, mi.DecimalType):
        return value
    whole = value.is_finite() and value.adjusted() < _DIGITS and value == value.to_integral_value()
    if isinstance(info, mi.IntType) and whole:
        return int(value)
    return float(value)
