"""The report as one self-contained HTML page: ``render_html(data) -> str``.

Pure: the same data gives the same text (no clock, no I/O). The page has no script and loads
nothing (its Content-Security-Policy forbids both): styles are inline, charts are inline SVG
(kudos.report.svg). Every user-provided string (segment and campaign titles, push text, rule
source) is escaped. Stable hooks for tests and restyling: ``data-series`` on every series element,
``data-segment`` / ``data-campaign`` on the charts and sections of a segment or campaign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kudos.report.model import CampaignSection, ReportData, SegmentSeries
from kudos.report.svg import (
    SERIES_COLORS,
    Bar,
    Line,
    bar_chart,
    element,
    lift_chart,
    line_chart,
    size_and_changes_chart,
    text,
)

# The page may load nothing and run nothing: only its own inline styles (and SVG's inline markup).
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       background: #fff; margin: 0; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #ddd; }
h3 { font-size: 16px; margin: 28px 0 6px; }
h3 code, td code, dd code { font-size: 13px; color: #555; }
p.meta, p.note { color: #555; margin: 4px 0; }
nav a { margin-right: 14px; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 8px 0; }
.pair { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.pair > figure { margin: 0; }
figcaption { font-weight: 600; font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 0; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
          vertical-align: -1px; }
.figures { display: flex; flex-wrap: wrap; gap: 10px 28px; margin: 8px 0; }
.figures div { min-width: 90px; }
.figures b { display: block; font-size: 22px; }
.figures span { color: #555; font-size: 12px; }
dl.settings { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dl.settings dt { color: #555; }
dl.settings dd { margin: 0; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
          background: #e8f5e9; color: #1b5e20; vertical-align: 2px; }
.status.paused { background: #fdecea; color: #8a1c13; }
.verdict { font-weight: 600; }
details { margin: 6px 0; }
summary { cursor: pointer; color: #1b6f8c; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { padding: 2px 10px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
.empty { color: #777; font-style: italic; }
"""

FUNNEL = (
    ("triggers", "triggers"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("opens", "opened"),
    ("conversions", "converted"),
)
HOLDOUT = (("held_out", "held out"), ("control_conversions", "converted"))
# Where triggers that were not sent went (kudos.campaigns.report.OUTCOMES but sent and held_out).
OTHER_OUTCOMES = (
    "queued",
    "held",
    "not_eligible",
    "paused",
    "dismissed",
    "unreachable",
    "capped",
    "expired",
    "failed",
)
DAY_COLUMNS = (
    "triggers",
    "sent",
    "delivered",
    "opens",
    "conversions",
    "held_out",
    "control_conversions",
    "opt_outs",
)


def render_html(data: ReportData) -> str:
    """The whole page."""
    title = f"{data.title}, {data.first_day} to {data.last_day}"
    head = (
        '<meta charset="utf-8">'
        + f'<meta http-equiv="Content-Security-Policy" content="{text(CONTENT_SECURITY_POLICY)}">'
        + '<meta name="viewport" content="width=device-width, initial-scale=1">'
        + element("title", None, text(title))
        + element("style", None, STYLE)
    )
    body = "".join(
        (
            _header(data),
            _active_users_section(data),
            _segments_section(data),
            _campaigns_section(data),
        )
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body><main>{body}</main></body>\n</html>\n'
    )


def _header(data: ReportData) -> str:
    sweep = f"; last sweep {data.last_sweep}" if data.last_sweep else "; no sweep has run"
    nav = element(
        "nav",
        None,
        '<a href="#active-users">Active users</a><a href="#segments">Segments</a>'
        '<a href="#campaigns">Campaigns</a>',
    )
    meta = element(
        "p",
        {"class": "meta"},
        text(f"UTC days {data.first_day} to {data.last_day}; figures as of {data.generated_at}{sweep}."),
    )
    return element("header", None, element("h1", None, text(data.title)) + meta + nav)


def _legend(keys: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        element(
            "span",
            None,
            element("span", {"class": "swatch", "style": f"background:{SERIES_COLORS[key]}"}) + text(label),
        )
        for key, label in keys
    )
    return element("div", {"class": "legend", "aria-hidden": "true"}, items)


def _figures(pairs: Sequence[tuple[str, str]]) -> str:
    return element(
        "div",
        {"class": "figures"},
        "".join(
            element("div", None, element("b", None, text(value)) + element("span", None, text(label)))
            for label, value in pairs
        ),
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], summary: str) -> str:
    head = element("tr", None, "".join(element("th", {"scope": "col"}, text(h)) for h in headers))
    lines = "".join(
        element("tr", None, "".join(element("td", None, text(cell)) for cell in row)) for row in rows
    )
    table = element("table", None, element("thead", None, head) + element("tbody", None, lines))
    return element("details", None, element("summary", None, text(summary)) + table)


