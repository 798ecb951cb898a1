"""Reading template.yaml the way SAM does, and routing requests the way API Gateway does."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from kudos.local.routes import (
    Function,
    NoRoute,
    Route,
    RouteMatch,
    Router,
    TemplateError,
    find_template,
    load_template,
    resolve_handler,
)

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    CodeUri: deploy/function/
    Timeout: 29
    MemorySize: 512
    Environment:
      Variables:
        USERS_TABLE: !Ref UsersTable
        POWERTOOLS_SERVICE_NAME: kudos
        POWERTOOLS_DEV: false
        DAY_SHARDS: 4
        QUEUE: !GetAtt Queue.Arn
Resources:
  SdkIngestFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      Handler: functions.sdk_ingest.handler
      Environment:
        Variables:
          POWERTOOLS_SERVICE_NAME: ingest
          LEVEL: !If [IsProd, INFO, DEBUG]
      Policies:
        - Statement:
            Resource: !Sub "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${UsersTable}"
      Events:
        Sessions:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: post
            Path: /v1/sessions
        SessionsOther:
          Type: HttpApi
          Properties:
            Method: ANY
            Path: /v1/sessions
  SegmentsFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: functions.segments.handler
      MemorySize: 1024
      Timeout: 10
      Events:
        List:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /v1/segments
        Members:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /v1/segments/{name}/members
  RollupFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: functions.rollup.handler
      Events:
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(15 0 * * ? *)
            Input: '{"kind": "rollup"}'
        Hourly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
  UsersTable:
    Type: AWS::DynamoDB::Table
Outputs:
  Url:
    Value: !Sub "https://${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"
  Joined:
    Value: !Join [",", [!Ref UsersTable, !Select [0, !GetAZs ""]]]
"""


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return path


def test_functions_handlers_routes_and_schedules_are_read(template_path: Path) -> None:
    template = load_template(template_path)

    assert set(template.functions) == {"SdkIngestFunction", "SegmentsFunction", "RollupFunction"}
    ingest = template.functions["SdkIngestFunction"]
    assert ingest.handler == "functions.sdk_ingest.handler"
    assert ingest.code_dir == template_path.parent / "deploy" / "function"
    assert (ingest.memory_mb, ingest.timeout_s) == (512, 29.0)
    assert ingest.routes == (Route("POST", "/v1/sessions"), Route("ANY", "/v1/sessions"))
    segments = template.functions["SegmentsFunction"]
    assert (segments.memory_mb, segments.timeout_s) == (1024, 10.0)
    assert segments.routes[1].route_key == "GET /v1/segments/{name}/members"
    rollup = template.functions["RollupFunction"]
    assert rollup.routes == ()
    assert [(s.name, s.expression, s.input) for s in rollup.schedules] == [
        ("Nightly", "cron(15 0 * * ? *)", '{"kind": "rollup"}'),
        ("Hourly", "rate(1 hour)", None),
    ]


def test_only_plain_environment_values_are_kept(template_path: Path) -> None:
    template = load_template(template_path)

    assert template.globals_environment == {
        "POWERTOOLS_SERVICE_NAME": "kudos",
        "POWERTOOLS_DEV": "false",
        "DAY_SHARDS": "4",
    }
    # A function's own values win over Globals; intrinsics (!Ref, !If...) cannot be resolved here.
    assert template.functions["SdkIngestFunction"].environment == {
        "POWERTOOLS_SERVICE_NAME": "ingest",
        "POWERTOOLS_DEV": "false",
        "DAY_SHARDS": "4",
    }


def test_a_function_is_found_by_logical_id_or_handler(template_path: Path) -> None:
    template = load_template(template_path)

    assert template.function("SegmentsFunction").handler == "functions.segments.handler"
    assert template.function("functions.rollup.handler").logical_id == "RollupFunction"
    with pytest.raises(TemplateError, match="SdkIngestFunction"):
        template.function("NoSuchFunction")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("key: [unclosed", "not valid YAML"),
        ("- a list", "not a CloudFormation template"),
        ("Resources: 3", "no Resources"),
        ("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {}\n", "no Handler"),
    ],
)
def test_a_bad_template_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    with pytest.raises(TemplateError, match=message):
        load_template(path)


def test_the_template_is_found_from_the_cwd_up(template_path: Path) -> None:
    nested = template_path.parent / "a" / "b"
    nested.mkdir(parents=True)

    assert find_template(nested) == template_path


