"""`kudos invoke`: run one function on one event, like `sam local invoke`, without Docker.

stdout carries only the result JSON (or Lambda's error JSON), so it can be piped to jq; whatever
the handler prints (Powertools logs and metrics go to stdout) is sent to stderr, as sam does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, TextIO

from kudos.core.settings import Settings
from kudos.local import LocalError
from kudos.local.environment import local_runtime
from kudos.local.gateway import LocalLambda, missing_http_fields
from kudos.local.queues import send_queue_drainer
from kudos.local.routes import Function, TemplateError, find_template, load_template
from kudos.local.serve import add_runtime_arguments


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run one function on one event (like sam local invoke)",
        description="Run one function of template.yaml on one event and print its result JSON. "
        "DynamoDB is embedded (in memory) unless --endpoint-url or --data say otherwise.",
    )
    parser.add_argument(
        "function",
        help="a Logical ID from template.yaml (SdkIngestFunction) or a handler (functions.sdk_ingest.handler)",
    )
    parser.add_argument(
        "-e", "--event", required=True, metavar="FILE", help="the event JSON (events/*.json); - reads stdin"
    )
    add_runtime_arguments(parser)
    parser.set_defaults(run=run)


def find_function(name: str, template_path: Path | None = None) -> Function:
    """The template's function by Logical ID or handler; a handler the template lacks runs as is.

    A handler path needs no template at all (but a --template given must load).
    """
    handler_path = _is_handler_path(name)
    try:
        template = load_template(template_path or find_template())
    except TemplateError:
        if template_path is not None or not handler_path:
            raise
        return _bare_handler(name)
    try:
        return template.function(name)
    except TemplateError:
        if not handler_path:
            raise
        return _bare_handler(name)


def _bare_handler(handler: str) -> Function:
    # Lambda's defaults, importing from the cwd as SAM would.
    return Function(logical_id=handler, handler=handler, code_dir=Path.cwd())


def _is_handler_path(name: str) -> bool:
    parts = name.split(".")
    return len(parts) > 1 and all(part.isidentifier() for part in parts)


def read_event(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise LocalError(f"cannot read event {source}: {error.strerror}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise LocalError(f"event {source} is not JSON: {error}") from error


@contextmanager
def result_stream() -> Iterator[TextIO]:
    """A stream to the real stdout, while stdout itself (fd 1 and sys.stdout) goes to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as out, redirect_stdout(sys.stderr):
            yield out
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(args: argparse.Namespace) -> int:
    event = read_event(args.event)
    function = find_function(args.function, args.template)
    with (
        local_runtime(
            endpoint_url=args.endpoint_url,
            data_dir=args.data,
            segments_dir=args.segments,
            create_tables=args.create_tables,
            template_environment=function.environment,
        ) as settings,
        result_stream() as out,
    ):
        started = time.perf_counter()
        runtime = LocalLambda(region=settings.region)
        try:
            result = runtime.invoke(function, event)
            text = json.dumps(result)
        except Exception as error:
            missing = missing_http_fields(event) if function.routes else []
            missing_keys = {key for dotted in missing for key in dotted.split(".")}
            if isinstance(error, KeyError) and error.args[0] in missing_keys:
                # A hand-written event, most likely: say what it lacks, not a KeyError deep in Powertools.
                raise LocalError(
                    f"{function.logical_id} serves HTTP API routes, and the event has no "
                    f"{' or '.join(missing)}: write it as API Gateway's payload 2.0 event "
                    "(events/*.json are examples)"
                ) from error
            # Lambda's own error result, so scripts see the same shape as from AWS.
            failure = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            print(json.dumps(failure), file=out)
            print(
                f"kudos invoke: {function.logical_id} failed: {type(error).__name__}: {error}",
                file=sys.stderr,
            )
            return 1
        elapsed = (time.perf_counter() - started) * 1000
        print(text, file=out)
        print(f"kudos invoke: {function.logical_id} ({function.handler}) {elapsed:.0f} ms", file=sys.stderr)
        _take_queued_sends(runtime, args.template, settings)
    return 0


def _take_queued_sends(runtime: LocalLambda, template_path: Path | None, settings: Settings) -> None:
    """The sends the invocation queued, taken by SendFunction before the embedded queue goes away,
    as `kudos serve` would (its pushes go to the embedded SNS). Without them the sends would stay
    pending in DynamoDB until a later sweep queues them again."""
    try:
        template = load_template(template_path or find_template())
    except TemplateError:
        return  # a bare handler: no SendFunction to take them
    drainer = send_queue_drainer(runtime, template, settings, log=False)
    if drainer is None:
        return
    taken = drainer.drain()
    if taken:
        print(
            f"kudos invoke: then {drainer.function.logical_id} took {taken} queued send(s) "
            f"({drainer.failures} failed)",
            file=sys.stderr,
        )
