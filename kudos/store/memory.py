"""An in-memory fake of every storage port, for fast unit tests of the domain (no network).

It keeps DynamoDB's semantics where the domain relies on them: versioned writes that fail on a
conflict, first-writer-wins session inserts, conditional pointer deletes, and copies in and out
(a caller mutating a record it holds never changes what is stored).
tests/functional/test_store_ports.py runs the same suite on this and on DynamoDB.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TypeVar

from kudos.core.identity import UserKey
from kudos.core.records import (
    DUE,
    DueRecord,
    MembershipRecord,
    Record,
    RecordKey,
    SendRecord,
    UserRecords,
    membership_key,
    merged_marker,
)
from kudos.core.timeutil import day_of
from kudos.store.keys import due_bucket, instant_sk, sends_sk
from kudos.store.ports import (
    CampaignState,
    DayActivity,
    DayFigures,
    FullSweepPlan,
    MembershipChange,
    PublishResult,
    PushEvent,
    PushMessage,
    PushRefused,
    QueuedSend,
    Slot,
    StoredSession,
    SweepRun,
)

K = TypeVar("K")


class MemoryUserRecords:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.partitions: dict[UserKey, dict[RecordKey, Record]] = {}

    def get_records(self, wanted: Iterable[Slot]) -> dict[Slot, Record]:
        with self._lock:
            found = {}
            for user, key in wanted:
                record = self.partitions.get(user, {}).get(key)
                if record is not None:
                    found[(user, key)] = copy.deepcopy(record)
            return found

    def _unchanged(self, user: UserKey, record: Record) -> bool:
        stored = self.partitions.get(user, {}).get(record.key)
        return (stored.version if stored is not None else 0) == record.version and (
            stored is not None or record.version == 0
        )

    def save(self, user: UserKey, record: Record) -> bool:
        with self._lock:
            if not self._unchanged(user, record):
                return False
            record.version += 1
            self.partitions.setdefault(user, {})[record.key] = copy.deepcopy(record)
            return True

    def replace_user(
        self,
        user: UserKey,
        records: list[Record],
        deletions: list[Slot],
        *,
        removals: Sequence[tuple[UserKey, Record]] = (),
    ) -> bool:
        with self._lock:
            if not all(self._unchanged(user, record) for record in records):
                return False
            for owner, record in removals:
                stored = self.partitions.get(owner, {}).get(record.key)
                if stored is not None and stored.version != record.version:
                    return False
            deletions = [*deletions, *((owner, record.key) for owner, record in removals)]
            for record in records:
                record.version += 1
                self.partitions.setdefault(user, {})[record.key] = copy.deepcopy(record)
            for owner, key in deletions:
                self.partitions.get(owner, {}).pop(key, None)
            return True

    def delete_record(self, user: UserKey, key: RecordKey) -> None:
        with self._lock:
            self.partitions.get(user, {}).pop(key, None)

    def _records_of(self, user: UserKey) -> UserRecords:
        records = UserRecords(user)
        for record in self.partitions.get(user, {}).values():
            records.add(copy.deepcopy(record))
        return records

    def load_user(self, user: UserKey) -> UserRecords:
        with self._lock:
            return self._records_of(user)

    def delete_user(self, user: UserKey) -> UserRecords:
        with self._lock:
            deleted = self._records_of(user)
            self.partitions.pop(user, None)
            return deleted

    def scan_users(self, segment: int = 0, total_segments: int = 1) -> Iterator[UserRecords]:
        with self._lock:
            users = [user for index, user in enumerate(self.partitions) if index % total_segments == segment]
            found = [self._records_of(user) for user in users]
        yield from (records for records in found if records.exists)


class MemoryPointers:
    def __init__(self, lock: threading.RLock, users: MemoryUserRecords) -> None:
        self._lock = lock
        self._users = users
        self.aliases: dict[UserKey, UserKey] = {}  # anonymous key (device or user alias) -> user
        self.owners: dict[str, UserKey] = {}

    def resolve_anonymous(self, anonymous: Iterable[UserKey]) -> dict[UserKey, UserKey]:
        with self._lock:
            return {key: self.aliases[key] for key in anonymous if key in self.aliases}

    def put_alias(self, anonymous: UserKey, target: UserKey) -> None:
        with self._lock:
            self.aliases[anonymous] = target
            marker = merged_marker(anonymous)
            self._users.partitions.setdefault(target, {})[marker.key] = replace(marker, version=0)

    def delete_alias(self, anonymous: UserKey, *, only_to: UserKey | None = None) -> bool:
        with self._lock:
            return _delete_pointer(self.aliases, anonymous, only_to)

    def claim_device(self, device_id: str, owner: UserKey) -> UserKey | None:
        with self._lock:
            previous = self.owners.get(device_id)
            self.owners[device_id] = owner
            return None if previous is None or previous == owner else previous

    def device_owner(self, device_id: str) -> UserKey | None:
        with self._lock:
            return self.owners.get(device_id)

    def release_device(self, device_id: str, *, only_to: UserKey) -> bool:
        with self._lock:
            return _delete_pointer(self.owners, device_id, only_to)


def _delete_pointer(pointers: dict[K, UserKey], key: K, only_to: UserKey | None) -> bool:
    if key not in pointers or (only_to is not None and pointers[key] != only_to):
        return False
    del pointers[key]
    return True


class MemoryActivity:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.sessions: dict[tuple[int, str], StoredSession] = {}
        self.api_active: dict[int, set[str]] = {}
        self.new_users: dict[int, set[str]] = {}
        self.push_events: dict[str, PushEvent] = {}

    def insert_session(self, session: StoredSession, expires: int) -> StoredSession | None:
        with self._lock:
            key = (session.day, session.session_id)
            if key in self.sessions:
                return self.sessions[key]
            self.sessions[key] = session
            return None

    def find_sessions(self, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], StoredSession]:
        with self._lock:
            return {key: self.sessions[key] for key in wanted if key in self.sessions}

    def update_session(
        self, day: int, session_id: str, *, ended: float | None = None, aid: str | None = None
    ) -> None:
        with self._lock:
            stored = self.sessions.get((day, session_id))
            if stored is None:
                return
            if ended is not None:
                stored = replace(stored, ended=ended)
            if aid is not None:
                stored = replace(stored, aid=aid)
            self.sessions[(day, session_id)] = stored

    def mark_api_active(self, day: int, aid: str, expires: int) -> None:
        with self._lock:
            self.api_active.setdefault(day, set()).add(aid)

    def remove_api_active(self, day: int, aid: str) -> None:
        with self._lock:
            self.api_active.get(day, set()).discard(aid)

    def add_new_user(self, day: int, aid: str, expires: int) -> None:
        with self._lock:
            self.new_users.setdefault(day, set()).add(aid)

    def remove_new_user(self, day: int, aid: str) -> None:
        with self._lock:
            self.new_users.get(day, set()).discard(aid)

    def read_day(self, day: int) -> DayActivity:
        with self._lock:
            sessions = [
                session.aid for (session_day, _), session in self.sessions.items() if session_day == day
            ]
            return DayActivity(
                day, sessions, sorted(self.api_active.get(day, ())), sorted(self.new_users.get(day, ()))
            )

    def put_push_event(self, event: PushEvent, expires: int) -> None:
        with self._lock:
            self.push_events[event.event_id] = event


class MemoryFigures:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.rollups: dict[int, DayFigures] = {}
        self.sweep: SweepRun | None = None
        self.plan: FullSweepPlan | None = None

    def get_rollups(self, days: Iterable[int]) -> dict[int, DayFigures]:
        with self._lock:
            return {day: self.rollups[day] for day in days if day in self.rollups}

    def put_rollup(self, figures: DayFigures) -> None:
        with self._lock:
            self.rollups[figures.day] = figures

    def record_sweep(self, run: SweepRun) -> None:
        with self._lock:
            self.sweep = run

    def last_sweep(self) -> SweepRun | None:
        with self._lock:
            return self.sweep

    def begin_full_sweep(self, plan: FullSweepPlan) -> None:
        with self._lock:
            self.plan = plan

    def full_sweep_plan(self) -> FullSweepPlan | None:
        with self._lock:
            return self.plan

    def finish_part(self, at: float, part: int, users_read: int, changes: int) -> FullSweepPlan | None:
        with self._lock:
            if self.plan is None or self.plan.at != at:
                return None
            if part not in self.plan.parts_done:
                self.plan = replace(
                    self.plan,
                    parts_done=self.plan.parts_done | {part},
                    users_read=self.plan.users_read + users_read,
                    changes=self.plan.changes + changes,
                )
            return self.plan

    def end_full_sweep(self, at: float) -> None:
        with self._lock:
            if self.plan is not None and self.plan.at == at:
                self.plan = None


class MemoryMemberships:
    def __init__(self, lock: threading.RLock, users: MemoryUserRecords) -> None:
        self._lock = lock
        self._users = users
        self.log: dict[tuple[str, int], list[MembershipChange]] = {}
        self.outbox: dict[MembershipChange, None] = {}

    def _members(self, segment: str) -> list[UserKey]:
        key = membership_key(segment)
        return sorted(
            (user for user, records in self._users.partitions.items() if key in records),
            key=lambda user: user.token,
        )

    def record_change(
        self, change: MembershipChange, since: float | None = None, new_records: Sequence[Record] = ()
    ) -> bool:
        with self._lock:
            records = self._users.partitions.setdefault(change.user, {})
            key = membership_key(change.segment)
            if (key in records) != (change.change == "exited"):
                return False
            if any(record.key in records for record in new_records):
                return False
            for record in new_records:
                record.version += 1
                records[record.key] = copy.deepcopy(record)
            if change.change == "entered":
                records[key] = MembershipRecord(
                    change.segment, change.definition, change.at if since is None else since, version=1
                )
            else:
                del records[key]
            self.log.setdefault((change.segment, day_of(change.at)), []).append(change)
            self.outbox[change] = None
            return True

    def mark_published(self, changes: Iterable[MembershipChange]) -> None:
        with self._lock:
            for change in changes:
                self.outbox.pop(change, None)

    def unpublished(self, until: float) -> list[MembershipChange]:
        with self._lock:
            return sorted((change for change in self.outbox if change.at <= until), key=lambda c: c.at)

    def members(self, segment: str, limit: int, after: UserKey | None) -> list[UserKey]:
        with self._lock:
            found = self._members(segment)
        return [user for user in found if after is None or user.token > after.token][:limit]

    def count_members(self, segment: str) -> int:
        with self._lock:
            return len(self._members(segment))

    def due_users(self, since: float, until: float) -> list[UserKey]:
        first, last = due_bucket(since), due_bucket(until)
        with self._lock:
            due_in_buckets = [
                user
                for user, records in self._users.partitions.items()
                if isinstance(due := records.get(DUE), DueRecord) and first <= due_bucket(due.due) <= last
            ]
        return sorted(due_in_buckets, key=lambda user: user.token)

    def changes_on_day(
        self, segment: str, day: int, *, older_than: MembershipChange | None, limit: int
    ) -> list[MembershipChange]:
        def order(change: MembershipChange) -> tuple[float, str, str]:
            return (change.at, change.user.token, change.change)

        with self._lock:
            logged = sorted(self.log.get((segment, day), []), key=order, reverse=True)
        return [c for c in logged if older_than is None or order(c) < order(older_than)][:limit]


class MemoryEvents:
    """The events published, in order; ``failing`` makes delivery fail, as a bus outage would."""

    def __init__(self) -> None:
        self.published: list[MembershipChange] = []
        self.paused: list[CampaignState] = []
        self.failing = False
        self.enabled = True

    def announce_pause(self, state: CampaignState) -> bool:
        if self.failing:
            return False
        self.paused.append(state)
        return True

    def publish(self, changes: Sequence[MembershipChange]) -> list[MembershipChange]:
        if self.failing:
            return list(changes)
        self.published.extend(changes)
        return []


class MemorySweepQueue:
    """The parts sent, as (at, part, parts), for the test to deliver like the event source would."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, int, int]] = []

    def send_parts(self, at: float, parts: int) -> None:
        self.messages.extend((at, part, parts) for part in range(parts))


