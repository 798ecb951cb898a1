"""The activity table on DynamoDB: per-day partitions, sharded, holding what active-user figures are
computed from (sessions, API-activity and new-user markers), push events, and derived state
(rollups, segment evaluations). It never holds a user id: only random activity ids."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from kudos.store import keys
from kudos.store.codec import Item, num
from kudos.store.ports import DayActivity, DayFigures, FullSweepPlan, PushEvent, StoredSession, SweepRun
from kudos.store.tables import DynamoTables, is_conditional_failure

_FIGURE_NAMES = ("dau", "wau", "mau", "new_users", "sessions")
_ROLLUP_SK = "R"
_SWEEP_PK = "SWEEP"
_LAST_SWEEP_SK = "LAST"
_FULL_SWEEP_SK = "FULL"


def _stored_session(item: Item) -> StoredSession:
    day, session_id = keys.parse_session_key(item)
    return StoredSession(
        day=day,
        session_id=session_id,
        aid=item["a"]["S"],
        started=float(item["t"]["N"]),
        ended=float(item["e"]["N"]) if "e" in item else None,
        received=float(item["r"]["N"]) if "r" in item else None,
    )


class DynamoActivity:
    def __init__(self, tables: DynamoTables) -> None:
        self._tables = tables

    @property
    def _table(self) -> str:
        return self._tables.activity_table

    def _session_key(self, day: int, session_id: str) -> Item:
        shard = keys.shard_of(session_id, self._tables.settings.day_shards)
        return {keys.PK: {"S": keys.day_pk(day, shard)}, keys.SK: {"S": keys.session_sk(session_id)}}

    def _marker_key(self, day: int, sk: str, aid: str) -> Item:
        shard = keys.shard_of(aid, self._tables.settings.day_shards)
        return {keys.PK: {"S": keys.day_pk(day, shard)}, keys.SK: {"S": sk}}

    def insert_session(self, session: StoredSession, expires: int) -> StoredSession | None:
        item = self._session_key(session.day, session.session_id)
        item.update({"a": {"S": session.aid}, "t": num(session.started), keys.TTL_ATTRIBUTE: num(expires)})
        if session.ended is not None:
            item["e"] = num(session.ended)
        if session.received is not None:
            item["r"] = num(session.received)
        condition = {"ConditionExpression": f"attribute_not_exists({keys.PK})"}
        existing = self._tables.put(self._table, item, condition)
        return None if existing is None else _stored_session(existing)

    def find_sessions(self, wanted: Iterable[tuple[int, str]]) -> dict[tuple[int, str], StoredSession]:
        # Eventually consistent (half the price): a copy whose correction differs comes in a later
        # upload, not in the same second.
        key_items = [self._session_key(day, session_id) for day, session_id in dict.fromkeys(wanted)]
        found = self._tables.batch_get(self._table, key_items, consistent=False)
        return {(session.day, session.session_id): session for session in map(_stored_session, found)}

    def update_session(
        self, day: int, session_id: str, *, ended: float | None = None, aid: str | None = None
    ) -> None:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets = []
        if ended is not None:
            names["#e"], values[":e"] = "e", num(ended)
            sets.append("#e = :e")
        if aid is not None:
            names["#a"], values[":a"] = "a", {"S": aid}
            sets.append("#a = :a")
        if not sets:
            return
        response = self._tables.client.update_item(
            TableName=self._table,
            Key=self._session_key(day, session_id),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnConsumedCapacity="TOTAL",
        )
        self._tables.meter.wrote(response.get("ConsumedCapacity"))

    def mark_api_active(self, day: int, aid: str, expires: int) -> None:
        item = self._marker_key(day, keys.api_active_sk(aid), aid)
        item[keys.TTL_ATTRIBUTE] = num(expires)
        self._tables.put(self._table, item)

    def remove_api_active(self, day: int, aid: str) -> None:
        self._tables.delete(self._table, self._marker_key(day, keys.api_active_sk(aid), aid))

    def add_new_user(self, day: int, aid: str, expires: int) -> None:
        item = self._marker_key(day, keys.new_user_sk(aid), aid)
        item[keys.TTL_ATTRIBUTE] = num(expires)
        self._tables.put(self._table, item)

    def remove_new_user(self, day: int, aid: str) -> None:
        self._tables.delete(self._table, self._marker_key(day, keys.new_user_sk(aid), aid))

    def read_day(self, day: int) -> DayActivity:
        sessions: list[str] = []
        api: list[str] = []
        new: list[str] = []
        for shard in range(self._tables.settings.day_shards):
            items = self._tables.query_partition(
                self._table, keys.day_pk(day, shard), consistent=False, attributes=(keys.SK, "a")
            )
            for item in items:
                sk = item[keys.SK]["S"]
                if sk.startswith(keys.SESSION_SK_PREFIX):
                    sessions.append(item["a"]["S"])
                elif sk.startswith(keys.API_ACTIVE_SK_PREFIX):
                    api.append(sk.removeprefix(keys.API_ACTIVE_SK_PREFIX))
                elif sk.startswith(keys.NEW_USER_SK_PREFIX):
                    new.append(sk.removeprefix(keys.NEW_USER_SK_PREFIX))
        return DayActivity(day, sessions, api, new)

    def put_push_event(self, event: PushEvent, expires: int) -> None:
        shard = keys.shard_of(event.event_id, self._tables.settings.day_shards)
        item: Item = {
            keys.PK: {"S": keys.push_event_pk(event.day, shard)},
            keys.SK: {"S": event.event_id},
            keys.TTL_ATTRIBUTE: num(expires),
            "type": {"S": event.type},
            "user": {"S": event.user.token},
            "time": num(event.time),
        }
        for name, value in (
            ("campaign", event.campaign_id),
            ("send", event.send_id),
            ("device", event.device_id),
        ):
            if value is not None:
                item[name] = {"S": value}
        self._tables.put(self._table, item)


class DynamoFigures:
    def __init__(self, tables: DynamoTables) -> None:
        self._tables = tables

    @property
    def _table(self) -> str:
        return self._tables.activity_table

    def get_rollups(self, days: Iterable[int]) -> dict[int, DayFigures]:
        key_items = [{keys.PK: {"S": keys.rollup_pk(day)}, keys.SK: {"S": _ROLLUP_SK}} for day in days]
        figures = {}
        for item in self._tables.batch_get(self._table, key_items, consistent=False):
            day = int(item[keys.PK]["S"].removeprefix(keys.ROLLUP_PREFIX))
            figures[day] = DayFigures(day=day, **{name: int(item[name]["N"]) for name in _FIGURE_NAMES})
        return figures

    def put_rollup(self, figures: DayFigures) -> None:
        item: Item = {keys.PK: {"S": keys.rollup_pk(figures.day)}, keys.SK: {"S": _ROLLUP_SK}}
        for name in _FIGURE_NAMES:
            item[name] = num(getattr(figures, name))
        self._tables.put(self._table, item)

    def record_sweep(self, run: SweepRun) -> None:
        item: Item = {
            keys.PK: {"S": _SWEEP_PK},
            keys.SK: {"S": _LAST_SWEEP_SK},
            "kind": {"S": run.kind},
            "at": num(run.at),
            "started": num(run.started),
            "finished": num(run.finished),
            "read": num(run.users_read),
            "changes": num(run.changes),
            "definitions": {"M": {name: {"S": version} for name, version in run.definitions.items()}},
        }
        self._tables.put(self._table, item)

    def last_sweep(self) -> SweepRun | None:
        key = {keys.PK: {"S": _SWEEP_PK}, keys.SK: {"S": _LAST_SWEEP_SK}}
        found = self._tables.batch_get(self._table, [key], consistent=True)
        if not found:
            return None
        item = found[0]
        return SweepRun(
            kind="full" if item["kind"]["S"] == "full" else "steady",
            at=float(item["at"]["N"]),
            started=float(item["started"]["N"]),
            finished=float(item["finished"]["N"]),
            users_read=int(item["read"]["N"]),
            changes=int(item["changes"]["N"]),
            definitions={name: value["S"] for name, value in item["definitions"]["M"].items()},
        )

    def _plan_key(self) -> Item:
        return {keys.PK: {"S": _SWEEP_PK}, keys.SK: {"S": _FULL_SWEEP_SK}}

    def begin_full_sweep(self, plan: FullSweepPlan) -> None:
        item: Item = {
            **self._plan_key(),
            "at": num(plan.at),
            "started": num(plan.started),
            "parts": num(plan.parts),
            "read": num(0),
            "changes": num(0),
            "definitions": {"M": {name: {"S": version} for name, version in plan.definitions.items()}},
        }
        self._tables.put(self._table, item)

    def full_sweep_plan(self) -> FullSweepPlan | None:
        found = self._tables.batch_get(self._table, [self._plan_key()], consistent=True)
        return _plan_of(found[0]) if found else None

    def finish_part(self, at: float, part: int, users_read: int, changes: int) -> FullSweepPlan | None:
        # One atomic update: the part joins the set once, and its counts are added only then (a
        # part that reports twice, after an SQS redelivery, fails the condition the second time).
        try:
            response = self._tables.client.update_item(
                TableName=self._table,
                Key=self._plan_key(),
                UpdateExpression="ADD #done :part, #read :read, #changes :changes",
                ConditionExpression="#at = :at AND NOT contains(#done, :number)",
                ExpressionAttributeNames={
                    "#done": "done",
                    "#read": "read",
                    "#changes": "changes",
                    "#at": "at",
                },
                ExpressionAttributeValues={
                    ":part": {"NS": [str(part)]},
                    ":number": num(part),
                    ":read": num(users_read),
                    ":changes": num(changes),
                    ":at": num(at),
                },
                ReturnValues="ALL_NEW",
                ReturnConsumedCapacity="TOTAL",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                plan = self.full_sweep_plan()
                return plan if plan is not None and plan.at == at else None
            raise
        self._tables.meter.wrote(response.get("ConsumedCapacity"))
        return _plan_of(response["Attributes"])

    def end_full_sweep(self, at: float) -> None:
        condition = {
            "ConditionExpression": "#at = :at",
            "ExpressionAttributeNames": {"#at": "at"},
            "ExpressionAttributeValues": {":at": num(at)},
        }
        self._tables.delete(self._table, self._plan_key(), condition)


def _plan_of(item: Item) -> FullSweepPlan:
    return FullSweepPlan(
        at=float(item["at"]["N"]),
        started=float(item["started"]["N"]),
        parts=int(item["parts"]["N"]),
        definitions={name: value["S"] for name, value in item["definitions"]["M"].items()},
        parts_done=frozenset(int(n) for n in item.get("done", {}).get("NS", [])),
        users_read=int(item["read"]["N"]),
        changes=int(item["changes"]["N"]),
    )
