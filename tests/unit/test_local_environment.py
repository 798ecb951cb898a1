"""The environment kudos serve, kudos invoke and the fixtures give the handlers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kudos import runtime
from kudos.core.settings import ENVIRONMENT_VARIABLES, Settings, get_settings
from kudos.local.environment import handler_environment, settings_environment

UNUSUAL = Settings(
    users_table="u-table",
    activity_table="a-table",
    region="eu-west-3",
    dynamodb_endpoint_url="http://127.0.0.1:9999",
    session_max_age_days=7,
    session_max_future_days=2,
    session_retention_days=90,
    day_shards=16,
    segments_dir=Path("/tmp/rules"),
    app_keys=frozenset({"app-key-1", "app-key-2"}),
    server_keys=frozenset({"server-key"}),
    auth_required=True,
)


def test_every_setting_has_its_variable() -> None:
    assert set(ENVIRONMENT_VARIABLES) == set(Settings.model_fields)


@pytest.mark.parametrize("settings", [UNUSUAL, Settings()], ids=["unusual", "defaults"])
def test_the_variables_give_back_the_settings(settings: Settings) -> None:
    environment = {name: value for name, value in settings_environment(settings).items() if value is not None}

    assert Settings.from_env(environment) == settings


def test_handlers_see_the_settings_until_the_block_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERS_TABLE", "before")
    monkeypatch.setenv("AWS_PROFILE", "developer")
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    get_settings.cache_clear()
    assert get_settings().users_table == "before"

    with handler_environment(UNUSUAL):
        assert get_settings() == UNUSUAL
        assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-3"
        # Local endpoints get dummy credentials, whatever profile the developer has.
        assert os.environ["AWS_ACCESS_KEY_ID"] == "test"
        assert "AWS_PROFILE" not in os.environ

    assert get_settings().users_table == "before"
    assert os.environ["AWS_PROFILE"] == "developer"
    assert "DYNAMODB_ENDPOINT_URL" not in os.environ


def test_the_services_are_rebuilt_for_new_settings() -> None:
    first = Settings(users_table="first", dynamodb_endpoint_url="http://127.0.0.1:1")
    second = Settings(users_table="second", dynamodb_endpoint_url="http://127.0.0.1:2")

    with handler_environment(first):
        assert runtime.services().settings.users_table == "first"
        with handler_environment(second):
            assert runtime.services().settings.users_table == "second"
        assert runtime.services().settings.users_table == "first"


def test_remote_endpoints_keep_the_developer_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "developer")
    remote = Settings(dynamodb_endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")

    with handler_environment(remote, local=False):
        assert os.environ["AWS_PROFILE"] == "developer"


def test_template_variables_never_override_settings_or_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    template = {
        "POWERTOOLS_SERVICE_NAME": "kudos",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # On AWS the stack requires keys; locally the settings decide.
        "KUDOS_AUTH_REQUIRED": "true",
    }

    with handler_environment(Settings(), template_environment=template):
        assert os.environ["POWERTOOLS_SERVICE_NAME"] == "kudos"
        assert os.environ["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
        assert get_settings().auth_required is False

    assert "POWERTOOLS_SERVICE_NAME" not in os.environ
