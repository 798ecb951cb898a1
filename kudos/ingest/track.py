"""POST /v1/users/track: attributes, custom events and purchases from a backend (Braze shapes).

A user the request updates is active on the day the server processes it (api.md).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from dsl import SegmentSet
from dsl.fields import STANDARD_ATTRIBUTES
from kudos.campaigns.results import Signals, record_results
from kudos.core.errors import BadRequest
from kudos.core.identity import UserKey
from kudos.core.profile import AttributeInstant, CustomValue
from kudos.core.records import (
    ACTIVITY,
    ATTRIBUTES,
    PURCHASES,
    SESSION_REPORTED,
    ActivityRecord,
    AttributesRecord,
    EventRecord,
    PurchasesRecord,
    Record,
    event_key,
    prune_days,
)
from kudos.core.settings import Settings
from kudos.core.timeutil import SECONDS_PER_DAY, InstantError, day_of, parse_iso8601_instant
from kudos.core.wording import count
from kudos.ingest.activity import activity_expiry, fresh_activity, note_first_activity
from kudos.ingest.refs import UserRef, resolve_refs, unsupported_identifier
from kudos.ingest.updates import Change, UsersInHand
from kudos.ingest.users import settle_merged
from kudos.ingest.validation import (
    MAX_NAME_LENGTH,
    BrazeInstant,
    ItemError,
    Name,
    batch_response,
    json_type,
    number_problem,
    optional_array,
    require_object,
    text_problem,
    validate_item,
)
from kudos.segments.membership import reevaluate
from kudos.store.codec import stored_size
from kudos.store.ports import Slot, Storage

MAX_OBJECTS = 75
# Custom event names one user may accumulate: each is an item every read of the user returns (ingest,
# the segment sweep), so a client that puts ids or timestamps in event names must not make a user
# cost more and more to read. Checked against the user as read with the request.
MAX_EVENT_NAMES = 200
MAX_ATTRIBUTES_PER_OBJECT = 256
MAX_STRING_VALUE = 1024
MAX_LIST_LENGTH = 100
# A user's attributes are one item, read by every segment sweep; DynamoDB's own limit is 400 KB.
MAX_ATTRIBUTES_BYTES = 100 * 1024

SUBSCRIPTION_STATES = ("opted_in", "subscribed", "unsubscribed")
# The keys of an attributes object that name its user or say how to treat it (refs.UserRef).
IDENTITY_KEYS = frozenset({"external_id", "user_alias", "device_id", "_update_existing_only"})
# Braze's request options are the keys that start with `_`: none is ever stored as an attribute.
# `_merge_objects` is about nested objects, which kudos does not store: accepted and ignored.
IGNORED_OPTIONS = frozenset({"_merge_objects"})


def _price(value: Any) -> Any:
    """A JSON number, integer or not (strict floats refuse 5), that DynamoDB can store."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # the float type says what is wrong
    problem = number_problem(value)
    if problem:
        raise PydanticCustomError("number_range", problem)
    return float(value)


# A price times a quantity of 100, summed over a user's purchases, stays a storable number.
MAX_PRICE = 1e12
Price = Annotated[float, BeforeValidator(_price), Field(ge=0, le=MAX_PRICE, strict=True)]


class EventIn(UserRef):
    model_config = ConfigDict(extra="ignore")

    name: Name
    time: BrazeInstant
    properties: dict[str, Any] | None = None


class PurchaseIn(UserRef):
    model_config = ConfigDict(extra="ignore")

    product_id: Name
    currency: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]  # ISO 4217, e.g. EUR
    price: Price
    quantity: int = Field(default=1, ge=1, le=100, strict=True)
    time: BrazeInstant
    properties: dict[str, Any] | None = None


