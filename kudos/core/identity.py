"""Who a profile is: by user_id when known, else by device_id or a Braze user alias (api.md).

A profile keyed by a device_id or by a user alias is anonymous until /v1/users/identify merges it
into a user_id's profile. ``UserKey`` has exactly one of the three; ``token`` is its stable text
form, used in every key the store builds for the user:

- ``u:<user_id>``, ``d:<device_id>``;
- ``a:<label>:<name>`` for the alias ``{"alias_label": label, "alias_name": name}``, where ``%``
  and ``:`` in the label are written ``%25`` and ``%3A`` so that the first ``:`` after the label
  ends it (the name, last, needs no escaping). The usual label has neither, and reads as itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def _escape_label(label: str) -> str:
    return label.replace("%", "%25").replace(":", "%3A")


def _unescape_label(text: str) -> str:
    return text.replace("%3A", ":").replace("%25", "%")


@dataclass(frozen=True, slots=True)
class UserAlias:
    """A Braze user alias: a name unique within its label (``{"alias_name", "alias_label"}``)."""

    label: str
    name: str

    @property
    def text(self) -> str:
        """``<label>:<name>``, the label escaped: the token without its ``a:``."""
        return f"{_escape_label(self.label)}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> UserAlias:
        label, colon, name = text.partition(":")
        if not colon:
            raise ValueError(f"not a user alias: {text!r}")
        return cls(_unescape_label(label), name)

    def to_json(self) -> dict[str, str]:
        return {"alias_name": self.name, "alias_label": self.label}


@dataclass(frozen=True, slots=True)
class UserKey:
    """A profile's identity: exactly one of ``user_id``, ``device_id`` and ``alias``."""

    user_id: str | None
    device_id: str | None
    alias: UserAlias | None = None

    def __post_init__(self) -> None:
        if sum(part is not None for part in (self.user_id, self.device_id, self.alias)) != 1:
            raise ValueError("a UserKey has exactly one of user_id, device_id and alias")

    @classmethod
    def parse(cls, token: str) -> UserKey:
        kind, _, value = token.partition(":")
        if kind == "u":
            return cls(user_id=value, device_id=None)
        if kind == "d":
            return cls(user_id=None, device_id=value)
        if kind == "a":
            return cls(user_id=None, device_id=None, alias=UserAlias.parse(value))
        raise ValueError(f"not a user key token: {token!r}")

    @classmethod
    def of_user(cls, user_id: str) -> UserKey:
        return cls(user_id=user_id, device_id=None)

    @classmethod
    def of_device(cls, device_id: str) -> UserKey:
        return cls(user_id=None, device_id=device_id)

    @classmethod
    def of_alias(cls, label: str, name: str) -> UserKey:
        return cls(user_id=None, device_id=None, alias=UserAlias(label, name))

    @property
    def anonymous(self) -> bool:
        """Keyed by a device or an alias: identify may merge it into a user."""
        return self.user_id is None

    @property
    def token(self) -> str:
        if self.user_id is not None:
            return f"u:{self.user_id}"
        if self.alias is not None:
            return f"a:{self.alias.text}"
        return f"d:{self.device_id}"

    def identity(self) -> dict[str, Any]:
        """How api.md writes a user: {"user_id": ...}, {"device_id": ...} or, for an alias-only
        profile, {"user_alias": {"alias_name": ..., "alias_label": ...}} as Braze names it."""
        if self.user_id is not None:
            return {"user_id": self.user_id}
        if self.alias is not None:
            return {"user_alias": self.alias.to_json()}
        return {"device_id": self.device_id or ""}

    def describe(self) -> str:
        """The user in a message: ``user_id "u-7"``, ``device_id "d-42"``, ``user_alias {...}``."""
        ((name, value),) = self.identity().items()
        return f"{name} {json.dumps(value, ensure_ascii=False)}"
