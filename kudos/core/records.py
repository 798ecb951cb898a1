"""What is stored about one user, as small typed records (one DynamoDB item each).

Records are plain values: the ingest code reads them, computes the new value in Python and writes
it back guarded by ``version`` (optimistic concurrency), so a conflicting writer retries rather than
losing an update. ``UserRecords.to_profile`` assembles what segment rules read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal, TypeVar, assert_never

from kudos.core.identity import UserAlias, UserKey
from kudos.core.profile import (
    AttributeInstant,
    CampaignHistory,
    CustomValue,
    DailyCounts,
    EventStats,
    Profile,
)
from kudos.core.timeutil import day_of

# Day counters are kept for this many days before the newest day written (rules read ≤ 90 days;
# the margin covers sessions dated up to a day ahead of the server clock).
RETAINED_DAYS = 92

# Standard attributes a device reports with each session (dsl.md), "last value reported": they are
# kept in their own small record, so that a session never rewrites the user's (large) attributes.
SESSION_REPORTED = ("platform", "app_version", "country", "language", "time_zone")

T = TypeVar("T")


class RecordKind(Enum):
    """Every kind of record a user's partition holds. The store has one codec entry per kind."""

    ACTIVITY = "activity"
    ATTRIBUTES = "attributes"
    PURCHASES = "purchases"
    EVENT = "event"  # one per custom event name
    TOKEN = "token"  # one per device
    CAMPAIGN = "campaign"  # one per campaign
    MERGED_DEVICE = "merged_device"  # one per device merged into this user by identify
    MERGED_ALIAS = "merged_alias"  # one per user alias merged into this user by identify
    MEMBERSHIP = "membership"  # one per segment the user is in
    DUE = "due"  # when the user's memberships may next change with time alone
    DEVICE_ATTRIBUTES = "device_attributes"  # the standard attributes sessions report
    SEND = "send"  # one per campaign trigger: its outcome, and the push if one was sent


@dataclass(frozen=True, slots=True)
class RecordKey:
    """Which record of a user: its kind, and for kinds a user has many of, their name."""

    kind: RecordKind
    name: str = ""


ACTIVITY = RecordKey(RecordKind.ACTIVITY)
ATTRIBUTES = RecordKey(RecordKind.ATTRIBUTES)
PURCHASES = RecordKey(RecordKind.PURCHASES)
DUE = RecordKey(RecordKind.DUE)
DEVICE_ATTRIBUTES = RecordKey(RecordKind.DEVICE_ATTRIBUTES)


def event_key(name: str) -> RecordKey:
    return RecordKey(RecordKind.EVENT, name)


def token_key(device_id: str) -> RecordKey:
    return RecordKey(RecordKind.TOKEN, device_id)


def campaign_key(campaign_id: str) -> RecordKey:
    return RecordKey(RecordKind.CAMPAIGN, campaign_id)


def merged_device_key(device_id: str) -> RecordKey:
    return RecordKey(RecordKind.MERGED_DEVICE, device_id)


def merged_alias_key(alias: UserAlias) -> RecordKey:
    return RecordKey(RecordKind.MERGED_ALIAS, alias.text)


def membership_key(segment: str) -> RecordKey:
    return RecordKey(RecordKind.MEMBERSHIP, segment)


def send_key(send_id: str) -> RecordKey:
    return RecordKey(RecordKind.SEND, send_id)


Number = TypeVar("Number", int, float)


def prune_days(by_day: dict[int, T], newest_day: int) -> dict[int, T]:
    oldest = newest_day - RETAINED_DAYS
    if all(day >= oldest for day in by_day):
        return by_day
    return {day: value for day, value in by_day.items() if day >= oldest}


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _sum_days(a: dict[int, Number], b: dict[int, Number]) -> dict[int, Number]:
    merged = dict(a)
    for day, value in b.items():
        merged[day] = merged.get(day, 0) + value
    return merged


def _add_to_day(by_day: dict[int, int], day: int) -> dict[int, int]:
    """One more on ``day``, keeping the retained days before the newest."""
    added = {**by_day, day: by_day.get(day, 0) + 1}
    return prune_days(added, max(added))


