"""Problem documents (RFC 9457) and the decoding of request bodies with every failing field listed."""

from __future__ import annotations

import re
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from contracts.catalog import Id
from contracts.problems import FieldError, Problem
from service.domain.catalog import Violation
from service.entrypoints.http.bodies import shaped

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
# Fractions as decimals: a percent keeps every digit it was written with, and `3623.0` can be an integer.
_raw = msgspec.json.Decoder(float_hook=Decimal)
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


class ProblemError(Exception):
    """Raised by handlers; the middleware answers it as a problem document."""

    def __init__(
        self, status: int, code: str, detail: str | None = None, errors: list[FieldError] | None = None
    ) -> None:
        super().__init__(detail or code)
        self.problem = Problem(
            type="about:blank",
            title=HTTPStatus(status).phrase,
            status=status,
            code=code,
            detail=detail,
            errors=errors,
        )
        self.headers: dict[str, str] = {}


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_encoder.encode(problem),
        status=problem.status,
        content_type="application/problem+json",
        headers=headers,
    )


def violation_errors(violations: list[Violation]) -> list[FieldError]:
    return [FieldError(field=v.field, code=v.code, message=v.message) for v in violations]


def _field_error(error: msgspec.ValidationError, prefix: str) -> FieldError:
    match = _AT.match(str(error))
    assert match is not None
    return FieldError(field=prefix + (match["path"] or ""), code="invalid_field", message=match["message"])


def every_field_error(raw: Any, kind: type[Any]) -> list[FieldError]:
    """Checks each top-level field on its own, so that a 422 lists every failing one, not the first."""
    if not isinstance(raw, dict):
        return [FieldError(field="$", code="invalid_body", message="the body must be a JSON object")]
    errors = []
    for field in msgspec.structs.fields(kind):
        if field.encode_name not in raw:
            if field.required:
                errors.append(FieldError(f"$.{field.encode_name}", "missing_field", "this field is required"))
            continue
        try:
            msgspec.convert(raw[field.encode_name], field.type)
        except msgspec.ValidationError as error:
            errors.append(_field_error(error, f"$.{field.encode_name}"))
    return errors


def decode_body(body: bytes, kind: type[T]) -> T:
    """Decodes a JSON body: 400 when it is not JSON, 422 listing every unknown and every failing field
    when it does not match `kind`."""
    try:
        raw = _raw.decode(body)
    except msgspec.DecodeError as malformed:
        raise ProblemError(400, "malformed_json", f"the body is not valid JSON: {malformed}") from None
    except RecursionError:
        raise ProblemError(400, "malformed_json", "the body is nested too deeply") from None
    shape = shaped(raw, kind)
    errors = [FieldError(path, "unknown_field", "this field is not part of the request") for path in shape.unknown]
    try:
        decoded = msgspec.convert(shape.value, kind)
    except msgspec.ValidationError as invalid:
        errors += every_field_error(shape.value, kind) or [_field_error(invalid, "$")]
    if errors:
        raise ProblemError(422, "invalid_body", "the body does not match the schema", errors)
    return decoded


def path_key(request: web.Request, name: str = "id") -> str:
    """A key from the path, held to the same pattern as ids in bodies (422 otherwise), so that nothing is
    stored under a key that no body could refer to."""
    key = request.match_info[name]
    try:
        return msgspec.convert(key, Id)
    except msgspec.ValidationError as invalid:
        raise ProblemError(
            422,
            "invalid_path",
            f"the {name} in the path is not a valid id",
            [FieldError(name, "invalid_id", str(invalid))],
        ) from None
