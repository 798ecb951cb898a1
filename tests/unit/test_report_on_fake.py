"""A campaign's report from its stored send records: outcomes and results in total and per UTC day,
rates null on an empty denominator, conversion figures null without a `conversion` line."""

from __future__ import annotations

from kudos.campaigns.report import campaign_report
from kudos.core.timeutil import day_of, format_day, format_instant
from kudos.ingest.push import record_push_events
from kudos.ingest.track import track_users
from tests.campaign_world import RULES, SETTINGS, World, rules

WITH_CONVERSION = RULES.replace(
    "holdout 0%", 'holdout 50%\n    conversion event "claimed_reward" within 3 days'
)


def report(world: World, **days: int | None) -> dict:
    name = "thank_vips"
    return campaign_report(
        world.store,
        name,
        world.segments.campaigns.get(name),
        world.store.campaigns.state(name),
        days.get("first"),
        days.get("last"),
    )


def test_an_empty_campaign_reports_zero_counts_and_null_rates() -> None:
    world = World(rules(WITH_CONVERSION))
    figures = report(world)
    assert figures["triggers"] == 0
    assert figures["conversion_rate"] is None
    assert figures["lift"] is None
    assert figures["opt_out_rate"] is None
    assert figures["days"] == []


def test_outcomes_results_and_lift_per_day() -> None:
    world = World(rules(WITH_CONVERSION))
    for n in range(40):
        world.token(f"u-{n}", device_id=f"d-{n}", token=f"t-{n}")
        world.track(f"u-{n}", vip=True)
    sent = [send for send in world.drain() if send is not None]
    world.now += 600
    for n in range(0, 40, 2):
        event = {"external_id": f"u-{n}", "name": "claimed_reward", "time": format_instant(world.now)}
        track_users(world.store, world.segments, SETTINGS, world.now, {"events": [event]})
    opened = {
        "events": [
            {
                "type": "opened",
                "user_id": "u-1",
                "campaign_id": "thank_vips",
                "time": format_instant(world.now),
            }
        ]
    }
    record_push_events(world.store, world.segments, SETTINGS, world.now, opened)
    figures = report(world)
    held_out = figures["held_out"]
    assert figures["triggers"] == 40
    assert figures["sent"] + held_out == 40
    assert figures["sent"] == len(sent)
    assert 0 < held_out < 40
    assert figures["conversions"] + figures["control_conversions"] == 20
    assert figures["conversion_rate"] == round(figures["conversions"] / figures["sent"], 6)
    assert figures["lift"]["ci95"][0] <= figures["lift"]["absolute"] <= figures["lift"]["ci95"][1]
    (day,) = figures["days"]
    assert day["date"] == format_day(day_of(world.now))
    assert day["triggers"] == 40
    # A period without triggers has none.
    tomorrow = day_of(world.now) + 1
    assert report(world, first=tomorrow, last=tomorrow)["triggers"] == 0
    assert report(world, first=tomorrow - 1, last=tomorrow)["triggers"] == 40


def test_without_a_conversion_line_the_conversion_figures_are_null() -> None:
    world = World(rules())
    world.token("u-1")
    world.track("u-1", vip=True)
    world.drain()
    figures = report(world)
    assert figures["sent"] == 1
    assert figures["conversions"] is None
    assert figures["lift"] is None
    assert figures["opt_out_rate"] == 0.0