@dataclass(slots=True)
class AttributeUpdate:
    """One attributes object, checked: what to set, unset, increment, add to and remove from lists."""

    index: int  # in the request's attributes array
    standard: dict[str, str | None] = field(default_factory=dict)
    custom: dict[str, CustomValue | None] = field(default_factory=dict)
    increments: dict[str, float] = field(default_factory=dict)
    list_adds: dict[str, list[str]] = field(default_factory=dict)
    list_removes: dict[str, list[str]] = field(default_factory=dict)
    push_subscription: str | None = None
    email_subscription: str | None = None
    unset_subscriptions: set[str] = field(default_factory=set)  # "push", "email": sent as null

    def apply(self, attributes: AttributesRecord, now: float) -> None:
        if self.standard:
            attributes.standard_set_at = now
        for name in self.standard.keys() & SESSION_REPORTED:
            attributes.standard_times[name] = now  # wins over sessions that started before
        for name, text in self.standard.items():
            if text is None:
                attributes.standard.pop(name, None)
            else:
                attributes.standard[name] = text
        for name, value in self.custom.items():
            if value is None:
                attributes.custom.pop(name, None)
            else:
                attributes.custom[name] = value
        for name, step in self.increments.items():
            current = attributes.custom.get(name)
            base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
            total = base + step
            problem = number_problem(total)
            if problem:
                raise ValueError(f"{name}: inc: the total would be {problem}")
            attributes.custom[name] = int(total) if float(total).is_integer() else total
        for name in self.list_adds.keys() | self.list_removes.keys():
            current = attributes.custom.get(name)
            values = list(current) if isinstance(current, list) else []
            values += [v for v in dict.fromkeys(self.list_adds.get(name, [])) if v not in values]
            removed = set(self.list_removes.get(name, []))
            attributes.custom[name] = [v for v in values if v not in removed]
        if self.push_subscription is not None and self.push_subscription != attributes.push_subscription:
            attributes.push_subscription = self.push_subscription
            if self.push_subscription == "unsubscribed":
                attributes.push_unsubscribed_at = now
            else:
                attributes.push_opted_in_at = now
        if self.email_subscription is not None:
            attributes.email_subscription = self.email_subscription
        if "push" in self.unset_subscriptions:
            attributes.push_subscription = None
        if "email" in self.unset_subscriptions:
            attributes.email_subscription = None


