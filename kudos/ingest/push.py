"""POST /v1/push/tokens and /v1/push/events: what devices tell us about push delivery.

Tokens decide ``push_enabled``; events update subscription state and campaign history, and are
kept (with a TTL) in the activity table for the campaign results to come.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool

from dsl import SegmentSet
from kudos.campaigns.results import PushSignal, Signals, is_sent, record_results
from kudos.core.errors import BadRequest
from kudos.core.identity import UserKey
from kudos.core.records import (
    ATTRIBUTES,
    AttributesRecord,
    CampaignRecord,
    Record,
    RecordKind,
    TokenRecord,
    UserRecords,
    campaign_key,
    token_key,
)
from kudos.core.settings import Settings
from kudos.core.timeutil import SECONDS_PER_DAY, day_of
from kudos.core.wording import count, with_article
from kudos.ingest.activity import activity_expiry
from kudos.ingest.updates import Change, UsersInHand
from kudos.ingest.users import settle_merged
from kudos.ingest.validation import (
    Id,
    Instant,
    ItemError,
    LongText,
    batch_response,
    optional_array,
    require_object,
    validate_item,
    validate_request,
)
from kudos.segments.membership import reevaluate
from kudos.store.ports import PointersPort, PushEvent, Slot, Storage

MAX_PUSH_EVENTS = 500
Platform = Literal["ios", "android", "web"]
PushEventType = Literal["delivered", "opened", "opted_out", "opted_in", "token_invalid"]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device_id: Id
    user_id: Id | None = None
    platform: Platform
    token: LongText  # web push subscriptions are longer than mobile tokens
    enabled: StrictBool


class PushEventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: PushEventType
    device_id: Id | None = None
    user_id: Id | None = None
    campaign_id: Id | None = None
    send_id: Id | None = None
    time: Instant


def register_token(store: Storage, segments: SegmentSet, now: float, body: Any) -> dict[str, Any]:
    registration = validate_request(TokenIn, body)
    # The device's previous token owner is the one this registration may replace, not its owner.
    user = _owner(store.pointers, registration.user_id, registration.device_id, by_token=False)
    # The previous owner's token goes before the claim: a retry after a crash in between still
    # finds who that was.
    owner = store.pointers.device_owner(registration.device_id)
    if owner is not None and owner != user:
        store.users.delete_record(owner, token_key(registration.device_id))
    previous = store.pointers.claim_device(registration.device_id, user) or (
        owner if owner is not None and owner != user else None
    )
    in_hand = UsersInHand(store.users, [user] if previous is None else [user, previous])
    if previous is not None:
        # A device holds one token for one user: whoever registered it last (a shared or resold phone).
        if previous != owner:  # claimed by another in between: its token goes too
            store.users.delete_record(previous, token_key(registration.device_id))
        in_hand.records[previous].tokens.pop(registration.device_id, None)
        reevaluate(store, segments, in_hand.records[previous], now, "ingest")

    def change(stored: Record | None) -> Record:
        version = stored.version if stored is not None else 0
        return TokenRecord(
            device_id=registration.device_id,
            platform=registration.platform,
            token=registration.token,
            enabled=registration.enabled,
            valid=True,
            updated_at=now,
            version=version,
        )

    changes: dict[Slot, Change] = {(user, token_key(registration.device_id)): change}
    if registration.enabled:
        changes[(user, ATTRIBUTES)] = _subscribe_if_unset(now)
    in_hand.update(changes, store.users)
    reevaluate(store, segments, in_hand.records[user], now, "ingest")
    settle_merged(store, segments, now, [user])
    # Whether the user can receive a push now (dsl.md push_enabled), not merely what was sent.
    return {"message": "success", "push_enabled": in_hand.records[user].to_profile().push_enabled}


def _subscribe_if_unset(now: float) -> Change:
    """campaigns.md "Push state": an enabled token sets an unset subscription to "subscribed"; a
    subscription already set (opted in, or out: the user's own choice) is never changed by it."""

    def change(stored: Record | None) -> Record | None:
        attributes = stored if isinstance(stored, AttributesRecord) else AttributesRecord()
        if attributes.push_subscription is not None or now < attributes.push_subscription_changed_at:
            return None
        attributes.push_subscription = "subscribed"
        attributes.push_subscribed_at = now
        return attributes

    return change


@dataclass(slots=True)
class PushEventsResult:
    events_processed: int = 0
    errors: list[ItemError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return batch_response({"events_processed": self.events_processed}, self.errors)


def record_push_events(
    store: Storage, segments: SegmentSet, settings: Settings, now: float, body: Any
) -> PushEventsResult:
    payload = require_object(body)
    if "events" not in payload:
        raise BadRequest("events: is required")
    result = PushEventsResult()
    latest = now + settings.session_max_future_days * SECONDS_PER_DAY
    changes: dict[Slot, list[PushEventIn]] = {}
    # A provider's batch often names one device many times: look each device up once.
    owner_of = functools.cache(lambda user_id, device_id: _owner(store.pointers, user_id, device_id))
    for index, raw in enumerate(optional_array(payload, "events", MAX_PUSH_EVENTS)):
        event = validate_item(PushEventIn, raw, "events", index)
        if isinstance(event, ItemError):
            result.errors.append(event)
            continue
        problem = _event_problem(event, latest, settings.session_max_future_days)
        if problem:
            result.errors.append(ItemError("events", index, f"events[{index}].{problem[0]}", problem[1]))
            continue
        user = owner_of(event.user_id, event.device_id)
        day = day_of(event.time)
        received = PushEvent(
            event_id=f"{event.time:.3f}#{uuid.uuid4().hex[:12]}",
            day=day,
            type=event.type,
            user=user,
            time=event.time,
            campaign_id=event.campaign_id,
            send_id=event.send_id,
            device_id=event.device_id,
        )
        store.activity.put_push_event(received, activity_expiry(settings, day))
        for slot in _slots(user, event):
            changes.setdefault(slot, []).append(event)
        result.events_processed += 1
    in_hand = UsersInHand(store.users, (user for user, _ in changes))
    in_hand.update(
        {
            slot: _apply_push_events(slot, events, in_hand.records[slot[0]])
            for slot, events in changes.items()
        },
        store.users,
    )
    signals: dict[UserKey, Signals] = defaultdict(Signals)
    for (user, _), events in changes.items():
        signals[user].push += [
            PushSignal(event.type, event.time, event.campaign_id, event.send_id) for event in events
        ]
    record_results(store, segments.campaigns, in_hand, signals, now)
    for user in in_hand.records:
        reevaluate(store, segments, in_hand.records[user], now, "ingest")
    settle_merged(store, segments, now, in_hand.records)
    return result


def _event_problem(event: PushEventIn, latest: float, days_ahead: int) -> tuple[str, str] | None:
    if event.user_id is None and event.device_id is None:
        return ("device_id", "device_id or user_id is required")
    if event.time > latest:
        return ("time", f"more than {count(days_ahead, 'day')} after the server's receive time")
    if event.type in ("delivered", "opened") and event.campaign_id is None:
        return ("campaign_id", f"is required for {with_article(event.type)} event")
    if event.type == "token_invalid" and event.device_id is None:
        return ("device_id", "is required for a token_invalid event")
    return None


def _owner(
    pointers: PointersPort, user_id: str | None, device_id: str | None, *, by_token: bool = True
) -> UserKey:
    """Whom a request is about: the user it names; else whoever the device was merged into or (with
    `by_token`) last registered its push token for, as a push provider knows devices, not users;
    else the device."""
    if user_id is not None:
        return UserKey(user_id, None)
    assert device_id is not None
    device = UserKey.of_device(device_id)
    found = pointers.resolve_anonymous([device]).get(device) or (
        pointers.device_owner(device_id) if by_token else None
    )
    return found or device


def _slots(user: UserKey, event: PushEventIn) -> list[Slot]:
    if event.type in ("opted_out", "opted_in"):
        return [(user, ATTRIBUTES)]
    if event.type == "token_invalid":
        assert event.device_id is not None
        return [(user, token_key(event.device_id))]
    assert event.campaign_id is not None
    return [(user, campaign_key(event.campaign_id))]


def _apply_push_events(slot: Slot, events: list[PushEventIn], user: UserRecords) -> Change:
    _, key = slot

    def change(stored: Record | None) -> Record | None:
        ordered = sorted(events, key=lambda e: e.time)
        if key.kind is RecordKind.ATTRIBUTES:
            attributes = stored if isinstance(stored, AttributesRecord) else AttributesRecord()
            changed = False
            for event in ordered:
                # The latest choice wins: an older event uploaded late must never re-subscribe
                # someone who opted out since (nor unsubscribe someone who opted in since).
                if event.time < attributes.push_subscription_changed_at:
                    continue
                changed = True
                if event.type == "opted_out":
                    attributes.push_subscription = "unsubscribed"
                    attributes.push_unsubscribed_at = event.time
                else:
                    attributes.push_subscription = "opted_in"
                    attributes.push_opted_in_at = event.time
            return attributes if changed else None
        if key.kind is RecordKind.TOKEN:
            if not isinstance(stored, TokenRecord):
                return None  # no token registered for this device: nothing to invalidate
            if max(event.time for event in events) < stored.updated_at or not stored.valid:
                return None  # the device registered a token again after it was found invalid
            stored.valid = False
            return stored
        campaign = stored if isinstance(stored, CampaignRecord) else CampaignRecord(key.name)
        for event in ordered:
            # The sender's own pushes count on their send (received when sent, opened as the
            # results code records it); another tool's push counts here, once.
            other = _other_push(event, campaign, user)
            if other is not None:
                campaign.count_receive(other, event.time)
            if event.type == "delivered":
                campaign.received = True
                if campaign.last_received is None or event.time > campaign.last_received:
                    campaign.last_received = event.time
            elif event.type == "opened":
                # A push is opened only once it was received, whether or not its delivery was reported.
                campaign.opened = True
                campaign.received = True
                if campaign.last_received is None:
                    campaign.last_received = event.time
                if other is not None:
                    campaign.count_open(other, event.time)
        return campaign

    return change


def _other_push(event: PushEventIn, campaign: CampaignRecord, user: UserRecords) -> str | None:
    """The push a delivered or opened event is about when the user holds no send of it (another
    tool made it), else None: the send it names, or with `campaign_id` alone a send of that
    campaign, is the sender's, as kudos.campaigns.results attributes it.

    Another tool's push is its `send_id`; without one, a delivery is a push of its own, named by its
    time, and an open is of the latest push delivered (as campaigns.md reads `campaign_id` alone)."""
    if event.send_id is not None:
        named = user.sends.get(event.send_id)
        return None if named is not None and is_sent(named) else event.send_id
    if any(is_sent(send) for send in user.sends_of(campaign.campaign_id)):
        return None
    if event.type == "opened" and campaign.last_received is not None:
        return f"@{campaign.last_received!r}"
    return f"@{event.time!r}"
