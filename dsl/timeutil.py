"""Instants and UTC days, as the segment language reads and writes them (and kudos with it).

They live in dsl because rules parse instant literals and explanations print instants; kudos
imports them from here (kudos.core.timeutil) so that there is one definition of each.

Instants travel through the system as float epoch seconds (cheap to compare in compiled rules and
to store as DynamoDB numbers); days as integer epoch days (days since 1970-01-01, UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

SECONDS_PER_DAY = 86_400
EPOCH_DATE = date(1970, 1, 1)


class InstantError(ValueError):
    """An instant or date that cannot be used; the message says why, without the field name."""


# RFC 3339's date-time (section 5.6), in ASCII digits; the zone is checked apart to say it is missing.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Every instant must print back as RFC 3339 in UTC, whatever its offset was.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def parse_instant(text: object) -> float:
    """RFC 3339 with a zone (``Z`` or ``±hh:mm``) to epoch seconds; anything else is an InstantError."""
    if not isinstance(text, str):
        raise InstantError("expected an RFC 3339 string")
    if not text:
        raise InstantError("empty string")
    if len(text) > 40:
        raise InstantError("too long for an RFC 3339 instant")
    if _DATE.fullmatch(text):
        raise InstantError("not an instant but a date (expected e.g. 2026-11-20T18:03:00Z)")
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise InstantError("not an RFC 3339 instant (expected e.g. 2026-11-20T18:03:00Z)")
    if match.group(1) is None:
        raise InstantError("no time zone")
    # Python reads at most 6 digits of a fraction; RFC 3339 allows any number.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(match.group(1))
        text = f"{head}.{rest[: min(digits, 6)]}{match.group(1)}"
    try:
        instant = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T")).timestamp()
    except ValueError:
        raise InstantError("not an RFC 3339 instant (expected e.g. 2026-11-20T18:03:00Z)") from None
    except OverflowError:
        instant = _LATEST + 1
    if not _EARLIEST <= instant <= _LATEST:
        raise InstantError("out of range: UTC years 0001 to 9999")
    return instant


def parse_date(text: object) -> int:
    """``YYYY-MM-DD`` (a UTC day) to an epoch day."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
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