def function(name: str, *routes: Route) -> Function:
    return Function(logical_id=name, handler=f"module.{name}", code_dir=Path("."), routes=routes)


@pytest.fixture
def router() -> Router:
    functions = [
        function("Sessions", Route("POST", "/v1/sessions"), Route("ANY", "/v1/sessions")),
        function("Track", Route("POST", "/v1/users/track")),
        function("List", Route("GET", "/v1/segments")),
        function("Members", Route("GET", "/v1/segments/{name}/members")),
        function("Special", Route("GET", "/v1/segments/special/members")),
        function("Files", Route("GET", "/files/{path+}")),
        function("Root", Route("GET", "/")),
    ]
    return Router({f.logical_id: f for f in functions})


def matched(router: Router, method: str, path: str) -> RouteMatch:
    match = router.match(method, path)
    assert isinstance(match, RouteMatch), match
    return match


def test_method_and_path_pick_the_function(router: Router) -> None:
    match = matched(router, "post", "/v1/users/track")

    assert match.function.logical_id == "Track"
    assert match.route.route_key == "POST /v1/users/track"
    assert match.path_parameters == {}
    assert matched(router, "GET", "/").function.logical_id == "Root"


def test_path_parameters_are_decoded(router: Router) -> None:
    match = matched(router, "GET", "/v1/segments/top%20users/members")

    assert match.function.logical_id == "Members"
    assert match.path_parameters == {"name": "top users"}
    assert match.route.route_key == "GET /v1/segments/{name}/members"


def test_a_literal_segment_beats_a_parameter(router: Router) -> None:
    assert matched(router, "GET", "/v1/segments/special/members").function.logical_id == "Special"


def test_a_greedy_parameter_takes_the_rest_of_the_path(router: Router) -> None:
    match = matched(router, "GET", "/files/a/b%2Fc/d.txt")

    assert match.path_parameters == {"path": "a/b/c/d.txt"}
    assert isinstance(router.match("GET", "/files/"), NoRoute)
    assert isinstance(router.match("GET", "/files"), NoRoute)


def test_a_named_method_beats_any_on_the_same_path(router: Router) -> None:
    assert matched(router, "POST", "/v1/sessions").route.method == "POST"
    assert matched(router, "DELETE", "/v1/sessions").route.method == "ANY"


def test_a_known_path_with_another_method_is_405(router: Router) -> None:
    assert router.match("DELETE", "/v1/users/track") == NoRoute(405, "Method Not Allowed", ("POST",))
    assert router.match("POST", "/v1/segments/x/members") == NoRoute(405, "Method Not Allowed", ("GET",))


@pytest.mark.parametrize(
    "path", ["/v1/unknown", "/v1/users/track/", "/v1/segments//members", "/v1/segments/x/members/y", ""]
)
def test_an_unknown_path_is_404(router: Router, path: str) -> None:
    assert router.match("GET", path) == NoRoute(404, "Not Found")


def test_the_default_route_takes_what_nothing_else_matches() -> None:
    router = Router(
        {
            "Named": function("Named", Route("GET", "/named")),
            "Default": function("Default", Route("ANY", "$default")),
        }
    )

    assert matched(router, "GET", "/named").function.logical_id == "Named"
    fallback = matched(router, "POST", "/named")
    assert fallback.function.logical_id == "Default"
    assert fallback.route.route_key == "$default"
    assert matched(router, "GET", "/anything/else").function.logical_id == "Default"


def test_handlers_are_imported_on_first_use_from_the_code_uri(tmp_path: Path) -> None:
    module = f"kudos_test_handler_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            def handler(event, context):
                return {"got": event}
            """
        )
    )
    declared = Function(logical_id="F", handler=f"{module}.handler", code_dir=tmp_path)
    assert module not in sys.modules

    try:
        assert declared.resolve()({"a": 1}, None) == {"got": {"a": 1}}
        assert module in sys.modules
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


def test_a_code_uri_without_the_code_leaves_the_import_path_alone(tmp_path: Path) -> None:
    # BuildMethod: makefile stacks point CodeUri at a Makefile; the code is importable already.
    handler = resolve_handler("kudos.local.apigw.build_event", tmp_path)

    assert handler.__name__ == "build_event"
    assert str(tmp_path) not in sys.path


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        ("nodot", TemplateError),
        ("kudos.core.settings.NOT_THERE", TemplateError),
        ("no_such_module_x.h", ImportError),
    ],
)
def test_a_bad_handler_fails_when_resolved(handler: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        resolve_handler(handler)
