"""Membership changes as EventBridge events ("Segment Entered" / "Segment Exited").

PutEvents takes at most 10 entries a call and may reject some of them (throttling, internal
errors): the rejected ones are sent again a few times, and what still fails is returned, so that
the caller leaves those changes in the outbox for the next sweep to retry. Consumers de-duplicate
by the event's `detail.id` (a change's id is stable: at-least-once delivery).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kudos.core.settings import Settings
from kudos.core.timeutil import format_instant
from kudos.store.clients import LazyClient, lazy_client
from kudos.store.ports import CampaignState, MembershipChange

PUT_EVENTS_LIMIT = 10
SEND_ATTEMPTS = 3
EVENT_SOURCE = "kudos.segments"
DETAIL_TYPES = {"entered": "Segment Entered", "exited": "Segment Exited"}
CAMPAIGN_EVENT_SOURCE = "kudos.campaigns"
CAMPAIGN_PAUSED = "Campaign Paused"


def campaign_detail(state: CampaignState) -> dict[str, Any]:
    return {
        "campaign": state.name,
        "status": state.status,
        "since": format_instant(state.since) if state.since is not None else None,
        "reason": state.reason,
    }


def change_id(change: MembershipChange) -> str:
    return f"{change.segment}/{change.user.token}/{change.change}/{change.at:.3f}"


def event_detail(change: MembershipChange) -> dict[str, Any]:
    return {
        "id": change_id(change),
        "segment": change.segment,
        "user": change.user.identity(),
        "change": change.change,
        "at": format_instant(change.at),
        "by": change.by,
        "version": change.definition,
    }


class EventBridgeEvents:
    """The bus named by settings.event_bus_name; the client is created on first use."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = LazyClient(
            lazy_client("events", settings.region, settings.events_endpoint_url), client
        )

    @property
    def client(self) -> Any:
        return self._client.get()

    @property
    def enabled(self) -> bool:
        return self._settings.event_bus_name is not None

    def _entry(self, change: MembershipChange) -> dict[str, Any]:
        return {
            "Source": EVENT_SOURCE,
            "DetailType": DETAIL_TYPES[change.change],
            "Detail": json.dumps(event_detail(change)),
            "EventBusName": self._settings.event_bus_name,
        }

    def announce_pause(self, state: CampaignState) -> bool:
        """ "Campaign Paused" (a guardrail tripped): whether the bus took it. Without a bus: False."""
        if not self.enabled:
            return False
        entry = {
            "Source": CAMPAIGN_EVENT_SOURCE,
            "DetailType": CAMPAIGN_PAUSED,
            "Detail": json.dumps(campaign_detail(state)),
            "EventBusName": self._settings.event_bus_name,
        }
        response = self.client.put_events(Entries=[entry])
        return not response.get("FailedEntryCount")

    def publish(self, changes: Sequence[MembershipChange]) -> list[MembershipChange]:
        undelivered: list[MembershipChange] = []
        for start in range(0, len(changes), PUT_EVENTS_LIMIT):
            pending = list(changes[start : start + PUT_EVENTS_LIMIT])
            for _ in range(SEND_ATTEMPTS):
                response = self.client.put_events(Entries=[self._entry(change) for change in pending])
                if not response.get("FailedEntryCount"):
                    pending = []
                    break
                # Entries come back in request order; a failed one has an ErrorCode.
                pending = [
                    change
                    for change, entry in zip(pending, response["Entries"], strict=True)
                    if entry.get("ErrorCode")
                ]
            undelivered += pending
        return undelivered
