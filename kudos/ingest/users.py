"""POST /v1/users/identify and /v1/users/delete."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from dsl import SegmentSet
from kudos.core.errors import BadRequest
from kudos.core.identity import UserKey
from kudos.core.records import ActivityRecord, Record, SendRecord, UserRecords
from kudos.core.settings import Settings
from kudos.ingest.activity import note_first_activity
from kudos.ingest.refs import UNSUPPORTED_IDENTIFIERS, AliasIn, Id
from kudos.ingest.updates import MAX_ATTEMPTS, ConcurrentUpdateError, Outcome
from kudos.ingest.validation import (
    ItemError,
    batch_response,
    optional_array,
    require_object,
    validate_id,
    validate_item,
)
from kudos.segments.membership import exit_everything, reevaluate
from kudos.store.ports import Storage

MAX_ALIASES = 50
MAX_DELETIONS = 50


class IdentifyIn(BaseModel):
    """One of aliases_to_identify: the user_id, and the anonymous profile (a device or a Braze user
    alias) to merge into it."""

    model_config = ConfigDict(extra="ignore")

    external_id: Id
    device_id: Id | None = None
    user_alias: AliasIn | None = None

    @model_validator(mode="after")
    def _names_one_anonymous_profile(self) -> Any:
        if (self.device_id is None) == (self.user_alias is None):
            raise PydanticCustomError(
                "anonymous", "expected either device_id or user_alias beside external_id"
            )
        return self

    @property
    def anonymous(self) -> UserKey:
        if self.user_alias is not None:
            return self.user_alias.key
        assert self.device_id is not None
        return UserKey.of_device(self.device_id)


@dataclass(slots=True)
class IdentifyResult:
    aliases_processed: int = 0
    errors: list[ItemError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return batch_response({"aliases_processed": self.aliases_processed}, self.errors)


def identify_users(store: Storage, segments: SegmentSet, now: float, body: Any) -> IdentifyResult:
    payload = require_object(body)
    if "aliases_to_identify" not in payload:
        raise BadRequest("aliases_to_identify: is required")
    result = IdentifyResult()
    for index, raw in enumerate(optional_array(payload, "aliases_to_identify", MAX_ALIASES)):
        if isinstance(raw, dict) and "braze_id" in raw:
            problem = UNSUPPORTED_IDENTIFIERS["braze_id"].replace(
                "name the user", "name the anonymous profile"
            )
            result.errors.append(
                ItemError("aliases_to_identify", index, f"aliases_to_identify[{index}].braze_id", problem)
            )
            continue
        alias = validate_item(IdentifyIn, raw, "aliases_to_identify", index)
        if isinstance(alias, ItemError):
            result.errors.append(alias)
            continue
        merge_anonymous_into_user(store, segments, now, alias.anonymous, UserKey.of_user(alias.external_id))
        result.aliases_processed += 1
    return result


def merge_anonymous_into_user(
    store: Storage, segments: SegmentSet, now: float, anonymous: UserKey, user: UserKey
) -> None:
    """Merge the anonymous profile ``anonymous`` (a device's or a user alias's) into ``user``; later
    data naming only that device or alias goes there too.

    Counts are summed, the earliest first and latest last instants kept, and attributes already
    set on the identified profile win. Figures already recorded for past days are not rewritten.
    The anonymous profile leaves its segments; the identified one is re-evaluated.
    """
    assert anonymous.anonymous, "only an anonymous profile is merged"
    assert not user.anonymous, "into an identified one"
    # The pointer first: from here on every writer that resolves the anonymous key writes to the
    # user, and a writer that resolved it before settles what it wrote (settle_merged).
    store.pointers.put_alias(anonymous, user)
    target = absorb_anonymous(store, now, anonymous, user)
    reevaluate(store, segments, target, now, "ingest")


def absorb_anonymous(store: Storage, now: float, anonymous: UserKey, user: UserKey) -> UserRecords:
    """Move whatever the anonymous profile still holds into ``user``, until it holds nothing; the
    user's records as they then stand.

    Idempotent: each pass writes the merged records and deletes the ones it merged in one
    transaction, every item guarded by the version it was read at, so two merges of the same
    profile (a repeated identify, a writer settling) cannot both count it; the loser re-reads and
    finds nothing left, or only what arrived since.
    """
    for _ in range(MAX_ATTEMPTS):
        source = store.users.load_user(anonymous)
        target = store.users.load_user(user)
        exit_everything(store, source, now, "ingest")
        source = store.users.load_user(anonymous)
        if not source.records():
            return target
        merged = _merged_records(source, target)
        removals = [(anonymous, record) for record in source.records()]
        # The markers first: a retry after a crash past the transaction finds nothing to merge.
        _merge_new_user_markers(store, source, target, merged)
        store.users.replace_user(user, merged, [], removals=removals)
    raise ConcurrentUpdateError(f"the profiles of {anonymous.describe()} and {user.describe()} kept changing")


def _merge_new_user_markers(
    store: Storage, source: UserRecords, target: UserRecords, merged: list[Record]
) -> None:
    """One profile, one new-user marker: when the anonymous activity joins an identified activity
    with another aid, its marker goes, and the user's moves to the earlier first day."""
    if source.activity is None or target.activity is None or source.activity.aid == target.activity.aid:
        return
    after = next(record for record in merged if isinstance(record, ActivityRecord))
    if source.activity.first_active_day is not None:
        store.activity.remove_new_user(source.activity.first_active_day, source.activity.aid)
    note_first_activity(store.activity, Settings(), Outcome(target.activity, after))


