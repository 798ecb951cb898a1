"""Which profile an item belongs to (api.md: by user_id when known, else by device_id)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from kudos.core.identity import UserKey
from kudos.ingest.validation import Id
from kudos.store.ports import PointersPort


class UserRef(BaseModel):
    """An item naming its user Braze's way: ``external_id`` and/or ``device_id``."""

    model_config = ConfigDict(extra="ignore")

    external_id: Id | None = None
    device_id: Id | None = None

    @model_validator(mode="after")
    def _names_a_user(self) -> Any:
        if self.external_id is None and self.device_id is None:
            raise PydanticCustomError("missing", "external_id or device_id is required")
        return self


def resolve_refs(pointers: PointersPort, refs: list[UserRef]) -> list[UserKey]:
    """The profile of each ref: its user id, the user its device was merged into, or the device."""
    aliases = pointers.resolve_devices(r.device_id for r in refs if r.external_id is None and r.device_id)
    resolved = []
    for ref in refs:
        if ref.external_id is not None:
            resolved.append(UserKey(ref.external_id, None))
        else:
            assert ref.device_id is not None
            resolved.append(aliases.get(ref.device_id) or UserKey(None, ref.device_id))
    return resolved
