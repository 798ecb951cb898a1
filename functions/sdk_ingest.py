"""SDK routes: sessions and push, called by the app with an app key."""

from aws_lambda_powertools.event_handler import Response

from functions.http import build_app, json_response, lambda_handler, request_body
from kudos.ingest.push import record_push_events, register_token
from kudos.ingest.sessions import ingest_sessions
from kudos.runtime import services

app = build_app("app")


@app.post("/v1/sessions")
def post_sessions() -> Response:
    svc = services()
    result = ingest_sessions(svc.store, svc.segments(), svc.settings, svc.clock(), request_body(app))
    return json_response(201, result.to_json())


@app.post("/v1/push/tokens")
def post_push_tokens() -> Response:
    svc = services()
    return json_response(201, register_token(svc.store, svc.segments(), svc.clock(), request_body(app)))


@app.post("/v1/push/events")
def post_push_events() -> Response:
    svc = services()
    result = record_push_events(svc.store, svc.segments(), svc.settings, svc.clock(), request_body(app))
    return json_response(201, result.to_json())


handler = lambda_handler(app)
