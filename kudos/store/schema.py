"""Table definitions for local use and tests; template.yaml declares the same tables on AWS."""

from __future__ import annotations

from typing import Any

from kudos.core.settings import Settings
from kudos.store.keys import PK, SK, TTL_ATTRIBUTE


def table_definitions(settings: Settings) -> list[dict[str, Any]]:
    key_schema = {
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": SK, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    return [
        {"TableName": settings.users_table, **key_schema},
        {"TableName": settings.activity_table, **key_schema},
    ]


def create_tables(client: Any, settings: Settings) -> None:
    """Create the tables that do not exist yet and switch on TTL for the activity table."""
    existing = set(client.list_tables().get("TableNames", []))
    for definition in table_definitions(settings):
        if definition["TableName"] in existing:
            continue
        client.create_table(**definition)
        client.get_waiter("table_exists").wait(TableName=definition["TableName"])
    try:
        client.update_time_to_live(
            TableName=settings.activity_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    except client.exceptions.ClientError as error:
        # Enabling TTL twice is an error on AWS; it is already what we want.
        if "already enabled" not in str(error).lower():
            raise
