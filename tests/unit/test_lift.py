"""kudos/campaigns/lift.py: Newcombe's published examples, the minimum detectable effect at its edges,
the verdict, and properties of the interval over random counts."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kudos.campaigns.lift import (
    CONCLUSIVE,
    TOO_SMALL,
    Z_95,
    Z_POWER_80,
    lift,
    minimum_detectable_effect,
    newcombe_interval,
    wilson,
)

# Newcombe RG. Interval estimation for the difference between independent proportions: comparison of
# eleven methods. Statistics in Medicine 1998; 17:873-890. Table II, examples (a)-(h), method 10
# (score, no continuity correction), limits to 4 decimals. Example (c), 6/7 vs 2/7, is 0.0582 to
# 0.8062 for method 10 (derived here from the Wilson limits as well); 0.0342 in the same table is
# method 6's (Miettinen-Nurminen) lower limit, not method 10's.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), 0.2000, (0.0524, 0.3339)),
    ((9, 10, 3, 10), 0.6000, (0.1705, 0.8090)),
    ((6, 7, 2, 7), 0.5714, (0.0582, 0.8062)),
    ((5, 56, 0, 29), 0.0893, (-0.0381, 0.1926)),
    ((0, 10, 0, 20), 0.0000, (-0.1611, 0.2775)),
    ((0, 10, 0, 10), 0.0000, (-0.2775, 0.2775)),
    ((10, 10, 0, 20), 1.0000, (0.6791, 1.0000)),
    ((10, 10, 0, 10), 1.0000, (0.6075, 1.0000)),
]

# Newcombe RG. Two-sided confidence intervals for the single proportion: comparison of seven methods.
# Statistics in Medicine 1998; 17:857-872. Table I, method 3 (Wilson score, no continuity correction).
NEWCOMBE_WILSON = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0000, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]

FOUR_DECIMALS = 5e-5


def approx4(pair: tuple[float, float]) -> tuple[object, object]:
    return (pytest.approx(pair[0], abs=FOUR_DECIMALS), pytest.approx(pair[1], abs=FOUR_DECIMALS))


@pytest.mark.parametrize(("counts", "difference", "limits"), NEWCOMBE_TABLE_II)
def test_lift_reproduces_newcombe_table_ii_method_10(
    counts: tuple[int, int, int, int], difference: float, limits: tuple[float, float]
) -> None:
    result = lift(*counts)
    assert result is not None
    assert result.absolute == pytest.approx(difference, abs=FOUR_DECIMALS)
    assert result.ci95 == approx4(limits)


@pytest.mark.parametrize(("counts", "limits"), NEWCOMBE_WILSON)
def test_wilson_reproduces_newcombe_single_proportion_table_i(
    counts: tuple[int, int], limits: tuple[float, float]
) -> None:
    assert wilson(*counts) == approx4(limits)


def test_the_quantiles_are_the_standard_normal_ones() -> None:
    assert Z_95 == 1.959963984540054
    assert pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-12) == Z_95
    assert pytest.approx(NormalDist().inv_cdf(0.8), abs=1e-12) == Z_POWER_80


def test_rates_and_difference_are_the_plain_ratios() -> None:
    result = lift(30, 200, 5, 100)
    assert result is not None
    assert (result.conversion_rate, result.control_conversion_rate) == (0.15, 0.05)
    assert result.absolute == pytest.approx(0.10, abs=1e-15)


@pytest.mark.parametrize("counts", [(0, 0, 3, 10), (3, 10, 0, 0), (0, 0, 0, 0)])
def test_no_lift_while_either_group_is_empty(counts: tuple[int, int, int, int]) -> None:
    assert lift(*counts) is None


@pytest.mark.parametrize("counts", [(11, 10, 0, 10), (0, 10, 11, 10), (-1, 10, 0, 10), (0, 10, 0, -1)])
def test_impossible_counts_are_refused(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"negative count|conversions out of"):
        lift(*counts)


def test_verdict_conclusive_when_the_interval_excludes_zero_either_way() -> None:
    up = lift(56, 70, 48, 80)  # 0.0524 to 0.3339
    down = lift(48, 80, 56, 70)
    assert up is not None
    assert down is not None
    assert up.verdict == down.verdict == CONCLUSIVE
    assert up.conclusive
    assert down.conclusive
    assert down.ci95 == approx4((-0.3339, -0.0524))


def test_verdict_too_small_to_conclude_when_the_interval_includes_zero() -> None:
    result = lift(5, 56, 0, 29)  # -0.0381 to 0.1926: 8.9 points seen, 19.4 needed
    assert result is not None
    assert result.verdict == TOO_SMALL == "too small to conclude"
    assert not result.conclusive
    assert result.mde is not None
    assert result.mde > result.absolute


def test_a_large_campaign_tells_a_lift_above_its_mde() -> None:
    result = lift(1_150, 20_000, 1_000, 20_000)  # 5.75 % vs 5.0 %: 0.31 to 1.19 points
    assert result is not None
    assert result.conclusive
    assert result.mde is not None
    assert result.mde == pytest.approx(0.00628, abs=1e-5)
    assert result.mde < result.absolute


def test_an_interval_clear_of_zero_is_conclusive_even_below_the_mde() -> None:
    """The MDE is what these groups detect 80 % of the time; a smaller lift that did show is shown."""
    result = lift(1_100, 20_000, 1_000, 20_000)  # 5.5 % vs 5.0 %
    assert result is not None
    assert result.ci95[0] > 0
    assert result.mde is not None
    assert result.absolute < result.mde
    assert result.verdict == CONCLUSIVE


def _power(sent: int, held_out: int, p2: float, p1: float) -> float:
    """Power of the two-sided 95 % test (normal approximation, upper tail) at true rates p1, p2."""
    pbar = (sent * p1 + held_out * p2) / (sent + held_out)
    null = math.sqrt(pbar * (1 - pbar) * (1 / sent + 1 / held_out))
    alternative = math.sqrt(p1 * (1 - p1) / sent + p2 * (1 - p2) / held_out)
    return NormalDist().cdf((abs(p1 - p2) - Z_95 * null) / alternative)


@pytest.mark.parametrize(
    ("sent", "held_out", "control_rate"),
    [(1000, 1000, 0.10), (500, 2000, 0.05), (20_000, 1_000, 0.30), (100, 100, 0.0), (400, 40, 0.90)],
)
def test_mde_is_the_difference_detected_with_80_percent_power(
    sent: int, held_out: int, control_rate: float
) -> None:
    mde = minimum_detectable_effect(sent, held_out, control_rate)
    assert mde is not None
    assert _power(sent, held_out, control_rate, control_rate + mde) == pytest.approx(0.8, abs=1e-9)
    assert _power(sent, held_out, control_rate, control_rate + mde * 0.99) < 0.8


def test_mde_for_1000_a_side_at_10_percent() -> None:
    # The textbook shortcut (1.96 + 0.84) * sqrt(0.1 * 0.9 * 2/1000) says 3.76 points; with the variance
    # at the higher rate too it is 4.07.
    assert minimum_detectable_effect(1000, 1000, 0.10) == pytest.approx(0.040745, abs=1e-6)


def test_mde_at_a_0_percent_control_rate_is_not_zero() -> None:
    # The shortcut sqrt(p2 (1 - p2)) would say any rise from 0 % is detectable.
    mde = minimum_detectable_effect(1000, 1000, 0.0)
    assert mde is not None
    assert 0.005 < mde < 0.01
    assert minimum_detectable_effect(1000, 1000, 0.0, rise=False) is None  # nothing below 0 %


def test_mde_at_a_100_percent_control_rate_is_a_fall() -> None:
    assert minimum_detectable_effect(1000, 1000, 1.0) is None  # nothing above 100 %
    fall = minimum_detectable_effect(1000, 1000, 1.0, rise=False)
    assert fall == pytest.approx(minimum_detectable_effect(1000, 1000, 0.0))
    everyone = lift(10, 10, 20, 20)  # 100 % both sides
    assert everyone is not None
    assert everyone.mde == pytest.approx(minimum_detectable_effect(10, 20, 1.0, rise=False))
    assert everyone.verdict == TOO_SMALL


def test_mde_follows_the_direction_of_the_observed_difference() -> None:
    down = lift(2, 100, 10, 100)
    assert down is not None
    assert down.absolute < 0
    assert down.mde == minimum_detectable_effect(100, 100, 0.10, rise=False)
    assert down.mde != minimum_detectable_effect(100, 100, 0.10, rise=True)


def test_mde_is_none_when_the_groups_are_too_small_for_any_change() -> None:
    assert minimum_detectable_effect(1, 1, 0.0) is None
    result = lift(1, 1, 0, 1)  # 100 % vs 0 %, one user each
    assert result is not None
    assert result.mde is None
    assert result.verdict == TOO_SMALL


def test_mde_refuses_empty_groups_and_rates_outside_0_1() -> None:
    with pytest.raises(ValueError, match="both groups"):
        minimum_detectable_effect(0, 10, 0.5)
    with pytest.raises(ValueError, match="not in"):
        minimum_detectable_effect(10, 10, 1.5)


# --- properties over random counts ---------------------------------------------------------------


@st.composite
def two_groups(draw: st.DrawFn, max_size: int = 5_000) -> tuple[int, int, int, int]:
    sent = draw(st.integers(min_value=1, max_value=max_size))
    held_out = draw(st.integers(min_value=1, max_value=max_size))
    conversions = draw(st.integers(min_value=0, max_value=sent))
    control_conversions = draw(st.integers(min_value=0, max_value=held_out))
    return conversions, sent, control_conversions, held_out


@given(two_groups())
def test_interval_contains_the_difference_and_lies_within_minus_one_one(
    counts: tuple[int, int, int, int],
) -> None:
    result = lift(*counts)
    assert result is not None
    low, high = result.ci95
    assert -1.0 <= low <= result.absolute <= high <= 1.0


@given(two_groups())
def test_swapping_the_groups_flips_the_sign(counts: tuple[int, int, int, int]) -> None:
    conversions, sent, control_conversions, held_out = counts
    low, high = newcombe_interval(conversions, sent, control_conversions, held_out)
    swapped_low, swapped_high = newcombe_interval(control_conversions, held_out, conversions, sent)
    assert swapped_low == pytest.approx(-high, abs=1e-12)
    assert swapped_high == pytest.approx(-low, abs=1e-12)


@given(two_groups(max_size=1_000), st.integers(min_value=2, max_value=50))
def test_interval_narrows_as_the_groups_grow(counts: tuple[int, int, int, int], factor: int) -> None:
    """The same rates from `factor` times as many users: a strictly narrower interval."""
    low, high = newcombe_interval(*counts)
    grown_low, grown_high = newcombe_interval(*(count * factor for count in counts))
    assert grown_high - grown_low < high - low


@given(two_groups(max_size=1_000), st.integers(min_value=2, max_value=50))
def test_mde_shrinks_as_the_groups_grow(counts: tuple[int, int, int, int], factor: int) -> None:
    _, sent, control_conversions, held_out = counts
    rate = control_conversions / held_out
    mde = minimum_detectable_effect(sent, held_out, rate, rise=rate < 1)
    grown = minimum_detectable_effect(sent * factor, held_out * factor, rate, rise=rate < 1)
    if mde is not None:
        assert grown is not None
        assert grown < mde


@given(two_groups(max_size=100_000))
def test_an_inconclusive_difference_is_below_the_mde(counts: tuple[int, int, int, int]) -> None:
    """What the report prints holds together: an interval through 0 goes with an observed difference
    these groups could not have been expected to detect."""
    result = lift(*counts)
    assert result is not None
    if result.verdict == TOO_SMALL:
        assert result.mde is None or abs(result.absolute) < result.mde
    else:
        assert result.ci95[0] > 0 or result.ci95[1] < 0
