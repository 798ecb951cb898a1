"""The Lambda authorizer, and the key loading it shares with the handlers' own check.

Keys come from SSM SecureString parameters (moto here), as on AWS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.authorizer import handler
from functions.http import ROUTES, key_kind_of_route
from kudos.core.credentials import KeyRing, check_key, key_fingerprint, parse_keys
from kudos.core.errors import Unauthorized
from kudos.runtime import reset
from tests.logcapture import powertools_logs

ROOT = Path(__file__).resolve().parents[2]
APP_OLD, APP_NEW = "app-key-old-0123456789", "app-key-new-0123456789"
SERVER = "srv-key-0123456789abcdef"


@pytest.fixture
def ssm_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Both key lists in SSM, the app keys mid-rotation (old and new valid at once)."""
    suffix = uuid.uuid4().hex[:8]
    names = {"app": f"/kudos-{suffix}/app-keys", "server": f"/kudos-{suffix}/server-keys"}
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("KUDOS_AUTH_REQUIRED", "true")
    monkeypatch.setenv("KUDOS_APP_KEYS_PARAMETER", names["app"])
    monkeypatch.setenv("KUDOS_SERVER_KEYS_PARAMETER", names["server"])
    monkeypatch.delenv("KUDOS_APP_KEYS", raising=False)
    monkeypatch.delenv("KUDOS_SERVER_KEYS", raising=False)
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name=names["app"], Value=f"{APP_OLD}, {APP_NEW}", Type="SecureString")
        ssm.put_parameter(Name=names["server"], Value=SERVER, Type="SecureString")
        reset()
        try:
            yield SimpleNamespace(ssm=ssm, names=names)
        finally:
            reset()


def authorize(route_key: str, headers: dict[str, str]) -> bool:
    event = {"version": "2.0", "type": "REQUEST", "routeKey": route_key, "headers": headers}
    context = SimpleNamespace(
        function_name="AuthorizerFunction",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:AuthorizerFunction",
        aws_request_id=str(uuid.uuid4()),
    )
    result = handler(event, context)
    assert set(result) <= {"isAuthorized", "context"}
    return bool(result["isAuthorized"])


@pytest.mark.usefixtures("ssm_keys")
@pytest.mark.parametrize("route", ["POST /v1/sessions", "POST /v1/push/tokens", "ANY /v1/push/events"])
def test_sdk_routes_take_app_keys_only(route: str) -> None:
    assert authorize(route, {"x-api-key": APP_NEW})
    assert authorize(route, {"authorization": f"Bearer {APP_NEW}"})
    assert not authorize(route, {"x-api-key": SERVER})
    assert not authorize(route, {"x-api-key": "app-key-wrong-0123456789"})
    assert not authorize(route, {})


@pytest.mark.usefixtures("ssm_keys")
@pytest.mark.parametrize(
    "route",
    ["POST /v1/users/track", "GET /v1/segments/{name}/members", "GET /v1/openapi.json", "ANY /v1/segments"],
)
def test_other_routes_take_server_keys_only(route: str) -> None:
    assert authorize(route, {"x-api-key": SERVER})
    assert authorize(route, {"Authorization": f"bearer {SERVER}"})
    assert not authorize(route, {"x-api-key": APP_NEW})
    assert not authorize(route, {"x-api-key": ""})
    assert not authorize(route, {"authorization": SERVER})  # no scheme


@pytest.mark.usefixtures("ssm_keys")
def test_both_keys_of_a_rotation_are_valid_at_once() -> None:
    assert authorize("POST /v1/sessions", {"x-api-key": APP_OLD})
    assert authorize("POST /v1/sessions", {"x-api-key": APP_NEW})


@pytest.mark.usefixtures("ssm_keys")
def test_an_unknown_route_is_refused() -> None:
    assert not authorize("GET /v1/nothing", {"x-api-key": SERVER})
    assert not authorize("", {"x-api-key": SERVER})


def test_keys_are_read_once_and_kept_for_a_short_while(
    ssm_keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert authorize("POST /v1/sessions", {"x-api-key": APP_OLD})
    # The rotation ends: the old key goes. A warm container keeps what it read until max age...
    ssm_keys.ssm.put_parameter(Name=ssm_keys.names["app"], Value=APP_NEW, Type="SecureString", Overwrite=True)
    assert authorize("POST /v1/sessions", {"x-api-key": APP_OLD})
    # ...and reads SSM again after it (here: a new process).
    reset()
    assert not authorize("POST /v1/sessions", {"x-api-key": APP_OLD})
    assert authorize("POST /v1/sessions", {"x-api-key": APP_NEW})


def test_keys_that_cannot_be_read_refuse_everything(ssm_keys: Any) -> None:
    ssm_keys.ssm.delete_parameter(Name=ssm_keys.names["server"])
    assert not authorize("GET /v1/segments", {"x-api-key": SERVER})


@pytest.mark.usefixtures("ssm_keys")
def test_a_refused_key_is_logged_by_its_hash_only() -> None:
    wrong = "app-key-leaked-0123456789"
    authorize("POST /v1/sessions", {"x-api-key": APP_NEW})  # the Logger exists from here on
    with powertools_logs() as logs:
        assert not authorize("POST /v1/sessions", {"x-api-key": wrong})
    text = logs.getvalue()
    assert wrong not in text
    assert key_fingerprint(wrong) in text


def test_every_route_has_a_key_kind() -> None:
    for path in ROUTES:
        for method in ("ANY", *ROUTES[path]):
            assert key_kind_of_route(f"{method} {path}") in ("app", "server")


def test_the_rules() -> None:
    ring = KeyRing("app", parse_keys(" a-1 ,, a-2 "))
    assert ring.keys == {"a-1", "a-2"}
    check_key(ring, "a-2")
    with pytest.raises(Unauthorized, match="an app key is required"):
        check_key(ring, None)
    with pytest.raises(Unauthorized, match="not a valid app key"):
        check_key(ring, "a-3")
    # No keys configured and none required (a local run): everything passes.
    check_key(KeyRing("server", frozenset(), enforced=False), None)
    # Required but none configured (a broken stack): nothing passes.
    with pytest.raises(Unauthorized):
        check_key(KeyRing("server", frozenset(), enforced=True), "")
    assert key_fingerprint("a-1") != key_fingerprint("a-2")
    assert "a-1" not in key_fingerprint("a-1")


def test_events_send_their_key_in_x_api_key() -> None:
    # API Gateway's identity source: a request without x-api-key never reaches the authorizer.
    for path in (ROOT / "events").glob("*.json"):
        event = json.loads(path.read_text())
        if "routeKey" in event:
            assert event["headers"].get("x-api-key"), path.name
