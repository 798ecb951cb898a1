"""bench/stats.py: the order runs are timed in, and how rounds become medians and ratios."""

from __future__ import annotations

from bench import stats


def test_interleave_warms_up_then_alternates_the_order_of_each_round() -> None:
    order: list[str] = []
    runs = {label: (lambda label=label: order.append(label)) for label in ("a", "b")}
    seconds = stats.interleave(runs, rounds=3, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert all(len(samples.values) == 3 for samples in seconds.values())
    assert stats.interleave({"t": lambda: stats.Timed(2.0)}, rounds=2, warmup=0)["t"].values == (2.0, 2.0)


def test_ratios_are_taken_round_by_round_and_shown_as_median_and_range() -> None:
    ratios = stats.ratio(stats.Samples((2.0, 4.0, 9.0)), stats.Samples((1.0, 1.0, 3.0)))
    assert (ratios.median, ratios.low, ratios.high) == (3.0, 2.0, 4.0)
    assert stats.Samples((1.0, 2.0, 3.0)).show(unit="x") == "2x (1–3)"
