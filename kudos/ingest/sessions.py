"""POST /v1/sessions: sessions cached on a device, uploaded late, perhaps twice, with a wrong clock.

Each new session costs two writes: its own item in the activity table (which is also the dedup
record and what DAU and session counts are computed from) and the user's activity record.
A duplicate costs one failed conditional write.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict

from dsl import SegmentSet
from kudos.campaigns.results import Signals, record_results
from kudos.core.errors import BadRequest
from kudos.core.identity import UserKey
from kudos.core.records import (
    ACTIVITY,
    DEVICE_ATTRIBUTES,
    SESSION_REPORTED,
    ActivityRecord,
    AttributesRecord,
    DeviceAttributesRecord,
    Record,
    prune_days,
    standard_attributes,
)
from kudos.core.settings import Settings
from kudos.core.timeutil import SECONDS_PER_DAY, InstantError, day_of, parse_instant
from kudos.core.wording import count
from kudos.ingest.activity import activity_expiry, fresh_activity
from kudos.ingest.updates import Change, Outcome, UsersInHand
from kudos.ingest.users import settle_merged
from kudos.ingest.validation import (
    Id,
    Instant,
    ItemError,
    Text,
    batch_response,
    optional_array,
    require_object,
    validate_item,
)
from kudos.segments.membership import reevaluate
from kudos.store.ports import Slot, Storage, StoredSession

MAX_SESSIONS = 500
# How long an activity record remembers the sessions it counted (and a session item counts as just
# stored): a retry after a crash within it repairs what the crash left.
RETRY_WINDOW = SECONDS_PER_DAY
# The activity record notes the hour it counted each session in (one group of hashes an hour, not
# one a write) and keeps a group an hour past the window, so that no hash goes before its session
# item stops counting as just stored.
COUNTED_HOUR = 3600

# Session fields that are also standard profile attributes (dsl.md), "last value reported": what a
# device knows about itself. Stored in the user's small device attributes record, never in the
# attributes record, whose size grows with the user's custom attributes.
SESSION_ATTRIBUTES = SESSION_REPORTED


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    session_id: Id
    device_id: Id
    user_id: Id | None = None
    started_at: Instant
    ended_at: Instant | None = None
    platform: Text | None = None
    app_version: Text | None = None
    country: Text | None = None
    language: Text | None = None
    time_zone: Text | None = None


@dataclass(slots=True)
class AcceptedSession:
    index: int
    session_id: str
    user: UserKey
    started: float
    ended: float | None
    attributes: dict[str, str]

    @property
    def day(self) -> int:
        return day_of(self.started)


@dataclass(slots=True)
class SessionsResult:
    new_sessions: int = 0
    duplicates: int = 0
    errors: list[ItemError] = field(default_factory=list)
    # Server receive time − sent_at, added to every instant of the batch; None without sent_at.
    clock_offset: float | None = None

    def to_json(self) -> dict[str, Any]:
        counts = {
            "sessions_processed": self.new_sessions + self.duplicates,
            "new_sessions": self.new_sessions,
            "duplicates": self.duplicates,
        }
        body = batch_response(counts, self.errors)
        if self.clock_offset is not None:
            body["clock_offset_seconds"] = round(self.clock_offset, 3)
        return body


def ingest_sessions(
    store: Storage, segments: SegmentSet, settings: Settings, now: float, body: Any
) -> SessionsResult:
    payload = require_object(body)
    if "sessions" not in payload:
        raise BadRequest("sessions: is required")
    raw_sessions = optional_array(payload, "sessions", MAX_SESSIONS)
    skew = 0.0
    if payload.get("sent_at") is not None:
        try:
            skew = now - parse_instant(payload["sent_at"])
        except InstantError as error:
            raise BadRequest(f"sent_at: {error}") from None

    result = SessionsResult(clock_offset=skew if payload.get("sent_at") is not None else None)
    accepted = _validated_and_corrected(raw_sessions, skew, now, settings, result.errors)
    _assign_users(store, accepted)
    users = {session.user for session in accepted}
    # One read per user of everything a session may change or a segment rule may read.
    in_hand = UsersInHand(store.users, users)
    tentative = {}
    for user in users:
        known = in_hand.records[user].activity
        tentative[user] = known.aid if known is not None else fresh_activity(now).aid

    seen_nearby = _dedup_across_midnight(store, accepted)
    new_by_user: dict[UserKey, list[AcceptedSession]] = defaultdict(list)
    stored_aids: dict[str, str] = {}  # the aid each session's item holds
    retried: dict[UserKey, list[AcceptedSession]] = defaultdict(list)
    for session in accepted:
        expires = activity_expiry(settings, session.day)
        if session.session_id in seen_nearby:
            result.duplicates += 1
            continue
        candidate = StoredSession(
            session.day, session.session_id, tentative[session.user], session.started, session.ended, now
        )
        stored = store.activity.insert_session(candidate, expires)
        if stored is None:
            result.new_sessions += 1
            new_by_user[session.user].append(session)
            stored_aids[session.session_id] = candidate.aid
        else:
            result.duplicates += 1
            if session.ended is not None and stored.ended is None:
                store.activity.update_session(session.day, session.session_id, ended=session.ended)
            if stored.received is not None and now - stored.received < RETRY_WINDOW:
                retried[session.user].append(session)
                stored_aids[session.session_id] = stored.aid
    _count_what_a_crash_left(new_by_user, retried, stored_aids, tentative, in_hand)

    _update_profiles(store, settings, now, new_by_user, tentative, stored_aids, in_hand, retried)
    # Duplicates count too: a retry after a crash then records the opens and conversions it missed.
    signals: dict[UserKey, Signals] = defaultdict(Signals)
    for session in accepted:
        signals[session.user].session_starts.append(session.started)
    record_results(store, segments.campaigns, in_hand, signals, now)
    for user in {**new_by_user, **retried}:
        reevaluate(store, segments, in_hand.records[user], now, "ingest")
    for anonymous, merged in settle_merged(store, segments, now, new_by_user).items():
        # An identify merged the device while we wrote: the sessions count under the user's aid.
        written = in_hand.records[anonymous].activity
        if merged.activity is not None and written is not None and merged.activity.aid != written.aid:
            for session in new_by_user[anonymous]:
                store.activity.update_session(session.day, session.session_id, aid=merged.activity.aid)
    result.errors.sort(key=lambda error: error.index)
    return result


def _validated_and_corrected(
    raw_sessions: list[Any], skew: float, now: float, settings: Settings, errors: list[ItemError]
) -> list[AcceptedSession]:
    earliest = now - settings.session_max_age_days * SECONDS_PER_DAY
    latest = now + settings.session_max_future_days * SECONDS_PER_DAY
    by_id: dict[str, AcceptedSession] = {}
    for index, raw in enumerate(raw_sessions):
        parsed = validate_item(SessionIn, raw, "sessions", index)
        if isinstance(parsed, ItemError):
            errors.append(parsed)
            continue
        started = parsed.started_at + skew
        ended = parsed.ended_at + skew if parsed.ended_at is not None else None
        problem = _window_problem(started, earliest, latest, settings)
        if problem:
            errors.append(ItemError("sessions", index, f"sessions[{index}].started_at", problem))
            continue
        if ended is not None and ended < started:
            errors.append(ItemError("sessions", index, f"sessions[{index}].ended_at", "before started_at"))
            continue
        if parsed.session_id in by_id:
            # The same session twice in one batch: one session; the copy may bring ended_at.
            first = by_id[parsed.session_id]
            if first.ended is None and ended is not None:
                first.ended = ended
            continue
        user = UserKey(parsed.user_id, None) if parsed.user_id else UserKey(None, parsed.device_id)
        attributes = {name: getattr(parsed, name) for name in SESSION_ATTRIBUTES if getattr(parsed, name)}
        by_id[parsed.session_id] = AcceptedSession(index, parsed.session_id, user, started, ended, attributes)
    return list(by_id.values())


def _window_problem(started: float, earliest: float, latest: float, settings: Settings) -> str | None:
    if started < earliest:
        return f"more than {count(settings.session_max_age_days, 'day')} before the server's receive time"
    if started > latest:
        return f"more than {count(settings.session_max_future_days, 'day')} after the server's receive time"
    return None


def _assign_users(store: Storage, sessions: list[AcceptedSession]) -> None:
    """Anonymous sessions of a device that was identified belong to that user."""
    anonymous = {s.user for s in sessions if s.user.anonymous}
    if not anonymous:
        return
    aliases = store.pointers.resolve_anonymous(anonymous)
    for session in sessions:
        session.user = aliases.get(session.user, session.user)


def _dedup_across_midnight(store: Storage, sessions: list[AcceptedSession]) -> set[str]:
    """The ids of sessions already stored on the day before or after their own (one batched read),
    completing the ``ended_at`` those copies lack.

    Dedup lives in the day partition of the clock-corrected start, and a re-upload whose correction
    differs (a retry that kept an old `sent_at`, a device clock set right in between, an upload
    without `sent_at`) can move a session by hours, across midnight: such a copy is a duplicate
    too, and may still bring the `ended_at` the first one lacked.
    """
    wanted = {(session.day + step, session.session_id): session for session in sessions for step in (-1, 1)}
    found = store.activity.find_sessions(wanted)
    for (day, session_id), stored in found.items():
        ended = wanted[(day, session_id)].ended
        # Corrected by another clock error, the end may fall before the start that was kept.
        if ended is not None and stored.ended is None and ended >= stored.started:
            store.activity.update_session(day, session_id, ended=ended)
    return {session_id for _, session_id in found}


def _count_what_a_crash_left(
    new_by_user: dict[UserKey, list[AcceptedSession]],
    retried: dict[UserKey, list[AcceptedSession]],
    stored_aids: dict[str, str],
    tentative: dict[UserKey, str],
    in_hand: UsersInHand,
) -> None:
    """A duplicate stored lately (a retry) whose user's activity has not counted it: the attempt
    that stored it died before writing the profile; it is counted now, under the aid it holds."""
    for user, sessions in retried.items():
        activity = in_hand.records[user].activity
        for session in sessions:
            aid = stored_aids[session.session_id]
            if activity is not None and (
                counted_mark(session.session_id) in activity.counted or aid != activity.aid
            ):
                continue  # counted already, or stored for another profile
            if activity is None:
                tentative[user] = aid
            new_by_user[user].append(session)


def counted_mark(session_id: str) -> str:
    """A 4-character hash of a session id (24 bits), as the activity record keeps those it counted.

    Short because the record is the hot item, billed per started KB on every new session: a user
    with 200 sessions in a day keeps it under 1 KB. A collision can only matter where the hashes are
    consulted, after a lost race or on a retry (see _count_sessions), never on a first write that wins.
    """
    return base64.urlsafe_b64encode(hashlib.blake2b(session_id.encode(), digest_size=3).digest()).decode()


def _update_profiles(
    store: Storage,
    settings: Settings,
    now: float,
    new_by_user: dict[UserKey, list[AcceptedSession]],
    tentative_aids: dict[UserKey, str],
    stored_aids: dict[str, str],
    in_hand: UsersInHand,
    retried: dict[UserKey, list[AcceptedSession]],
) -> None:
    changes = {
        (user, ACTIVITY): _count_sessions(sessions, tentative_aids[user], now, in_hand.records[user].activity)
        for user, sessions in new_by_user.items()
    }
    # The new-user marker first (a put, done again harmlessly by a retry): a crash after the
    # activity write cannot lose it.
    planned: dict[UserKey, tuple[str, int | None]] = {}
    for (user, _), change in changes.items():
        before = copy.deepcopy(in_hand.records[user].activity)
        after = change(copy.deepcopy(before))
        if isinstance(after, ActivityRecord):
            first_day = before.first_active_day if before is not None else None
            if after.first_active_day is not None and after.first_active_day != first_day:
                day = after.first_active_day
                store.activity.add_new_user(day, after.aid, activity_expiry(settings, day))
                planned[user] = (after.aid, day)
    outcomes = in_hand.update(changes, store.users)
    attribute_changes: dict[Slot, Change] = {}
    for user in {**new_by_user, **retried}:
        activity = in_hand.records[user].activity
        if activity is None:
            continue
        for session in [*new_by_user.get(user, []), *retried.get(user, [])]:
            if stored_aids[session.session_id] != activity.aid:
                # Another request created this profile first: point our sessions at its aid.
                store.activity.update_session(session.day, session.session_id, aid=activity.aid)
                stored_aids[session.session_id] = activity.aid
        outcome = outcomes.get((user, ACTIVITY))
        if outcome is not None:
            _settle_new_user_marker(store, settings, outcome, planned.get(user))
        previous_last = (
            outcome.before.last_session
            if outcome is not None and isinstance(outcome.before, ActivityRecord)
            else (activity.last_session if outcome is None else None)
        )
        reported = _latest_reports([*new_by_user.get(user, []), *retried.get(user, [])], previous_last)
        if reported:
            attribute_changes[(user, DEVICE_ATTRIBUTES)] = _report_attributes(
                reported, in_hand.records[user].attributes
            )
    in_hand.update(attribute_changes, store.users)


def _settle_new_user_marker(
    store: Storage, settings: Settings, outcome: Outcome, planned: tuple[str, int | None] | None
) -> None:
    """After the activity write: the marker the write actually calls for, when a race made it
    differ from the one put first, and the old day's marker gone when the first day moved."""
    before, after = outcome.before, outcome.after
    assert isinstance(after, ActivityRecord)
    old_day = before.first_active_day if isinstance(before, ActivityRecord) else None
    new_day = after.first_active_day
    if planned is not None and planned != (after.aid, new_day):
        store.activity.remove_new_user(planned[1] or 0, planned[0])
        planned = None
    if new_day is None or new_day == old_day:
        return
    if planned is None:
        store.activity.add_new_user(new_day, after.aid, activity_expiry(settings, new_day))
    if old_day is not None:
        store.activity.remove_new_user(old_day, after.aid)


