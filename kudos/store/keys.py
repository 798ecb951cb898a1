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
from dataclasses import dataclass
from typing import Any

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires"

# --- users table -----------------------------------------------------------------------------
USER_PREFIX = "U#"
ALIAS_PREFIX = "ALIAS#"
ACTIVITY_SK = "A"  # hot: session day counts, first/last session, aid, first active day
PROFILE_SK = "P"  # attributes, subscriptions
PURCHASES_SK = "$"
EVENT_SK_PREFIX = "E#"
TOKEN_SK_PREFIX = "T#"
CAMPAIGN_SK_PREFIX = "C#"
ALIAS_SK = "ALIAS"
DEVICE_PREFIX = "DEVICE#"  # whose push token a device holds now
OWNER_SK = "OWNER"
MERGED_DEVICE_SK_PREFIX = "MERGED#"

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
LAST_EVALUATION_SK = "LAST"


@dataclass(frozen=True, slots=True)
class UserKey:
    """A profile's identity: by user_id when known, else by device_id (api.md)."""

    user_id: str | None
    device_id: str | None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.device_id is None):
            raise ValueError("a UserKey has exactly one of user_id and device_id")

    @classmethod
    def parse(cls, token: str) -> UserKey:
        kind, _, value = token.partition(":")
        if kind == "u":
            return cls(user_id=value, device_id=None)
        if kind == "d":
            return cls(user_id=None, device_id=value)
        raise ValueError(f"not a user key token: {token!r}")

    @property
    def token(self) -> str:
        return f"u:{self.user_id}" if self.user_id is not None else f"d:{self.device_id}"

    @property
    def pk(self) -> str:
        return USER_PREFIX + self.token

    def identity(self) -> dict[str, str]:
        if self.user_id is not None:
            return {"user_id": self.user_id}
        return {"device_id": self.device_id or ""}


def user_pk_to_key(pk: str) -> UserKey:
    return UserKey.parse(pk.removeprefix(USER_PREFIX))


def alias_pk(device_id: str) -> str:
    return f"{ALIAS_PREFIX}d:{device_id}"


def device_pk(device_id: str) -> str:
    return f"{DEVICE_PREFIX}d:{device_id}"


def merged_device_sk(device_id: str) -> str:
    """In the identified user's partition: a device merged into it, whose alias goes with the user."""
    return MERGED_DEVICE_SK_PREFIX + device_id


def event_sk(name: str) -> str:
    return EVENT_SK_PREFIX + name


def token_sk(device_id: str) -> str:
    return TOKEN_SK_PREFIX + device_id


def campaign_sk(campaign_id: str) -> str:
    return CAMPAIGN_SK_PREFIX + campaign_id


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


def segment_pk(name: str) -> str:
    return SEGMENT_PREFIX + name
