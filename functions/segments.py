"""Segment routes: list, members (stored, or at an instant), changes, and explain one user, with a server key."""

from aws_lambda_powertools.event_handler import Response

from functions.http import build_app, json_response, lambda_handler, query_parameter
from kudos.runtime import services
from kudos.segments.queries import (
    explain_membership,
    list_segments,
    segment_changes,
    segment_members,
)

app = build_app("server")


@app.get("/v1/segments")
def get_segments() -> Response:
    svc = services()
    return json_response(200, list_segments(svc.store, svc.segments(), svc.settings.segments_dir))


@app.get("/v1/segments/<name>/members")
def get_members(name: str) -> Response:
    svc = services()
    page = segment_members(
        svc.store,
        svc.segments(),
        svc.clock(),
        name,
        query_parameter(app, "at"),
        query_parameter(app, "limit"),
        query_parameter(app, "next"),
    )
    return json_response(200, page)


@app.get("/v1/segments/<name>/changes")
def get_changes(name: str) -> Response:
    svc = services()
    page = segment_changes(
        svc.store,
        svc.segments(),
        svc.clock(),
        name,
        query_parameter(app, "from"),
        query_parameter(app, "to"),
        query_parameter(app, "limit"),
        query_parameter(app, "next"),
    )
    return json_response(200, page)


@app.get("/v1/segments/<name>/explain")
def get_explain(name: str) -> Response:
    svc = services()
    explanation = explain_membership(
        svc.store,
        svc.segments(),
        svc.clock(),
        name,
        query_parameter(app, "user_id"),
        query_parameter(app, "device_id"),
        query_parameter(app, "at"),
    )
    return json_response(200, explanation)


handler = lambda_handler(app)
