"""`kudos segments ...` as a user runs it: check (exit codes, compiler output), members, explain."""

from __future__ import annotations

import json

from kudos.cli import main
from tests.apiclient import ApiClient


def test_check_passes_on_the_shipped_rules(capsys):
    assert main(["segments", "check", "segments"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_check_fails_with_file_line_column_and_caret(tmp_path, capsys):
    rules = tmp_path / "bad.seg"
    rules.write_text(
        'segment loyal "Loyal" {\n    sessions(last 30 days) >= 12\n    and last_sesion >= 7 days ago\n}\n'
    )
    assert main(["segments", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{rules}:3:9: unknown field last_sesion; did you mean last_session?" in err
    assert "    and last_sesion >= 7 days ago\n" in err
    assert "\n            ^" in err


def test_members_and_explain_read_the_store(dynamodb, capsys, monkeypatch):
    api = ApiClient(dynamodb.settings, dynamodb.client, now="2026-11-22T12:00:00Z")
    sessions = [
        {
            "session_id": f"s{n}",
            "device_id": "d",
            "user_id": "u-1",
            "started_at": f"2026-11-{n + 1:02d}T10:00:00Z",
        }
        for n in range(21)
    ]
    api.post("/v1/sessions", {"sessions": sessions})
    api.post("/v1/users/track", {"attributes": [{"external_id": "u-1", "push_subscribe": "opted_in"}]})
    where = ["--endpoint-url", dynamodb.endpoint_url, "--at", "2026-11-22T12:00:00Z"]
    # The store the command reads: the test's tables on the test's endpoint.
    monkeypatch.setenv("USERS_TABLE", dynamodb.settings.users_table)
    monkeypatch.setenv("ACTIVITY_TABLE", dynamodb.settings.activity_table)
    assert main(["segments", "members", "top_users", *where]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[0]) == {"user_id": "u-1"}
    assert "top_users: 1 member(s)" in captured.err
    assert main(["segments", "explain", "top_users", "--user-id", "u-1", *where]) == 0
    out = capsys.readouterr().out
    assert 'user_id "u-1" is IN top_users' in out
    # The clause under `not` reads as the rule does, and counts for the user (the attribute is unset).
    assert "  yes  not attr.is_employee = true" in out
    assert main(["segments", "explain", "top_users", "--user-id", "u-1", "--json", *where]) == 0
    employee = json.loads(capsys.readouterr().out)["clauses"][3]
    assert (employee["clause"], employee["result"], employee["negated"]) == (
        "attr.is_employee = true",
        False,
        True,
    )
    assert (employee["effective_clause"], employee["effective_result"]) == (
        "not attr.is_employee = true",
        True,
    )
    assert main(["segments", "members", "no_such", *where]) == 1
    capsys.readouterr()
    # No stored member (no sweep has run on these tables): the hint says why, and what to do.
    assert main(["segments", "members", "lapsing_top_users", "--endpoint-url", dynamodb.endpoint_url]) == 0
    assert "a new or changed rule has none until the next sweep" in capsys.readouterr().err
    # Without --at: the stored membership, as the members route answers it.
    assert main(["segments", "members", "top_users", "--endpoint-url", dynamodb.endpoint_url]) == 0
    assert "top_users: 1 member(s), stored membership" in capsys.readouterr().err


def test_a_data_directory_that_does_not_exist_is_an_error_not_an_empty_answer(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    missing = tmp_path / "nothing-here"
    assert main(["segments", "members", "top_users", "--data", str(missing)]) == 1
    assert f"no local data in {missing}/" in capsys.readouterr().err
    assert not missing.exists()
    # Without --data: the directory `make demo` fills, here absent too.
    monkeypatch.chdir(tmp_path)
    assert main(["segments", "members", "top_users"]) == 1
    assert "no local data in .kudos-data/: run `make demo`" in capsys.readouterr().err
