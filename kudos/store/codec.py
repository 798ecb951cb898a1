"""Records to low-level DynamoDB items and back: one registered codec entry per record kind.

Hand-written rather than boto3's TypeSerializer: the segment sweep deserializes every user's
items, and knowing each attribute's type makes that several times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any, Generic, TypeVar

from kudos.core.identity import UserAlias, UserKey
from kudos.core.profile import AttributeInstant, CustomValue
from kudos.core.records import (
    ActivityRecord,
    AttributesRecord,
    CampaignRecord,
    DeviceAttributesRecord,
    DueRecord,
    EventRecord,
    MembershipRecord,
    MergedAliasRecord,
    MergedDeviceRecord,
    PurchasesRecord,
    Record,
    RecordKind,
    SendRecord,
    TokenRecord,
)
from kudos.store import keys
from kudos.store.capacity import item_size

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


# Day series are one string each, dense from the first day: "20412|3,0,1" = 3 sessions on day 20412,
# none on 20413, one on 20414. Two bytes a day keeps the hot item small (a write is billed by the
# whole item), and decoding is one split instead of a scan of every attribute name.
_SERIES_SEPARATOR = "|"
_nonzero = itemgetter(1)


def _encode_counts(by_day: dict[int, int]) -> dict[str, str]:
    if not by_day:
        return {"S": ""}
    first, last = min(by_day), max(by_day)
    counts = ",".join(str(by_day.get(day, 0)) for day in range(first, last + 1))
    return {"S": f"{first}{_SERIES_SEPARATOR}{counts}"}


def _decode_counts(attr: dict[str, str] | None) -> dict[int, int]:
    if not attr or not attr["S"]:
        return {}
    first, _, text = attr["S"].partition(_SERIES_SEPARATOR)
    counts = text.split(",")
    base = int(first)
    # zip/map/filter rather than a comprehension: the sweep decodes a series per user per scan.
    return dict(filter(_nonzero, zip(range(base, base + len(counts)), map(int, counts), strict=True)))


def _encode_amounts(by_day: dict[int, float]) -> dict[str, str]:
    """Money per day, sparse (purchases are rare): "20412:9.99,20415:4.5"."""
    return {
        "S": ",".join(f"{day}:{format(Decimal(repr(amount)), 'f')}" for day, amount in sorted(by_day.items()))
    }


def _decode_amounts(attr: dict[str, str] | None) -> dict[int, float]:
    if not attr or not attr["S"]:
        return {}
    pairs = (entry.partition(":") for entry in attr["S"].split(","))
    return {int(day): float(amount) for day, _, amount in pairs}


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


R = TypeVar("R", bound=Record)


@dataclass(frozen=True, slots=True)
class RecordCodec(Generic[R]):
    """How one record kind is stored: its attributes beside the key, and back.

    ``read`` gets the item, the record's name (the event name, device or campaign id; "" for
    kinds a user has one of) and its version.
    """

    kind: RecordKind
    record_type: type[R]
    write: Callable[[R, Item], None]
    read: Callable[[Item, str, int], R]


def _write_activity(record: ActivityRecord, item: Item) -> None:
    item["aid"] = {"S": record.aid}
    item["ca"] = num(record.created_at)
    item["st"] = num(record.sessions_total)
    _put_opt(item, "fs", record.first_session)
    _put_opt(item, "ls", record.last_session)
    _put_opt(item, "fa", record.first_active_day)
    _put_opt(item, "ad", record.last_api_day)
    item["sd"] = _encode_counts(record.session_days)
    if record.counted:
        item["rc"] = {"S": _encode_counted(record.counted)}


def _read_activity(item: Item, _: str, version: int) -> ActivityRecord:
    return ActivityRecord(
        aid=item["aid"]["S"],
        created_at=_float(item["ca"]),
        version=version,
        sessions_total=_int(item["st"]),
        first_session=_opt_float(item, "fs"),
        last_session=_opt_float(item, "ls"),
        first_active_day=_opt_int(item, "fa"),
        last_api_day=_opt_int(item, "ad"),
        session_days=_decode_counts(item.get("sd")),
        counted=_decode_counted(item["rc"]["S"]) if "rc" in item else {},
    )


_MARK_LENGTH = 4  # kudos.ingest.sessions.counted_mark


def _encode_counted(counted: dict[str, int]) -> str:
    """``"491234:h1h2h3;491235:h4"``: the hashes (4 characters each, no separator) counted in each
    hour (hours since the epoch). A few bytes a session: the record is billed per started KB."""
    by_hour: dict[int, list[str]] = {}
    for mark, hour in counted.items():
        by_hour.setdefault(hour, []).append(mark)
    return ";".join(f"{hour}:{''.join(sorted(marks))}" for hour, marks in sorted(by_hour.items()))


def _decode_counted(text: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for group in filter(None, text.split(";")):
        hour, _, marks = group.partition(":")
        for start in range(0, len(marks), _MARK_LENGTH):
            counted[marks[start : start + _MARK_LENGTH]] = int(hour)
    return counted


def _write_attributes(record: AttributesRecord, item: Item) -> None:
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
    _put_opt(item, "psa", record.push_subscribed_at)
    _put_opt(item, "ssa", record.standard_set_at)
    if record.standard_times:
        item["sst"] = _encode_times(record.standard_times)


def _read_attributes(item: Item, _: str, version: int) -> AttributesRecord:
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
        push_subscribed_at=_opt_float(item, "psa"),
        standard_set_at=_opt_float(item, "ssa"),
        standard_times=_decode_times(item.get("sst")),
    )


def _encode_times(times: dict[str, float]) -> dict[str, str]:
    """Instants by attribute name (names of SESSION_REPORTED: no ':' or ','): "country:1763803800"."""
    return {"S": ",".join(f"{name}:{format(Decimal(repr(at)), 'f')}" for name, at in sorted(times.items()))}


def _decode_times(attr: dict[str, str] | None) -> dict[str, float]:
    if not attr or not attr["S"]:
        return {}
    pairs = (entry.partition(":") for entry in attr["S"].split(","))
    return {name: float(at) for name, _, at in pairs}


def _write_device_attributes(record: DeviceAttributesRecord, item: Item) -> None:
    for name, text in record.values.items():
        item[keys.STANDARD_PREFIX + name] = {"S": text}
    item["ra"] = _encode_times(record.reported_at)


def _read_device_attributes(item: Item, _: str, version: int) -> DeviceAttributesRecord:
    values = {
        name[len(keys.STANDARD_PREFIX) :]: attr["S"]
        for name, attr in item.items()
        if name.startswith(keys.STANDARD_PREFIX)
    }
    return DeviceAttributesRecord(version=version, values=values, reported_at=_decode_times(item.get("ra")))


def _write_event(record: EventRecord, item: Item) -> None:
    item["t"] = num(record.total)
    _put_opt(item, "f", record.first)
    _put_opt(item, "l", record.last)
    item["ed"] = _encode_counts(record.by_day)


def _read_event(item: Item, name: str, version: int) -> EventRecord:
    return EventRecord(
        name=name,
        version=version,
        total=_int(item["t"]),
        first=_opt_float(item, "f"),
        last=_opt_float(item, "l"),
        by_day=_decode_counts(item.get("ed")),
    )


def _write_purchases(record: PurchasesRecord, item: Item) -> None:
    item["t"] = num(record.total)
    item["sp"] = num(record.spent_total)
    _put_opt(item, "f", record.first)
    _put_opt(item, "l", record.last)
    item["pd"] = _encode_counts(record.count_by_day)
    item["pm"] = _encode_amounts(record.spent_by_day)


def _read_purchases(item: Item, _: str, version: int) -> PurchasesRecord:
    return PurchasesRecord(
        version=version,
        total=_int(item["t"]),
        spent_total=_float(item["sp"]),
        first=_opt_float(item, "f"),
        last=_opt_float(item, "l"),
        count_by_day=_decode_counts(item.get("pd")),
        spent_by_day=_decode_amounts(item.get("pm")),
    )


def _write_token(record: TokenRecord, item: Item) -> None:
    item["pf"] = {"S": record.platform}
    item["tk"] = {"S": record.token}
    item["en"] = {"BOOL": record.enabled}
    item["ok"] = {"BOOL": record.valid}
    item["up"] = num(record.updated_at)
    if record.endpoint is not None:
        item["ep"] = {"S": record.endpoint}


def _read_token(item: Item, device_id: str, version: int) -> TokenRecord:
    return TokenRecord(
        device_id=device_id,
        platform=item["pf"]["S"],
        token=item["tk"]["S"],
        enabled=item["en"]["BOOL"],
        valid=item["ok"]["BOOL"],
        updated_at=_float(item["up"]),
        version=version,
        endpoint=item["ep"]["S"] if "ep" in item else None,
    )


def _write_campaign(record: CampaignRecord, item: Item) -> None:
    item["r"] = {"BOOL": record.received}
    item["o"] = {"BOOL": record.opened}
    item["cv"] = {"BOOL": record.converted}
    item["ic"] = {"BOOL": record.in_control}
    _put_opt(item, "lr", record.last_received)
    # Written only when there is something: most campaign items stay as small as they were.
    _put_opt(item, "lo", record.last_opened)
    if record.open_days:
        item["od"] = _encode_counts(record.open_days)
    if record.receive_days:
        item["rd"] = _encode_counts(record.receive_days)
    if record.counted:
        # Push ids are any text the push events carried: a list, not a joined string.
        item["cp"] = {"L": [{"S": mark} for mark in record.counted]}


def _read_campaign(item: Item, campaign_id: str, version: int) -> CampaignRecord:
    counted = item.get("cp")
    return CampaignRecord(
        campaign_id=campaign_id,
        version=version,
        received=item["r"]["BOOL"],
        opened=item["o"]["BOOL"],
        converted=item["cv"]["BOOL"],
        in_control=item["ic"]["BOOL"],
        last_received=_opt_float(item, "lr"),
        last_opened=_opt_float(item, "lo"),
        open_days=_decode_counts(item.get("od")),
        receive_days=_decode_counts(item.get("rd")),
        counted=[mark["S"] for mark in counted["L"]] if counted else [],
    )


def _write_merged_device(_: MergedDeviceRecord, __: Item) -> None:
    """The key says it all."""


def _read_merged_device(_: Item, device_id: str, version: int) -> MergedDeviceRecord:
    return MergedDeviceRecord(device_id, version)


def _write_merged_alias(_: MergedAliasRecord, __: Item) -> None:
    """The key says it all."""


def _read_merged_alias(_: Item, text: str, version: int) -> MergedAliasRecord:
    return MergedAliasRecord(UserAlias.parse(text), version)


def _user_token(item: Item) -> str:
    return keys.user_of_pk(item[keys.PK]["S"]).token


def _write_membership(record: MembershipRecord, item: Item) -> None:
    item["df"] = {"S": record.definition}
    item["since"] = num(record.since)
    item[keys.MEMBERS_PK] = {"S": keys.members_pk(record.segment)}
    item[keys.MEMBERS_SK] = {"S": _user_token(item)}


def _read_membership(item: Item, segment: str, version: int) -> MembershipRecord:
    return MembershipRecord(segment, item["df"]["S"], _float(item["since"]), version)


def _write_due(record: DueRecord, item: Item) -> None:
    item["due"] = num(record.due)
    item[keys.DUE_PK] = {"S": keys.due_pk(keys.due_bucket(record.due))}
    item[keys.DUE_SK_ATTRIBUTE] = {"S": _user_token(item)}


def _read_due(item: Item, _: str, version: int) -> DueRecord:
    return DueRecord(_float(item["due"]), version)


def _opt_str(item: Item, name: str) -> str | None:
    attr = item.get(name)
    return attr["S"] if attr is not None else None


def _write_send(record: SendRecord, item: Item) -> None:
    item["cp"] = {"S": record.campaign}
    item["tg"] = {"S": record.trigger}
    item["ta"] = num(record.triggered_at)
    item["st"] = {"S": record.status}
    for name, text in (("rs", record.reason), ("ti", record.title), ("bd", record.body)):
        if text is not None:
            item[name] = {"S": text}
    _put_opt(item, "sa", record.sent_at)
    _put_opt(item, "pa", record.pending_at)
    _put_opt(item, "iu", record.influence_until)
    _put_opt(item, "da", record.delivered_at)
    _put_opt(item, "oa", record.opened_at)
    _put_opt(item, "ca", record.converted_at)
    _put_opt(item, "xa", record.opted_out_at)
    if record.direct_open:
        item["do"] = {"BOOL": True}
    item[keys.SENDS_PK] = {"S": keys.sends_pk(record.campaign)}
    item[keys.SENDS_SK] = {"S": keys.sends_sk(record.triggered_at, record.send_id)}
    if record.pending and record.pending_at is not None:
        item[keys.PENDING_PK] = {"S": keys.pending_pk(record.send_id)}
        item[keys.PENDING_SK] = {"S": keys.sends_sk(record.pending_at, record.send_id)}


def _read_send(item: Item, send_id: str, version: int) -> SendRecord:
    return SendRecord(
        send_id=send_id,
        campaign=item["cp"]["S"],
        trigger=item["tg"]["S"],  # written from TriggerKind
        triggered_at=_float(item["ta"]),
        status=item["st"]["S"],  # written from SendStatus
        reason=_opt_str(item, "rs"),
        sent_at=_opt_float(item, "sa"),
        pending_at=_opt_float(item, "pa"),
        title=_opt_str(item, "ti"),
        body=_opt_str(item, "bd"),
        version=version,
        influence_until=_opt_float(item, "iu"),
        delivered_at=_opt_float(item, "da"),
        opened_at=_opt_float(item, "oa"),
        direct_open="do" in item,
        converted_at=_opt_float(item, "ca"),
        opted_out_at=_opt_float(item, "xa"),
    )


_REGISTERED: tuple[RecordCodec[Any], ...] = (
    RecordCodec(RecordKind.ACTIVITY, ActivityRecord, _write_activity, _read_activity),
    RecordCodec(RecordKind.ATTRIBUTES, AttributesRecord, _write_attributes, _read_attributes),
    RecordCodec(RecordKind.EVENT, EventRecord, _write_event, _read_event),
    RecordCodec(RecordKind.PURCHASES, PurchasesRecord, _write_purchases, _read_purchases),
    RecordCodec(RecordKind.TOKEN, TokenRecord, _write_token, _read_token),
    RecordCodec(RecordKind.CAMPAIGN, CampaignRecord, _write_campaign, _read_campaign),
    RecordCodec(RecordKind.MERGED_DEVICE, MergedDeviceRecord, _write_merged_device, _read_merged_device),
    RecordCodec(RecordKind.MERGED_ALIAS, MergedAliasRecord, _write_merged_alias, _read_merged_alias),
    RecordCodec(RecordKind.MEMBERSHIP, MembershipRecord, _write_membership, _read_membership),
    RecordCodec(RecordKind.DUE, DueRecord, _write_due, _read_due),
    RecordCodec(
        RecordKind.DEVICE_ATTRIBUTES,
        DeviceAttributesRecord,
        _write_device_attributes,
        _read_device_attributes,
    ),
    RecordCodec(RecordKind.SEND, SendRecord, _write_send, _read_send),
)
CODECS: dict[RecordKind, RecordCodec[Any]] = {codec.kind: codec for codec in _REGISTERED}
assert set(CODECS) == set(RecordKind), "every record kind has a codec"


def encode(user: UserKey, record: Record) -> Item:
    key = record.key
    item: Item = {
        keys.PK: {"S": keys.user_pk(user)},
        keys.SK: {"S": keys.record_sk(key)},
        "v": num(record.version),
    }
    CODECS[key.kind].write(record, item)
    return item


def stored_size(user: UserKey, record: Record) -> int:
    """Bytes of ``record`` as DynamoDB counts them against its 400 KB item limit."""
    return item_size(encode(user, record))


def decode(item: Item) -> Record:
    """The record a user item holds; keys.UnknownRecordError for a kind this code does not know."""
    key = keys.record_key_of_sk(item[keys.SK]["S"])
    version = _int(item["v"]) if "v" in item else 0
    record: Record = CODECS[key.kind].read(item, key.name, version)
    return record
