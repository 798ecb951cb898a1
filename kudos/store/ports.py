"""What the domain needs from storage, as small ports (``typing.Protocol``), and the values they carry.

Two implementations: DynamoDB (``kudos.store.dynamo.Store``) and an in-memory fake
(``kudos.store.memory.MemoryStore``) for fast unit tests. ``tests/functional/test_store_ports.py``
runs one suite over both and over DynamoDB Local, so the fake cannot drift from DynamoDB.
The domain never sees an item, a key string or a type descriptor: only these values and records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from kudos.core.identity import UserKey
from kudos.core.records import Record, RecordKey, SendRecord, UserRecords

Slot = tuple[UserKey, RecordKey]


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session as the activity table remembers it (the dedup record and the DAU source)."""

    day: int
    session_id: str
    aid: str
    started: float
    ended: float | None
    # When the server stored it (None for items written before this was kept).
    received: float | None = None


@dataclass(frozen=True, slots=True)
class DayActivity:
    """What the activity table holds for one UTC day."""

    day: int
    session_aids: list[str]  # one entry per distinct session started that day
    api_aids: list[str]
    new_user_aids: list[str]


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: int
    dau: int
    wau: int
    mau: int
    new_users: int
    sessions: int


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One push event as received (kept for campaign results)."""

    event_id: str
    day: int
    type: str
    user: UserKey
    time: float
    campaign_id: str | None = None
    send_id: str | None = None
    device_id: str | None = None


# Membership changes name users: the log keeps them this long (a TTL), enough for reports and audits.
CHANGE_RETENTION_DAYS = 90

ChangeKind = Literal["entered", "exited"]
ChangeSource = Literal["ingest", "sweep"]


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """A user entering or leaving a segment (campaigns.md "Membership changes")."""

    user: UserKey
    segment: str
    change: ChangeKind
    at: float
    by: ChangeSource
    definition: str  # the version of the segment's rule that decided it


@dataclass(frozen=True, slots=True)
class SweepRun:
    """One run of the scheduled sweep: what it read and wrote, and how long it took."""

    kind: Literal["steady", "full"]
    at: float  # the sweep's clock
    started: float
    finished: float
    users_read: int
    changes: int
    # The segment definitions a full sweep evaluated everyone at (steady sweeps copy the last).
    definitions: dict[str, str]
    # Campaign triggers the sweep fired, and pending sends it queued again (not stored with the run).
    triggers: int = 0
    requeued: int = 0


@dataclass(frozen=True, slots=True)
class FullSweepPlan:
    """A full sweep fanned out over ``parts`` parallel Scan parts: the run is recorded when the
    last part reports."""

    at: float
    started: float
    parts: int
    definitions: dict[str, str]
    parts_done: frozenset[int] = frozenset()
    users_read: int = 0
    changes: int = 0


CampaignStatus = Literal["active", "paused", "paused_by_guardrail"]


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What the deployed files do not say about a campaign: whether it is paused, and how far its
    triggers have fired. Written under optimistic concurrency (``version``)."""

    name: str
    first_seen: float  # the first sweep that found it deployed
    status: CampaignStatus = "active"
    since: float | None = None  # when the status last changed
    reason: str | None = None
    # A `send on entry` campaign's first sweep gives every current member a trigger at this instant;
    # done once they all have one (a crashed sweep's successor finishes at the same instant).
    initial_at: float | None = None
    initial_done: bool = False
    last_fired: float | None = None  # the latest scheduled instant whose triggers were all recorded
    # The guardrail counts sends and opt-outs of the triggers since then (the last resume).
    resumed_at: float | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class QueuedSend:
    """A message of the send queue: take this send and check it with ``at`` as its clock (the
    trigger's instant, or the sweep's that queued it again)."""

    user: UserKey
    send_id: str
    at: float


class UserRecordsPort(Protocol):
    """The users table: each user's records, written under optimistic concurrency (``version``)."""

    def get_records(self, wanted: Iterable[Slot]) -> dict[Slot, Record]:
        """The records stored at these slots, read strongly consistent (callers write them back)."""
        ...

    def save(self, user: UserKey, record: Record) -> bool:
        """Write ``record`` if nobody changed it since it was read at ``record.version``; False on a
        conflict. On success the record's version is the one now stored."""
        ...

    def replace_user(
        self,
        user: UserKey,
        records: list[Record],
        deletions: list[Slot],
        *,
        removals: Sequence[tuple[UserKey, Record]] = (),
    ) -> bool:
        """Write ``records`` (each guarded by its version) and delete ``deletions`` and ``removals``
        (these only if still at the version read, or already gone), atomically."""
        ...

    def delete_record(self, user: UserKey, key: RecordKey) -> None: ...

    def load_user(self, user: UserKey) -> UserRecords:
        """Every record of one user, read strongly consistent."""
        ...

    def delete_user(self, user: UserKey) -> UserRecords:
        """Delete every record of the user; the records deleted."""
        ...

    def scan_users(self, segment: int = 0, total_segments: int = 1) -> Iterator[UserRecords]:
        """Every user that exists, each with all its records (one part of a parallel scan)."""
        ...


