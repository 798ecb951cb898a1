"""The users table on DynamoDB: one partition per user holding its records, plus the pointers that
send a device's data to a user (identify's aliases and push-token owners)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from kudos.core.identity import UserKey
from kudos.core.records import MembershipRecord, Record, RecordKey, UserRecords, merged_marker
from kudos.core.timeutil import SECONDS_PER_DAY, day_of
from kudos.store import keys
from kudos.store.codec import Item, decode, encode, num
from kudos.store.fast_scan import raw_scan, supports_raw_scan
from kudos.store.ports import CHANGE_RETENTION_DAYS, MembershipChange, Slot
from kudos.store.tables import TRANSACTION_LIMIT, DynamoTables

T = TypeVar("T")


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
    def __init__(self, tables: DynamoTables, *, raw_scan: bool = True) -> None:
        self._tables = tables
        # Scan pages decoded from the raw body (kudos/store/fast_scan.py); False: botocore's parser.
        self.raw_scan = raw_scan

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

    def replace_user(
        self,
        user: UserKey,
        records: list[Record],
        deletions: list[Slot],
        *,
        removals: Sequence[tuple[UserKey, Record]] = (),
    ) -> bool:
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
        operations += [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key_item(owner, record.key),
                    "ConditionExpression": "attribute_not_exists(#pk) OR #v = :v",
                    "ExpressionAttributeNames": {"#pk": keys.PK, "#v": "v"},
                    "ExpressionAttributeValues": {":v": num(record.version)},
                }
            }
            for owner, record in removals
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
        one run, so consecutive items with the same key make one user.

        Pages are decoded by ``json.loads`` from the response body, not by botocore's shape-driven
        parser (kudos/store/fast_scan.py: the same items, several times faster), whenever the client
        is a botocore client and ``raw_scan`` is on; retries, errors and metering are the client's.
        """
        request = {"TableName": self._table, "Segment": segment, "TotalSegments": total_segments}
        client = self._tables.client
        scan: Callable[..., dict[str, Any]] = client.scan
        if self.raw_scan and supports_raw_scan(client):
            scan = functools.partial(raw_scan, client)
        current: UserRecords | None = None
        current_pk = ""
        for page in self._tables.pages(scan, request):
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

    def _targets(self, pointers: dict[str, T], sk: str, *, consistent: bool = False) -> dict[T, UserKey]:
        """The user each pointer item ({pk: what}, all with sort key ``sk``) points to, by what."""
        key_items = [{keys.PK: {"S": pk}, keys.SK: {"S": sk}} for pk in pointers]
        found = self._tables.batch_get(self._table, key_items, consistent=consistent)
        return {pointers[item[keys.PK]["S"]]: UserKey.parse(item["to"]["S"]) for item in found}

    def resolve_anonymous(self, anonymous: Iterable[UserKey]) -> dict[UserKey, UserKey]:
        aliases = {keys.alias_pk(key): key for key in dict.fromkeys(anonymous)}
        # Strongly consistent: a writer that misses a pointer identify just wrote would write to a
        # profile that was already merged (users.settle_merged checks again after writing).
        return self._targets(aliases, keys.ALIAS_SK, consistent=True)

    def put_alias(self, anonymous: UserKey, target: UserKey) -> None:
        alias = {
            keys.PK: {"S": keys.alias_pk(anonymous)},
            keys.SK: {"S": keys.ALIAS_SK},
            "to": {"S": target.token},
        }
        merged = encode(target, merged_marker(anonymous))
        self._tables.batch_write(self._table, [{"PutRequest": {"Item": item}} for item in (alias, merged)])

    def delete_alias(self, anonymous: UserKey, *, only_to: UserKey | None = None) -> bool:
        key = {keys.PK: {"S": keys.alias_pk(anonymous)}, keys.SK: {"S": keys.ALIAS_SK}}
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


def _change_of(item: Item) -> MembershipChange:
    segment = item["seg"]["S"]
    return MembershipChange(
        user=UserKey.parse(item["user"]["S"]),
        segment=segment,
        change="entered" if item["c"]["S"] == "entered" else "exited",
        at=float(item["at"]["N"]),
        by="ingest" if item["by"]["S"] == "ingest" else "sweep",
        definition=item["df"]["S"],
    )


