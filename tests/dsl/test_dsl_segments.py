"""The SegmentSet API: ordering, evaluation of one segment with its dependencies, explain."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dsl import DslError, SegmentSet, check_sources, compile_sources
from kudos.core.profile import AttributeInstant, CampaignHistory, DailyCounts
from tests.dsl.support import AT, AT_DAY, DAY, make_profile

SOURCES = [
    (
        "b.seg",
        """# readers first in the file: the set must still order them after what they read
segment lapsed "Lapsed" { not in_segment("active") and in_segment("known") }
segment active { last_session >= 3 days ago }
""",
    ),
    ("a.seg", 'segment known "Known users" {\n    anonymous = false\n}\n'),
]


@pytest.fixture(scope="module")
def segments() -> SegmentSet:
    return compile_sources(SOURCES)


def test_segments_come_after_what_they_read(segments: SegmentSet) -> None:
    order = list(segments)
    assert order.index("active") < order.index("lapsed")
    assert order.index("known") < order.index("lapsed")
    assert set(order) == {"lapsed", "active", "known"}


def test_compiled_segment_keeps_its_source(segments: SegmentSet) -> None:
    known = segments["known"]
    assert (known.name, known.title, known.file) == ("known", "Known users", "a.seg")
    assert known.source == 'segment known "Known users" {\n    anonymous = false\n}'
    assert segments["active"].title is None
    assert segments["lapsed"].dependencies == ("active", "known")


def test_evaluate_reads_dependencies_at_the_same_instant(segments: SegmentSet) -> None:
    profile = make_profile(last_session=AT - 2 * DAY)
    assert segments.evaluate_all(profile, AT) == {"known": True, "active": True, "lapsed": False}
    assert segments.evaluate("lapsed", profile, AT) is False
    assert segments.evaluate("lapsed", profile, AT + 2 * DAY) is True
    with pytest.raises(KeyError):
        segments.evaluate("missing", profile, AT)


def test_the_caller_gives_the_instant(segments: SegmentSet) -> None:
    # No hidden clock: the caller's clock decides (services().clock() or an explicit instant).
    profile = make_profile(last_session=AT)
    with pytest.raises(TypeError):
        segments.evaluate("active", profile)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        segments.evaluate_all(profile)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        segments.explain("active", profile)  # type: ignore[call-arg]


def test_compile_on_top_of_a_base_set(segments: SegmentSet) -> None:
    preview = compile_sources(
        [("<preview>", 'segment preview { in_segment("lapsed") or sessions > 5 }')], base=segments
    )
    assert set(preview) == {"known", "active", "lapsed", "preview"}
    assert preview["active"] is segments["active"]
    assert preview.evaluate("preview", make_profile(last_session=AT - 9 * DAY), AT) is True
    with pytest.raises(DslError) as raised:
        compile_sources([("<preview>", "segment active { sessions > 5 }")], base=segments)
    assert raised.value.diagnostics[0].message.startswith("duplicate segment active")


def test_explain_shows_every_clause_with_what_it_saw() -> None:
    segments = compile_sources(
        [
            (
                "top.seg",
                """segment top_users "Top users" {
    sessions(last 30 days) >= 12
    and last_session >= 7 days ago
    and push_subscription in ["opted_in", "subscribed"]
    and not attr.is_employee = true
    and (attr.signup < 2026-01-01 or country is set)
}""",
            )
        ]
    )
    profile = make_profile(
        sessions=DailyCounts(total=40, by_day={AT_DAY - day: 1 for day in range(20)}),
        last_session=AT - 3600,
        push_subscription="opted_in",
        custom={"is_employee": False, "signup": AttributeInstant(AT - 400 * DAY)},
    )
    explanation = segments.explain("top_users", profile, AT)
    assert explanation.matched is True
    assert explanation.matched == segments.evaluate("top_users", profile, AT)
    rows = [(c.clause, c.value, c.operator, c.threshold, c.result) for c in explanation.clauses]
    assert rows == [
        ("sessions(last 30 days) >= 12", 20, ">=", 12, True),
        ("last_session >= 7 days ago", "2026-11-20T14:30:00Z", ">=", "2026-11-13T15:30:00Z", True),
        (
            'push_subscription in ["opted_in", "subscribed"]',
            "opted_in",
            "in",
            ["opted_in", "subscribed"],
            True,
        ),
        ("attr.is_employee = true", False, "=", True, False),
        ("attr.signup < 2026-01-01", "2025-10-16T15:30:00Z", "<", "2026-01-01T00:00:00Z", True),
        ("country is set", None, "is set", None, False),
    ]
    assert [(c.line, c.column) for c in explanation.clauses][:2] == [(2, 5), (3, 9)]
    document = explanation.to_json()
    assert json.loads(json.dumps(document)) == document
    assert document["segment"] == "top_users"
    assert document["title"] == "Top users"
    assert document["at"] == "2026-11-20T15:30:00Z"
    assert document["matched"] is True
    condition = document["condition"]
    assert condition["operator"] == "and"
    assert [operand.get("operator") for operand in condition["operands"]] == [">=", ">=", "in", "not", "or"]
    negation = condition["operands"][3]
    assert negation["result"] is True
    assert negation["operands"][0]["result"] is False
    # The clause list reads like the rule: the clause under `not` is "not ...", and it counts.
    employee = document["clauses"][3]
    assert (employee["clause"], employee["result"]) == ("attr.is_employee = true", False)
    assert employee["negated"] is True
    assert employee["effective_clause"] == "not attr.is_employee = true"
    assert employee["effective_result"] is True
    assert negation["operands"][0] == employee
    assert all(c["effective_result"] for c in document["clauses"][:4])
    assert [c["negated"] for c in document["clauses"]] == [False, False, False, True, False, False]


def test_explain_reads_each_clause_the_way_the_rule_does_under_nested_nots() -> None:
    segments = compile_sources(
        [("a.seg", "segment a { not (sessions > 1 and not attr.vip = true) and not not country is set }")]
    )
    explanation = segments.explain("a", make_profile(standard={"country": "FR"}, custom={"vip": True}), AT)
    assert explanation.matched is True
    rows = [(c.effective_clause, c.effective_result, c.result) for c in explanation.clauses]
    assert rows == [
        ("not sessions > 1", True, False),
        ("attr.vip = true", True, True),  # two `not`s: read as written
        ("country is set", True, True),
    ]


def test_explain_reports_a_miss_with_the_failing_clause() -> None:
    segments = compile_sources([("a.seg", 'segment a { last_session >= 1 day ago and received("welcome") }')])
    explanation = segments.explain("a", make_profile(), AT)
    assert explanation.matched is False
    assert [(c.clause, c.value, c.result) for c in explanation.clauses] == [
        ("last_session >= 1 day ago", None, False),
        ('received("welcome")', False, False),
    ]
    assert explanation.clauses[1].operator == "="
    assert explanation.clauses[1].threshold is True


def test_explain_shows_the_messaging_history_it_saw() -> None:
    segments = compile_sources(
        [
            (
                "a.seg",
                """segment engaged {
    pushes_opened(last 30 days) >= 1
    and pushes_received(last 7 days) <= 2
    and opened("promo", last 30 days)
    and received("promo", last 1 day) = false
    and last_opened("promo") >= 30 days ago
    and last_opened_any is set
}""",
            )
        ]
    )
    profile = make_profile(
        pushes_received=DailyCounts(total=3, by_day={AT_DAY: 2, AT_DAY - 7: 1}),
        pushes_opened=DailyCounts(total=1, by_day={AT_DAY - 2: 1}),
        last_opened_any=AT - 2 * DAY,
        campaigns={
            "promo": CampaignHistory(
                received=True,
                opened=True,
                last_opened=AT - 2 * DAY,
                receives=DailyCounts(total=1, by_day={AT_DAY - 2: 1}),
                opens=DailyCounts(total=1, by_day={AT_DAY - 2: 1}),
            )
        },
    )
    explanation = segments.explain("engaged", profile, AT)
    assert explanation.matched is True
    assert [(c.value, c.threshold, c.result) for c in explanation.clauses] == [
        (1, 1, True),
        (2, 2, True),
        (True, True, True),
        (False, False, True),
        ("2026-11-18T15:30:00Z", "2026-10-21T15:30:00Z", True),
        ("2026-11-18T15:30:00Z", None, True),
    ]


def test_explain_includes_in_segment_values(segments: SegmentSet) -> None:
    explanation = segments.explain("lapsed", make_profile(last_session=AT), AT)
    assert [(c.clause, c.value) for c in explanation.clauses] == [
        ('in_segment("active")', True),
        ('in_segment("known")', True),
    ]
    assert explanation.matched is False


def test_explain_survives_values_no_date_can_hold() -> None:
    segments = compile_sources([("a.seg", "segment a { last_session > 2026-01-01 and attr.score > 1 }")])
    explanation = segments.explain("a", make_profile(last_session=1e300, custom={"score": float("inf")}), AT)
    assert [c.value for c in explanation.clauses] == [1e300, "inf"]
    json.dumps(explanation.to_json(), allow_nan=False)


# dsl.md: campaign blocks (campaigns.md) may share a file with segments; they are part of the
# grammar, and neither hides nor shifts what the segments around them say.
FILE_WITH_A_CAMPAIGN = """\
segment fans { sessions > 1 }

