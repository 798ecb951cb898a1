"""`kudos campaigns ...` as a user runs it: list, sends, explain, pause and resume on a DynamoDB, and
a missing data directory said in words."""

from __future__ import annotations

import json

from kudos.cli import main
from kudos.store.memory import MemorySendQueue
from tests.apiclient import ApiClient
from tests.functional.test_campaigns_api import CAMPAIGN, enter, outside_holdout


def test_list_sends_explain_pause_and_resume(dynamodb, capsys, monkeypatch):
    api = ApiClient(dynamodb.settings, dynamodb.client, now="2026-11-22T12:00:00Z")
    api.store.send_queue = MemorySendQueue()  # type: ignore[assignment]
    (user_id,) = outside_holdout("u-cli", 1)
    enter(api, user_id, first_name="Ana")
    enter(api, "u-cli-silent", token=False)
    monkeypatch.setenv("USERS_TABLE", dynamodb.settings.users_table)
    monkeypatch.setenv("ACTIVITY_TABLE", dynamodb.settings.activity_table)
    where = ["--endpoint-url", dynamodb.endpoint_url]

    assert main(["campaigns", "list", *where]) == 0
    out = capsys.readouterr().out
    assert f"{CAMPAIGN}: active\n" in out
    assert "  send on entry, audience top_users, in segments/top_users.seg\n" in out
    assert "  sends: 1 queued, 1 unreachable\n" in out
    assert main(["campaigns", "list", "--json", *where]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["campaigns"]
    assert listed["counts"]["queued"] == 1

    assert main(["campaigns", "sends", CAMPAIGN, *where]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2
    assert "unreachable" in lines[0] or "unreachable" in lines[1]
    assert f'user_id "{user_id}"' in captured.out
    assert f"{CAMPAIGN}: 2 send(s), newest first" in captured.err
    assert main(["campaigns", "sends", CAMPAIGN, "--user-id", user_id, "--json", *where]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [send["status"] for send in page["sends"]] == ["queued"]

    at = ["--at", "2026-11-22T12:00:00Z"]
    assert main(["campaigns", "explain", CAMPAIGN, "--user-id", user_id, *at, *where]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f'user_id "{user_id}", {CAMPAIGN} (active) at 2026-11-22T12:00:00Z: a trigger now would NOT send'
    )
    assert (
        '  STOP  not_eligible   not_eligible: a trigger of this campaign is still queued  seen "2026-11-22T12:00:00Z"'
        in out
    )
    assert '  push: "Thank you, Ana!"' in out
    assert "history: 1 trigger(s)" in out
    assert main(["campaigns", "explain", CAMPAIGN, "--user-id", "u-cli-silent", *at, *where]) == 0
    out = capsys.readouterr().out
    assert "  STOP  unreachable    unreachable: no valid, enabled push token  seen false" in out
    # With a token now, the silent user would be sent the campaign (an unreachable trigger does not count).
    api = ApiClient(dynamodb.settings, dynamodb.client, now="2026-11-22T12:00:00Z")  # the CLI reset services
    token = {
        "device_id": "d-silent",
        "user_id": "u-cli-silent",
        "platform": "ios",
        "token": "t",
        "enabled": True,
    }
    assert api.post("/v1/push/tokens", token).status == 201
    assert main(["campaigns", "explain", CAMPAIGN, "--user-id", "u-cli-silent", *at, *where]) == 0
    assert "a trigger now WOULD SEND" in capsys.readouterr().out
    assert main(["campaigns", "explain", CAMPAIGN, "--user-id", "u-cli-silent", "--json", *at, *where]) == 0
    assert json.loads(capsys.readouterr().out)["would_send"] is True

    assert main(["campaigns", "pause", CAMPAIGN, "--reason", "stock ran out", *where]) == 0
    assert "paused; paused since" in capsys.readouterr().out
    assert main(["campaigns", "pause", CAMPAIGN, *where]) == 0
    assert "already paused, unchanged" in capsys.readouterr().out
    assert main(["campaigns", "list", *where]) == 0
    assert "(stock ran out)" in capsys.readouterr().out
    assert main(["campaigns", "resume", CAMPAIGN, *where]) == 0
    assert f"{CAMPAIGN}: resumed; active since" in capsys.readouterr().out

    # Mistakes are one line on stderr and exit 1.
    assert main(["campaigns", "sends", "nope", *where]) == 1
    assert "kudos campaigns: no campaign named 'nope'" in capsys.readouterr().err
    assert main(["campaigns", "explain", CAMPAIGN, "--user-id", "u-nobody", *where]) == 1
    assert 'no user with user_id "u-nobody"' in capsys.readouterr().err
    assert main(["campaigns", "sends", CAMPAIGN, "--limit", "0", *where]) == 1
    assert "limit: expected a whole number from 1 to 1000" in capsys.readouterr().err


def test_a_data_directory_that_does_not_exist_is_an_error_not_an_empty_answer(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    missing = tmp_path / "nothing-here"
    assert main(["campaigns", "list", "--data", str(missing)]) == 1
    assert f"no local data in {missing}/" in capsys.readouterr().err
    assert not missing.exists()
    monkeypatch.chdir(tmp_path)
    for command in (
        ["list"],
        ["sends", CAMPAIGN],
        ["pause", CAMPAIGN],
        ["explain", CAMPAIGN, "--user-id", "u"],
    ):
        assert main(["campaigns", *command]) == 1
        assert "no local data in .kudos-data/: run `make demo`" in capsys.readouterr().err
