"""Storage on DynamoDB: the ports of ``kudos.store.ports``, one adapter per table and concern."""

from __future__ import annotations

from typing import Any

from kudos.core.settings import Settings
from kudos.store.activity_table import DynamoActivity, DynamoFigures
from kudos.store.campaigns_table import DynamoCampaigns
from kudos.store.capacity import CapacityMeter
from kudos.store.events import EventBridgeEvents
from kudos.store.send_queue import SqsSendQueue
from kudos.store.sweep_queue import SqsSweepQueue
from kudos.store.tables import DynamoTables
from kudos.store.users_table import DynamoMemberships, DynamoPointers, DynamoUserRecords


class Store:
    """Every port on DynamoDB, sharing one lazily created client and one capacity meter."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        self.tables = DynamoTables(settings, client)
        self.users = DynamoUserRecords(self.tables)
        self.pointers = DynamoPointers(self.tables)
        self.activity = DynamoActivity(self.tables)
        self.figures = DynamoFigures(self.tables)
        self.memberships = DynamoMemberships(self.tables)
        self.events = EventBridgeEvents(settings)
        self.sweep_queue = SqsSweepQueue(settings)
        self.campaigns = DynamoCampaigns(self.tables)
        self.send_queue = SqsSendQueue(settings)

    @property
    def client(self) -> Any:
        return self.tables.client

    @property
    def meter(self) -> CapacityMeter:
        return self.tables.meter

    def is_empty(self) -> bool:
        """Whether both tables hold nothing at all (the demo refuses to replay into used tables)."""
        return not any(
            self.client.scan(TableName=table, Limit=1, Select="COUNT")["Count"]
            for table in (self.settings.users_table, self.settings.activity_table)
        )


__all__ = ["Store"]
