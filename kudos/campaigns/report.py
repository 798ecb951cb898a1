"""A campaign's report (campaigns.md "Routes": GET /v1/campaigns/{name}/report): every trigger's
outcome and the results kept on its send record, in total and per UTC day of the trigger.

Computed from the stored send records alone (the sends index, one Query), so that the figures stay
exact however push events, sessions and events arrived (kudos.campaigns.results merges each into
the send it belongs to, idempotently)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dsl.campaigns import CompiledCampaign
from kudos.campaigns.lift import lift
from kudos.core.records import SendRecord
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, format_day, format_instant
from kudos.store.ports import CampaignState, Storage

OUTCOMES = (
    "queued",
    "held",
    "held_out",
    "not_eligible",
    "paused",
    "dismissed",
    "unreachable",
    "capped",
    "expired",
    "failed",
    "sent",
)
RESULTS = (
    "delivered",
    "direct_opens",
    "influenced_opens",
    "opens",
    "conversions",
    "control_conversions",
    "opt_outs",
)


@dataclass(slots=True)
class Tally:
    """The counts of one period (the whole report, or one day)."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("triggers", *OUTCOMES, *RESULTS), 0)
    )

    def add(self, send: SendRecord) -> None:
        counts = self.counts
        counts["triggers"] += 1
        counts[send.status] += 1
        if send.status == "held_out":
            counts["control_conversions"] += send.converted_at is not None
            return
        if send.status != "sent":
            return
        counts["delivered"] += send.delivered_at is not None
        if send.opened_at is not None:
            counts["opens"] += 1
            counts["direct_opens" if send.direct_open else "influenced_opens"] += 1
        counts["conversions"] += send.converted_at is not None
        counts["opt_outs"] += send.opted_out_at is not None

    def to_json(self, measures_conversions: bool) -> dict[str, Any]:
        counts = dict(self.counts)
        figures: dict[str, Any] = dict(counts)
        sent, held_out = counts["sent"], counts["held_out"]
        if measures_conversions:
            figures["conversion_rate"] = _rate(counts["conversions"], sent)
            figures["control_conversion_rate"] = _rate(counts["control_conversions"], held_out)
            measured = lift(counts["conversions"], sent, counts["control_conversions"], held_out)
            figures["lift"] = (
                None
                if measured is None
                else {
                    "absolute": round(measured.absolute, 6),
                    "ci95": [round(measured.ci95[0], 6), round(measured.ci95[1], 6)],
                    "minimum_detectable": round(measured.mde, 6) if measured.mde is not None else None,
                    "verdict": measured.verdict,
                }
            )
        else:
            # campaigns.md: without a `conversion` line the conversion figures and lift are null.
            for name in ("conversions", "control_conversions"):
                figures[name] = None
            figures["conversion_rate"] = figures["control_conversion_rate"] = figures["lift"] = None
        figures["opt_out_rate"] = _rate(counts["opt_outs"], sent)
        return figures


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def tally_by_day(sends: Iterable[SendRecord]) -> tuple[Tally, dict[int, Tally]]:
    total = Tally()
    days: dict[int, Tally] = {}
    for send in sends:
        total.add(send)
        days.setdefault(day_of(send.triggered_at), Tally()).add(send)
    return total, days


def campaign_report(
    store: Storage,
    name: str,
    campaign: CompiledCampaign | None,
    state: CampaignState | None,
    first_day: int | None,
    last_day: int | None,
) -> dict[str, Any]:
    """The report of campaign ``name`` over the UTC days first_day..last_day (None: no bound)."""
    since = first_day * SECONDS_PER_DAY if first_day is not None else 0.0
    until = (last_day + 1) * SECONDS_PER_DAY if last_day is not None else math.inf
    total, days = tally_by_day(send for _, send in store.campaigns.all_sends(name, since, until))
    measures = campaign is not None and campaign.conversion is not None
    status = state.status if state is not None else "active"
    if campaign is None:
        status = "paused"
    report: dict[str, Any] = {
        "campaign": name,
        "status": status,
        "since": format_instant(state.since) if state is not None and state.since is not None else None,
        "reason": state.reason if state is not None else None,
        **total.to_json(measures),
    }
    report["days"] = [{"date": format_day(day), **days[day].to_json(measures)} for day in sorted(days)]
    return report
