"""Settings, read once from the environment into a typed model."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from kudos.core.credentials import parse_keys

# Rule files ship inside the function code; `kudos serve --segments DIR` overrides this.
DEFAULT_SEGMENTS_DIR = Path(__file__).resolve().parents[2] / "segments"


class SettingsError(RuntimeError):
    pass


# Settings field -> the environment variable it is read from (template.yaml sets these on AWS).
ENVIRONMENT_VARIABLES: dict[str, str] = {
    "users_table": "USERS_TABLE",
    "activity_table": "ACTIVITY_TABLE",
    "region": "AWS_REGION",
    "dynamodb_endpoint_url": "DYNAMODB_ENDPOINT_URL",
    "event_bus_name": "EVENT_BUS_NAME",
    "events_endpoint_url": "EVENTS_ENDPOINT_URL",
    "sweep_parts": "SWEEP_PARTS",
    "sweep_queue_url": "SWEEP_QUEUE_URL",
    "send_queue_url": "SEND_QUEUE_URL",
    "sqs_endpoint_url": "SQS_ENDPOINT_URL",
    "sns_endpoint_url": "SNS_ENDPOINT_URL",
    "apns_application_arn": "APNS_APPLICATION_ARN",
    "apns_sandbox_application_arn": "APNS_SANDBOX_APPLICATION_ARN",
    "fcm_application_arn": "FCM_APPLICATION_ARN",
    "session_max_age_days": "SESSION_MAX_AGE_DAYS",
    "session_max_future_days": "SESSION_MAX_FUTURE_DAYS",
    "session_retention_days": "SESSION_RETENTION_DAYS",
    "day_shards": "DAY_SHARDS",
    "segments_dir": "SEGMENTS_DIR",
    "app_keys": "KUDOS_APP_KEYS",
    "server_keys": "KUDOS_SERVER_KEYS",
    "auth_required": "KUDOS_AUTH_REQUIRED",
    "app_keys_parameter": "KUDOS_APP_KEYS_PARAMETER",
    "server_keys_parameter": "KUDOS_SERVER_KEYS_PARAMETER",
    "keys_max_age_seconds": "KUDOS_KEYS_MAX_AGE_SECONDS",
}


class Settings(BaseModel, frozen=True):
    users_table: str = "kudos-users"
    activity_table: str = "kudos-activity"
    region: str = "us-east-1"
    dynamodb_endpoint_url: str | None = None
    # Where membership changes are announced; without a bus they wait in the outbox.
    event_bus_name: str | None = None
    events_endpoint_url: str | None = None
    # A full sweep is split into this many parallel Scan parts, each an invocation taken from the
    # sweep queue (1: the scheduled invocation sweeps everyone itself).
    sweep_parts: int = Field(default=1, ge=1, le=1000)
    sweep_queue_url: str | None = None
    # Campaign sends: the queue SendFunction drains, and the SNS platform applications pushes go
    # through (ios: APNs, or APNs sandbox when only that one is set; android and web: FCM).
    send_queue_url: str | None = None
    apns_application_arn: str | None = None
    apns_sandbox_application_arn: str | None = None
    fcm_application_arn: str | None = None
    # Emulators (kudos serve, tests); unset on AWS.
    sqs_endpoint_url: str | None = None
    sns_endpoint_url: str | None = None
    # api.md: a session may start at most 30 days before and 1 day after the server receive time.
    session_max_age_days: int = Field(default=30, ge=1, le=365)
    session_max_future_days: int = Field(default=1, ge=0, le=30)
    # How long a session id is remembered; must stay well past the acceptance window (api.md dedup).
    session_retention_days: int = Field(default=120, ge=60, le=3650)
    # Partition keys per day for activity items; raise it for apps with more than ~1k sessions/s.
    # Only ever raise it: readers query shards 0..day_shards-1.
    day_shards: int = Field(default=4, ge=1, le=256)
    segments_dir: Path = DEFAULT_SEGMENTS_DIR
    # Comma-separated keys. Empty and auth_required false: no auth (local). auth_required true with
    # no keys: every request is refused (fail closed on a misconfigured stack).
    app_keys: frozenset[str] = frozenset()
    server_keys: frozenset[str] = frozenset()
    auth_required: bool = False
    # On AWS the keys are not in the environment: these name SSM SecureString parameters holding
    # the same comma-separated lists (kudos.store.secrets). A named parameter replaces the list above.
    app_keys_parameter: str | None = None
    server_keys_parameter: str | None = None
    # How long a process keeps the keys it read from SSM: a rotation reaches every warm container
    # within this time, and SSM sees one read per container and kind per period.
    keys_max_age_seconds: int = Field(default=60, ge=0, le=3600)

    @property
    def keys_configured(self) -> bool:
        return bool(
            self.app_keys or self.server_keys or self.app_keys_parameter or self.server_keys_parameter
        )

    @field_validator("app_keys", "server_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_keys(value)
        return value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {field: env[var] for field, var in ENVIRONMENT_VARIABLES.items() if env.get(var)}
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(f"invalid settings from the environment: {error}") from error


@cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import time)."""
    return Settings.from_env()