def _count(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _share(numerator: int | None, denominator: int | None, of: str) -> str:
    if numerator is None or not denominator:
        return ""
    return f"{numerator / denominator * 100:.1f} % of {of}"


# Active users


def _active_users_section(data: ReportData) -> str:
    days = data.active_users
    parts = [element("h2", {"id": "active-users"}, "Active users")]
    parts.append(
        element(
            "p",
            {"class": "note"},
            "Exact distinct users active on the day (DAU), in the 7 days (WAU) and in the 30 days "
            "(MAU) ending on it; stickiness is DAU / MAU.",
        )
    )
    if not days:
        parts.append(element("p", {"class": "empty"}, "No days in range."))
        return element("section", {"data-section": "active-users"}, "".join(parts))
    last = days[-1]
    parts.append(
        _figures(
            [
                (f"DAU {last['date']}", f"{last['dau']:,}"),
                ("WAU", f"{last['wau']:,}"),
                ("MAU", f"{last['mau']:,}"),
                ("stickiness", _percent(last["stickiness"])),
                (f"new users, {len(days)} days", f"{sum(day['new_users'] for day in days):,}"),
            ]
        )
    )
    dates = [day["date"] for day in days]
    lines = [Line(key, key.upper(), [day[key] for day in days]) for key in ("dau", "wau", "mau")]
    description = (
        f"Lines over {len(days)} UTC days. On {last['date']}: DAU {last['dau']:,}, "
        f"WAU {last['wau']:,}, MAU {last['mau']:,}."
    )
    parts.append(_legend([("dau", "DAU"), ("wau", "WAU"), ("mau", "MAU")]))
    parts.append(
        line_chart(
            "active-users-chart",
            f"Daily, weekly and monthly active users, {dates[0]} to {dates[-1]}",
            description,
            dates,
            lines,
        )
    )
    rows = [
        [
            day["date"],
            f"{day['dau']:,}",
            f"{day['wau']:,}",
            f"{day['mau']:,}",
            f"{day['new_users']:,}",
            f"{day['sessions']:,}",
            _percent(day["stickiness"]),
        ]
        for day in days
    ]
    parts.append(
        _table(
            ["date", "DAU", "WAU", "MAU", "new users", "sessions", "stickiness"], rows, "The figures per day"
        )
    )
    return element("section", {"data-section": "active-users"}, "".join(parts))


# Segments


def _segment_label(segment: SegmentSeries) -> str:
    return segment.title or segment.name


def _segments_section(data: ReportData) -> str:
    parts = [element("h2", {"id": "segments"}, "Segments")]
    if not data.segments:
        parts.append(element("p", {"class": "empty"}, "No segments are deployed."))
        return element("section", {"data-section": "segments"}, "".join(parts))
    parts.append(
        element(
            "p",
            {"class": "note"},
            text(
                "Size: stored membership now, as ingest and the sweep recorded it. Entries and exits: the "
                "change log, per UTC day; the size at the end of each earlier day is the stored size "
                "minus the net of the changes logged since."
                + (
                    f" The log keeps the changes from {data.change_log_from} on; earlier days are left blank."
                    if data.change_log_from and data.change_log_from > data.first_day
                    else ""
                )
            ),
        )
    )
    bars = [
        Bar("members", segment.name, segment.size, segment.title or "", {"data-segment": segment.name})
        for segment in data.segments
    ]
    parts.append(
        bar_chart(
            "segment-sizes-chart",
            "Segment sizes now",
            "; ".join(f"{segment.name}: {segment.size:,} members" for segment in data.segments),
            bars,
            width=960,
            label_width=180,
            value_width=300,
        )
    )
    for index, segment in enumerate(data.segments):
        parts.append(_segment(index, segment))
    return element("section", {"data-section": "segments"}, "".join(parts))


def _segment(index: int, segment: SegmentSeries) -> str:
    known = [day for day in segment.days if day.entered is not None]
    entered = sum(day.entered or 0 for day in known)
    exited = sum(day.exited or 0 for day in known)
    heading = text(_segment_label(segment)) + " " + element("code", None, text(segment.name))
    parts = [element("h3", {"id": f"segment-{index}"}, heading)]
    parts.append(
        _figures(
            [
                ("members now", f"{segment.size:,}"),
                ("entered", f"{entered:,}"),
                ("left", f"{exited:,}"),
            ]
        )
    )
    if not segment.days:
        parts.append(element("p", {"class": "empty"}, "No days in range."))
        return element("div", {"data-segment": segment.name}, "".join(parts))
    dates = [day.date for day in segment.days]
    parts.append(
        _legend([("size", "members at the end of the day"), ("entered", "entered"), ("exited", "left")])
    )
    parts.append(
        size_and_changes_chart(
            f"segment-{index}-chart",
            f"{_segment_label(segment)}: members, entries and exits per day, {dates[0]} to {dates[-1]}",
            f"{segment.size:,} members now; {entered:,} entered and {exited:,} left over {len(dates)} days.",
            dates,
            Line("size", "members", [day.size for day in segment.days]),
            Line("entered", "entered", [day.entered for day in segment.days]),
            Line("exited", "left", [day.exited for day in segment.days]),
            data={"data-segment": segment.name},
        )
    )
    rows = [[day.date, _count(day.size), _count(day.entered), _count(day.exited)] for day in segment.days]
    parts.append(_table(["date", "members", "entered", "left"], rows, "The figures per day"))
    return element("div", {"data-segment": segment.name}, "".join(parts))


# Campaigns


def _campaigns_section(data: ReportData) -> str:
    parts = [element("h2", {"id": "campaigns"}, "Campaigns")]
    if not data.campaigns:
        parts.append(
            element("p", {"class": "empty"}, "No campaigns are deployed, and none has stored sends.")
        )
        return element("section", {"data-section": "campaigns"}, "".join(parts))
    parts.append(
        element(
            "p",
            {"class": "note"},
            text(
                f"Triggers from {data.first_day} to {data.last_day} (by the UTC day of the trigger) and what "
                "became of them. The held-out control group gets no push; the lift is the conversion rate "
                "of those sent the push minus that of the held-out group, with its 95 % interval."
            ),
        )
    )
    for index, campaign in enumerate(data.campaigns):
        parts.append(_campaign(index, campaign))
    return element("section", {"data-section": "campaigns"}, "".join(parts))


def _campaign(index: int, campaign: CampaignSection) -> str:
    report = campaign.report
    status = str(report.get("status", "active"))
    heading = text(campaign.title or campaign.name) + " " + element("code", None, text(campaign.name)) + " "
    heading += element("span", {"class": f"status {status}"}, text(status))
    parts = [element("h3", {"id": f"campaign-{index}"}, heading)]
    if status != "active" and (report.get("reason") or report.get("since")):
        why = ", ".join(
            str(part)
            for part in (report.get("reason"), report.get("since") and f"since {report['since']}")
            if part
        )
        parts.append(element("p", {"class": "note"}, text(f"Paused: {why}.")))
    parts.append(_settings(campaign))
    parts.append(_funnels(index, campaign))
    parts.append(_lift(index, campaign))
    parts.append(_opt_outs(campaign))
    others = [(name, report.get(name, 0)) for name in OTHER_OUTCOMES if report.get(name)]
    if others:
        listed = ", ".join(f"{name.replace('_', ' ')} {value:,}" for name, value in others)
        parts.append(element("p", {"class": "note"}, text(f"Triggers not sent (nor held out): {listed}.")))
    days = report.get("days") or []
    if days:
        rows = [[day["date"], *(_count(day.get(column)) for column in DAY_COLUMNS)] for day in days]
        headers = ["date", *(column.replace("_", " ") for column in DAY_COLUMNS)]
        parts.append(_table(headers, rows, "The figures per day of trigger"))
    if campaign.source:
        parts.append(
            element(
                "details",
                None,
                element("summary", None, "The campaign as written")
                + element("pre", None, text(campaign.source)),
            )
        )
    return element("article", {"data-campaign": campaign.name}, "".join(parts))


def _settings(campaign: CampaignSection) -> str:
    rows = [
        ("audience", campaign.audience),
        ("push title", campaign.push_title),
        ("push body", campaign.push_body),
        ("holdout", campaign.holdout),
        ("conversion", campaign.conversion),
        ("guardrail", campaign.guardrail),
    ]
    if campaign.audience is None and campaign.push_title is None:
        return element(
            "p", {"class": "note"}, "No longer deployed: the figures are those of its stored sends."
        )
    items = "".join(
        element("dt", None, text(name)) + element("dd", None, text(value)) for name, value in rows if value
    )
    return element("dl", {"class": "settings"}, items)


def _funnels(index: int, campaign: CampaignSection) -> str:
    report = campaign.report
    triggers = int(report.get("triggers") or 0)
    sent = report.get("sent")
    notes = {
        "sent": _share(sent, triggers, "triggers"),
        "delivered": _share(report.get("delivered"), sent, "sent"),
        "opens": _share(report.get("opens"), sent, "sent"),
        "conversions": _share(report.get("conversions"), sent, "sent"),
        "held_out": _share(report.get("held_out"), triggers, "triggers"),
        "control_conversions": _share(report.get("control_conversions"), report.get("held_out"), "held out"),
    }
    data = {"data-campaign": campaign.name}
    label = campaign.title or campaign.name
    funnel = [
        Bar(key, name, _optional_int(report.get(key)), notes.get(key, ""), data) for key, name in FUNNEL
    ]
    holdout = [
        Bar(key, name, _optional_int(report.get(key)), notes.get(key, ""), data) for key, name in HOLDOUT
    ]
    funnel_chart = bar_chart(
        f"campaign-{index}-funnel",
        f"{label}: triggers, sent, delivered, opened, converted",
        _bars_description(funnel),
        funnel,
        maximum=triggers,
        label_width=80,
        value_width=170,
        data={**data, "data-chart": "funnel"},
    )
    holdout_chart = bar_chart(
        f"campaign-{index}-holdout",
        f"{label}: held-out control group, converted",
        _bars_description(holdout),
        holdout,
        maximum=triggers,
        label_width=80,
        value_width=170,
        data={**data, "data-chart": "holdout"},
    )
    return element(
        "div",
        {"class": "pair"},
        element("figure", None, element("figcaption", None, "Sent the push") + funnel_chart)
        + element("figure", None, element("figcaption", None, "Held out (control)") + holdout_chart),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bars_description(bars: Sequence[Bar]) -> str:
    return "; ".join(f"{bar.label} {_count(bar.value)}" for bar in bars) + "."


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pp"


def _lift(index: int, campaign: CampaignSection) -> str:
    report = campaign.report
    lift: Mapping[str, Any] | None = report.get("lift")
    if report.get("conversion_rate") is None and report.get("conversions") is None:
        return element(
            "p",
            {"class": "note"},
            "No conversion line: conversions and lift are not measured for this campaign.",
        )
    rates = (
        f"Conversion rate {_percent(report.get('conversion_rate'))} of those sent the push, "
        f"{_percent(report.get('control_conversion_rate'))} of those held out."
    )
    if lift is None:
        return element(
            "p",
            {"class": "note"},
            text(f"{rates} No lift yet: it needs at least one user sent the push and one held out."),
        )
    low, high = lift["ci95"]
    mde = lift.get("minimum_detectable")
    verdict = str(lift["verdict"])
    sentence = f"Lift {_points(lift['absolute'])}, 95 % interval {_points(low)} to {_points(high)}: "
    detail = (
        f" The smallest difference these group sizes could detect is {abs(mde) * 100:.1f} pp."
        if mde is not None
        else " No difference in that direction, however large, could be detected with these group sizes."
    )
    chart = lift_chart(
        f"campaign-{index}-lift",
        f"{campaign.title or campaign.name}: lift in conversion rate with its 95 % interval",
        f"{sentence}{verdict}.{detail}",
        float(lift["absolute"]),
        (float(low), float(high)),
        None if mde is None else float(mde),
        data={"data-campaign": campaign.name, "data-chart": "lift"},
    )
    paragraph = element(
        "p",
        None,
        text(f"{rates} {sentence}")
        + element("span", {"class": "verdict"}, text(verdict))
        + text("." + detail),
    )
    return paragraph + chart


def _opt_outs(campaign: CampaignSection) -> str:
    report = campaign.report
    line = ""
    if report.get("opens"):
        line = (
            f"Opened: {_count(report.get('direct_opens'))} from the push itself, "
            f"{_count(report.get('influenced_opens'))} influenced (a session started within the window after it). "
        )
    line += f"Opt-outs: {_count(report.get('opt_outs'))} ({_percent(report.get('opt_out_rate'))} of sent)"
    if campaign.guardrail:
        line += f"; the guardrail pauses the campaign at {campaign.guardrail}"
    return element("p", {"data-figure": "opt-outs"}, text(line + "."))