def _latest_reports(
    sessions: list[AcceptedSession], previous_last: float | None
) -> dict[str, tuple[str, float]]:
    """Each attribute as the newest session reporting it says, with that session's start; sessions
    older than the user's latest one before this upload report nothing (they were cached)."""
    reported: dict[str, tuple[str, float]] = {}
    for session in sorted(sessions, key=lambda s: s.started):
        if previous_last is None or session.started >= previous_last:
            reported.update((name, (value, session.started)) for name, value in session.attributes.items())
    return reported


def _count_sessions(
    sessions: list[AcceptedSession], aid: str, now: float, read: ActivityRecord | None
) -> Change:
    """``read``: the activity record as read before the sessions were stored, against which the
    retried ones among ``sessions`` were found uncounted (new ones were not stored yet)."""
    hour = int(now) // COUNTED_HOUR
    counted_before = frozenset(read.counted) if read is not None else frozenset()

    def change(stored: Record | None) -> Record | None:
        activity = stored if isinstance(stored, ActivityRecord) else replace(fresh_activity(now), aid=aid)
        # Each session once, however often a retry or a racing copy of the upload brings it. Only
        # what was counted since that read can be one of ``sessions``: none of it on a first write
        # that wins, so a hash collision never drops a new session there.
        counted_since = activity.counted.keys() - counted_before
        sessions_left = [s for s in sessions if counted_mark(s.session_id) not in counted_since]
        if not sessions_left:
            return None
        activity.counted = {
            mark: at
            for mark, at in activity.counted.items()
            if now - at * COUNTED_HOUR < RETRY_WINDOW + COUNTED_HOUR
        } | {counted_mark(s.session_id): hour for s in sessions_left}
        for session in sessions_left:
            activity.session_days[session.day] = activity.session_days.get(session.day, 0) + 1
        activity.sessions_total += len(sessions_left)
        first = min(s.started for s in sessions_left)
        last = max(s.started for s in sessions_left)
        if activity.first_session is None or first < activity.first_session:
            activity.first_session = first
        # First seen = the earliest thing we know the user did, not when a late upload told us.
        activity.created_at = min(activity.created_at, first)
        if activity.last_session is None or last > activity.last_session:
            activity.last_session = last
        first_day = day_of(first)
        if activity.first_active_day is None or first_day < activity.first_active_day:
            activity.first_active_day = first_day
        activity.session_days = prune_days(activity.session_days, max(activity.session_days))
        return activity

    return change


def _report_attributes(reported: dict[str, tuple[str, float]], attributes: AttributesRecord | None) -> Change:
    """Standard attributes follow the user's latest session, unless the backend set them later
    (/v1/users/track): a session that started before that reports what was true before it.

    The reports go to the small device attributes record, written only when the profile would
    show something else: what track set is read from ``attributes`` as read with the user (a
    track that lands in between is newer than these sessions' starts, and wins in to_profile).
    """
    set_at = attributes.standard_set_at if attributes is not None else None

    def change(stored: Record | None) -> Record | None:
        device = stored if isinstance(stored, DeviceAttributesRecord) else DeviceAttributesRecord()
        changed = False
        for name, (value, started) in reported.items():
            if set_at is not None and started < set_at:
                continue
            # Already what the profile shows: no write (any later track write is newer than both).
            if standard_attributes(attributes, device).get(name) == value:
                continue
            changed |= device.report(name, value, started)
        return device if changed else None

    return change
