"""Campaign triggers (campaigns.md "Triggers"): entries into an audience, every current member on a
`send on entry` campaign's first sweep, and the scheduled instants of `send daily at` and
`send once at`. Each trigger is one send record, created once (its id is a hash of the trigger),
with its outcome; the queued ones go to the send queue.

None is lost: an entry's triggers are written in the same transaction as the entry itself; a
scheduled firing is finished by the next sweep when one crashes midway (records already made are
refused as duplicates); a queued send whose message was lost is queued again by the sweep once its
pending instant has passed (campaigns.sweep_pending).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from dsl import SegmentSet
from dsl.campaigns import CompiledCampaign
from dsl.model import SendDaily, SendOnce, SendOnEntry
from kudos.campaigns.rules import Stop, paused, send_id_for, trigger_stop
from kudos.core.identity import UserKey
from kudos.core.records import SendRecord, TriggerKind, UserRecords
from kudos.core.timeutil import SECONDS_PER_DAY
from kudos.store.ports import CampaignState, QueuedSend, Storage

# A queued send not taken by the sender within this time is queued again by a sweep (its message was
# lost, or the call that queued it crashed first). The sender ignores the duplicate of a send it made.
REQUEUE_AFTER_SECONDS = 120
_MEMBERS_PAGE = 500


def new_trigger(
    campaign: CompiledCampaign,
    state: CampaignState | None,
    user: UserRecords,
    kind: TriggerKind,
    instant: float,
    at: float,
) -> SendRecord:
    """The record of one trigger, its outcome decided at ``at`` from the records in hand."""
    stop = trigger_stop(campaign, state, user, user.to_profile(), at)
    return _trigger(campaign, user.key, kind, instant, at, stop)


def _trigger(
    campaign: CompiledCampaign, user: UserKey, kind: TriggerKind, instant: float, at: float, stop: Stop | None
) -> SendRecord:
    send = SendRecord(
        send_id=send_id_for(campaign.name, user, instant),
        campaign=campaign.name,
        trigger=kind,
        triggered_at=at,
        status=stop.status if stop is not None else "queued",
        reason=stop.reason if stop is not None else None,
    )
    if send.status == "queued":
        send.pending_at = at + REQUEUE_AFTER_SECONDS
    return send


class CampaignStates:
    """Campaign states read at most once per call (one strongly consistent read each)."""

    def __init__(self, store: Storage) -> None:
        self._store = store
        self._read: dict[str, CampaignState | None] = {}

    def get(self, name: str) -> CampaignState | None:
        if name not in self._read:
            self._read[name] = self._store.campaigns.state(name)
        return self._read[name]


def entry_triggers(
    segments: SegmentSet, states: CampaignStates, user: UserRecords, segment: str, at: float
) -> list[SendRecord]:
    """The triggers a user's entry into ``segment`` at ``at`` fires: one per `send on entry`
    campaign with that audience."""
    return [
        new_trigger(campaign, states.get(campaign.name), user, "entry", at, at)
        for campaign in segments.campaigns.values()
        if campaign.audience == segment and isinstance(campaign.trigger, SendOnEntry)
    ]


def queue_sends(store: Storage, sends: Iterable[tuple[UserKey, SendRecord]], at: float) -> None:
    queued = [QueuedSend(user, send.send_id, at) for user, send in sends if send.status == "queued"]
    if queued:
        store.send_queue.enqueue(queued)


@dataclass(slots=True)
class FiringResult:
    triggers: int = 0
    queued: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


Reevaluate = Callable[[UserRecords], object]


def fire_campaigns(
    store: Storage, segments: SegmentSet, at: float, reevaluate: Reevaluate, previous_sweep: float | None
) -> FiringResult:
    """A sweep's part in triggers: note newly deployed campaigns, give a `send on entry` campaign's
    current members their first trigger, and fire the scheduled instants that have come.
    ``reevaluate`` re-evaluates a user whose messaging history a trigger changed (held out);
    ``previous_sweep``: the last recorded sweep's instant (None: this is the first)."""
    result = FiringResult()
    states = store.campaigns.states()
    for name, campaign in segments.campaigns.items():
        state = states.get(name)
        if state is None:
            # Deployed since the last sweep, at the latest now: scheduled instants from then on fire.
            first_seen = min(previous_sweep, at) if previous_sweep is not None else at
            state = _saved(store, CampaignState(name, first_seen=first_seen))
        trigger = campaign.trigger
        if isinstance(trigger, SendOnEntry):
            if state.initial_done:
                continue
            if state.initial_at is None:
                state = _saved(store, replace(state, initial_at=at))
            assert state.initial_at is not None
            _fire(store, segments, campaign, state, "initial", state.initial_at, at, result, reevaluate)
            _saved(store, replace(state, initial_done=True))
            continue
        instant = _latest_scheduled(trigger, at)
        if instant is None or instant < state.first_seen:
            continue
        if state.last_fired is not None and instant <= state.last_fired:
            continue
        _fire(store, segments, campaign, state, "scheduled", instant, at, result, reevaluate)
        _saved(store, replace(state, last_fired=instant))
    return result


