"""Property: however uploads are shuffled, split, duplicated and delayed, and however wrong the device
clocks are, the figures equal the reference model computed from the true sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kudos.store.schema import create_tables
from tests.apiclient import ApiClient
from tests.reference import TrueSession, as_device_clock, reference_figures, rfc3339

START = datetime(2026, 11, 1, tzinfo=UTC)
USERS = ["u:u-1", "u:u-2", "u:u-3", "d:d-anon-1", "d:d-anon-2"]


@st.composite
def upload_plans(draw):
    count = draw(st.integers(min_value=1, max_value=14))
    sessions = [
        TrueSession(
            session_id=f"s{i}",
            user=draw(st.sampled_from(USERS)),
            # Within 12 days, to the second: midnight edges come up often enough.
            started=START + timedelta(seconds=draw(st.integers(0, 12 * 86_400 - 1))),
        )
        for i in range(count)
    ]
    copies = sessions + draw(st.lists(st.sampled_from(sessions), max_size=6))
    order = draw(st.permutations(copies))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=4)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True) if order[a:b]]
    clock_offsets = {user: timedelta(minutes=draw(st.integers(-600, 600))) for user in USERS}
    delays = [timedelta(minutes=draw(st.integers(1, 5 * 24 * 60))) for _ in batches]
    return sessions, batches, clock_offsets, delays


def _body(batch, sent_at, offset_of):
    items = []
    for session in batch:
        kind, _, ident = session.user.partition(":")
        item = {
            "session_id": session.session_id,
            "device_id": ident if kind == "d" else f"dev-{ident}",
            "started_at": as_device_clock(session.started, offset_of(session)),
        }
        if kind == "u":
            item["user_id"] = ident
        items.append(item)
    return {"sent_at": sent_at, "sessions": items}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=upload_plans())
def test_figures_match_reference_under_any_upload_order(dynamodb, plan):
    sessions, batches, clock_offsets, delays = plan
    suffix = uuid.uuid4().hex[:8]
    table_settings = dynamodb.settings.model_copy(
        update={"users_table": f"users-{suffix}", "activity_table": f"activity-{suffix}"}
    )
    create_tables(dynamodb.client, table_settings)
    api = ApiClient(table_settings, dynamodb.client)

    last_receive = START
    for batch, delay in zip(batches, delays, strict=True):
        # Each device uploads with its own clock: one batch here holds one device's sessions
        # only if they share an offset, so offsets are applied per session's user and sent_at
        # uses the first one's; the correction is exact only when all share it, so split by user.
        by_user = {}
        for session in batch:
            by_user.setdefault(session.user, []).append(session)
        for user, user_batch in by_user.items():
            receive = max(s.started for s in user_batch) + delay
            offset = clock_offsets[user]
            api.at(rfc3339(receive))
            response = api.post(
                "/v1/sessions", _body(user_batch, rfc3339(receive + offset), lambda s: clock_offsets[s.user])
            )
            assert response.status == 201, response.body
            assert response.body["errors"] == []
            last_receive = max(last_receive, receive)

    api.at(rfc3339(last_receive))
    first, last = START.date(), (START + timedelta(days=13)).date()
    # The figures stop at today (the clock of the last upload): days to come have none.
    expected = reference_figures(sessions, {}, first, min(last, last_receive.date()))
    assert api.active_users(first.isoformat(), last.isoformat()) == expected
