"""Every DynamoDB key and attribute name this project writes is built here, and only here.

Two tables (see docs/data-model.md):
- users table: one partition per user, several small items, so that a rule reads a user in one
  Query (or one run of a Scan) and each write touches only a small item.
- activity table: per-day partitions, sharded, holding what the active-user figures are computed
  from. It never holds a user id or device id: only the profile's random activity id (``aid``),
  so deleting a profile makes its past activity anonymous while the figures stay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from kudos.core.identity import UserKey
from kudos.core.records import RecordKey, RecordKind

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires"

# --- users table -----------------------------------------------------------------------------
USER_PREFIX = "U#"
ALIAS_PREFIX = "ALIAS#"
ACTIVITY_SK = "A"  # hot: session day counts, first/last session, aid, first active day
PROFILE_SK = "P"  # attributes, subscriptions
DEVICE_ATTRIBUTES_SK = "S"  # the standard attributes sessions report (small: written by sessions)
PURCHASES_SK = "$"
EVENT_SK_PREFIX = "E#"
TOKEN_SK_PREFIX = "T#"
CAMPAIGN_SK_PREFIX = "C#"
ALIAS_SK = "ALIAS"
DEVICE_PREFIX = "DEVICE#"  # whose push token a device holds now
OWNER_SK = "OWNER"
MERGED_DEVICE_SK_PREFIX = "MERGED#"
MERGED_ALIAS_SK_PREFIX = "MERGEDA#"  # + the alias's text (kudos.core.identity.UserAlias.text)
MEMBERSHIP_SK_PREFIX = "M#"
SEND_SK_PREFIX = "X#"  # + the send id: one item per campaign trigger
DUE_SK = "DUE"
# Sparse global secondary indexes of the users table: only membership items carry the members
# index's keys, only due items the due index's (template.yaml declares both).
MEMBERS_INDEX = "members"
MEMBERS_PK = "mpk"  # SEG#<segment>
MEMBERS_SK = "msk"  # the user's token
DUE_INDEX = "due"
DUE_PK = "dpk"  # DUE#<hour bucket>
DUE_SK_ATTRIBUTE = "dsk"  # the user's token
SEGMENT_CHANGES_PREFIX = "CHG#"  # change log partitions: CHG#<segment>#<day>
# A change whose event is not yet delivered carries the outbox index's keys (sparse, sharded so
# that a burst of changes does not make one hot index partition).
OUTBOX_INDEX = "outbox"
OUTBOX_PK = "opk"  # OUTBOX#<shard>
OUTBOX_SK = "osk"  # the change's sort key: time order
OUTBOX_SHARDS = 16
SECONDS_PER_DUE_BUCKET = 3600
# Send items carry the sends index's keys (a campaign's triggers, newest first) and, while queued or
# held, the pending index's (sparse, sharded: what the sweep queues again when its time comes).
SENDS_INDEX = "sends"
SENDS_PK = "cpk"  # CAMP#<campaign>
SENDS_SK = "csk"  # <triggered_at, fixed width>#<send id>
PENDING_INDEX = "pending"
PENDING_PK = "ppk"  # PEND#<shard>
PENDING_SK = "psk"  # <pending_at, fixed width>#<send id>
PENDING_SHARDS = 8

# Prefixes of attribute names inside the attributes item (kudos/store/codec.py names the rest).
STANDARD_PREFIX = "s_"
CUSTOM_PREFIX = "c_"
CUSTOM_INSTANT_PREFIX = "t_"

# --- activity table --------------------------------------------------------------------------
DAY_PREFIX = "D#"
ROLLUP_PREFIX = "R#"
SESSION_SK_PREFIX = "s#"
API_ACTIVE_SK_PREFIX = "a#"
NEW_USER_SK_PREFIX = "n#"
PUSH_EVENT_PREFIX = "PE#"
SEGMENT_PREFIX = "SEG#"


def user_pk(user: UserKey) -> str:
    return USER_PREFIX + user.token


def user_of_pk(pk: str) -> UserKey:
    return UserKey.parse(pk.removeprefix(USER_PREFIX))


def is_user_pk(pk: str) -> bool:
    return pk.startswith(USER_PREFIX)


class UnknownRecordError(ValueError):
    """An item in a user's partition whose sort key names no record kind this code knows."""


