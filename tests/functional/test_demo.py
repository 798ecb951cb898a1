"""`kudos demo` end to end: embedded DynamoDB, every request through the handlers, and a table whose
figures are what an independent reading of api.md makes of the very requests the demo sent; then the
entries and exits per day it prints are what the changes route lists, and the user it explains
really entered then left.

A small population over 30 days keeps this under half a minute: each request costs several
DynamoDB round trips to the embedded server.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kudos import cli
from kudos.core.timeutil import format_day
from kudos.demo import run as demo_run
from kudos.demo.population import DEFAULT_NOW, Population, generate
from tests.reference import TrueSession, reference_figures

USERS = 24
DAYS = 30
ROW = re.compile(r"^\W*(\d{4}-\d{2}-\d{2})\W+(.*?)\W*$")


MEMBERSHIP_TITLE = "Segment entries and exits per UTC day"


def run_demo() -> tuple[int, str, dict[str, Any]]:
    """The demo's exit code and output, and what the changes route says while its DynamoDB runs."""
    out = io.StringIO()
    seen: dict[str, Any] = {}

    def check_against_the_api(context: demo_run.DemoContext) -> None:
        seen["report"] = context.membership
        seen["listed"] = every_change(context)

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        # rich draws for a terminal of COLUMNS characters: wide enough that no line wraps.
        patch.setenv("COLUMNS", "160")
        patch.setattr(demo_run, "REPORTS", [*demo_run.REPORTS, check_against_the_api])
        # DynamoDB Local, as `make demo` runs it, in a directory of the test's own.
        with tempfile.TemporaryDirectory() as data:
            patch.setattr(demo_run, "REPORT_FILE", Path(data) / "report.html")
            code = cli.main(["demo", "--users", str(USERS), "--days", str(DAYS), "--data", data])
            seen["html"] = (Path(data) / "report.html").read_text()
            # The data outlives the demo, where the CLI and make serve read it (the demo may have
            # kept it in memory while it ran).
            stored = io.StringIO()
            with contextlib.redirect_stdout(stored), contextlib.redirect_stderr(stored):
                seen["members_code"] = cli.main(["segments", "members", "top_users", "--data", data])
            seen["members_after"] = stored.getvalue()
    return code, out.getvalue(), seen


def every_change(context: demo_run.DemoContext) -> dict[str, list[dict[str, Any]]]:
    """Each segment's whole change log in one range, small pages: another way through the route."""
    first = f"{format_day(int(context.population.start // 86_400))}T00:00:00Z"
    listed: dict[str, list[dict[str, Any]]] = {}
    assert context.membership is not None
    for name in context.membership.segments:
        query = {"from": first, "limit": "7"}
        listed[name] = []
        while True:
            reply = context.api.request("GET", f"/v1/segments/{name}/changes", query=query, at=context.now)
            assert reply.status == 200, reply.body
            listed[name] += reply.body["changes"]
            if not reply.body["next"]:
                break
            query = {**query, "next": reply.body["next"]}
    return listed


def table_rows(output: str) -> dict[str, list[float]]:
    rows = {}
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            numbers = [float(n.replace(",", "")) for n in re.findall(r"[\d.,]+", match.group(2))]
            rows[match.group(1)] = numbers
    return rows


def expected_figures(population: Population) -> list[dict[str, object]]:
    """api.md applied to the requests the demo sent, with nothing from the server's code."""

    def instant(text: str) -> float:
        return datetime.fromisoformat(text).timestamp()

    merged_into: dict[str, str] = {}
    for request in population.requests:
        if request.path == "/v1/users/identify":
            for alias in request.body["aliases_to_identify"]:
                merged_into[alias["device_id"]] = alias["external_id"]
    sessions = []
    api_updates: dict[str, set[date]] = defaultdict(set)
    for request in population.requests:
        bad = set(request.bad_items)
        if request.path == "/v1/sessions":
            # Every instant shifts by the device's clock error: receive time - sent_at.
            skew = request.received_at - instant(request.body["sent_at"])
            for index, item in enumerate(request.body["sessions"]):
                if ("sessions", index) in bad:
                    continue
                if "user_id" in item:
                    user = f"u:{item['user_id']}"
                elif item["device_id"] in merged_into:
                    user = f"u:{merged_into[item['device_id']]}"
                else:
                    user = f"d:{item['device_id']}"
                started = datetime.fromtimestamp(instant(item["started_at"]) + skew, UTC)
                sessions.append(TrueSession(item["session_id"], user, started))
        elif request.path == "/v1/users/track":
            received = datetime.fromtimestamp(request.received_at, UTC).date()
            for array, items in request.body.items():
                for index, item in enumerate(items):
                    if (array, index) not in bad:
                        api_updates[f"u:{item['external_id']}"].add(received)
    last = DEFAULT_NOW.date()
    return reference_figures(sessions, api_updates, last - timedelta(days=DAYS - 1), last)


