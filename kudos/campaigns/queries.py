"""Campaigns as the routes and the CLI show them (campaigns.md "Routes"): every campaign with its
status and send counts, one campaign's sends page by page, why a trigger now would or would not send
to one user, and pause / resume.

A campaign is known when it is deployed (a block in the rule files) or has a stored state (a sweep
found it deployed once): a campaign removed from the files stays listed, paused, with its sends.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from dsl import SegmentSet
from dsl.campaigns import CompiledCampaign, template_values
from dsl.model import SendDaily, SendOnce, SendOnEntry, Trigger
from dsl.templates import TemplateRenderError
from kudos.campaigns import rules
from kudos.campaigns.report import campaign_report
from kudos.campaigns.rules import Stop
from kudos.core.errors import BadRequest, NotFound
from kudos.core.identity import UserKey
from kudos.core.profile import Profile
from kudos.core.records import SendRecord, SendStatus, UserRecords
from kudos.core.timeutil import InstantError, format_instant
from kudos.ingest.updates import ConcurrentUpdateError
from kudos.metrics.active_users import query_date
from kudos.segments.queries import (
    EVALUATION_RANGE,
    decode_token,
    encode_token,
    evaluation_instant,
    instant_parameter,
    page_limit,
    source_name,
    user_parameters,
)
from kudos.store.ports import CampaignState, CampaignStatus, Storage

SEND_STATUSES: tuple[SendStatus, ...] = get_args(SendStatus)
# A campaign in the stored states but in no rule file: listed as paused, for this reason.
REMOVED = "removed"
# Pause and resume read, change and write the state under its version; a write that keeps losing
# to other writers (a sweep saving the same campaign) gives up after this many tries.
_STATE_ATTEMPTS = 5
MAX_REASON_LENGTH = 500
# What a campaign name can be (campaigns.md: [a-z][a-z0-9_]*), short enough to be a DynamoDB sort key
# (1024 bytes): a path that cannot name a campaign is a 404 without a read, never a store error.
_POSSIBLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,999}")


def trigger_text(trigger: Trigger) -> str:
    """The trigger line as campaigns.md writes it."""
    if isinstance(trigger, SendOnEntry):
        return "send on entry"
    if isinstance(trigger, SendDaily):
        return f"send daily at {trigger.time.text} UTC"
    assert isinstance(trigger, SendOnce)
    return f"send once at {trigger.at.text}"


def _known(
    store: Storage, segments: SegmentSet, name: str
) -> tuple[CompiledCampaign | None, CampaignState | None]:
    """The campaign's definition (None: removed from the files) and its state; NotFound when neither."""
    _require_possible_name(name)
    campaign = segments.campaigns.get(name)
    state = store.campaigns.state(name)
    if campaign is None and state is None:
        raise NotFound(f"no campaign named {name!r}")
    return campaign, state


def _require_possible_name(name: str) -> None:
    if not _POSSIBLE_NAME.fullmatch(name):
        raise NotFound(f"no campaign named {name!r}")


def _status(campaign: CompiledCampaign | None, state: CampaignState | None) -> dict[str, Any]:
    """status, since and reason as the list shows them."""
    if campaign is None:
        return {"status": "paused", "since": None, "reason": REMOVED}
    if state is None:
        # Deployed, and no sweep has found it yet: active (its triggers start with that sweep).
        return {"status": "active", "since": None, "reason": None}
    since = state.since if state.since is not None else state.first_seen
    return {"status": state.status, "since": format_instant(since), "reason": state.reason}


def send_counts(store: Storage, name: str) -> dict[str, int]:
    """How many of the campaign's triggers stand at each status (the sends index, read in full)."""
    counts: dict[str, int] = dict.fromkeys(SEND_STATUSES, 0)
    for _, send in store.campaigns.all_sends(name, 0.0, EVALUATION_RANGE[1]):
        counts[send.status] = counts.get(send.status, 0) + 1
    return counts


