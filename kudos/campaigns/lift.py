"""A campaign's lift (campaigns.md Results): the conversion rate of those sent the push against that of
the held-out control group, the difference with its 95 % confidence interval, the smallest difference
groups of these sizes could detect, and whether the figures allow a conclusion. Pure arithmetic on four
counts, standard library only.

- ``lift(conversions, sent, control_conversions, held_out) -> Lift | None``: None while either group is
  empty (no rate to compare).
- The interval is Newcombe's hybrid score interval without continuity correction (Newcombe 1998,
  "Interval estimation for the difference between independent proportions: comparison of eleven
  methods", Statistics in Medicine 17:873-890, method 10): it combines the Wilson score interval of
  each rate, keeps within [-1, 1], stays informative at 0 % and 100 % (where the textbook Wald interval
  collapses to a point) and has close to nominal coverage on small groups.
- ``minimum_detectable_effect``: the design figure the verdict is read against (formula in its
  docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# Two-sided 95 %: the 0.975 quantile of the standard normal (statistics.NormalDist().inv_cdf(0.975)).
Z_95 = 1.959963984540054
# 80 % power: the 0.8 quantile of the standard normal (statistics.NormalDist().inv_cdf(0.8)).
Z_POWER_80 = 0.8416212335729143

Verdict = Literal["conclusive", "too small to conclude"]
CONCLUSIVE: Verdict = "conclusive"
TOO_SMALL: Verdict = "too small to conclude"

_BISECTIONS = 200  # far past float resolution: each halves an interval no wider than 1


@dataclass(frozen=True)
class Lift:
    """``absolute`` = ``conversion_rate`` - ``control_conversion_rate``; ``ci95`` = (low, high).

    ``mde``: the minimum detectable effect (``minimum_detectable_effect``) in the direction of the
    observed difference (a fall when it is negative, or when the control rate is 100 % and no rise is
    possible; a rise otherwise), so that it compares with ``abs(absolute)``; None when no change that
    way, however large, would be detected with these group sizes.

    ``verdict``: ``"conclusive"`` when the interval excludes 0 (the push changed the conversion rate,
    up or down); ``"too small to conclude"`` when it includes 0: the observed difference cannot be told
    from chance with these group sizes. The observed difference is then below ``mde``, the size it would
    have needed to show (not a theorem: it held for every table up to 29 a side and at random up to
    10^7 a side, and tests/unit/test_lift.py checks it as a property); the report prints both.
    """

    conversion_rate: float
    control_conversion_rate: float
    absolute: float
    ci95: tuple[float, float]
    mde: float | None
    verdict: Verdict

    @property
    def conclusive(self) -> bool:
        return self.verdict == CONCLUSIVE


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for one proportion (Newcombe's method 3), without continuity correction:
    (2np + z² ∓ z·sqrt(z² + 4np(1-p))) / (2(n + z²)). At 0 successes the low end is 0, at n it is 1."""
    _check_counts(successes, trials)
    if trials == 0:
        raise ValueError("a proportion of 0 trials has no interval")
    p = successes / trials
    centre = 2 * trials * p + z * z
    spread = z * math.sqrt(z * z + 4 * trials * p * (1 - p))
    denominator = 2 * (trials + z * z)
    low = 0.0 if successes == 0 else (centre - spread) / denominator
    high = 1.0 if successes == trials else (centre + spread) / denominator
    return low, high


