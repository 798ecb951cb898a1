"""The rules that decide what becomes of a trigger and of a queued send (campaigns.md "Triggers" and
"Sending"), as pure functions of one user's records: the trigger path, the sender and `explain` all
ask the same questions in the same order.

Each rule answers None (it lets the send through) or a Stop: the outcome it gives, why, and the
value it saw, which `explain` shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dsl import SegmentSet
from dsl.campaigns import CompiledCampaign
from kudos.core.identity import UserKey
from kudos.core.profile import Profile
from kudos.core.records import SendRecord, SendStatus, UserRecords
from kudos.store.ports import CampaignState

_HOLDOUT_SCALE = 2**64


@dataclass(frozen=True, slots=True)
class Stop:
    """A rule that stops a send: the status it ends with, and what the rule saw."""

    status: SendStatus
    reason: str
    seen: object = None
    until: float | None = None  # held: when quiet hours end


def send_id_for(campaign: str, user: UserKey, instant: float) -> str:
    """Unique to (campaign, user, trigger), and the same each time the same trigger is fired again
    (a re-run sweep, a redelivered message): a second record of it is refused by the store."""
    text = f"{campaign}\0{user.token}\0{instant:.3f}"
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def holdout_position(campaign: str, user: UserKey) -> float:
    """A stable, uniform number in [0, 1) for (campaign, user): below the holdout fraction is held out."""
    digest = hashlib.blake2b(f"{campaign}\0{user.token}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HOLDOUT_SCALE


def paused(campaign: CompiledCampaign | None, state: CampaignState | None) -> Stop | None:
    if campaign is None:
        return Stop("paused", "the campaign was removed from the rule files")
    if state is not None and state.status != "active":
        why = "paused by its guardrail" if state.status == "paused_by_guardrail" else "paused by hand"
        return Stop("paused", why + (f": {state.reason}" if state.reason else ""), state.status)
    return None


def not_eligible(campaign: CompiledCampaign, user: UserRecords, at: float) -> Stop | None:
    """A `sent` or `held_out` trigger less than `reeligible after` before (or ever, by default).
    Seconds between the two instants, as Braze counts re-eligibility.

    Beyond campaigns.md: a trigger of the campaign still queued or held also makes a new one not
    eligible, so that re-entering before the first is sent (identify merging a device that entered
    into the user, who then enters) never gives the user two pushes for one entry."""
    history = user.sends_of(campaign.name)
    waiting = next((send for send in history if send.pending), None)
    if waiting is not None:
        return Stop(
            "not_eligible", f"a trigger of this campaign is still {waiting.status}", waiting.triggered_at
        )
    last = max((send.triggered_at for send in history if send.counts_for_eligibility), default=None)
    if last is None:
        return None
    period = campaign.reeligible_after_seconds
    if period is None:
        return Stop("not_eligible", "already triggered once (no `reeligible after`)", last)
    if at - last < period:
        return Stop(
            "not_eligible", f"last triggered {int(at - last)} s ago, re-eligible after {period} s", last
        )
    return None


def unreachable(profile: Profile) -> Stop | None:
    """push_enabled (dsl.md): a valid, enabled token and a subscription that is not "unsubscribed"."""
    if profile.push_subscription == "unsubscribed":
        return Stop("unreachable", 'push_subscription is "unsubscribed"', profile.push_subscription)
    if not profile.push_enabled:
        return Stop("unreachable", "no valid, enabled push token", False)
    return None


def held_out(campaign: CompiledCampaign, user: UserRecords) -> Stop | None:
    """A stable hash against the percentage; sticky both ways: a user held out once stays out, and
    one who was sent the campaign is never held out later (whatever profile the history came from)."""
    history = user.sends_of(campaign.name)
    if any(send.status == "sent" for send in history):
        return None
    if any(send.status == "held_out" for send in history):
        return Stop("held_out", "held out of this campaign before", True)
    position = holdout_position(campaign.name, user.key)
    if position < campaign.holdout_fraction:
        return Stop("held_out", f"in the {campaign.holdout_fraction:.0%} holdout", round(position, 4))
    return None


def trigger_stop(
    campaign: CompiledCampaign, state: CampaignState | None, user: UserRecords, profile: Profile, at: float
) -> Stop | None:
    """The first trigger rule that stops it, in campaigns.md's order; None: it is queued."""
    return (
        paused(campaign, state)
        or not_eligible(campaign, user, at)
        or unreachable(profile)
        or held_out(campaign, user)
    )


def expired(campaign: CompiledCampaign, send: SendRecord, at: float) -> Stop | None:
    age = at - send.triggered_at
    if age > campaign.expire_after_seconds:
        return Stop(
            "expired", f"{int(age)} s after its trigger, expires after {campaign.expire_after_seconds} s", age
        )
    return None


def dismissed(campaign: CompiledCampaign, segments: SegmentSet, profile: Profile, at: float) -> Stop | None:
    if campaign.audience in segments and segments.evaluate(campaign.audience, profile, at):
        return None
    return Stop("dismissed", f"no longer in {campaign.audience}", False)


def capped(campaign: CompiledCampaign, user: UserRecords, at: float) -> Stop | None:
    """`cap N per PERIOD`: pushes to this user from any campaign in the period before now."""
    cap = campaign.cap
    if cap is None:
        return None
    since = at - cap.period.seconds
    received = sum(
        1
        for send in user.sends.values()
        if send.status == "sent" and send.sent_at is not None and since < send.sent_at <= at
    )
    if received >= cap.count:
        return Stop("capped", f"{received} push(es) in the last {cap.period.text}, cap {cap.count}", received)
    return None


def zone_of(profile: Profile) -> ZoneInfo:
    """The user's `time_zone` (IANA name); UTC when unset or unknown (campaigns.md)."""
    name = profile.standard.get("time_zone")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def quiet_hours(campaign: CompiledCampaign, profile: Profile, at: float) -> Stop | None:
    """Local time of day in [from, to): held until the window's end, in the user's zone."""
    window = campaign.quiet_hours
    if window is None or window.start.minute_of_day is None or window.end.minute_of_day is None:
        return None
    start, end = window.start.minute_of_day, window.end.minute_of_day
    local = datetime.fromtimestamp(at, UTC).astimezone(zone_of(profile))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    ends = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return Stop(
        "held",
        f"quiet hours {window.start.text} to {window.end.text} in {local.tzname()}",
        local.strftime("%H:%M"),
        ends.timestamp(),
    )


def send_stop(
    campaign: CompiledCampaign | None,
    state: CampaignState | None,
    segments: SegmentSet,
    user: UserRecords,
    profile: Profile,
    send: SendRecord,
    at: float,
) -> Stop | None:
    """The first send-time rule that stops a queued send, in campaigns.md's order (rendering, the
    last one, is the sender's)."""
    stop = paused(campaign, state)
    if stop is not None or campaign is None:
        return stop
    return (
        expired(campaign, send, at)
        or dismissed(campaign, segments, profile, at)
        or unreachable(profile)
        or capped(campaign, user, at)
        or quiet_hours(campaign, profile, at)
    )
