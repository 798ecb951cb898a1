"""`kudos demo` end to end: embedded DynamoDB, every request through the handlers, and a table whose
figures are what an independent reading of api.md makes of the very requests the demo sent.

A small population over 30 days keeps this under half a minute: each request costs several
DynamoDB round trips to the embedded server.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from kudos import cli
from kudos.demo.population import DEFAULT_NOW, Population, generate
from tests.reference import TrueSession, reference_figures

USERS = 24
DAYS = 30
ROW = re.compile(r"^\W*(\d{4}-\d{2}-\d{2})\W+(.*?)\W*$")


def run_demo() -> tuple[int, str]:
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        # rich draws for a terminal of COLUMNS characters: wide enough that no line wraps.
        patch.setenv("COLUMNS", "160")
        code = cli.main(["demo", "--users", str(USERS), "--days", str(DAYS)])
    return code, out.getvalue()


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
    code, output = run_demo()

    assert code == 0, output
    assert f"{USERS} users over {DAYS} days" in output
    assert "0 non-2xx responses" in output
    assert "2 item errors" in output
    assert output.count("(deliberate)") == 2
    assert "started_at: no time zone" in output
    assert re.search(r"[1-9][\d,]* duplicates detected", output)

    rows = table_rows(output)
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
