"""The SNS push adapter's answers (campaigns.md "At most once"): a publish is sent once, never
retried by the SDK, and only an answer that says SNS took nothing is a PushRefused, which the sender
may retry; a server error or a timeout leaves the outcome unknown."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from kudos.core.settings import Settings
from kudos.store.ports import PushMessage, PushRefused
from kudos.store.sns_push import SnsPush

ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/app/0000"
MESSAGE = PushMessage("thanks", "send-1", "Thank you", "500 coins")


@pytest.fixture
def stubbed() -> Iterator[tuple[SnsPush, Stubber]]:
    client = boto3.client(
        "sns", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield SnsPush(Settings(), client), stubber


def test_the_sns_client_sends_each_request_once() -> None:
    client = SnsPush(Settings()).client
    assert client.meta.config.retries["total_max_attempts"] == 1


def test_an_accepted_publish(stubbed: tuple[SnsPush, Stubber]) -> None:
    push, stubber = stubbed
    stubber.add_response("publish", {"MessageId": "m-1"})
    assert push.publish(ENDPOINT, "ios", MESSAGE) == "accepted"


def test_a_disabled_endpoint_is_gone(stubbed: tuple[SnsPush, Stubber]) -> None:
    push, stubber = stubbed
    stubber.add_client_error("publish", "EndpointDisabled", http_status_code=400)
    assert push.publish(ENDPOINT, "ios", MESSAGE) == "gone"


def test_a_refusal_is_push_refused(stubbed: tuple[SnsPush, Stubber]) -> None:
    push, stubber = stubbed
    stubber.add_client_error("publish", "Throttled", http_status_code=400)
    with pytest.raises(PushRefused):
        push.publish(ENDPOINT, "ios", MESSAGE)


def test_a_server_error_leaves_the_outcome_unknown(stubbed: tuple[SnsPush, Stubber]) -> None:
    push, stubber = stubbed
    stubber.add_client_error("publish", "InternalError", http_status_code=500)
    with pytest.raises(ClientError) as raised:
        push.publish(ENDPOINT, "ios", MESSAGE)
    assert not isinstance(raised.value, PushRefused)


def test_an_unreachable_service_is_push_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    push = SnsPush(Settings())

    def unreachable(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")

    monkeypatch.setattr(push.client, "publish", unreachable)
    with pytest.raises(PushRefused):
        push.publish(ENDPOINT, "ios", MESSAGE)
