"""One way of measuring for every benchmark: warm up, interleave, report medians with their range.

- ``interleave(runs, rounds=..., warmup=...)``: ``runs`` maps a label to a no-argument callable that
  does one run. Every run is first called ``warmup`` times untimed (JIT, connections, caches on
  both sides: the side measured first must not pay for them), then the runs are timed round by
  round, A B C, then C B A, ...: drift in the machine's load (it is shared) falls on every side
  alike. Returns a ``Samples`` of seconds per label, one value per round. A run whose setup must
  stay out of the timing times itself and returns ``Timed(seconds)``.
- ``Samples``: ``median``, ``low``, ``high``, ``per(n)`` (seconds per item), ``rate(n)`` (items per
  second), ``scaled(k)``, ``show(scale, digits)`` -> ``"123 (118–130)"``.
- ``ratio(a, b)``: round-by-round a/b (both measured in the same round, so under the same load) as
  ``Samples``: the median ratio and its range, not a ratio of two separately chosen figures.
- ``quick_requested(argv)``: ``--quick`` or ``KUDOS_BENCH_QUICK=1``: tiny sizes for a smoke run.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

QUICK_ENV = "KUDOS_BENCH_QUICK"


def quick_requested(argv: Sequence[str] | None = None) -> bool:
    if argv is not None and "--quick" in argv:
        return True
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Samples:
    """One value per round (seconds, a rate, a ratio: whatever was derived from the timings)."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def scaled(self, factor: float) -> Samples:
        return Samples(tuple(value * factor for value in self.values))

    def per(self, items: float) -> Samples:
        """Seconds per item, from seconds per run."""
        return self.scaled(1.0 / items)

    def rate(self, items: float) -> Samples:
        """Items per second, from seconds per run (the low end is the slowest run)."""
        return Samples(tuple(items / value for value in self.values))

    def show(self, scale: float = 1.0, digits: int = 0, unit: str = "") -> str:
        """``median<unit> (min–max)``, each value multiplied by ``scale``; unit as given ("x", " µs")."""
        median, low, high = (f"{value * scale:,.{digits}f}" for value in (self.median, self.low, self.high))
        if len(self.values) == 1:
            return f"{median}{unit} (1 run)"
        return f"{median}{unit} ({low}–{high})"


def ratio(numerator: Samples, denominator: Samples) -> Samples:
    """Round-by-round ratio of two interleaved measurements."""
    if len(numerator.values) != len(denominator.values):
        raise ValueError("ratio of samples from different numbers of rounds")
    return Samples(tuple(a / b for a, b in zip(numerator.values, denominator.values, strict=True)))


def total(samples: Iterable[Samples]) -> Samples:
    """Round-by-round sum (e.g. the time of several rules measured over the same rounds)."""
    columns = [sample.values for sample in samples]
    return Samples(tuple(sum(values) for values in zip(*columns, strict=True)))


@dataclass(frozen=True)
class Timed:
    """What a run returns when it must time itself: its setup (fresh tables, say) is not timed."""

    seconds: float


def time_once(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    return result.seconds if isinstance(result, Timed) else elapsed


def schedule(labels: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, label) in measuring order: A B, then B A, then A B, ... so neither side always goes first."""
    for round_index in range(rounds):
        for label in labels if round_index % 2 == 0 else labels[::-1]:
            yield round_index, label


def warm_up(runs: Mapping[str, Callable[[], object]], times: int = 1) -> None:
    """Call every run, untimed, `times` times each, interleaved like the measurement."""
    for _ in range(times):
        for run in runs.values():
            run()


def interleave(
    runs: Mapping[str, Callable[[], object]], *, rounds: int, warmup: int = 1
) -> dict[str, Samples]:
    """Seconds per run of each label over `rounds` interleaved rounds, after `warmup` untimed ones.

    Rounds alternate direction (A B, B A, A B, ...) so that neither side always runs first.
    """
    if rounds < 1:
        raise ValueError("at least one round")
    warm_up(runs, warmup)
    seconds: dict[str, list[float]] = {label: [] for label in runs}
    for _, label in schedule(list(runs), rounds):
        seconds[label].append(time_once(runs[label]))
    return {label: Samples(tuple(values)) for label, values in seconds.items()}
