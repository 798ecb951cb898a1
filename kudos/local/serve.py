"""`kudos serve`: the HTTP API on this machine, routed by template.yaml to the very same handlers.

This module is the socket side: HTTP/1.1 parsing, body reading and its limits, the access log.
What API Gateway and Lambda do with a request is kudos.local.gateway's, shared with `kudos invoke`
and `kudos demo`.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kudos.core.settings import Settings
from kudos.ingest.validation import MAX_BODY_BYTES
from kudos.local import LocalError
from kudos.local.apigw import HttpResponse, json_response
from kudos.local.dynamodb import is_local_endpoint
from kudos.local.environment import local_runtime
from kudos.local.gateway import LocalGateway
from kudos.local.lambda_api import INVOKE_ROUTE, LocalLambdaApi, is_invoke_path
from kudos.local.messaging import PushLog
from kudos.local.queues import QueueDrainer, send_queue_drainer
from kudos.local.routes import Template, find_template, load_template
from kudos.local.schedule import Sweeper, default_sweep_every, sweep_function

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
# A body over the limit is still read (and dropped) up to API Gateway's own 10 MB payload limit:
# a client still sending when we close would see a broken pipe instead of our 413.
_DRAIN_LIMIT = 10 * 1024 * 1024
# How long a Lambda Invoke API call waits for the sends it queued (boto3 and the aws CLI give up
# on a response after 60 s): a failing send is received again every 10 s, three times.
SETTLE_TIMEOUT_S = 45.0
# What the standard library's request parsing refuses, said as api.md's {"message": ...} bodies
# rather than its HTML page (whose text would also echo the request line, query and all).
_REFUSALS = {
    HTTPStatus.BAD_REQUEST: "malformed request line: expected METHOD TARGET HTTP/1.1, with no space in "
    "the target (write a space as %20)",
    HTTPStatus.REQUEST_URI_TOO_LONG: "the request line is over 64 KB",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "a header line is over 64 KB, or there are over 100 headers",
}


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open between requests: SDK batches and the demo send many.
    protocol_version = "HTTP/1.1"
    server_version = "kudos-serve"
    server: LocalServer

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it (curl asks first above 1 KB).
        if self._declared_length() > MAX_BODY_BYTES:
            self.close_connection = True
            response = self._too_large()
            self._send(response)
            self._log(response.status, self._route_of_request(), time.perf_counter())
            return False
        return super().handle_expect_100()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        raw_path, _, raw_query = self.path.partition("?")
        body = self._read_body()
        if isinstance(body, HttpResponse):
            response, route = body, self._route_of_request()
        elif is_invoke_path(raw_path):
            # Lambda's own API (as `sam local start-lambda`), not a route of the HTTP API.
            headers = {name.lower(): value for name, value in self.headers.items()}
            response = self.server.lambda_api.handle(self.command, raw_path, raw_query, headers, body)
            route = f"{self.command} {raw_path}"
        else:
            result = self.server.gateway.handle(
                self.command,
                raw_path,
                raw_query,
                list(self.headers.items()),
                body,
                source_ip=self.client_address[0],
                server_port=self.server.server_address[1],
            )
            response, route = result.response, result.route_key or self._unrouted()
            if result.failure:
                # Even when the access log is off: this is what Lambda's own log would show.
                print(result.failure, file=sys.stderr, flush=True)
        self._send(response)
        self._log(response.status, route, started)

    def _route_of_request(self) -> str:
        raw_path = self.path.partition("?")[0]
        if is_invoke_path(raw_path):
            return f"{self.command} {raw_path}"
        return self.server.gateway.route_key(self.command, raw_path) or self._unrouted()

    def _unrouted(self) -> str:
        # Not the path: a path no route matches may be anything a client wrote, user ids included.
        return f"{self.command} (no route)"

    def _log(self, status: int, route: str, started: float) -> None:
        # The route, not the target: query values (user_id=...) are personal data.
        if self.server.log:
            elapsed = (time.perf_counter() - started) * 1000
            print(f"{route} -> {status} ({elapsed:.0f} ms)", file=sys.stderr)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def __getattr__(self, name: str) -> Any:
        # Every other method (TRACE, CONNECT, PROPFIND...) is routed too, as API Gateway does: a
        # path's ANY route answers 405. The standard library would answer 501 itself.
        if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
            return self._dispatch
        raise AttributeError(name)

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("content-length") or 0)
        except ValueError:
            return -1

    def _too_large(self) -> HttpResponse:
        return json_response(413, {"message": f"request body is over {MAX_BODY_BYTES} bytes"})

    def _read_body(self) -> bytes | HttpResponse:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self._declared_length()
        if length < 0:
            self.close_connection = True
            return json_response(400, {"message": "invalid Content-Length"})
        if length > MAX_BODY_BYTES:
            if length <= _DRAIN_LIMIT:
                self._discard(length)
            else:
                self.close_connection = True
            return self._too_large()
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | HttpResponse:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                return json_response(400, {"message": "invalid chunked body"})
            if size == 0:
                # Trailers, if any, end with an empty line.
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(chunks) if total <= MAX_BODY_BYTES else self._too_large()
            total += size
            if total > _DRAIN_LIMIT:
                self.close_connection = True
                return self._too_large()
            if total > MAX_BODY_BYTES:
                chunks.clear()
                self._discard(size)
            else:
                chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def _discard(self, size: int) -> None:
        while size > 0:
            block = self.rfile.read(min(size, 1 << 16))
            if not block:
                break
            size -= len(block)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What the standard library calls when it cannot parse a request: answer as api.md says."""
        status = HTTPStatus(code)
        # An unparsed request line leaves the version at HTTP/0.9, for which no status line or
        # headers are written at all; answer as HTTP/1.1, as API Gateway would.
        if self.request_version == "HTTP/0.9":
            self.request_version = self.protocol_version
        self.close_connection = True
        self._send(json_response(status, {"message": _REFUSALS.get(status) or message or status.phrase}))
        # Not the request line: its target may carry personal data, and be 64 KB long.
        self._log(status, "(request refused before routing)", time.perf_counter())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # _dispatch logs one line per request, with its duration.
        pass

    def log_error(self, format: str, *args: Any) -> None:
        if self.server.log:
            sys.stderr.write(f"{self.address_string()}: {format % args}\n")


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    # The standard library's listen backlog is 5: connections of a burst (an SDK test, a load script)
    # beyond it are reset (macOS) or stall in SYN retries (Linux). The kernel caps it at somaxconn.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        gateway: LocalGateway,
        *,
        log: bool = True,
        drainer: QueueDrainer | None = None,
    ) -> None:
        self.gateway = gateway
        # An invocation returns once the sends it queued are done (campaigns.md "Locally").
        settle = (lambda: drainer.wait_idle(SETTLE_TIMEOUT_S)) if drainer is not None else None
        self.lambda_api = LocalLambdaApi(gateway.template, gateway.lambda_runtime, settle=settle)
        self.log = log
        try:
            super().__init__(address, _RequestHandler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise LocalError(f"port {address[1]} is already in use: pick another with --port") from error
            raise LocalError(f"cannot listen on {address[0]}:{address[1]}: {error.strerror}") from error

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def _template(template: Path | Template | None) -> Template:
    if isinstance(template, Template):
        return template
    return load_template(template or find_template())


@contextmanager
def scheduled_sweep(
    gateway: LocalGateway, template: Template, every: float, *, log: bool = True
) -> Iterator[Sweeper | None]:
    """The template's sweep function invoked every ``every`` seconds while the block runs (none for
    0, or when the template has no sweep function); on exit a running sweep finishes first."""
    function = sweep_function(template)
    if every <= 0 or function is None:
        yield None
        return
    sweeper = Sweeper(gateway.lambda_runtime, function, every, log=log)
    sweeper.start()
    try:
        yield sweeper
    finally:
        sweeper.stop()


@contextmanager
def drained_send_queue(
    gateway: LocalGateway, template: Template, settings: Settings, *, log: bool = True
) -> Iterator[QueueDrainer | None]:
    """SendFunction taking the send queue while the block runs, as its SQS event source mapping does
    on AWS (campaigns.md "Locally": a queued send is taken within 2 seconds), each push the embedded
    SNS takes logged when ``log``. None when the template has no SendFunction or the queue is not
    a local one. On exit a running batch finishes first."""
    pushes = PushLog(settings) if log else None
    drainer = send_queue_drainer(
        gateway.lambda_runtime,
        template,
        settings,
        log=log,
        on_batch=(lambda taken, failed: pushes.print_new()) if pushes is not None else None,
    )
    if drainer is None:
        yield None
        return
    drainer.start()
    try:
        yield drainer
    finally:
        drainer.stop()


@contextmanager
def serve_in_thread(
    *,
    template: Path | Template | None = None,
    settings: Settings | None = None,
    endpoint_url: str | None = None,
    data_dir: Path | None = None,
    segments_dir: Path | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    log: bool = False,
    sweep_every: float = 0,
) -> Iterator[str]:
    """Serve in a background thread (for tests and scripts); yields the base URL.

    ``settings`` (e.g. a test's, with unique table names) are used as they are, including their
    endpoint; otherwise DynamoDB is chosen as ``kudos serve`` does. The environment is restored
    on exit. ``sweep_every``: seconds between scheduled sweeps (0, the default here: none).
    """
    loaded = _template(template)
    if settings is not None and endpoint_url is None and data_dir is None:
        endpoint_url = settings.dynamodb_endpoint_url
    with local_runtime(
        endpoint_url=endpoint_url,
        data_dir=data_dir,
        segments_dir=segments_dir,
        settings=settings,
        template_environment=loaded.globals_environment,
    ) as effective:
        gateway = LocalGateway(loaded, region=effective.region)
        with drained_send_queue(gateway, loaded, effective, log=log) as drainer:
            server = LocalServer((host, port), gateway, log=log, drainer=drainer)
            thread = threading.Thread(target=server.serve_forever, name="kudos-serve", daemon=True)
            thread.start()
            try:
                with scheduled_sweep(gateway, loaded, sweep_every, log=log):
                    yield server.url
            finally:
                server.shutdown()
                server.server_close()
                thread.join()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP API locally",
        description="Run the HTTP API of template.yaml locally, on the very same handlers. DynamoDB is "
        "embedded (in memory) unless --endpoint-url or --data say otherwise.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    parser.add_argument(
        "--sweep-every",
        type=_seconds,
        metavar="SECONDS",
        help="run SweepFunction on a scheduled event every SECONDS, the first one SECONDS after start "
        "(default: the template's SweepEveryMinutes default, 15 minutes; 0: never)",
    )
    add_runtime_arguments(parser)
    parser.set_defaults(run=run)


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """The options serve and invoke share: the template, DynamoDB and the segments directory."""
    parser.add_argument("-t", "--template", type=Path, help="template.yaml (default: found from the cwd up)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--endpoint-url", help="use this DynamoDB (DynamoDB Local, or AWS) instead of the embedded one"
    )
    where.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="run DynamoDB Local with its data in DIR, so that it survives restarts (needs Java)",
    )
    parser.add_argument(
        "--create-tables",
        action="store_true",
        default=None,
        help="create missing tables on a non-local --endpoint-url too (they are always created locally)",
    )
    parser.add_argument(
        "--segments", type=Path, metavar="DIR", help="segment rule files (default: segments/)"
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("expected 0 (never) or a positive number of seconds")
    return value


def run(args: argparse.Namespace) -> int:
    template = _template(args.template)
    sweep_every = default_sweep_every(template) if args.sweep_every is None else args.sweep_every
    with local_runtime(
        endpoint_url=args.endpoint_url,
        data_dir=args.data,
        segments_dir=args.segments,
        create_tables=args.create_tables,
        template_environment=template.globals_environment,
    ) as settings:
        gateway = LocalGateway(template, region=settings.region)
        # SIGTERM (make, a supervisor) stops as cleanly as Ctrl-C: DynamoDB Local must not outlive us.
        previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            with drained_send_queue(gateway, template, settings) as drainer:
                server = LocalServer((args.host, args.port), gateway, drainer=drainer)
                _print_banner(server.url, template, settings, args, sweep_every, drainer)
                try:
                    with scheduled_sweep(gateway, template, sweep_every):
                        try:
                            server.serve_forever()
                        except KeyboardInterrupt:
                            # Leaving the blocks lets a running sweep, then a running batch of
                            # sends, finish before the queue and DynamoDB stop.
                            print("\nstopping", file=sys.stderr, flush=True)
                finally:
                    server.server_close()
        except KeyboardInterrupt:
            # Ctrl-C before the server ran (while the queue started, say).
            print("\nstopping", file=sys.stderr, flush=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _sweep_line(template: Template, sweep_every: float) -> str:
    function = sweep_function(template)
    if function is None:
        return "none (the template has no SweepFunction)"
    if sweep_every <= 0:
        return f"never (--sweep-every 0); run it with: kudos invoke {function.logical_id} --event FILE"
    return (
        f"{function.logical_id} every {sweep_every:g} s, the first {sweep_every:g} s from now (--sweep-every)"
    )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _sends_lines(settings: Settings, drainer: QueueDrainer | None) -> list[str]:
    """Where sends wait and where pushes go."""
    if settings.send_queue_url is None:
        return ["  sends     no send queue (SEND_QUEUE_URL): a campaign trigger fails"]
    if drainer is None:
        return [
            f"  sends     {settings.send_queue_url} (not drained here: no SendFunction, or not a local queue)"
        ]
    where = settings.sqs_endpoint_url or "in process"
    lines = [
        f"  sends     {drainer.source.queue}: moto's SQS at {where}; {drainer.function.logical_id} takes "
        f"each batch as it comes (up to {drainer.source.batch_size}), as its event source mapping would",
    ]
    applications = [
        f"{label} {arn}"
        for label, arn in (
            ("APNs", settings.apns_application_arn),
            ("APNs sandbox", settings.apns_sandbox_application_arn),
            ("FCM", settings.fcm_application_arn),
        )
        if arn
    ]
    if settings.sns_endpoint_url is not None and is_local_endpoint(settings.sns_endpoint_url):
        lines += [
            f"  pushes    moto's SNS at {settings.sns_endpoint_url}, never a device; each is logged here,",
            f"            and kept in {settings.sns_endpoint_url}/moto-api/data.json (sns, PlatformEndpoint, messages)",
        ]
    else:
        lines.append(f"  pushes    SNS at {settings.sns_endpoint_url or 'AWS'}")
    lines.append(f"            platform applications: {', '.join(applications) or 'none'}")
    return lines


def _print_banner(
    url: str,
    template: Template,
    settings: Settings,
    args: argparse.Namespace,
    sweep_every: float,
    drainer: QueueDrainer | None = None,
) -> None:
    if args.endpoint_url:
        database = f"{settings.dynamodb_endpoint_url}"
    elif args.data:
        database = f"DynamoDB Local, data in {args.data} ({settings.dynamodb_endpoint_url})"
    else:
        database = "embedded, in memory (gone when this stops; --data DIR keeps it)"
    lines = [
        f"kudos serve: {url}",
        f"  template  {template.path}",
        f"  DynamoDB  {database}",
        f"  tables    {settings.users_table}, {settings.activity_table}",
        f"  segments  {settings.segments_dir}",
        f"  auth      {'API keys required' if settings.app_keys or settings.server_keys else 'none'}",
        f"  sweep     {_sweep_line(template, sweep_every)}",
        *_sends_lines(settings, drainer),
        f"  Lambda    {INVOKE_ROUTE} (aws lambda invoke --endpoint-url {url} ...)",
        f"            for {', '.join(template.functions) or 'no function'}",
        "  routes:",
    ]
    for function in template.functions.values():
        for route in function.routes:
            lines.append(f"    {route.method:<6} {route.path:<44} {function.logical_id} ({function.handler})")
    lines.append("Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
