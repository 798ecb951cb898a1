"""Messaging history in rules, end to end on the in-memory store (issue 9 item 6): sends and opens
move `pushes_received(WINDOW)`, `pushes_opened(WINDOW)` and the per-campaign windows at once, and
the sweep moves them back as the days pass."""

from __future__ import annotations

from typing import Any

from kudos.core.identity import UserKey
from kudos.core.profile import Profile
from kudos.core.records import CampaignRecord, SendRecord, UserRecords
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, format_instant
from kudos.ingest.push import record_push_events
from kudos.ingest.sessions import ingest_sessions
from kudos.segments.sweep import run_sweep
from tests.campaign_world import NOW, SETTINGS, World, rules

DAY = float(SECONDS_PER_DAY)
USER = UserKey.of_user("u-1")

RULES = """
segment vips { attr.vip = true }
segment not_saturated "At most 2 pushes this week" { pushes_received(last 7 days) <= 2 }
segment engaged "Opened a push in the last 30 days" { pushes_opened(last 30 days) >= 1 }
segment thanked_lately { received("thank_vips", last 7 days) and not opened("thank_vips", last 7 days) }
campaign thank_vips "Thanks" {
    audience vips
    send on entry
    reeligible after 1 minute
    push {
        title "Thank you!"
        body "500 coins"
    }
}
"""


class HistoryWorld(World):
    """One user, u-1, with a token."""

    def enter_and_send(self) -> SendRecord:
        """The user leaves the audience and enters it again: one more push."""
        self.now += 60
        self.track("u-1", vip=False)
        self.now += 60
        self.track("u-1", vip=True)
        (sent,) = self.drain()
        assert sent is not None
        assert sent.status == "sent"
        return sent

    def push_events(self, *events: dict[str, Any]) -> None:
        body = {"events": [{"user_id": "u-1", "time": format_instant(self.now), **event} for event in events]}
        assert record_push_events(self.store, self.segments, SETTINGS, self.now, body).errors == []

    def session(self, started: float) -> None:
        body = {
            "sessions": [
                {
                    "session_id": f"s-{started}",
                    "device_id": "d-1",
                    "user_id": "u-1",
                    "started_at": format_instant(started),
                }
            ]
        }
        assert not ingest_sessions(self.store, self.segments, SETTINGS, self.now, body).errors

    def sweep(self, at: float) -> None:
        self.now = at
        run_sweep(self.store, self.segments, at, self.clock)

    def records(self) -> UserRecords:
        return self.store.users.load_user(USER)

    def memberships(self) -> set[str]:
        return set(self.records().memberships)

    def profile(self) -> Profile:
        return self.records().to_profile()

    def due(self) -> float | None:
        due = self.records().due
        return None if due is None else due.due


def test_sends_and_opens_move_the_rules_and_the_sweep_moves_them_back() -> None:
    world = HistoryWorld(rules(RULES))
    world.token("u-1")
    first = world.enter_and_send()
    assert world.memberships() == {"vips", "not_saturated", "thanked_lately"}
    world.enter_and_send()
    assert "not_saturated" in world.memberships()  # 2 pushes this week: still at most 2
    third = world.enter_and_send()
    # The third push counts when it is sent, and the user leaves at once (campaigns.md,
    # "when messaging history changes").
    assert world.memberships() == {"vips", "thanked_lately"}
    assert world.profile().pushes_received.by_day == {day_of(NOW): 3}

    world.now += 60
    world.push_events({"type": "opened", "campaign_id": "thank_vips", "send_id": third.send_id})
    assert world.memberships() == {"vips", "engaged"}  # opened today: thanked_lately is over
    # Another device reports the same open, and a later open names only the campaign (the latest
    # send): still one push opened, at its first open; a delivery of a push adds no push.
    world.now += 60
    world.push_events(
        {"type": "opened", "campaign_id": "thank_vips", "send_id": third.send_id, "device_id": "d-2"},
        {"type": "opened", "campaign_id": "thank_vips"},
        {"type": "delivered", "campaign_id": "thank_vips", "send_id": first.send_id},
    )
    profile = world.profile()
    assert profile.pushes_opened.by_day == {day_of(NOW): 1}
    assert profile.pushes_received.total == 3
    assert profile.last_opened_any == profile.campaigns["thank_vips"].last_opened == world.now - 60

    # Time alone: the week's pushes leave the window at the midnight 7 days after their day, and the
    # user's next-change bound says so, so the sweep comes back for them then.
    week_later = (day_of(NOW) + 7) * DAY
    assert world.due() == week_later
    world.sweep(week_later - 60)
    assert "not_saturated" not in world.memberships()
    world.sweep(week_later + 60)
    assert world.memberships() == {"vips", "engaged", "not_saturated"}
    month_later = (day_of(NOW) + 30) * DAY
    assert world.due() == month_later
    world.sweep(month_later + 60)
    assert world.memberships() == {"vips", "not_saturated"}


