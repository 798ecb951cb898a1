"""Campaign routes: list, sends, explain one user, report, pause and resume, with a server key."""

from aws_lambda_powertools.event_handler import Response

from functions.http import build_app, json_response, lambda_handler, query_parameter, request_body
from kudos.campaigns.queries import (
    campaign_sends,
    explain_campaign,
    list_campaigns,
    pause_campaign,
    report_campaign,
    resume_campaign,
)
from kudos.runtime import services

app = build_app("server")


@app.get("/v1/campaigns")
def get_campaigns() -> Response:
    svc = services()
    return json_response(200, list_campaigns(svc.store, svc.segments(), svc.settings.segments_dir))


@app.get("/v1/campaigns/<name>/sends")
def get_sends(name: str) -> Response:
    svc = services()
    page = campaign_sends(
        svc.store,
        svc.segments(),
        name,
        query_parameter(app, "user_id"),
        query_parameter(app, "device_id"),
        query_parameter(app, "limit"),
        query_parameter(app, "next"),
    )
    return json_response(200, page)


@app.get("/v1/campaigns/<name>/explain")
def get_explain(name: str) -> Response:
    svc = services()
    explanation = explain_campaign(
        svc.store,
        svc.segments(),
        svc.clock(),
        name,
        query_parameter(app, "user_id"),
        query_parameter(app, "device_id"),
        query_parameter(app, "at"),
    )
    return json_response(200, explanation)


@app.get("/v1/campaigns/<name>/report")
def get_report(name: str) -> Response:
    svc = services()
    report = report_campaign(
        svc.store, svc.segments(), name, query_parameter(app, "from"), query_parameter(app, "to")
    )
    return json_response(200, report)


@app.post("/v1/campaigns/<name>/pause")
def post_pause(name: str) -> Response:
    svc = services()
    # The body is optional: `{"reason": "..."}` says why, an empty body pauses without a reason.
    body = request_body(app) if app.current_event.body else None
    return json_response(200, pause_campaign(svc.store, svc.segments(), svc.clock(), name, body))


@app.post("/v1/campaigns/<name>/resume")
def post_resume(name: str) -> Response:
    svc = services()
    return json_response(200, resume_campaign(svc.store, svc.segments(), svc.clock(), name))


handler = lambda_handler(app)
