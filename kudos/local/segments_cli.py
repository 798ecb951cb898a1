"""`kudos segments check|members|explain`: the segment language from a terminal or a CI step."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kudos.core.identity import UserKey
from kudos.local.stored import add_store_arguments, stored_data


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
    """--at unless ``at`` is False, and the stored data's options (also for the campaigns CLI)."""
    if at:
        parser.add_argument("--at", help="the evaluation instant, RFC 3339 (default: now)")
    else:
        parser.set_defaults(at=None)
    add_store_arguments(parser)


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
    from kudos.segments.queries import instant_parameter

    at = instant_parameter("--at", args.at, time.time())
    with stored_data(args) as (store, segments, _):
        yield store, segments, at


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