def list_campaigns(store: Storage, segments: SegmentSet, directory: Path) -> dict[str, Any]:
    """GET /v1/campaigns: the deployed campaigns in file order, then those removed from the files."""
    states = store.campaigns.states()
    listed = []
    for name, campaign in segments.campaigns.items():
        listed.append(
            {
                "name": name,
                "title": campaign.title,
                "audience": campaign.audience,
                "trigger": trigger_text(campaign.trigger),
                **_status(campaign, states.get(name)),
                "source": source_name(campaign.file, directory),
                "counts": send_counts(store, name),
            }
        )
    for name in sorted(set(states) - set(segments.campaigns)):
        listed.append(
            {
                "name": name,
                "title": None,
                "audience": None,
                "trigger": None,
                **_status(None, states[name]),
                "source": None,
                "counts": send_counts(store, name),
            }
        )
    return {"campaigns": listed}


# --- sends -------------------------------------------------------------------------------------------


def send_json(user: UserKey | None, send: SendRecord) -> dict[str, Any]:
    """A send as the routes write it; ``user`` None: a deleted user's send, kept for the figures."""
    return {
        "send_id": send.send_id,
        "user": user.identity() if user is not None else None,
        "status": send.status,
        "trigger": send.trigger,
        "triggered_at": format_instant(send.triggered_at),
        "sent_at": format_instant(send.sent_at) if send.sent_at is not None else None,
        "title": send.title,
        "body": send.body,
        "reason": send.reason,
    }


def _newest_first(sends: list[SendRecord]) -> list[SendRecord]:
    return sorted(sends, key=lambda send: (send.triggered_at, send.send_id), reverse=True)


def find_user(store: Storage, key: UserKey) -> UserRecords:
    """The user's records; an anonymous profile that identify merged into a user answers as that user
    (its messaging history went with it, campaigns.md "Identity"). NotFound when there is none."""
    user = store.users.load_user(key)
    if not user.exists and key.anonymous:
        target = store.pointers.resolve_anonymous([key]).get(key)
        if target is not None:
            user = store.users.load_user(target)
    if not user.exists:
        raise NotFound(f"no user with {key.describe()}")
    return user


def _send_cursor(token: str, name: str, user: UserKey | None) -> SendRecord:
    """The last send of the page before, as the store's ``older_than`` takes it."""
    decoded = decode_token(token)
    try:
        send_id, owner = decoded["id"], decoded.get("user")
        if not isinstance(send_id, str) or not 0 < len(send_id) <= 256:
            raise ValueError(send_id)
        at = evaluation_instant(float(decoded["at"]))
    except (ValueError, KeyError, TypeError, InstantError):
        raise BadRequest("next: not a token this API returned") from None
    if owner != (user.token if user is not None else None):
        raise BadRequest("next: the token belongs to another user_id or device_id")
    return SendRecord(send_id=send_id, campaign=name, trigger="entry", triggered_at=at, status="queued")


def campaign_sends(
    store: Storage,
    segments: SegmentSet,
    name: str,
    user_id: str | None,
    device_id: str | None,
    limit_text: str | None,
    next_token: str | None,
) -> dict[str, Any]:
    """GET /v1/campaigns/{name}/sends: one record per trigger, newest first, paged; with a user,
    only that user's."""
    _known(store, segments, name)
    limit = page_limit(limit_text)
    key = user_parameters(user_id, device_id, required=False)
    user = find_user(store, key) if key is not None else None
    owner = user.key if user is not None else None
    cursor = _send_cursor(next_token, name, key) if next_token else None
    found: list[tuple[UserKey | None, SendRecord]]
    if user is None:
        # One more than the page: whether there is a next page, without a second Query.
        found = store.campaigns.sends(name, limit=limit + 1, older_than=cursor)
    else:
        mine = _newest_first(user.sends_of(name))
        if cursor is not None:
            bound = (cursor.triggered_at, cursor.send_id)
            mine = [send for send in mine if (send.triggered_at, send.send_id) < bound]
        found = [(user.key, send) for send in mine[: limit + 1]]
    page = found[:limit]
    last = page[-1][1] if page else None
    return {
        "campaign": name,
        **({"user": owner.identity()} if owner is not None else {}),
        "sends": [send_json(who, send) for who, send in page],
        "next": encode_token(
            {"at": last.triggered_at, "id": last.send_id, "user": key.token if key is not None else None}
        )
        if last is not None and len(found) > limit
        else None,
    }


