"""Records to low-level DynamoDB items and back.

Hand-written rather than boto3's TypeSerializer: the segment sweep deserializes every user's
items, and knowing each attribute's type makes that several times faster.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kudos.profile import AttributeInstant, CustomValue
from kudos.records import (
    ActivityRecord,
    AttributesRecord,
    CampaignRecord,
    EventRecord,
    PurchasesRecord,
    Record,
    TokenRecord,
)
from kudos.store import keys
from kudos.store.keys import UserKey

Item = dict[str, dict[str, Any]]


def num(value: float) -> dict[str, str]:
    if isinstance(value, int):
        return {"N": str(value)}
    # Plain decimal notation: repr() may say 1e-05, which is not how we want numbers stored.
    return {"N": format(Decimal(repr(value)), "f")}


def _int(attr: dict[str, str]) -> int:
    return int(attr["N"])


def _float(attr: dict[str, str]) -> float:
    return float(attr["N"])


def _opt_float(item: Item, name: str) -> float | None:
    attr = item.get(name)
    return float(attr["N"]) if attr is not None else None


def _opt_int(item: Item, name: str) -> int | None:
    attr = item.get(name)
    return int(attr["N"]) if attr is not None else None


def _put_opt(item: Item, name: str, value: float | None) -> None:
    if value is not None:
        item[name] = num(value)


def _days(item: Item, prefix: str) -> dict[int, Any]:
    found: dict[int, Any] = {}
    cut = len(prefix)
    for name, attr in item.items():
        if name.startswith(prefix) and name[cut:].isdigit():
            value = attr["N"]
            found[int(name[cut:])] = int(value) if prefix == keys.DAY_COUNT_PREFIX else float(value)
    return found


def _put_days(item: Item, prefix: str, by_day: dict[int, Any]) -> None:
    for day, value in by_day.items():
        item[f"{prefix}{day}"] = num(value)


def encode_custom(value: CustomValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return num(value)
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, AttributeInstant):
        return num(value.epoch)
    return {"L": [{"S": element} for element in value]}


def decode_custom(attr: dict[str, Any]) -> CustomValue:
    if "S" in attr:
        return str(attr["S"])
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    if "N" in attr:
        text = attr["N"]
        return float(text) if ("." in text or "e" in text or "E" in text) else int(text)
    return [element["S"] for element in attr["L"]]


def record_sk(record: Record) -> str:
    if isinstance(record, ActivityRecord):
        return keys.ACTIVITY_SK
    if isinstance(record, AttributesRecord):
        return keys.PROFILE_SK
    if isinstance(record, PurchasesRecord):
        return keys.PURCHASES_SK
    if isinstance(record, EventRecord):
        return keys.event_sk(record.name)
    if isinstance(record, TokenRecord):
        return keys.token_sk(record.device_id)
    return keys.campaign_sk(record.campaign_id)


def encode(key: UserKey, record: Record) -> Item:
    item: Item = {keys.PK: {"S": key.pk}, keys.SK: {"S": record_sk(record)}, "v": num(record.version)}
    if isinstance(record, ActivityRecord):
        item["aid"] = {"S": record.aid}
        item["ca"] = num(record.created_at)
        item["st"] = num(record.sessions_total)
        _put_opt(item, "fs", record.first_session)
        _put_opt(item, "ls", record.last_session)
        _put_opt(item, "fa", record.first_active_day)
        _put_opt(item, "ad", record.last_api_day)
        _put_days(item, keys.DAY_COUNT_PREFIX, record.session_days)
    elif isinstance(record, AttributesRecord):
        for name, text in record.standard.items():
            item[keys.STANDARD_PREFIX + name] = {"S": text}
        for name, value in record.custom.items():
            prefix = keys.CUSTOM_INSTANT_PREFIX if isinstance(value, AttributeInstant) else keys.CUSTOM_PREFIX
            item[prefix + name] = encode_custom(value)
        if record.push_subscription is not None:
            item["ps"] = {"S": record.push_subscription}
        if record.email_subscription is not None:
            item["es"] = {"S": record.email_subscription}
        _put_opt(item, "pia", record.push_opted_in_at)
        _put_opt(item, "pua", record.push_unsubscribed_at)
    elif isinstance(record, EventRecord):
        item["t"] = num(record.total)
        _put_opt(item, "f", record.first)
        _put_opt(item, "l", record.last)
        _put_days(item, keys.DAY_COUNT_PREFIX, record.by_day)
    elif isinstance(record, PurchasesRecord):
        item["t"] = num(record.total)
        item["sp"] = num(record.spent_total)
        _put_opt(item, "f", record.first)
        _put_opt(item, "l", record.last)
        _put_days(item, keys.DAY_COUNT_PREFIX, record.count_by_day)
        _put_days(item, keys.DAY_MONEY_PREFIX, record.spent_by_day)
    elif isinstance(record, TokenRecord):
        item["pf"] = {"S": record.platform}
        item["tk"] = {"S": record.token}
        item["en"] = {"BOOL": record.enabled}
        item["ok"] = {"BOOL": record.valid}
        item["up"] = num(record.updated_at)
    else:
        item["r"] = {"BOOL": record.received}
        item["o"] = {"BOOL": record.opened}
        item["cv"] = {"BOOL": record.converted}
        item["ic"] = {"BOOL": record.in_control}
        _put_opt(item, "lr", record.last_received)
    return item


def decode(item: Item) -> Record | None:
    """The record an item holds; None for items that are not user records (aliases)."""
    sk = item[keys.SK]["S"]
    version = _int(item["v"]) if "v" in item else 0
    if sk == keys.ACTIVITY_SK:
        return ActivityRecord(
            aid=item["aid"]["S"],
            created_at=_float(item["ca"]),
            version=version,
            sessions_total=_int(item["st"]),
            first_session=_opt_float(item, "fs"),
            last_session=_opt_float(item, "ls"),
            first_active_day=_opt_int(item, "fa"),
            last_api_day=_opt_int(item, "ad"),
            session_days=_days(item, keys.DAY_COUNT_PREFIX),
        )
    if sk == keys.PROFILE_SK:
        standard: dict[str, str] = {}
        custom: dict[str, CustomValue] = {}
        for name, attr in item.items():
            if name.startswith(keys.STANDARD_PREFIX):
                standard[name[len(keys.STANDARD_PREFIX) :]] = attr["S"]
            elif name.startswith(keys.CUSTOM_PREFIX):
                custom[name[len(keys.CUSTOM_PREFIX) :]] = decode_custom(attr)
            elif name.startswith(keys.CUSTOM_INSTANT_PREFIX):
                custom[name[len(keys.CUSTOM_INSTANT_PREFIX) :]] = AttributeInstant(_float(attr))
        return AttributesRecord(
            version=version,
            standard=standard,
            custom=custom,
            push_subscription=item["ps"]["S"] if "ps" in item else None,
            email_subscription=item["es"]["S"] if "es" in item else None,
            push_opted_in_at=_opt_float(item, "pia"),
            push_unsubscribed_at=_opt_float(item, "pua"),
        )
    if sk.startswith(keys.EVENT_SK_PREFIX):
        return EventRecord(
            name=sk[len(keys.EVENT_SK_PREFIX) :],
            version=version,
            total=_int(item["t"]),
            first=_opt_float(item, "f"),
            last=_opt_float(item, "l"),
            by_day=_days(item, keys.DAY_COUNT_PREFIX),
        )
    if sk == keys.PURCHASES_SK:
        return PurchasesRecord(
            version=version,
            total=_int(item["t"]),
            spent_total=_float(item["sp"]),
            first=_opt_float(item, "f"),
            last=_opt_float(item, "l"),
            count_by_day=_days(item, keys.DAY_COUNT_PREFIX),
            spent_by_day=_days(item, keys.DAY_MONEY_PREFIX),
        )
    if sk.startswith(keys.TOKEN_SK_PREFIX):
        return TokenRecord(
            device_id=sk[len(keys.TOKEN_SK_PREFIX) :],
            platform=item["pf"]["S"],
            token=item["tk"]["S"],
            enabled=item["en"]["BOOL"],
            valid=item["ok"]["BOOL"],
            updated_at=_float(item["up"]),
            version=version,
        )
    if sk.startswith(keys.CAMPAIGN_SK_PREFIX):
        return CampaignRecord(
            campaign_id=sk[len(keys.CAMPAIGN_SK_PREFIX) :],
            version=version,
            received=item["r"]["BOOL"],
            opened=item["o"]["BOOL"],
            converted=item["cv"]["BOOL"],
            in_control=item["ic"]["BOOL"],
            last_received=_opt_float(item, "lr"),
        )
    return None