def _latest_scheduled(trigger: SendDaily | SendOnce, at: float) -> float | None:
    """The latest scheduled instant at or before ``at`` (None: none yet)."""
    if isinstance(trigger, SendOnce):
        instant = trigger.at.epoch
        return instant if instant <= at else None
    minute = trigger.time.minute_of_day
    if minute is None:
        return None
    today = at - at % SECONDS_PER_DAY + minute * 60
    return today if today <= at else today - SECONDS_PER_DAY


def _saved(store: Storage, state: CampaignState) -> CampaignState:
    """Save ``state``; on a conflict (another sweep got there), what is stored wins."""
    if store.campaigns.save_state(state):
        return replace(state, version=state.version + 1)
    stored = store.campaigns.state(state.name)
    assert stored is not None, "a conflicting write left a state"
    return stored


def _fire(
    store: Storage,
    segments: SegmentSet,
    campaign: CompiledCampaign,
    state: CampaignState,
    kind: TriggerKind,
    instant: float,
    at: float,
    result: FiringResult,
    reevaluate: Reevaluate,
) -> None:
    # A paused campaign's scheduled trigger is `paused` whoever the member is (the first trigger
    # rule): it is written without reading the member, unless one is there already.
    stop = paused(campaign, state) if kind == "scheduled" else None
    after: UserKey | None = None
    while True:
        page = store.memberships.members(campaign.audience, _MEMBERS_PAGE, after)
        if not page:
            return
        after = page[-1]
        made: list[tuple[UserKey, SendRecord]] = []
        for key in page:
            if stop is not None:
                send = _trigger(campaign, key, kind, instant, at, stop)
                if store.users.save(key, send):
                    made.append((key, send))
                    continue
                # One is there already, from a sweep that did not finish: it decides, as below.
            user = store.users.load_user(key)
            earlier = user.sends.get(send_id_for(campaign.name, key, instant))
            if earlier is not None:
                # Fired before, by a sweep that did not finish, perhaps before the re-evaluation.
                if earlier.status == "held_out":
                    reevaluate(user)
                continue
            if kind == "initial" and user.sends_of(campaign.name):
                continue  # campaigns.md: each current member *without a trigger of it* gets one
            send = new_trigger(campaign, state, user, kind, instant, at)
            if not store.users.save(key, send):
                continue  # fired at the same time by an overlapping sweep
            made.append((key, send))
            if send.status == "held_out":
                user.add(send)
                reevaluate(user)
        for _, send in made:
            result.triggers += 1
            result.by_status[send.status] = result.by_status.get(send.status, 0) + 1
        queue_sends(store, made, at)
        result.queued += sum(1 for _, send in made if send.status == "queued")


def sweep_pending(store: Storage, at: float) -> int:
    """Queue again, with the sweep's instant as their clock, the sends whose pending instant has come:
    held ones whose quiet hours are over, and queued ones whose message was lost. Each gets a new
    pending instant first, so that the next sweep does not queue it again while it waits."""
    requeued: list[QueuedSend] = []
    for key, send_id in store.campaigns.pending(at):
        user = store.users.load_user(key)
        send = user.sends.get(send_id)
        if send is None or not send.pending:
            continue
        if store.users.save(key, replace(send, pending_at=at + REQUEUE_AFTER_SECONDS)):
            requeued.append(QueuedSend(key, send_id, at))
    if requeued:
        store.send_queue.enqueue(requeued)
    return len(requeued)


__all__ = [
    "REQUEUE_AFTER_SECONDS",
    "CampaignStates",
    "FiringResult",
    "entry_triggers",
    "fire_campaigns",
    "new_trigger",
    "queue_sends",
    "sweep_pending",
]