def newcombe_interval(
    successes1: int, trials1: int, successes2: int, trials2: int, z: float = Z_95
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for p1 - p2, d = p1 - p2, from the Wilson
    intervals (l1, u1) of p1 and (l2, u2) of p2:
    low = d - sqrt((p1 - l1)² + (u2 - p2)²), high = d + sqrt((u1 - p1)² + (p2 - l2)²)."""
    p1, p2 = successes1 / trials1, successes2 / trials2
    l1, u1 = wilson(successes1, trials1, z)
    l2, u2 = wilson(successes2, trials2, z)
    d = p1 - p2
    low = d - math.hypot(p1 - l1, u2 - p2)
    high = d + math.hypot(u1 - p1, p2 - l2)
    # Never outside [-1, 1] in exact arithmetic (p1 - l1 <= p1, u2 - p2 <= 1 - p2); clamp float dust.
    return max(-1.0, low), min(1.0, high)


def minimum_detectable_effect(
    sent: int,
    held_out: int,
    control_rate: float,
    rise: bool = True,
    z_alpha: float = Z_95,
    z_power: float = Z_POWER_80,
) -> float | None:
    """The smallest difference delta > 0 between the sent group's rate p1 and the control rate p2 that a
    two-sided test at 95 % confidence detects with 80 % power, by the normal approximation for two
    independent proportions (Fleiss's sample-size formula, without continuity correction, solved for
    the difference instead of the sizes):

        delta = z_alpha * sqrt(pbar(1 - pbar)(1/n1 + 1/n2)) + z_power * sqrt(p1(1 - p1)/n1 + p2(1 - p2)/n2)

    with p1 = p2 + delta (``rise``) or p2 - delta (a fall), pbar = (n1 p1 + n2 p2)/(n1 + n2),
    n1 = ``sent``, n2 = ``held_out``, z_alpha = 1.96, z_power = 0.84 (the other tail's share of the
    power is left out, as usual). The variances are taken at p1 as well as at p2, not at p2 alone: the
    shortcut (z_alpha + z_power)·sqrt(p2(1 - p2)(1/n1 + 1/n2)) says 0 at a 0 % or 100 % control rate,
    as if any change could be seen.

    Solved by bisection: delta minus the right-hand side is convex in delta (each square root is of a
    concave quadratic) and not positive at 0, so it is negative up to the answer and not negative
    from there on. None when no change that way fits in [0, 1] and is detected (a rise from a 100 %
    control rate, or groups too small for even the largest change).
    """
    if sent <= 0 or held_out <= 0:
        raise ValueError("both groups need members")
    if not 0.0 <= control_rate <= 1.0:
        raise ValueError(f"control rate {control_rate} is not in [0, 1]")
    # A fall from p2 is a rise from 1 - p2 in the complementary rate: the formula is symmetric in p, 1 - p.
    p2 = control_rate if rise else 1.0 - control_rate
    room = 1.0 - p2
    if room <= 0.0:
        return None

    def shortfall(delta: float) -> float:
        p1 = p2 + delta
        pbar = (sent * p1 + held_out * p2) / (sent + held_out)
        pooled = math.sqrt(max(0.0, pbar * (1 - pbar)) * (1 / sent + 1 / held_out))
        apart = math.sqrt(max(0.0, p1 * (1 - p1)) / sent + max(0.0, p2 * (1 - p2)) / held_out)
        return delta - z_alpha * pooled - z_power * apart

    if shortfall(room) < 0:
        return None
    low, high = 0.0, room  # shortfall(low) <= 0 (0 is never a detectable change), shortfall(high) >= 0
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if shortfall(middle) >= 0:
            high = middle
        else:
            low = middle
    return high


def lift(conversions: int, sent: int, control_conversions: int, held_out: int) -> Lift | None:
    """The lift of the sent group (``conversions`` of ``sent``) over the held-out control group
    (``control_conversions`` of ``held_out``); None while either group is empty."""
    _check_counts(conversions, sent)
    _check_counts(control_conversions, held_out)
    if sent == 0 or held_out == 0:
        return None
    p1, p2 = conversions / sent, control_conversions / held_out
    low, high = newcombe_interval(conversions, sent, control_conversions, held_out)
    absolute = p1 - p2
    fall = absolute < 0 or p2 == 1.0
    mde = minimum_detectable_effect(sent, held_out, p2, rise=not fall)
    verdict: Verdict = CONCLUSIVE if low > 0 or high < 0 else TOO_SMALL
    return Lift(
        conversion_rate=p1,
        control_conversion_rate=p2,
        absolute=absolute,
        ci95=(low, high),
        mde=mde,
        verdict=verdict,
    )


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0:
        raise ValueError(f"negative count: {successes} of {trials}")
    if successes > trials:
        raise ValueError(f"{successes} conversions out of {trials}")