@dataclass(slots=True)
class ActivityRecord:
    """The hot item: written on every new session, so it holds only what sessions change."""

    aid: str  # random activity id: the only link between this profile and the activity table
    created_at: float
    version: int = 0
    sessions_total: int = 0
    first_session: float | None = None
    last_session: float | None = None
    first_active_day: int | None = None
    last_api_day: int | None = None
    session_days: dict[int, int] = field(default_factory=dict)
    # The sessions this record counted lately: a 4-character hash of the session id -> the hour it
    # was counted in (hours since the epoch), kept a day and an hour, so that a retry after a crash
    # knows what is missing.
    counted: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> RecordKey:
        return ACTIVITY

    def merged_with(self, other: ActivityRecord) -> ActivityRecord:
        """``self`` (the identified profile) absorbing ``other`` (the anonymous one)."""
        first_days = [d for d in (self.first_active_day, other.first_active_day) if d is not None]
        api_days = [d for d in (self.last_api_day, other.last_api_day) if d is not None]
        return replace(
            self,
            created_at=min(self.created_at, other.created_at),
            sessions_total=self.sessions_total + other.sessions_total,
            first_session=_min(self.first_session, other.first_session),
            last_session=_max(self.last_session, other.last_session),
            first_active_day=min(first_days) if first_days else None,
            last_api_day=max(api_days) if api_days else None,
            session_days=_sum_days(self.session_days, other.session_days),
            counted={**other.counted, **self.counted},
        )


@dataclass(slots=True)
class AttributesRecord:
    version: int = 0
    standard: dict[str, str] = field(default_factory=dict)
    custom: dict[str, CustomValue] = field(default_factory=dict)
    push_subscription: str | None = None
    email_subscription: str | None = None
    push_opted_in_at: float | None = None
    push_unsubscribed_at: float | None = None
    # When an enabled token registration set an unset push subscription to "subscribed" (its
    # receive time): a push choice dated earlier that arrives later must not undo it.
    push_subscribed_at: float | None = None
    # When /v1/users/track last set a standard attribute: sessions that started before report older values.
    standard_set_at: float | None = None
    # When /v1/users/track last set or unset each session-reported attribute (SESSION_REPORTED): it
    # wins over a session report that started before (UserRecords.to_profile).
    standard_times: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> RecordKey:
        return ATTRIBUTES

    def merged_with(self, other: AttributesRecord) -> AttributesRecord:
        """Attributes already set on ``self`` win (api.md, identify)."""
        return replace(
            self,
            standard_set_at=_max(self.standard_set_at, other.standard_set_at),
            standard={**other.standard, **self.standard},
            standard_times={**other.standard_times, **self.standard_times},
            custom={**other.custom, **self.custom},
            push_subscription=self.push_subscription or other.push_subscription,
            email_subscription=self.email_subscription or other.email_subscription,
            push_opted_in_at=self.push_opted_in_at or other.push_opted_in_at,
            push_unsubscribed_at=self.push_unsubscribed_at or other.push_unsubscribed_at,
            push_subscribed_at=self.push_subscribed_at or other.push_subscribed_at,
        )

    @property
    def push_subscription_changed_at(self) -> float:
        """The instant of the latest push choice recorded (opt-in, opt-out, token registration)."""
        changes = (self.push_opted_in_at, self.push_unsubscribed_at, self.push_subscribed_at)
        return max((t for t in changes if t is not None), default=float("-inf"))


@dataclass(slots=True)
class DeviceAttributesRecord:
    """The standard attributes sessions report (SESSION_REPORTED), each with the start of the
    session that reported it: a few dozen bytes, kept apart from the attributes record, which may
    hold up to 100 KB of custom attributes and would cost that much to rewrite."""

    version: int = 0
    values: dict[str, str] = field(default_factory=dict)
    reported_at: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> RecordKey:
        return DEVICE_ATTRIBUTES

    def report(self, name: str, value: str, started: float) -> bool:
        """Keep ``value`` unless a session that started later reported ``name``; whether it changed."""
        previous = self.reported_at.get(name)
        if previous is not None and started < previous:
            return False
        if self.values.get(name) == value and previous == started:
            return False
        self.values[name] = value
        self.reported_at[name] = started
        return True

    def merged_with(self, other: DeviceAttributesRecord) -> DeviceAttributesRecord:
        """The newest report of each attribute, whichever profile received it."""
        merged = replace(self, values=dict(self.values), reported_at=dict(self.reported_at))
        for name, value in other.values.items():
            merged.report(name, value, other.reported_at.get(name, float("-inf")))
        return merged


