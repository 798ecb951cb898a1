"""Campaigns on DynamoDB: each campaign's state (activity table, one partition for all campaigns),
its per-minute send counts (`rate`), and the campaign-wide views of the send records, which live in
the users' partitions (the users table's sends and pending indexes)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError

from kudos.core.identity import UserKey
from kudos.core.records import SendRecord
from kudos.store import keys
from kudos.store.codec import Item, decode, encode, num
from kudos.store.ports import CampaignState, CampaignStatus
from kudos.store.tables import DynamoTables, is_conditional_failure

# A minute's send count outlives its minute by this much, then DynamoDB's TTL removes it.
RATE_COUNT_TTL_SECONDS = 3600
_STATUSES: dict[str, CampaignStatus] = {
    "active": "active",
    "paused": "paused",
    "paused_by_guardrail": "paused_by_guardrail",
}


def _state_item(state: CampaignState) -> Item:
    item: Item = {
        keys.PK: {"S": keys.CAMPAIGNS_PK},
        keys.SK: {"S": state.name},
        "v": num(state.version + 1),
        "first_seen": num(state.first_seen),
        "status": {"S": state.status},
        "initial_done": {"BOOL": state.initial_done},
    }
    for name, value in (
        ("since", state.since),
        ("initial_at", state.initial_at),
        ("last_fired", state.last_fired),
    ):
        if value is not None:
            item[name] = num(value)
    if state.reason is not None:
        item["reason"] = {"S": state.reason}
    return item


def _opt(item: Item, name: str) -> float | None:
    return float(item[name]["N"]) if name in item else None


def _state_of(item: Item) -> CampaignState:
    return CampaignState(
        name=item[keys.SK]["S"],
        first_seen=float(item["first_seen"]["N"]),
        status=_STATUSES[item["status"]["S"]],
        since=_opt(item, "since"),
        reason=item["reason"]["S"] if "reason" in item else None,
        initial_at=_opt(item, "initial_at"),
        initial_done=item["initial_done"]["BOOL"],
        last_fired=_opt(item, "last_fired"),
        resumed_at=_opt(item, "resumed_at"),
        version=int(item["v"]["N"]),
    )


def _send_of(item: Item) -> tuple[UserKey | None, SendRecord]:
    record = decode(item)
    assert isinstance(record, SendRecord), "the sends index holds only send items"
    pk = item[keys.PK]["S"]
    return (keys.user_of_pk(pk) if keys.is_user_pk(pk) else None), record


class DynamoCampaigns:
    def __init__(self, tables: DynamoTables) -> None:
        self._tables = tables

    def states(self) -> dict[str, CampaignState]:
        items = self._tables.query_partition(self._tables.activity_table, keys.CAMPAIGNS_PK, consistent=True)
        return {state.name: state for state in map(_state_of, items)}

    def state(self, name: str) -> CampaignState | None:
        key = {keys.PK: {"S": keys.CAMPAIGNS_PK}, keys.SK: {"S": name}}
        found = self._tables.batch_get(self._tables.activity_table, [key], consistent=True)
        return _state_of(found[0]) if found else None

    def save_state(self, state: CampaignState) -> bool:
        if state.version == 0:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": keys.PK},
            }
        else:
            condition = {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "v"},
                "ExpressionAttributeValues": {":v": num(state.version)},
            }
        return self._tables.put(self._tables.activity_table, _state_item(state), condition) is None

    def _sends_query(
        self, campaign: str, condition: str, values: dict[str, Any], forward: bool
    ) -> dict[str, Any]:
        return {
            "TableName": self._tables.users_table,
            "IndexName": keys.SENDS_INDEX,
            "KeyConditionExpression": "#p = :p" + condition,
            "ExpressionAttributeNames": {"#p": keys.SENDS_PK, **({"#s": keys.SENDS_SK} if condition else {})},
            "ExpressionAttributeValues": {":p": {"S": keys.sends_pk(campaign)}, **values},
            "ScanIndexForward": forward,
        }

    def sends(
        self, campaign: str, *, limit: int, older_than: SendRecord | None = None
    ) -> list[tuple[UserKey | None, SendRecord]]:
        condition, values = "", {}
        if older_than is not None:
            condition = " AND #s < :s"
            values = {":s": {"S": keys.sends_sk(older_than.triggered_at, older_than.send_id)}}
        request = {**self._sends_query(campaign, condition, values, forward=False), "Limit": limit}
        found: list[tuple[UserKey | None, SendRecord]] = []
        for page in self._tables.pages(self._tables.client.query, request):
            found.extend(map(_send_of, page))
            if len(found) >= limit:
                break
        return found[:limit]

    def all_sends(
        self, campaign: str, since: float, until: float
    ) -> Iterator[tuple[UserKey | None, SendRecord]]:
        # A sort key is the instant to the millisecond, then "#id": the keys take in every send of
        # the bounds' milliseconds, and the exact bounds are checked on the send. An infinite `until`
        # (no end: the report without `to`, the guardrail) is no upper bound: instant_sk(inf) is
        # "000...inf", which sorts before every real instant.
        values = {":lo": {"S": keys.instant_sk(since)}}
        if math.isfinite(until):
            values[":hi"] = {"S": keys.instant_sk(until) + "#\uffff"}
            condition = " AND #s BETWEEN :lo AND :hi"
        else:
            condition = " AND #s >= :lo"
        request = self._sends_query(campaign, condition, values, forward=True)
        for page in self._tables.pages(self._tables.client.query, request):
            for user, send in map(_send_of, page):
                if since <= send.triggered_at < until:
                    yield user, send

    def keep_deleted_sends(self, sends: Sequence[SendRecord]) -> None:
        requests = []
        for send in sends:
            # Encoded as a send of some user, then moved to a partition that names nobody.
            item = encode(UserKey.of_device("deleted"), send)
            item[keys.PK] = {"S": keys.deleted_send_pk(send.send_id)}
            item.pop(keys.PENDING_PK, None)
            item.pop(keys.PENDING_SK, None)
            requests.append({"PutRequest": {"Item": item}})
        self._tables.batch_write(self._tables.users_table, requests)

    def pending(self, until: float) -> list[tuple[UserKey, str]]:
        bound = keys.instant_sk(until) + "#\uffff"
        found: list[tuple[str, UserKey, str]] = []
        for shard in range(keys.PENDING_SHARDS):
            request = {
                "TableName": self._tables.users_table,
                "IndexName": keys.PENDING_INDEX,
                "KeyConditionExpression": "#p = :p AND #s <= :s",
                "ExpressionAttributeNames": {"#p": keys.PENDING_PK, "#s": keys.PENDING_SK},
                "ExpressionAttributeValues": {":p": {"S": keys.pending_shard_pk(shard)}, ":s": {"S": bound}},
            }
            for page in self._tables.pages(self._tables.client.query, request):
                for item in page:
                    send_id = keys.record_key_of_sk(item[keys.SK]["S"]).name
                    found.append((item[keys.PENDING_SK]["S"], keys.user_of_pk(item[keys.PK]["S"]), send_id))
        return [(user, send_id) for _, user, send_id in sorted(found)]

    def take_rate_slot(self, campaign: str, minute: int, limit: int) -> bool:
        try:
            response = self._tables.client.update_item(
                TableName=self._tables.activity_table,
                Key={keys.PK: {"S": keys.rate_pk(campaign, minute)}, keys.SK: {"S": "N"}},
                UpdateExpression="ADD #n :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": "n", "#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": num(1),
                    ":limit": num(limit),
                    ":ttl": num(minute * 60 + RATE_COUNT_TTL_SECONDS),
                },
                ReturnConsumedCapacity="TOTAL",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        self._tables.meter.wrote(response.get("ConsumedCapacity"))
        return True
