"""Domain errors: each says what went wrong. functions/http.py alone maps them to HTTP statuses."""

from __future__ import annotations

from typing import Any


class KudosError(Exception):
    """An error the caller (or, for SegmentRulesError, the operator) can act on."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(KudosError):
    """The request cannot be used as it is: not JSON, a wrong shape, a value out of range."""


class PayloadTooLarge(KudosError):
    """The request body is over the size the API accepts."""


class Unauthorized(KudosError):
    """No key, or not a key of the kind the route needs."""


class NotFound(KudosError):
    """What the request names (a segment, a route) does not exist."""


class SegmentRulesError(KudosError):
    """The deployed rule files do not compile: an operator's problem, not the caller's."""
