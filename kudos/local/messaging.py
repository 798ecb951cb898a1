"""SQS and SNS for local runs (campaigns.md "Locally"): the send queue and the push service, in moto.

On AWS the stack has a send queue (SendQueue, drained by SendFunction) and the push service is Amazon
SNS mobile push, through platform applications made beforehand (stack parameters). Locally both are
moto's, in this process: the queue (with a dead-letter queue, as template.yaml has) and a platform
application each for APNs and FCM, made when the run starts and deleted when it ends. The settings
the handlers read name them (SEND_QUEUE_URL, APNS_APPLICATION_ARN, FCM_APPLICATION_ARN, and the
SQS_ENDPOINT_URL and SNS_ENDPOINT_URL of the embedded server), so the handlers run unchanged.

What SNS was asked to push stays in moto: ``published_pushes`` reads it (tests, the serve log), and
so does moto's own `GET /moto-api/data.json` on the embedded server (sns, PlatformEndpoint, messages).

Names are unique per run: moto's state is shared by the whole process (tests start many servers).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from kudos.core.settings import Settings
from kudos.local.dynamodb import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, is_local_endpoint

# The template's logical id of the queue SendFunction drains (kudos.local.queues drains it here).
SEND_QUEUE = "SendQueue"
# Locally a failed send is retried after 10 s (180 s on AWS, six times the function's timeout), and
# after 3 receives it goes to the dead-letter queue (5 on AWS), so that a bug shows up quickly.
LOCAL_VISIBILITY_TIMEOUT_S = 10
LOCAL_MAX_RECEIVES = 3
# The account moto's ARNs name.
MOTO_ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class Push:
    """One publish the embedded SNS took: its endpoint and the MessageStructure=json message."""

    endpoint_arn: str
    platform: str  # the platform application's: APNS, APNS_SANDBOX, GCM
    message_id: str
    message: str

    def payload(self, protocol: str | None = None) -> dict[str, Any]:
        """The payload the platform receives (the message's value for ``protocol``, by default the
        endpoint's platform), parsed."""
        structure = json.loads(self.message)
        value = json.loads(structure[protocol or self.platform])
        assert isinstance(value, dict)
        return value

    def ids(self) -> tuple[str | None, str | None]:
        """(campaign_id, send_id) as the app reads them: beside `aps` (APNs), in `data` (FCM)."""
        payload = self.payload()
        if "fcmV1Message" in payload:
            payload = payload["fcmV1Message"]["message"].get("data", {})
        return payload.get("campaign_id"), payload.get("send_id")


def messaging_client(service: str, region: str, endpoint_url: str | None) -> Any:
    import boto3

    options: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint_url}
    if endpoint_url is None or is_local_endpoint(endpoint_url):
        # An emulator (or moto in process) takes any credentials; a developer's must not be needed.
        options.update(aws_access_key_id=DUMMY_ACCESS_KEY, aws_secret_access_key=DUMMY_SECRET_KEY)
    return boto3.client(service, **options)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class LocalMessaging:
    """The queues and platform applications made for one run."""

    region: str
    endpoint_url: str | None  # None: moto in process (mock_aws)
    send_queue_url: str
    dead_letter_queue_url: str
    apns_application_arn: str
    fcm_application_arn: str

    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "send_queue_url": self.send_queue_url,
                "sqs_endpoint_url": self.endpoint_url,
                "sns_endpoint_url": self.endpoint_url,
                "apns_application_arn": self.apns_application_arn,
                "fcm_application_arn": self.fcm_application_arn,
            }
        )


def create_messaging(region: str, endpoint_url: str | None = None) -> LocalMessaging:
    """Make the send queue (and its dead-letter queue) and the APNs and FCM platform applications."""
    name = f"kudos-local-{uuid.uuid4().hex[:10]}"
    sqs = messaging_client("sqs", region, endpoint_url)
    dead_letters = sqs.create_queue(QueueName=f"{name}-send-dlq")["QueueUrl"]
    dead_letters_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"{name}-send",
        Attributes={
            "VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": LOCAL_MAX_RECEIVES}
            ),
        },
    )["QueueUrl"]
    sns = messaging_client("sns", region, endpoint_url)
    # moto checks no credentials; SNS on AWS wants the APNs key or certificate, the FCM service account.
    apns = sns.create_platform_application(Name=name, Platform="APNS", Attributes={})[
        "PlatformApplicationArn"
    ]
    fcm = sns.create_platform_application(Name=name, Platform="GCM", Attributes={})["PlatformApplicationArn"]
    return LocalMessaging(region, endpoint_url, queue, dead_letters, apns, fcm)


