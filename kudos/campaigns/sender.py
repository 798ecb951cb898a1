"""The sender (campaigns.md "Sending"): takes a queued send, checks it again, renders the push and
publishes it to each of the user's valid, enabled tokens.

At most once: the send is recorded `sent` with reason `unconfirmed` *before* the first publish, under
optimistic concurrency, so a redelivered message, a second sender or a retry after a crash finds it
no longer queued and publishes nothing. After publishing, the reason is cleared. A crash between
the two leaves `unconfirmed`, as campaigns.md asks, rather than risk a second push. So does a publish
that raised anything but PushRefused: it may have reached the service (a timeout after the push went
out); only a refusal says that nothing did, and only then is the send given back to the queue.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Protocol

from dsl import SegmentSet
from dsl.campaigns import CompiledCampaign, RenderedPush, template_values
from dsl.templates import TemplateRenderError
from kudos.campaigns.results import PushSignal, Signals, influence_window, result_changes
from kudos.campaigns.rules import Stop, send_stop
from kudos.campaigns.triggers import REQUEUE_AFTER_SECONDS
from kudos.core.clock import Clock
from kudos.core.records import UNCONFIRMED, SendRecord, TokenRecord, UserRecords
from kudos.core.timeutil import day_of
from kudos.ingest.updates import ConcurrentUpdateError, apply_updates
from kudos.store.ports import PushEvent, PushMessage, PushPort, PushRefused, QueuedSend, Storage

MAX_ATTEMPTS = 4
# Push events recorded by the sender (a token found gone) are kept as long as the ones apps send.
PUSH_EVENT_RETENTION_SECONDS = 120 * 86_400


class Reevaluate(Protocol):
    def __call__(self, user: UserRecords, at: float) -> object: ...


def deliver(
    store: Storage,
    push: PushPort,
    segments: SegmentSet,
    message: QueuedSend,
    clock: Clock,
    reevaluate: Reevaluate,
) -> SendRecord | None:
    """Take one queued send; the send as it now stands (None: no such send, e.g. its user was
    deleted). ``reevaluate`` re-evaluates the user's segments after a push was sent, and again on a
    redelivery of a send already sent. ConcurrentUpdateError when the send kept changing under us:
    nothing was published, retry."""
    at = max(clock(), message.at)
    for _ in range(MAX_ATTEMPTS):
        user = _load(store, message)
        send = user.sends.get(message.send_id) if user is not None else None
        if user is None or send is None:
            return send
        if not send.pending:
            if send.status == "sent":
                # Made already, by a sender that may have died before re-evaluating the user whose
                # messaging history the send changed: this redelivery does it (only differences are written).
                reevaluate(user, at)
            return send
        outcome = _decide(store, segments, user, send, at)
        if outcome is None:
            return send  # waiting for its `rate`: queued again for the next minute
        if isinstance(outcome, SendRecord):
            if store.users.save(user.key, outcome):
                return outcome
            continue  # another sender or a sweep changed it: look again
        campaign, rendered, influence_until = outcome
        # Endpoints are made before the claim, so that nothing but the publish itself lies between
        # the claim and the publish: a sender that dies making one leaves the send queued, not
        # `unconfirmed` with nothing pushed.
        targets = _targets(store, push, user)
        claimed = replace(
            send,
            status="sent",
            reason=UNCONFIRMED,
            sent_at=at,
            pending_at=None,
            title=rendered.title,
            body=rendered.body,
            influence_until=influence_until,
        )
        if not store.users.save(user.key, claimed):
            continue
        final = _publish(store, push, user, campaign, claimed, rendered, targets, at, reevaluate)
        if any(not token.valid for token, _ in targets):
            _attribute_gone_tokens(store, segments, user, at)
        return final
    # The message is retried (SQS redelivers it): nothing was published.
    raise ConcurrentUpdateError(f"send {message.send_id} kept changing under the sender")


def _load(store: Storage, message: QueuedSend) -> UserRecords | None:
    user = store.users.load_user(message.user)
    if message.send_id in user.sends or not message.user.anonymous:
        return user
    # Identify merged the anonymous profile (and its sends) into a user since the send was queued.
    target = store.pointers.resolve_anonymous([message.user]).get(message.user)
    return store.users.load_user(target) if target is not None else user


def _decide(
    store: Storage, segments: SegmentSet, user: UserRecords, send: SendRecord, at: float
) -> SendRecord | tuple[CompiledCampaign, RenderedPush, float] | None:
    """The send with its final status when a rule stops it; the push to publish, and the end of its
    influence window, when none does; None when the campaign's rate makes it wait (queued again)."""
    campaign = segments.campaigns.get(send.campaign)
    profile = user.to_profile()
    stop = send_stop(campaign, store.campaigns.state(send.campaign), segments, user, profile, send, at)
    if stop is not None:
        return _stopped(send, stop)
    assert campaign is not None  # send_stop stops the send of a removed campaign
    try:
        rendered = campaign.render_push(template_values(profile, at))
    except TemplateRenderError as error:
        return _stopped(send, Stop("failed", str(error)))
    rate = campaign.rate_per_minute
    if rate is not None and not store.campaigns.take_rate_slot(send.campaign, int(at // 60), rate):
        wait = math.ceil(60 - at % 60)
        store.send_queue.enqueue([QueuedSend(user.key, send.send_id, at + wait)], delay_seconds=wait)
        return None
    return campaign, rendered, at + influence_window(profile, at)


def _stopped(send: SendRecord, stop: Stop) -> SendRecord:
    if stop.status == "held":
        return replace(send, status="held", reason=stop.reason, pending_at=stop.until)
    return replace(send, status=stop.status, reason=stop.reason, pending_at=None)


def _targets(store: Storage, push: PushPort, user: UserRecords) -> list[tuple[TokenRecord, str | None]]:
    """The user's valid, enabled tokens, each token once (even when two devices report the same one),
    with its endpoint, made now if it has none (None: the push service refused the token)."""
    targets: list[tuple[TokenRecord, str | None]] = []
    seen: set[str] = set()
    for token in sorted(user.tokens.values(), key=lambda token: token.device_id):
        if not token.usable or token.token in seen:
            continue
        seen.add(token.token)
        if token.endpoint is None:
            endpoint = push.endpoint(token.platform, token.token)
            if endpoint is not None:
                # Kept with the token, so the endpoint is made once (best effort: a lost race makes it again).
                token.endpoint = endpoint
                store.users.save(user.key, token)
        targets.append((token, token.endpoint))
    return targets


def _publish(
    store: Storage,
    push: PushPort,
    user: UserRecords,
    campaign: CompiledCampaign,
    claimed: SendRecord,
    rendered: RenderedPush,
    targets: list[tuple[TokenRecord, str | None]],
    at: float,
    reevaluate: Reevaluate,
) -> SendRecord:
    message = PushMessage(
        campaign.name, claimed.send_id, rendered.title, rendered.body, rendered.deep_link, rendered.image
    )
    accepted = gone = 0
    for token, endpoint in targets:
        try:
            result = "gone" if endpoint is None else push.publish(endpoint, token.platform, message)
        except PushRefused:
            if accepted or gone:
                raise  # something was published: the send stays `sent`, unconfirmed
            # Nothing went out: give the send back to the queue, and let SQS retry the message.
            store.users.save(
                user.key,
                replace(
                    claimed,
                    status="queued",
                    reason=None,
                    sent_at=None,
                    pending_at=at + REQUEUE_AFTER_SECONDS,
                    title=None,
                    body=None,
                ),
            )
            raise
        if result == "accepted":
            accepted += 1
        else:
            gone += 1
            _token_gone(store, user, token, at)
    final = (
        replace(claimed, status="unreachable", reason="every token was rejected as gone", sent_at=None)
        if gone and not accepted
        else replace(claimed, reason=None)
    )
    if store.users.save(user.key, final):
        user.add(final)
    reevaluate(user, at)
    return final


def _attribute_gone_tokens(store: Storage, segments: SegmentSet, user: UserRecords, at: float) -> None:
    """A token found gone is an opt-out of the user's most recent *earlier* send (campaigns.md
    "Results"), not of the send that found it: recorded on that send now. Its campaign's guardrail
    counts it at the next opt-out the ingest path records for the campaign (the sender reads no
    campaign-wide figures, so it holds no grant on the sends index)."""
    changes = result_changes(user, segments.campaigns, Signals(push=[PushSignal("token_invalid", at)]))
    for outcome in apply_updates(store.users, changes).values():
        user.add(outcome.after)


def _token_gone(store: Storage, user: UserRecords, token: TokenRecord, at: float) -> None:
    """campaigns.md: the token is marked invalid and a `token_invalid` push event recorded at that instant."""
    token.valid = False
    store.users.save(user.key, token)
    day = day_of(at)
    event = PushEvent(
        event_id=f"{at:.3f}#sender#{token.device_id}",
        day=day,
        type="token_invalid",
        user=user.key,
        time=at,
        device_id=token.device_id,
    )
    store.activity.put_push_event(event, int(at) + PUSH_EVENT_RETENTION_SECONDS)
