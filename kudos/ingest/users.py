"""POST /v1/users/identify and /v1/users/delete."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict

from dsl import SegmentSet
from kudos.core.errors import BadRequest
from kudos.core.identity import UserKey
from kudos.core.records import Record, UserRecords
from kudos.ingest.refs import Id
from kudos.ingest.updates import MAX_ATTEMPTS, ConcurrentUpdateError
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


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device_id: Id
    external_id: Id


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
        alias = validate_item(AliasIn, raw, "aliases_to_identify", index)
        if isinstance(alias, ItemError):
            result.errors.append(alias)
            continue
        merge_device_into_user(store, segments, now, alias.device_id, UserKey(alias.external_id, None))
        result.aliases_processed += 1
    return result


def merge_device_into_user(
    store: Storage, segments: SegmentSet, now: float, device_id: str, user: UserKey
) -> None:
    """Merge the anonymous profile of ``device_id`` into ``user``; later device-only data goes there too.

    Counts are summed, the earliest first and latest last instants kept, and attributes already
    set on the identified profile win. Figures already recorded for past days are not rewritten.
    The anonymous profile leaves its segments; the identified one is re-evaluated.
    """
    anonymous = UserKey(None, device_id)
    for _ in range(MAX_ATTEMPTS):
        source = store.users.load_user(anonymous)
        target = store.users.load_user(user)
        exit_everything(store, source, now, "ingest")
        merged = _merged_records(source, target)
        deletions = [(anonymous, record.key) for record in source.records()]
        if not merged or store.users.replace_user(user, merged, deletions):
            break
    else:
        raise ConcurrentUpdateError(f"the profiles of {device_id!r} and {user.user_id!r} kept changing")
    store.pointers.put_alias(device_id, user)
    for record in merged:
        target.add(record)
    reevaluate(store, segments, target, now, "ingest")


def _merged_records(source: UserRecords, target: UserRecords) -> list[Record]:
    """The records the identified profile must hold after absorbing ``source``."""
    merged: list[Record] = []
    if source.activity is not None:
        if target.activity is None:
            # The anonymous profile becomes the identified one, activity id and all.
            merged.append(replace(source.activity, version=0))
        else:
            merged.append(target.activity.merged_with(source.activity))
    for mine, theirs in ((target.attributes, source.attributes), (target.purchases, source.purchases)):
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
    return merged


def delete_users(store: Storage, now: float, body: Any) -> dict[str, Any]:
    """Delete the profiles and everything stored about them; a bad id is reported, not fatal.

    The activity table keeps only random activity ids, which nothing links to a person once the
    profile is gone: past active-user figures stay as they were.
    """
    payload = require_object(body)
    external_ids = optional_array(payload, "external_ids", MAX_DELETIONS)
    device_ids = optional_array(payload, "device_ids", MAX_DELETIONS)
    if len(external_ids) + len(device_ids) > MAX_DELETIONS:
        raise BadRequest(f"at most {MAX_DELETIONS} external_ids and device_ids together per request")
    errors: list[ItemError] = []
    users: list[UserKey] = []
    for name, values in (("external_ids", external_ids), ("device_ids", device_ids)):
        for index, raw in enumerate(values):
            checked = validate_id(raw, name, index)
            if isinstance(checked, ItemError):
                errors.append(checked)
            else:
                users.append(UserKey(checked, None) if name == "external_ids" else UserKey(None, checked))
    deleted = 0
    for user in dict.fromkeys(users):
        removed = delete_user(store, now, user)
        # A device merged into a user keeps an alias, which is all that is left of it.
        aliased = user.device_id is not None and store.pointers.delete_alias(user.device_id)
        deleted += bool(removed or aliased)
    return batch_response({"deleted": deleted}, errors)


def delete_user(store: Storage, now: float, user: UserKey) -> bool:
    """Delete every record of ``user``, the aliases of devices merged into it and the push-token
    owners that still point at it; whether there was anything to delete. The user leaves every
    segment first, so that the exits are recorded."""
    exit_everything(store, store.users.load_user(user), now, "ingest")
    deleted = store.users.delete_user(user)
    for device_id in deleted.merged_devices:
        store.pointers.delete_alias(device_id, only_to=user)
    for device_id in deleted.tokens:
        store.pointers.release_device(device_id, only_to=user)
    return bool(deleted.records())