def standard_attributes(
    attributes: AttributesRecord | None, device: DeviceAttributesRecord | None
) -> dict[str, str]:
    """The profile's standard attributes: what track set, and what sessions reported since.

    A session report wins unless track set or unset that attribute after the session started (its
    time in ``standard_times``). A value without such a time was stored in the attributes record
    before session reports had a record of their own: any report kept since is newer.
    """
    standard = dict(attributes.standard) if attributes is not None else {}
    if device is None:
        return standard
    times = attributes.standard_times if attributes is not None else {}
    for name, value in device.values.items():
        set_at = times.get(name)
        if set_at is None or device.reported_at.get(name, float("-inf")) >= set_at:
            standard[name] = value
    return standard


@dataclass(slots=True)
class EventRecord:
    name: str
    version: int = 0
    total: int = 0
    first: float | None = None
    last: float | None = None
    by_day: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> RecordKey:
        return event_key(self.name)

    def merged_with(self, other: EventRecord) -> EventRecord:
        return replace(
            self,
            total=self.total + other.total,
            first=_min(self.first, other.first),
            last=_max(self.last, other.last),
            by_day=_sum_days(self.by_day, other.by_day),
        )


@dataclass(slots=True)
class PurchasesRecord:
    version: int = 0
    total: int = 0
    spent_total: float = 0.0
    first: float | None = None
    last: float | None = None
    count_by_day: dict[int, int] = field(default_factory=dict)
    spent_by_day: dict[int, float] = field(default_factory=dict)

    @property
    def key(self) -> RecordKey:
        return PURCHASES

    def merged_with(self, other: PurchasesRecord) -> PurchasesRecord:
        return replace(
            self,
            total=self.total + other.total,
            spent_total=self.spent_total + other.spent_total,
            first=_min(self.first, other.first),
            last=_max(self.last, other.last),
            count_by_day=_sum_days(self.count_by_day, other.count_by_day),
            spent_by_day=_sum_days(self.spent_by_day, other.spent_by_day),
        )


@dataclass(slots=True)
class TokenRecord:
    device_id: str
    platform: str
    token: str
    enabled: bool
    valid: bool = True
    updated_at: float = 0.0
    version: int = 0
    # The push service's address for this token (an SNS platform endpoint ARN), made at its first send.
    endpoint: str | None = None

    @property
    def key(self) -> RecordKey:
        return token_key(self.device_id)

    @property
    def usable(self) -> bool:
        return self.enabled and self.valid


# How many pushes a campaign record remembers having counted (the newest): a second event of one
# push (an open on another device, an upload retried) must not count it twice, and a user gets
# few pushes of one campaign, so a short list covers all but a very late duplicate.
COUNTED_PUSHES_KEPT = 16


@dataclass(slots=True)
class CampaignRecord:
    """What push events say one campaign did to this user.

    The sender's own pushes have their SendRecord, which counts them received when sent and opened
    (directly or by influence) when the results code says so. The day series here count the pushes
    the user holds no send of (another tool's, reported through /v1/push/events), one per push."""

    campaign_id: str
    version: int = 0
    received: bool = False
    opened: bool = False
    converted: bool = False
    in_control: bool = False
    last_received: float | None = None
    # Pushes the sender did not make: received by the day of the first event that named them,
    # opened by the day of their first `opened` event, and the latest such open.
    receive_days: dict[int, int] = field(default_factory=dict)
    open_days: dict[int, int] = field(default_factory=dict)
    last_opened: float | None = None
    # The pushes counted in those series, newest last: "r" + push id received, "o" + push id opened.
    counted: list[str] = field(default_factory=list)

    @property
    def key(self) -> RecordKey:
        return campaign_key(self.campaign_id)

    def count_receive(self, push: str, at: float) -> None:
        """A push the sender did not make was received: an event at ``at`` named it."""
        if self._first_count("r" + push):
            self.receive_days = _add_to_day(self.receive_days, day_of(at))

    def count_open(self, push: str, at: float) -> None:
        """A push the sender did not make was opened at ``at``: one open a push, its first."""
        if self._first_count("o" + push):
            self.open_days = _add_to_day(self.open_days, day_of(at))
            self.last_opened = _max(self.last_opened, at)

    def _first_count(self, mark: str) -> bool:
        if mark in self.counted:
            return False
        self.counted = [*self.counted, mark][-COUNTED_PUSHES_KEPT:]
        return True

    def merged_with(self, other: CampaignRecord) -> CampaignRecord:
        counted = [mark for mark in other.counted if mark not in self.counted] + self.counted
        return replace(
            self,
            received=self.received or other.received,
            opened=self.opened or other.opened,
            converted=self.converted or other.converted,
            in_control=self.in_control or other.in_control,
            last_received=_max(self.last_received, other.last_received),
            receive_days=_sum_days(self.receive_days, other.receive_days),
            open_days=_sum_days(self.open_days, other.open_days),
            last_opened=_max(self.last_opened, other.last_opened),
            counted=counted[-COUNTED_PUSHES_KEPT:],
        )


