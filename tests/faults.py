"""Fault injection for the in-memory store and push fakes: every call a piece of code makes on a
storage port, the send queue or the push service is counted, and one of them can be made to fail.

Three kinds of failure, each at one call:
- ``died``: the process dies just before the call (a Lambda timeout, an out-of-memory kill). It is
  raised as a BaseException, so that no ``except Exception`` of the code under test runs, as none
  would in a dead process.
- ``failed``: the call raises before it takes effect (a refused connection, a throttled request);
  the code's own handlers run.
- ``lost``: the call takes effect, then raises (a timeout after the service did the work: the
  caller cannot tell it from ``failed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kudos.store.memory import MemoryStore, RecordingPush

FaultKind = Literal["died", "failed", "lost"]
FAULT_KINDS: tuple[FaultKind, ...] = ("died", "failed", "lost")
PORTS = ("users", "pointers", "activity", "figures", "memberships", "events", "campaigns", "send_queue")


class Died(BaseException):
    """The process died before this call (no handler of the code under test catches it)."""


class Failed(Exception):
    """A call that failed (before or after taking effect)."""


@dataclass(frozen=True)
class Fault:
    at: int  # the call that fails, counted from 0 since Calls.reset()
    kind: FaultKind
    call: str | None = None  # when given, ``at`` counts only the calls of this name ("push.publish")


class Calls:
    """Counts (and names) the calls made on ``store``'s ports and on ``push``; fails one when armed.
    ``on_fault(before)`` runs when the fault strikes: before the call, and for ``lost`` after it too."""

    def __init__(self, store: MemoryStore, push: RecordingPush) -> None:
        self.log: list[str] = []
        self.fault: Fault | None = None
        self.struck: str | None = None  # the call the fault struck, once it has
        self.on_fault: Callable[[bool], None] = lambda before: None
        for port_name in PORTS:
            self._wrap(getattr(store, port_name), port_name)
        self._wrap(push, "push")

    def reset(self, fault: Fault | None = None) -> None:
        self.log = []
        self.fault = fault
        self.struck = None

    def disarm(self) -> None:
        """No fault from now on (``struck`` still says where one struck)."""
        self.fault = None

    def _wrap(self, port: Any, port_name: str) -> None:
        for name in dir(port):
            if name.startswith("_"):
                continue
            original = getattr(port, name)
            if not callable(original) or isinstance(original, type):
                continue
            setattr(port, name, self._counted(f"{port_name}.{name}", original))

    def _counted(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            fault = self.fault
            number = len(self.log) if fault is None or fault.call is None else self.log.count(fault.call)
            self.log.append(name)
            if fault is None or fault.at != number or fault.call not in (None, name):
                return original(*args, **kwargs)
            self.fault = None
            self.struck = name
            self.on_fault(True)
            if fault.kind == "lost":
                original(*args, **kwargs)
                self.on_fault(False)
            if fault.kind == "died":
                raise Died(name)
            raise Failed(name)

        return counted
