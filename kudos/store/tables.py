"""What every DynamoDB adapter shares: the lazily created client, the capacity meter, and the few
call patterns (paged reads, batched reads and writes, conditional writes) written once.

Every call asks for ConsumedCapacity so that the benchmark can report what DynamoDB itself bills.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

from botocore.config import Config
from botocore.exceptions import ClientError

from kudos.core.settings import Settings
from kudos.store.capacity import CapacityMeter
from kudos.store.clients import LazyClient, lazy_client
from kudos.store.codec import Item
from kudos.store.keys import PK

BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
TRANSACTION_LIMIT = 100
# Adaptive retries absorb throttling during a burst (a sweep, a replay) before an error surfaces.
CLIENT_MAX_ATTEMPTS = 8


def is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoTables:
    """The client of both tables, created on first use (never at import time) or injected."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        retries = Config(retries={"max_attempts": CLIENT_MAX_ATTEMPTS, "mode": "adaptive"})
        self._client = LazyClient(
            lazy_client("dynamodb", settings.region, settings.dynamodb_endpoint_url, config=retries), client
        )
        self.meter = CapacityMeter()

    @property
    def client(self) -> Any:
        return self._client.get()

    @property
    def users_table(self) -> str:
        return self.settings.users_table

    @property
    def activity_table(self) -> str:
        return self.settings.activity_table

    def pages(
        self, operation: Callable[..., dict[str, Any]], request: dict[str, Any]
    ) -> Iterator[list[Item]]:
        """The items of a Query or Scan, one page at a time, following LastEvaluatedKey."""
        request = {**request, "ReturnConsumedCapacity": "TOTAL"}
        while True:
            response = operation(**request)
            self.meter.read(response.get("ConsumedCapacity"))
            yield response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def query_partition(
        self, table: str, pk: str, *, consistent: bool, attributes: tuple[str, ...] = ()
    ) -> list[Item]:
        """Every item of one partition; only ``attributes`` of each, when given."""
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": PK},
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": consistent,
        }
        if attributes:
            names = {f"#p{index}": name for index, name in enumerate(attributes)}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"].update(names)
        return [item for page in self.pages(self.client.query, request) for item in page]

    def batch_get(self, table: str, key_items: list[Item], *, consistent: bool) -> list[Item]:
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

    def batch_write(self, table: str, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {table: requests[start : start + BATCH_WRITE_LIMIT]}
            while pending:
                response = self.client.batch_write_item(RequestItems=pending, ReturnConsumedCapacity="TOTAL")
                self.meter.wrote(response.get("ConsumedCapacity"))
                pending = response.get("UnprocessedItems") or {}

    def put(self, table: str, item: Item, condition: dict[str, Any] | None = None) -> Item | None:
        """Put ``item``; with a condition that fails, the item that was there ({} if none)."""
        request: dict[str, Any] = {"TableName": table, "Item": item, "ReturnConsumedCapacity": "TOTAL"}
        if condition:
            request.update(condition)
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self.client.put_item(**request)
        except ClientError as error:
            if is_conditional_failure(error):
                existing = cast(Item, error.response.get("Item") or {})
                self.meter.failed_condition(item, existing)
                return existing
            raise
        self.meter.wrote(response.get("ConsumedCapacity"))
        return None

    def delete(self, table: str, key: Item, condition: dict[str, Any] | None = None) -> Item | None:
        """Delete the item at ``key``; what was there (None if nothing, or if the condition failed)."""
        request: dict[str, Any] = {
            "TableName": table,
            "Key": key,
            "ReturnValues": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
            **(condition or {}),
        }
        try:
            response = self.client.delete_item(**request)
        except ClientError as error:
            if is_conditional_failure(error):
                return None
            raise
        self.meter.wrote(response.get("ConsumedCapacity"))
        return cast(Item | None, response.get("Attributes"))
