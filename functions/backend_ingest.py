"""Backend routes (Braze-compatible): users/track, identify and delete, with a server key."""

from aws_lambda_powertools.event_handler import Response

from functions.http import build_app, json_response, lambda_handler, request_body
from kudos.ingest.track import track_users
from kudos.ingest.users import delete_users, identify_users
from kudos.runtime import services

app = build_app("server")


@app.post("/v1/users/track")
def post_track() -> Response:
    svc = services()
    result = track_users(svc.store, svc.segments(), svc.settings, svc.clock(), request_body(app))
    return json_response(201, result.to_json())


@app.post("/v1/users/identify")
def post_identify() -> Response:
    svc = services()
    result = identify_users(svc.store, svc.segments(), svc.clock(), request_body(app))
    return json_response(201, result.to_json())


@app.post("/v1/users/delete")
def post_delete() -> Response:
    svc = services()
    return json_response(201, delete_users(svc.store, svc.clock(), request_body(app)))


handler = lambda_handler(app)
