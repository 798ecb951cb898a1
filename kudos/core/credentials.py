"""API keys: which kind a request needs, whether the key it presents is one, and how logs name a key.

Pure rules, shared by the Lambda authorizer and the handlers' own check (defence in depth, and the
only check under `kudos serve`): where the keys are stored is kudos.store.secrets', how a request
carries a key is functions/http.py's.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from kudos.core.errors import Unauthorized

KeyKind = Literal["app", "server"]


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The keys of one kind in force now. Several at once: rotation deploys "old,new", then "new"."""

    kind: KeyKind
    keys: frozenset[str]
    # False only when no key of any kind is configured and none is required (a local run): then
    # every request passes. True with no keys refuses everything (a misconfigured stack fails closed).
    enforced: bool = True


def parse_keys(text: str) -> frozenset[str]:
    """Keys written as one comma-separated string (an environment variable, a parameter's value)."""
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def check_key(ring: KeyRing, presented: str | None) -> None:
    """Raise Unauthorized unless ``presented`` is one of the ring's keys (when keys are enforced)."""
    if not ring.enforced:
        return
    if presented is None:
        raise Unauthorized(f"an {ring.kind} key is required (x-api-key or Authorization: Bearer)")
    # Compare with every key, in constant time for each: no early exit tells which one nearly matched.
    matches = [hmac.compare_digest(presented.encode(), key.encode()) for key in ring.keys]
    if not any(matches):
        raise Unauthorized(f"the key is not a valid {ring.kind} key")


def key_fingerprint(key: str | None) -> str:
    """What a log line may say about a key: a short hash that tells keys apart, never the key."""
    if key is None:
        return "none"
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:12]