# --- explain -----------------------------------------------------------------------------------------

# The rules a trigger now goes through, in campaigns.md's order: the trigger's, then the sender's
# (`expire after` is left out: a trigger now is never expired).
RULE_ORDER = (
    "paused",
    "not_eligible",
    "unreachable",
    "held_out",
    "dismissed",
    "capped",
    "quiet_hours",
    "render",
)
# The rule each outcome comes from (a rule is named by its status, but for quiet hours and rendering).
RULE_OF_STATUS: dict[str, str] = {
    **{rule: rule for rule in RULE_ORDER},
    "expired": "expired",
    "held": "quiet_hours",
    "failed": "render",
}


def _seen_json(rule: str, seen: object) -> object:
    if rule == "not_eligible" and isinstance(seen, int | float) and not isinstance(seen, bool):
        return format_instant(float(seen))  # the last trigger that counts for eligibility
    if isinstance(seen, float) and not math.isfinite(seen):
        return None
    return seen


def _rule_json(rule: str, stop: Stop | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "rule": rule,
        "stops": stop is not None,
        "status": stop.status if stop is not None else None,
        "reason": stop.reason if stop is not None else None,
        "seen": _seen_json(rule, stop.seen) if stop is not None else None,
    }
    if stop is not None and stop.until is not None:
        found["until"] = format_instant(stop.until)
    return found


def _render(
    campaign: CompiledCampaign, profile: Profile, at: float
) -> tuple[dict[str, Any] | None, Stop | None]:
    try:
        push = campaign.render_push(template_values(profile, at))
    except TemplateRenderError as error:
        return None, Stop("failed", str(error))
    return {"title": push.title, "body": push.body, "deep_link": push.deep_link, "image": push.image}, None


def explain_campaign(
    store: Storage,
    segments: SegmentSet,
    now: float,
    name: str,
    user_id: str | None,
    device_id: str | None,
    at_text: str | None,
) -> dict[str, Any]:
    """GET /v1/campaigns/{name}/explain: the user's sends of the campaign, and whether a trigger at
    ``at`` (default now) would send: every rule in order, the first that stops it, and the push."""
    campaign, state = _known(store, segments, name)
    key = user_parameters(user_id, device_id, required=True)
    assert key is not None
    at = instant_parameter("at", at_text, now)
    user = find_user(store, key)
    profile = user.to_profile()
    checked: list[tuple[str, Stop | None]] = [("paused", rules.paused(campaign, state))]
    push: dict[str, Any] | None = None
    stop: Stop | None = checked[0][1]
    if campaign is not None:
        push, render_stop = _render(campaign, profile, at)
        checked += [
            ("not_eligible", rules.not_eligible(campaign, user, at)),
            ("unreachable", rules.unreachable(profile)),
            ("held_out", rules.held_out(campaign, user)),
            ("dismissed", rules.dismissed(campaign, segments, profile, at)),
            ("capped", rules.capped(campaign, user, at)),
            ("quiet_hours", rules.quiet_hours(campaign, profile, at)),
            ("render", render_stop),
        ]
        # The decision itself is the one the trigger path and the sender take (rules.trigger_stop,
        # rules.send_stop); the list above shows every rule's own answer beside it.
        trigger = SendRecord(
            send_id=rules.send_id_for(name, user.key, at),
            campaign=name,
            trigger="entry",
            triggered_at=at,
            status="queued",
        )
        stop = (
            rules.trigger_stop(campaign, state, user, profile, at)
            or rules.send_stop(campaign, state, segments, user, profile, trigger, at)
            or render_stop
        )
    return {
        "campaign": name,
        "user": user.key.identity(),
        "at": format_instant(at),
        **_status(campaign, state),
        "would_send": stop is None,
        "stop": _rule_json(RULE_OF_STATUS[stop.status], stop) if stop is not None else None,
        "rules": [_rule_json(rule, found) for rule, found in checked],
        "push": push,
        "history": [send_json(user.key, send) for send in _newest_first(user.sends_of(name))],
    }


