"""The server clock, injected so that tests and the demo can pin "now"."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


def fixed_clock(instant: float) -> Clock:
    return lambda: instant
