"""Request bodies held to their contract's shape: unknown fields named, whole numbers taken as integers.

A body is first read as plain JSON, then walked along its contract's type before msgspec converts it.
The walk names every field the contract does not have (a typo such as `discount` for `discounts` must
not drop a coupon silently), and turns a whole number written with a fraction (`3623.0`, which JSON
Schema counts as an integer) into an integer where the contract expects one. Consumed events are not
read this way: they stay tolerant of fields added later.

Each contract's walk is put together once, from its type, as a function per field and item: a request
pays for its own fields only, and a path is written out only for a field that is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec.inspect as mi

_DIGITS = 20
"""Digits past which a number is too large to be taken as an integer (and no integer field allows it)."""

Path = tuple["Path", str | int] | None
"""Where a value sits: its parent's path and its key (a field's name, or an item's index), `None` at the top."""
Walk = Callable[[Any, Path, list[str]], Any]
"""Walks a value at a path: returns it as it is to be converted, and adds the paths of unknown fields."""
_LISTS = (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)
_NUMBERS = (mi.IntType, mi.FloatType, mi.DecimalType)


@dataclass
class Shape:
    """A body after the walk: `value` to convert, and the path of each field the contract lacks."""

    value: Any
    unknown: list[str] = field(default_factory=list)


_WALKS: dict[type[Any], Walk] = {}
"""Each contract's walk, put together at its first request."""


def shaped(raw: Any, kind: type[Any]) -> Shape:
    """`raw` (decoded with decimals for numbers) walked along `kind`."""
    walk = _WALKS.get(kind)
    if walk is None:
        walk = _WALKS[kind] = _walk(mi.type_info(kind))
    shape = Shape(None)
    shape.value = walk(raw, None, shape.unknown)
    return shape


def _written(path: Path) -> str:
    keys: list[str] = []
    while path is not None:
        path, key = path
        keys.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "$" + "".join(reversed(keys))


def _plain(info: mi.Type) -> mi.Type:
    return info.type if isinstance(info, mi.Metadata) else info


def _walk(info: mi.Type) -> Walk:
    """The walk of a value of this type (contracts hold no recursive types)."""
    info = _plain(info)
    if isinstance(info, mi.StructType):
        return _struct(info)
    if isinstance(info, mi.UnionType):
        return _union(info)
    if isinstance(info, _LISTS):
        return _items(_walk(info.item_type))
    if isinstance(info, mi.DictType):
        return _values(_walk(info.value_type))
    if isinstance(info, mi.IntType):
        return _integer
    if isinstance(info, mi.DecimalType):
        return _kept
    return _other


def _struct(info: mi.StructType) -> Walk:
    fields = {f.encode_name: _walk(f.type) for f in info.fields}
    tag = info.tag_field

    def walk(value: Any, path: Path, unknown: list[str]) -> Any:
        if type(value) is not dict:
            return _other(value, path, unknown)
        walked = {}
        for name, item in value.items():
            known = fields.get(name)
            if known is not None:
                walked[name] = known(item, (path, name), unknown)
            elif name == tag:
                walked[name] = item
            else:
                unknown.append(_written((path, name)))
        return walked

    return walk


def _union(info: mi.UnionType) -> Walk:
    """The walk of the member a value is meant for: a struct picked by its tag (else the first struct), or
    the first member that takes the value's JSON kind."""
    members = [_plain(t) for t in info.types]
    structs = [m for m in members if isinstance(m, mi.StructType)]
    tag = structs[0].tag_field if structs else None
    tagged = {s.tag: _struct(s) for s in structs if s.tag_field is not None}
    first = _struct(structs[0]) if structs else None
    items = next((_walk(m) for m in members if isinstance(m, _LISTS)), None)
    number = next((_walk(m) for m in members if isinstance(m, _NUMBERS)), None)

    def walk(value: Any, path: Path, unknown: list[str]) -> Any:
        kind = type(value)
        named = value.get(tag) if kind is dict else None
        member = (
            # A tag is a string or an integer; anything else in its place (`{}`, say) names no member.
            (tagged.get(named, first) if isinstance(named, str | int) else first if kind is dict else None)
            or (items if kind is list else None)
            or (number if kind is Decimal else None)
            or _other
        )
        return member(value, path, unknown)

    return walk


def _items(item: Walk) -> Walk:
    def walk(value: Any, path: Path, unknown: list[str]) -> Any:
        if type(value) is not list:
            return _other(value, path, unknown)
        return [item(v, (path, i), unknown) for i, v in enumerate(value)]

    return walk


def _values(item: Walk) -> Walk:
    def walk(value: Any, path: Path, unknown: list[str]) -> Any:
        if type(value) is not dict:
            return _other(value, path, unknown)
        return {k: item(v, (path, k), unknown) for k, v in value.items()}

    return walk


def _integer(value: Any, path: Path, unknown: list[str]) -> Any:
    """A whole number as an integer; a fraction as a float, so that the refusal says it got one."""
    if type(value) is not Decimal:
        return value
    whole = value.is_finite() and value.adjusted() < _DIGITS and value == value.to_integral_value()
    return int(value) if whole else float(value)


def _kept(value: Any, path: Path, unknown: list[str]) -> Any:
    return value


def _other(value: Any, path: Path, unknown: list[str]) -> Any:
    """Where no number is expected, a number with a fraction is the float JSON writes it as."""
    return float(value) if type(value) is Decimal else value
