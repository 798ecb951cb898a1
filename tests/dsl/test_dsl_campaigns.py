"""Campaign blocks (campaigns.md, "Campaign blocks"): the grammar, the checked model, every error with
its position and caret, recovery, and the Liquid push templates."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsl import (
    CompiledCampaign,
    DslError,
    TemplateRenderError,
    check_paths,
    check_sources,
    compile_sources,
    format_diagnostics,
    load_segments,
)
from dsl.model import (
    ConversionKind,
    SendDaily,
    SendOnce,
    SendOnEntry,
    TimeUnit,
)
from dsl.parser import parse_source
from dsl.templates import TEMPLATE_FIELDS, check_template, compile_template
from kudos.core.timeutil import parse_instant

AUDIENCE = "segment top_users { sessions(last 30 days) >= 12 }\n"

# The example of campaigns.md, as written there.
EXAMPLE = """\
campaign thank_top_users "Thank you, top users" {
    audience top_users                  # a segment name (required)
    send on entry                       # or: send daily at 18:00 UTC | send once at 2026-12-01T18:00:00Z
    reeligible after 30 days            # default: once per user, ever
    holdout 10%                         # default 0
    quiet hours 22:00 to 08:00          # user's local time of day; default none
    cap 3 per 7 days                    # pushes from any campaign; default none
    rate 1000 per minute                # default none
    expire after 72 hours               # default 72 hours
    conversion event "claimed_reward" within 3 days   # or: conversion purchase | session within ...
    guardrail opt_outs above 2% after 100 sends       # default none
    push {
        title "Thank you, {{ first_name | default: 'friend' }}!"
        body "You're one of our top users: {{ attr.coins_bonus | default: 500 }} coins are waiting."
        deep_link "myapp://rewards/top"   # optional, also `image "https://..."`
    }
}
"""


def campaign(body: str, name: str = "c") -> str:
    """A campaign with `body` as its settings, after the segment it targets."""
    return f"{AUDIENCE}campaign {name} {{\n{body}}}\n"


MINIMAL = '    audience top_users\n    send on entry\n    push { title "t" body "b" }\n'


def rendered(text: str, file: str = "c.seg") -> str:
    return format_diagnostics(check_sources([(file, text)]))


# --- parsing ------------------------------------------------------------------------------------


def test_every_setting_of_the_example_is_parsed_into_typed_values() -> None:
    segments = compile_sources([("c.seg", AUDIENCE + EXAMPLE)])
    compiled = segments.campaigns["thank_top_users"]
    assert isinstance(compiled, CompiledCampaign)
    definition = compiled.definition
    assert (definition.name, definition.title, compiled.audience) == (
        "thank_top_users",
        "Thank you, top users",
        "top_users",
    )
    assert isinstance(compiled.trigger, SendOnEntry)
    assert compiled.reeligible_after_seconds == 30 * 86_400
    assert compiled.holdout_fraction == pytest.approx(0.10)
    quiet = compiled.quiet_hours
    assert quiet is not None
    assert (quiet.start.minute_of_day, quiet.end.minute_of_day) == (22 * 60, 8 * 60)
    cap = compiled.cap
    assert cap is not None
    assert (cap.count, cap.period.seconds) == (3, 7 * 86_400)
    assert compiled.rate_per_minute == 1000
    assert compiled.expire_after_seconds == 72 * 3600
    conversion = compiled.conversion
    assert conversion is not None
    assert conversion.kind is ConversionKind.EVENT
    assert conversion.event_name is not None
    assert conversion.event_name.value == "claimed_reward"
    assert conversion.window.seconds == 3 * 86_400
    guardrail = compiled.guardrail
    assert guardrail is not None
    assert (guardrail.opt_outs_above.fraction, guardrail.after_sends) == (pytest.approx(0.02), 100)
    push = definition.push
    assert push is not None
    assert push.deep_link is not None
    assert push.deep_link.text == "myapp://rewards/top"
    assert push.image is None
    # Every value keeps where it was written (line 2 of the file is the campaign line).
    assert definition.audience_position is not None
    assert (definition.audience_position.line, definition.audience_position.column) == (3, 14)
    assert (definition.name_position.line, definition.name_position.column) == (2, 10)
    assert (cap.count_position.line, cap.count_position.column) == (8, 9)
    assert (cap.period.position.line, cap.period.position.column) == (8, 15)


def test_defaults_when_settings_are_left_out() -> None:
    compiled = compile_sources([("c.seg", campaign(MINIMAL))]).campaigns["c"]
    assert compiled.reeligible_after_seconds is None  # once per user, ever
    assert compiled.holdout_fraction == 0.0
    assert compiled.expire_after_seconds == 72 * 3600
    assert compiled.quiet_hours is None
    assert compiled.cap is None
    assert compiled.rate_per_minute is None
    assert compiled.conversion is None
    assert compiled.guardrail is None
    assert compiled.title is None


def test_scheduled_triggers_and_other_conversions() -> None:
    daily = campaign(
        MINIMAL.replace("send on entry", "send daily at 18:05 UTC")
        + "    conversion purchase within 1 hour\n"
    )
    once = campaign(
        MINIMAL.replace("send on entry", "send once at 2026-12-01T18:00:00Z")
        + "    conversion session within 90 minutes\n    holdout 0.5%\n",
        name="d",
    ).replace(AUDIENCE, "")
    segments = compile_sources([("c.seg", daily + once)])
    first, second = segments.campaigns["c"], segments.campaigns["d"]
    assert isinstance(first.trigger, SendDaily)
    assert first.trigger.time.minute_of_day == 18 * 60 + 5
    assert first.conversion is not None
    assert (first.conversion.kind, first.conversion.event_name) == (ConversionKind.PURCHASE, None)
    assert first.conversion.window.unit is TimeUnit.HOUR
    assert isinstance(second.trigger, SendOnce)
    assert second.trigger.at.epoch == parse_instant("2026-12-01T18:00:00Z")
    assert second.conversion is not None
    assert (second.conversion.kind, second.conversion.window.seconds) == (ConversionKind.SESSION, 5400)
    assert second.holdout_fraction == pytest.approx(0.005)


def test_the_models_are_frozen() -> None:
    definition = compile_sources([("c.seg", campaign(MINIMAL))]).campaigns["c"].definition
    with pytest.raises(AttributeError):
        definition.name = "other"  # type: ignore[misc]


def test_keywords_end_at_a_word_boundary() -> None:
    # `sendon entry` is not `send on entry`, and a segment may still be named like a keyword.
    assert check_sources([("c.seg", campaign(MINIMAL.replace("send on entry", "sendon entry")))]) != []
    source = 'segment push { sessions > 1 }\ncampaign c { audience push send on entry push { title "t" body "b" } }\n'
    assert check_sources([("c.seg", source)]) == []


# --- errors, exactly as a user sees them ---------------------------------------------------------

GOLDEN = {
    "unknown audience, with a suggestion": (
        campaign(MINIMAL.replace("audience top_users", "audience top_user")),
        """\
