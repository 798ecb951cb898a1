"""Instants and UTC days for kudos.

The definitions live in dsl.timeutil (rules parse and print instants, and dsl must not import
kudos); they are re-exported here so kudos modules keep one place to import time helpers from.
"""

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
]