@dataclass(slots=True)
class TrackResult:
    attributes_processed: int = 0
    events_processed: int = 0
    purchases_processed: int = 0
    errors: list[ItemError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        counts = {
            "attributes_processed": self.attributes_processed,
            "events_processed": self.events_processed,
            "purchases_processed": self.purchases_processed,
        }
        return batch_response(counts, self.errors)


@dataclass(slots=True)
class _UserChanges:
    attributes: list[AttributeUpdate] = field(default_factory=list)
    events: dict[str, list[EventIn]] = field(default_factory=lambda: defaultdict(list))
    purchases: list[PurchaseIn] = field(default_factory=list)


def track_users(
    store: Storage, segments: SegmentSet, settings: Settings, now: float, body: Any
) -> TrackResult:
    payload = require_object(body)
    arrays = {
        name: optional_array(payload, name, MAX_OBJECTS) for name in ("attributes", "events", "purchases")
    }
    if not any(name in payload for name in arrays):
        raise BadRequest("expected at least one of attributes, events, purchases")
    result = TrackResult()
    latest = now + settings.session_max_future_days * SECONDS_PER_DAY
    refs: list[tuple[UserRef, str, int, Any]] = []  # (ref, array, index, change)
    for index, raw in enumerate(arrays["attributes"]):
        parsed = _parse_attributes(raw, index)
        if isinstance(parsed, ItemError):
            result.errors.append(parsed)
        else:
            refs.append((parsed[0], "attributes", index, parsed[1]))
    for name, model in (("events", EventIn), ("purchases", PurchaseIn)):
        for index, raw in enumerate(arrays[name]):
            unsupported = unsupported_identifier(raw) if isinstance(raw, dict) else None
            item = (
                ItemError(name, index, f"{name}[{index}].{unsupported[0]}", unsupported[1])
                if unsupported
                else validate_item(model, raw, name, index)
            )
            if isinstance(item, ItemError):
                result.errors.append(item)
            elif item.time > latest:  # type: ignore[attr-defined]
                ahead = count(settings.session_max_future_days, "day")
                problem = f"more than {ahead} after the server's receive time"
                result.errors.append(ItemError(name, index, f"{name}[{index}].time", problem))
            else:
                refs.append((item, name, index, item))

    users = resolve_refs(store.pointers, [ref for ref, _, _, _ in refs])
    # One read of each user named (one Query each): whether it exists, and what its segments read.
    in_hand = UsersInHand(store.users, users)
    per_user: dict[UserKey, _UserChanges] = defaultdict(_UserChanges)
    for (ref, kind, index, change), user in zip(refs, users, strict=True):
        if ref.update_existing_only and not in_hand.records[user].exists:
            problem = f"no user with {ref.key.describe()} exists, and _update_existing_only is true"
            result.errors.append(ItemError(kind, index, f"{kind}[{index}].{ref.named_by}", problem))
            continue
        changes = per_user[user]
        if kind == "attributes":
            changes.attributes.append(change)
            result.attributes_processed += 1
        elif kind == "events":
            refusal = _event_name_problem(change.name, in_hand.records[user].events, changes.events)
            if refusal:
                result.errors.append(ItemError(kind, index, f"{kind}[{index}].name", refusal))
                continue
            changes.events[change.name].append(change)
            result.events_processed += 1
        else:
            changes.purchases.append(change)
            result.purchases_processed += 1

    refused = _store_changes(store, settings, now, per_user, in_hand)
    signals = {
        user: Signals(
            events=[(name, event.time) for name, events in changes.events.items() for event in events],
            purchases=[purchase.time for purchase in changes.purchases],
        )
        for user, changes in per_user.items()
    }
    record_results(store, segments.campaigns, in_hand, signals, now)
    for user in per_user:
        reevaluate(store, segments, in_hand.records[user], now, "ingest")
    today = day_of(now)
    for anonymous, merged in settle_merged(store, segments, now, per_user).items():
        # An identify merged the device while we wrote: the day's activity counts under the user's aid.
        written = in_hand.records[anonymous].activity
        if merged.activity is not None and written is not None and merged.activity.aid != written.aid:
            store.activity.mark_api_active(today, merged.activity.aid, activity_expiry(settings, today))
            store.activity.remove_api_active(today, written.aid)
    for index, problem in refused.items():
        result.attributes_processed -= 1
        result.errors.append(ItemError("attributes", index, f"attributes[{index}]", problem))
    result.errors.sort(key=lambda error: (error.input_array, error.index))
    return result


def _event_name_problem(
    name: str, stored: Mapping[str, object], accepted: Mapping[str, object]
) -> str | None:
    """Why an event cannot be counted: a new name for a user who has MAX_EVENT_NAMES already."""
    if name in stored or name in accepted:
        return None
    names = len(stored) + sum(1 for other in accepted if other not in stored)
    if names < MAX_EVENT_NAMES:
        return None
    return (
        f"this user already has {MAX_EVENT_NAMES} event names; an event with a new name is not stored "
        "(each name is stored and read with the user: put what varies in properties, not in the name)"
    )


def _store_changes(
    store: Storage,
    settings: Settings,
    now: float,
    per_user: dict[UserKey, _UserChanges],
    in_hand: UsersInHand,
) -> dict[int, str]:
    """Write every user's changes; the attributes objects refused on the way, by index."""
    today = day_of(now)
    changes: dict[Slot, Change] = {}
    refused: dict[UserKey, dict[int, str]] = {}
    for user, user_changes in per_user.items():
        happened = [item.time for items in user_changes.events.values() for item in items]
        happened += [purchase.time for purchase in user_changes.purchases]
        changes[(user, ACTIVITY)] = _active_today(today, now, min(happened, default=now))
        if user_changes.attributes:
            refused[user] = {}
            changes[(user, ATTRIBUTES)] = _update_attributes(
                user, user_changes.attributes, now, refused[user]
            )
        for name, events in user_changes.events.items():
            changes[(user, event_key(name))] = _count_events(name, events)
        if user_changes.purchases:
            changes[(user, PURCHASES)] = _count_purchases(user_changes.purchases)
    for (_, key), outcome in in_hand.update(changes, store.users).items():
        if key != ACTIVITY:
            continue
        assert isinstance(outcome.after, ActivityRecord)
        store.activity.mark_api_active(today, outcome.after.aid, activity_expiry(settings, today))
        note_first_activity(store.activity, settings, outcome)
    return {index: problem for problems in refused.values() for index, problem in problems.items()}


def _active_today(today: int, now: float, earliest: float) -> Change:
    """Active today; `earliest`, the first event or purchase in the request, may predate the profile."""

    def change(stored: Record | None) -> Record | None:
        activity = stored if isinstance(stored, ActivityRecord) else fresh_activity(now)
        if activity.last_api_day == today and activity.version and activity.created_at <= earliest:
            return None  # already counted active today: no write
        activity.created_at = min(activity.created_at, earliest)
        activity.last_api_day = today
        if activity.first_active_day is None or today < activity.first_active_day:
            activity.first_active_day = today
        return activity

    return change


def _update_attributes(
    user: UserKey, updates: list[AttributeUpdate], now: float, refused: dict[int, str]
) -> Change:
    """Apply the updates in order; one that cannot be stored is refused (into `refused`) alone."""

    def change(stored: Record | None) -> Record | None:
        refused.clear()  # a retry after a lost race starts over
        attributes = stored if isinstance(stored, AttributesRecord) else AttributesRecord()
        for update in updates:
            candidate = copy.deepcopy(attributes)
            try:
                update.apply(candidate, now)
            except ValueError as problem:
                refused[update.index] = str(problem)
                continue
            if stored_size(user, candidate) > MAX_ATTRIBUTES_BYTES:
                refused[update.index] = (
                    f"the user's attributes would take more than {MAX_ATTRIBUTES_BYTES // 1024} KB; "
                    "unset some (null) first"
                )
                continue
            attributes = candidate
        return None if len(refused) == len(updates) else attributes

    return change


def _count_events(name: str, events: list[EventIn]) -> Change:
    def change(stored: Record | None) -> Record:
        record = stored if isinstance(stored, EventRecord) else EventRecord(name=name)
        for event in events:
            record.total += 1
            day = day_of(event.time)
            record.by_day[day] = record.by_day.get(day, 0) + 1
            record.first = event.time if record.first is None else min(record.first, event.time)
            record.last = event.time if record.last is None else max(record.last, event.time)
        record.by_day = prune_days(record.by_day, max(record.by_day))
        return record

    return change


def _count_purchases(purchases: list[PurchaseIn]) -> Change:
    def change(stored: Record | None) -> Record:
        record = stored if isinstance(stored, PurchasesRecord) else PurchasesRecord()
        for purchase in purchases:
            amount = purchase.price * purchase.quantity
            day = day_of(purchase.time)
            record.total += 1
            record.spent_total += amount
            record.count_by_day[day] = record.count_by_day.get(day, 0) + 1
            record.spent_by_day[day] = record.spent_by_day.get(day, 0.0) + amount
            record.first = purchase.time if record.first is None else min(record.first, purchase.time)
            record.last = purchase.time if record.last is None else max(record.last, purchase.time)
        newest = max(record.count_by_day)
        record.count_by_day = prune_days(record.count_by_day, newest)
        record.spent_by_day = prune_days(record.spent_by_day, newest)
        return record

    return change


def _parse_attributes(raw: Any, index: int) -> tuple[UserRef, AttributeUpdate] | ItemError:
    prefix = f"attributes[{index}]"
    if not isinstance(raw, dict):
        return ItemError("attributes", index, prefix, f"expected an object, not {json_type(raw)}")
    unsupported = unsupported_identifier(raw)
    if unsupported:
        return ItemError("attributes", index, f"{prefix}.{unsupported[0]}", unsupported[1])
    ref = validate_item(UserRef, {k: raw[k] for k in IDENTITY_KEYS if k in raw}, "attributes", index)
    if isinstance(ref, ItemError):
        return ref
    if len(raw) > MAX_ATTRIBUTES_PER_OBJECT:
        return ItemError("attributes", index, prefix, f"more than {MAX_ATTRIBUTES_PER_OBJECT} attributes")
    update = AttributeUpdate(index)
    for name, value in raw.items():
        if name in IDENTITY_KEYS:
            continue
        problem = (
            _option_problem(name, value) if name.startswith("_") else _add_attribute(update, name, value)
        )
        if problem:
            return ItemError("attributes", index, f"{prefix}.{name}", problem)
    return (ref, update)


def _option_problem(name: str, value: Any) -> str | None:
    """A key that starts with `_` is one of Braze's request options, never an attribute."""
    if name not in IGNORED_OPTIONS:
        known = ", ".join(sorted(IGNORED_OPTIONS | {"_update_existing_only"}))
        return f"keys starting with _ are request options ({known}), not attributes: not stored"
    if not isinstance(value, bool):
        return f"expected true or false, not {json_type(value)}"
    return None


def _add_attribute(update: AttributeUpdate, name: str, value: Any) -> str | None:
    """Record one attribute in ``update``; a problem with it as text, or None."""
    if not name or len(name) > MAX_NAME_LENGTH:
        return f"an attribute name must have 1 to {MAX_NAME_LENGTH} characters"
    name_problem = text_problem(name)
    if name_problem:
        return f"the attribute name is {name_problem}"
    if name == "push_tokens":
        return "not supported here: register each device's push token with POST /v1/push/tokens"
    if name in ("push_subscribe", "email_subscribe"):
        if value is None:
            update.unset_subscriptions.add(name.removesuffix("_subscribe"))
            return None
        if value not in SUBSCRIPTION_STATES:
            return f"expected one of {', '.join(SUBSCRIPTION_STATES)} or null"
        if name == "push_subscribe":
            update.push_subscription = value
        else:
            update.email_subscription = value
        return None
    if name in STANDARD_ATTRIBUTES:
        if value is not None and not isinstance(value, str):
            return f"expected a string or null, not {json_type(value)}"
        problem = _string_problem(value) if value is not None else None
        if problem is None:
            update.standard[name] = value
        return problem
    if isinstance(value, dict):
        return _add_operation(update, name, value)
    try:
        update.custom[name] = _custom_value(value)
    except ValueError as problem:
        return str(problem)
    return None


def _string_problem(text: str) -> str | None:
    if not text:
        return "must not be empty (send null to unset)"
    if len(text) > MAX_STRING_VALUE:
        return f"longer than {MAX_STRING_VALUE} characters"
    return text_problem(text)


def _strings_problem(values: list[Any]) -> str | None:
    """What is wrong with the first element of a list attribute that is not a fit string."""
    for index, element in enumerate(values):
        if not isinstance(element, str):
            return f"[{index}]: a list attribute holds strings only, not {json_type(element)}"
        problem = _string_problem(element)
        if problem:
            return f"[{index}]: {problem}"
    return None


def _custom_value(value: Any) -> CustomValue | None:
    """The stored form of a custom attribute value; ValueError says what is wrong with it."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        problem = number_problem(value)
        if problem:
            raise ValueError(problem)
        return value
    if isinstance(value, str):
        problem = _string_problem(value)
        if problem:
            raise ValueError(problem)
        # Braze's rule: a string that is an ISO 8601 instant is a time attribute.
        if value[:1].isdigit() and any(separator in value for separator in "Tt "):
            try:
                return AttributeInstant(parse_iso8601_instant(value))
            except InstantError:
                return value
        return value
    if isinstance(value, list):
        if len(value) > MAX_LIST_LENGTH:
            raise ValueError(f"more than {MAX_LIST_LENGTH} elements")
        problem = _strings_problem(value)
        if problem:
            raise ValueError(problem)
        return list(dict.fromkeys(value))
    raise ValueError(f"unsupported value: {json_type(value)}")


def _add_operation(update: AttributeUpdate, name: str, operation: dict[str, Any]) -> str | None:
    if set(operation) == {"inc"}:
        step = operation["inc"]
        if isinstance(step, bool) or not isinstance(step, int | float):
            return "inc: expected a number"
        problem = number_problem(step)
        if problem:
            return f"inc: {problem}"
        update.increments[name] = step
        return None
    if operation and set(operation) <= {"add", "remove"}:
        for verb in ("add", "remove"):
            values = operation.get(verb, [])
            if not isinstance(values, list):
                return f"{verb}: expected a list of strings, not {json_type(values)}"
            if len(values) > MAX_LIST_LENGTH:
                return f"{verb}: more than {MAX_LIST_LENGTH} elements"
            problem = _strings_problem(values)
            if problem:
                return f"{verb}: {problem}"
        update.list_adds[name] = operation.get("add", [])
        update.list_removes[name] = operation.get("remove", [])
        return None
    return 'expected a value, null, {"inc": n} or {"add": [...], "remove": [...]}'
