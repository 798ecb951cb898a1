"""scan_users gives the same users whether pages are decoded raw or by botocore, on moto and DynamoDB
Local: over more than one 1 MB page, over parallel scan parts, with the read units metered alike."""

from __future__ import annotations

import json
import random
from unittest import mock

from bench.bench_segments import random_user
from kudos.store import fast_scan
from kudos.store.dynamo import Store
from tests.conftest import DynamoDB

USERS = 400
PADDING = "x" * 8000  # ~2 MB in all: the Scan needs two pages or more


def test_scan_users_is_the_same_either_way(dynamodb: DynamoDB):
    rng = random.Random(5)
    items = [item for index in range(USERS) for item in random_user(rng, index)]
    for item in items[::2]:
        item["c_notes"] = {"S": PADDING}  # a custom attribute on P items, an unknown one on others
    writer = Store(dynamodb.settings, dynamodb.client)
    writer.tables.batch_write(dynamodb.settings.users_table, [{"PutRequest": {"Item": i}} for i in items])

    botocore_store = Store(dynamodb.settings, dynamodb.client)
    botocore_store.users.raw_scan = False
    raw_store = Store(dynamodb.settings, dynamodb.client)
    expected = list(botocore_store.users.scan_users())
    with mock.patch.object(fast_scan, "decode_body", wraps=json.loads) as decoded:
        found = list(raw_store.users.scan_users())
    assert decoded.call_count >= 2, "more than one page, each decoded raw"
    assert len(found) == len({item["pk"]["S"] for item in items})
    assert sorted(found, key=lambda u: u.key.token) == sorted(expected, key=lambda u: u.key.token)
    assert raw_store.meter.reported_read_units == botocore_store.meter.reported_read_units

    parts = [user for part in range(3) for user in raw_store.users.scan_users(part, 3)]
    assert sorted(parts, key=lambda u: u.key.token) == sorted(expected, key=lambda u: u.key.token)
