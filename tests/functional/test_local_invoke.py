"""`kudos invoke`: one function, one event, the result JSON alone on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kudos.cli import main

ROOT = Path(__file__).resolve().parents[2]

HANDLER_MODULE = """
def handler(event, context):
    print("log line")
    return {"doubled": event["n"] * 2, "function_name": context.function_name}
"""


@pytest.fixture
def event_file(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"rawPath": "/echo/ana", "pathParameters": {"name": "ana"}}))
    return path


def invoke_args(function: str, event: Path, template: Path, endpoint: str) -> list[str]:
    return [
        "invoke",
        function,
        "--event",
        str(event),
        "--template",
        str(template),
        "--endpoint-url",
        endpoint,
    ]


def test_the_result_json_alone_goes_to_stdout(
    event_file: Path, local_app_template: Path, moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(invoke_args("EchoFunction", event_file, local_app_template, moto_endpoint)) == 0

    out, err = capfd.readouterr()
    result = json.loads(out)
    assert result["statusCode"] == 200
    body = json.loads(result["body"])
    assert body["event"]["pathParameters"] == {"name": "ana"}
    assert body["function_name"] == "EchoFunction"
    assert body["memory_limit_in_mb"] == 256
    # What the handler printed is on stderr, as `sam local invoke` does.
    assert "echo was called" in err
    assert "echo was called" not in out


def test_a_function_is_found_by_its_handler_too(
    event_file: Path, local_app_template: Path, moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    args = invoke_args("local_app_handlers.tick", event_file, local_app_template, moto_endpoint)
    assert main(args) == 0

    assert json.loads(capfd.readouterr().out)["function_name"] == "TickFunction"


def test_a_handler_outside_the_template_runs_from_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kudos_invoke_bare.py").write_text(HANDLER_MODULE)
    (tmp_path / "n.json").write_text('{"n": 21}')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    # No --endpoint-url: the embedded DynamoDB, as by default.
    assert main(["invoke", "kudos_invoke_bare.handler", "--event", "n.json"]) == 0

    out, err = capfd.readouterr()
    assert json.loads(out) == {"doubled": 42, "function_name": "kudos_invoke_bare.handler"}
    assert "log line" in err


def test_a_failing_handler_prints_lambdas_error_json_and_exits_1(
    tmp_path: Path, local_app_template: Path, moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    event = tmp_path / "boom.json"
    event.write_text('{"rawPath": "/boom"}')

    assert main(invoke_args("FailingFunction", event, local_app_template, moto_endpoint)) == 1

    out, err = capfd.readouterr()
    failure = json.loads(out)
    assert failure["errorType"] == "RuntimeError"
    assert failure["errorMessage"] == "boom"
    assert failure["stackTrace"]
    assert err.strip().splitlines()[-1] == "kudos invoke: FailingFunction failed: RuntimeError: boom"


@pytest.mark.parametrize(
    ("function", "event_text", "message"),
    [
        ("NoSuchFunction", "{}", "no function 'NoSuchFunction'"),
        ("EchoFunction", "{not json", "is not JSON"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    tmp_path: Path,
    local_app_template: Path,
    moto_endpoint: str,
    capfd: pytest.CaptureFixture[str],
    function: str,
    event_text: str,
    message: str,
) -> None:
    event = tmp_path / "event.json"
    event.write_text(event_text)

    assert main(invoke_args(function, event, local_app_template, moto_endpoint)) == 1

    out, err = capfd.readouterr()
    assert out == ""
    assert message in err
    assert err.count("\n") == 1


def test_the_kudos_command_keeps_stdout_for_the_result(event_file: Path, local_app_template: Path) -> None:
    # The real entry point, in its own process: handlers' output must not reach the pipe.
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kudos.cli",
            "invoke",
            "EchoFunction",
            "-e",
            "-",
            "-t",
            str(local_app_template),
        ],
        input=event_file.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["statusCode"] == 200
    assert "echo was called" in completed.stderr


def test_an_http_event_without_its_request_context_says_what_is_missing(
    tmp_path: Path, moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    event = json.loads((ROOT / "events" / "metrics_active_users.json").read_text())
    del event["requestContext"]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))

    assert main(["invoke", "MetricsFunction", "-e", str(path), "--endpoint-url", moto_endpoint]) == 1

    out, err = capfd.readouterr()
    assert out == ""
    assert err.strip().splitlines()[-1] == (
        "kudos invoke: MetricsFunction serves HTTP API routes, and the event has no "
        "requestContext.http.method: write it as API Gateway's payload 2.0 event (events/*.json are examples)"
    )


def test_an_event_for_another_function_names_the_one_that_serves_it(
    moto_endpoint: str, capfd: pytest.CaptureFixture[str]
) -> None:
    sessions = str(ROOT / "events" / "sessions.json")

    assert main(["invoke", "MetricsFunction", "-e", sessions, "--endpoint-url", moto_endpoint]) == 0

    result = json.loads(capfd.readouterr().out)
    assert result["statusCode"] == 404
    assert json.loads(result["body"]) == {
        "message": "POST /v1/sessions is served by SdkIngestFunction, not by this function"
    }
