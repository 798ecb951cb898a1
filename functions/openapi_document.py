"""Writes functions/openapi.json, the OpenAPI 3.1 description of every route (api.md).

The JSON file is what `GET /v1/openapi.json` serves and what schemathesis tests `kudos serve`
against; this module is where it is edited: `python -m functions.openapi_document` rewrites it, and
tests/unit/test_openapi.py fails when the file and this module (or template.yaml's routes) disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from kudos.core.records import SendStatus

DOCUMENT = Path(__file__).resolve().parent / "openapi.json"

INSTANT = {"type": "string", "description": "RFC 3339 instant with a zone, e.g. 2026-11-20T18:03:00Z"}
DATE = {"type": "string", "description": "YYYY-MM-DD, a UTC day"}
USER = {
    "type": "object",
    "description": '{"user_id": "u-7"}, {"device_id": "d-42"} or {"user_alias": {"alias_name", "alias_label"}}',
    "properties": {
        "user_id": {"type": "string"},
        "device_id": {"type": "string"},
        "user_alias": {
            "type": "object",
            "required": ["alias_name", "alias_label"],
            "properties": {"alias_name": {"type": "string"}, "alias_label": {"type": "string"}},
        },
    },
}
ITEM_ERROR = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "type": {"type": "string"},
        "input_array": {"type": "string"},
        "index": {"type": "integer"},
        "field": {"type": "string"},
        "message": {"type": "string"},
    },
}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    },
    "ItemError": ITEM_ERROR,
    "User": USER,
    "BatchResult": {
        "type": "object",
        "required": ["message", "errors"],
        "properties": {
            "message": {"const": "success"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ItemError"}},
        },
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error(description: str) -> dict[str, Any]:
    return {"description": description, "content": json_content(ref("Error"))}


UNAUTHORIZED = error("no key, or not a key of the kind this route needs")
TOO_LARGE = error("the body is over 1 MB")
CONTENTION = {
    **error("the data kept changing under concurrent writers; retry"),
    "headers": {"Retry-After": {"schema": {"type": "string"}}},
}
WRONG_METHOD = {
    **error("another method is served on this path"),
    "headers": {"Allow": {"schema": {"type": "string"}}},
}


def batch(fields: dict[str, Any]) -> dict[str, Any]:
    return {"allOf": [ref("BatchResult"), {"type": "object", "properties": fields}]}


def ingest(
    summary: str, body: dict[str, Any], created: dict[str, Any], *, security: str, item_errors: bool = True
) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{f"{security}Key": []}, {f"{security}Bearer": []}],
            "requestBody": {"required": True, "content": json_content(body)},
            "responses": {
                "201": {
                    "description": "stored"
                    + ("; each bad item is reported in errors" if item_errors else ""),
                    "content": json_content(created),
                },
                "400": error("the request cannot be used at all (not JSON, wrong shape, over the limits)"),
                "401": UNAUTHORIZED,
                "405": WRONG_METHOD,
                "413": TOO_LARGE,
                "503": CONTENTION,
            },
        }
    }


# The figures of a campaign report (kudos/campaigns/report.py), in total and per day.
REPORT_COUNTS = (
    "triggers", "queued", "held", "held_out", "not_eligible", "paused", "dismissed", "unreachable",
    "capped", "expired", "failed", "sent", "delivered", "direct_opens", "influenced_opens", "opens",
    "opt_outs",
)  # fmt: skip
NULLABLE_COUNT = {"type": ["integer", "null"], "minimum": 0}
NULLABLE_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
REPORT_FIGURES = (
    *REPORT_COUNTS,
    "conversions",
    "control_conversions",
    "conversion_rate",
    "control_conversion_rate",
    "lift",
    "opt_out_rate",
)
REPORT_PROPERTIES: dict[str, Any] = {
    **{name: {"type": "integer", "minimum": 0} for name in REPORT_COUNTS},
    "conversions": NULLABLE_COUNT,
    "control_conversions": NULLABLE_COUNT,
    "conversion_rate": NULLABLE_RATE,
    "control_conversion_rate": NULLABLE_RATE,
    "opt_out_rate": NULLABLE_RATE,
    "lift": {
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "required": ["absolute", "ci95", "minimum_detectable", "verdict"],
                "properties": {
                    "absolute": {"type": "number", "minimum": -1, "maximum": 1},
                    "ci95": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                    "minimum_detectable": {"type": ["number", "null"]},
                    "verdict": {"enum": ["conclusive", "too small to conclude"]},
                },
            },
        ]
    },
}


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}, "example": "top_users"}
COUNT = {"type": "integer", "minimum": 0}


def read(
    summary: str,
    parameters: list[dict[str, Any]],
    ok: dict[str, Any],
    *,
    not_found: bool,
    what: str = "no such segment, or no such user",
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "the answer", "content": json_content(ok)},
        "400": error("a parameter is wrong"),
        "401": UNAUTHORIZED,
        "405": WRONG_METHOD,
    }
    if not_found:
        responses["404"] = error(what)
    return {
        "get": {
            "summary": summary,
            "security": [{"ServerKey": []}, {"ServerBearer": []}],
            "parameters": parameters,
            "responses": responses,
        }
    }


CAMPAIGN = {**NAME, "example": "thank_top_users"}
CAMPAIGN_STATUS = {"enum": ["active", "paused", "paused_by_guardrail"]}
SEND_STATUS = {"enum": list(get_args(SendStatus))}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INSTANT = {**INSTANT, "type": ["string", "null"]}
SCHEMAS["Campaign"] = {
    "type": "object",
    "required": ["name", "title", "audience", "trigger", "status", "source", "since", "reason", "counts"],
    "properties": {
        "name": {"type": "string"},
        "title": NULLABLE_STRING,
        "audience": NULLABLE_STRING,
        "trigger": {
            **NULLABLE_STRING,
            "description": "as written: send on entry, send daily at HH:MM UTC, ...",
        },
        "status": CAMPAIGN_STATUS,
        "source": NULLABLE_STRING,
        "since": NULLABLE_INSTANT,
        "reason": NULLABLE_STRING,
        "counts": {
            "type": "object",
            "required": SEND_STATUS["enum"],
            "properties": {status: COUNT for status in SEND_STATUS["enum"]},
        },
    },
}
SCHEMAS["Send"] = {
    "type": "object",
    "required": [
        "send_id",
        "user",
        "status",
        "trigger",
        "triggered_at",
        "sent_at",
        "title",
        "body",
        "reason",
    ],
    "properties": {
        "send_id": {"type": "string"},
        "user": {"oneOf": [{"type": "null"}, ref("User")], "description": "null: a deleted user's send"},
        "status": SEND_STATUS,
        "trigger": {"enum": ["entry", "initial", "scheduled"]},
        "triggered_at": INSTANT,
        "sent_at": NULLABLE_INSTANT,
        "title": NULLABLE_STRING,
        "body": NULLABLE_STRING,
        "reason": NULLABLE_STRING,
    },
}
SCHEMAS["Rule"] = {
    "type": "object",
    "required": ["rule", "stops", "status", "reason", "seen"],
    "properties": {
        "rule": {
            "enum": [
                "paused",
                "not_eligible",
                "unreachable",
                "held_out",
                "expired",
                "dismissed",
                "capped",
                "quiet_hours",
                "render",
            ]
        },
        "stops": {"type": "boolean"},
        "status": {"oneOf": [{"type": "null"}, SEND_STATUS]},
        "reason": NULLABLE_STRING,
        "seen": {"description": "the value the rule saw (null when it lets the send through)"},
        "until": {**INSTANT, "description": "held: when quiet hours end"},
    },
}
CAMPAIGN_STATE = {
    "type": "object",
    "required": ["campaign", "status", "since", "reason", "changed"],
    "properties": {
        "campaign": {"type": "string"},
        "status": CAMPAIGN_STATUS,
        "since": NULLABLE_INSTANT,
        "reason": NULLABLE_STRING,
        "changed": {"type": "boolean", "description": "false when it already was in that status"},
    },
}


def command(summary: str, body: dict[str, Any] | None) -> dict[str, Any]:
    """A POST on a campaign that answers its state; ``body``: the optional request body's schema."""
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"ServerKey": []}, {"ServerBearer": []}],
        "parameters": [CAMPAIGN],
        "responses": {
            "200": {"description": "the campaign's state now", "content": json_content(CAMPAIGN_STATE)},
            "400": error("the body is not a JSON object, or a field of it is wrong"),
            "401": UNAUTHORIZED,
            "404": error("no such campaign in the deployed rule files"),
            "405": WRONG_METHOD,
            "413": TOO_LARGE,
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": False, "content": json_content(body)}
    return {"post": operation}


SESSION = {
    "type": "object",
    "required": ["session_id", "device_id", "started_at"],
    "properties": {
        "session_id": {"type": "string", "maxLength": 256},
        "device_id": {"type": "string"},
        "user_id": {"type": "string"},
        "started_at": INSTANT,
        "ended_at": INSTANT,
        "platform": {"type": "string"},
        "app_version": {"type": "string"},
        "country": {"type": "string"},
        "language": {"type": "string"},
        "time_zone": {"type": "string"},
    },
}
PUSH_EVENT = {
    "type": "object",
    "required": ["type", "time"],
    "properties": {
        "type": {"enum": ["delivered", "opened", "opted_out", "opted_in", "token_invalid"]},
        "device_id": {"type": "string"},
        "user_id": {"type": "string"},
        "campaign_id": {"type": "string"},
        "send_id": {"type": "string"},
        "time": INSTANT,
    },
}
BRAZE_OBJECT = {
    "type": "object",
    "description": "names its user with external_id, user_alias or device_id",
    "properties": {"external_id": {"type": "string"}, "device_id": {"type": "string"}},
}
DAY_FIGURES = {
    "type": "object",
    "required": ["date", "dau", "wau", "mau", "new_users", "sessions", "stickiness"],
    "properties": {
        "date": DATE,
        "dau": COUNT,
        "wau": COUNT,
        "mau": COUNT,
        "new_users": COUNT,
        "sessions": COUNT,
        "stickiness": {"type": "number", "minimum": 0},
    },
}

PATHS: dict[str, Any] = {
    "/v1/sessions": ingest(
        "A batch of sessions from the app (at most 500)",
        {
            "type": "object",
            "required": ["sessions"],
            "properties": {
                "sent_at": INSTANT,
                "sessions": {"type": "array", "maxItems": 500, "items": SESSION},
            },
        },
        batch({"sessions_processed": COUNT, "new_sessions": COUNT, "duplicates": COUNT}),
        security="App",
    ),
    "/v1/push/tokens": ingest(
        "Register or update one device's push token",
        {
            "type": "object",
            "required": ["device_id", "platform", "token", "enabled"],
            "properties": {
                "device_id": {"type": "string"},
                "user_id": {"type": "string"},
                "platform": {"enum": ["ios", "android", "web"]},
                "token": {"type": "string", "maxLength": 4096},
                "enabled": {"type": "boolean"},
            },
        },
        {
            "type": "object",
            "required": ["message", "push_enabled"],
            "properties": {"message": {"const": "success"}, "push_enabled": {"type": "boolean"}},
        },
        security="App",
        item_errors=False,
    ),
    "/v1/push/events": ingest(
        "Push deliveries, opens and permission changes (at most 500)",
        {
            "type": "object",
            "required": ["events"],
            "properties": {"events": {"type": "array", "maxItems": 500, "items": PUSH_EVENT}},
        },
        batch({"events_processed": COUNT}),
        security="App",
    ),
    "/v1/users/track": ingest(
        "Attributes, events and purchases in Braze's /users/track shapes (at most 75 of each)",
        {
            "type": "object",
            "properties": {
                name: {"type": "array", "maxItems": 75, "items": BRAZE_OBJECT}
                for name in ("attributes", "events", "purchases")
            },
        },
        batch(
            {
                "attributes_processed": COUNT,
                "events_processed": COUNT,
                "purchases_processed": COUNT,
            }
        ),
        security="Server",
    ),
    "/v1/users/identify": ingest(
        "Merge anonymous devices into identified users (at most 50)",
        {
            "type": "object",
            "properties": {
                "aliases_to_identify": {
                    "type": "array",
                    "maxItems": 50,
                    "items": {
                        "type": "object",
                        "required": ["device_id", "external_id"],
                        "properties": {"device_id": {"type": "string"}, "external_id": {"type": "string"}},
                    },
                }
            },
        },
        batch({"aliases_processed": COUNT}),
        security="Server",
    ),
    "/v1/users/delete": ingest(
        "Delete profiles and everything stored about them (at most 50 ids)",
        {
            "type": "object",
            "properties": {
                "external_ids": {"type": "array", "maxItems": 50, "items": {"type": "string"}},
                "device_ids": {"type": "array", "maxItems": 50, "items": {"type": "string"}},
                "user_aliases": {"type": "array", "items": {"type": "object"}},
            },
        },
        batch({"deleted": COUNT}),
        security="Server",
    ),
    "/v1/metrics/active-users": read(
        "Daily, weekly and monthly active users per UTC day (at most 366 days)",
        [
            query("from", DATE, "first day (default: 29 days before `to`)"),
            query("to", DATE, "last day (default: today, UTC)"),
        ],
        {
            "type": "object",
            "required": ["days"],
            "properties": {"days": {"type": "array", "items": DAY_FIGURES}},
        },
        not_found=False,
    ),
    "/v1/segments": read(
        "Every deployed segment, its stored size and version, and the last sweep",
        [],
        {
            "type": "object",
            "required": ["segments", "last_sweep"],
            "properties": {
                "segments": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "title", "source", "version", "size", "last_evaluation"],
                        "properties": {
                            "name": {"type": "string"},
                            "title": {"type": ["string", "null"]},
                            "source": {"type": "string"},
                            "version": {"type": "string"},
                            "size": COUNT,
                            "last_evaluation": {
                                "oneOf": [
                                    {"type": "null"},
                                    {
                                        "type": "object",
                                        "required": ["at", "evaluated_at", "version", "size"],
                                        "properties": {
                                            "at": INSTANT,
                                            "evaluated_at": INSTANT,
                                            "version": {"type": ["string", "null"]},
                                            "size": COUNT,
                                        },
                                    },
                                ]
                            },
                        },
                    },
                },
                "last_sweep": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": [
                                "kind",
                                "at",
                                "started_at",
                                "finished_at",
                                "seconds",
                                "users_read",
                                "changes",
                            ],
                            "properties": {
                                "kind": {"enum": ["steady", "full"]},
                                "at": INSTANT,
                                "started_at": INSTANT,
                                "finished_at": INSTANT,
                                "seconds": {"type": "number", "minimum": 0},
                                "users_read": COUNT,
                                "changes": COUNT,
                            },
                        },
                    ]
                },
            },
        },
        not_found=False,
    ),
    "/v1/segments/{name}/changes": read(
        "Entries into and exits from a segment, newest first, one page",
        [
            NAME,
            query("from", INSTANT, "the earliest change (default: as far back as the log keeps, 90 days)"),
            query("to", INSTANT, "the latest change (default: now)"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 100)"),
            query("next", {"type": "string"}, "the `next` token of the previous page"),
        ],
        {
            "type": "object",
            "required": ["segment", "changes", "next"],
            "properties": {
                "segment": {"type": "string"},
                "changes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["user", "change", "at", "by", "version"],
                        "properties": {
                            "user": ref("User"),
                            "change": {"enum": ["entered", "exited"]},
                            "at": INSTANT,
                            "by": {"enum": ["ingest", "sweep"]},
                            "version": {"type": "string"},
                        },
                    },
                },
                "next": {"type": ["string", "null"]},
            },
        },
        not_found=True,
    ),
    "/v1/segments/{name}/members": read(
        "The exact size of a segment and one page of its members",
        [
            NAME,
            query("at", INSTANT, "evaluate the rules at this instant (default: the stored membership)"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 100)"),
            query("next", {"type": "string"}, "the `next` token of the previous page"),
        ],
        {
            "type": "object",
            "required": ["segment", "at", "count", "members", "next"],
            "properties": {
                "segment": {"type": "string"},
                "at": INSTANT,
                "count": COUNT,
                "members": {"type": "array", "items": ref("User")},
                "next": {"type": ["string", "null"]},
            },
        },
        not_found=True,
    ),
    "/v1/segments/{name}/explain": read(
        "Whether one user is in a segment, clause by clause (exactly one of user_id and device_id)",
        [
            NAME,
            query("user_id", {"type": "string"}, "the user's id"),
            query("device_id", {"type": "string"}, "an anonymous device's id"),
            query("at", INSTANT, "evaluate at this instant (default: now)"),
        ],
        {
            "type": "object",
            "required": ["user", "in", "segment", "at", "matched", "clauses"],
            "properties": {
                "user": ref("User"),
                "in": {"type": "boolean"},
                "segment": {"type": "string"},
                "title": {"type": ["string", "null"]},
                "at": INSTANT,
                "matched": {"type": "boolean"},
                "clauses": {"type": "array", "items": {"type": "object"}},
                "condition": {"type": "object"},
            },
        },
        not_found=True,
    ),
    "/v1/campaigns": read(
        "Every campaign: deployed ones in file order, then those removed from the files (paused)",
        [],
        {
            "type": "object",
            "required": ["campaigns"],
            "properties": {"campaigns": {"type": "array", "items": ref("Campaign")}},
        },
        not_found=False,
    ),
    "/v1/campaigns/{name}/sends": read(
        "A campaign's sends (one per trigger), newest first, one page; with a user, only that user's",
        [
            CAMPAIGN,
            query("user_id", {"type": "string"}, "only this user's sends"),
            query("device_id", {"type": "string"}, "only this anonymous user's sends"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size (default 100)"),
            query("next", {"type": "string"}, "the `next` token of the previous page"),
        ],
        {
            "type": "object",
            "required": ["campaign", "sends", "next"],
            "properties": {
                "campaign": {"type": "string"},
                "user": ref("User"),
                "sends": {"type": "array", "items": ref("Send")},
                "next": {"type": ["string", "null"]},
            },
        },
        not_found=True,
        what="no such campaign, or no such user",
    ),
    "/v1/campaigns/{name}/explain": read(
        "One user's history with a campaign, and whether a trigger now would send (exactly one of"
        " user_id and device_id)",
        [
            CAMPAIGN,
            query("user_id", {"type": "string"}, "the user's id"),
            query("device_id", {"type": "string"}, "an anonymous device's id"),
            query("at", INSTANT, "the instant of the would-be trigger (default: now)"),
        ],
        {
            "type": "object",
            "required": [
                "campaign",
                "user",
                "at",
                "status",
                "since",
                "reason",
                "would_send",
                "stop",
                "rules",
                "push",
                "history",
            ],
            "properties": {
                "campaign": {"type": "string"},
                "user": ref("User"),
                "at": INSTANT,
                "status": CAMPAIGN_STATUS,
                "since": NULLABLE_INSTANT,
                "reason": NULLABLE_STRING,
                "would_send": {"type": "boolean"},
                "stop": {"oneOf": [{"type": "null"}, ref("Rule")]},
                "rules": {"type": "array", "items": ref("Rule")},
                "push": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["title", "body", "deep_link", "image"],
                            "properties": {
                                "title": {"type": "string"},
                                "body": {"type": "string"},
                                "deep_link": NULLABLE_STRING,
                                "image": NULLABLE_STRING,
                            },
                        },
                    ]
                },
                "history": {"type": "array", "items": ref("Send")},
            },
        },
        not_found=True,
        what="no such campaign, or no such user",
    ),
    "/v1/campaigns/{name}/report": read(
        "A campaign's triggers, outcomes and results, in total and per UTC day of the trigger",
        [
            CAMPAIGN,
            query("from", DATE, "the first day (default: the campaign's first trigger)"),
            query("to", DATE, "the last day (default: the campaign's last trigger)"),
        ],
        {
            "type": "object",
            "required": ["campaign", "status", "since", "reason", *REPORT_FIGURES, "days"],
            "properties": {
                "campaign": {"type": "string"},
                "status": CAMPAIGN_STATUS,
                "since": NULLABLE_INSTANT,
                "reason": NULLABLE_STRING,
                **REPORT_PROPERTIES,
                "days": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["date", *REPORT_FIGURES],
                        "properties": {"date": DATE, **REPORT_PROPERTIES},
                    },
                },
            },
        },
        not_found=True,
        what="no such campaign",
    ),
    "/v1/campaigns/{name}/pause": command(
        "Pause a campaign: its triggers and the sends not yet made end `paused` (idempotent)",
        {
            "type": "object",
            "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
        },
    ),
    "/v1/campaigns/{name}/resume": command(
        "Resume a campaign paused by hand or by its guardrail (idempotent)", None
    ),
    "/v1/openapi.json": read(
        "This description (OpenAPI 3.1)",
        [],
        {"type": "object", "required": ["openapi", "paths"]},
        not_found=False,
    ),
}


def document() -> dict[str, Any]:
    def scheme(kind: str, bearer: bool) -> dict[str, Any]:
        description = f"a {kind} key (api.md: Errors and auth)"
        if bearer:
            return {"type": "http", "scheme": "bearer", "description": description}
        return {"type": "apiKey", "in": "header", "name": "x-api-key", "description": description}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kudos HTTP API",
            "version": "1",
            "description": "Active-user figures, segments and campaigns for an app (docs/api.md). Every route needs "
            "a key on AWS: an app key on the SDK routes, a server key on the others.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "AppKey": scheme("app", False),
                "AppBearer": scheme("app", True),
                "ServerKey": scheme("server", False),
                "ServerBearer": scheme("server", True),
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2) + "\n"


if __name__ == "__main__":
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT}")
