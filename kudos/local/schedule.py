"""EventBridge's side, locally: the scheduled sweep of `kudos serve`, and the events it sends.

On AWS, EventBridge invokes SweepFunction every SweepEveryMinutes (template.yaml) with a scheduled
event whose `time` is the sweep's clock (campaigns.md "Clock"). Locally a thread does the same,
through the gateway's Lambda runner: one event at a time with the HTTP handlers, as one execution
environment would. `kudos demo` builds the same events with a pinned clock.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kudos.local import LocalError
from kudos.local.gateway import LocalLambda
from kudos.local.routes import Function, Template

SWEEP_FUNCTION = "SweepFunction"
SWEEP_EVERY_PARAMETER = "SweepEveryMinutes"
# When the template names no interval (a test stack): the product's default, 15 minutes.
DEFAULT_SWEEP_EVERY_S = 15 * 60.0
ACCOUNT = "123456789012"  # the account local ARNs name, as in events/*.json


def scheduled_event(
    at: float,
    *,
    region: str = "us-east-1",
    rule: str = "local-schedule",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """EventBridge's scheduled event for instant ``at`` (its `time`, whole seconds as AWS writes it)."""
    moment = datetime.fromtimestamp(int(at), UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule}"],
        "detail": dict(detail or {}),
    }


def sweep_function(template: Template) -> Function | None:
    return template.functions.get(SWEEP_FUNCTION)


def default_sweep_every(template: Template) -> float:
    """The template's SweepEveryMinutes default, in seconds (15 minutes when it has none)."""
    minutes = template.parameter_defaults.get(SWEEP_EVERY_PARAMETER)
    try:
        return float(minutes) * 60 if minutes is not None else DEFAULT_SWEEP_EVERY_S
    except (TypeError, ValueError):
        raise LocalError(f"{template.path}: {SWEEP_EVERY_PARAMETER} default is not a number") from None


class Sweeper:
    """Invokes the sweep function every ``every`` seconds, the first one interval after start (as a
    new EventBridge rate rule does), with a scheduled event whose `time` is now.

    ``stop()`` lets a running sweep finish (it is recorded only when complete, and DynamoDB must
    outlive it), then ends the thread.
    """

    def __init__(
        self,
        runtime: LocalLambda,
        function: Function,
        every: float,
        *,
        clock: Callable[[], float] = time.time,
        log: bool = True,
    ) -> None:
        if every <= 0:
            raise ValueError("every: a positive number of seconds")
        self.runtime = runtime
        self.function = function
        self.every = every
        self.clock = clock
        self.log = log
        self.runs = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kudos-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        next_at = time.monotonic() + self.every
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.run_once()
            # A fixed rate, not a fixed delay; a sweep longer than the interval skips the missed ticks.
            next_at += self.every
            while next_at <= time.monotonic():
                next_at += self.every

    def run_once(self) -> Any:
        """One scheduled invocation now; its result, or None when the handler raised (logged)."""
        event = scheduled_event(
            self.clock(), region=self.runtime.region, rule=f"{self.function.logical_id}-local"
        )
        started = time.perf_counter()
        try:
            result = self.runtime.invoke(self.function, event)
        except Exception as error:
            self.failures += 1
            print(
                f"scheduled {self.function.logical_id} at {event['time']} raised "
                f"{type(error).__name__}: {error}\n{traceback.format_exc()}",
                file=sys.stderr,
                flush=True,
            )
            return None
        self.runs += 1
        if self.log:
            elapsed = (time.perf_counter() - started) * 1000
            print(
                f"scheduled {self.function.logical_id} at {event['time']}: {_summary(result)} ({elapsed:.0f} ms)",
                file=sys.stderr,
                flush=True,
            )
        return result


def _summary(result: Any) -> str:
    if isinstance(result, dict) and {"kind", "users_read", "changes"} <= result.keys():
        return f"{result['kind']} sweep, {result['users_read']} users read, {result['changes']} changes"
    return "done"
