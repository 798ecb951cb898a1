"""`kudos campaigns list|sends|explain|report|pause|resume`: the campaign routes from a terminal, on the data of
`kudos serve --data DIR` (default .kudos-data) or a DynamoDB named with --endpoint-url."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from kudos.core.identity import UserKey
from kudos.local.segments_cli import add_data_arguments, store_and_rules


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "campaigns", help="list campaigns, their sends, explain a user, pause and resume"
    )
    commands = parser.add_subparsers(dest="campaigns_command", metavar="SUBCOMMAND", required=True)

    listing = commands.add_parser("list", help="every campaign: status, trigger, audience, send counts")
    _add_json(listing)
    add_data_arguments(listing, at=False)
    listing.set_defaults(run=run_list)

    sends = commands.add_parser("sends", help="a campaign's sends, newest first (one per trigger)")
    sends.add_argument("name", metavar="NAME", help="the campaign's name, as in its .seg file")
    _add_user(sends, required=False)
    sends.add_argument(
        "--limit", type=int, default=100, help="print at most this many sends, 1 to 1000 (default 100)"
    )
    _add_json(sends)
    add_data_arguments(sends, at=False)
    sends.set_defaults(run=run_sends)

    explain = commands.add_parser(
        "explain", help="a user's history with a campaign, and whether a trigger now would send"
    )
    explain.add_argument("name", metavar="NAME", help="the campaign's name, as in its .seg file")
    _add_user(explain, required=True)
    _add_json(explain)
    add_data_arguments(explain)
    explain.set_defaults(run=run_explain)

    report = commands.add_parser(
        "report", help="a campaign's triggers, outcomes and results, in total and per UTC day"
    )
    report.add_argument("name", metavar="NAME", help="the campaign's name, as in its .seg file")
    report.add_argument(
        "--from", dest="date_from", metavar="YYYY-MM-DD", help="the first day (default: the first trigger's)"
    )
    report.add_argument(
        "--to", dest="date_to", metavar="YYYY-MM-DD", help="the last day (default: the last trigger's)"
    )
    _add_json(report)
    add_data_arguments(report, at=False)
    report.set_defaults(run=run_report)

    pause = commands.add_parser("pause", help="pause a campaign: its triggers and queued sends end `paused`")
    pause.add_argument("name", metavar="NAME", help="the campaign's name, as in its .seg file")
    pause.add_argument("--reason", help="why, kept with the campaign's state and shown by `list`")
    add_data_arguments(pause, at=False)
    pause.set_defaults(run=run_pause)

    resume = commands.add_parser("resume", help="resume a campaign paused by hand or by its guardrail")
    resume.add_argument("name", metavar="NAME", help="the campaign's name, as in its .seg file")
    add_data_arguments(resume, at=False)
    resume.set_defaults(run=run_resume)


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of text")


def _add_user(parser: argparse.ArgumentParser, *, required: bool) -> None:
    who = parser.add_mutually_exclusive_group(required=required)
    who.add_argument("--user-id", metavar="ID", help="the user: its external id (user_id)")
    who.add_argument("--device-id", metavar="ID", help="the anonymous user of this device (device_id)")


def _user(identity: dict[str, Any]) -> str:
    """``user_id "u-7"``, as the segments CLI names a user."""
    ((name, value),) = identity.items()
    return f"{name} {json.dumps(value, ensure_ascii=False)}"


def run_list(args: argparse.Namespace) -> int:
    from kudos.campaigns.queries import list_campaigns

    with store_and_rules(args) as (store, segments, _):
        listing = list_campaigns(store, segments, args.segments or _rules_dir())
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    if not listing["campaigns"]:
        print("no campaign: write a campaign block in a .seg file (docs/campaigns.md)", file=sys.stderr)
    for campaign in listing["campaigns"]:
        status = campaign["status"]
        if campaign["since"]:
            status += f" since {campaign['since']}"
        if campaign["reason"]:
            status += f" ({campaign['reason']})"
        print(f"{campaign['name']}: {status}")
        if campaign["trigger"] is not None:
            print(f"  {campaign['trigger']}, audience {campaign['audience']}, in {campaign['source']}")
        counts = ", ".join(f"{n} {status}" for status, n in campaign["counts"].items() if n)
        print(f"  sends: {counts or 'none yet'}")
    return 0


# The report's columns, as the text report and `make demo` print them: (heading, field).
REPORT_COLUMNS = (
    ("triggers", "triggers"),
    ("sent", "sent"),
    ("held out", "held_out"),
    ("not eligible", "not_eligible"),
    ("unreachable", "unreachable"),
    ("dismissed", "dismissed"),
    ("still held", "held"),
    ("capped", "capped"),
    ("expired", "expired"),
    ("paused", "paused"),
    ("delivered", "delivered"),
    ("opens", "opens"),
    ("conv.", "conversions"),
    ("control conv.", "control_conversions"),
    ("opt-outs", "opt_outs"),
)


def count_text(value: int | None) -> str:
    return "-" if value is None else (f"{value:,}" if value else ".")


def results_line(report: dict[str, Any]) -> str:
    """Opens, opt-outs, conversions beside the holdout and the lift, in one line."""

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    line = (
        f"opens {report['opens']:,} ({report['direct_opens']:,} direct, {report['influenced_opens']:,} "
        f"influenced); opt-outs {report['opt_outs']:,} ({rate(report['opt_out_rate'])} of sent)"
    )
    if report["conversion_rate"] is not None or report["control_conversion_rate"] is not None:
        line += (
            f"; conversion {rate(report['conversion_rate'])} sent vs "
            f"{rate(report['control_conversion_rate'])} held out"
        )
    lift = report.get("lift")
    if lift is not None:
        low, high = lift["ci95"]
        line += f"; lift {lift['absolute']:+.1%} (95% CI {low:+.1%} to {high:+.1%}, {lift['verdict']}"
        if lift["verdict"] != "conclusive" and lift["minimum_detectable"] is not None:
            line += f": this sample could detect {lift['minimum_detectable']:.1%}"
        line += ")"
    return line


def run_report(args: argparse.Namespace) -> int:
    from kudos.campaigns.queries import report_campaign

    with store_and_rules(args) as (store, segments, _):
        report = report_campaign(store, segments, args.name, args.date_from, args.date_to)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    status = report["status"] + (f" since {report['since']} ({report['reason']})" if report["reason"] else "")
    print(f"{args.name}: {status}")
    widths = [max(len(heading), 6) for heading, _ in REPORT_COLUMNS]
    print("date        " + "  ".join(h.rjust(w) for (h, _), w in zip(REPORT_COLUMNS, widths, strict=True)))
    rows = [(day["date"], day) for day in report["days"]] + [("total", report)]
    for label, figures in rows:
        cells = (
            count_text(figures[key]).rjust(w) for (_, key), w in zip(REPORT_COLUMNS, widths, strict=True)
        )
        print(f"{label:<10}  " + "  ".join(cells))
    print(results_line(report))
    return 0


def _rules_dir() -> Any:
    from kudos.runtime import services

    return services().settings.segments_dir


def run_sends(args: argparse.Namespace) -> int:
    from kudos.campaigns.queries import campaign_sends

    with store_and_rules(args) as (store, segments, _):
        page = campaign_sends(store, segments, args.name, args.user_id, args.device_id, str(args.limit), None)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    for send in page["sends"]:
        line = f"{send['triggered_at']}  {send['status']:<12}  {_user(send['user'])}  {send['send_id']}"
        if send["sent_at"]:
            line += f"  sent {send['sent_at']}: {json.dumps(send['title'], ensure_ascii=False)}"
        if send["reason"]:
            line += f"  ({send['reason']})"
        print(line)
    more = " (more: raise --limit)" if page["next"] else ""
    print(f"{args.name}: {len(page['sends'])} send(s), newest first{more}", file=sys.stderr)
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from kudos.campaigns.queries import explain_campaign

    with store_and_rules(args) as (store, segments, at):
        explanation = explain_campaign(store, segments, at, args.name, args.user_id, args.device_id, None)
    if args.json:
        print(json.dumps(explanation, indent=2))
        return 0
    asked = UserKey(args.user_id, args.device_id).identity()
    who = _user(explanation["user"])
    if explanation["user"] != asked:
        who += f" (identified from {_user(asked)})"
    verdict = "WOULD SEND" if explanation["would_send"] else "would NOT send"
    print(f"{who}, {args.name} ({explanation['status']}) at {explanation['at']}: a trigger now {verdict}")
    for rule in explanation["rules"]:
        mark = "STOP" if rule["stops"] else "ok  "
        line = f"  {mark}  {rule['rule']:<13}"
        if rule["stops"]:
            line += f"  {rule['status']}: {rule['reason']}  seen {json.dumps(rule['seen'])}"
        print(line.rstrip())
    push = explanation["push"]
    if push is not None:
        print(
            f"  push: {json.dumps(push['title'], ensure_ascii=False)} / {json.dumps(push['body'], ensure_ascii=False)}"
        )
    history = explanation["history"]
    print(f"history: {len(history)} trigger(s) of {args.name}" + (", newest first" if history else ""))
    for send in history:
        line = f"  {send['triggered_at']}  {send['status']:<12}  {send['send_id']}"
        if send["reason"]:
            line += f"  ({send['reason']})"
        print(line)
    return 0


def _print_state(state: dict[str, Any], verb: str) -> None:
    since = f" since {state['since']}" if state["since"] else ""
    reason = f" ({state['reason']})" if state["reason"] else ""
    done = verb if state["changed"] else f"already {state['status'].replace('_', ' ')}, unchanged"
    print(f"{state['campaign']}: {done}; {state['status']}{since}{reason}")


def run_pause(args: argparse.Namespace) -> int:
    from kudos.campaigns.queries import pause_campaign

    body = {"reason": args.reason} if args.reason is not None else None
    with store_and_rules(args) as (store, segments, _):
        _print_state(pause_campaign(store, segments, time.time(), args.name, body), "paused")
    return 0


def run_resume(args: argparse.Namespace) -> int:
    from kudos.campaigns.queries import resume_campaign

    with store_and_rules(args) as (store, segments, _):
        _print_state(resume_campaign(store, segments, time.time(), args.name), "resumed")
    return 0
