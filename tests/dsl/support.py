"""Shared helpers for the dsl tests: a fixed evaluation instant and one-rule compilation."""

from __future__ import annotations

import functools

from dsl import SegmentSet, compile_sources
from kudos.core.profile import Profile
from kudos.core.timeutil import SECONDS_PER_DAY, parse_instant

# A Friday afternoon, well inside its UTC day.
AT = parse_instant("2026-11-20T15:30:00Z")
AT_DAY = int(AT // SECONDS_PER_DAY)
DAY = float(SECONDS_PER_DAY)


@functools.cache
def rule(expression: str) -> SegmentSet:
    """`expression` as the whole body of a segment named `rule`."""
    return compile_sources([("rule.seg", f"segment rule {{ {expression} }}")])


def holds(expression: str, profile: Profile, at: float = AT) -> bool:
    return rule(expression).evaluate("rule", profile, at)


def make_profile(**fields: object) -> Profile:
    """An identified user with nothing recorded, then `fields` set as attributes."""
    profile = Profile(user_id="user-1", device_id=None)
    for name, value in fields.items():
        setattr(profile, name, value)
    return profile
