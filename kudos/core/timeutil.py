"""Instants and UTC days for kudos.

The definitions live in dsl.timeutil (rules parse and print instants, and dsl must not import
kudos); they are re-exported here so kudos modules keep one place to import time helpers from.
``parse_iso8601_instant`` is kudos's own: the backend routes (api.md "Braze-compatible shapes")
also take the common ISO 8601 variants Braze accepts, always with a zone.
"""

import re

from dsl.timeutil import (
    EPOCH_DATE,
    SECONDS_PER_DAY,
    InstantError,
    day_of,
    day_start,
    format_day,
    format_instant,
    parse_date,
    parse_instant,
)

# An ISO 8601 date-time, extended format: seconds optional, a fraction after `.` or `,` (or, as
# Braze documents `yyyy-MM-dd'T'HH:mm:ss:SSSZ`, after `:`), a zone of `Z`, `±hh:mm`, `±hhmm`,
# `±h:mm` or `±hh`.
_ISO8601 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<hm>[0-9]{2}:[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:[.,:](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>[Zz]|(?P<sign>[+-])(?P<zh>[0-9]{1,2})(?::?(?P<zm>[0-9]{2}))?)?"
)


def parse_iso8601_instant(text: object) -> float:
    """An instant in RFC 3339 or a common ISO 8601 variant (``+0100``, ``+1:00``, ``+01``, no
    seconds, a fraction after ``,``), always with a zone; anything else is an InstantError."""
    match = _ISO8601.fullmatch(text) if isinstance(text, str) and len(text) <= 40 else None
    if match is None:
        return parse_instant(text)  # its words for what is wrong (a date, not an instant, ...)
    if match["zone"] is None:
        raise InstantError("no time zone")
    zone = "Z"
    if match["sign"] is not None:
        zone = f"{match['sign']}{int(match['zh']):02d}:{match['zm'] or '00'}"
    fraction = f".{match['fraction']}" if match["fraction"] else ""
    rfc3339 = f"{match['date']}T{match['hm']}:{match['s'] or '00'}{fraction}{zone}"
    try:
        return parse_instant(rfc3339)
    except InstantError as error:
        raise InstantError(str(error).replace("RFC 3339", "ISO 8601")) from None


__all__ = [
    "EPOCH_DATE",
    "SECONDS_PER_DAY",
    "InstantError",
    "day_of",
    "day_start",
    "format_day",
    "format_instant",
    "parse_date",
    "parse_instant",
    "parse_iso8601_instant",
]