c.seg:3:14: unknown segment top_user; did you mean top_users?
        audience top_user
                 ^""",
    ),
    "missing audience, trigger and push": (
        campaign("    holdout 5%\n"),
        """\
c.seg:2:10: campaign c has no audience: add audience SEGMENT
    campaign c {
             ^
c.seg:2:10: campaign c has no push: add push { title ... body ... }
    campaign c {
             ^
c.seg:2:10: campaign c has no trigger: add send on entry, send daily at HH:MM UTC or send once at INSTANT
    campaign c {
             ^""",
    ),
    "missing title and body": (
        campaign(MINIMAL.replace('push { title "t" body "b" }', 'push { deep_link "x" }')),
        """\
c.seg:5:5: push has no body: add body "..."
        push { deep_link "x" }
        ^
c.seg:5:5: push has no title: add title "..."
        push { deep_link "x" }
        ^""",
    ),
    "repeated settings": (
        campaign(
            MINIMAL.replace('title "t"', 'title "t" title "u"')
            + '    send daily at 10:00 UTC\n    push { title "a" body "c" }\n'
        ),
        """\
c.seg:5:22: title is set twice in this push; first at c.seg:5:18
        push { title "t" title "u" body "b" }
                         ^
c.seg:6:5: the trigger (send ...) is set twice in this campaign; first at c.seg:4:5
        send daily at 10:00 UTC
        ^
c.seg:7:5: push is set twice in this campaign; first at c.seg:5:5
        push { title "a" body "c" }
        ^""",
    ),
    "reeligible, holdout, expire out of range": (
        campaign(MINIMAL + "    reeligible after 721 days\n    holdout 50.5%\n    expire after 0 minutes\n"),
        """\
c.seg:6:22: reeligible after 721 days is out of range: 1 minute to 720 days
        reeligible after 721 days
                         ^
c.seg:7:13: holdout 50.5% is out of range: 0% to 50%
        holdout 50.5%
                ^
c.seg:8:18: expire after 0 minutes is out of range: 1 minute to 7 days
        expire after 0 minutes
                     ^""",
    ),
    "quiet hours": (
        campaign(MINIMAL + "    quiet hours 22:00 to 22:00\n    send daily at 24:00 UTC\n").replace(
            "    send on entry\n", ""
        ),
        """\
c.seg:5:26: quiet hours from 22:00 to 22:00: the two must differ
        quiet hours 22:00 to 22:00
                             ^
c.seg:6:19: 24:00 is not a time of day: write HH:MM, from 00:00 to 23:59
        send daily at 24:00 UTC
                      ^""",
    ),
    "cap and rate": (
        campaign(MINIMAL + "    cap 101 per 59 minutes\n    rate 0 per hour\n"),
        """\
c.seg:6:9: cap 101 is out of range: 1 to 100
        cap 101 per 59 minutes
            ^
c.seg:6:17: cap period 59 minutes is out of range: 1 hour to 30 days
        cap 101 per 59 minutes
                    ^
c.seg:7:10: rate 0 is out of range: 1 to 100,000
        rate 0 per hour
             ^
c.seg:7:16: rate counts sends per minute: write rate N per minute
        rate 0 per hour
                   ^""",
    ),
    "conversion and guardrail": (
        campaign(
            MINIMAL
            + '    conversion event "" within 31 days\n    guardrail opt_outs above 0.05% after 1000001 sends\n'
        ),
        """\
c.seg:6:22: conversion event needs a name, not an empty string
        conversion event "" within 31 days
                         ^
c.seg:6:32: conversion window 31 days is out of range: 1 minute to 30 days
        conversion event "" within 31 days
                                   ^
c.seg:7:30: guardrail 0.05% is out of range: 0.1% to 100%
        guardrail opt_outs above 0.05% after 1000001 sends
                                 ^
c.seg:7:42: guardrail sends 1000001 is out of range: 1 to 1,000,000
        guardrail opt_outs above 0.05% after 1000001 sends
                                             ^""",
    ),
    "bad instant": (
        campaign(MINIMAL.replace("send on entry", "send once at 2026-12-01T18:00:00")),
        """\
c.seg:4:18: 2026-12-01T18:00:00 is not an instant: no time zone
        send once at 2026-12-01T18:00:00
                     ^""",
    ),
    "template that does not parse, the caret inside the string": (
        campaign(MINIMAL.replace('body "b"', 'body "Hi {{ first_name "')),
        """\
c.seg:5:31: bad template: expected '}}', found end of file
        push { title "t" body "Hi {{ first_name " }
                                  ^""",
    ),
    "unknown field and filter in a template, past escapes": (
        campaign(MINIMAL.replace('title "t"', 'title "\\"{{ frist_name }}\\" {{ sessions | upcse }}"')),
        """\
c.seg:5:24: unknown field frist_name in template; did you mean first_name?
        push { title "\\"{{ frist_name }}\\" {{ sessions | upcse }}" body "b" }
                           ^
c.seg:5:54: unknown filter upcse; did you mean upcase?
        push { title "\\"{{ frist_name }}\\" {{ sessions | upcse }}" body "b" }
                                                         ^""",
    ),
    "templates cannot include files": (
        campaign(
            MINIMAL.replace(
                'push { title "t" body "b" }',
                'push { title "t" body "b" image "{% include \'/etc/passwd\' %}" }',
            )
        ),
        """\
c.seg:5:41: bad template: unexpected tag 'include'
        push { title "t" body "b" image "{% include '/etc/passwd' %}" }
                                            ^""",
    ),
    "campaign name": (
        campaign(MINIMAL, name="Thanks"),
        """\
c.seg:2:10: bad campaign name Thanks: use lower-case letters, digits and _, starting with a letter
    campaign Thanks {
             ^""",
    ),
    "misspelt campaign keyword": (
        AUDIENCE + "campain x { }\n",
        """\
c.seg:2:1: unexpected "campain"; expected one of: "campaign", "segment", end of file; did you mean \
"campaign"?
    campain x { }
    ^""",
    ),
    "misspelt setting": (
        campaign(MINIMAL.replace("audience top_users", "audiance top_users")),
        """\
c.seg:3:5: unexpected "audiance"; expected one of: "}", a campaign setting (audience, send, reeligible, \
holdout, quiet hours, cap, rate, expire, conversion, guardrail, push); did you mean "audience"?
        audiance top_users
        ^""",
    ),
}


@pytest.mark.parametrize(("source", "expected"), GOLDEN.values(), ids=GOLDEN.keys())
def test_golden_messages(source: str, expected: str) -> None:
    assert rendered(source) == expected


def test_duplicate_campaign_across_files() -> None:
    diagnostics = check_sources(
        [("a.seg", campaign(MINIMAL)), ("b.seg", "# again\n" + campaign(MINIMAL).replace(AUDIENCE, ""))]
    )
    assert format_diagnostics(diagnostics) == (
        "b.seg:2:10: duplicate campaign c; first defined at a.seg:2:10\n    campaign c {\n             ^"
    )


def test_a_campaign_may_share_a_name_with_a_segment() -> None:
    assert check_sources([("c.seg", campaign(MINIMAL, name="top_users"))]) == []


def test_the_audience_may_be_defined_in_another_file_or_fail_to_parse() -> None:
    sources = [
        ("a.seg", "segment broken { sessions > }\n"),
        ("b.seg", campaign(MINIMAL.replace("top_users", "broken")).replace(AUDIENCE, "")),
    ]
    assert [item.message.split(";")[0] for item in check_sources(sources)] == ['unexpected "}"']


# --- recovery -----------------------------------------------------------------------------------


def test_a_bad_campaign_block_does_not_hide_errors_in_a_later_segment() -> None:
    source = (
        "segment a { sessions > 1 }\n"
        "campaign c {\n    audience a\n    send sometimes\n}\n"
        'campaign d {\n    audience nope\n    send on entry\n    push { title "t" body "b" }\n}\n'
        "segment b { last_sesion > 7 days ago }\n"
    )
    assert [
        (item.line, item.column, item.message.split(";")[0]) for item in check_sources([("c.seg", source)])
    ] == [
        (4, 10, 'unexpected "sometimes"'),
        (7, 14, "unknown segment nope"),
        (11, 13, "unknown field last_sesion"),
    ]


def test_a_misspelt_block_keyword_is_reported_alone() -> None:
    source = "segment a { sessions > 1 }\ncampain x { audience a }\nsegment b { sessins > 1 }\n"
    assert [(item.line, item.message.split(";")[0]) for item in check_sources([("c.seg", source)])] == [
        (2, 'unexpected "campain"'),
        (3, "unknown field sessins"),
    ]
    # The segment before the misspelt block is still parsed, not lost with it.
    assert [definition.name for definition in parse_source(source, "c.seg").definitions] == ["a", "b"]


# --- templates ----------------------------------------------------------------------------------


def test_templates_read_the_fields_of_dsl_md() -> None:
    assert {"first_name", "country", "sessions", "last_session", "attr"} <= TEMPLATE_FIELDS
    # Fields that need arguments have no Liquid spelling.
    assert "events" not in TEMPLATE_FIELDS
    assert "in_segment" not in TEMPLATE_FIELDS


def test_render_push_with_defaults_and_unset_values() -> None:
    compiled = compile_sources([("c.seg", AUDIENCE + EXAMPLE)]).campaigns["thank_top_users"]
    push = compiled.render_push({"first_name": "Ann", "attr": {"coins_bonus": 750}})
    assert push.title == "Thank you, Ann!"
    assert push.body == "You're one of our top users: 750 coins are waiting."
    assert push.deep_link == "myapp://rewards/top"
    assert push.image is None
    unset = compiled.render_push({"first_name": None})
    assert unset.title == "Thank you, friend!"
    assert unset.body == "You're one of our top users: 500 coins are waiting."


def test_an_unset_value_renders_empty() -> None:
    template = compile_template("[{{ country }}][{{ attr.missing }}][{{ attr['any name'] }}]")
    assert template.render({}) == "[][][]"
    assert template.render({"country": "fr", "attr": {"any name": 3}}) == "[fr][][3]"


def test_a_render_failure_is_one_error_type() -> None:
    template = compile_template("{{ sessions | divided_by: 0 }}")
    with pytest.raises(TemplateRenderError):
        template.render({"sessions": 4})
    looping = compile_template("{% for i in (1..100000000) %}x{% endfor %}")
    with pytest.raises(TemplateRenderError, match="limit"):
        looping.render({})


@pytest.mark.parametrize(
    "text",
    [
        "{% include '/etc/passwd' %}",
        '{% render "/etc/passwd" %}',
        "{% liquid include '/etc/passwd' %}",
    ],
)
def test_templates_never_touch_the_filesystem(text: str) -> None:
    checked = check_template(text)
    assert checked.template is None
    assert checked.problems[0].message.startswith("bad template: unexpected tag")
    with pytest.raises(ValueError, match="unexpected tag"):
        compile_template(text)


def test_assigned_and_loop_variables_are_not_unknown_fields() -> None:
    text = "{% assign n = first_name %}{% for x in (1..2) %}{{ n }}{{ x }}{% endfor %}"
    assert check_template(text).problems == ()


def test_each_template_is_compiled_once() -> None:
    text = "once {{ first_name }}"
    assert compile_template(text) is compile_template(text)


# --- loading ------------------------------------------------------------------------------------


def test_loading_a_directory_gives_segments_and_campaigns(tmp_path: Path) -> None:
    (tmp_path / "a.seg").write_text(AUDIENCE)
    (tmp_path / "b.seg").write_text(EXAMPLE)
    segments = load_segments(tmp_path)
    assert list(segments) == ["top_users"]
    assert list(segments.campaigns) == ["thank_top_users"]
    assert segments.campaigns["thank_top_users"].audience in segments


def test_a_campaign_error_stops_the_load(tmp_path: Path) -> None:
    (tmp_path / "a.seg").write_text(campaign(MINIMAL + "    holdout 90%\n"))
    with pytest.raises(DslError) as raised:
        load_segments(tmp_path)
    assert [item.message for item in raised.value.diagnostics] == ["holdout 90% is out of range: 0% to 50%"]


def test_check_paths_fails_on_a_directory_without_segment_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("campaign x { }\n")
    assert [(item.file, item.message) for item in check_paths([tmp_path])] == [
        (str(tmp_path), "no .seg file in this directory")
    ]


def test_the_repository_ships_the_thank_you_campaign() -> None:
    directory = Path(__file__).resolve().parents[2] / "segments"
    assert check_paths([directory]) == []
    thanks = load_segments(directory).campaigns["thank_top_users"]
    assert thanks.audience == "top_users"
    assert thanks.render_push({"first_name": "Ann"}).title == "Thank you, Ann!"


def test_the_cli_reports_campaign_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kudos.cli import main

    (tmp_path / "a.seg").write_text(campaign(MINIMAL.replace("audience top_users", "audience top_user")))
    assert main(["segments", "check", str(tmp_path)]) == 1
    assert "unknown segment top_user; did you mean top_users?" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["segments", "check", str(empty)]) == 1
    assert "no .seg file in this directory" in capsys.readouterr().err


# --- no input crashes the checker -----------------------------------------------------------------

FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FRAGMENTS = (
    "campaign",
    "campain",
    " c ",
    "{",
    "}",
    '"',
    "\\",
    "\n",
    "%",
    ":",
    "audience top_users",
    "send on entry",
    "send daily at 99:99 UTC",
    "send once at 2026-02-30T10:00:00Z",
    "holdout 1e9%",
    "cap -1 per 0 hours",
    "rate 99999999999999999999999999999 per minute",
    "{{ first_nme }}",
    "{% include 'x' %}",
    "{{",
    "{%",
    "push {",
    'title "',
    "within",
    "#",
    "é",
    "\x00",
)


def _assert_handled(text: str) -> None:
    diagnostics = check_sources([("fuzz.seg", text)])
    for diagnostic in diagnostics:
        assert diagnostic.line >= 1
        assert diagnostic.column >= 1
        diagnostic.format()
    if diagnostics:
        with pytest.raises(DslError):
            compile_sources([("fuzz.seg", text)])
        return
    segments = compile_sources([("fuzz.seg", text)])
    for compiled in segments.campaigns.values():
        with contextlib.suppress(TemplateRenderError):
            compiled.render_push({"first_name": "x", "attr": {}})


@st.composite
def mutated_campaigns(draw: st.DrawFn) -> str:
    text = AUDIENCE + EXAMPLE
    for _ in range(draw(st.integers(1, 4))):
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
        if not text:
            break
    return text


@FUZZ_SETTINGS
@given(mutated_campaigns())
def test_mutated_campaigns_never_crash(text: str) -> None:
    _assert_handled(text)


@FUZZ_SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_campaign_token_soup_never_crashes(text: str) -> None:
    _assert_handled(text)


@FUZZ_SETTINGS
@given(st.text(max_size=200))
def test_random_text_in_a_template_never_crashes(text: str) -> None:
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    _assert_handled(campaign(MINIMAL.replace('title "t"', f'title "{quoted}"')))
