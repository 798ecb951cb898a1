"""The report's data from a store (the in-memory one): the active-users route's days, each segment's
entries and exits per day with the size they imply, each campaign's report, and the file written."""

from __future__ import annotations

from pathlib import Path

import pytest

from kudos.campaigns.report import campaign_report
from kudos.core.errors import BadRequest
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, format_day
from kudos.metrics.active_users import active_users_report
from kudos.report.gather import gather_report, write_report
from kudos.store.ports import CHANGE_RETENTION_DAYS, CampaignState
from tests.campaign_world import RULES, SETTINGS, World, rules

CAMPAIGN_RULES = RULES.replace(
    "holdout 0%",
    'holdout 50%\n    conversion event "claimed_reward" within 3 days\n    guardrail opt_outs above 2% after 100 sends',
)
DAY = SECONDS_PER_DAY


def three_days() -> World:
    """vips: 10 enter two days ago, 3 of them leave yesterday, 1 more enters today."""
    world = World(rules(CAMPAIGN_RULES))
    world.now -= 2 * DAY
    for n in range(10):
        world.track(f"u-{n}", vip=True)
    world.now += DAY
    for n in range(3):
        world.track(f"u-{n}", vip=False)
    world.now += DAY
    world.track("u-10", vip=True)
    return world


def test_entries_exits_and_the_size_at_the_end_of_each_day() -> None:
    world = three_days()
    today = day_of(world.now)
    data = gather_report(world.store, world.segments, world.now, settings=SETTINGS)
    (vips,) = data.segments
    assert (vips.name, vips.title, vips.size) == ("vips", "VIPs", 8)
    assert len(vips.days) == 30
    assert vips.days[-1].date == format_day(today)
    last = [(day.entered, day.exited, day.size) for day in vips.days[-4:]]
    assert last == [(0, 0, 0), (10, 0, 10), (0, 3, 7), (1, 0, 8)]


def test_changes_after_the_last_day_count_towards_the_sizes_before_it() -> None:
    world = three_days()
    yesterday = format_day(day_of(world.now) - 1)
    data = gather_report(world.store, world.segments, world.now, settings=SETTINGS, date_to=yesterday)
    (vips,) = data.segments
    assert vips.days[-1].date == yesterday
    assert [(day.entered, day.exited, day.size) for day in vips.days[-2:]] == [(10, 0, 10), (0, 3, 7)]
    assert vips.size == 8  # stored membership now, whatever the days shown


def test_days_the_change_log_no_longer_keeps_are_unknown() -> None:
    world = three_days()
    later = world.now + (CHANGE_RETENTION_DAYS - 1) * DAY
    first = format_day(day_of(world.now) - 3)
    data = gather_report(world.store, world.segments, later, settings=SETTINGS, date_from=first)
    (vips,) = data.segments
    log_from = day_of(later - CHANGE_RETENTION_DAYS * DAY) + 1
    assert data.change_log_from == format_day(log_from)
    known = [day for day in vips.days if day.entered is not None]
    unknown = [day for day in vips.days if day.entered is None]
    assert unknown
    assert all(day.date < data.change_log_from and day.size is None for day in unknown)
    assert all(day.date >= data.change_log_from for day in known)
    assert known[-1].size == 8


def test_active_users_are_the_routes_days() -> None:
    world = three_days()
    data = gather_report(world.store, world.segments, world.now, settings=SETTINGS)
    expected = active_users_report(world.store, SETTINGS, world.now, None, None)["days"]
    assert list(data.active_users) == expected
    assert data.active_users[-3]["dau"] == 10
    assert (data.first_day, data.last_day) == (expected[0]["date"], expected[-1]["date"])


def test_a_range_the_route_refuses_is_refused_with_its_message() -> None:
    world = three_days()
    with pytest.raises(BadRequest, match="from: after to"):
        gather_report(
            world.store,
            world.segments,
            world.now,
            settings=SETTINGS,
            date_from="2026-11-20",
            date_to="2026-11-01",
        )
    with pytest.raises(BadRequest, match="to: "):
        gather_report(world.store, world.segments, world.now, settings=SETTINGS, date_to="yesterday")


def test_campaigns_deployed_then_those_only_stored_each_with_its_report() -> None:
    world = three_days()
    world.store.campaigns.save_state(CampaignState(name="retired", first_seen=world.now - 50 * DAY))
    data = gather_report(world.store, world.segments, world.now, settings=SETTINGS)
    deployed, retired = data.campaigns
    first, last = day_of(world.now) - 29, day_of(world.now)
    name = "thank_vips"
    assert deployed.report == campaign_report(
        world.store, name, world.segments.campaigns[name], world.store.campaigns.state(name), first, last
    )
    assert deployed.report["triggers"] == 11  # each entry triggers; held out or not
    assert (deployed.title, deployed.audience, deployed.holdout) == ("Thanks", "vips", "50%")
    assert deployed.push_title == "Thank you, {{ first_name | default: 'friend' }}!"
    assert deployed.conversion == 'event "claimed_reward" within 3 days'
    assert deployed.guardrail == "opt-outs above 2% after 100 sends"
    assert deployed.source is not None
    assert deployed.source.startswith("campaign thank_vips")
    assert retired.name == "retired"
    assert retired.title is None
    assert retired.report["status"] == "paused"
    assert retired.report["triggers"] == 0


def test_write_report_writes_the_page_whole(tmp_path: Path) -> None:
    world = three_days()
    out = tmp_path / "report.html"
    out.write_text("an older report")
    data = write_report(out, world.store, world.segments, world.now, settings=SETTINGS)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert f"UTC days {data.first_day} to {data.last_day}" in page
    assert 'data-series="dau"' in page
    assert [path.name for path in tmp_path.iterdir()] == ["report.html"]
