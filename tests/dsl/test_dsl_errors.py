"""Error messages, exactly as a user sees them: file:line:col, the message, the line, a caret."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsl import (
    Diagnostic,
    DslError,
    check_paths,
    check_sources,
    compile_sources,
    format_diagnostics,
    load_segments,
)


def rendered(text: str, file: str = "s.seg") -> str:
    return format_diagnostics(check_sources([(file, text)]))


GOLDEN = {
    "unknown field, with a suggestion": (
        "segment a {\n    last_sesion >= 7 days ago\n}\n",
        """\
s.seg:2:5: unknown field last_sesion; did you mean last_session?
        last_sesion >= 7 days ago
        ^""",
    ),
    "unknown field, nothing close": (
        "segment a { bogus > 1 }",
        """\
s.seg:1:13: unknown field bogus
    segment a { bogus > 1 }
                ^""",
    ),
    "type errors on built-in fields": (
        'segment a {\n    sessions >= "x"\n    and country > 3\n    and last_session >= 5\n}\n',
        """\
s.seg:2:17: sessions is a number, not a string; compare it with a number
        sessions >= "x"
                    ^
s.seg:3:19: country is a string, not a number; compare it with a string in double quotes
        and country > 3
                      ^
s.seg:4:25: last_session is an instant, not a number; compare it with a date (2026-11-01), \
an instant (2026-11-01T10:30:00Z), now, or a relative time (7 days ago)
        and last_session >= 5
                            ^""",
    ),
    "operator that does not apply": (
        'segment a { anonymous > true or sessions contains "x" or created_at matches "x" }',
        """\
s.seg:1:23: > does not apply to anonymous, which is a bool; use = or !=
    segment a { anonymous > true or sessions contains "x" or created_at matches "x" }
                          ^
s.seg:1:42: contains applies to strings and lists, and sessions is a number
    segment a { anonymous > true or sessions contains "x" or created_at matches "x" }
                                             ^
s.seg:1:69: matches applies to strings, and created_at is an instant
    segment a { anonymous > true or sessions contains "x" or created_at matches "x" }
                                                                        ^""",
    ),
    "windows out of range": (
        'segment a {\n    sessions(last 91 days) >= 1\n    or events("x", last 13 weeks) > 0\n'
        "    or purchases(last 0 days) = 0\n    or spent(last 3 hours) > 1\n}\n",
        """\
s.seg:2:14: window too long: at most 90 days (12 weeks)
        sessions(last 91 days) >= 1
                 ^
s.seg:3:20: window too long: last 13 weeks is 91 days; at most 90 days (12 weeks)
        or events("x", last 13 weeks) > 0
                       ^
s.seg:4:18: a window covers at least 1 day (last 1 day is today so far)
        or purchases(last 0 days) = 0
                     ^
s.seg:5:14: a window counts whole days: write last N days or last N weeks
        or spent(last 3 hours) > 1
                 ^""",
    ),
    "unknown segment": (
        'segment a { in_segment("top_user") }\nsegment top_users { sessions > 1 }\n',
        """\
s.seg:1:24: unknown segment "top_user"; did you mean "top_users"?
    segment a { in_segment("top_user") }
                           ^""",
    ),
    "in_segment cycles": (
        'segment a { in_segment("b") }\nsegment b { in_segment("c") and sessions > 1 }\n'
        'segment c { not in_segment("a") }\nsegment d { in_segment("d") }\n',
        """\
s.seg:1:13: in_segment cycle: a -> b -> c -> a
    segment a { in_segment("b") }
                ^
s.seg:4:13: in_segment cycle: d -> d
    segment d { in_segment("d") }
                ^""",
    ),
    "syntax error": (
        "segment a {\n    sessions >= 3 and\n}\n",
        """\
s.seg:3:1: unexpected "}"; expected a condition (a field, attr.NAME, "not" or "(")
    }
    ^""",
    ),
    "double equals": (
        "segment a { sessions == 3 }",
        """\
s.seg:1:23: unexpected "=" (equality is a single =); expected a value (a number, a string, true, \
false, a date, an instant, now or N days ago)
    segment a { sessions == 3 }
                          ^""",
    ),
    "end of file": (
        "segment a { sessions > 1\n\n",
        """\
s.seg:1:25: unexpected end of file; expected one of: "and", "or", "}", a time unit (minutes, hours, \
days, weeks)
    segment a { sessions > 1
                            ^""",
    ),
    "stray character": (
        "segment a { sessions > 1 && x }",
        """\
s.seg:1:26: unexpected character '&'; expected one of: "and", "or", "}", a time unit (minutes, \
hours, days, weeks)
    segment a { sessions > 1 && x }
                             ^""",
    ),
    "bad regex": (
        'segment a { email matches "(.*@example" }',
        """\
s.seg:1:27: bad regular expression: missing ), unterminated subpattern at position 0
    segment a { email matches "(.*@example" }
                              ^""",
    ),
    "unterminated string": (
        'segment a {\n    country = "fr\n}\n',
        """\