@dataclass(slots=True)
class MergedDeviceRecord:
    """A device identify merged into this user: its alias goes when the user is deleted."""

    device_id: str
    version: int = 0

    @property
    def key(self) -> RecordKey:
        return merged_device_key(self.device_id)


@dataclass(slots=True)
class MergedAliasRecord:
    """A user alias identify merged into this user: its pointer goes when the user is deleted."""

    alias: UserAlias
    version: int = 0

    @property
    def key(self) -> RecordKey:
        return merged_alias_key(self.alias)


def merged_marker(anonymous: UserKey) -> MergedDeviceRecord | MergedAliasRecord:
    """The record that notes, in the user's partition, an anonymous profile merged into it."""
    if anonymous.alias is not None:
        return MergedAliasRecord(anonymous.alias)
    assert anonymous.device_id is not None, "only an anonymous profile is merged"
    return MergedDeviceRecord(anonymous.device_id)


@dataclass(slots=True)
class MembershipRecord:
    """The user is in ``segment``, as decided by the rule at ``definition`` (its version hash)."""

    segment: str
    definition: str
    since: float
    version: int = 0

    @property
    def key(self) -> RecordKey:
        return membership_key(self.segment)


@dataclass(slots=True)
class DueRecord:
    """A lower bound on the next instant at which time alone may change the user's memberships:
    the scheduled sweep re-evaluates the user then, and not before."""

    due: float
    version: int = 0

    @property
    def key(self) -> RecordKey:
        return DUE


# campaigns.md: a trigger's outcome, then the sender's. queued and held are the only ones that change.
SendStatus = Literal[
    "queued",
    "held",
    "paused",
    "not_eligible",
    "unreachable",
    "held_out",
    "expired",
    "dismissed",
    "capped",
    "failed",
    "sent",
]
PENDING_STATUSES: frozenset[SendStatus] = frozenset({"queued", "held"})
# What fires a trigger: an entry into the audience, the campaign's first sweep (every current member),
# or a scheduled instant (send daily at / send once at).
TriggerKind = Literal["entry", "initial", "scheduled"]
# The reason of a send whose publish may or may not have happened: the sender crashed between the
# publish and recording it, and it is never published again (campaigns.md "At most once").
UNCONFIRMED = "unconfirmed"


@dataclass(slots=True)
class SendRecord:
    """One trigger of a campaign for this user, and what became of it (one record per trigger)."""

    send_id: str
    campaign: str
    trigger: TriggerKind
    triggered_at: float
    status: SendStatus
    reason: str | None = None
    sent_at: float | None = None
    # While queued or held: when the sweep may queue it again (a lost message, a quiet-hours window's end).
    pending_at: float | None = None
    title: str | None = None
    body: str | None = None
    version: int = 0
    # Results (campaigns.md "Results"), each the earliest instant that counts, so that push events,
    # sessions and events arriving late, twice or out of order give the same figures.
    influence_until: float | None = None  # a session starting by then is an influenced open
    delivered_at: float | None = None
    opened_at: float | None = None
    direct_open: bool = False  # a direct open replaces an influenced one, whenever it arrives
    converted_at: float | None = None
    opted_out_at: float | None = None  # an opt-out (or a token found gone) attributed to this send

    @property
    def key(self) -> RecordKey:
        return send_key(self.send_id)

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @property
    def counts_for_eligibility(self) -> bool:
        """campaigns.md: a `sent` or `held_out` trigger starts the re-eligibility period."""
        return self.status in ("sent", "held_out")


Record = (
    ActivityRecord
    | AttributesRecord
    | EventRecord
    | PurchasesRecord
    | TokenRecord
    | CampaignRecord
    | MergedDeviceRecord
    | MergedAliasRecord
    | MembershipRecord
    | DueRecord
    | DeviceAttributesRecord
    | SendRecord
)