def test_an_influenced_open_counts_as_an_open() -> None:
    world = HistoryWorld(rules(RULES))
    world.token("u-1")
    world.enter_and_send()
    assert "engaged" not in world.memberships()
    world.now += 600
    world.session(world.now)  # within the influence window (30 minutes without history)
    assert "engaged" in world.memberships()
    history = world.profile().campaigns["thank_vips"]
    assert (history.opened, history.last_opened, history.opens.total) == (True, world.now, 1)


def test_pushes_another_tool_made_count_once_each() -> None:
    world = HistoryWorld(rules(RULES))
    world.track("u-1", vip=False)
    # ext-1 reaches two devices and is opened on one of them, twice.
    world.push_events(
        {"type": "delivered", "campaign_id": "newsletter", "send_id": "ext-1", "device_id": "d-1"},
        {"type": "delivered", "campaign_id": "newsletter", "send_id": "ext-1", "device_id": "d-2"},
        {"type": "opened", "campaign_id": "newsletter", "send_id": "ext-1"},
        {"type": "opened", "campaign_id": "newsletter", "send_id": "ext-1"},
    )
    assert world.memberships() == {"not_saturated", "engaged"}
    # A push without a send_id is delivered the next day, then opened (the latest push delivered).
    world.now += DAY
    world.push_events({"type": "delivered", "campaign_id": "newsletter"})
    world.now += 30
    world.push_events({"type": "opened", "campaign_id": "newsletter"})
    profile = world.profile()
    history = profile.campaigns["newsletter"]
    assert history.receives.by_day == history.opens.by_day == {day_of(NOW): 1, day_of(NOW) + 1: 1}
    assert history.last_opened == world.now
    assert profile.pushes_received.total == profile.pushes_opened.total == 2
    # An open reported with no delivery is a push received as well: a third push this week.
    world.push_events({"type": "opened", "campaign_id": "other", "send_id": "ext-3"})
    assert world.profile().pushes_received.total == 3
    assert world.memberships() == {"engaged"}


def test_identify_adds_the_counts_up_and_keeps_what_was_counted() -> None:
    user = CampaignRecord("c", received=True)
    user.count_receive("p-1", NOW)
    user.count_open("p-1", NOW + 10)
    device = CampaignRecord("c")
    device.count_receive("p-2", NOW + DAY)
    device.count_open("p-2", NOW + DAY)
    merged = user.merged_with(device)
    assert merged.receive_days == merged.open_days == {day_of(NOW): 1, day_of(NOW) + 1: 1}
    assert merged.last_opened == NOW + DAY
    merged.count_open("p-2", NOW + 3 * DAY)  # counted on the device already
    merged.count_open("p-1", NOW + 3 * DAY)
    assert merged.open_days == {day_of(NOW): 1, day_of(NOW) + 1: 1}
    assert merged.last_opened == NOW + DAY


def test_day_series_keep_the_retained_days_and_the_marks_stay_few() -> None:
    campaign = CampaignRecord("c")
    for index in range(100):
        campaign.count_receive(f"p-{index}", NOW + index * DAY)
        campaign.count_open(f"p-{index}", NOW + index * DAY)
    assert min(campaign.receive_days) == day_of(NOW) + 99 - 92
    assert len(campaign.open_days) == 93
    assert len(campaign.counted) == 16
    assert campaign.counted[-1] == "op-99"


def test_sends_older_than_the_windows_are_not_walked() -> None:
    sends = {
        f"s-{n}": SendRecord(
            f"s-{n}",
            "c",
            "entry",
            NOW - n * 30 * DAY,
            "sent",
            sent_at=NOW - n * 30 * DAY,
            opened_at=NOW - n * 30 * DAY + 60,
        )
        for n in range(12)
    }
    history = UserRecords(USER, sends=sends).to_profile().campaigns["c"]
    assert history.receives.total == history.opens.total == 12
    assert len(history.receives.by_day) == len(history.opens.by_day) == 4  # 0, 30, 60, 90 days ago
    assert history.last_opened == NOW + 60
    assert not history.converted


def test_a_conversion_after_a_push_converts_and_one_after_a_holdout_does_not() -> None:
    sends = {
        "s-1": SendRecord("s-1", "a", "entry", NOW, "sent", sent_at=NOW, converted_at=NOW + 60),
        "s-2": SendRecord("s-2", "b", "entry", NOW, "held_out", converted_at=NOW + 60),
    }
    campaigns = UserRecords(USER, sends=sends).to_profile().campaigns
    assert (campaigns["a"].converted, campaigns["a"].in_control) == (True, False)
    assert (campaigns["b"].converted, campaigns["b"].in_control, campaigns["b"].received) == (
        False,
        True,
        False,
    )
