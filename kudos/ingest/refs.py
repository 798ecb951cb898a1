"""Which profile an item belongs to (api.md: by user_id when known, else by device_id or user alias)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from kudos.core.identity import UserAlias, UserKey
from kudos.ingest.validation import MAX_KEY_PART_BYTES, Id
from kudos.store.ports import PointersPort

# The keys that name an item's user (or say how to treat it) on /v1/users/track.
IDENTIFIERS = ("external_id", "user_alias", "device_id")
SUPPORTED = "name the user with external_id, user_alias or device_id"
# Braze identifies users by these too; kudos does not, and says so rather than guess.
UNSUPPORTED_IDENTIFIERS = {
    "braze_id": f"not supported: kudos has no Braze ids; {SUPPORTED}",
    "email": f"identifying a user by email is not supported; {SUPPORTED}",
    "phone": f"identifying a user by phone is not supported; {SUPPORTED}",
}


class AliasIn(BaseModel):
    """Braze's user alias: ``{"alias_name": "...", "alias_label": "..."}``."""

    model_config = ConfigDict(extra="ignore")

    alias_name: Id
    alias_label: Id

    @model_validator(mode="after")
    def _fits_a_key(self) -> Any:
        # The alias's token (a:<label>:<name>) is a sort key of the members and due indexes.
        if len(self.key.token.encode()) > MAX_KEY_PART_BYTES:
            raise PydanticCustomError(
                "alias_too_long",
                f"alias_label and alias_name together are longer than {MAX_KEY_PART_BYTES} bytes in UTF-8",
            )
        return self

    @property
    def key(self) -> UserKey:
        return UserKey(None, None, UserAlias(self.alias_label, self.alias_name))


class UserRef(BaseModel):
    """An item naming its user Braze's way: ``external_id``, else ``user_alias``, else ``device_id``;
    ``_update_existing_only: true`` updates only a profile that exists."""

    model_config = ConfigDict(extra="ignore")

    external_id: Id | None = None
    user_alias: AliasIn | None = None
    device_id: Id | None = None
    update_existing_only: StrictBool = Field(False, alias="_update_existing_only")

    @model_validator(mode="after")
    def _names_a_user(self) -> Any:
        if self.external_id is None and self.user_alias is None and self.device_id is None:
            raise PydanticCustomError("no_user", f"names no user: {SUPPORTED}")
        return self

    @property
    def key(self) -> UserKey:
        """The profile the item names, before identify's pointers are followed."""
        if self.external_id is not None:
            return UserKey.of_user(self.external_id)
        if self.user_alias is not None:
            return self.user_alias.key
        assert self.device_id is not None
        return UserKey.of_device(self.device_id)

    @property
    def named_by(self) -> str:
        """The field that names the user (for messages)."""
        return next(name for name in IDENTIFIERS if getattr(self, name) is not None)


def unsupported_identifier(raw: dict[str, Any]) -> tuple[str, str] | None:
    """(field, problem) when ``raw`` names its user in a way kudos does not support: a braze_id
    always, an email or phone when nothing else names the user (else they are attributes)."""
    if "braze_id" in raw:
        return ("braze_id", UNSUPPORTED_IDENTIFIERS["braze_id"])
    if not any(raw.get(name) is not None for name in IDENTIFIERS):
        for name in ("email", "phone"):
            if name in raw:
                return (name, UNSUPPORTED_IDENTIFIERS[name])
    return None


def resolve_refs(pointers: PointersPort, refs: list[UserRef]) -> list[UserKey]:
    """The profile of each ref: its user id, the user its device or alias was merged into, or the
    device or alias itself (an anonymous profile)."""
    named = [ref.key for ref in refs]
    merged = pointers.resolve_anonymous(key for key in named if key.anonymous)
    return [merged.get(key, key) for key in named]
