"""`kudos report --out FILE`: the HTML report (kudos.report) on stored data, from a terminal."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from kudos.local import LocalError
from kudos.local.stored import add_store_arguments, stored_data


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML file: active users, segments, campaigns",
        description=(
            "Write an HTML report of the stored data: DAU/WAU/MAU per day, each segment's size with its "
            "entries and exits per day, each campaign's funnel beside its held-out group, opt-outs and "
            "lift. One file, charts inline, no script: it opens offline in any browser."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="the HTML file to write")
    parser.add_argument(
        "--from",
        dest="date_from",
        metavar="YYYY-MM-DD",
        help="the first UTC day (default: the 29 days before --to)",
    )
    parser.add_argument(
        "--to", dest="date_to", metavar="YYYY-MM-DD", help="the last UTC day (default, and at most: today)"
    )
    add_store_arguments(parser, embedded=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    from kudos.core.timeutil import parse_date
    from kudos.report.gather import write_report

    out: Path = args.out
    # Before DynamoDB Local takes its ten seconds to start.
    if not out.parent.is_dir():
        raise LocalError(f"--out: {out.parent}/ is not a directory")
    if out.is_dir():
        raise LocalError(f"--out: {out} is a directory; name the file to write")
    now = float(math.floor(time.time()))
    with stored_data(args) as (store, segments, settings):
        try:
            data = write_report(
                out, store, segments, now, settings=settings, date_from=args.date_from, date_to=args.date_to
            )
        except ClientError as error:
            if "specified index" not in str(error):
                raise
            # Data an older kudos left (before campaign sends had their index): say what to do.
            raise LocalError(
                f"{error.response['Error']['Message']}: these tables predate this version of kudos; "
                "`make demo` starts its data afresh"
            ) from None
    print(
        f"wrote {out}: {data.first_day} to {data.last_day}, {len(data.segments)} segment(s), "
        f"{len(data.campaigns)} campaign(s)"
    )
    active = [day["date"] for day in data.active_users if day["dau"]]
    if args.date_to is None and data.active_users:
        # The demo's data stops at its own clock: days after it would only show everyone ageing out.
        if not active:
            print(
                f"  (no one was active from {data.first_day} to {data.last_day}: "
                "--from and --to name the days to report)",
                file=sys.stderr,
            )
        elif parse_date(active[-1]) < parse_date(data.last_day) - 1:
            print(
                f"  (no one was active after {active[-1]}: --to {active[-1]} ends the report where the data does)",
                file=sys.stderr,
            )
    return 0
