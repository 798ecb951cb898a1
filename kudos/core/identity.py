"""Who a profile is: by user_id when known, else by device_id (api.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UserKey:
    """A profile's identity. ``token`` (``u:...`` / ``d:...``) is its stable text form."""

    user_id: str | None
    device_id: str | None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.device_id is None):
            raise ValueError("a UserKey has exactly one of user_id and device_id")

    @classmethod
    def parse(cls, token: str) -> UserKey:
        kind, _, value = token.partition(":")
        if kind == "u":
            return cls(user_id=value, device_id=None)
        if kind == "d":
            return cls(user_id=None, device_id=value)
        raise ValueError(f"not a user key token: {token!r}")

    @classmethod
    def of_user(cls, user_id: str) -> UserKey:
        return cls(user_id=user_id, device_id=None)

    @classmethod
    def of_device(cls, device_id: str) -> UserKey:
        return cls(user_id=None, device_id=device_id)

    @property
    def token(self) -> str:
        return f"u:{self.user_id}" if self.user_id is not None else f"d:{self.device_id}"

    def identity(self) -> dict[str, str]:
        """How api.md writes a user: {"user_id": ...} or {"device_id": ...}."""
        if self.user_id is not None:
            return {"user_id": self.user_id}
        return {"device_id": self.device_id or ""}
