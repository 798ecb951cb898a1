"""No user id, device id, email or push token in any log line, on AWS (Powertools) or from `kudos serve`.

A functional run of every route through `kudos serve` with known ids, keys in force, and the
errors that log (a refused key, an unexpected exception and a contention whose messages quote the
ids): everything the handlers log at DEBUG and everything serve prints is captured and searched.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from functions.http import ROUTES
from kudos.core.credentials import key_fingerprint
from kudos.ingest.updates import ConcurrentUpdateError
from kudos.local.routes import find_template, load_template
from kudos.local.serve import serve_in_thread
from tests.functional.conftest import Reply, send
from tests.logcapture import powertools_logs

USER, DEVICE, OTHER_DEVICE = "u-pii-7731", "d-pii-4410", "d-pii-5521"
EMAIL, TOKEN = "pii.ana@example.com", "tok-pii-99887766aabb"
PERSONAL = (USER, DEVICE, OTHER_DEVICE, EMAIL, TOKEN)
APP_KEY, SERVER_KEY, WRONG_KEY = (
    "app-key-0123456789abcdef",
    "srv-key-0123456789abcdef",
    "leaked-key-0123456789",
)
NOW = "2026-11-30T10:00:00Z"


def every_route(url: str) -> list[tuple[str, Reply]]:
    app = {"x-api-key": APP_KEY, "content-type": "application/json"}
    server = {"authorization": f"Bearer {SERVER_KEY}"}

    def post(path: str, body: Any, headers: dict[str, str]) -> tuple[str, Reply]:
        return f"POST {path}", send("POST", url + path, json.dumps(body).encode(), headers)

    def get(path: str, headers: dict[str, str] = server) -> tuple[str, Reply]:
        return f"GET {path}", send("GET", url + path, headers=headers)

    session = {
        "session_id": "s-pii-1",
        "device_id": DEVICE,
        "user_id": USER,
        "started_at": "2026-11-29T09:00:00Z",
    }
    return [
        post(
            "/v1/sessions",
            {
                "sent_at": NOW,
                "sessions": [session, {"session_id": "s-2", "device_id": OTHER_DEVICE, "started_at": "bad"}],
            },
            app,
        ),
        post(
            "/v1/push/tokens",
            {"device_id": DEVICE, "user_id": USER, "platform": "ios", "token": TOKEN, "enabled": True},
            app,
        ),
        post(
            "/v1/push/events",
            {
                "events": [
                    {
                        "type": "opened",
                        "device_id": DEVICE,
                        "user_id": USER,
                        "campaign_id": "c",
                        "time": "2026-11-29T10:00:00Z",
                    }
                ]
            },
            app,
        ),
        post(
            "/v1/users/track",
            {
                "attributes": [{"external_id": USER, "email": EMAIL, "first_name": "Ana"}],
                "events": [{"external_id": USER, "name": "e", "time": "2026-11-29T10:00:00Z"}],
            },
            server,
        ),
        post(
            "/v1/users/identify",
            {"aliases_to_identify": [{"device_id": OTHER_DEVICE, "external_id": USER}]},
            server,
        ),
        get("/v1/metrics/active-users?from=2026-11-01&to=2026-11-30"),
        get("/v1/segments"),
        get("/v1/segments/top_users/members?limit=5"),
        get(f"/v1/segments/top_users/members?at={NOW}"),
        get(f"/v1/segments/top_users/explain?user_id={USER}"),
        get(f"/v1/segments/top_users/explain?device_id={DEVICE}"),
        get("/v1/segments/top_users/changes"),
        get("/v1/openapi.json"),
        get("/v1/campaigns"),
        get(f"/v1/campaigns/thank_top_users/sends?user_id={USER}"),
        get(f"/v1/campaigns/thank_top_users/explain?user_id={USER}"),
        get(f"/v1/campaigns/thank_top_users/explain?device_id={OTHER_DEVICE}"),
        get("/v1/campaigns/thank_top_users/report?from=2026-11-01"),
        post("/v1/campaigns/thank_top_users/pause", {"reason": f"complaint from {EMAIL}"}, server),
        post("/v1/campaigns/thank_top_users/resume", {}, server),
        # Refused keys, wrong methods, unknown paths that hold ids.
        (
            "wrong key",
            send(
                "POST",
                f"{url}/v1/sessions",
                json.dumps({"sessions": [session]}).encode(),
                {"x-api-key": WRONG_KEY},
            ),
        ),
        (
            "app key on a server route",
            send(
                "GET", f"{url}/v1/segments/top_users/explain?user_id={USER}", headers={"x-api-key": APP_KEY}
            ),
        ),
        ("PUT /v1/sessions", send("PUT", f"{url}/v1/sessions?user_id={USER}", b"{}", app)),
        ("GET unknown", send("GET", f"{url}/v1/users/{USER}?email={EMAIL}", headers=server)),
        post("/v1/users/delete", {"external_ids": [USER], "device_ids": [DEVICE, ""]}, server),
    ]


def test_no_personal_data_in_any_log_line(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = dynamodb.settings.model_copy(
        update={"app_keys": frozenset({APP_KEY}), "server_keys": frozenset({SERVER_KEY})}
    )
    template = load_template(find_template())
    with serve_in_thread(settings=settings, template=template, log=True) as url:
        # Lambda imports a handler on its cold start; import them first so that their loggers exist.
        for function in template.functions.values():
            importlib.import_module(function.handler.rpartition(".")[0])
        with powertools_logs() as logs:
            replies = every_route(url)
            # Errors whose messages quote the ids.
            import functions.backend_ingest
            import functions.sdk_ingest

            def crash(*_: Any, **__: Any) -> Any:
                raise ValueError(f"cannot use {USER} on {DEVICE} ({EMAIL}, {TOKEN})")

            def contention(*_: Any, **__: Any) -> Any:
                raise ConcurrentUpdateError(f"the profiles of {DEVICE!r} and {USER!r} kept changing")

            monkeypatch.setattr(functions.sdk_ingest, "register_token", crash)
            monkeypatch.setattr(functions.backend_ingest, "identify_users", contention)
            body = {"device_id": DEVICE, "platform": "ios", "token": TOKEN, "enabled": True}
            replies.append(
                (
                    "crash",
                    send("POST", f"{url}/v1/push/tokens", json.dumps(body).encode(), {"x-api-key": APP_KEY}),
                )
            )
            body2 = {"aliases_to_identify": [{"device_id": DEVICE, "external_id": USER}]}
            replies.append(
                (
                    "contention",
                    send(
                        "POST",
                        f"{url}/v1/users/identify",
                        json.dumps(body2).encode(),
                        {"x-api-key": SERVER_KEY},
                    ),
                )
            )
    printed = capsys.readouterr()
    text = "\n".join([logs.getvalue(), printed.out, printed.err])

    statuses = {what: reply.status for what, reply in replies}
    assert statuses["POST /v1/sessions"] == 201
    assert statuses["crash"] == 500
    assert statuses["contention"] == 503
    assert statuses["wrong key"] == statuses["app key on a server route"] == 401
    assert statuses["PUT /v1/sessions"] == 405
    assert statuses["GET unknown"] == 404
    assert all(status < 500 for what, status in statuses.items() if what not in ("crash", "contention")), (
        statuses
    )
    assert {path for path in ROUTES} <= {
        what.split(" ", 1)[-1]
        .split("?")[0]
        .replace("thank_top_users", "{name}")
        .replace("top_users", "{name}")
        for what in statuses
    }
    # The capture works: these lines are there, each without what they are about.
    assert "key refused" in text
    assert key_fingerprint(WRONG_KEY) in text
    assert WRONG_KEY not in text
    assert "unhandled error" in text
    assert "gave up after concurrent updates" in text
    assert "POST /v1/sessions -> 201" in text
    leaks = [line for line in text.splitlines() if any(value in line for value in PERSONAL)]
    assert not leaks, "\n".join(leaks)