def delete_messaging(messaging: LocalMessaging) -> None:
    """Delete what ``create_messaging`` made (the applications with their endpoints); what is gone
    already (moto's state reset by a test) is no error."""
    from botocore.exceptions import ClientError

    sqs = messaging_client("sqs", messaging.region, messaging.endpoint_url)
    for queue in (messaging.send_queue_url, messaging.dead_letter_queue_url):
        with suppress(ClientError):
            sqs.delete_queue(QueueUrl=queue)
    sns = messaging_client("sns", messaging.region, messaging.endpoint_url)
    for application in (messaging.apns_application_arn, messaging.fcm_application_arn):
        with suppress(ClientError):
            sns.delete_platform_application(PlatformApplicationArn=application)


_server_lock = threading.Lock()
_server: dict[str, str] = {}  # "url": the endpoint, once started


def messaging_endpoint() -> str:
    """The endpoint of moto's server for SQS and SNS: one per process, started on first use, a daemon
    thread that ends with the process. One, because stopping one takes half a second (werkzeug polls
    for a shutdown), which every `kudos serve` of a test run would pay; what each run made on it is
    deleted when the run ends."""
    with _server_lock:
        if "url" not in _server:
            from moto.server import ThreadedMotoServer

            # werkzeug logs every request moto serves at INFO to stderr, drowning the handlers' logs.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            _server["url"] = f"http://{host}:{port}"
        return _server["url"]


@contextmanager
def embedded_messaging(settings: Settings) -> Iterator[Settings]:
    """moto's SQS and SNS, on a server in this process, for the block; yields ``settings`` naming
    them. Settings that already name a send queue (SEND_QUEUE_URL: a developer's own queue) are kept
    as they are, and nothing is made."""
    if settings.send_queue_url is not None:
        yield settings
        return
    messaging = create_messaging(settings.region, messaging_endpoint())
    try:
        yield messaging.settings(settings)
    finally:
        delete_messaging(messaging)


def drains_locally(settings: Settings) -> bool:
    """Whether nobody but this process takes the send queue: one on an emulator on this machine (the
    embedded one), as opposed to a queue on AWS, which SendFunction's event source mapping drains.
    (moto in process, with no endpoint, cannot be told from AWS by its URL.)"""
    if settings.send_queue_url is None or settings.sqs_endpoint_url is None:
        return False
    return is_local_endpoint(settings.sqs_endpoint_url)


def published_pushes(settings: Settings) -> list[Push]:
    """Every push the embedded SNS took for the platform applications ``settings`` name, in order
    per endpoint. Reads moto's state in this process (moto's server here is an in-process thread)."""
    from moto.sns.models import sns_backends

    backend = sns_backends[MOTO_ACCOUNT][settings.region]
    applications = {
        arn
        for arn in (
            settings.apns_application_arn,
            settings.apns_sandbox_application_arn,
            settings.fcm_application_arn,
        )
        if arn
    }
    pushes = []
    for endpoint in list(backend.platform_endpoints.values()):
        if endpoint.application.arn not in applications:
            continue
        for message_id, message in list(endpoint.messages.items()):
            pushes.append(Push(endpoint.arn, endpoint.application.platform, message_id, message))
    return pushes


class PushLog:
    """Prints each push the embedded SNS takes, once: the campaign, the send and the platform (never
    the token, the endpoint or the text, which may name the user)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._seen: set[str] = set()

    def print_new(self) -> int:
        fresh = [push for push in published_pushes(self.settings) if push.message_id not in self._seen]
        for push in fresh:
            self._seen.add(push.message_id)
            campaign, send = push.ids()
            print(f"push: campaign {campaign}, send {send}, through {push.platform}", file=sys.stderr)
        sys.stderr.flush()
        return len(fresh)