# One test, one demo run: xdist (make test) would run the demo again on each worker that got a
# test of its own, and pytest 9 ignores xdist_group here.
def test_the_demo_prints_api_md_applied_to_the_requests_it_sent() -> None:
    code, output, seen = run_demo()

    assert code == 0, output
    assert f"{USERS} users over {DAYS} days" in output
    assert "0 non-2xx responses" in output
    assert "2 item errors" in output
    assert output.count("(deliberate)") == 2
    assert "started_at: no time zone" in output
    assert re.search(r"[1-9][\d,]* duplicates detected", output)

    rows = table_rows(output.split(MEMBERSHIP_TITLE)[0])
    last = DEFAULT_NOW.date()
    assert list(rows) == [(last - timedelta(days=n)).isoformat() for n in range(DAYS - 1, -1, -1)]

    expected = expected_figures(generate(USERS, days=DAYS))
    assert sum(day["dau"] for day in expected) > DAYS  # type: ignore[misc]
    for day in expected:
        assert rows[str(day["date"])] == [
            day["dau"],
            day["wau"],
            day["mau"],
            day["new_users"],
            day["sessions"],
            pytest.approx(day["stickiness"], abs=1e-4),
        ], day["date"]

    check_membership_section(output, seen)
    check_campaign_sections(output, seen)

    printed = re.search(r"│ top_users\s+│[^│]+│\s+(\d+) │", output)
    assert printed is not None, output
    assert seen["members_code"] == 0
    assert f"top_users: {printed.group(1)} member(s), stored membership" in seen["members_after"]


def check_campaign_sections(output: str, seen: dict[str, Any]) -> None:
    """Each campaign's table from the report route, its results, one rendered push, and the pictures."""
    for name in ("thank_top_users", "daily_top_nudge"):
        assert f"Campaign {name} " in output
    assert re.search(r"opens [\d,]+ \([\d,]+ direct, [\d,]+ influenced\); opt-outs [\d,]+", output)
    assert re.search(r"one push as sent to user_id u-\d+ at [^:]+:\d\d:\d\dZ: Thank you, \w+!", output)
    assert "wrote " in output
    assert 'data-series="dau"' in seen["html"]
    assert 'data-campaign="thank_top_users"' in seen["html"]


def check_membership_section(output: str, seen: dict[str, Any]) -> None:
    report: demo_run.MembershipReport = seen["report"]
    listed: dict[str, list[dict[str, Any]]] = seen["listed"]
    assert re.search(r"\d+ sweeps \(SweepFunction every 6 hours and now: 1 full, \d+ steady\)", output)
    assert "0 failed" in output

    # Counted per day from the route, paged differently: the same entries and exits.
    expected: dict[str, dict[str, tuple[int, int]]] = {day: {} for day in report.days}
    for name, changes in listed.items():
        for day in report.days:
            on_day = [change for change in changes if change["at"].startswith(day)]
            entered = sum(change["change"] == "entered" for change in on_day)
            expected[day][name] = (entered, len(on_day) - entered)
    assert report.counts == expected
    assert sum(entered for day in expected.values() for entered, _ in day.values()) > 0
    assert sum(exited for day in expected.values() for _, exited in day.values()) > 0

    # The printed table is those counts.
    section = output.split(MEMBERSHIP_TITLE)[1]
    for day in report.days:
        line = next(line for line in section.splitlines() if day in line)
        cells = [cell.strip() for cell in line.strip("│ ").split("│")][1:]
        assert cells == [
            "." if counts == (0, 0) else f"+{counts[0]} -{counts[1]}"
            for counts in (expected[day][name] for name in report.segments)
        ], day

    # The explained user entered, then left, and has not come back since.
    explained = report.explained
    assert explained is not None
    mine = [c for c in listed[explained.segment] if c["user"] == explained.user]  # newest first
    assert mine[0] == explained.exited
    assert explained.entered in mine
    assert explained.entered["change"] == "entered"
    assert explained.exited["change"] == "exited"
    assert datetime.fromisoformat(explained.entered["at"]) < datetime.fromisoformat(explained.exited["at"])
    assert explained.at_entry["in"] is True
    assert explained.at_exit["in"] is False
    who = ", ".join(f"{kind} {value}" for kind, value in explained.user.items())
    assert f"{who} entered {explained.segment} at {explained.entered['at']}" in section
    assert "<- flipped" in section


def demo_report(workers: int) -> str:
    """What the demo prints after its replay, with ``workers`` processes beside its own."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setenv("COLUMNS", "160")
        with tempfile.TemporaryDirectory() as data:
            patch.setattr(demo_run, "REPORT_FILE", Path(data) / "report.html")
            arguments = ["--users", str(USERS), "--days", str(DAYS), "--data", data]
            assert cli.main(["demo", *arguments, "--workers", str(workers)]) == 0, out.getvalue()
    printed = out.getvalue().replace(data, "DATA")
    return printed.split("to generate and replay", 1)[1]


def test_requests_replayed_at_once_by_several_processes_leave_what_one_at_a_time_leaves() -> None:
    # Every figure, segment, change, send and answer the demo prints; only the timing differs.
    assert demo_report(workers=2) == demo_report(workers=0)
