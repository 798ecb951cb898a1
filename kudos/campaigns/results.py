"""Campaign results kept on the send records (campaigns.md "Results"): deliveries, direct and
influenced opens, conversions and opt-outs, attributed as the ingest paths see push events,
sessions, custom events and purchases of a user whose partition (sends included) they already read.

Every figure on a send is the earliest instant that counts, merged with min(): replaying an upload,
receiving push events twice or out of order, or a late session arriving after a later one gives the
same records. A direct open wins over an influenced one whenever it arrives.

Attribution reads the sends in hand:
- `delivered`/`opened` with a `send_id`: that send (of a user who was sent it); with only a
  `campaign_id`: the user's latest send of that campaign at the event's time (the latest one
  sent, if all were sent after it). An event naming a send this user does not hold (another
  profile's, or none) counts for nothing here; it stays in the push event log.
- `opted_out` and `token_invalid`: the user's most recent send (any campaign) made before it, if
  within 24 hours; one per user and send.
- a session start: an influenced open of each send with no direct open, sent before it, whose
  influence window it falls in (the window is fixed at send time: see ``influence_window``).
- conversions: the campaign's conversion event, purchase or session within its window after the
  send (or after a held-out trigger's instant, for the control group).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from dsl.campaigns import CompiledCampaign
from dsl.model import ConversionKind
from kudos.campaigns.guardrail import check_guardrails
from kudos.core.identity import UserKey
from kudos.core.profile import Profile
from kudos.core.records import Record, SendRecord, UserRecords, send_key
from kudos.core.timeutil import SECONDS_PER_DAY
from kudos.ingest.updates import Change, UsersInHand
from kudos.store.ports import Slot, Storage

OPT_OUT_ATTRIBUTION_SECONDS = 24 * 3600
MIN_INFLUENCE_SECONDS = 30 * 60
MAX_INFLUENCE_SECONDS = 24 * 3600
INFLUENCE_HISTORY_DAYS = 30


@dataclass(frozen=True, slots=True)
class PushSignal:
    type: str  # delivered, opened, opted_out, token_invalid
    time: float
    campaign_id: str | None = None
    send_id: str | None = None


@dataclass(slots=True)
class Signals:
    """What one ingest call saw of one user that results may count."""

    session_starts: list[float] = field(default_factory=list)
    events: list[tuple[str, float]] = field(default_factory=list)  # (name, time)
    purchases: list[float] = field(default_factory=list)
    push: list[PushSignal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.session_starts or self.events or self.purchases or self.push)


def influence_window(profile: Profile, sent_at: float) -> float:
    """campaigns.md: the larger of 30 minutes and half the user's mean gap between sessions over the
    30 days before the send (30 minutes with fewer than 2 sessions), at most 24 hours.

    Profiles keep sessions per day, not each start: the mean gap is the 30 days over the number of
    sessions in them, which is the mean gap of sessions spread over that period."""
    last_day = int(sent_at // SECONDS_PER_DAY)
    sessions = profile.sessions.in_window(last_day - INFLUENCE_HISTORY_DAYS + 1, last_day)
    if sessions < 2:
        return MIN_INFLUENCE_SECONDS
    mean_gap = INFLUENCE_HISTORY_DAYS * SECONDS_PER_DAY / sessions
    return min(MAX_INFLUENCE_SECONDS, max(MIN_INFLUENCE_SECONDS, mean_gap / 2))


def _earliest(current: float | None, candidate: float) -> float:
    return candidate if current is None else min(current, candidate)


def is_sent(send: SendRecord) -> bool:
    """Whether the sender made this push (sent, with its instant)."""
    return send.status == "sent" and send.sent_at is not None


def _target_of_push(sends: list[SendRecord], signal: PushSignal) -> SendRecord | None:
    if signal.type in ("opted_out", "token_invalid"):
        earlier = [
            send
            for send in sends
            if is_sent(send)
            and send.sent_at is not None
            and send.sent_at < signal.time <= send.sent_at + OPT_OUT_ATTRIBUTION_SECONDS
        ]
        return max(earlier, key=lambda send: (send.sent_at or 0.0, send.send_id), default=None)
    if signal.send_id is not None:
        named = next((send for send in sends if send.send_id == signal.send_id), None)
        return named if named is not None and is_sent(named) else None
    of_campaign = [send for send in sends if send.campaign == signal.campaign_id and is_sent(send)]
    before = [send for send in of_campaign if (send.sent_at or 0.0) <= signal.time]
    return max(before or of_campaign, key=lambda send: (send.sent_at or 0.0, send.send_id), default=None)


def _conversion_start(send: SendRecord) -> float | None:
    """The instant a conversion is counted from: the send, or a held-out trigger's would-be send."""
    if send.status == "held_out":
        return send.triggered_at
    return send.sent_at if is_sent(send) else None


