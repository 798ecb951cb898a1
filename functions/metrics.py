"""GET /v1/metrics/active-users, with a server key."""

from aws_lambda_powertools.event_handler import Response

from functions.http import build_app, json_response, lambda_handler, query_parameter
from kudos.metrics.active_users import active_users_report
from kudos.runtime import services

app = build_app("server")


@app.get("/v1/metrics/active-users")
def get_active_users() -> Response:
    svc = services()
    report = active_users_report(
        svc.store, svc.settings, svc.clock(), query_parameter(app, "from"), query_parameter(app, "to")
    )
    return json_response(200, report)


handler = lambda_handler(app)
