"""`kudos report --out FILE` as a user runs it: on a DynamoDB named by --endpoint-url, on an empty
embedded one, and the errors it names before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from kudos.cli import main
from tests.apiclient import ApiClient
from tests.report_dom import parse, points, series


def test_a_report_of_the_stored_data(dynamodb, tmp_path, capsys, monkeypatch):
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
    assert api.post("/v1/sessions", {"sessions": sessions}).status == 201
    track = {"attributes": [{"external_id": "u-1", "push_subscribe": "opted_in", "first_name": "<script>"}]}
    assert api.post("/v1/users/track", track).status == 201
    monkeypatch.setenv("USERS_TABLE", dynamodb.settings.users_table)
    monkeypatch.setenv("ACTIVITY_TABLE", dynamodb.settings.activity_table)
    out = tmp_path / "report.html"
    where = ["--endpoint-url", dynamodb.endpoint_url]
    assert main(["report", "--out", str(out), "--from", "2026-11-01", "--to", "2026-11-22", *where]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {out}: 2026-11-01 to 2026-11-22, 5 segment(s), 1 campaign(s)")
    nodes = parse(out.read_text())
    (dau,) = series(nodes, "polyline", "dau")
    assert len(points(dau)) == 22
    (top,) = [bar for bar in series(nodes, "rect", "members") if bar.attrs["data-segment"] == "top_users"]
    assert "top_users: 1" in top.children[0].text
    assert series(nodes, "rect", "sent", data_campaign="thank_top_users")
    # Without --to the report ends today, after the data (the track call's day): the command says so.
    assert main(["report", "--out", str(out), *where]) == 0
    assert "no one was active after 2026-11-22: --to 2026-11-22" in capsys.readouterr().err


def test_embedded_is_an_empty_store(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    out = tmp_path / "empty.html"
    assert main(["report", "--out", str(out), "--embedded"]) == 0
    captured = capsys.readouterr()
    assert "5 segment(s), 1 campaign(s)" in captured.out  # the deployed rules, with nothing stored
    assert "no one was active" in captured.err
    (dau,) = series(parse(out.read_text()), "polyline", "dau")
    assert len(points(dau)) == 30
    assert len({y for _, y in points(dau)}) == 1  # all zero: a flat line


def test_a_data_directory_that_does_not_exist_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    missing = tmp_path / "nothing-here"
    out = tmp_path / "report.html"
    assert main(["report", "--out", str(out), "--data", str(missing)]) == 1
    assert f"no local data in {missing}/" in capsys.readouterr().err
    assert not missing.exists()
    assert not out.exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [("no-such-dir/report.html", "is not a directory"), (".", "is a directory; name the file")],
)
def test_an_output_it_cannot_write_is_named_before_anything_starts(tmp_path, capsys, out, message):
    assert main(["report", "--out", str(tmp_path / out), "--embedded"]) == 1
    assert message in capsys.readouterr().err


def test_one_store_at_a_time(capsys):
    assert main(["report", "--out", "r.html", "--embedded", "--data", "x"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not Path("r.html").exists()
