"""What segment rules read about one user: the ProfileView protocol and the values it holds.

dsl does not know where profiles come from. kudos builds them from stored items (kudos.core.profile
is one implementation); tests and benchmarks build them in memory. Anything with these attributes
will do, so the language depends on nothing above it.

Instants are epoch seconds (float), days are epoch days (int, UTC), money is float (rules compare,
never book-keep). Counts are never unset: absent means zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, Union

# A custom attribute value: str, int/float, bool, instant (AttributeInstant), or a list of strings.
CustomValue = Union[str, int, float, bool, "AttributeInstant", list[str]]


@dataclass(frozen=True, slots=True)
class AttributeInstant:
    """A custom attribute that holds a moment in time (sent as an RFC 3339 string with a zone)."""

    epoch: float


@dataclass(slots=True)
class DailyCounts:
    """Counts per epoch day for a bounded recent period, plus the lifetime total."""

    total: int = 0
    by_day: dict[int, int] = field(default_factory=dict)

    def in_window(self, first_day: int, last_day: int) -> int:
        """Sum over the days first_day..last_day inclusive."""
        if first_day > last_day:
            return 0
        return sum(count for day, count in self.by_day.items() if first_day <= day <= last_day)


@dataclass(slots=True)
class EventStats:
    counts: DailyCounts = field(default_factory=DailyCounts)
    first: float | None = None
    last: float | None = None


@dataclass(slots=True)
class CampaignHistory:
    """What one campaign did to this user (filled by the campaign sender and push events).

    `receives` and `opens` count pushes per UTC day (a push received on two devices, or opened
    twice, is one), for the windowed fields; `opens` and `last_opened` hold direct and influenced
    opens alike (campaigns.md, Results)."""

    received: bool = False
    opened: bool = False
    converted: bool = False
    in_control: bool = False
    last_received: float | None = None
    last_opened: float | None = None
    receives: DailyCounts = field(default_factory=DailyCounts)
    opens: DailyCounts = field(default_factory=DailyCounts)


class ProfileView(Protocol):
    """Everything a compiled rule, an explanation or a next-change bound reads about one user.

    Read-only properties, so that a dataclass with plain (even mutable) fields satisfies it.
    """

    @property
    def user_id(self) -> str | None: ...

    @property
    def anonymous(self) -> bool: ...

    @property
    def key(self) -> str:
        """The stable identity string that random_bucket hashes."""
        ...

    @property
    def created_at(self) -> float | None: ...

    @property
    def standard(self) -> Mapping[str, str]:
        """Standard attributes by their dsl.md field names (country, language, ...); absent = unset."""
        ...

    @property
    def custom(self) -> Mapping[str, CustomValue]: ...

    @property
    def sessions(self) -> DailyCounts: ...

    @property
    def first_session(self) -> float | None: ...

    @property
    def last_session(self) -> float | None: ...

    @property
    def events(self) -> Mapping[str, EventStats]: ...

    @property
    def purchases(self) -> DailyCounts: ...

    @property
    def spent_total(self) -> float: ...

    @property
    def spent_by_day(self) -> Mapping[int, float]: ...

    @property
    def first_purchase(self) -> float | None: ...

    @property
    def last_purchase(self) -> float | None: ...

    @property
    def push_subscription(self) -> str | None: ...

    @property
    def email_subscription(self) -> str | None: ...

    @property
    def push_opted_in_at(self) -> float | None: ...

    @property
    def push_unsubscribed_at(self) -> float | None: ...

    @property
    def push_enabled(self) -> bool: ...

    @property
    def campaigns(self) -> Mapping[str, CampaignHistory]: ...

    @property
    def last_received_any(self) -> float | None: ...

    @property
    def last_opened_any(self) -> float | None:
        """The latest open (direct or influenced) of any campaign."""
        ...

    @property
    def pushes_received(self) -> DailyCounts:
        """Pushes received from any campaign, per UTC day: the campaigns' `receives` summed."""
        ...

    @property
    def pushes_opened(self) -> DailyCounts:
        """Pushes opened from any campaign, per UTC day: the campaigns' `opens` summed."""
        ...

    def spent_in_window(self, first_day: int, last_day: int) -> float:
        """Money spent on the days first_day..last_day inclusive."""
        ...
