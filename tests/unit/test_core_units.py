"""Unit tests of the core's pure parts: no network, no DynamoDB."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kudos.core.identity import UserKey
from kudos.core.profile import AttributeInstant
from kudos.core.records import (
    ActivityRecord,
    AttributesRecord,
    CampaignRecord,
    EventRecord,
    PurchasesRecord,
    TokenRecord,
    prune_days,
)
from kudos.core.timeutil import InstantError, day_of, format_day, format_instant, parse_date, parse_instant
from kudos.metrics.active_users import count_distinct_in_windows, figures_from_activity
from kudos.store.capacity import CapacityMeter, item_size, write_units
from kudos.store.codec import decode, encode
from kudos.store.keys import shard_of
from kudos.store.ports import DayActivity


@given(
    st.lists(st.lists(st.integers(0, 60), max_size=12), max_size=12),
    st.integers(0, 60),
    st.integers(0, 20),
    st.sampled_from([1, 7, 30]),
)
def test_window_counts_equal_a_naive_count(users, first, span, width):
    last = first + span
    expected = [
        sum(1 for days in users if any(d - width < day <= d for day in days)) for d in range(first, last + 1)
    ]
    assert count_distinct_in_windows(users, first, last, width) == expected


def test_figures_count_sessions_and_api_activity_once_per_user():
    days = {
        10: DayActivity(10, session_aids=["a", "a", "b"], api_aids=["a", "c"], new_user_aids=["c"]),
        12: DayActivity(12, session_aids=["b"], api_aids=[], new_user_aids=[]),
    }
    figures = {f.day: f for f in figures_from_activity(days, 10, 12)}
    assert (figures[10].dau, figures[10].sessions, figures[10].new_users) == (3, 3, 1)
    assert (figures[11].dau, figures[11].wau, figures[11].mau) == (0, 3, 3)
    assert (figures[12].dau, figures[12].wau) == (1, 3)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2026-11-20T18:03:00", "no time zone"),
        ("2026-11-20", "not an instant"),
        ("", "empty"),
        ("2026-13-01T00:00:00Z", "RFC 3339"),
        ("x" * 100, "too long"),
        (12, "RFC 3339 string"),
        ("2026-11-21T10:00Z", "RFC 3339"),  # seconds are not optional
        ("20261121T100000Z", "RFC 3339"),  # ISO 8601's basic format is not RFC 3339
        ("2026-11-21T10:00:00+0100", "RFC 3339"),
        ("2026-W47-1T10:00:00Z", "RFC 3339"),
        ("0001-01-01T00:00:00+01:00", "out of range"),  # year 0 in UTC
        ("9999-12-31T23:59:59-01:00", "out of range"),
    ],
)
def test_instants_without_a_zone_or_malformed_are_refused(text, problem):
    with pytest.raises(InstantError, match=problem):
        parse_instant(text)


@pytest.mark.parametrize("text", ["2026-W47-1", "20261121", "2026-11-2a", "2026-02-30", "٢٠٢٦-11-21"])
def test_dates_are_yyyy_mm_dd_only(text):
    with pytest.raises(InstantError, match="YYYY-MM-DD"):
        parse_date(text)


def test_fractions_and_offsets_of_any_precision():
    assert format_instant(parse_instant("2026-11-20T18:03:00.123456789+01:00")) == "2026-11-20T17:03:00.123Z"
    assert format_instant(parse_instant("2026-11-20t18:03:00z")) == "2026-11-20T18:03:00Z"


def test_instants_and_days_round_trip():
    instant = parse_instant("2026-11-20T19:03:00+01:00")
    assert format_instant(instant) == "2026-11-20T18:03:00Z"
    assert format_day(day_of(instant)) == "2026-11-20"
    assert parse_date("2026-11-20") == day_of(instant)
    assert format_instant(instant + 0.25) == "2026-11-20T18:03:00.250Z"


def test_item_size_follows_the_dynamodb_rules():
    # Names and strings count their UTF-8 bytes; numbers about one byte per two digits, plus one.
    assert item_size({"pk": {"S": "abc"}}) == 5
    assert item_size({"n": {"N": "12345"}}) == 1 + 4
    assert item_size({"é": {"S": "é"}}) == 4
    assert item_size({"b": {"BOOL": True}}) == 2
    assert item_size({"l": {"L": [{"S": "ab"}, {"S": "c"}]}}) == 1 + 3 + (1 + 2) + (1 + 1)
    assert write_units({"x": {"S": "a" * 1500}}) == 2
    assert write_units({"x": {"S": "a"}}, None) == 1


def test_the_meter_bills_failed_conditions_and_transactions_twice():
    meter = CapacityMeter()
    meter.wrote({"TableName": "t", "CapacityUnits": 1.0})
    meter.failed_condition({"x": {"S": "a" * 2000}})
    meter.transaction([{"CapacityUnits": 1.0}], [{"x": {"S": "a"}}, {"y": {"S": "b"}}])
    assert meter.billed_write_units == 1 + 2 + 4


def test_shards_are_stable_and_spread():
    assert shard_of("session-1", 4) == shard_of("session-1", 4)
    spread = {shard_of(f"s-{n}", 8) for n in range(200)}
    assert spread == set(range(8))


def test_old_days_fall_off():
    days = {100: 1, 7: 2, 8: 1}
    assert prune_days(days, 100) == {100: 1, 8: 1}


RECORDS = [
    ActivityRecord(
        aid="abc",
        created_at=1.5,
        version=3,
        sessions_total=4,
        first_session=10.25,
        last_session=99.0,
        first_active_day=1,
        last_api_day=2,
        session_days={20400: 3, 20401: 1},
        counted={"abcd": 491234, "ef-_": 491234, "gh12": 491235},
    ),
    AttributesRecord(
        version=1,
        standard={"country": "FR"},
        push_subscription="opted_in",
        push_opted_in_at=5.0,
        custom={
            "plan": "gold",
            "visits": 3,
            "ratio": 0.5,
            "vip": True,
            "tags": ["a", "b"],
            "renewal": AttributeInstant(1795000000.0),
            "empty": [],
        },
    ),
    EventRecord(name="added to cart", total=2, first=1.0, last=2.0, by_day={20400: 2}),
    PurchasesRecord(
        total=2, spent_total=19.5, first=1.0, last=2.0, count_by_day={20400: 2}, spent_by_day={20400: 19.5}
    ),
    TokenRecord(device_id="d-1", platform="ios", token="t", enabled=True, valid=False, updated_at=3.0),
    CampaignRecord(campaign_id="thanks", received=True, opened=True, last_received=7.0),
    CampaignRecord(
        campaign_id="promo",
        received=True,
        opened=True,
        last_received=7.0,
        last_opened=8.5,
        open_days={20400: 1, 20403: 2},
        receive_days={20400: 1},
        counted=["r@7.0", "o@7.0", "os-1"],
    ),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_records_round_trip_through_items(record):
    item = encode(UserKey("u-1", None), record)
    assert decode(item) == record


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.integers(0, 10**6))
def test_numbers_round_trip(instant, count):
    record = ActivityRecord(aid="a", created_at=instant, sessions_total=count, first_session=instant)
    decoded = decode(encode(UserKey(None, "d"), record))
    assert isinstance(decoded, ActivityRecord)
    assert math.isclose(decoded.created_at, instant, rel_tol=1e-15)
    assert decoded.sessions_total == count
