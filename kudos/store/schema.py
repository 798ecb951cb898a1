"""Table definitions for local use and tests; template.yaml declares the same tables on AWS."""

from __future__ import annotations

from typing import Any

from kudos.core.settings import Settings
from kudos.store.keys import (
    DUE_INDEX,
    DUE_PK,
    DUE_SK_ATTRIBUTE,
    MEMBERS_INDEX,
    MEMBERS_PK,
    MEMBERS_SK,
    OUTBOX_INDEX,
    OUTBOX_PK,
    OUTBOX_SK,
    PENDING_INDEX,
    PENDING_PK,
    PENDING_SK,
    PK,
    SENDS_INDEX,
    SENDS_PK,
    SENDS_SK,
    SK,
    TTL_ATTRIBUTE,
)


def _index(name: str, pk: str, sk: str, projection: str = "KEYS_ONLY") -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"}, {"AttributeName": sk, "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": projection},
    }


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
    users_indexes = {
        "AttributeDefinitions": [
            *key_schema["AttributeDefinitions"],
            *(
                {"AttributeName": name, "AttributeType": "S"}
                for name in (
                    MEMBERS_PK,
                    MEMBERS_SK,
                    DUE_PK,
                    DUE_SK_ATTRIBUTE,
                    OUTBOX_PK,
                    OUTBOX_SK,
                    SENDS_PK,
                    SENDS_SK,
                    PENDING_PK,
                    PENDING_SK,
                )
            ),
        ],
        "GlobalSecondaryIndexes": [
            _index(MEMBERS_INDEX, MEMBERS_PK, MEMBERS_SK),
            _index(DUE_INDEX, DUE_PK, DUE_SK_ATTRIBUTE),
            # The undelivered changes themselves, so that the sweep re-sends them without a read each.
            _index(OUTBOX_INDEX, OUTBOX_PK, OUTBOX_SK, "ALL"),
            # A campaign's triggers with their outcomes: its sends listing and report read only this.
            _index(SENDS_INDEX, SENDS_PK, SENDS_SK, "ALL"),
            _index(PENDING_INDEX, PENDING_PK, PENDING_SK),
        ],
    }
    return [
        {"TableName": settings.users_table, **key_schema, **users_indexes},
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
    for table in (settings.users_table, settings.activity_table):
        try:
            client.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
            )
        except client.exceptions.ClientError as error:
            # Enabling TTL twice is an error on AWS; it is already what we want.
            if "already enabled" not in str(error).lower():
                raise
