"""Where the API keys are read from: SSM Parameter Store on AWS, the environment locally.

One loading path for the Lambda authorizer and the handlers' own check. A SecureString parameter
is read with Powertools' Parameters utility, which keeps the value in the process for
``settings.keys_max_age_seconds``: one read per warm container, kind and period, and a rotation
("old,new", then "new") reaches every container within that time.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from kudos.core.credentials import KeyKind, KeyRing, parse_keys
from kudos.core.settings import Settings


def load_key_ring(settings: Settings, kind: KeyKind) -> KeyRing:
    """The keys of ``kind`` in force now (from SSM when a parameter is named, else the settings)."""
    name = settings.app_keys_parameter if kind == "app" else settings.server_keys_parameter
    if name:
        value = parameters.get_parameter(name, decrypt=True, max_age=settings.keys_max_age_seconds)
        keys = parse_keys(value if isinstance(value, str) else "")
    else:
        keys = settings.app_keys if kind == "app" else settings.server_keys
    return KeyRing(kind=kind, keys=keys, enforced=settings.auth_required or settings.keys_configured)


def forget_keys() -> None:
    """Drop the keys kept in this process (tests, `kudos serve` after changing the environment)."""
    parameters.clear_caches()
