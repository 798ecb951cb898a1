"""Segment rule evaluation: compiled closures vs handwritten Python lambdas vs the rule-engine package.

Ten realistic rules over random in-memory profiles (no storage: this measures the rule engine
alone). Each rule is written three times, with the same meaning: in the segment language (compiled
by dsl), as a Python lambda the way an engineer would write it by hand, and as a rule-engine rule
whose symbols a resolver reads from the profile. All three must agree on every profile measured;
then the three are timed interleaved over the same profiles (bench/stats.py) and the time per
evaluation is printed with the ratios, medians with their range. The lambdas test their clauses
in the order the compiler does (cheap reads first, window sums last), as an engineer who cared
would write them; the rule-engine rules are compiled once, outside the timing. Goals: at most 1.5x the lambdas, at least
10x faster than rule-engine, at least 100k users a second on one core for all ten rules together.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import rule_engine

from bench import stats
from dsl import EvalContext, SegmentSet, compile_sources
from kudos.core.profile import AttributeInstant, CampaignHistory, DailyCounts, EventStats, Profile
from kudos.core.timeutil import SECONDS_PER_DAY, day_of, parse_instant

AT = parse_instant("2026-11-22T12:00:00Z")
AT_DAY = day_of(AT)
DAY = float(SECONDS_PER_DAY)
GOAL_VS_LAMBDA = 1.5
GOAL_VS_RULE_ENGINE = 10.0
GOAL_USERS_PER_SECOND = 100_000

Handwritten = Callable[[Profile, float, int], bool]


def _number(value: object) -> bool:
    return type(value) in (int, float)


@dataclass(frozen=True)
class Rule:
    name: str
    dsl: str
    handwritten: Handwritten
    rule_engine: str  # over the symbols of RuleEngineResolver


# Each lambda tests its clauses in the compiler's order (dsl/compiler.py: plain attributes, then
# look-ups, then hashing, then window sums; ties in source order), so that the comparison is
# between the two ways of evaluating, not between two clause orders.
RULES = [
    Rule(
        "top_users",
        'sessions(last 30 days) >= 12 and last_session >= 7 days ago and push_subscription in ["opted_in",'
        ' "subscribed"] and not attr.is_employee = true',
        lambda p, at, day: (
            p.last_session is not None
            and p.last_session >= at - 7 * 86_400
            and p.push_subscription in ("opted_in", "subscribed")
            and p.custom.get("is_employee") is not True
            and p.sessions.in_window(day - 29, day) >= 12
        ),
        "sessions_30d >= 12 and last_session != null and last_session >= at - 604800"
        ' and push_subscription in ["opted_in", "subscribed"] and not is_employee == true',
    ),
    Rule(
        "lapsing_heavy_users",
        "sessions(last 60 days) >= 20 and last_session < 10 days ago",
        lambda p, at, day: (
            p.last_session is not None
            and p.last_session < at - 10 * 86_400
            and p.sessions.in_window(day - 59, day) >= 20
        ),
        "sessions_60d >= 20 and last_session != null and last_session < at - 864000",
    ),
    Rule(
        "big_spenders",
        "spent(last 90 days) >= 500 or (spent >= 2000 and last_purchase >= 90 days ago)",
        lambda p, at, day: (
            (p.spent_total >= 2000 and p.last_purchase is not None and p.last_purchase >= at - 90 * 86_400)
            or p.spent_in_window(day - 89, day) >= 500
        ),
        "spent_90d >= 500 or (spent >= 2000 and last_purchase != null and last_purchase >= at - 7776000)",
    ),
    Rule(
        "new_users",
        'created_at >= 7 days ago and sessions >= 2 and not received("welcome")',
        lambda p, at, day: (
            p.created_at is not None
            and p.created_at >= at - 7 * 86_400
            and p.sessions.total >= 2
            and not ("welcome" in p.campaigns and p.campaigns["welcome"].received)
        ),
        "created_at != null and created_at >= at - 604800 and sessions >= 2 and not received_welcome",
    ),
    Rule(
        "cart_abandoners",
        'events("added_to_cart", last 7 days) >= 1 and purchases(last 7 days) = 0 and push_enabled = true',
        lambda p, at, day: (
            p.push_enabled
            and "added_to_cart" in p.events
            and p.events["added_to_cart"].counts.in_window(day - 6, day) >= 1
            and p.purchases.in_window(day - 6, day) == 0
        ),
        "added_to_cart_7d >= 1 and purchases_7d == 0 and push_enabled == true",
    ),
    Rule(
        "french_android",
        'country = "FR" and platform = "android" and app_version >= "3.0"',
        lambda p, at, day: (
            p.standard.get("country") == "FR"
            and p.standard.get("platform") == "android"
            and p.standard.get("app_version", "") >= "3.0"
        ),
        'country == "FR" and platform == "android" and app_version != null and app_version >= "3.0"',
    ),
    Rule(
        "paying_teams",
        'attr.plan in ["pro", "enterprise"] and attr.seats >= 10',
        lambda p, at, day: (
            p.custom.get("plan") in ("pro", "enterprise")
            and _number(seats := p.custom.get("seats"))
            and seats >= 10  # type: ignore[operator]
        ),
        'plan in ["pro", "enterprise"] and seats != null and seats >= 10',
    ),
    Rule(
        "dormant",
        'last_session < 30 days ago and sessions >= 5 and email_subscription != "unsubscribed"',
        lambda p, at, day: (
            p.last_session is not None
            and p.last_session < at - 30 * 86_400
            and p.email_subscription != "unsubscribed"
            and p.sessions.total >= 5
        ),
        'last_session != null and last_session < at - 2592000 and sessions >= 5 and email_subscription != "unsubscribed"',
    ),
    Rule(
        "experiment_group",
        "random_bucket < 1000 and sessions(last 7 days) >= 1",
        lambda p, at, day: _bucket(p) < 1000 and p.sessions.in_window(day - 6, day) >= 1,
        "random_bucket < 1000 and sessions_7d >= 1",
    ),
    Rule(
        "engaged_readers",
        'events("article_read", last 14 days) >= 5 and last_event("article_read") >= 2 days ago'
        " and attr.newsletter = true",
        lambda p, at, day: (
            p.custom.get("newsletter") is True
            and (stats := p.events.get("article_read")) is not None
            and stats.last is not None
            and stats.last >= at - 2 * 86_400
            and stats.counts.in_window(day - 13, day) >= 5
        ),
        "article_read_14d >= 5 and last_article_read != null and last_article_read >= at - 172800"
        " and newsletter == true",
    ),
]


def _bucket(profile: Profile) -> int:
    import hashlib

    digest = hashlib.blake2b(profile.key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000


# --- rule-engine ----------------------------------------------------------------------------------


def _window(counts: DailyCounts, days: int) -> int:
    return counts.in_window(AT_DAY - days + 1, AT_DAY)


def _event_window(profile: Profile, name: str, days: int) -> int:
    stats = profile.events.get(name)
    return 0 if stats is None else _window(stats.counts, days)


def _custom_number(profile: Profile, name: str) -> float | None:
    value = profile.custom.get(name)
    return value if _number(value) else None  # type: ignore[return-value]


# What a rule-engine rule may name, and how the resolver reads it from a Profile.
RULE_ENGINE_SYMBOLS: dict[str, Callable[[Profile], Any]] = {
    "at": lambda p: AT,
    "sessions": lambda p: p.sessions.total,
    "sessions_7d": lambda p: _window(p.sessions, 7),
    "sessions_30d": lambda p: _window(p.sessions, 30),
    "sessions_60d": lambda p: _window(p.sessions, 60),
    "purchases_7d": lambda p: _window(p.purchases, 7),
    "spent": lambda p: p.spent_total,
    "spent_90d": lambda p: p.spent_in_window(AT_DAY - 89, AT_DAY),
    "last_session": lambda p: p.last_session,
    "last_purchase": lambda p: p.last_purchase,
    "created_at": lambda p: p.created_at,
    "push_subscription": lambda p: p.push_subscription,
    "email_subscription": lambda p: p.email_subscription,
    "push_enabled": lambda p: p.push_enabled,
    "is_employee": lambda p: (
        p.custom.get("is_employee") if isinstance(p.custom.get("is_employee"), bool) else None
    ),
    "received_welcome": lambda p: "welcome" in p.campaigns and p.campaigns["welcome"].received,
    "added_to_cart_7d": lambda p: _event_window(p, "added_to_cart", 7),
    "article_read_14d": lambda p: _event_window(p, "article_read", 14),
    "last_article_read": lambda p: p.events["article_read"].last if "article_read" in p.events else None,
    "country": lambda p: p.standard.get("country"),
    "platform": lambda p: p.standard.get("platform"),
    "app_version": lambda p: p.standard.get("app_version"),
    "plan": lambda p: p.custom.get("plan") if isinstance(p.custom.get("plan"), str) else None,
    "seats": lambda p: _custom_number(p, "seats"),
    "random_bucket": _bucket,
    "newsletter": lambda p: (
        p.custom.get("newsletter") if isinstance(p.custom.get("newsletter"), bool) else None
    ),
}


def _resolve(profile: Profile, name: str) -> Any:
    return RULE_ENGINE_SYMBOLS[name](profile)


# --- profiles -------------------------------------------------------------------------------------


def random_profile(rng: random.Random, index: int) -> Profile:
    """A user of a consumer app: most are occasional, a few come every day (by_day over 90 days)."""
    identified = rng.random() < 0.8
    activity = rng.choice([0.9, 0.5, 0.15, 0.02])
    sessions = {AT_DAY - d: rng.randint(1, 4) for d in range(90) if rng.random() < activity}
    purchases = {day: 1 for day in sessions if rng.random() < 0.05}
    carts = {day: rng.randint(1, 3) for day in sessions if rng.random() < 0.2}
    reads = {day: rng.randint(1, 6) for day in sessions if rng.random() < 0.4}
    last_day = max(sessions, default=AT_DAY - rng.randint(90, 400))
    created = AT - rng.uniform(0, 400) * DAY
    events = {}
    if carts:
        events["added_to_cart"] = EventStats(
            DailyCounts(sum(carts.values()), carts), created, max(carts) * DAY
        )
    if reads:
        events["article_read"] = EventStats(
            DailyCounts(sum(reads.values()), reads), created, max(reads) * DAY + 600
        )
    custom: dict[str, Any] = {}
    if rng.random() < 0.3:
        custom["plan"] = rng.choice(["free", "pro", "enterprise", "trial"])
        custom["seats"] = rng.choice([1, 3, 10, 25, 120, "many"])
    if rng.random() < 0.02:
        custom["is_employee"] = True
    if rng.random() < 0.5:
        custom["newsletter"] = rng.random() < 0.6
    if rng.random() < 0.2:
        custom["signup"] = AttributeInstant(created)
    standard = {
        "country": rng.choice(["FR", "DE", "US", "GB", "FR", "ES"]),
        "platform": rng.choice(["android", "ios", "web"]),
        "app_version": rng.choice(["2.9.1", "3.0.0", "3.1.4", "3.2.0"]),
        "language": rng.choice(["fr", "en", "de"]),
    }
    spent_by_day = {day: rng.choice([9.99, 49.0, 120.0, 400.0]) for day in purchases}
    return Profile(
        user_id=f"user-{index}" if identified else None,
        device_id=None if identified else f"device-{index}",
        created_at=created,
        standard=standard,
        custom=custom,
        sessions=DailyCounts(sum(sessions.values()) + rng.randint(0, 200), sessions),
        first_session=created,
        last_session=last_day * DAY + rng.uniform(0, DAY) if sessions or rng.random() < 0.7 else None,
        events=events,
        purchases=DailyCounts(len(purchases) + rng.randint(0, 5), purchases),
        spent_total=sum(spent_by_day.values()) + rng.choice([0.0, 0.0, 150.0, 2500.0]),
        spent_by_day=spent_by_day,
        last_purchase=max(purchases) * DAY if purchases else None,
        push_subscription=rng.choice(["opted_in", "subscribed", "unsubscribed", None]),
        email_subscription=rng.choice(["opted_in", "subscribed", "unsubscribed", None]),
        push_enabled=rng.random() < 0.6,
        campaigns={"welcome": CampaignHistory(received=True)} if rng.random() < 0.5 else {},
    )


# --- measuring ------------------------------------------------------------------------------------


# The loops are written alike so that only the rule evaluation differs between them.
def _sweep_compiled(
    predicate: Callable[[Profile, EvalContext], bool], profiles: list[Profile], context: EvalContext
) -> list[bool]:
    return [predicate(profile, context) for profile in profiles]


def _sweep_handwritten(handwritten: Handwritten, profiles: list[Profile]) -> list[bool]:
    return [handwritten(profile, AT, AT_DAY) for profile in profiles]


def _sweep_rule_engine(rule: rule_engine.Rule, profiles: list[Profile]) -> list[bool]:
    return [rule.matches(profile) for profile in profiles]


def _sweep_all(segments: SegmentSet, profiles: list[Profile]) -> list[dict[str, bool]]:
    return [segments.evaluate_all(profile, AT) for profile in profiles]


def _sweep_all_handwritten(profiles: list[Profile]) -> list[dict[str, bool]]:
    rules = [(rule.name, rule.handwritten) for rule in RULES]
    return [{name: handwritten(profile, AT, AT_DAY) for name, handwritten in rules} for profile in profiles]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_dsl", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=None, help="profiles, every side over the same ones")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timed rounds per rule")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    options = parser.parse_args(argv)
    quick = options.quick or stats.quick_requested()
    users = options.users or (300 if quick else 10_000)
    rounds = options.rounds or (2 if quick else 5)

    rng = random.Random(options.seed)
    profiles = [random_profile(rng, index) for index in range(users)]
    source = "\n".join(f"segment {rule.name} {{ {rule.dsl} }}" for rule in RULES)
    segments = compile_sources([("bench.seg", source)])
    context = EvalContext(AT)
    # Compiled once, like ours: only matching is timed, never parsing a rule.
    engine_context = rule_engine.Context(resolver=_resolve)
    engine_rules = {rule.name: rule_engine.Rule(rule.rule_engine, context=engine_context) for rule in RULES}
    print(
        f"== segment rules: {len(RULES)} rules over {len(profiles):,} profiles, every side on the same ones, "
        f"at {time.strftime('%Y-%m-%d', time.gmtime(AT))} =="
    )
    print(
        f"per rule: compiled, lambda, rule-engine interleaved over {rounds} rounds after a warm-up round; "
        "ns per evaluation and ratios as median (min–max) over rounds"
    )

    # The three implementations must mean the same thing before their speed is worth comparing.
    for rule in RULES:
        predicate = segments[rule.name].predicate
        compiled = _sweep_compiled(predicate, profiles, context)
        if compiled != _sweep_handwritten(rule.handwritten, profiles) or compiled != _sweep_rule_engine(
            engine_rules[rule.name], profiles
        ):
            raise SystemExit(f"{rule.name}: the implementations disagree; fix them before timing")

    header = (
        f"{'rule':<20}{'members':>8}{'compiled ns':>13}{'lambda ns':>11}{'rule-engine ns':>16}"
        f"  {'compiled/lambda':<20}{'rule-engine/compiled':<20}"
    )
    print(header)
    print("-" * len(header))
    per_rule: dict[str, dict[str, stats.Samples]] = {}
    for rule in RULES:
        predicate = segments[rule.name].predicate
        engine_rule = engine_rules[rule.name]
        handwritten = rule.handwritten
        seconds = stats.interleave(
            {
                "compiled": lambda p=predicate: _sweep_compiled(p, profiles, context),
                "lambda": lambda h=handwritten: _sweep_handwritten(h, profiles),
                "rule-engine": lambda r=engine_rule: _sweep_rule_engine(r, profiles),
            },
            rounds=rounds,
        )
        per_rule[rule.name] = seconds
        members = sum(_sweep_compiled(predicate, profiles, context))
        print(_row(rule.name, f"{members / len(profiles):>7.1%}", seconds, len(profiles)))
    print("-" * len(header))
    totals = {
        side: stats.total(figures[side] for figures in per_rule.values())
        for side in ("compiled", "lambda", "rule-engine")
    }
    print(_row("all ten (sum)", "", totals, len(profiles)))
    ratio_lambda = stats.ratio(totals["compiled"], totals["lambda"])
    ratio_engine = stats.ratio(totals["rule-engine"], totals["compiled"])

    # A whole population sweep: every segment for every user, as the segment job does it, against
    # the ten handwritten lambdas in one dict per user.
    sweeps = stats.interleave(
        {
            "evaluate_all": lambda: _sweep_all(segments, profiles),
            "lambdas": lambda: _sweep_all_handwritten(profiles),
        },
        rounds=rounds,
    )
    rate = sweeps["evaluate_all"].rate(len(profiles))
    print(
        f"\nevaluate_all (all {len(RULES)} segments per user, one core): {rate.show()} users/s, "
        f"{sweeps['evaluate_all'].per(len(profiles)).show(1e6, 2)} µs per user; "
        f"ten handwritten lambdas per user: {sweeps['lambdas'].per(len(profiles)).show(1e6, 2)} µs "
        f"({stats.ratio(sweeps['evaluate_all'], sweeps['lambdas']).show(digits=2, unit='x')})"
    )
    print(
        f"goals (medians): compiled <= {GOAL_VS_LAMBDA}x lambdas: {ratio_lambda.median:.2f}x "
        f"[{'met' if ratio_lambda.median <= GOAL_VS_LAMBDA else 'MISSED'}]; "
        f">= {GOAL_VS_RULE_ENGINE:.0f}x faster than rule-engine: {ratio_engine.median:.1f}x "
        f"[{'met' if ratio_engine.median >= GOAL_VS_RULE_ENGINE else 'MISSED'}]; "
        f">= {GOAL_USERS_PER_SECOND:,} users/s: {rate.median:,.0f} "
        f"[{'met' if rate.median >= GOAL_USERS_PER_SECOND else 'MISSED'}]"
    )


def _row(name: str, members: str, seconds: dict[str, stats.Samples], profiles: int) -> str:
    ns = {side: samples.per(profiles).median * 1e9 for side, samples in seconds.items()}
    vs_lambda = stats.ratio(seconds["compiled"], seconds["lambda"]).show(digits=2, unit="x")
    vs_engine = stats.ratio(seconds["rule-engine"], seconds["compiled"]).show(digits=1, unit="x")
    return (
        f"{name:<20}{members:>8}{ns['compiled']:>13,.0f}{ns['lambda']:>11,.0f}{ns['rule-engine']:>16,.0f}"
        f"  {vs_lambda:<20}{vs_engine:<20}"
    )


if __name__ == "__main__":
    main()
