"""Writes functions/openapi.json, the OpenAPI 3.1 description of every route (api.md).

The JSON file is what `GET /v1/openapi.json` serves and what schemathesis tests `kudos serve`
against; this module is where it is edited: `python -m functions.openapi_document` rewrites it, and
tests/unit/test_openapi.py fails when the file and this module (or template.yaml's routes) disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}, "example": "top_users"}
COUNT = {"type": "integer", "minimum": 0}


def read(
    summary: str, parameters: list[dict[str, Any]], ok: dict[str, Any], *, not_found: bool
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "the answer", "content": json_content(ok)},
        "400": error("a parameter is wrong"),
        "401": UNAUTHORIZED,
        "405": WRONG_METHOD,
    }
    if not_found:
        responses["404"] = error("no such segment, or no such user")
    return {
        "get": {
            "summary": summary,
            "security": [{"ServerKey": []}, {"ServerBearer": []}],
            "parameters": parameters,
            "responses": responses,
        }
    }


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
            "description": "Active-user figures and segments for an app (docs/api.md). Every route needs "
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