class MemoryCampaigns:
    def __init__(self, lock: threading.RLock, users: MemoryUserRecords) -> None:
        self._lock = lock
        self._users = users
        self.state_of: dict[str, CampaignState] = {}
        self.rate_counts: dict[tuple[str, int], int] = {}
        self.deleted_sends: dict[str, SendRecord] = {}

    def states(self) -> dict[str, CampaignState]:
        with self._lock:
            return dict(self.state_of)

    def state(self, name: str) -> CampaignState | None:
        with self._lock:
            return self.state_of.get(name)

    def save_state(self, state: CampaignState) -> bool:
        with self._lock:
            stored = self.state_of.get(state.name)
            if (stored.version if stored is not None else 0) != state.version:
                return False
            self.state_of[state.name] = replace(state, version=state.version + 1)
            return True

    # Ordered and bounded by the sort keys of DynamoDB's sends and pending indexes: the instant to the
    # millisecond, then the send id (two sends in one millisecond are in id order, not time order).
    def _all(self, campaign: str) -> list[tuple[UserKey | None, SendRecord]]:
        found: list[tuple[UserKey | None, SendRecord]] = [
            (user, copy.deepcopy(record))
            for user, records in self._users.partitions.items()
            for record in records.values()
            if isinstance(record, SendRecord) and record.campaign == campaign
        ]
        found += [
            (None, copy.deepcopy(send)) for send in self.deleted_sends.values() if send.campaign == campaign
        ]
        return sorted(found, key=lambda pair: sends_sk(pair[1].triggered_at, pair[1].send_id))

    def sends(
        self, campaign: str, *, limit: int, older_than: SendRecord | None = None
    ) -> list[tuple[UserKey | None, SendRecord]]:
        with self._lock:
            newest_first = list(reversed(self._all(campaign)))
        if older_than is not None:
            bound = sends_sk(older_than.triggered_at, older_than.send_id)
            newest_first = [
                pair for pair in newest_first if sends_sk(pair[1].triggered_at, pair[1].send_id) < bound
            ]
        return newest_first[:limit]

    def all_sends(
        self, campaign: str, since: float, until: float
    ) -> Iterator[tuple[UserKey | None, SendRecord]]:
        with self._lock:
            found = self._all(campaign)
        return iter([pair for pair in found if since <= pair[1].triggered_at < until])

    def keep_deleted_sends(self, sends: Sequence[SendRecord]) -> None:
        with self._lock:
            for send in sends:
                self.deleted_sends[send.send_id] = copy.deepcopy(send)

    def pending(self, until: float) -> list[tuple[UserKey, str]]:
        bound = instant_sk(until)
        with self._lock:
            found = [
                (sends_sk(record.pending_at, record.send_id), user, record.send_id)
                for user, records in self._users.partitions.items()
                for record in records.values()
                if isinstance(record, SendRecord)
                and record.pending
                and record.pending_at is not None
                and instant_sk(record.pending_at) <= bound
            ]
        return [(user, send_id) for _, user, send_id in sorted(found, key=lambda t: t[0])]

    def take_rate_slot(self, campaign: str, minute: int, limit: int) -> bool:
        with self._lock:
            taken = self.rate_counts.get((campaign, minute), 0)
            if taken >= limit:
                return False
            self.rate_counts[(campaign, minute)] = taken + 1
            return True