def settle_merged(
    store: Storage, segments: SegmentSet, now: float, written: Iterable[UserKey]
) -> dict[UserKey, UserRecords]:
    """After an ingest call wrote to anonymous profiles: those an identify merged meanwhile (it
    wrote the pointer after this call resolved the key) are merged again, what this call wrote with
    them; the identified users they went into, by anonymous key (read strongly consistent)."""
    anonymous = [key for key in dict.fromkeys(written) if key.anonymous]
    if not anonymous:
        return {}
    settled = {}
    for key, user in store.pointers.resolve_anonymous(anonymous).items():
        settled[key] = absorb_anonymous(store, now, key, user)
        reevaluate(store, segments, settled[key], now, "ingest")
    return settled


def _merged_records(source: UserRecords, target: UserRecords) -> list[Record]:
    """The records the identified profile must hold after absorbing ``source``."""
    merged: list[Record] = []
    if source.activity is not None:
        if target.activity is None:
            # The anonymous profile becomes the identified one, activity id and all.
            merged.append(replace(source.activity, version=0))
        else:
            merged.append(target.activity.merged_with(source.activity))
    for mine, theirs in (
        (target.attributes, source.attributes),
        (target.device_attributes, source.device_attributes),
        (target.purchases, source.purchases),
    ):
        if theirs is not None:
            merged.append(replace(theirs, version=0) if mine is None else mine.merged_with(theirs))  # type: ignore[arg-type]
    for name, event in source.events.items():
        existing = target.events.get(name)
        merged.append(replace(event, version=0) if existing is None else existing.merged_with(event))
    for device, token in source.tokens.items():
        current = target.tokens.get(device)
        # The device's newest registration wins, wherever it was stored.
        if current is None or token.updated_at > current.updated_at:
            merged.append(replace(token, version=current.version if current else 0))
    for cid, campaign in source.campaigns.items():
        existing_campaign = target.campaigns.get(cid)
        merged.append(
            replace(campaign, version=0)
            if existing_campaign is None
            else existing_campaign.merged_with(campaign)
        )
    # Messaging history follows the user (campaigns.md "Identity"): every trigger, whatever its outcome.
    merged += [
        replace(send, version=0) for send_id, send in source.sends.items() if send_id not in target.sends
    ]
    return merged


