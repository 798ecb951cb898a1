"""Write units as DynamoDB bills them, from what it reports plus AWS's documented rules.

DynamoDB reports ConsumedCapacity for successful calls. Two things it bills are not always in
what a local emulator reports: a write whose condition fails still costs the write units of the
item (DynamoDB Local answers with an error and no capacity), and a transactional write costs two
units per item-KB (prepare and commit). Both are computed here from item sizes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

WRITE_UNIT_BYTES = 1024


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, per the DynamoDB item size rules."""
    kind, content = next(iter(value.items()))
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        digits = content.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits.rstrip("0") or "0") / 2) + 1
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(element) for name, element in content.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: element}) for element in content)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(*items: dict[str, dict[str, Any]] | None) -> int:
    """Units of one write: by the larger of the item before and after, at least one."""
    largest = max((item_size(item) for item in items if item), default=0)
    return max(1, math.ceil(largest / WRITE_UNIT_BYTES))


@dataclass(slots=True)
class CapacityMeter:
    """Accumulates what a Store's calls cost; the benchmark reads it."""

    reported_write_units: float = 0.0
    reported_read_units: float = 0.0
    failed_condition_write_units: float = 0.0
    failed_conditional_writes: int = 0
    transaction_reported_units: float = 0.0
    transaction_billed_units: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def _units(consumed: Any) -> float:
        entries = consumed if isinstance(consumed, list) else [consumed] if consumed else []
        return sum(float(entry.get("CapacityUnits", 0.0)) for entry in entries)

    def wrote(self, consumed: Any) -> None:
        with self.lock:
            self.reported_write_units += self._units(consumed)

    def read(self, consumed: Any) -> None:
        with self.lock:
            self.reported_read_units += self._units(consumed)

    def failed_condition(self, *items: dict[str, dict[str, Any]] | None) -> None:
        with self.lock:
            self.failed_conditional_writes += 1
            self.failed_condition_write_units += write_units(*items)

    def transaction(self, consumed: Any, items: list[dict[str, dict[str, Any]]]) -> None:
        with self.lock:
            self.transaction_reported_units += self._units(consumed)
            self.transaction_billed_units += sum(2 * write_units(item) for item in items)

    @property
    def billed_write_units(self) -> float:
        return (
            self.reported_write_units
            + max(self.transaction_reported_units, self.transaction_billed_units)
            + self.failed_condition_write_units
        )
