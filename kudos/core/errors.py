"""Domain errors. functions/http.py maps them to HTTP responses, in one place."""

from __future__ import annotations

from typing import Any


class KudosError(Exception):
    """An error the caller can act on; ``status`` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequest(KudosError):
    status = 400


class PayloadTooLarge(KudosError):
    status = 413


class Unauthorized(KudosError):
    status = 401


class NotFound(KudosError):
    status = 404


class MethodNotAllowed(KudosError):
    status = 405