def _converts(
    campaign: CompiledCampaign, kind: ConversionKind, name: str | None, start: float, at: float
) -> bool:
    conversion = campaign.conversion
    if conversion is None or conversion.kind is not kind:
        return False
    if kind is ConversionKind.EVENT and (
        conversion.event_name is None or conversion.event_name.value != name
    ):
        return False
    return start < at <= start + conversion.window.seconds


def attribute(
    send: SendRecord, campaign: CompiledCampaign | None, signals: Signals, targets: Sequence[str | None]
) -> SendRecord:
    """``send`` with what ``signals`` add to its results (a copy; equal when they add nothing).
    ``targets``: the send id each push signal was attributed to (``push_targets``)."""
    result = replace(send)
    for signal, target in zip(signals.push, targets, strict=True):
        if target != send.send_id:
            continue
        if signal.type == "delivered":
            result.delivered_at = _earliest(result.delivered_at, signal.time)
        elif signal.type == "opened":
            # An open implies the push arrived; and a direct open replaces an influenced one.
            result.delivered_at = _earliest(result.delivered_at, signal.time)
            result.opened_at = (
                signal.time if not result.direct_open else _earliest(result.opened_at, signal.time)
            )
            result.direct_open = True
        else:
            result.opted_out_at = _earliest(result.opted_out_at, signal.time)
    if (
        is_sent(send)
        and not result.direct_open
        and send.sent_at is not None
        and send.influence_until is not None
    ):
        for session_start in signals.session_starts:
            if send.sent_at < session_start <= send.influence_until:
                result.opened_at = _earliest(result.opened_at, session_start)
    start = _conversion_start(send)
    if campaign is not None and start is not None:
        moments: list[tuple[ConversionKind, str | None, float]]
        moments = [(ConversionKind.SESSION, None, at) for at in signals.session_starts]
        moments += [(ConversionKind.EVENT, name, at) for name, at in signals.events]
        moments += [(ConversionKind.PURCHASE, None, at) for at in signals.purchases]
        for kind, name, at in moments:
            if _converts(campaign, kind, name, start, at):
                result.converted_at = _earliest(result.converted_at, at)
    return result


def result_changes(
    user: UserRecords, campaigns: Mapping[str, CompiledCampaign], signals: Signals
) -> dict[Slot, Change]:
    """The send records ``signals`` change, as changes for ``apply_updates``: each recomputed from the
    send as stored when written (a concurrent writer's figures are kept, min-merged)."""
    if not signals or not user.sends:
        return {}
    sends = list(user.sends.values())
    # Which send each push signal is about is decided once, on the sends as read.
    targets = [_target_of_push(sends, signal) for signal in signals.push]
    target_ids = [target.send_id if target is not None else None for target in targets]
    changes: dict[Slot, Change] = {}
    for send in sends:
        campaign = campaigns.get(send.campaign)
        if attribute(send, campaign, signals, target_ids) == send:
            continue
        changes[(user.key, send_key(send.send_id))] = _recompute(campaign, signals, target_ids)
    return changes


def _recompute(
    campaign: CompiledCampaign | None, signals: Signals, targets: Sequence[str | None]
) -> Callable[[Record | None], Record | None]:
    def change(stored: Record | None) -> Record | None:
        if not isinstance(stored, SendRecord):
            return None
        # The figures merge into the send as stored (a concurrent writer's are kept).
        updated = attribute(stored, campaign, signals, targets)
        return None if updated == stored else updated

    return change


def new_opt_outs(before: Mapping[str, SendRecord], after: Mapping[str, SendRecord]) -> list[SendRecord]:
    """The sends that got their opt-out with this call."""
    return [
        send
        for send_id, send in after.items()
        if send.opted_out_at is not None and before.get(send_id, send).opted_out_at is None
    ]


def record_results(
    store: Storage,
    campaigns: Mapping[str, CompiledCampaign],
    in_hand: UsersInHand,
    signals: Mapping[UserKey, Signals],
    at: float,
) -> None:
    """Write what ``signals`` add to the sends of the users in hand, then check the guardrails of the
    campaigns that got an opt-out. Before re-evaluation: opens and conversions feed rules."""
    opted_out: list[SendRecord] = []
    for user, user_signals in signals.items():
        records = in_hand.records.get(user)
        if records is None:
            continue
        changes = result_changes(records, campaigns, user_signals)
        if not changes:
            continue
        before = dict(records.sends)
        in_hand.update(changes, store.users)
        opted_out += new_opt_outs(before, records.sends)
    check_guardrails(store, campaigns, opted_out, at)