@dataclass(slots=True)
class UserRecords:
    """Every record of one user, as read in one go."""

    key: UserKey
    activity: ActivityRecord | None = None
    attributes: AttributesRecord | None = None
    purchases: PurchasesRecord | None = None
    events: dict[str, EventRecord] = field(default_factory=dict)
    tokens: dict[str, TokenRecord] = field(default_factory=dict)
    campaigns: dict[str, CampaignRecord] = field(default_factory=dict)
    merged_devices: dict[str, MergedDeviceRecord] = field(default_factory=dict)
    merged_aliases: dict[UserAlias, MergedAliasRecord] = field(default_factory=dict)
    memberships: dict[str, MembershipRecord] = field(default_factory=dict)
    due: DueRecord | None = None
    device_attributes: DeviceAttributesRecord | None = None
    sends: dict[str, SendRecord] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.activity is not None

    def add(self, record: Record) -> None:
        match record:
            case ActivityRecord():
                self.activity = record
            case AttributesRecord():
                self.attributes = record
            case PurchasesRecord():
                self.purchases = record
            case EventRecord():
                self.events[record.name] = record
            case TokenRecord():
                self.tokens[record.device_id] = record
            case CampaignRecord():
                self.campaigns[record.campaign_id] = record
            case MergedDeviceRecord():
                self.merged_devices[record.device_id] = record
            case MergedAliasRecord():
                self.merged_aliases[record.alias] = record
            case MembershipRecord():
                self.memberships[record.segment] = record
            case DueRecord():
                self.due = record
            case DeviceAttributesRecord():
                self.device_attributes = record
            case SendRecord():
                self.sends[record.send_id] = record
            case _:
                assert_never(record)

    def get(self, key: RecordKey) -> Record | None:
        match key.kind:
            case RecordKind.ACTIVITY:
                return self.activity
            case RecordKind.ATTRIBUTES:
                return self.attributes
            case RecordKind.PURCHASES:
                return self.purchases
            case RecordKind.EVENT:
                return self.events.get(key.name)
            case RecordKind.TOKEN:
                return self.tokens.get(key.name)
            case RecordKind.CAMPAIGN:
                return self.campaigns.get(key.name)
            case RecordKind.MERGED_DEVICE:
                return self.merged_devices.get(key.name)
            case RecordKind.MERGED_ALIAS:
                return self.merged_aliases.get(UserAlias.parse(key.name))
            case RecordKind.MEMBERSHIP:
                return self.memberships.get(key.name)
            case RecordKind.DUE:
                return self.due
            case RecordKind.DEVICE_ATTRIBUTES:
                return self.device_attributes
            case RecordKind.SEND:
                return self.sends.get(key.name)
            case _:
                assert_never(key.kind)

    def records(self) -> list[Record]:
        singles = (self.activity, self.attributes, self.device_attributes, self.purchases)
        found: list[Record] = [r for r in singles if r is not None]
        return [
            *found,
            *self.events.values(),
            *self.tokens.values(),
            *self.campaigns.values(),
            *self.merged_devices.values(),
            *self.merged_aliases.values(),
            *self.memberships.values(),
            *([self.due] if self.due is not None else []),
            *self.sends.values(),
        ]

    def sends_of(self, campaign: str) -> list[SendRecord]:
        """This user's triggers of one campaign, oldest first."""
        found = [send for send in self.sends.values() if send.campaign == campaign]
        return sorted(found, key=lambda send: (send.triggered_at, send.send_id))

    @property
    def merged_anonymous(self) -> list[UserKey]:
        """The anonymous profiles (devices, aliases) identify merged into this user."""
        devices = [UserKey.of_device(device) for device in self.merged_devices]
        return devices + [UserKey(None, None, alias) for alias in self.merged_aliases]

    def to_profile(self) -> Profile:
        activity, attributes, purchases = self.activity, self.attributes, self.purchases
        profile = Profile(user_id=self.key.user_id, device_id=self.key.device_id, alias=self.key.alias)
        if activity is not None:
            profile.created_at = activity.created_at
            profile.sessions = DailyCounts(activity.sessions_total, activity.session_days)
            profile.first_session = activity.first_session
            profile.last_session = activity.last_session
        profile.standard = standard_attributes(attributes, self.device_attributes)
        if attributes is not None:
            profile.custom = attributes.custom
            profile.push_subscription = attributes.push_subscription
            profile.email_subscription = attributes.email_subscription
            profile.push_opted_in_at = attributes.push_opted_in_at
            profile.push_unsubscribed_at = attributes.push_unsubscribed_at
        if purchases is not None:
            profile.purchases = DailyCounts(purchases.total, purchases.count_by_day)
            profile.spent_total = purchases.spent_total
            profile.spent_by_day = purchases.spent_by_day
            profile.first_purchase = purchases.first
            profile.last_purchase = purchases.last
        profile.events = {
            name: EventStats(DailyCounts(e.total, e.by_day), e.first, e.last)
            for name, e in self.events.items()
        }
        # dsl.md: a valid, enabled token, and a subscription that is not "unsubscribed".
        profile.push_enabled = profile.push_subscription != "unsubscribed" and any(
            token.usable for token in self.tokens.values()
        )
        profile.campaigns = histories = self._campaign_history()
        received = [c.last_received for c in histories.values() if c.last_received is not None]
        profile.last_received_any = max(received) if received else None
        opened = [c.last_opened for c in histories.values() if c.last_opened is not None]
        profile.last_opened_any = max(opened) if opened else None
        if histories:
            profile.pushes_received = _summed(history.receives for history in histories.values())
            profile.pushes_opened = _summed(history.opens for history in histories.values())
        return profile

    def _campaign_history(self) -> dict[str, CampaignHistory]:
        """What rules read of messaging history: the push events recorded (CampaignRecord), and the
        sender's own record of what it sent, whom it held out and what came of each push (SendRecord,
        whose results kudos.campaigns.results fills).

        A push is received when the sender sent it (at ``sent_at``) and opened at its ``opened_at``,
        a direct or an influenced open (campaigns.md "Results": one open a push, the direct one when
        there is one); a sent push with a conversion makes the user `converted`. Pushes the sender
        did not make count from their push events."""
        history = {
            cid: CampaignHistory(
                received=c.received,
                opened=c.opened,
                converted=c.converted,
                in_control=c.in_control,
                last_received=c.last_received,
                last_opened=c.last_opened,
                receives=DailyCounts(sum(c.receive_days.values()), dict(c.receive_days)),
                opens=DailyCounts(sum(c.open_days.values()), dict(c.open_days)),
            )
            for cid, c in self.campaigns.items()
        }
        for send in self.sends.values():
            if send.status not in ("sent", "held_out"):
                continue
            entry = history.setdefault(send.campaign, CampaignHistory())
            if send.status == "held_out":
                entry.in_control = True
                continue
            entry.received = True
            entry.last_received = _max(entry.last_received, send.sent_at)
            if send.sent_at is not None:
                _count_on(entry.receives, send.sent_at)
            if send.converted_at is not None:
                entry.converted = True
            if send.opened_at is not None:
                entry.opened = True
                entry.last_opened = _max(entry.last_opened, send.opened_at)
                _count_on(entry.opens, send.opened_at)
        for entry in history.values():
            # Sends are kept for good, and windows read at most the last 90 days.
            for counts in (entry.receives, entry.opens):
                if counts.by_day:
                    counts.by_day = prune_days(counts.by_day, max(counts.by_day))
        return history


