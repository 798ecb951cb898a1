"""The process environment the handlers read, set the way Lambda would set it.

Handlers read their configuration only from the environment (``kudos.core.settings.get_settings``), as on
AWS. Local runs and tests therefore configure them by setting environment variables and clearing the
caches that hold what was read from them; both happen here, in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

from kudos.core.settings import ENVIRONMENT_VARIABLES, Settings
from kudos.local import LocalError
from kudos.local.dynamodb import (
    DUMMY_ACCESS_KEY,
    DUMMY_SECRET_KEY,
    create_local_tables,
    dynamodb_client,
    dynamodb_endpoint,
    is_local_endpoint,
)
from kudos.local.messaging import embedded_messaging

# Where `make demo` leaves its DynamoDB Local data, and where `make serve` and the CLI read it.
DEFAULT_DATA_DIR = Path(".kudos-data")
# Rule files kept in a data directory (by the demo): the default rules for that data.
DATA_RULES_SUBDIR = "segments"


def settings_environment(settings: Settings) -> dict[str, str | None]:
    """The variables that make ``Settings.from_env()`` return ``settings``; None means unset."""
    environment: dict[str, str | None] = {}
    for name, variable in ENVIRONMENT_VARIABLES.items():
        value = getattr(settings, name)
        if isinstance(value, bool):
            text: str | None = "true" if value else "false"
        elif isinstance(value, frozenset):
            text = ",".join(sorted(value)) or None
        elif value is None:
            text = None
        else:
            text = str(value)
        environment[variable] = text
    return environment


def clear_caches() -> None:
    """Forget everything read from the environment, so the next handler call reads it afresh.

    The one function serve, invoke and the test fixtures call after changing the environment;
    ``kudos.runtime.reset`` drops the settings and the services built from them (store, client).
    """
    # Imported here: kudos.runtime pulls in boto3, which `kudos --help` should not pay for.
    from kudos.runtime import reset

    reset()


@contextmanager
def handler_environment(
    settings: Settings, *, local: bool = True, template_environment: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Point the handlers at ``settings`` for the duration of the block, then restore the environment.

    ``local``: the endpoint is an emulator, so dummy credentials replace whatever the developer has
    (a missing or expired profile must not break a local run). ``template_environment``: plain
    variables from template.yaml (Powertools' service name, metrics namespace...); they never
    override the developer's environment nor the settings, which the template sets for AWS (there
    KUDOS_AUTH_REQUIRED is true, while ``kudos serve`` runs without keys unless given some).
    """
    values: dict[str, str | None] = {
        name: value
        for name, value in (template_environment or {}).items()
        if name not in os.environ and name not in ENVIRONMENT_VARIABLES.values()
    }
    values.update(settings_environment(settings))
    # Lambda sets both; boto3 reads AWS_DEFAULT_REGION.
    values["AWS_DEFAULT_REGION"] = settings.region
    if local:
        values.update(
            AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_KEY,
            AWS_SESSION_TOKEN=None,
            AWS_PROFILE=None,
        )
    previous = {name: os.environ.get(name) for name in values}
    _apply(values)
    clear_caches()
    try:
        yield
    finally:
        _apply(previous)
        clear_caches()


def _apply(values: Mapping[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextmanager
def local_runtime(
    *,
    endpoint_url: str | None = None,
    data_dir: Path | None = None,
    segments_dir: Path | None = None,
    create_tables: bool | None = None,
    settings: Settings | None = None,
    template_environment: Mapping[str, str] | None = None,
    messaging: bool = True,
) -> Iterator[Settings]:
    """Everything a handler needs to run here: a DynamoDB with the tables, the send queue and the
    push service, and the environment.

    DynamoDB is ``endpoint_url`` if given, else DynamoDB Local persisted in ``data_dir`` if given,
    else the embedded one. Without ``segments_dir``, a data directory's own rules (its ``segments/``,
    where the demo keeps the rules it ran with) are used when it has them. Tables are created where missing on local endpoints; on any other
    endpoint (AWS) only when ``create_tables`` is True. ``settings`` (default: from the environment)
    gives table names and limits; the endpoint and segments directory chosen here replace its own.
    The send queue and SNS are moto's (kudos.local.messaging), unless ``settings`` name a send queue
    or ``messaging`` is False. Yields the settings the handlers see.
    """
    if segments_dir is not None and not segments_dir.is_dir():
        raise LocalError(f"segments directory {segments_dir} does not exist")
    if segments_dir is None and data_dir is not None and (data_dir / DATA_RULES_SUBDIR).is_dir():
        # The rules that data was made with (the demo keeps its own beside its data).
        segments_dir = data_dir / DATA_RULES_SUBDIR
    base = settings or Settings.from_env()
    with dynamodb_endpoint(endpoint_url, data_dir) as url:
        updates: dict[str, object] = {"dynamodb_endpoint_url": url}
        if segments_dir is not None:
            updates["segments_dir"] = segments_dir.resolve()
        effective = base.model_copy(update=updates)
        local = is_local_endpoint(url)
        if create_tables if create_tables is not None else local:
            create_local_tables(url, effective)
        with (
            embedded_messaging(effective) if messaging else nullcontext(effective) as effective,
            handler_environment(effective, local=local, template_environment=template_environment),
        ):
            yield effective


@contextmanager
def in_process_runtime(
    settings: Settings | None = None, *, template_environment: Mapping[str, str] | None = None
) -> Iterator[Settings]:
    """moto's DynamoDB without its HTTP server: every boto3 call in this process is answered in memory.

    About three times cheaper per call than the embedded server (no socket, no second thread
    contending for the GIL), for work that replays many requests here, like `kudos demo`. Yields
    the settings the handlers see (no endpoint: boto3 itself is intercepted).
    """
    from moto import mock_aws

    from kudos.store.schema import create_tables

    effective = (settings or Settings.from_env()).model_copy(update={"dynamodb_endpoint_url": None})
    with mock_aws(), handler_environment(effective, local=True, template_environment=template_environment):
        create_tables(dynamodb_client(None, region=effective.region), effective)
        yield effective
