"""Pushes through Amazon SNS mobile push (campaigns.md "Push service"): one platform application per
platform (APNs, or the APNs sandbox, for ios; FCM for android and web), one platform endpoint per
token. Another push service (FCM or APNs directly) is another implementation of PushPort."""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from kudos.core.settings import Settings
from kudos.store.clients import LazyClient, lazy_client
from kudos.store.ports import PublishResult, PushMessage, PushRefused

# SNS's answers to a publish that mean the token will never take a push again.
_GONE = frozenset({"EndpointDisabled", "NotFound"})
# One attempt per call: botocore sends a request again after a timeout or a server error, and a
# publish sent twice may push twice (campaigns.md "At most once"). The sender retries, through SQS,
# only a publish it knows went nowhere (PushRefused).
SINGLE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})
# CreatePlatformEndpoint's InvalidParameter when SNS already has an endpoint for the token with other
# attributes (a disabled one, typically): the message names it (AWS's documented way to find it).
_EXISTING_ENDPOINT = re.compile(r"Endpoint (arn:aws[\w-]*:sns:\S+) already exists with the same [Tt]oken")


class PushNotConfiguredError(RuntimeError):
    """No platform application for a token's platform: a stack parameter is missing."""


def apns_payload(message: PushMessage) -> dict[str, Any]:
    """APNs: the alert in `aps`, our keys beside it (Apple's custom payload keys)."""
    alert = {"title": message.title, "body": message.body}
    payload: dict[str, Any] = {
        "aps": {"alert": alert, **({"mutable-content": 1} if message.image else {})},
        "campaign_id": message.campaign_id,
        "send_id": message.send_id,
    }
    if message.deep_link:
        payload["deep_link"] = message.deep_link
    if message.image:
        payload["image"] = message.image
    return payload


def fcm_payload(message: PushMessage) -> dict[str, Any]:
    """FCM HTTP v1 through SNS (`fcmV1Message`): a notification, and the ids as data (strings only)."""
    notification = {"title": message.title, "body": message.body}
    if message.image:
        notification["image"] = message.image
    data = {"campaign_id": message.campaign_id, "send_id": message.send_id}
    if message.deep_link:
        data["deep_link"] = message.deep_link
    return {"fcmV1Message": {"message": {"notification": notification, "data": data}}}


def sns_message(message: PushMessage) -> str:
    """The MessageStructure=json body: one payload per platform protocol."""
    apns = json.dumps(apns_payload(message))
    return json.dumps(
        {
            "default": message.body,
            "APNS": apns,
            "APNS_SANDBOX": apns,
            "GCM": json.dumps(fcm_payload(message)),
        }
    )


class SnsPush:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = LazyClient(
            lazy_client("sns", settings.region, settings.sns_endpoint_url, SINGLE_ATTEMPT), client
        )

    @property
    def client(self) -> Any:
        return self._client.get()

    def application_arn(self, platform: str) -> str:
        settings = self._settings
        arn = (
            settings.apns_application_arn or settings.apns_sandbox_application_arn
            if platform == "ios"
            else settings.fcm_application_arn
        )
        if arn is None:
            raise PushNotConfiguredError(f"no SNS platform application for {platform} tokens")
        return arn

    def endpoint(self, platform: str, token: str) -> str | None:
        """The token's platform endpoint, made or found, and enabled.

        The sender asks only for a token without an endpoint on its record: one registered (again)
        since its last push. SNS keeps one endpoint per token, and disables it when the platform
        rejects the token; a token the app registers again is valid again, so its endpoint is
        enabled again (else it would be found gone at every push, for good).
        """
        try:
            response = self.client.create_platform_endpoint(
                PlatformApplicationArn=self.application_arn(platform), Token=token
            )
            arn = str(response["EndpointArn"])
        except ClientError as error:
            error_info = error.response.get("Error", {})
            if error_info.get("Code") != "InvalidParameter":
                raise
            existing = _EXISTING_ENDPOINT.search(str(error_info.get("Message", "")))
            if existing is None:
                return None  # a token the platform does not accept
            arn = existing.group(1)
        attributes = self.client.get_endpoint_attributes(EndpointArn=arn).get("Attributes", {})
        if str(attributes.get("Enabled", "true")).lower() != "true":
            self.client.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "true"})
        return arn

    def publish(self, endpoint: str, platform: str, message: PushMessage) -> PublishResult:
        try:
            self.client.publish(TargetArn=endpoint, MessageStructure="json", Message=sns_message(message))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in _GONE:
                return "gone"
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) < 500:
                # A refusal (throttled, invalid, not authorized): SNS took nothing.
                raise PushRefused(f"SNS refused the publish: {code}") from error
            raise  # a server error: it may have been published
        except EndpointConnectionError as error:
            raise PushRefused(f"SNS could not be reached: {error}") from error
        return "accepted"
