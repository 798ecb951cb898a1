"""`kudos serve` runs campaign sends end to end (campaigns.md "Locally"): an entry queues a send, the
send queue is drained by SendFunction as its event source mapping would (within 2 seconds), and the
push lands in the embedded SNS; the Lambda Invoke API on SweepFunction returns once the sends the
sweep queued are done. Real parts throughout: the real template and handlers, DynamoDB (moto and
DynamoDB Local), moto's SQS and SNS on their own server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kudos.core.identity import UserKey
from kudos.core.settings import Settings
from kudos.local.messaging import Push, published_pushes
from kudos.local.serve import serve_in_thread
from kudos.store.dynamo import Store
from tests.functional.test_lambda_invoke_api import invoke, lambda_client

ROOT = Path(__file__).resolve().parents[2]
TAKEN_WITHIN_S = 2.0

SEGMENT = 'segment vips "VIPs" { attr.vip = true }\n'
ON_ENTRY = """
campaign thank_vips "Thanks" {
    audience vips
    send on entry
    push {
        title "Thank you, {{ first_name | default: 'friend' }}!"
        body "500 coins are waiting"
    }
}
"""


def send_once(at: float) -> str:
    instant = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""
campaign hello_vips "Hello" {{
    audience vips
    send once at {instant}
    push {{
        title "Hello"
        body "from the sweep"
    }}
}}
"""


@pytest.fixture
def served(dynamodb: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Settings]]:
    """The real template, served on the test's tables and on the rules the test writes first."""
    (tmp_path / "rules.seg").write_text(request.param)
    with serve_in_thread(settings=dynamodb.settings, segments_dir=tmp_path) as url:
        # What the handlers read: the embedded queue and platform applications made for this run.
        yield url, Settings.from_env()


def register_and_enter(http: Any, url: str, user: str, device: str, platform: str = "ios") -> None:
    token = {
        "user_id": user,
        "device_id": device,
        "platform": platform,
        "token": f"tok-{device}",
        "enabled": True,
    }
    reply = http(
        "POST", f"{url}/v1/push/tokens", json.dumps(token).encode(), {"content-type": "application/json"}
    )
    assert reply.status == 201, reply.body
    track = {"attributes": [{"external_id": user, "first_name": "Ada", "vip": True}]}
    reply = http(
        "POST", f"{url}/v1/users/track", json.dumps(track).encode(), {"content-type": "application/json"}
    )
    assert reply.status == 201, reply.body


def pushes_to(settings: Settings, campaign: str) -> list[Push]:
    return [push for push in published_pushes(settings) if push.ids()[0] == campaign]


def sends_of(settings: Settings, user: str) -> dict[str, Any]:
    records = Store(settings).users.load_user(UserKey.of_user(user)).sends.values()
    return {send.campaign: send for send in records}


@pytest.mark.parametrize("served", [SEGMENT + ON_ENTRY], indirect=True)
def test_an_entry_is_pushed_to_the_embedded_sns_within_2_seconds(
    served: tuple[str, Settings], http: Any
) -> None:
    url, settings = served

    register_and_enter(http, url, "u-1", "d-1")
    entered = time.monotonic()
    while not (pushes := pushes_to(settings, "thank_vips")):
        assert time.monotonic() - entered < TAKEN_WITHIN_S, "no push within 2 s of the entry"
        time.sleep(0.02)

    (push,) = pushes
    send = sends_of(settings, "u-1")["thank_vips"]
    assert push.ids() == ("thank_vips", send.send_id)
    assert push.payload()["aps"]["alert"] == {"title": "Thank you, Ada!", "body": "500 coins are waiting"}
    assert push.platform == "APNS"
    # The sender recorded it, and the endpoint on the token.
    deadline = time.monotonic() + TAKEN_WITHIN_S
    while sends_of(settings, "u-1")["thank_vips"].reason is not None:  # "unconfirmed" until recorded
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert sends_of(settings, "u-1")["thank_vips"].status == "sent"
    (token,) = Store(settings).users.load_user(UserKey.of_user("u-1")).tokens.values()
    assert token.endpoint == push.endpoint_arn


@pytest.mark.parametrize("served", [SEGMENT + send_once(time.time() + 86_400)], indirect=True)
def test_the_invoke_api_on_the_sweep_returns_once_its_sends_are_done(
    served: tuple[str, Settings], http: Any
) -> None:
    url, settings = served
    register_and_enter(http, url, "u-2", "d-2", platform="android")
    client = lambda_client(url)
    event = json.loads((ROOT / "events" / "sweep_steady.json").read_text())
    now = time.time()

    # The first sweep finds the campaign deployed; its instant, tomorrow, has not come.
    event["time"] = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _, first = invoke(client, "SweepFunction", event)
    assert first["triggers"] == 0
    assert pushes_to(settings, "hello_vips") == []

    # A sweep after the instant (its `time` is its clock) fires it for every member, and queues it.
    event["time"] = datetime.fromtimestamp(now + 86_400 + 300, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reply, result = invoke(client, "SweepFunction", event)

    assert "FunctionError" not in reply
    assert result["triggers"] == 1
    # Already pushed, and recorded, when the call returns: no waiting here.
    (push,) = pushes_to(settings, "hello_vips")
    assert push.platform == "GCM"
    send = sends_of(settings, "u-2")["hello_vips"]
    assert (send.status, send.reason) == ("sent", None)
    assert push.ids() == ("hello_vips", send.send_id)
