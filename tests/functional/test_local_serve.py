"""`kudos serve` (in a thread) on a small test stack: routing, limits and errors as API Gateway does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kudos.ingest.validation import MAX_BODY_BYTES
from kudos.local.dynamodb import dynamodb_client
from kudos.local.serve import LocalServer, serve_in_thread


def test_an_unknown_route_is_a_json_404(local_api: str, http) -> None:
    reply = http("GET", f"{local_api}/no/such/route")

    assert reply.status == 404
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"message": "Not Found"}


def test_a_wrong_method_is_a_json_405(local_api: str, http) -> None:
    reply = http("DELETE", f"{local_api}/echo/ana")

    assert reply.status == 405
    assert reply.json() == {"message": "Method Not Allowed"}
    assert reply.headers["allow"] == "GET, POST"


def test_a_body_over_the_limit_is_a_json_413(local_api: str, http) -> None:
    reply = http("POST", f"{local_api}/echo/ana", b"x" * (MAX_BODY_BYTES + 1))

    assert reply.status == 413
    assert "message" in reply.json()


def test_a_chunked_body_over_the_limit_is_a_json_413(local_api: str, http) -> None:
    reply = http("POST", f"{local_api}/echo/ana", b"x" * (MAX_BODY_BYTES + 1), chunked=True)

    assert reply.status == 413
    assert "message" in reply.json()


def test_a_body_at_the_limit_reaches_the_handler(local_api: str, http) -> None:
    body = b"x" * MAX_BODY_BYTES
    reply = http("POST", f"{local_api}/echo/ana", body, {"content-type": "text/plain"})

    assert reply.status == 200
    assert len(reply.json()["event"]["body"]) == MAX_BODY_BYTES


def test_the_handler_gets_the_api_gateway_event_and_a_lambda_context(local_api: str, http) -> None:
    reply = http(
        "POST",
        f"{local_api}/echo/ana%20maria?tag=a&tag=b&limit=5",
        b'{"hello": "world"}',
        {"Content-Type": "application/json", "Cookie": "session=abc", "X-Api-Key": "k"},
    )

    assert reply.status == 200
    got = reply.json()
    event = got["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /echo/{name}"
    assert event["rawPath"] == "/echo/ana%20maria"
    assert event["rawQueryString"] == "tag=a&tag=b&limit=5"
    assert event["queryStringParameters"] == {"tag": "a,b", "limit": "5"}
    assert event["pathParameters"] == {"name": "ana maria"}
    assert event["headers"]["x-api-key"] == "k"
    assert event["cookies"] == ["session=abc"]
    assert json.loads(event["body"]) == {"hello": "world"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert got["function_name"] == "EchoFunction"
    assert got["memory_limit_in_mb"] == 256
    assert 0 < got["remaining_ms"] <= 10_000


def test_the_handler_response_headers_and_cookies_come_back(local_api: str, http) -> None:
    reply = http("GET", f"{local_api}/echo/ana")

    assert reply.headers["x-served-by"] == "EchoFunction"
    assert reply.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]


def test_a_greedy_path_reaches_its_function(local_api: str, http) -> None:
    got = http("GET", f"{local_api}/files/a/b/c.txt").json()

    assert got["function_name"] == "FilesFunction"
    assert got["memory_limit_in_mb"] == 512
    assert got["event"]["pathParameters"] == {"path": "a/b/c.txt"}


def test_a_bare_result_is_a_json_200(local_api: str, http) -> None:
    reply = http("GET", f"{local_api}/bare")

    assert reply.status == 200
    assert reply.json() == {"bare": True}


def test_a_handler_that_raises_is_a_500(local_api: str, http, capfd: pytest.CaptureFixture[str]) -> None:
    reply = http("GET", f"{local_api}/boom")

    assert reply.status == 500
    assert reply.json() == {"message": "Internal Server Error"}


def test_a_response_api_gateway_rejects_is_a_502(local_api: str, http) -> None:
    reply = http("GET", f"{local_api}/malformed")

    assert reply.status == 502
    assert reply.json() == {"message": "Internal Server Error"}


def test_handlers_write_to_the_settings_tables(local_api: str, http, dynamodb) -> None:
    reply = http("PUT", f"{local_api}/users/u-7")

    assert reply.status == 201
    assert reply.json() == {"table": dynamodb.settings.users_table, "user_id": "u-7"}
    key = {"pk": {"S": "U#u:u-7"}, "sk": {"S": "P"}}
    assert "Item" in dynamodb.client.get_item(TableName=dynamodb.settings.users_table, Key=key)


def test_template_variables_apply_but_settings_stay_local(local_api: str, http) -> None:
    environment = http("GET", f"{local_api}/echo/ana").json()["environment"]

    assert environment["LOCAL_APP_GREETING"] == "hello"
    # !Sub cannot be resolved locally; KUDOS_AUTH_REQUIRED is for AWS only.
    assert "LOCAL_APP_STAGE" not in environment
    assert environment.get("KUDOS_AUTH_REQUIRED") == "false"


def test_one_connection_carries_many_requests(local_api: str) -> None:
    from http.client import HTTPConnection

    port = int(local_api.rsplit(":", 1)[1])
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for name in ("a", "b", "c"):
            connection.request("GET", f"/echo/{name}")
            response = connection.getresponse()
            assert json.loads(response.read())["event"]["pathParameters"] == {"name": name}
    finally:
        connection.close()


def test_the_environment_is_restored_when_serving_stops(local_app_template: Path, moto_endpoint: str) -> None:
    before = os.environ.get("USERS_TABLE")

    with serve_in_thread(template=local_app_template, endpoint_url=moto_endpoint):
        assert os.environ["DYNAMODB_ENDPOINT_URL"] == moto_endpoint
    assert os.environ.get("USERS_TABLE") == before
    assert os.environ.get("DYNAMODB_ENDPOINT_URL") != moto_endpoint


def test_serve_defaults_to_the_embedded_dynamodb_with_tables(local_app_template: Path, http) -> None:
    with serve_in_thread(template=local_app_template) as url:
        endpoint = os.environ["DYNAMODB_ENDPOINT_URL"]
        reply = http("PUT", f"{url}/users/u-1")
        table = reply.json()["table"]
        assert reply.status == 201
        key = {"pk": {"S": "U#u:u-1"}, "sk": {"S": "P"}}
        assert "Item" in dynamodb_client(endpoint).get_item(TableName=table, Key=key)


def _raw_exchange(base_url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send ``request`` as is on a new socket; the status line, headers and body of the answer."""
    import socket

    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return status_line, {name.lower(): value for name, value in headers.items()}, body


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        pytest.param(b"NONSENSE", 400, id="one-word"),
        pytest.param(b"GET /echo/ana maria HTTP/1.1", 400, id="space-in-target"),
        pytest.param(b"GET /echo/ana HTTP/one", 400, id="bad-version"),
        pytest.param(b"GET /echo/" + b"a" * 70_000 + b" HTTP/1.1", 414, id="target-over-64-kb"),
    ],
)
def test_a_request_that_cannot_be_parsed_gets_a_json_error(
    local_api: str, request_line: bytes, status: int
) -> None:
    status_line, headers, body = _raw_exchange(local_api, request_line + b"\r\nHost: x\r\n\r\n")

    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert set(json.loads(body)) == {"message"}