s.seg:2:15: unterminated string (a string must end with " on the same line)
        country = "fr
                  ^""",
    ),
    "tab before the error keeps the caret aligned": (
        "segment a {\n\tcountry = 3\n}\n",
        """\
s.seg:2:12: country is a string, not a number; compare it with a string in double quotes
    \tcountry = 3
    \t          ^""",
    ),
    "field written wrong": (
        'segment a { events > 1 or country("x") = "y" or events(last 7 days) > 1 or received("") }',
        """\
s.seg:1:13: events needs arguments: write events("NAME") or events("NAME", last N days)
    segment a { events > 1 or country("x") = "y" or events(last 7 days) > 1 or received("") }
                ^
s.seg:1:27: country takes no arguments: write country
    segment a { events > 1 or country("x") = "y" or events(last 7 days) > 1 or received("") }
                              ^
s.seg:1:49: wrong arguments for events: write events("NAME") or events("NAME", last N days)
    segment a { events > 1 or country("x") = "y" or events(last 7 days) > 1 or received("") }
                                                    ^
s.seg:1:85: received needs a name, not an empty string
    segment a { events > 1 or country("x") = "y" or events(last 7 days) > 1 or received("") }
                                                                                        ^""",
    ),
    "a number is not a condition": (
        "segment a { sessions }",
        """\
s.seg:1:13: sessions is a number, not a condition; compare it, e.g. sessions >= 1
    segment a { sessions }
                ^""",
    ),
    "messaging history written wrong": (
        'segment a {\n    pushes_received >= 1\n    or pushes_opened("promo", last 7 days) > 0\n'
        '    or push_received(last 7 days) <= 2\n    or opened("promo", last 91 days)\n'
        '    or last_opened("promo") > 3\n    or received("promo", last 7 days) >= 1\n'
        "    or last_open_any >= 7 days ago\n    or pushes_opened(last 30 days)\n}\n",
        """\
s.seg:2:5: pushes_received needs arguments: write pushes_received(last N days)
        pushes_received >= 1
        ^
s.seg:3:8: wrong arguments for pushes_opened: write pushes_opened(last N days)
        or pushes_opened("promo", last 7 days) > 0
           ^
s.seg:4:8: unknown field push_received; did you mean pushes_received?
        or push_received(last 7 days) <= 2
           ^
s.seg:5:24: window too long: at most 90 days (12 weeks)
        or opened("promo", last 91 days)
                           ^
s.seg:6:31: last_opened is an instant, not a number; compare it with a date (2026-11-01), an \
instant (2026-11-01T10:30:00Z), now, or a relative time (7 days ago)
        or last_opened("promo") > 3
                                  ^
s.seg:7:39: >= does not apply to received, which is a bool; use = or !=
        or received("promo", last 7 days) >= 1
                                          ^
s.seg:8:8: unknown field last_open_any; did you mean last_opened_any?
        or last_open_any >= 7 days ago
           ^
s.seg:9:8: pushes_opened is a number, not a condition; compare it, e.g. pushes_opened(last 30 days) >= 1
        or pushes_opened(last 30 days)
           ^""",
    ),
    "bad dates and instants": (
        "segment a { created_at > 2026-02-30 and created_at < 2026-11-01T10:30:00 }",
        """\
s.seg:1:26: 2026-02-30 is not a date (expected YYYY-MM-DD, e.g. 2026-11-01)
    segment a { created_at > 2026-02-30 and created_at < 2026-11-01T10:30:00 }
                             ^
s.seg:1:54: 2026-11-01T10:30:00 is not an instant: no time zone
    segment a { created_at > 2026-02-30 and created_at < 2026-11-01T10:30:00 }
                                                         ^""",
    ),
    "segment name": (
        "segment Top { sessions > 1 }",
        """\
s.seg:1:9: bad segment name Top: use lower-case letters, digits and _, starting with a letter
    segment Top { sessions > 1 }
            ^""",
    ),
    "relative time out of range": (
        "segment a { last_session > -3 days ago or created_at > 200000 weeks ago }",
        """\
s.seg:1:28: a relative time counts from 0 up: write 3 days from now instead
    segment a { last_session > -3 days ago or created_at > 200000 weeks ago }
                               ^
s.seg:1:56: 200000 weeks ago is too far: at most 100000 days
    segment a { last_session > -3 days ago or created_at > 200000 weeks ago }
                                                           ^""",
    ),
}


@pytest.mark.parametrize(("source", "expected"), GOLDEN.values(), ids=GOLDEN.keys())
def test_golden_messages(source: str, expected: str) -> None:
    assert rendered(source) == expected


def test_duplicate_name_across_files() -> None:
    diagnostics = check_sources(
        [("a.seg", "segment top { sessions > 1 }\n"), ("b/c.seg", "# again\nsegment top { sessions > 2 }\n")]
    )
    assert format_diagnostics(diagnostics) == (
        "b/c.seg:2:9: duplicate segment top; first defined at a.seg:1:9\n"
        "    segment top { sessions > 2 }\n"
        "            ^"
    )


def test_all_errors_are_reported_not_just_the_first() -> None:
    diagnostics = check_sources(
        [
            ("a.seg", "segment a { sesions > 1 }\nsegment b { country > 1 }\n"),
            ("b.seg", 'segment c { in_segment("nope") }\nsegment d { x = }\nsegment e { y > 1 }\n'),
        ]
    )
    assert [(item.file, item.line, item.message.split(";")[0]) for item in diagnostics] == [
        ("a.seg", 1, "unknown field sesions"),
        ("a.seg", 2, "country is a string, not a number"),
        ("b.seg", 1, 'unknown segment "nope"'),
        ("b.seg", 2, 'unexpected "}"'),
        # The block after the syntax error is still parsed and checked.
        ("b.seg", 3, "unknown field y"),
    ]


def test_a_syntax_error_does_not_hide_segment_names() -> None:
    sources = [
        ("a.seg", "segment broken { sessions > }\nsegment fine { sessions > 1 }\n"),
        ("b.seg", 'segment reader { in_segment("fine") and in_segment("broken") and in_segment("nope") }\n'),
    ]
    # Only the syntax error itself and the name that really is unknown.
    assert [(item.file, item.message.split(";")[0]) for item in check_sources(sources)] == [
        ("a.seg", 'unexpected "}"'),
        ("b.seg", 'unknown segment "nope"'),
    ]


def test_dsl_error_carries_every_diagnostic() -> None:
    with pytest.raises(DslError) as raised:
        compile_sources([("a.seg", "segment a { x > 1 or y > 2 }")])
    error = raised.value
    assert [(item.line, item.column) for item in error.diagnostics] == [(1, 13), (1, 22)]
    assert error.format() == str(error) == format_diagnostics(error.diagnostics)
    assert error.diagnostics[0] == Diagnostic(
        "a.seg", 1, 13, "unknown field x", "segment a { x > 1 or y > 2 }"
    )
    assert error.diagnostics[0].to_json() == {
        "file": "a.seg",
        "line": 1,
        "column": 13,
        "message": "unknown field x",
    }


def test_too_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = "segment a { " + "not " * 5000 + "sessions > 1 }"
    nested = "segment b { " + "(sessions > 1 and " * 3000 + "sessions > 1" + ")" * 3000 + " }"
    diagnostics = check_sources([("a.seg", deep), ("b.seg", nested)])
    assert [item.message for item in diagnostics] == ["too deeply nested: at most 100 levels"] * 2


def test_check_paths_reads_directories_recursively(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "ok.seg").write_text("segment ok { sessions > 1 }\n")
    (tmp_path / "nested" / "bad.seg").write_text('segment bad { in_segment("okay") }\n')
    (tmp_path / "notes.txt").write_text("segment ignored { nonsense }\n")
    diagnostics = check_paths([tmp_path])
    assert [(Path(item.file).name, item.message) for item in diagnostics] == [
        ("bad.seg", 'unknown segment "okay"; did you mean "ok"?')
    ]
    assert check_paths([tmp_path / "ok.seg"]) == []


def test_check_paths_reports_missing_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.seg").write_bytes(b"# caf\xc3\xa9\nsegment caf\xe9 { sessions > 1 }\n")
    missing = tmp_path / "missing"
    diagnostics = check_paths([tmp_path, missing])
    assert sorted((Path(item.file).name, item.message) for item in diagnostics) == [
        ("latin1.seg", "not UTF-8 text: byte 0xe9"),
        ("missing", "no such file or directory"),
    ]
    (unreadable,) = (item for item in diagnostics if item.file.endswith("latin1.seg"))
    assert unreadable.format().splitlines()[1:] == [
        "    segment caf\ufffd { sessions > 1 }",
        "               ^",
    ]
    assert (unreadable.line, unreadable.column) == (2, 12)


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path: Path) -> None:
    (tmp_path / "windows.seg").write_bytes(b"\xef\xbb\xbfsegment a { sessions > 1 }\r\n")
    assert check_paths([tmp_path]) == []


def test_load_segments_raises_with_everything_wrong(tmp_path: Path) -> None:
    (tmp_path / "a.seg").write_text("segment a { x > 1 }\n")
    (tmp_path / "b.seg").write_text("segment a { sessions > 1 }\n")
    with pytest.raises(DslError) as raised:
        load_segments(tmp_path)
    assert [item.message.split(";")[0] for item in raised.value.diagnostics] == [
        "unknown field x",
        "duplicate segment a",
    ]


def test_the_repository_segments_check_clean() -> None:
    directory = Path(__file__).resolve().parents[2] / "segments"
    assert check_paths([directory]) == []
    segments = load_segments(directory)
    assert {"top_users", "lapsing_top_users", "big_spenders", "new_users", "cart_abandoners"} <= set(segments)


def test_digits_are_ascii_only() -> None:
    (problem,) = check_sources([("s.seg", "segment a { sessions > \u0661\u0662 }")])
    assert (problem.line, problem.column) == (1, 24)
    assert problem.message.startswith("unexpected character '\u0661'")
