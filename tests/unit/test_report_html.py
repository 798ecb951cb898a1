"""The report's renderer on hand-made data: series by data-series, accessible charts, escaping,
nothing loaded or run, and the edges (no data, one day, days before the change log, no conversion
line, no lift yet)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kudos.report.html import render_html
from kudos.report.model import CampaignSection, ReportData, SegmentDay, SegmentSeries
from kudos.report.svg import count_ticks, nice_step
from tests.report_dom import parse, points, series

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def active_days(count: int) -> list[dict[str, Any]]:
    return [
        {
            "date": f"2026-11-{day + 1:02d}",
            "dau": 10 + day,
            "wau": 30 + day,
            "mau": 80 + day,
            "new_users": 1,
            "sessions": 12,
            "stickiness": round((10 + day) / (80 + day), 4),
        }
        for day in range(count)
    ]


def campaign_figures(**changes: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "campaign": "thank",
        "status": "active",
        "since": None,
        "reason": None,
        "triggers": 100,
        "queued": 2,
        "held": 0,
        "held_out": 10,
        "not_eligible": 3,
        "paused": 0,
        "dismissed": 0,
        "unreachable": 5,
        "capped": 0,
        "expired": 0,
        "failed": 0,
        "sent": 80,
        "delivered": 70,
        "direct_opens": 20,
        "influenced_opens": 5,
        "opens": 25,
        "conversions": 16,
        "control_conversions": 1,
        "opt_outs": 2,
        "conversion_rate": 0.2,
        "control_conversion_rate": 0.1,
        "lift": {
            "absolute": 0.1,
            "ci95": [-0.12, 0.21],
            "minimum_detectable": 0.3,
            "verdict": "too small to conclude",
        },
        "opt_out_rate": 0.025,
        "days": [{"date": "2026-11-03", "triggers": 100, "sent": 80, "opt_outs": 2}],
    }
    figures.update(changes)
    return figures


def campaign(name: str = "thank", title: str | None = "Thank you", **figures: Any) -> CampaignSection:
    return CampaignSection(
        name=name,
        title=title,
        audience="top",
        push_title="Thanks, {{ first_name }}!",
        push_body="500 coins",
        holdout="10%",
        conversion='event "claimed" within 3 days',
        guardrail="opt-outs above 2% after 100 sends",
        source=f'campaign {name} "{title}" {{ ... }}',
        report=campaign_figures(campaign=name, **figures),
    )


def segment(name: str = "top", title: str | None = "Top users", days: int = 5) -> SegmentSeries:
    return SegmentSeries(
        name=name,
        title=title,
        size=7,
        days=[SegmentDay(f"2026-11-{day + 1:02d}", day, 1, 3 + day) for day in range(days)],
    )


def report(**changes: Any) -> ReportData:
    values: dict[str, Any] = {
        "first_day": "2026-11-01",
        "last_day": "2026-11-05",
        "generated_at": "2026-11-05T12:00:00Z",
        "active_users": active_days(5),
        "segments": [segment(), segment("quiet", None)],
        "campaigns": [campaign(), campaign("other", "Other")],
        "last_sweep": "2026-11-05T11:45:00Z",
        "change_log_from": "2026-08-08",
    }
    values.update(changes)
    return ReportData(**values)


def test_active_users_are_three_lines_with_a_point_per_day() -> None:
    nodes = parse(render_html(report()))
    for name in ("dau", "wau", "mau"):
        (line,) = series(nodes, "polyline", name)
        assert len(points(line)) == 5
        assert len(series(nodes, "circle", name)) == 5
    # Higher values sit higher (smaller y): MAU above WAU above DAU on every day.
    dau, wau, mau = (points(series(nodes, "polyline", name)[0]) for name in ("dau", "wau", "mau"))
    assert all(m[1] < w[1] < d[1] for d, w, m in zip(dau, wau, mau, strict=True))
    # Days left to right.
    assert [x for x, _ in dau] == sorted(x for x, _ in dau)


def test_segments_have_size_bars_and_entries_exits_per_day() -> None:
    nodes = parse(render_html(report()))
    bars = series(nodes, "rect", "members")
    assert [bar.attrs["data-segment"] for bar in bars] == ["top", "quiet"]
    for name in ("top", "quiet"):
        assert len(series(nodes, "rect", "entered", data_segment=name)) == 5
        assert len(series(nodes, "rect", "exited", data_segment=name)) == 5
        (size,) = series(nodes, "polyline", "size", data_segment=name)
        assert len(points(size)) == 5


def test_each_campaign_has_its_funnel_beside_its_holdout_group_and_its_lift() -> None:
    page = render_html(report())
    nodes = parse(page)
    for name in ("thank", "other"):
        funnel = [
            node.attrs["data-series"]
            for node in nodes
            if node.tag == "rect" and node.within("svg", data_campaign=name, data_chart="funnel")
        ]
        assert funnel == ["triggers", "sent", "delivered", "opens", "conversions"]
        holdout = [
            node.attrs["data-series"]
            for node in nodes
            if node.tag == "rect" and node.within("svg", data_campaign=name, data_chart="holdout")
        ]
        assert holdout == ["held_out", "control_conversions"]
        assert len(series(nodes, "circle", "lift", data_campaign=name)) == 1
        assert len(series(nodes, "path", "lift-ci95", data_campaign=name)) == 1
    # Bars on one scale: triggers is the longest, and each bar's length follows its count.
    widths = {
        node.attrs["data-series"]: float(node.attrs["width"])
        for node in nodes
        if node.tag == "rect" and node.within("svg", data_campaign="thank")
    }
    assert widths["sent"] == pytest.approx(widths["triggers"] * 0.8, abs=0.1)
    assert widths["held_out"] == pytest.approx(widths["triggers"] * 0.1, abs=0.1)
    assert "Opt-outs: 2 (2.5 % of sent)" in page
    assert "too small to conclude" in page
    assert "+10.0 pp, 95 % interval -12.0 pp to +21.0 pp" in page


def test_every_chart_is_an_image_labelled_by_its_title_and_description() -> None:
    nodes = parse(render_html(report()))
    charts = [node for node in nodes if node.tag == "svg"]
    assert len(charts) == 1 + 1 + 2 + 2 * 3  # active users, sizes, 2 segments, 2 x (funnel, holdout, lift)
    ids = {node.attrs.get("id"): node for node in nodes if "id" in node.attrs}
    for chart in charts:
        assert chart.attrs["role"] == "img"
        title, description = chart.attrs["aria-labelledby"].split()
        assert (ids[title].tag, ids[description].tag) == ("title", "desc")
        assert ids[title].text.strip()
        assert ids[description].text.strip()
    assert len(ids) == len([node for node in nodes if "id" in node.attrs]), "ids are unique"


def test_user_provided_strings_are_escaped_everywhere() -> None:
    hostile = CampaignSection(
        name="evil",
        title=HOSTILE,
        audience=HOSTILE,
        push_title=HOSTILE,
        push_body=HOSTILE,
        holdout="10%",
        conversion=None,
        guardrail=None,
        source=HOSTILE,
        report=campaign_figures(
            campaign="evil", status="paused", reason=HOSTILE, since="2026-11-04T00:00:00Z"
        ),
    )
    page = render_html(report(segments=[segment("top", HOSTILE)], campaigns=[hostile]))
    assert "<script" not in page.lower()
    assert "<img" not in page
    assert page.count("&lt;script&gt;") >= 8
    nodes = parse(page)
    assert not [node for node in nodes if node.tag in ("script", "img")]
    assert not [name for node in nodes for name in node.attrs if name.startswith("on")]


def test_the_page_loads_nothing_and_runs_nothing() -> None:
    page = render_html(report())
    nodes = parse(page)
    (policy,) = [node for node in nodes if node.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy.attrs["content"].startswith("default-src 'none';")
    assert not [node for node in nodes if node.tag in ("script", "link", "img", "iframe", "object")]
    assert not [name for node in nodes for name in node.attrs if name.startswith("on")]
    # The one URL is SVG's namespace, which is a name, not something fetched.
    assert set(re.findall(r"https?://[^\"' )]+", page)) == {"http://www.w3.org/2000/svg"}
    assert all(node.attrs["href"].startswith("#") for node in nodes if "href" in node.attrs)


def test_the_same_data_gives_the_same_page() -> None:
    assert render_html(report()) == render_html(report())


def test_nothing_to_show_still_renders_every_section() -> None:
    page = render_html(report(active_users=[], segments=[], campaigns=[]))
    assert "No days in range." in page
    assert "No segments are deployed." in page
    assert "No campaigns are deployed" in page
    assert "<svg" not in page


def test_one_day_and_all_zero() -> None:
    day = active_days(1)[0] | {"dau": 0, "wau": 0, "mau": 0, "stickiness": 0}
    empty = campaign(
        triggers=0, sent=0, held_out=0, delivered=0, opens=0, conversions=0, control_conversions=0, lift=None
    )
    nodes = parse(
        render_html(
            report(
                active_users=[day],
                segments=[SegmentSeries("top", "Top", 0, [SegmentDay("2026-11-01", 0, 0, 0)])],
                campaigns=[empty],
            )
        )
    )
    (dau,) = series(nodes, "polyline", "dau")
    ((x, y),) = points(dau)
    assert 56 < x < 960
    assert y > 0
    assert float(series(nodes, "rect", "triggers")[0].attrs["width"]) == 0
    assert not series(nodes, "circle", "lift")


def test_days_the_change_log_no_longer_covers_are_left_out() -> None:
    days = [SegmentDay("2026-11-01", None, None, None), *segment().days[1:]]
    nodes = parse(
        render_html(report(segments=[SegmentSeries("top", "Top", 7, days)], change_log_from="2026-11-02"))
    )
    (size,) = series(nodes, "polyline", "size")
    assert len(points(size)) == 4
    assert len(series(nodes, "rect", "entered")) == 4
    # A gap in the middle breaks the line in two.
    gap = [*segment().days[:2], SegmentDay("2026-11-03", None, None, None), *segment().days[3:]]
    nodes = parse(render_html(report(segments=[SegmentSeries("top", "Top", 7, gap)])))
    assert [len(points(line)) for line in series(nodes, "polyline", "size")] == [2, 2]


def test_without_a_conversion_line_there_is_no_conversion_bar_nor_lift() -> None:
    page = render_html(
        report(
            campaigns=[campaign(conversions=None, control_conversions=None, conversion_rate=None, lift=None)]
        )
    )
    nodes = parse(page)
    assert not series(nodes, "rect", "conversions")
    assert not series(nodes, "rect", "control_conversions")
    assert "not measured" in page
    assert not series(nodes, "circle", "lift")


def test_a_campaign_no_longer_deployed_shows_its_stored_figures() -> None:
    gone = CampaignSection(
        "gone", None, None, None, None, None, None, None, None, campaign_figures(status="paused")
    )
    page = render_html(report(campaigns=[gone]))
    assert "No longer deployed" in page
    assert len(series(parse(page), "rect", "sent", data_campaign="gone")) == 1


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 2, 4, 6, 8, 10]),
        (1234, [0, 250, 500, 750, 1000, 1250]),
    ],
)
def test_count_ticks_are_whole_and_reach_the_maximum(maximum: int, ticks: list[int]) -> None:
    assert count_ticks(maximum) == ticks


def test_nice_steps() -> None:
    assert nice_step(0.3, whole=False) == pytest.approx(0.5)
    assert nice_step(0.3, whole=True) == 1
    assert nice_step(30, whole=True) == 50
    assert nice_step(0, whole=False) == 1