def delete_users(store: Storage, now: float, body: Any) -> dict[str, Any]:
    """Delete the profiles and everything stored about them; a bad id is reported, not fatal.

    The activity table keeps only random activity ids, which nothing links to a person once the
    profile is gone: past active-user figures stay as they were.
    """
    payload = require_object(body)
    arrays = {name: optional_array(payload, name, MAX_DELETIONS) for name in DELETION_ARRAYS}
    if sum(len(values) for values in arrays.values()) > MAX_DELETIONS:
        raise BadRequest(
            f"at most {MAX_DELETIONS} external_ids, user_aliases and device_ids together per request"
        )
    errors: list[ItemError] = []
    users: list[UserKey] = []
    for name, values in arrays.items():
        for index, raw in enumerate(values):
            checked = _deletion(name, raw, index)
            if isinstance(checked, ItemError):
                errors.append(checked)
            else:
                users.append(checked)
    deleted = 0
    for user in dict.fromkeys(users):
        removed = delete_user(store, now, user)
        # A device or alias merged into a user keeps a pointer, which is all that is left of it.
        aliased = user.anonymous and store.pointers.delete_alias(user)
        deleted += bool(removed or aliased)
    return batch_response({"deleted": deleted}, errors)


# Braze's arrays of /users/delete; kudos has no Braze ids and does not key users by email.
DELETION_ARRAYS = ("external_ids", "user_aliases", "device_ids", "braze_ids", "email_addresses")
_UNSUPPORTED_DELETIONS = {
    "braze_ids": "not supported: kudos has no Braze ids; use external_ids, user_aliases or device_ids",
    "email_addresses": "deleting by email is not supported; use external_ids, user_aliases or device_ids",
}


def _deletion(name: str, raw: Any, index: int) -> UserKey | ItemError:
    """The user one element of a deletion array names, or what is wrong with it."""
    if name in _UNSUPPORTED_DELETIONS:
        return ItemError(name, index, f"{name}[{index}]", _UNSUPPORTED_DELETIONS[name])
    if name == "user_aliases":
        alias = validate_item(AliasIn, raw, name, index)
        return alias if isinstance(alias, ItemError) else alias.key
    checked = validate_id(raw, name, index)
    if isinstance(checked, ItemError):
        return checked
    return UserKey.of_user(checked) if name == "external_ids" else UserKey.of_device(checked)


def forget_user(send: SendRecord) -> SendRecord:
    """A deleted user's send as the figures keep it: nothing personal (the rendered push goes), and
    a send not made yet ends `dismissed` (campaigns.md "Identity")."""
    if send.pending:
        return replace(
            send, status="dismissed", reason="the user was deleted", pending_at=None, title=None, body=None
        )
    return replace(send, title=None, body=None)


def delete_user(store: Storage, now: float, user: UserKey) -> bool:
    """Delete every record of ``user``, the pointers of devices and aliases merged into it, the push-token
    owners that still point at it; whether there was anything to delete. The user leaves every
    segment first, so that the exits are recorded, and its sends are kept for the campaign figures
    without anything personal.

    The pointers go before the records: a retry after a crash in between still finds the records
    that name them (a crash after the records went leaves no pointer to the user behind)."""
    records = store.users.load_user(user)
    exit_everything(store, records, now, "ingest")
    store.campaigns.keep_deleted_sends([forget_user(send) for send in records.sends.values()])
    for anonymous in records.merged_anonymous:
        store.pointers.delete_alias(anonymous, only_to=user)
    for device_id in records.tokens:
        store.pointers.release_device(device_id, only_to=user)
    deleted = store.users.delete_user(user)
    # Named since the first read (an identify or a token registration racing the delete).
    for anonymous in set(deleted.merged_anonymous) - set(records.merged_anonymous):
        store.pointers.delete_alias(anonymous, only_to=user)
    for device_id in set(deleted.tokens) - set(records.tokens):
        store.pointers.release_device(device_id, only_to=user)
    return bool(deleted.records())
