"""Instants and UTC days.

Instants travel through the system as float epoch seconds (cheap to compare in compiled rules and
to store as DynamoDB numbers); days as integer epoch days (days since 1970-01-01, UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

SECONDS_PER_DAY = 86_400
EPOCH_DATE = date(1970, 1, 1)


class InstantError(ValueError):
    """An instant or date that cannot be used; the message says why, without the field name."""


def parse_instant(text: object) -> float:
    """RFC 3339 with a zone (``Z`` or ``±hh:mm``) to epoch seconds; anything else is an InstantError."""
    if not isinstance(text, str):
        raise InstantError("expected an RFC 3339 string")
    if not text:
        raise InstantError("empty string")
    if len(text) > 40:
        raise InstantError("too long for an RFC 3339 instant")
    if "T" not in text and "t" not in text and " " not in text:
        raise InstantError("not an instant (expected e.g. 2026-11-20T18:03:00Z)")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InstantError("not an RFC 3339 instant (expected e.g. 2026-11-20T18:03:00Z)") from None
    if parsed.tzinfo is None:
        raise InstantError("no time zone")
    return parsed.timestamp()


def parse_date(text: object) -> int:
    """``YYYY-MM-DD`` (a UTC day) to an epoch day."""
    if not isinstance(text, str) or len(text) != 10:
        raise InstantError("expected a date YYYY-MM-DD")
    try:
        return (date.fromisoformat(text) - EPOCH_DATE).days
    except ValueError:
        raise InstantError("expected a date YYYY-MM-DD") from None


def day_of(instant: float) -> int:
    return int(instant // SECONDS_PER_DAY)


def day_start(day: int) -> float:
    return float(day * SECONDS_PER_DAY)


def format_instant(instant: float) -> str:
    """Epoch seconds to RFC 3339 UTC, with milliseconds only when there are any."""
    moment = datetime.fromtimestamp(instant, UTC)
    if moment.microsecond:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def format_day(day: int) -> str:
    return (EPOCH_DATE + timedelta(days=day)).isoformat()
