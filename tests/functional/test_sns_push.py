"""Pushes through Amazon SNS mobile push (kudos/store/sns_push.py), on moto's SNS and SQS (the
embedded ones of `kudos serve`) and the users' records on DynamoDB (moto, DynamoDB Local): what SNS
was actually asked to publish is read back from moto, payloads as the platforms receive them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from dsl import SegmentSet, compile_sources
from kudos.campaigns.sender import deliver
from kudos.core.identity import UserKey
from kudos.core.records import SendRecord, UserRecords
from kudos.core.settings import Settings
from kudos.core.timeutil import day_of, parse_instant
from kudos.ingest.push import register_token
from kudos.ingest.track import track_users
from kudos.local.messaging import Push, embedded_messaging, messaging_client, published_pushes
from kudos.segments.membership import reevaluate
from kudos.segments.sweep import run_sweep
from kudos.store import keys
from kudos.store.dynamo import Store
from kudos.store.ports import PushMessage
from kudos.store.send_queue import queued_send
from kudos.store.sns_push import SnsPush, apns_payload, fcm_payload

NOW = parse_instant("2026-11-22T12:00:00Z")

RULES = """
segment vips "VIPs" { attr.vip = true }
campaign thank_vips "Thanks" {
    audience vips
    send on entry
    push {
        title "Thank you, {{ first_name | default: 'friend' }}!"
        body "{{ attr.coins | default: 500 }} coins"
        deep_link "myapp://rewards"
        image "https://example.com/coins.png"
    }
}
campaign welcome_vips "Welcome" {
    audience vips
    send on entry
    push {
        title "Welcome"
        body "to the club"
    }
}
"""


@dataclass
class World:
    """The domain on real adapters: DynamoDB, the SQS send queue and SNS (moto)."""

    settings: Settings
    store: Store
    segments: SegmentSet
    push: SnsPush
    now: float = NOW
    endpoint_calls: list[str] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def track(self, user_id: str, **attributes: Any) -> None:
        body = {"attributes": [{"external_id": user_id, **attributes}]}
        track_users(self.store, self.segments, self.settings, self.now, body)

    def token(self, user_id: str, device_id: str, platform: str, token: str) -> None:
        body = {
            "user_id": user_id,
            "device_id": device_id,
            "platform": platform,
            "token": token,
            "enabled": True,
        }
        register_token(self.store, self.segments, self.now, body)

    def drain(self) -> list[SendRecord | None]:
        """What SendFunction does with each queued message, in order."""
        sqs = messaging_client("sqs", self.settings.region, self.settings.sqs_endpoint_url)
        done: list[SendRecord | None] = []
        while messages := sqs.receive_message(
            QueueUrl=self.settings.send_queue_url, MaxNumberOfMessages=10
        ).get("Messages", []):
            for message in messages:
                done.append(
                    deliver(
                        self.store,
                        self.push,
                        self.segments,
                        queued_send(message["Body"]),
                        self.clock,
                        self.again,
                    )
                )
                sqs.delete_message(
                    QueueUrl=self.settings.send_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return done

    def again(self, user: UserRecords, at: float) -> None:
        reevaluate(self.store, self.segments, user, at, "ingest")

    def user(self, user_id: str) -> UserRecords:
        return self.store.users.load_user(UserKey.of_user(user_id))

    def pushes(self) -> list[Push]:
        return published_pushes(self.settings)


@pytest.fixture
def world(dynamodb: Any, env_for: Any) -> Iterator[World]:
    with embedded_messaging(dynamodb.settings) as settings:
        env_for(settings)  # the credentials and region the adapters' clients read
        store = Store(settings, dynamodb.client)
        segments = compile_sources([("rules.seg", RULES)])
        push = SnsPush(settings)
        world = World(settings, store, segments, push)
        push.client.meta.events.register(
            "provide-client-params.sns.CreatePlatformEndpoint",
            lambda params, **_: world.endpoint_calls.append(params["Token"]),
        )
        # The campaigns' first sweep is behind the tests' entries.
        run_sweep(store, segments, NOW, world.clock)
        yield world


def test_an_endpoint_is_made_once_per_token_and_kept_on_its_record(world: World) -> None:
    world.token("u-1", "d-1", "ios", "apns-token-1")
    world.track("u-1", vip=True)  # two campaigns: two sends, two pushes to the one token

    done = world.drain()

    assert sorted(send.status for send in done if send is not None) == ["sent", "sent"]
    assert world.endpoint_calls == ["apns-token-1"]
    (token,) = world.user("u-1").tokens.values()
    pushes = world.pushes()
    assert len(pushes) == 2
    assert {push.endpoint_arn for push in pushes} == {token.endpoint}
    assert token.endpoint is not None
    assert ":endpoint/APNS/" in token.endpoint


def test_the_apns_payload_carries_the_push_and_the_ids(world: World) -> None:
    world.token("u-2", "d-2", "ios", "apns-token-2")
    world.track("u-2", vip=True, first_name="Ada", coins=7)
    world.drain()

    sends = {send.campaign: send for send in world.user("u-2").sends.values()}
    (push,) = [push for push in world.pushes() if push.ids()[0] == "thank_vips"]
    assert push.platform == "APNS"
    payload = push.payload()
    assert payload == {
        "aps": {"alert": {"title": "Thank you, Ada!", "body": "7 coins"}, "mutable-content": 1},
        "campaign_id": "thank_vips",
        "send_id": sends["thank_vips"].send_id,
        "deep_link": "myapp://rewards",
        "image": "https://example.com/coins.png",
    }
    # The sandbox gets the same payload; a client without a platform key the body alone.
    message = json.loads(push.message)
    assert json.loads(message["APNS_SANDBOX"]) == payload
    assert message["default"] == "7 coins"


@pytest.mark.parametrize("platform", ["android", "web"])
def test_the_fcm_payload_carries_the_push_and_the_ids_as_data(world: World, platform: str) -> None:
    world.token("u-3", "d-3", platform, f"fcm-token-{platform}")
    world.track("u-3", vip=True)
    world.drain()

    sends = {send.campaign: send for send in world.user("u-3").sends.values()}
    (push,) = [push for push in world.pushes() if push.ids()[0] == "thank_vips"]
    assert push.platform == "GCM"
    assert push.payload() == {
        "fcmV1Message": {
            "message": {
                "notification": {
                    "title": "Thank you, friend!",
                    "body": "500 coins",
                    "image": "https://example.com/coins.png",
                },
                # FCM data values are strings only.
                "data": {
                    "campaign_id": "thank_vips",
                    "send_id": sends["thank_vips"].send_id,
                    "deep_link": "myapp://rewards",
                },
            }
        }
    }


def test_a_disabled_endpoint_is_gone_the_token_invalid_and_a_token_invalid_event_recorded(
    world: World,
) -> None:
    world.token("u-4", "d-4", "ios", "apns-token-4")
    # SNS disabled the endpoint (APNs said the token is no longer valid) after it was made.
    endpoint = world.push.endpoint("ios", "apns-token-4")
    assert endpoint is not None
    stored = world.user("u-4").tokens["d-4"]
    stored.endpoint = endpoint
    world.store.users.save(UserKey.of_user("u-4"), stored)
    world.push.client.set_endpoint_attributes(EndpointArn=endpoint, Attributes={"Enabled": "false"})
    world.now += 60
    world.track("u-4", vip=True)

    done = world.drain()

    # The first push finds the token gone; the second send finds no usable token left.
    assert [send.status for send in done if send is not None] == ["unreachable", "unreachable"]
    assert world.pushes() == []
    token = world.user("u-4").tokens["d-4"]
    assert token.valid is False
    events = token_invalid_events(world)
    assert [(event["user"]["S"], event["device"]["S"]) for event in events] == [("u:u-4", "d-4")]
    assert float(events[0]["time"]["N"]) == world.now


def test_a_token_registered_again_gets_its_disabled_endpoint_enabled_again(world: World) -> None:
    # The app registers the token again (a reinstall): valid again for the app, while SNS still
    # has the endpoint it disabled. It is found and enabled, not taken for gone for ever.
    disabled = world.push.client.create_platform_endpoint(
        PlatformApplicationArn=world.settings.apns_application_arn, Token="apns-token-5"
    )["EndpointArn"]
    world.push.client.set_endpoint_attributes(EndpointArn=disabled, Attributes={"Enabled": "false"})
    world.token("u-5", "d-5", "ios", "apns-token-5")
    world.track("u-5", vip=True)

    done = world.drain()

    assert sorted(send.status for send in done if send is not None) == ["sent", "sent"]
    assert world.user("u-5").tokens["d-5"].endpoint == disabled
    attributes = world.push.client.get_endpoint_attributes(EndpointArn=disabled)["Attributes"]
    assert attributes["Enabled"] == "true"
    assert {push.endpoint_arn for push in world.pushes()} == {disabled}


def test_ios_tokens_go_to_the_sandbox_application_when_it_is_the_only_one(world: World) -> None:
    sandbox = world.push.client.create_platform_application(
        Name="kudos-sandbox-test", Platform="APNS_SANDBOX", Attributes={}
    )["PlatformApplicationArn"]
    try:
        settings = world.settings.model_copy(
            update={"apns_application_arn": None, "apns_sandbox_application_arn": sandbox}
        )
        push = SnsPush(settings, world.push.client)
        endpoint = push.endpoint("ios", "apns-sandbox-token")
        assert endpoint is not None
        assert ":endpoint/APNS_SANDBOX/kudos-sandbox-test/" in endpoint
        message = PushMessage("thank_vips", "s-1", "Hi", "there")
        assert push.publish(endpoint, "ios", message) == "accepted"
        (published,) = [p for p in published_pushes(settings) if p.endpoint_arn == endpoint]
        assert published.payload() == apns_payload(message)
    finally:
        world.push.client.delete_platform_application(PlatformApplicationArn=sandbox)


def test_payload_builders_leave_out_what_a_push_does_not_have() -> None:
    message = PushMessage("c", "s", "title", "body")
    assert apns_payload(message) == {
        "aps": {"alert": {"title": "title", "body": "body"}},
        "campaign_id": "c",
        "send_id": "s",
    }
    assert fcm_payload(message) == {
        "fcmV1Message": {
            "message": {
                "notification": {"title": "title", "body": "body"},
                "data": {"campaign_id": "c", "send_id": "s"},
            }
        }
    }


def token_invalid_events(world: World) -> list[dict[str, Any]]:
    day = day_of(world.now)
    items = []
    for shard in range(world.settings.day_shards):
        items += world.store.tables.query_partition(
            world.settings.activity_table, keys.push_event_pk(day, shard), consistent=True
        )
    return [item for item in items if item["type"]["S"] == "token_invalid"]
