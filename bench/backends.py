"""The DynamoDB a benchmark runs on: the one given, or a DynamoDB Local of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kudos.local.dynamodb import dynamodb_local


@contextmanager
def dynamodb_endpoint(url: str | None) -> Iterator[str]:
    """``url`` when given; else a DynamoDB Local started for the benchmark and stopped after it."""
    if url:
        yield url
    else:
        with dynamodb_local() as started:
            yield started
