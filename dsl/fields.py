"""The built-in fields of the segment language (the table in dsl.md): their types and call shapes.

The checker uses this to reject what cannot work; the compiler relies on it having done so.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ValueType(enum.Enum):
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    INSTANT = "instant"
    ANY = "any"  # custom attributes: checked at evaluation, where a mismatch means "unset"

    @property
    def with_article(self) -> str:
        return f"an {self.value}" if self.value[0] in "aeiou" else f"a {self.value}"


class Shape(enum.Enum):
    """How a field is written."""

    PLAIN = "plain"  # sessions
    WINDOW = "window"  # sessions(last 30 days)
    NAME = "name"  # received("welcome")
    NAME_WINDOW = "name, window"  # events("purchase", last 7 days)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: ValueType
    shapes: frozenset[Shape]

    @property
    def plain(self) -> bool:
        return Shape.PLAIN in self.shapes

    @property
    def callable(self) -> bool:
        return bool(self.shapes - {Shape.PLAIN})

    def usage(self) -> str:
        """How to write it, for error messages: `events("NAME") or events("NAME", last N days)`."""
        forms = {
            Shape.PLAIN: self.name,
            Shape.WINDOW: f"{self.name}(last N days)",
            Shape.NAME: f'{self.name}("NAME")',
            Shape.NAME_WINDOW: f'{self.name}("NAME", last N days)',
        }
        ordered = [forms[shape] for shape in Shape if shape in self.shapes]
        return " or ".join(ordered)


def _spec(name: str, value_type: ValueType, *shapes: Shape) -> FieldSpec:
    return FieldSpec(name, value_type, frozenset(shapes))


STANDARD_ATTRIBUTES = (
    "country",
    "language",
    "time_zone",
    "platform",
    "app_version",
    "first_name",
    "last_name",
    "email",
)

_S, _N, _B, _I = ValueType.STRING, ValueType.NUMBER, ValueType.BOOL, ValueType.INSTANT
_PLAIN, _WINDOW, _NAME, _NAME_WINDOW = Shape.PLAIN, Shape.WINDOW, Shape.NAME, Shape.NAME_WINDOW

FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        _spec("user_id", _S, _PLAIN),
        _spec("anonymous", _B, _PLAIN),
        _spec("created_at", _I, _PLAIN),
        *(_spec(name, _S, _PLAIN) for name in STANDARD_ATTRIBUTES),
        _spec("random_bucket", _N, _PLAIN),
        _spec("sessions", _N, _PLAIN, _WINDOW),
        _spec("first_session", _I, _PLAIN),
        _spec("last_session", _I, _PLAIN),
        _spec("events", _N, _NAME, _NAME_WINDOW),
        _spec("first_event", _I, _NAME),
        _spec("last_event", _I, _NAME),
        _spec("purchases", _N, _PLAIN, _WINDOW),
        _spec("spent", _N, _PLAIN, _WINDOW),
        _spec("first_purchase", _I, _PLAIN),
        _spec("last_purchase", _I, _PLAIN),
        _spec("push_subscription", _S, _PLAIN),
        _spec("email_subscription", _S, _PLAIN),
        _spec("push_enabled", _B, _PLAIN),
        _spec("push_opted_in_at", _I, _PLAIN),
        _spec("push_unsubscribed_at", _I, _PLAIN),
        _spec("in_segment", _B, _NAME),
        _spec("received", _B, _NAME, _NAME_WINDOW),
        _spec("opened", _B, _NAME, _NAME_WINDOW),
        _spec("converted", _B, _NAME),
        _spec("in_control", _B, _NAME),
        _spec("last_received", _I, _NAME),
        _spec("last_received_any", _I, _PLAIN),
        _spec("last_opened", _I, _NAME),
        _spec("last_opened_any", _I, _PLAIN),
        _spec("pushes_received", _N, _WINDOW),
        _spec("pushes_opened", _N, _WINDOW),
    )
}

# Fields that are never unset: counts and sums are zero when nothing happened, flags are false.
NEVER_UNSET = frozenset(
    {"anonymous", "random_bucket", "sessions", "events", "purchases", "spent", "push_enabled"}
    | {"in_segment", "received", "opened", "converted", "in_control"}
    | {"pushes_received", "pushes_opened"}
)

MAX_WINDOW_DAYS = 90