class MemorySendQueue:
    """The messages queued, with their delays, for the test (or local runner) to deliver."""

    def __init__(self) -> None:
        self.messages: list[tuple[QueuedSend, int]] = []

    def enqueue(self, sends: Sequence[QueuedSend], delay_seconds: int = 0) -> None:
        self.messages.extend((send, delay_seconds) for send in sends)

    def take(self) -> list[QueuedSend]:
        """Everything queued so far, in order, leaving the queue empty."""
        taken, self.messages = self.messages, []
        return [send for send, _ in taken]


class MemoryStore:
    """Every port in memory; thread-safe, so concurrency tests can share one."""

    def __init__(self) -> None:
        lock = threading.RLock()
        self.users = MemoryUserRecords(lock)
        self.pointers = MemoryPointers(lock, self.users)
        self.activity = MemoryActivity(lock)
        self.figures = MemoryFigures(lock)
        self.memberships = MemoryMemberships(lock, self.users)
        self.events = MemoryEvents()
        self.sweep_queue = MemorySweepQueue()
        self.campaigns = MemoryCampaigns(lock, self.users)
        self.send_queue = MemorySendQueue()


class RecordingPush:
    """A push service that records what it was asked to publish. Tokens in ``gone`` are rejected
    as an unregistered token is; ``failing`` makes every publish refused, as an outage would."""

    def __init__(self) -> None:
        self.published: list[tuple[str, PushMessage]] = []  # (endpoint, message)
        self.endpoints_made: list[str] = []
        self.gone: set[str] = set()
        self.failing = False

    def endpoint(self, platform: str, token: str) -> str | None:
        endpoint = f"endpoint/{platform}/{token}"
        self.endpoints_made.append(endpoint)
        return endpoint

    def publish(self, endpoint: str, platform: str, message: PushMessage) -> PublishResult:
        if self.failing:
            raise PushRefused("push service unavailable")
        if endpoint.rpartition("/")[2] in self.gone:
            return "gone"
        self.published.append((endpoint, message))
        return "accepted"
