"""`kudos segments check|members|explain`: the segment language from a terminal or a CI step."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kudos.core.identity import UserKey
from kudos.core.settings import DEFAULT_SEGMENTS_DIR
from kudos.local import LocalError
from kudos.local.environment import DEFAULT_DATA_DIR


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("segments", help="check segment rule files, list members, explain a user")
    commands = parser.add_subparsers(dest="segments_command", metavar="SUBCOMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="check .seg files like a compiler (exit 1 on any error)",
        description=(
            "Parse and check every *.seg file under PATHS (segments and campaign blocks);"
            " errors as file:line:col with a caret. A directory without a .seg file is an error."
        ),
    )
    check.add_argument("paths", nargs="*", type=Path, default=[Path("segments")], help="files or directories")
    check.set_defaults(run=run_check)

    members = commands.add_parser("members", help="the members of a segment at an instant")
    members.add_argument("name", metavar="NAME", help="the segment's name, as in its .seg file")
    members.add_argument(
        "--limit", type=int, default=100, help="print at most this many members, 1 to 1000 (default 100)"
    )
    add_data_arguments(members)
    members.set_defaults(run=run_members)

    explain = commands.add_parser("explain", help="why a user is in a segment or not, clause by clause")
    explain.add_argument("name", metavar="NAME", help="the segment's name, as in its .seg file")
    who = explain.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", metavar="ID", help="the user: its external id (user_id)")
    who.add_argument("--device-id", metavar="ID", help="the anonymous user of this device (device_id)")
    explain.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    add_data_arguments(explain)
    explain.set_defaults(run=run_explain)


def add_data_arguments(parser: argparse.ArgumentParser, *, at: bool = True) -> None:
    """--segments, --endpoint-url / --data, and --at unless ``at`` is False (also for the campaigns CLI)."""
    if at:
        parser.add_argument("--at", help="the evaluation instant, RFC 3339 (default: now)")
    else:
        parser.set_defaults(at=None)
    parser.add_argument(
        "--segments", type=Path, metavar="DIR", help=f"rule files (default: {DEFAULT_SEGMENTS_DIR})"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--endpoint-url",
        help="DynamoDB to read (DynamoDB Local or AWS); default: DYNAMODB_ENDPOINT_URL if set, else --data",
    )
    where.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"the DynamoDB Local data of `kudos serve --data DIR` (default {DEFAULT_DATA_DIR}, "
        "where `make demo` leaves its data)",
    )


def run_check(args: argparse.Namespace) -> int:
    from dsl import check_paths, format_diagnostics
    from dsl.segments import segment_files

    problems = check_paths(args.paths)
    if problems:
        print(format_diagnostics(problems), file=sys.stderr)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    files, _ = segment_files(args.paths)
    print(f"ok: {len(files)} file(s) checked")
    return 0


@contextmanager
def store_and_rules(args: argparse.Namespace) -> Iterator[tuple[Any, Any, float]]:
    """The store, the compiled segments and the evaluation instant the arguments ask for (the
    arguments of add_data_arguments); a missing local data directory is a LocalError, not an empty answer."""
    from kudos.local.environment import local_runtime
    from kudos.runtime import reset, services
    from kudos.segments.queries import deployed_segments, instant_parameter

    at = instant_parameter("--at", args.at, time.time())
    if args.endpoint_url is None and os.environ.get("DYNAMODB_ENDPOINT_URL") and args.data is None:
        reset()
        svc = services()
        yield svc.store, deployed_segments(args.segments or svc.settings.segments_dir), at
        return
    data = args.data
    if args.endpoint_url is None:
        data = data or DEFAULT_DATA_DIR
        if not data.is_dir():
            # Reading an empty new database would answer "0 members": say what is missing instead.
            raise LocalError(
                f"no local data in {data}/: run `make demo` (or `kudos serve --data {data}`) first, "
                "or name a DynamoDB with --endpoint-url"
            )
    with local_runtime(endpoint_url=args.endpoint_url, data_dir=data, segments_dir=args.segments) as settings:
        yield services().store, deployed_segments(settings.segments_dir), at


def run_members(args: argparse.Namespace) -> int:
    """As GET /v1/segments/{name}/members: stored membership, or the rules evaluated at --at."""
    from kudos.segments.queries import segment_members

    with store_and_rules(args) as (store, segments, _):
        if args.name not in segments:
            print(f"no segment named {args.name!r}; known: {', '.join(segments)}", file=sys.stderr)
            return 1
        page = segment_members(store, segments, time.time(), args.name, args.at, str(args.limit), None)
    for user in page["members"]:
        print(json.dumps(user))
    how = f"at {page['at']}" if args.at else "stored membership"
    print(f"{args.name}: {page['count']} member(s), {how}", file=sys.stderr)
    if not args.at and page["count"] == 0:
        # A rule just written has no stored members until a sweep evaluates it: say so, not just "0".
        print(
            "  (stored membership is what ingest and the sweep recorded: a new or changed rule has none "
            "until the next sweep; --at INSTANT evaluates the rules now)",
            file=sys.stderr,
        )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from kudos.segments.queries import explain_membership

    with store_and_rules(args) as (store, segments, at):
        explanation = explain_membership(store, segments, at, args.name, args.user_id, args.device_id, None)
    if args.json:
        print(json.dumps(explanation, indent=2))
        return 0
    verdict = "IN" if explanation["in"] else "NOT IN"
    user = UserKey(args.user_id, args.device_id).describe()  # user_id "u-7", not a dict's repr
    print(f"{user} is {verdict} {args.name} at {explanation['at']}")
    for clause in explanation["clauses"]:
        # As the rule reads it: a clause under `not` is "not ..." and counts for the user when false.
        mark = "yes" if clause["effective_result"] else "no "
        print(f"  {mark}  {clause['effective_clause']:<50}  seen {json.dumps(clause['value'])}")
    return 0
