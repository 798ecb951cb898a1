"""`guardrail opt_outs above P% after N sends` (campaigns.md "Results"): checked as each opt-out is
recorded, over the campaign's triggers since it was last resumed. Once tripped the campaign is
`paused_by_guardrail`: sends not made yet end `paused` when the sender takes them, and a
"Campaign Paused" event goes to the bus. Losing top users to a campaign stops it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace

from dsl.campaigns import CompiledCampaign
from kudos.core.records import SendRecord
from kudos.store.ports import CampaignState, Storage


def opt_out_figures(store: Storage, campaign: str, since: float) -> tuple[int, int]:
    """(sent, opt-outs) of the campaign's triggers since ``since``."""
    sent = opted_out = 0
    for _, send in store.campaigns.all_sends(campaign, since, math.inf):
        if send.status == "sent":
            sent += 1
            opted_out += send.opted_out_at is not None
    return sent, opted_out


def check_guardrails(
    store: Storage, campaigns: Mapping[str, CompiledCampaign], opted_out: Iterable[SendRecord], at: float
) -> list[CampaignState]:
    """Pause each campaign of these newly opted-out sends whose guardrail trips; the states paused."""
    paused = []
    for name in sorted({send.campaign for send in opted_out}):
        campaign = campaigns.get(name)
        guardrail = campaign.guardrail if campaign is not None else None
        if guardrail is None:
            continue
        state = store.campaigns.state(name) or CampaignState(name, first_seen=at)
        if state.status != "active":
            continue
        sent, opt_outs = opt_out_figures(store, name, state.resumed_at or 0.0)
        limit = guardrail.opt_outs_above
        if sent < guardrail.after_sends or opt_outs / sent <= limit.fraction:
            continue
        reason = (
            f"opt-outs {opt_outs} of {sent} sends ({opt_outs / sent:.1%}) above {limit.text} "
            f"after {guardrail.after_sends} sends"
        )
        tripped = replace(state, status="paused_by_guardrail", since=at, reason=reason)
        if store.campaigns.save_state(tripped):
            store.events.announce_pause(tripped)
            paused.append(tripped)
    return paused
