"""Small helpers so that messages read as English: ``1 day`` / ``2 days``, ``an app key`` / ``a server key``."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "day")`` is ``1 day``; ``count(3, "day")`` is ``3 days``."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def article(word: str) -> str:
    """``a`` or ``an`` before ``word``, by its first letter (good enough for our own words)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def with_article(word: str) -> str:
    return f"{article(word)} {word}"