# Each record kind's sort key: a fixed one for kinds a user has one of, a prefix plus the name else.
_SINGLE_SK: dict[RecordKind, str] = {
    RecordKind.ACTIVITY: ACTIVITY_SK,
    RecordKind.ATTRIBUTES: PROFILE_SK,
    RecordKind.PURCHASES: PURCHASES_SK,
    RecordKind.DUE: DUE_SK,
    RecordKind.DEVICE_ATTRIBUTES: DEVICE_ATTRIBUTES_SK,
}
_NAMED_SK_PREFIX: dict[RecordKind, str] = {
    RecordKind.EVENT: EVENT_SK_PREFIX,
    RecordKind.TOKEN: TOKEN_SK_PREFIX,
    RecordKind.CAMPAIGN: CAMPAIGN_SK_PREFIX,
    RecordKind.MERGED_DEVICE: MERGED_DEVICE_SK_PREFIX,
    RecordKind.MERGED_ALIAS: MERGED_ALIAS_SK_PREFIX,
    RecordKind.MEMBERSHIP: MEMBERSHIP_SK_PREFIX,
    RecordKind.SEND: SEND_SK_PREFIX,
}
_KIND_OF_SINGLE_SK = {sk: kind for kind, sk in _SINGLE_SK.items()}
assert set(_SINGLE_SK) | set(_NAMED_SK_PREFIX) == set(RecordKind), "every record kind has a sort key"


def record_sk(key: RecordKey) -> str:
    single = _SINGLE_SK.get(key.kind)
    return single if single is not None else _NAMED_SK_PREFIX[key.kind] + key.name


def record_key_of_sk(sk: str) -> RecordKey:
    """The inverse of record_sk; UnknownRecordError for a sort key of no known kind."""
    kind = _KIND_OF_SINGLE_SK.get(sk)
    if kind is not None:
        return RecordKey(kind)
    for named_kind, prefix in _NAMED_SK_PREFIX.items():
        if sk.startswith(prefix):
            return RecordKey(named_kind, sk[len(prefix) :])
    raise UnknownRecordError(f"no record kind has the sort key {sk!r}")


def alias_pk(anonymous: UserKey) -> str:
    """Where an anonymous profile (``d:...`` device, ``a:...`` alias) merged by identify points."""
    return ALIAS_PREFIX + anonymous.token


def device_pk(device_id: str) -> str:
    return f"{DEVICE_PREFIX}d:{device_id}"


def shard_of(value: str, shards: int) -> int:
    """A stable shard in 0..shards-1 (not Python's hash(), which is salted per process)."""
    digest = hashlib.blake2b(value.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % shards


def day_pk(day: int, shard: int) -> str:
    return f"{DAY_PREFIX}{day}#{shard}"


def session_sk(session_id: str) -> str:
    return SESSION_SK_PREFIX + session_id


def parse_session_key(item: Mapping[str, Any]) -> tuple[int, str]:
    """(day, session_id) of a stored session item: the inverse of day_pk and session_sk."""
    day = item[PK]["S"].removeprefix(DAY_PREFIX).partition("#")[0]
    return int(day), item[SK]["S"].removeprefix(SESSION_SK_PREFIX)


def api_active_sk(aid: str) -> str:
    return API_ACTIVE_SK_PREFIX + aid


def new_user_sk(aid: str) -> str:
    return NEW_USER_SK_PREFIX + aid


def rollup_pk(day: int) -> str:
    return f"{ROLLUP_PREFIX}{day}"


def push_event_pk(day: int, shard: int) -> str:
    return f"{PUSH_EVENT_PREFIX}{day}#{shard}"


def members_pk(segment: str) -> str:
    return SEGMENT_PREFIX + segment


def due_bucket(instant: float) -> int:
    """The hour an instant falls in: the due index groups users by it."""
    return int(instant // SECONDS_PER_DUE_BUCKET)


def due_pk(bucket: int) -> str:
    return f"DUE#{bucket}"


def changes_pk(segment: str, day: int) -> str:
    return f"{SEGMENT_CHANGES_PREFIX}{segment}#{day}"


def change_sk(at: float, user: UserKey, change: str) -> str:
    """Newest first is a backwards Query: the instant leads; the user and the change make it unique."""
    return f"{instant_sk(at)}#{user.token}#{change}"


def outbox_pk(shard: int) -> str:
    return f"OUTBOX#{shard}"


def instant_sk(at: float) -> str:
    """An instant as sort-key text: fixed width, so that text order is time order."""
    return f"{at:020.3f}"


def sends_pk(campaign: str) -> str:
    return f"CAMP#{campaign}"


def sends_sk(triggered_at: float, send_id: str) -> str:
    return f"{instant_sk(triggered_at)}#{send_id}"


def pending_shard_pk(shard: int) -> str:
    return f"PEND#{shard}"


def pending_pk(send_id: str) -> str:
    return pending_shard_pk(shard_of(send_id, PENDING_SHARDS))


def deleted_send_pk(send_id: str) -> str:
    """Where a deleted user's send is kept for the figures: a partition that names no user."""
    return f"GONE#{send_id}"


CAMPAIGNS_PK = "CAMPAIGNS"  # activity table: one item per campaign ever deployed, its state


def rate_pk(campaign: str, minute: int) -> str:
    """The count of sends of a campaign in one minute (its `rate`)."""
    return f"RATE#{campaign}#{minute}"
