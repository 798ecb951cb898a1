"""Property tests: no input crashes the tool, and the compiled closures mean what a plain reading
of dsl.md (tests/dsl/reference_evaluator.py) means, on random rules, profiles and instants."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import Diagnostic, DslError, check_sources, compile_sources
from dsl.parser import parse_source
from kudos.core.profile import AttributeInstant, CampaignHistory, DailyCounts, EventStats, Profile
from kudos.core.timeutil import SECONDS_PER_DAY
from tests.dsl.reference_evaluator import reference_memberships
from tests.dsl.support import AT

PROPERTY_SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EVENTS = ("open", "buy")
CAMPAIGNS = ("welcome", "promo")
STRINGS = ("a", "ab", "b", "fr", "", "opted_in", "subscribed", "x y", "A", "Fr")
PATTERNS = ("^a", "b", "\\\\d", "^$", "a|fr")
UNITS = ("minute", "minutes", "hour", "hours", "day", "days", "week", "weeks")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
AMOUNTS = (0, 1, 2, 7, 10, 30)

# --- rule text ----------------------------------------------------------------------------------

# Window lengths are mostly the ones whose edges the profiles' day offsets sit on.
windows = st.sampled_from(
    [
        *("last 1 day", "last 2 days", "last 7 days", "last 30 days", "last 90 days"),
        *("last 1 week", "last 2 weeks", "last 12 weeks", "last 14 days", "last 45 days"),
    ]
)
string_literals = st.sampled_from(STRINGS).map(lambda text: f'"{text}"')
number_literals = st.one_of(
    st.integers(-2, 15).map(str), st.sampled_from(["2.5", "0.0", "-1.5", "100.25", "1.0"])
)
bool_literals = st.sampled_from(["true", "false"])
instant_literals = st.one_of(
    st.just("now"),
    st.builds(
        lambda amount, unit, past: f"{amount} {unit} {'ago' if past else 'from now'}",
        st.sampled_from(AMOUNTS),
        st.sampled_from(UNITS),
        st.booleans(),
    ),
    st.sampled_from(["2026-11-20", "2026-11-13", "2026-11-20T15:30:00Z", "2026-11-19T23:59:59.5Z"]),
)
# Custom attributes are compared with values chosen to collide across types (1, 1.0, true, "1").
CUSTOM_SCALARS = ("a", "A", "1", "", 0, 1, 1.0, 2.5, -1, True, False)
# One flat list: nested one_of would make some kinds rare.
attribute_literals = st.sampled_from(
    [
        *('"a"', '"A"', '"1"', '""', "0", "1", "1.0", "2.5", "-1", "true", "false"),
        *("now", "7 days ago", "1 hour from now", "0 minutes ago", "2026-11-20", "2026-11-13T15:30:00Z"),
    ]
)
LITERALS = {
    "string": string_literals,
    "number": number_literals,
    "bool": bool_literals,
    "instant": instant_literals,
}


def _lists(items: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(items, max_size=4).map(lambda values: "[" + ", ".join(values) + "]")


def _build_subjects(kind: str, earlier_segments: tuple[str, ...]) -> st.SearchStrategy[str]:
    events = st.sampled_from(EVENTS).map(lambda name: f'"{name}"')
    campaigns = st.sampled_from(CAMPAIGNS).map(lambda name: f'"{name}"')
    if kind == "string":
        return st.sampled_from(
            ["user_id", "country", "language", "platform", "email", "push_subscription", "email_subscription"]
        )
    if kind == "number":
        return st.one_of(
            st.sampled_from(["sessions", "purchases", "spent", "random_bucket"]),
            st.builds(
                lambda name, window: f"{name}({window})",
                st.sampled_from(["sessions", "purchases", "spent"]),
                windows,
            ),
            events.map(lambda name: f"events({name})"),
            st.builds(lambda name, window: f"events({name}, {window})", events, windows),
            st.builds(
                lambda name, window: f"{name}({window})",
                st.sampled_from(["pushes_received", "pushes_opened"]),
                windows,
            ),
        )
    if kind == "bool":
        options = [
            st.sampled_from(["anonymous", "push_enabled"]),
            st.builds(
                lambda function, name: f"{function}({name})",
                st.sampled_from(["received", "opened", "converted", "in_control"]),
                campaigns,
            ),
            st.builds(
                lambda function, name, window: f"{function}({name}, {window})",
                st.sampled_from(["received", "opened"]),
                campaigns,
                windows,
            ),
        ]
        if earlier_segments:
            options.append(st.sampled_from(earlier_segments).map(lambda name: f'in_segment("{name}")'))
        return st.one_of(options)
    if kind == "instant":
        return st.one_of(
            st.sampled_from(
                [
                    "created_at",
                    "first_session",
                    "last_session",
                    "first_purchase",
                    "last_purchase",
                    "push_opted_in_at",
                    "push_unsubscribed_at",
                    "last_received_any",
                    "last_opened_any",
                ]
            ),
            st.builds(
                lambda function, name: f"{function}({name})",
                st.sampled_from(["first_event", "last_event"]),
                events,
            ),
            st.builds(
                lambda function, name: f"{function}({name})",
                st.sampled_from(["last_received", "last_opened"]),
                campaigns,
            ),
        )
    return st.sampled_from(["attr.a", "attr.b", 'attr["c d"]'])


ORDERING = ["=", "!=", "<", "<=", ">", ">="]


# Strategies are built once: building them inside a draw makes generation the slowest part.
SEGMENT_NAMES = ("s0", "s1", "s2")
KINDS = ("string", "number", "bool", "instant", "attr")
SUBJECTS = {
    (kind, earlier): _build_subjects(kind, SEGMENT_NAMES[:earlier]) for kind in KINDS for earlier in range(3)
}
ATTRIBUTE_LISTS = _lists(attribute_literals)
TYPED_LISTS = {kind: _lists(literals) for kind, literals in LITERALS.items()}


@st.composite
def comparisons(draw: st.DrawFn, earlier: int) -> str:
    kind = draw(st.sampled_from(["string", "number", "bool", "instant", "attr", "attr"]))
    subject = draw(SUBJECTS[(kind, earlier)])
    if kind == "attr":
        choice = draw(
            st.sampled_from(["compare", "compare", "compare", "in", "contains", "matches", "set", "bare"])
        )
        if choice == "compare":
            return f"{subject} {draw(st.sampled_from(ORDERING))} {draw(attribute_literals)}"
        if choice == "in":
            return f"{subject} {draw(st.sampled_from(['in', 'not in']))} {draw(ATTRIBUTE_LISTS)}"
        if choice == "contains":
            return f"{subject} contains {draw(attribute_literals)}"
        if choice == "matches":
            return f'{subject} matches "{draw(st.sampled_from(PATTERNS))}"'
        if choice == "set":
            return f"{subject} {draw(st.sampled_from(['is set', 'is not set']))}"
        return subject
    literals = LITERALS[kind]
    operators = {
        "string": [*ORDERING, "in", "not in", "contains", "matches", "is set", "is not set"],
        "number": [*ORDERING, "in", "not in", "is set"],
        "bool": ["=", "!=", "in", "not in", "bare", "is set"],
        "instant": [*ORDERING, "is set", "is not set"],
    }[kind]
    operator = draw(st.sampled_from(operators))
    if operator in ("in", "not in"):
        return f"{subject} {operator} {draw(TYPED_LISTS[kind])}"
    if operator == "matches":
        return f'{subject} matches "{draw(st.sampled_from(PATTERNS))}"'
    if operator in ("is set", "is not set"):
        return f"{subject} {operator}"
    if operator == "bare":
        return subject
    return f"{subject} {operator} {draw(literals)}"


def _conditions(earlier: int) -> st.SearchStrategy[str]:
    return st.recursive(
        comparisons(earlier),
        lambda inner: st.one_of(
            st.builds(lambda a, b: f"{a} and {b}", inner, inner),
            st.builds(lambda a, b: f"{a} or {b}", inner, inner),
            inner.map(lambda a: f"not {a}"),
            inner.map(lambda a: f"({a})"),
            st.lists(inner, min_size=3, max_size=6).map(" and ".join),
            st.lists(inner, min_size=3, max_size=5).map(" or ".join),
        ),
        max_leaves=8,
    )


# A segment may read with in_segment the segments before it: CONDITIONS[n] may name s0..s(n-1).
CONDITIONS = [_conditions(earlier) for earlier in range(3)]


@st.composite
def programs(draw: st.DrawFn) -> str:
    """One to three segments; each may read the ones before it with in_segment."""
    blocks: list[str] = []
    for index in range(draw(st.integers(1, 3))):
        body = draw(CONDITIONS[index])
        title = draw(st.sampled_from(["", ' "A title"']))
        blocks.append(f"segment {SEGMENT_NAMES[index]}{title} {{\n    {body}\n}}\n")
    return "\n".join(blocks)


# --- profiles -----------------------------------------------------------------------------------
# A profile is built from a seed with random.Random: hypothesis draws one integer instead of a few
# hundred values, which keeps the suite fast. A failure still reproduces (the seed is reported), and
# shrinking still works on the rule, which is what a failure needs to be read.

# The instants the rule literals name (2026-11-20, its last half second, 2026-11-13, ...), and AT.
FIXED_INSTANTS = (
    1_795_132_800.0,
    1_795_132_799.0,
    1_795_132_799.5,
    1_794_528_000.0,
    1_794_583_800.0,
    1_795_188_600.0,
)
# Days before the day of `at` (negative: after it) that sit on the window edges rules draw.
EDGE_DAY_OFFSETS = (0, 1, 6, 7, 13, 14, 29, 30, 44, 45, 83, 84, 89, 90, -1)
RANDOM_AT = (AT, 1_795_132_800.0, 1_795_132_800.0 - 0.001, 1_795_132_800.0 + 86_400 - 0.5)


class _ProfileMaker:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        pick = self.random.random
        self.at = self.random.choice(RANDOM_AT) if pick() < 0.4 else AT + self.random.uniform(-3, 3) * 86_400
        self.at_day = int(self.at // SECONDS_PER_DAY)

    def chance(self, probability: float) -> bool:
        return self.random.random() < probability

    def instant(self) -> float | None:
        """Unset, or on and around the edges rules draw: N units before or after `at`, midnight."""
        choice = self.random.random()
        if choice < 0.2:
            return None
        if choice < 0.65:
            amount = self.random.choice(AMOUNTS)
            unit = UNIT_SECONDS[self.random.choice(list(UNIT_SECONDS))]
            jitter = self.random.choice((-1.0, -0.5, 0.0, 0.0, 0.5, 1.0))
            return self.at + self.random.choice((-1, 1)) * amount * unit + jitter
        if choice < 0.85:
            return self.random.choice(FIXED_INSTANTS)
        return self.at + self.random.uniform(-100 * 86_400, 86_400)

    def counts(self) -> DailyCounts:
        by_day: dict[int, int] = {}
        for _ in range(self.random.randint(0, 12)):
            offset = self.random.choice(EDGE_DAY_OFFSETS) if self.chance(0.6) else self.random.randint(-2, 95)
            by_day[self.at_day - offset] = self.random.randint(0, 5)
        return DailyCounts(total=sum(by_day.values()) + self.random.randint(0, 3), by_day=by_day)

    def custom_value(self) -> Any:
        # Scalars most of the time: type mix-ups (true against 1, "1" against 1) live there.
        choice = self.random.random()
        if choice < 0.6:
            return self.random.choice(CUSTOM_SCALARS)
        if choice < 0.8:
            return AttributeInstant(self.instant() or self.at)
        return [self.random.choice(("a", "A", "1", "", "b")) for _ in range(self.random.randint(0, 3))]

    def maybe_string(self) -> str | None:
        return self.random.choice(STRINGS) if self.chance(0.7) else None

    def profile(self) -> Profile:
        identified = self.chance(0.7)
        return Profile(
            user_id=self.random.choice(("u1", "u2", "fr")) if identified else None,
            device_id=None if identified else "d1",
            created_at=self.instant(),
            standard={
                name: self.random.choice(STRINGS)
                for name in ("country", "language", "platform", "email")
                if self.chance(0.6)
            },
            custom={key: self.custom_value() for key in ("a", "b", "c d") if self.chance(0.8)},
            sessions=self.counts(),
            first_session=self.instant(),
            last_session=self.instant(),
            events={
                name: EventStats(counts=self.counts(), first=self.instant(), last=self.instant())
                for name in EVENTS
                if self.chance(0.6)
            },
            purchases=self.counts(),
            spent_total=self.random.choice((0.0, 2.5, 15.0, 100.25)),
            spent_by_day={
                self.at_day - self.random.choice(EDGE_DAY_OFFSETS): self.random.choice((1.0, 2.5, 7.25))
                for _ in range(self.random.randint(0, 6))
            },
            first_purchase=self.instant(),
            last_purchase=self.instant(),
            push_subscription=self.maybe_string(),
            email_subscription=self.maybe_string(),
            push_opted_in_at=self.instant(),
            push_unsubscribed_at=self.instant(),
            push_enabled=self.chance(0.5),
            campaigns={
                name: CampaignHistory(
                    received=self.chance(0.5),
                    opened=self.chance(0.5),
                    converted=self.chance(0.5),
                    in_control=self.chance(0.5),
                    last_received=self.instant(),
                    last_opened=self.instant(),
                    receives=self.counts(),
                    opens=self.counts(),
                )
                for name in CAMPAIGNS
                if self.chance(0.6)
            },
            last_received_any=self.instant(),
            last_opened_any=self.instant(),
            pushes_received=self.counts(),
            pushes_opened=self.counts(),
        )


def random_profile(seed: int) -> tuple[Profile, float]:
    maker = _ProfileMaker(seed)
    return maker.profile(), maker.at


profiles_at = st.integers(0, 2**32).map(random_profile)


# --- the properties -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(program=programs(), profiles=st.lists(profiles_at, min_size=1, max_size=5))
def test_compiled_rules_agree_with_the_reference(program: str, profiles: list[tuple[Profile, float]]) -> None:
    # The generator writes only valid rules, so this also checks that the checker accepts them.
    segments = compile_sources([("generated.seg", program)])
    definitions = parse_source(program, "generated.seg").definitions
    for profile, at in profiles:
        expected = reference_memberships(definitions, profile, at)
        assert segments.evaluate_all(profile, at) == expected
        for name, member in expected.items():
            assert segments.evaluate(name, profile, at) is member
            assert segments.explain(name, profile, at).matched is member


CLAUSE_BATCHES = st.lists(comparisons(0), min_size=8, max_size=16)


@PROPERTY_SETTINGS
@given(clauses=CLAUSE_BATCHES, profiles=st.lists(profiles_at, min_size=1, max_size=5))
def test_each_kind_of_clause_agrees_with_the_reference(
    clauses: list[str], profiles: list[tuple[Profile, float]]
) -> None:
    """Many single-clause segments per example: every field, operator and literal kind is met
    often, on profiles built to sit on the edges the clauses draw."""
    program = "\n".join(f"segment c{index} {{ {clause} }}" for index, clause in enumerate(clauses))
    segments = compile_sources([("clauses.seg", program)])
    definitions = parse_source(program, "clauses.seg").definitions
    for profile, at in profiles:
        assert segments.evaluate_all(profile, at) == reference_memberships(definitions, profile, at)


def _assert_handled(text: str) -> None:
    """Whatever the text: diagnostics or a usable set, never another exception."""
    diagnostics = check_sources([("fuzz.seg", text)])
    assert all(isinstance(item, Diagnostic) for item in diagnostics)
    for item in diagnostics:
        assert item.format().startswith(f"fuzz.seg:{item.line}:{item.column}: ")
    if diagnostics:
        with pytest.raises(DslError) as raised:
            compile_sources([("fuzz.seg", text)])
        assert raised.value.diagnostics == diagnostics
        return
    segments = compile_sources([("fuzz.seg", text)])
    profile = Profile(user_id="u1", device_id=None, custom={"a": 1, "b": "x"})
    assert set(segments.evaluate_all(profile, AT)) == set(segments)


# Tokens and fragments that appear in real rules, including the misspelled and the out of range.
FRAGMENTS = (
    "segment",
    " s ",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    '"',
    "\\",
    "\n",
    " and ",
    " or ",
    "not ",
    " in ",
    " contains ",
    " matches ",
    " is set",
    " is not set",
    "=",
    "!=",
    "<",
    ">=",
    "sessions",
    "sessions(last 30 days)",
    "last 91 days",
    "last -1 weeks",
    "7 days ago",
    "from now",
    "now",
    "attr.x",
    'attr["y"]',
    'in_segment("s")',
    'events("e", last 7 days)',
    "last_sesion",
    "2026-11-01",
    "2026-13-45T99:00:00",
    "1.5",
    "-3",
    "99999999999999999999999999999",
    "#",
    "(((",
    '"(["',
    "\t",
    "é",
    "\x00",
)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_token_soup_never_crashes(text: str) -> None:
    _assert_handled(text)


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_random_text_never_crashes(text: str) -> None:
    _assert_handled(text)


@st.composite
def mutated_programs(draw: st.DrawFn) -> str:
    text = draw(programs())
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start, min(len(text), start + 12)))
        edit = draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        fragment = draw(st.sampled_from(FRAGMENTS))
        if edit == "delete":
            text = text[:start] + text[end:]
        elif edit == "insert":
            text = text[:start] + fragment + text[start:]
        elif edit == "duplicate":
            text = text[:end] + text[start:end] + text[end:]
        else:
            text = text[:start] + fragment + text[end:]
    return text


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(mutated_programs())
def test_mutated_programs_never_crash(text: str) -> None:
    _assert_handled(text)
