"""`kudos serve` runs the sweep on its schedule (campaigns.md "Locally"): SweepFunction's handler, on
a scheduled event whose `time` is now, through the same Lambda runner as the HTTP handlers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kudos.local.dynamodb import free_port
from kudos.local.gateway import LocalLambda
from kudos.local.routes import find_template, load_template
from kudos.local.schedule import DEFAULT_SWEEP_EVERY_S, Sweeper, default_sweep_every, scheduled_event
from kudos.local.serve import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_default_interval_is_the_templates_sweep_every_minutes() -> None:
    assert default_sweep_every(load_template(find_template(ROOT))) == 15 * 60


def test_a_template_without_the_parameter_sweeps_every_15_minutes(local_app_template: Path) -> None:
    assert default_sweep_every(load_template(local_app_template)) == DEFAULT_SWEEP_EVERY_S


def test_the_scheduled_event_is_eventbridges_with_time_now() -> None:
    event = scheduled_event(datetime(2026, 11, 30, 6, 0, 0, 700_000, tzinfo=UTC).timestamp())

    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["time"] == "2026-11-30T06:00:00Z"
    assert event["detail"] == {}


def test_the_sweeper_invokes_on_its_rate_and_stops_cleanly(local_app_template: Path) -> None:
    tick = load_template(local_app_template).function("TickFunction")
    sweeper = Sweeper(LocalLambda(), tick, 0.05, log=False)
    sweeper.start()
    wait_for(lambda: sweeper.runs >= 3)
    sweeper.stop()

    assert not any(thread.name == "kudos-sweep" for thread in threading.enumerate())
    runs = sweeper.runs
    time.sleep(0.2)
    assert sweeper.runs == runs
    assert sweeper.failures == 0


def test_serve_sweeps_on_its_schedule_and_the_run_is_recorded(dynamodb, http) -> None:
    with serve_in_thread(settings=dynamodb.settings, sweep_every=0.2) as url:

        def swept() -> bool:
            reply = http("GET", f"{url}/v1/segments")
            return reply.status == 200 and reply.json()["last_sweep"] is not None

        wait_for(swept)
        last = http("GET", f"{url}/v1/segments").json()["last_sweep"]
    assert last["kind"] in ("full", "steady")
    # Its clock is now (the wall clock, the event's time).
    at = datetime.fromisoformat(last["at"]).timestamp()
    assert abs(at - time.time()) < 60
    assert not any(thread.name == "kudos-sweep" for thread in threading.enumerate())


def test_sweep_every_0_never_sweeps(dynamodb, http) -> None:
    with serve_in_thread(settings=dynamodb.settings, sweep_every=0) as url:
        time.sleep(0.3)
        assert http("GET", f"{url}/v1/segments").json()["last_sweep"] is None


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_a_bad_interval_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from kudos.cli import main

    assert main(["serve", "--sweep-every", value]) == 2
    assert "--sweep-every" in capsys.readouterr().err


def test_kudos_serve_sweeps_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kudos.cli", "serve", "--port", str(port), "--sweep-every", "0.5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        stderr_lines: list[str] = []
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        while not any("scheduled SweepFunction" in line for line in stderr_lines):
            assert time.monotonic() < deadline, "".join(stderr_lines)
            line = process.stderr.readline()
            assert line or process.poll() is None, "".join(stderr_lines)
            stderr_lines.append(line)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "sweep     SweepFunction every 0.5 s" in out
    # Where sends wait and pushes go: the embedded queue, drained by SendFunction, and moto's SNS.
    assert "sends     SendQueue: moto's SQS at http://127.0.0.1:" in out
    assert "SendFunction takes each batch as it comes" in out
    assert "pushes    moto's SNS at http://127.0.0.1:" in out
    assert "/moto-api/data.json" in out
    assert "platform applications: APNs arn:aws:sns:us-east-1:123456789012:app/APNS/kudos-local-" in out
    assert "full sweep" in "".join(stderr_lines)
    assert "stopping" in err
    assert "Traceback" not in err