class DynamoMemberships:
    def __init__(self, tables: DynamoTables) -> None:
        self._tables = tables

    @property
    def _table(self) -> str:
        return self._tables.users_table

    @staticmethod
    def _log_key(change: MembershipChange) -> Item:
        return {
            keys.PK: {"S": keys.changes_pk(change.segment, day_of(change.at))},
            keys.SK: {"S": keys.change_sk(change.at, change.user, change.change)},
        }

    def _log_item(self, change: MembershipChange) -> Item:
        sk = keys.change_sk(change.at, change.user, change.change)
        outbox: Item = {}
        if self._tables.settings.event_bus_name is not None:
            # In the outbox until its event is delivered (mark_published); without a bus, nothing
            # will ever take it out.
            outbox = {
                keys.OUTBOX_PK: {"S": keys.outbox_pk(keys.shard_of(sk, keys.OUTBOX_SHARDS))},
                keys.OUTBOX_SK: {"S": sk},
            }
        return {
            **self._log_key(change),
            **outbox,
            "seg": {"S": change.segment},
            "user": {"S": change.user.token},
            "c": {"S": change.change},
            "at": num(change.at),
            "by": {"S": change.by},
            "df": {"S": change.definition},
            keys.TTL_ATTRIBUTE: num(int(change.at) + CHANGE_RETENTION_DAYS * SECONDS_PER_DAY),
        }

    def record_change(
        self, change: MembershipChange, since: float | None = None, new_records: Sequence[Record] = ()
    ) -> bool:
        membership = MembershipRecord(
            change.segment, change.definition, change.at if since is None else since
        )
        if change.change == "entered":
            operation: dict[str, Any] = {
                "Put": {
                    "TableName": self._table,
                    "Item": encode(change.user, membership),
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": keys.PK},
                }
            }
        else:
            operation = {
                "Delete": {
                    "TableName": self._table,
                    "Key": _key_item(change.user, membership.key),
                    "ConditionExpression": "attribute_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": keys.PK},
                }
            }
        log = self._log_item(change)
        created = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _versioned_item(change.user, record),
                    **_unchanged_since_read(record),
                }
            }
            for record in new_records
        ]
        operations = [operation, {"Put": {"TableName": self._table, "Item": log}}, *created]
        items = [op["Put"]["Item"] for op in operations if "Put" in op]
        try:
            response = self._tables.client.transact_write_items(
                TransactItems=operations, ReturnConsumedCapacity="TOTAL"
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                return False
            raise
        self._tables.meter.transaction(response.get("ConsumedCapacity"), items)
        for record in new_records:
            record.version += 1
        return True

    def _index_keys(
        self, index: str, pk_name: str, pk: str, sk_name: str, after: str | None
    ) -> Iterator[str]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#p = :p" + (" AND #s > :s" if after is not None else ""),
            "ExpressionAttributeNames": {"#p": pk_name, **({"#s": sk_name} if after is not None else {})},
            "ExpressionAttributeValues": {
                ":p": {"S": pk},
                **({":s": {"S": after}} if after is not None else {}),
            },
        }
        for page in self._tables.pages(self._tables.client.query, request):
            for item in page:
                yield item[sk_name]["S"]

    def members(self, segment: str, limit: int, after: UserKey | None) -> list[UserKey]:
        tokens = self._index_keys(
            keys.MEMBERS_INDEX,
            keys.MEMBERS_PK,
            keys.members_pk(segment),
            keys.MEMBERS_SK,
            after.token if after is not None else None,
        )
        return [UserKey.parse(token) for token in itertools.islice(tokens, limit)]

    def count_members(self, segment: str) -> int:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": keys.MEMBERS_INDEX,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": keys.MEMBERS_PK},
            "ExpressionAttributeValues": {":p": {"S": keys.members_pk(segment)}},
            "Select": "COUNT",
            "ReturnConsumedCapacity": "TOTAL",
        }
        count = 0
        while True:
            response = self._tables.client.query(**request)
            self._tables.meter.read(response.get("ConsumedCapacity"))
            count += response["Count"]
            if "LastEvaluatedKey" not in response:
                return count
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def due_users(self, since: float, until: float) -> list[UserKey]:
        found: list[UserKey] = []
        for bucket in range(keys.due_bucket(since), keys.due_bucket(until) + 1):
            tokens = self._index_keys(
                keys.DUE_INDEX, keys.DUE_PK, keys.due_pk(bucket), keys.DUE_SK_ATTRIBUTE, None
            )
            found.extend(UserKey.parse(token) for token in tokens)
        return found

    def mark_published(self, changes: Iterable[MembershipChange]) -> None:
        for change in changes:
            response = self._tables.client.update_item(
                TableName=self._table,
                Key=self._log_key(change),
                UpdateExpression="REMOVE #opk, #osk",
                ExpressionAttributeNames={"#opk": keys.OUTBOX_PK, "#osk": keys.OUTBOX_SK},
                ReturnConsumedCapacity="TOTAL",
            )
            self._tables.meter.wrote(response.get("ConsumedCapacity"))

    def unpublished(self, until: float) -> list[MembershipChange]:
        bound = keys.change_sk(until, UserKey.of_user("\uffff"), "~")
        found: list[MembershipChange] = []
        for shard in range(keys.OUTBOX_SHARDS):
            request = {
                "TableName": self._table,
                "IndexName": keys.OUTBOX_INDEX,
                "KeyConditionExpression": "#p = :p AND #s <= :s",
                "ExpressionAttributeNames": {"#p": keys.OUTBOX_PK, "#s": keys.OUTBOX_SK},
                "ExpressionAttributeValues": {":p": {"S": keys.outbox_pk(shard)}, ":s": {"S": bound}},
            }
            for page in self._tables.pages(self._tables.client.query, request):
                found.extend(map(_change_of, page))
        return sorted(found, key=lambda change: change.at)

    def changes_on_day(
        self, segment: str, day: int, *, older_than: MembershipChange | None, limit: int
    ) -> list[MembershipChange]:
        condition = "#pk = :pk"
        names = {"#pk": keys.PK}
        values: dict[str, Any] = {":pk": {"S": keys.changes_pk(segment, day)}}
        if older_than is not None:
            condition += " AND #sk < :sk"
            names["#sk"] = keys.SK
            values[":sk"] = {"S": keys.change_sk(older_than.at, older_than.user, older_than.change)}
        request = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        found: list[MembershipChange] = []
        for page in self._tables.pages(self._tables.client.query, request):
            found.extend(map(_change_of, page))
            if len(found) >= limit:
                break
        return found[:limit]
