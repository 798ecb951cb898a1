"""The users table on DynamoDB: one partition per user holding its records, plus the pointers that
send a device's data to a user (identify's aliases and push-token owners)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from kudos.core.identity import UserKey
from kudos.core.records import MergedDeviceRecord, Record, RecordKey, UserRecords
from kudos.store import keys
from kudos.store.codec import Item, decode, encode, num
from kudos.store.ports import Slot
from kudos.store.tables import TRANSACTION_LIMIT, DynamoTables


def _key_item(user: UserKey, key: RecordKey) -> Item:
    return {keys.PK: {"S": keys.user_pk(user)}, keys.SK: {"S": keys.record_sk(key)}}


def _versioned_item(user: UserKey, record: Record) -> Item:
    item = encode(user, record)
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


def _pointing_to(target: UserKey | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return {
        "ConditionExpression": "#to = :to",
        "ExpressionAttributeNames": {"#to": "to"},
        "ExpressionAttributeValues": {":to": {"S": target.token}},
    }


def _records_of(user: UserKey, items: Iterable[Item]) -> UserRecords:
    records = UserRecords(user)
    for item in items:
        records.add(decode(item))
    return records


class DynamoUserRecords:
    def __init__(self, tables: DynamoTables) -> None:
        self._tables = tables

    @property
    def _table(self) -> str:
        return self._tables.users_table

    def get_records(self, wanted: Iterable[Slot]) -> dict[Slot, Record]:
        by_pk: dict[str, UserKey] = {}
        key_items = []
        for user, key in dict.fromkeys(wanted):
            by_pk[keys.user_pk(user)] = user
            key_items.append(_key_item(user, key))
        records: dict[Slot, Record] = {}
        for item in self._tables.batch_get(self._table, key_items, consistent=True):
            record = decode(item)
            records[(by_pk[item[keys.PK]["S"]], record.key)] = record
        return records

    def save(self, user: UserKey, record: Record) -> bool:
        item = _versioned_item(user, record)
        if self._tables.put(self._table, item, _unchanged_since_read(record)) is not None:
            return False
        record.version += 1
        return True

    def replace_user(self, user: UserKey, records: list[Record], deletions: list[Slot]) -> bool:
        """A merge that needs more than one transaction's worth of items is written in order:
        records first, deletions last."""
        operations: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _versioned_item(user, record),
                    **_unchanged_since_read(record),
                }
            }
            for record in records
        ]
        operations += [
            {"Delete": {"TableName": self._table, "Key": _key_item(owner, key)}} for owner, key in deletions
        ]
        client = self._tables.client
        try:
            for start in range(0, len(operations), TRANSACTION_LIMIT):
                chunk = operations[start : start + TRANSACTION_LIMIT]
                response = client.transact_write_items(TransactItems=chunk, ReturnConsumedCapacity="TOTAL")
                self._tables.meter.transaction(
                    response.get("ConsumedCapacity"), [op["Put"]["Item"] for op in chunk if "Put" in op]
                )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise
        for record in records:
            record.version += 1
        return True

    def delete_record(self, user: UserKey, key: RecordKey) -> None:
        self._tables.delete(self._table, _key_item(user, key))

    def load_user(self, user: UserKey) -> UserRecords:
        return _records_of(
            user, self._tables.query_partition(self._table, keys.user_pk(user), consistent=True)
        )

    def delete_user(self, user: UserKey) -> UserRecords:
        items = self._tables.query_partition(self._table, keys.user_pk(user), consistent=True)
        requests = [
            {"DeleteRequest": {"Key": {keys.PK: item[keys.PK], keys.SK: item[keys.SK]}}} for item in items
        ]
        self._tables.batch_write(self._table, requests)
        return _records_of(user, items)

    def scan_users(self, segment: int = 0, total_segments: int = 1) -> Iterator[UserRecords]:
        """DynamoDB stores an item collection (one partition key) together and a Scan returns it in
        one run, so consecutive items with the same key make one user."""
        request = {"TableName": self._table, "Segment": segment, "TotalSegments": total_segments}
        current: UserRecords | None = None
        current_pk = ""
        for page in self._tables.pages(self._tables.client.scan, request):
            for item in page:
                pk = item[keys.PK]["S"]
                if not keys.is_user_pk(pk):
                    continue  # a pointer (alias, token owner), not a user's record
                if pk != current_pk:
                    if current is not None and current.exists:
                        yield current
                    current, current_pk = UserRecords(keys.user_of_pk(pk)), pk
                assert current is not None
                current.add(decode(item))
        if current is not None and current.exists:
            yield current


class DynamoPointers:
    def __init__(self, tables: DynamoTables) -> None:
        self._tables = tables

    @property
    def _table(self) -> str:
        return self._tables.users_table

    def _targets(self, pointers: dict[str, str], sk: str) -> dict[str, UserKey]:
        """The user each pointer item ({pk: device_id}, all with sort key ``sk``) points to, by device."""
        key_items = [{keys.PK: {"S": pk}, keys.SK: {"S": sk}} for pk in pointers]
        found = self._tables.batch_get(self._table, key_items, consistent=False)
        return {pointers[item[keys.PK]["S"]]: UserKey.parse(item["to"]["S"]) for item in found}

    def resolve_devices(self, device_ids: Iterable[str]) -> dict[str, UserKey]:
        aliases = {keys.alias_pk(device): device for device in dict.fromkeys(device_ids)}
        return self._targets(aliases, keys.ALIAS_SK)

    def put_alias(self, device_id: str, target: UserKey) -> None:
        alias = {
            keys.PK: {"S": keys.alias_pk(device_id)},
            keys.SK: {"S": keys.ALIAS_SK},
            "to": {"S": target.token},
        }
        merged = encode(target, MergedDeviceRecord(device_id))
        self._tables.batch_write(self._table, [{"PutRequest": {"Item": item}} for item in (alias, merged)])

    def delete_alias(self, device_id: str, *, only_to: UserKey | None = None) -> bool:
        key = {keys.PK: {"S": keys.alias_pk(device_id)}, keys.SK: {"S": keys.ALIAS_SK}}
        return bool(self._tables.delete(self._table, key, _pointing_to(only_to)))

    def claim_device(self, device_id: str, owner: UserKey) -> UserKey | None:
        response = self._tables.client.put_item(
            TableName=self._table,
            Item={
                keys.PK: {"S": keys.device_pk(device_id)},
                keys.SK: {"S": keys.OWNER_SK},
                "to": {"S": owner.token},
            },
            ReturnValues="ALL_OLD",
            ReturnConsumedCapacity="TOTAL",
        )
        self._tables.meter.wrote(response.get("ConsumedCapacity"))
        previous = response.get("Attributes", {}).get("to", {}).get("S")
        return None if previous is None or previous == owner.token else UserKey.parse(previous)

    def device_owner(self, device_id: str) -> UserKey | None:
        return self._targets({keys.device_pk(device_id): device_id}, keys.OWNER_SK).get(device_id)

    def release_device(self, device_id: str, *, only_to: UserKey) -> bool:
        key = {keys.PK: {"S": keys.device_pk(device_id)}, keys.SK: {"S": keys.OWNER_SK}}
        return bool(self._tables.delete(self._table, key, _pointing_to(only_to)))
