"""The DynamoDB adapter: every read and write of both tables goes through ``Store``.

The boto3 client is created on first use (never at import time) or injected. Every call asks for
ConsumedCapacity so that the benchmark can report write units from what DynamoDB itself says.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kudos.core.records import Record, UserRecords
from kudos.core.settings import Settings
from kudos.store import keys
from kudos.store.capacity import CapacityMeter
from kudos.store.codec import Item, decode, encode, num
from kudos.store.keys import UserKey

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
TRANSACTION_LIMIT = 100


@dataclass(frozen=True, slots=True)
class DayActivity:
    """What the activity table holds for one UTC day."""

    day: int
    session_aids: list[str]  # one entry per distinct session started that day
    api_aids: list[str]
    new_user_aids: list[str]


@dataclass(frozen=True, slots=True)
class SegmentEvaluation:
    """The last time a segment's membership was computed, and its size then."""

    name: str
    at: float  # the instant the rule was evaluated at
    size: int
    evaluated_at: float  # when that was done


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: int
    dau: int
    wau: int
    mau: int
    new_users: int
    sessions: int


def _versioned_item(key: UserKey, record: Record) -> Item:
    item = encode(key, record)
    item["v"] = num(record.version + 1)
    return item


def _unchanged_since_read(record: Record) -> dict[str, Any]:
    """The condition that makes a write of ``record`` fail if another writer got there first."""
    if record.version == 0:
        return {
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": keys.PK},
        }
    return {
        "ConditionExpression": "#v = :v",
        "ExpressionAttributeNames": {"#v": "v"},
        "ExpressionAttributeValues": {":v": num(record.version)},
    }


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Store:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        self._client = client
        self._client_lock = threading.Lock()
        self.meter = CapacityMeter()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = boto3.client(
                        "dynamodb",
                        region_name=self.settings.region,
                        endpoint_url=self.settings.dynamodb_endpoint_url,
                        config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
                    )
        return self._client

    @property
    def users_table(self) -> str:
        return self.settings.users_table

    @property
    def activity_table(self) -> str:
        return self.settings.activity_table

    # ---- users table ----------------------------------------------------------------------

    def _batch_get(self, table: str, key_items: list[Item], *, consistent: bool) -> list[Item]:
        found: list[Item] = []
        for start in range(0, len(key_items), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                table: {"Keys": key_items[start : start + BATCH_GET_LIMIT], "ConsistentRead": consistent}
            }
            while request:
                response = self.client.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
                self.meter.read(response.get("ConsumedCapacity"))
                found.extend(response.get("Responses", {}).get(table, []))
                request = response.get("UnprocessedKeys") or {}
        return found

    def get_records(self, wanted: Iterable[tuple[UserKey, str]]) -> dict[tuple[UserKey, str], Record]:
        """The records at (user, sort key), read strongly consistent: callers write them back."""
        by_pk = {}
        key_items = []
        for user, sk in dict.fromkeys(wanted):
            by_pk[user.pk] = user
            key_items.append({keys.PK: {"S": user.pk}, keys.SK: {"S": sk}})
        records: dict[tuple[UserKey, str], Record] = {}
        for item in self._batch_get(self.users_table, key_items, consistent=True):
            record = decode(item)
            if record is not None:
                records[(by_pk[item[keys.PK]["S"]], item[keys.SK]["S"])] = record
        return records

    def resolve_devices(self, device_ids: Iterable[str]) -> dict[str, UserKey]:
        """Devices already merged into an identified user by /v1/users/identify."""
        key_items = [
            {keys.PK: {"S": keys.alias_pk(d)}, keys.SK: {"S": keys.ALIAS_SK}}
            for d in dict.fromkeys(device_ids)
        ]
        resolved = {}
        for item in self._batch_get(self.users_table, key_items, consistent=False):
            device_id = item[keys.PK]["S"].removeprefix(keys.ALIAS_PREFIX).removeprefix("d:")
            resolved[device_id] = UserKey.parse(item["to"]["S"])
        return resolved

    def put_alias(self, device_id: str, target: UserKey) -> None:
        """Send the device's later data to `target`, and note the device in `target`'s partition
        so that deleting the user deletes the alias too."""
        alias = {
            keys.PK: {"S": keys.alias_pk(device_id)},
            keys.SK: {"S": keys.ALIAS_SK},
            "to": {"S": target.token},
        }
        merged = {keys.PK: {"S": target.pk}, keys.SK: {"S": keys.merged_device_sk(device_id)}}
        self._batch_write(self.users_table, [{"PutRequest": {"Item": item}} for item in (alias, merged)])

    def alias_target(self, device_id: str) -> UserKey | None:
        return self.resolve_devices([device_id]).get(device_id)

    def claim_device(self, device_id: str, owner: UserKey) -> UserKey | None:
        """Make `owner` the user whose push token `device_id` holds; the previous owner, if another."""
        response = self.client.put_item(
            TableName=self.users_table,
            Item={
                keys.PK: {"S": keys.device_pk(device_id)},
                keys.SK: {"S": keys.OWNER_SK},
                "to": {"S": owner.token},
            },
            ReturnValues="ALL_OLD",
            ReturnConsumedCapacity="TOTAL",
        )
        self.meter.wrote(response.get("ConsumedCapacity"))
        previous = response.get("Attributes", {}).get("to", {}).get("S")
        return None if previous is None or previous == owner.token else UserKey.parse(previous)

    def device_owner(self, device_id: str) -> UserKey | None:
        """The user who registered the device's push token last (POST /v1/push/tokens)."""
        key = {keys.PK: {"S": keys.device_pk(device_id)}, keys.SK: {"S": keys.OWNER_SK}}
        found = self._batch_get(self.users_table, [key], consistent=False)
        return UserKey.parse(found[0]["to"]["S"]) if found else None

    def delete_record(self, key: UserKey, sk: str) -> None:
        response = self.client.delete_item(
            TableName=self.users_table,
            Key={keys.PK: {"S": key.pk}, keys.SK: {"S": sk}},
            ReturnConsumedCapacity="TOTAL",
        )
        self.meter.wrote(response.get("ConsumedCapacity"))

    def _delete_pointer(self, pk: str, sk: str, only_to: UserKey | None) -> bool:
        request: dict[str, Any] = {
            "TableName": self.users_table,
            "Key": {keys.PK: {"S": pk}, keys.SK: {"S": sk}},
            "ReturnValues": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
        }
        if only_to is not None:
            request["ConditionExpression"] = "#to = :to"
            request["ExpressionAttributeNames"] = {"#to": "to"}
            request["ExpressionAttributeValues"] = {":to": {"S": only_to.token}}
        try:
            response = self.client.delete_item(**request)
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        self.meter.wrote(response.get("ConsumedCapacity"))
        return bool(response.get("Attributes"))

    def delete_alias(self, device_id: str, *, only_to: UserKey | None = None) -> bool:
        """Forget where the device was merged; with `only_to`, only if it still points there (the
        device may have been identified as another user since)."""
        return self._delete_pointer(keys.alias_pk(device_id), keys.ALIAS_SK, only_to)

    def _partition_items(self, pk: str) -> list[Item]:
        items: list[Item] = []
        request: dict[str, Any] = {
            "TableName": self.users_table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": keys.PK},
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
            "ReturnConsumedCapacity": "TOTAL",
        }
        while True:
            response = self.client.query(**request)
            self.meter.read(response.get("ConsumedCapacity"))
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def load_user(self, key: UserKey) -> UserRecords:
        """Every record of one user, in one Query."""
        user = UserRecords(key)
        for item in self._partition_items(key.pk):
            record = decode(item)
            if record is not None:
                user.add(record)
        return user

    def save(self, key: UserKey, record: Record) -> bool:
        """Write ``record`` if nobody changed it since it was read at ``record.version``.

        Returns False on a conflict (the caller re-reads and retries); on success the record's
        version is the one now stored.
        """
        request: dict[str, Any] = {
            "TableName": self.users_table,
            "Item": _versioned_item(key, record),
            "ReturnConsumedCapacity": "TOTAL",
            **_unchanged_since_read(record),
        }
        try:
            response = self.client.put_item(**request)
        except ClientError as error:
            if _is_conditional_failure(error):
                self.meter.failed_condition(request["Item"])
                return False
            raise
        self.meter.wrote(response.get("ConsumedCapacity"))
        record.version += 1
        return True

    def replace_user(self, key: UserKey, records: list[Record], deletions: list[tuple[UserKey, str]]) -> bool:
        """Write ``records`` under ``key`` and delete ``deletions`` atomically (identify's merge).

        False when any record changed since it was read. A merge that needs more than one
        transaction's worth of items is written in order: records first, deletions last.
        """
        operations: list[dict[str, Any]] = []
        for record in records:
            put = {
                "TableName": self.users_table,
                "Item": _versioned_item(key, record),
                **_unchanged_since_read(record),
            }
            operations.append({"Put": put})
        for user, sk in deletions:
            operations.append(
                {
                    "Delete": {
                        "TableName": self.users_table,
                        "Key": {keys.PK: {"S": user.pk}, keys.SK: {"S": sk}},
                    }
                }
            )
        try:
            for start in range(0, len(operations), TRANSACTION_LIMIT):
                chunk = operations[start : start + TRANSACTION_LIMIT]
                response = self.client.transact_write_items(
                    TransactItems=chunk, ReturnConsumedCapacity="TOTAL"
                )
                self.meter.transaction(
                    response.get("ConsumedCapacity"), [op["Put"]["Item"] for op in chunk if "Put" in op]
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise
        for record in records:
            record.version += 1
        return True

    def delete_user(self, key: UserKey) -> int:
        """Delete every item of the user's partition, and the aliases of devices merged into it and
        push-token owners that still point at it; the number of items deleted."""
        items = self._partition_items(key.pk)
        requests = [
            {"DeleteRequest": {"Key": {keys.PK: item[keys.PK], keys.SK: item[keys.SK]}}} for item in items
        ]
        self._batch_write(self.users_table, requests)
        for item in items:
            sk = item[keys.SK]["S"]
            if sk.startswith(keys.MERGED_DEVICE_SK_PREFIX):
                self.delete_alias(sk.removeprefix(keys.MERGED_DEVICE_SK_PREFIX), only_to=key)
            elif sk.startswith(keys.TOKEN_SK_PREFIX):
                device_id = sk.removeprefix(keys.TOKEN_SK_PREFIX)
                self._delete_pointer(keys.device_pk(device_id), keys.OWNER_SK, only_to=key)
        return len(items)

    def _batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {table: requests[start : start + BATCH_WRITE_LIMIT]}
            while pending:
                response = self.client.batch_write_item(RequestItems=pending, ReturnConsumedCapacity="TOTAL")
                self.meter.wrote(response.get("ConsumedCapacity"))
                pending = response.get("UnprocessedItems") or {}

    def scan_users(self, segment: int = 0, total_segments: int = 1) -> Iterator[UserRecords]:
        """Every user, each with all its records.

        DynamoDB stores an item collection (one partition key) together and a Scan returns it in
        one run, so consecutive items with the same key make one user.
        """
        request: dict[str, Any] = {
            "TableName": self.users_table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "ReturnConsumedCapacity": "TOTAL",
        }
        current: UserRecords | None = None
        while True:
            response = self.client.scan(**request)
            self.meter.read(response.get("ConsumedCapacity"))
            for item in response.get("Items", []):
                pk = item[keys.PK]["S"]
                if not pk.startswith(keys.USER_PREFIX):
                    continue
                if current is None or current.key.pk != pk:
                    if current is not None and current.exists:
                        yield current
                    current = UserRecords(keys.user_pk_to_key(pk))
                record = decode(item)
                if record is not None:
                    current.add(record)
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        if current is not None and current.exists:
            yield current

    # ---- activity table -------------------------------------------------------------------

    def _activity_put(self, item: Item, condition: str | None = None) -> Item | None:
        """Put into the activity table; on a failed condition, the item that was there."""
        request: dict[str, Any] = {
            "TableName": self.activity_table,
            "Item": item,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if condition:
            request["ConditionExpression"] = condition
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self.client.put_item(**request)
        except ClientError as error:
            if _is_conditional_failure(error):
                existing = cast(Item, error.response.get("Item") or {})
                self.meter.failed_condition(item, existing)
                return existing
            raise
        self.meter.wrote(response.get("ConsumedCapacity"))
        return None

    def _session_key(self, day: int, session_id: str) -> Item:
        shard = keys.shard_of(session_id, self.settings.day_shards)
        return {keys.PK: {"S": keys.day_pk(day, shard)}, keys.SK: {"S": keys.session_sk(session_id)}}

    def insert_session(
        self, day: int, session_id: str, aid: str, started: float, ended: float | None, expires: int
    ) -> Item | None:
        """Record a session once. None when it is new; the stored item when it was seen before."""
        item = self._session_key(day, session_id)
        item.update({"a": {"S": aid}, "t": num(started), keys.TTL_ATTRIBUTE: num(expires)})
        if ended is not None:
            item["e"] = num(ended)
        return self._activity_put(item, f"attribute_not_exists({keys.PK})")

    def get_session(self, day: int, session_id: str) -> Item | None:
        return self.find_sessions([(day, session_id)]).get((day, session_id))

    def find_sessions(self, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Item]:
        """The stored session items among (day, session_id), read eventually consistent (half
        the price): a copy whose correction differs comes in a later upload, not the same second."""
        key_items = [self._session_key(day, session_id) for day, session_id in dict.fromkeys(wanted)]
        found = self._batch_get(self.activity_table, key_items, consistent=False)
        return {keys.parse_session_key(item): item for item in found}

    def update_session(
        self, day: int, session_id: str, *, ended: float | None = None, aid: str | None = None
    ) -> None:
        """Add an ``ended_at`` a later upload brought, or re-point a session at its profile's aid."""
        names, values, sets = {}, {}, []
        if ended is not None:
            names["#e"], values[":e"] = "e", num(ended)
            sets.append("#e = :e")
        if aid is not None:
            names["#a"], values[":a"] = "a", {"S": aid}
            sets.append("#a = :a")
        if not sets:
            return
        response = self.client.update_item(
            TableName=self.activity_table,
            Key=self._session_key(day, session_id),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnConsumedCapacity="TOTAL",
        )
        self.meter.wrote(response.get("ConsumedCapacity"))

    def _marker_key(self, day: int, sk: str, aid: str) -> Item:
        shard = keys.shard_of(aid, self.settings.day_shards)
        return {keys.PK: {"S": keys.day_pk(day, shard)}, keys.SK: {"S": sk}}

    def mark_api_active(self, day: int, aid: str, expires: int) -> None:
        item = self._marker_key(day, keys.api_active_sk(aid), aid)
        item[keys.TTL_ATTRIBUTE] = num(expires)
        self._activity_put(item)

    def add_new_user(self, day: int, aid: str, expires: int) -> None:
        item = self._marker_key(day, keys.new_user_sk(aid), aid)
        item[keys.TTL_ATTRIBUTE] = num(expires)
        self._activity_put(item)

    def remove_new_user(self, day: int, aid: str) -> None:
        response = self.client.delete_item(
            TableName=self.activity_table,
            Key=self._marker_key(day, keys.new_user_sk(aid), aid),
            ReturnConsumedCapacity="TOTAL",
        )
        self.meter.wrote(response.get("ConsumedCapacity"))

    def read_day(self, day: int) -> DayActivity:
        """Everything recorded for one day, across its shards."""
        sessions: list[str] = []
        api: list[str] = []
        new: list[str] = []
        for shard in range(self.settings.day_shards):
            request: dict[str, Any] = {
                "TableName": self.activity_table,
                "KeyConditionExpression": "#pk = :pk",
                "ProjectionExpression": "#sk, #a",
                "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK, "#a": "a"},
                "ExpressionAttributeValues": {":pk": {"S": keys.day_pk(day, shard)}},
                "ReturnConsumedCapacity": "TOTAL",
            }
            while True:
                response = self.client.query(**request)
                self.meter.read(response.get("ConsumedCapacity"))
                for item in response.get("Items", []):
                    sk = item[keys.SK]["S"]
                    if sk.startswith(keys.SESSION_SK_PREFIX):
                        sessions.append(item["a"]["S"])
                    elif sk.startswith(keys.API_ACTIVE_SK_PREFIX):
                        api.append(sk[len(keys.API_ACTIVE_SK_PREFIX) :])
                    elif sk.startswith(keys.NEW_USER_SK_PREFIX):
                        new.append(sk[len(keys.NEW_USER_SK_PREFIX) :])
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return DayActivity(day, sessions, api, new)

    def get_rollups(self, days: Iterable[int]) -> dict[int, DayFigures]:
        key_items = [{keys.PK: {"S": keys.rollup_pk(day)}, keys.SK: {"S": "R"}} for day in days]
        figures = {}
        for item in self._batch_get(self.activity_table, key_items, consistent=False):
            day = int(item[keys.PK]["S"].removeprefix(keys.ROLLUP_PREFIX))
            figures[day] = DayFigures(
                day=day,
                **{name: int(item[name]["N"]) for name in ("dau", "wau", "mau", "new_users", "sessions")},
            )
        return figures

    def put_rollup(self, figures: DayFigures) -> None:
        item: Item = {keys.PK: {"S": keys.rollup_pk(figures.day)}, keys.SK: {"S": "R"}}
        for name in ("dau", "wau", "mau", "new_users", "sessions"):
            item[name] = num(getattr(figures, name))
        self._activity_put(item)

    def record_segment_evaluation(self, evaluation: SegmentEvaluation) -> None:
        item: Item = {
            keys.PK: {"S": keys.segment_pk(evaluation.name)},
            keys.SK: {"S": keys.LAST_EVALUATION_SK},
            "at": num(evaluation.at),
            "size": num(evaluation.size),
            "done": num(evaluation.evaluated_at),
        }
        self._activity_put(item)

    def segment_evaluations(self, names: Iterable[str]) -> dict[str, SegmentEvaluation]:
        key_items = [
            {keys.PK: {"S": keys.segment_pk(name)}, keys.SK: {"S": keys.LAST_EVALUATION_SK}} for name in names
        ]
        found = {}
        for item in self._batch_get(self.activity_table, key_items, consistent=False):
            name = item[keys.PK]["S"].removeprefix(keys.SEGMENT_PREFIX)
            found[name] = SegmentEvaluation(
                name, float(item["at"]["N"]), int(item["size"]["N"]), float(item["done"]["N"])
            )
        return found

    def put_push_event(self, day: int, event_id: str, attributes: dict[str, Any], expires: int) -> None:
        shard = keys.shard_of(event_id, self.settings.day_shards)
        item: Item = {
            keys.PK: {"S": keys.push_event_pk(day, shard)},
            keys.SK: {"S": event_id},
            keys.TTL_ATTRIBUTE: num(expires),
        }
        for name, value in attributes.items():
            if value is not None:
                item[name] = num(value) if isinstance(value, int | float) else {"S": str(value)}
        self._activity_put(item)


__all__ = ["CapacityMeter", "DayActivity", "DayFigures", "SegmentEvaluation", "Store"]
