"""The profile: everything segment rules may read about one user, as one in-memory value.

The storage adapter builds it from the user's items (fetched in one go: a Query on the user's
partition, or that partition's run of a Scan); the rule engine reads it, as a dsl.profile.ProfileView,
and nothing else. Instants are epoch seconds (float), days are epoch days (int, UTC), money is float
(rules compare, never book-keep). Counts are never unset: absent means zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The value types rules read are the language's own (dsl.profile); re-exported for kudos modules.
from dsl.profile import AttributeInstant, CampaignHistory, CustomValue, DailyCounts, EventStats
from kudos.core.identity import UserAlias, UserKey

__all__ = ["AttributeInstant", "CampaignHistory", "CustomValue", "DailyCounts", "EventStats", "Profile"]


@dataclass(slots=True)
class Profile:
    user_id: str | None
    device_id: str | None  # the key of an anonymous profile; None once identified
    created_at: float | None = None
    # Standard attributes, by their dsl.md field names: country, language, time_zone, platform,
    # app_version, first_name, last_name, email. Absent key = unset.
    standard: dict[str, str] = field(default_factory=dict)
    custom: dict[str, CustomValue] = field(default_factory=dict)
    sessions: DailyCounts = field(default_factory=DailyCounts)
    first_session: float | None = None
    last_session: float | None = None
    events: dict[str, EventStats] = field(default_factory=dict)
    purchases: DailyCounts = field(default_factory=DailyCounts)
    spent_total: float = 0.0
    spent_by_day: dict[int, float] = field(default_factory=dict)
    first_purchase: float | None = None
    last_purchase: float | None = None
    push_subscription: str | None = None
    email_subscription: str | None = None
    push_opted_in_at: float | None = None
    push_unsubscribed_at: float | None = None
    push_enabled: bool = False
    campaigns: dict[str, CampaignHistory] = field(default_factory=dict)
    last_received_any: float | None = None
    last_opened_any: float | None = None
    pushes_received: DailyCounts = field(default_factory=DailyCounts)
    pushes_opened: DailyCounts = field(default_factory=DailyCounts)
    alias: UserAlias | None = None  # the key of an alias-only profile (api.md user_alias)

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    @property
    def user_key(self) -> UserKey:
        if self.user_id is not None:
            return UserKey.of_user(self.user_id)
        if self.alias is not None:
            return UserKey(None, None, self.alias)
        return UserKey.of_device(self.device_id or "")

    @property
    def key(self) -> str:
        """The stable identity string (``u:...`` / ``d:...`` / ``a:...``) that random_bucket hashes."""
        return self.user_key.token

    def identity(self) -> Mapping[str, Any]:
        """How api.md writes a user (kudos.core.identity.UserKey.identity)."""
        return self.user_key.identity()

    def spent_in_window(self, first_day: int, last_day: int) -> float:
        return sum(amount for day, amount in self.spent_by_day.items() if first_day <= day <= last_day)