def _count_on(counts: DailyCounts, at: float) -> None:
    day = day_of(at)
    counts.total += 1
    counts.by_day[day] = counts.by_day.get(day, 0) + 1


def _summed(series: Iterable[DailyCounts]) -> DailyCounts:
    summed = DailyCounts()
    for counts in series:
        summed.total += counts.total
        summed.by_day = _sum_days(summed.by_day, counts.by_day)
    return summed


__all__ = [
    "ACTIVITY",
    "ATTRIBUTES",
    "COUNTED_PUSHES_KEPT",
    "DEVICE_ATTRIBUTES",
    "PENDING_STATUSES",
    "PURCHASES",
    "SESSION_REPORTED",
    "UNCONFIRMED",
    "ActivityRecord",
    "AttributeInstant",
    "AttributesRecord",
    "CampaignRecord",
    "DeviceAttributesRecord",
    "EventRecord",
    "MergedAliasRecord",
    "MergedDeviceRecord",
    "PurchasesRecord",
    "Record",
    "RecordKey",
    "RecordKind",
    "SendRecord",
    "SendStatus",
    "TokenRecord",
    "TriggerKind",
    "UserRecords",
    "campaign_key",
    "event_key",
    "merged_alias_key",
    "merged_device_key",
    "merged_marker",
    "prune_days",
    "send_key",
    "standard_attributes",
    "token_key",
]
