"""Errors of the use cases, each with a stable code; entry points turn them into problems or dead letters."""

from __future__ import annotations

from service.domain.catalog import Violation


class UseCaseError(Exception):
    code = "error"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class InvalidInput(UseCaseError):
    """The input breaks rules; every broken rule is listed."""

    code = "invalid_input"

    def __init__(self, violations: list[Violation], detail: str = "the request breaks rules") -> None:
        super().__init__(detail, violations[0].code if len(violations) == 1 else "invalid_input")
        self.violations = violations


class NotFound(UseCaseError):
    code = "not_found"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} does not exist", f"{kind}_not_found")
        self.kind = kind


class Conflict(UseCaseError):
    """The resource's state refuses the change (completed, expired, already exists)."""

    code = "conflict"


class Gone(UseCaseError):
    """The resource existed but is no longer usable (an expired upgrade link)."""

    code = "gone"