class PointersPort(Protocol):
    """Where an anonymous profile's data goes: the user identify merged a device or a user alias
    into (its alias pointer); and who owns a device's push token."""

    def resolve_anonymous(self, anonymous: Iterable[UserKey]) -> dict[UserKey, UserKey]:
        """The user each anonymous key (device or user alias) was merged into, for those merged."""
        ...

    def put_alias(self, anonymous: UserKey, target: UserKey) -> None:
        """Send the anonymous key's later data to ``target``, noting it in target's records (a
        merged-device or merged-alias record) so that deleting the user deletes the pointer too."""
        ...

    def delete_alias(self, anonymous: UserKey, *, only_to: UserKey | None = None) -> bool:
        """Forget where the anonymous key was merged (with ``only_to``: only if it points there still)."""
        ...

    def claim_device(self, device_id: str, owner: UserKey) -> UserKey | None:
        """Make ``owner`` the holder of the device's push token; the previous owner, if another."""
        ...

    def device_owner(self, device_id: str) -> UserKey | None: ...

    def release_device(self, device_id: str, *, only_to: UserKey) -> bool:
        """Forget the device's token owner, if it is still ``only_to``."""
        ...


class ActivityPort(Protocol):
    """The activity table: per-day, sharded, holding only random activity ids (aid), never user ids."""

    def insert_session(self, session: StoredSession, expires: int) -> StoredSession | None:
        """Record a session once: None when it is new, the stored one when it was seen before."""
        ...

    def find_sessions(self, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], StoredSession]:
        """The stored sessions among (day, session_id), read eventually consistent."""
        ...

    def update_session(
        self, day: int, session_id: str, *, ended: float | None = None, aid: str | None = None
    ) -> None: ...

    def mark_api_active(self, day: int, aid: str, expires: int) -> None: ...

    def remove_api_active(self, day: int, aid: str) -> None:
        """Take back an API-activity marker (a late write that an identify's merge moved)."""
        ...

    def add_new_user(self, day: int, aid: str, expires: int) -> None: ...

    def remove_new_user(self, day: int, aid: str) -> None: ...

    def read_day(self, day: int) -> DayActivity: ...

    def put_push_event(self, event: PushEvent, expires: int) -> None: ...


class FiguresPort(Protocol):
    """Derived state: finalised daily figures and the last sweep."""

    def get_rollups(self, days: Iterable[int]) -> dict[int, DayFigures]: ...

    def put_rollup(self, figures: DayFigures) -> None: ...

    def record_sweep(self, run: SweepRun) -> None: ...

    def last_sweep(self) -> SweepRun | None: ...

    def begin_full_sweep(self, plan: FullSweepPlan) -> None:
        """Note a fanned-out full sweep (replacing an unfinished one)."""
        ...

    def full_sweep_plan(self) -> FullSweepPlan | None: ...

    def finish_part(self, at: float, part: int, users_read: int, changes: int) -> FullSweepPlan | None:
        """Count one part of the full sweep at ``at`` as done (once, however often it reports);
        the plan as it now stands, or None when no such sweep is under way."""
        ...

    def end_full_sweep(self, at: float) -> None: ...


class SweepQueuePort(Protocol):
    """Where the parts of a fanned-out full sweep wait for a worker (an SQS queue)."""

    def send_parts(self, at: float, parts: int) -> None: ...


class MembershipsPort(Protocol):
    """Stored segment membership: who is in, the log of entries and exits, and who is due."""

    def record_change(
        self, change: MembershipChange, since: float | None = None, new_records: Sequence[Record] = ()
    ) -> bool:
        """Enter or leave the segment and log the change, atomically, with ``new_records`` (records
        that must not exist yet: the triggers the entry fires). False when the stored membership is
        not what the change starts from (another evaluation got there first)."""
        ...

    def members(self, segment: str, limit: int, after: UserKey | None) -> list[UserKey]:
        """Up to ``limit`` members in token order, after ``after``."""
        ...

    def count_members(self, segment: str) -> int: ...

    def due_users(self, since: float, until: float) -> list[UserKey]:
        """The users whose due instant may lie between ``since`` and ``until``: a superset (the
        index is by hour), never missing one."""
        ...

    def changes_on_day(
        self, segment: str, day: int, *, older_than: MembershipChange | None, limit: int
    ) -> list[MembershipChange]:
        """A day's changes of one segment, newest first, before ``older_than`` when given."""
        ...

    def mark_published(self, changes: Iterable[MembershipChange]) -> None:
        """Take these changes out of the outbox: their events were delivered."""
        ...

    def unpublished(self, until: float) -> list[MembershipChange]:
        """Changes recorded at or before ``until`` whose events were not (known to be) delivered."""
        ...


