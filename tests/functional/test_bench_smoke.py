"""`python -m bench --quick`: every benchmark runs end to end on tiny sizes and prints its headline.

A smoke test only: it checks that the benchmarks still run against the code they measure (handler,
store, compiler, scan path) and print what `make bench` readers look for. Never a timing assertion.
"""

from __future__ import annotations

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.ddblocal


def test_every_benchmark_runs_quick(ddblocal_endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--quick", "--endpoint-url", ddblocal_endpoint])
    out = capsys.readouterr().out
    for headline in (
        "baseline: bare PutItem per session",
        "kudos handler, new sessions",
        "per new session",
        "per duplicate",
        "all ten (sum)",
        "evaluate_all",
        "1. real Scan of DynamoDB Local",
        "2. the same Scan's",
        "3. in memory",
        "(a) demo population",
        "(b) random users",
        "full / steady: time",
        "a day of 96 steady sweeps",
        "raw Scan path speedup",
        "workers (Scan TotalSegments) for 10M",
        "full sweep of 10M",
        "baseline: bare SNS publish loop",
        "kudos sender (DynamoDB Local + SNS)",
        "billed write units per send",
    ):
        assert headline in out, f"{headline!r} missing from:\n{out}"
    assert "disagree" not in out