# the thank-you campaign: a } in a comment does not close the block
campaign thank_fans "Thank you" {
    audience fans
    send on entry
    quiet hours 22:00 to 08:00
    push { title "Hi {{ first_name | default: 'friend' }}, thanks! }" body "}" }
}

segment quiet_fans { in_segment("fans") and last_session < 3 days ago }
"""


def test_campaign_blocks_share_the_file_with_segments() -> None:
    segments = compile_sources([("c.seg", FILE_WITH_A_CAMPAIGN)])
    assert list(segments) == ["fans", "quiet_fans"]
    assert list(segments.campaigns) == ["thank_fans"]
    campaign = segments.campaigns["thank_fans"].definition
    assert (campaign.position.line, campaign.position.column) == (4, 1)
    assert campaign.source.startswith('campaign thank_fans "Thank you" {')
    assert campaign.source.endswith('body "}" }\n}')


def test_errors_after_a_campaign_block_keep_their_positions() -> None:
    source = FILE_WITH_A_CAMPAIGN.replace("last_session < 3", "last_sesion < 3")
    (problem,) = check_sources([("c.seg", source)])
    assert (problem.line, problem.column) == (11, 45)
    assert problem.message.startswith("unknown field last_sesion")


def test_a_misspelt_segment_is_reported_with_a_hint() -> None:
    (problem,) = check_sources([("c.seg", "segmnet fans { sessions > 1 }\nsegment b { sessions > 2 }\n")])
    assert (problem.line, problem.column) == (1, 1)
    assert 'unexpected "segmnet"' in problem.message
    assert problem.message.endswith('did you mean "segment"?')


def test_a_campaign_block_that_does_not_close() -> None:
    source = "segment a { sessions > 1 }\ncampaign c {\n    audience a\n"
    (problem,) = check_sources([("c.seg", source)])
    assert problem.format() == (
        'c.seg:3:15: unexpected end of file; expected one of: "}", a campaign setting (audience, send,'
        " reeligible, holdout, quiet hours, cap, rate, expire, conversion, guardrail, push)\n"
        "        audience a\n"
        "                  ^"
    )


# --- definition versions ------------------------------------------------------------------------

VERSIONED = """
segment base { sessions > 1 }
segment other { country = "fr" }
segment top { in_segment("base") and last_session >= 7 days ago }
"""


def _versions(text: str) -> dict[str, str]:
    return {name: segment.version for name, segment in compile_sources([("v.seg", text)]).items()}


def test_a_version_is_a_short_hash_of_the_definition_as_written() -> None:
    versions = _versions(VERSIONED)
    assert all(len(version) == 12 and int(version, 16) >= 0 for version in versions.values())
    assert len(set(versions.values())) == 3
    # Comments and blank lines around a block, CRLF line ends and other files do not matter.
    moved = "# a comment\n\n" + VERSIONED.replace("\n", "\r\n") + "\n# the end\n"
    assert _versions(moved) == versions
    # What is inside the block does, comments included: it is the rule as written.
    assert _versions(VERSIONED.replace("sessions > 1 }", "sessions > 1 # why\n}"))["base"] != versions["base"]


def test_editing_a_referenced_segment_changes_the_referrer_only() -> None:
    versions = _versions(VERSIONED)
    edited_base = _versions(VERSIONED.replace("sessions > 1", "sessions > 2"))
    assert edited_base["base"] != versions["base"]
    assert edited_base["top"] != versions["top"]
    assert edited_base["other"] == versions["other"]
    edited_other = _versions(VERSIONED.replace('"fr"', '"de"'))
    assert edited_other["other"] != versions["other"]
    assert (edited_other["base"], edited_other["top"]) == (versions["base"], versions["top"])


def test_versions_are_the_same_in_another_process() -> None:
    script = (
        "import sys; from dsl import compile_sources\n"
        "segments = compile_sources([('v.seg', sys.stdin.read())])\n"
        "print(' '.join(f'{name}={segment.version}' for name, segment in sorted(segments.items())))"
    )
    # A different hash seed: anything built on hash() would differ.
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=VERSIONED,
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    expected = " ".join(f"{name}={version}" for name, version in sorted(_versions(VERSIONED).items()))
    assert result.stdout.strip() == expected


def test_a_base_set_keeps_its_versions() -> None:
    base = compile_sources([("v.seg", VERSIONED)])
    preview = compile_sources([("<preview>", 'segment p { in_segment("top") }')], base=base)
    assert {name: preview[name].version for name in base} == {name: base[name].version for name in base}
    assert preview["p"].version