class CampaignsPort(Protocol):
    """Campaign state, and the campaign-wide views of the send records kept in users' partitions."""

    def states(self) -> dict[str, CampaignState]:
        """Every campaign ever deployed, by name."""
        ...

    def state(self, name: str) -> CampaignState | None:
        """One campaign's state, read strongly consistent."""
        ...

    def save_state(self, state: CampaignState) -> bool:
        """Write ``state`` if nobody changed it since it was read at ``state.version``."""
        ...

    def sends(
        self, campaign: str, *, limit: int, older_than: SendRecord | None = None
    ) -> list[tuple[UserKey | None, SendRecord]]:
        """A campaign's triggers, newest first, before ``older_than`` when given. The user is None
        for the sends of a deleted user (kept, without anything personal, for the figures)."""
        ...

    def all_sends(
        self, campaign: str, since: float, until: float
    ) -> Iterator[tuple[UserKey | None, SendRecord]]:
        """Every trigger of a campaign at an instant in [since, until), oldest first."""
        ...

    def keep_deleted_sends(self, sends: Sequence[SendRecord]) -> None:
        """Keep these sends of a user being deleted, apart from any user (campaigns.md: the campaign
        figures already recorded stay). Writing the same ones again changes nothing."""
        ...

    def pending(self, until: float) -> list[tuple[UserKey, str]]:
        """(user, send id) of the queued and held sends whose pending instant is at or before ``until``."""
        ...

    def take_rate_slot(self, campaign: str, minute: int, limit: int) -> bool:
        """Count one send against the campaign's minute; False when ``limit`` were already counted."""
        ...


class SendQueuePort(Protocol):
    """Where queued sends wait for the sender (an SQS queue, drained by SendFunction)."""

    def enqueue(self, sends: Sequence[QueuedSend], delay_seconds: int = 0) -> None: ...


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One push as the app receives it: `campaign_id` and `send_id` let its push events name the send."""

    campaign_id: str
    send_id: str
    title: str
    body: str
    deep_link: str | None = None
    image: str | None = None


# accepted: the push service took it for the device; gone: it rejected the token for good (a
# disabled endpoint, an unregistered token): the token is marked invalid.
PublishResult = Literal["accepted", "gone"]


class PushRefused(Exception):
    """The push service answered that it did not take a message: nothing was published, and trying
    again cannot publish it twice. Any other exception from a publish leaves its outcome unknown."""


class PushPort(Protocol):
    """A push service (Amazon SNS mobile push by default)."""

    def endpoint(self, platform: str, token: str) -> str | None:
        """The service's address for a device token (an SNS platform endpoint ARN), made on demand;
        None when the service refuses the token."""
        ...

    def publish(self, endpoint: str, platform: str, message: PushMessage) -> PublishResult:
        """Publish once (never retried inside: a retry may publish twice); PushRefused when the
        service surely took nothing."""
        ...


class EventsPort(Protocol):
    """Where membership changes are announced (an EventBridge bus: "Segment Entered"/"Exited")."""

    @property
    def enabled(self) -> bool:
        """Whether there is a bus: without one, changes are only logged, and nothing waits in the
        outbox."""
        ...

    def publish(self, changes: Sequence[MembershipChange]) -> list[MembershipChange]:
        """Send one event per change, in batches; the changes that could not be delivered."""
        ...

    def announce_pause(self, state: CampaignState) -> bool:
        """A "Campaign Paused" event for a campaign its guardrail paused; whether it was delivered."""
        ...


class Storage(Protocol):
    """Every port, as the domain receives them."""

    @property
    def users(self) -> UserRecordsPort: ...

    @property
    def pointers(self) -> PointersPort: ...

    @property
    def activity(self) -> ActivityPort: ...

    @property
    def figures(self) -> FiguresPort: ...

    @property
    def memberships(self) -> MembershipsPort: ...

    @property
    def events(self) -> EventsPort: ...

    @property
    def sweep_queue(self) -> SweepQueuePort: ...

    @property
    def campaigns(self) -> CampaignsPort: ...

    @property
    def send_queue(self) -> SendQueuePort: ...


__all__ = [
    "CHANGE_RETENTION_DAYS",
    "ActivityPort",
    "CampaignState",
    "CampaignStatus",
    "CampaignsPort",
    "ChangeKind",
    "ChangeSource",
    "DayActivity",
    "DayFigures",
    "EventsPort",
    "FiguresPort",
    "FullSweepPlan",
    "MembershipChange",
    "MembershipsPort",
    "PointersPort",
    "PublishResult",
    "PushEvent",
    "PushMessage",
    "PushPort",
    "PushRefused",
    "QueuedSend",
    "SendQueuePort",
    "Slot",
    "Storage",
    "StoredSession",
    "SweepQueuePort",
    "SweepRun",
    "UserRecordsPort",
]
