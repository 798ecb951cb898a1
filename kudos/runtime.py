"""The process-wide services a handler needs, built on first use and never at import time.

Lambda keeps a process warm between invocations, so the store (and its boto3 client) is made
once per process. Tests and `kudos serve` call ``reset()`` after changing the environment, or
``install()`` to inject their own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from dsl import SegmentSet
from kudos.core.clock import Clock, system_clock
from kudos.core.credentials import KeyKind, KeyRing
from kudos.core.settings import Settings, get_settings
from kudos.segments.queries import deployed_segments
from kudos.store.dynamo import Store
from kudos.store.ports import PushPort
from kudos.store.secrets import forget_keys, load_key_ring
from kudos.store.sns_push import SnsPush


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: Store
    clock: Clock
    # Amazon SNS unless injected (tests and the demo record pushes instead); its client is lazy.
    push: PushPort = None  # type: ignore[assignment]  # filled in by __post_init__

    def __post_init__(self) -> None:
        if self.push is None:
            object.__setattr__(self, "push", SnsPush(self.settings))

    def segments(self) -> SegmentSet:
        """The deployed rules, compiled once per process (and per rules directory)."""
        return deployed_segments(self.settings.segments_dir)

    def key_ring(self, kind: KeyKind) -> KeyRing:
        """The API keys of ``kind`` in force now (kept in the process for a short while)."""
        return load_key_ring(self.settings, kind)


class _Current:
    """The process's services; a holder object rather than a module global to rebind."""

    lock = threading.Lock()
    services: Services | None = None


def services() -> Services:
    if _Current.services is None:
        with _Current.lock:
            if _Current.services is None:
                settings = get_settings()
                _Current.services = Services(settings=settings, store=Store(settings), clock=system_clock)
    return _Current.services


def install(replacement: Services) -> None:
    with _Current.lock:
        _Current.services = replacement


def reset() -> None:
    """Forget the settings and services: the next use reads the environment again."""
    with _Current.lock:
        _Current.services = None
    get_settings.cache_clear()
    forget_keys()