# --- pause and resume --------------------------------------------------------------------------------


def _pause_reason(body: Any) -> str | None:
    """The optional `reason` of a pause request's body (`{"reason": "..."}`; no body: none)."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object or empty")
    reason = body.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise BadRequest("reason: expected a string")
    if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise BadRequest(f"reason: expected 1 to {MAX_REASON_LENGTH} characters")
    return reason


def _deployed(store: Storage, segments: SegmentSet, name: str) -> None:
    _require_possible_name(name)
    if name in segments.campaigns:
        return
    if store.campaigns.state(name) is not None:
        raise NotFound(
            f"campaign {name!r} is no longer in the rule files: it sends nothing, and its sends stay readable"
        )
    raise NotFound(f"no campaign named {name!r}")


def _change_state(
    store: Storage, now: float, name: str, status: CampaignStatus, reason: str | None
) -> dict[str, Any]:
    pause = status != "active"
    for _ in range(_STATE_ATTEMPTS):
        state = store.campaigns.state(name)
        if state is None:
            if not pause:
                # No sweep has found it yet, and nobody paused it: it is active already.
                return {"campaign": name, "status": "active", "since": None, "reason": None, "changed": False}
            # Its state starts here, deployed since the last sweep at the latest, as the sweep itself
            # would record it (kudos.campaigns.triggers.fire_campaigns).
            last_sweep = store.figures.last_sweep()
            state = CampaignState(name, first_seen=min(last_sweep.at, now) if last_sweep is not None else now)
        elif (state.status != "active") == pause:
            # Idempotent: pausing a paused campaign (by hand or by its guardrail), or resuming an
            # active one, changes nothing.
            return _changed_json(state, changed=False)
        new = replace(state, status=status, since=now, reason=reason)
        if not pause:
            new = replace(new, resumed_at=now)  # the guardrail counts from the last resume
        if store.campaigns.save_state(new):
            return _changed_json(new, changed=True)
    raise ConcurrentUpdateError(f"the state of campaign {name} kept changing")


def _changed_json(state: CampaignState, *, changed: bool) -> dict[str, Any]:
    since = state.since if state.since is not None else state.first_seen
    return {
        "campaign": state.name,
        "status": state.status,
        "since": format_instant(since),
        "reason": state.reason,
        "changed": changed,
    }


def pause_campaign(store: Storage, segments: SegmentSet, now: float, name: str, body: Any) -> dict[str, Any]:
    """POST /v1/campaigns/{name}/pause: triggers and queued sends end `paused` until it is resumed."""
    reason = _pause_reason(body)
    _deployed(store, segments, name)
    return _change_state(store, now, name, "paused", reason)


def resume_campaign(store: Storage, segments: SegmentSet, now: float, name: str) -> dict[str, Any]:
    """POST /v1/campaigns/{name}/resume: active again, whether it was paused by hand or by its guardrail."""
    _deployed(store, segments, name)
    return _change_state(store, now, name, "active", None)


def report_campaign(
    store: Storage, segments: SegmentSet, name: str, date_from: str | None, date_to: str | None
) -> dict[str, Any]:
    """GET /v1/campaigns/{name}/report?from=YYYY-MM-DD&to=YYYY-MM-DD: both optional (the campaign's
    whole life), triggers and sends counted by the UTC day of their trigger."""
    campaign, state = _known(store, segments, name)
    first = query_date("from", date_from) if date_from is not None else None
    last = query_date("to", date_to) if date_to is not None else None
    if first is not None and last is not None and first > last:
        raise BadRequest("from: after to")
    return campaign_report(store, name, campaign, state, first, last)