def test_many_simultaneous_connections_are_all_answered(local_api: str) -> None:
    import socket
    from concurrent.futures import ThreadPoolExecutor

    host, port = local_api.removeprefix("http://").rsplit(":", 1)
    # Every connection is open before the first request is sent: beyond the listen backlog, the
    # kernel would reset them.
    connections = [socket.create_connection((host, int(port)), timeout=30) for _ in range(48)]
    try:

        def exchange(index: int, connection: socket.socket) -> bytes:
            connection.sendall(
                f"GET /echo/n{index} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
            return received

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(exchange, range(len(connections)), connections))
    finally:
        for connection in connections:
            connection.close()

    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers)
    assert all(f'"name": "n{index}"'.encode() in answer for index, answer in enumerate(answers))
    # Whether a burst overflows depends on how fast the accept thread drains it; the backlog is
    # what holds it when it does not (the standard library's is 5).
    assert LocalServer.request_queue_size >= 128


def test_the_access_log_shows_routes_not_query_values(
    local_app_template: Path, moto_endpoint: str, http, capfd: pytest.CaptureFixture[str]
) -> None:
    with serve_in_thread(template=local_app_template, endpoint_url=moto_endpoint, log=True) as url:
        http("GET", f"{url}/echo/ana?user_id=u-secret")
        http("GET", f"{url}/nowhere?user_id=u-secret")
        _raw_exchange(url, b"GET /echo/ana maria?user_id=u-secret HTTP/1.1\r\nHost: x\r\n\r\n")

    err = capfd.readouterr().err
    assert "GET /echo/{name} -> 200" in err
    # A path no route matches is not printed either: it may be anything a client wrote.
    assert "GET (no route) -> 404" in err
    assert "/nowhere" not in err
    assert "-> 400" in err
    assert "u-secret" not in err
