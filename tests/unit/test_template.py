"""template.yaml says what the code and the contract (api.md) expect: routes, handlers, tables, IAM."""

from __future__ import annotations

import ast
import importlib
import json
import re
import tomllib
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
import yaml
from botocore.client import BaseClient
from moto import mock_aws

from functions.http import ROUTES
from kudos.core.clock import fixed_clock
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.runtime import Services, install, reset
from kudos.store.dynamo import Store
from kudos.store.keys import TTL_ATTRIBUTE
from kudos.store.schema import create_tables, table_definitions
from kudos.store.secrets import forget_keys

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

RUNTIME = "python3.13"

# Logical id -> handler. Which routes each serves is functions/http.py's ROUTES, and what each may
# call is what it calls: both are checked against the template below.
FUNCTIONS: dict[str, str] = {
    "AuthorizerFunction": "functions.authorizer.handler",
    "SdkIngestFunction": "functions.sdk_ingest.handler",
    "BackendIngestFunction": "functions.backend_ingest.handler",
    "MetricsFunction": "functions.metrics.handler",
    "SegmentsFunction": "functions.segments.handler",
    "CampaignsFunction": "functions.campaigns.handler",
    "RollupFunction": "functions.rollup.handler",
    "SweepFunction": "functions.sweep.handler",
}
TABLES = ("UsersTable", "ActivityTable")
# Beside the tables: what a function may do on the stack's other resources, each on its own.
NON_DYNAMODB_RESOURCES = ("EventBus", "SweepPartsQueue")
NON_DYNAMODB_ACTIONS = ("events:PutEvents", "sqs:SendMessage")


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation's short tags (!Ref, !GetAtt, !Sub...) as their long form."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@cache
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template()["Resources"].items() if res["Type"] == kind}


def functions() -> dict[str, dict[str, Any]]:
    return resources("AWS::Serverless::Function")


def prop(function: dict[str, Any], name: str) -> Any:
    """A function property, falling back on Globals as SAM does."""
    return function["Properties"].get(name, template().get("Globals", {}).get("Function", {}).get(name))


def http_routes() -> dict[str, str]:
    """'METHOD /path' -> the logical id of the function it invokes."""
    routes: dict[str, str] = {}
    for name, function in functions().items():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] != "HttpApi":
                continue
            route = f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"
            assert route not in routes, f"{route} is declared twice"
            assert event["Properties"].get("ApiId") == {"Ref": "HttpApi"}, f"{route} is not on HttpApi"
            routes[route] = name
    return routes


def test_the_template_declares_exactly_the_expected_functions() -> None:
    assert set(functions()) == set(FUNCTIONS)


def test_every_route_goes_to_the_function_the_resolvers_route_table_names() -> None:
    # The resolvers' table and the template's routes are one table: any difference fails here.
    expected = {
        f"{method} {path}": name for path, served in ROUTES.items() for method, name in served.items()
    }
    # Each path also has an ANY route to the same function, which answers 405 to other methods
    # (API Gateway itself would answer 404).
    fallbacks = {f"ANY {route.split(' ', 1)[1]}": name for route, name in expected.items()}
    assert http_routes() == expected | fallbacks


def test_the_rollup_runs_daily_on_a_schedule() -> None:
    events = functions()["RollupFunction"]["Properties"]["Events"]
    schedules = [e["Properties"]["Schedule"] for e in events.values() if e["Type"] == "Schedule"]
    assert len(schedules) == 1
    assert re.fullmatch(r"cron\(\d+ \d+ \* \* \? \*\)", schedules[0]), schedules[0]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_handler_is_a_module_of_the_repository_that_defines_it(name: str) -> None:
    handler = functions()[name]["Properties"]["Handler"]
    assert handler == FUNCTIONS[name]
    module, _, attribute = handler.rpartition(".")
    base = ROOT.joinpath(*module.split("."))
    candidates = [base.with_suffix(".py"), base / "__init__.py"]
    source = next((path for path in candidates if path.is_file()), None)
    assert source is not None, f"{handler}: neither {candidates[0]} nor {candidates[1]} exists"
    # Read, not imported: importing would run the module's start-up code.
    defined: set[str] = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            defined.update(alias.asname or alias.name for alias in node.names)
    assert attribute in defined, f"{source.relative_to(ROOT)} defines no top-level {attribute!r}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_runtime_and_architecture(name: str) -> None:
    function = functions()[name]
    assert prop(function, "Runtime") == RUNTIME
    assert prop(function, "Architectures") == ["arm64"]
    assert {"Ref": "DepsLayer"} in prop(function, "Layers")


def test_the_layer_targets_the_same_runtime() -> None:
    layer = resources("AWS::Serverless::LayerVersion")["DepsLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == [RUNTIME]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    layer_makefile = (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text()
    assert "--python-version $(LAMBDA_PYTHON)" in layer_makefile
    assert f"LAMBDA_PYTHON := {RUNTIME.removeprefix('python')}" in layer_makefile
    assert "aarch64" in layer_makefile


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_a_build_target(name: str) -> None:
    function = functions()[name]
    assert function["Metadata"] == {"BuildMethod": "makefile"}
    makefile = (ROOT / prop(function, "CodeUri") / "Makefile").read_text()
    assert re.search(rf"^FUNCTIONS :=.*\b{name}\b", makefile, re.MULTILINE), f"no build-{name} in Makefile"


def test_function_artifacts_hold_every_package_of_the_project() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    makefile = (ROOT / "deploy/function/Makefile").read_text()
    copied = re.search(r"^PACKAGES := (.*)$", makefile, re.MULTILINE)
    assert copied
    assert set(copied.group(1).split()) == packages
    # Settings finds the rule files beside the packages, as the Makefile lays them out.
    assert re.search(r"^DATA := segments$", makefile, re.MULTILINE)
    assert DEFAULT_SEGMENTS_DIR == ROOT / "segments"


def test_the_layer_installs_every_runtime_dependency() -> None:
    def name(requirement: str) -> str:
        return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {name(r) for r in pyproject["project"]["dependencies"]}
    lines = (ROOT / "deploy/layer/requirements.txt").read_text().splitlines()
    pinned = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert needed <= {name(r) for r in pinned}
    for requirement in pinned:
        assert "==" in requirement, f"{requirement}: pin an exact version"


# --- IAM --------------------------------------------------------------------------------------------
# moto does not enforce IAM. So every function runs events/ (every route and schedule, and the
# authorizer in front of each HTTP event) on moto, every AWS call it makes is recorded, and its
# policy must be exactly what it called: a call not granted fails (it would be AccessDenied on AWS),
# and so does a grant never used (least privilege). A new route or function needs a sample in
# events/ (tests/unit/test_events.py insists), and then this test tells what its policy must hold.

# A resource as the test compares it: "UsersTable" (a table's own ARN), "UsersTable/index/*" (its
# indexes), "parameter:AppKeysParameter" (the SSM parameter a stack parameter names).
_INDEXES = re.compile(r"^\$\{(\w+)\.Arn\}/index/([\w.-]+)$")
_SSM_PARAMETER = re.compile(
    r"^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:parameter\$\{(\w+)\}$"
)


def statements(name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in functions()[name]["Properties"].get("Policies", []):
        # Only inline documents: SAM policy templates and managed policies are not least privilege here.
        assert isinstance(policy, dict), f"{name}: policy {policy!r} is not an inline document"
        assert "Statement" in policy, f"{name}: policy {policy!r} is not an inline document"
        found.extend(policy["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """The test's name for a policy resource; fails on anything broader than one table or parameter."""
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        table, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(table)
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        if match := _INDEXES.match(text):
            return f"{match.group(1)}/index/{match.group(2)}"
        if match := _SSM_PARAMETER.match(text):
            return f"parameter:{match.group(1)}"
    raise AssertionError(f"resource {resource!r} is neither a table, its indexes, nor a named SSM parameter")


def granted(name: str) -> set[tuple[str, str]]:
    """(resource, "service:Action") for every pair the function's policy allows."""
    pairs: set[tuple[str, str]] = set()
    for statement in statements(name):
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement, f"{name}: conditions are not modelled here"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"
            for resource in as_list(statement["Resource"]):
                pairs.add((resource_name(resource), action))
    return pairs


def test_no_policy_anywhere_grants_a_wildcard() -> None:
    def walk(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node] if "Effect" in node and "Action" in node else []
            for value in node.values():
                found.extend(walk(value))
            return found
        if isinstance(node, list):
            return [s for value in node for s in walk(value)]
        return []

    for statement in walk(template()["Resources"]):
        assert all("*" not in a for a in as_list(statement["Action"])), statement
        for resource in as_list(statement["Resource"]):
            resource_name(resource)


# What one AWS API call is authorized against: (resource, IAM action) for each item it touches.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(physical resource, "service:Action"); an index is written "<table>/index/<name>"."""
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(table, f"dynamodb:{operation}") for table in params["RequestItems"]]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [
                (body["TableName"], f"dynamodb:{_TRANSACT_ACTIONS[kind]}")
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        table = params.get("TableName", "?")
        if params.get("IndexName"):
            table = f"{table}/index/{params['IndexName']}"
        return [(table, f"dynamodb:{operation}")]
    if service == "ssm" and "Name" in params:
        return [(params["Name"], f"ssm:{operation}")]
    if service == "events" and operation == "PutEvents":
        return [(entry["EventBusName"], "events:PutEvents") for entry in params["Entries"]]
    if service == "sqs" and operation in ("SendMessage", "SendMessageBatch"):
        # SendMessageBatch is authorized as sqs:SendMessage.
        return [(params["QueueUrl"].rsplit("/", 1)[-1], "sqs:SendMessage")]
    return [("?", f"{service}:{operation}")]


def scheduled_function(event: dict[str, Any]) -> str:
    """The function a scheduled event is for: SAM names a Schedule's rule <stack>-<LogicalId><Event>-<id>."""
    rule = event["resources"][0].rsplit("/", 1)[-1]
    candidates = [
        name
        for name, function in functions().items()
        if any(e["Type"] == "Schedule" for e in function["Properties"].get("Events", {}).values())
        and f"-{name}" in rule
    ]
    assert len(candidates) == 1, f"{rule}: cannot tell which scheduled function it is for"
    return candidates[0]


def queue_function(event: dict[str, Any]) -> str:
    """The function an SQS event is for: the one whose SQS event source reads that queue."""
    queue = event["Records"][0]["eventSourceARN"].rsplit(":", 1)[-1]
    candidates = [
        name
        for name, function in functions().items()
        for source in function["Properties"].get("Events", {}).values()
        if source["Type"] == "SQS" and source["Properties"]["Queue"]["Fn::GetAtt"][0] in queue
    ]
    assert len(candidates) == 1, f"{queue}: cannot tell which function reads it"
    return candidates[0]


def sample_events() -> list[tuple[str, dict[str, Any], float]]:
    """(function logical id, event, its time) for each events/*.json, in a replay order."""
    routes = http_routes()
    order = [
        "sessions",
        "push_tokens",
        "push_tokens_new_owner",
        "push_events",
        "users_track",
        "users_identify",
        "users_delete",
    ]
    paths = sorted(
        (ROOT / "events").glob("*.json"),
        key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name),
    )
    samples = []
    for path in paths:
        event = json.loads(path.read_text())
        if "routeKey" in event:
            samples.append((routes[event["routeKey"]], event, event["requestContext"]["timeEpoch"] / 1000))
        elif "Records" in event:
            # An SQS batch: the function that consumes the queue; its time, the first message's.
            sent = int(event["Records"][0]["attributes"]["SentTimestamp"]) / 1000
            samples.append((queue_function(event), event, sent))
        else:
            samples.append(
                (scheduled_function(event), event, datetime.fromisoformat(event["time"]).timestamp())
            )
    return samples


def variant(
    sample: str, at: str, *, body: Any = None, query: dict[str, str] | None = None
) -> tuple[str, dict[str, Any], float]:
    """events/<sample>.json received at ``at``, with another body or query."""
    event = json.loads((ROOT / "events" / f"{sample}.json").read_text())
    now = datetime.fromisoformat(at)
    context = event["requestContext"]
    context["timeEpoch"] = int(now.timestamp() * 1000)
    context["time"] = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    context["requestId"] = uuid.uuid4().hex
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-length"] = str(len(event["body"].encode()))
    if query is not None:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = query
    return http_routes()[event["routeKey"]], event, now.timestamp()


def session(session_id: str, user: str, started: str, ended: str | None = None) -> dict[str, Any]:
    return {"session_id": session_id, "device_id": f"d-{user}", "user_id": user, "started_at": started} | (
        {"ended_at": ended} if ended else {}
    )


def rare_paths() -> list[tuple[str, dict[str, Any], float]]:
    """Requests that take the paths events/ does not, each of which a policy must allow."""
    return [
        # A session uploaded again with its end: the stored session is updated.
        variant(
            "sessions",
            "2026-11-23T10:00:00Z",
            body={"sessions": [session("r-1", "u-r1", "2026-11-22T08:00:00Z")]},
        ),
        variant(
            "sessions",
            "2026-11-23T10:05:00Z",
            body={"sessions": [session("r-1", "u-r1", "2026-11-22T08:00:00Z", "2026-11-22T08:10:00Z")]},
        ),
        # A late upload moves the user's first activity earlier: the new-user marker moves.
        variant(
            "sessions",
            "2026-11-23T11:00:00Z",
            body={"sessions": [session("r-2", "u-r1", "2026-11-15T08:00:00Z")]},
        ),
        # A session a little in the future, then a backend update today: the marker moves back.
        variant(
            "sessions",
            "2026-11-23T12:00:00Z",
            body={"sessions": [session("r-3", "u-r3", "2026-11-24T06:00:00Z")]},
        ),
        variant(
            "users_track",
            "2026-11-23T12:05:00Z",
            body={"attributes": [{"external_id": "u-r3", "plan": "gold"}]},
        ),
        # Figures of days past the acceptance window are final: read from, and kept in, the rollups.
        variant(
            "metrics_active_users", "2026-11-23T13:00:00Z", query={"from": "2026-09-01", "to": "2026-11-22"}
        ),
        # A purchase that makes a user a big spender: the entry is recorded and announced.
        variant(
            "users_track",
            "2026-11-23T14:00:00Z",
            body={
                "purchases": [
                    {
                        "external_id": "u-r3",
                        "product_id": "gold-pack",
                        "currency": "EUR",
                        "price": 600,
                        "time": "2026-11-23T13:59:00Z",
                    }
                ]
            },
        ),
    ]


def authorizer_event(event: dict[str, Any]) -> dict[str, Any]:
    """What API Gateway sends the authorizer (REQUEST, payload 2.0) for an HTTP event."""
    context = event["requestContext"]
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:us-east-1:{context['accountId']}:{context['apiId']}/$default/"
        f"{context['http']['method']}{event['rawPath']}",
        "identitySource": [event["headers"].get("x-api-key", ""), event["routeKey"]],
        "routeKey": event["routeKey"],
        "rawPath": event["rawPath"],
        "rawQueryString": event["rawQueryString"],
        "headers": event["headers"],
        "queryStringParameters": event.get("queryStringParameters"),
        "requestContext": context,
        "pathParameters": event.get("pathParameters", {}),
    }


def lambda_context(name: str) -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        aws_request_id=str(uuid.uuid4()),
    )


def handler_of(name: str) -> Any:
    module, _, attribute = functions()[name]["Properties"]["Handler"].rpartition(".")
    return getattr(importlib.import_module(module), attribute)


# The queue events/sweep_part.json comes from (its eventSourceARN).
SWEEP_QUEUE = "kudos-SweepPartsQueue-EXAMPLE"
# The keys events/ send.
APP_KEY = "kudos-app-key-EXAMPLE-0000000001"
SERVER_KEY = "kudos-server-key-EXAMPLE-00000001"


@dataclass
class Replay:
    # function logical id -> the (resource, action) pairs it called, resources by logical name
    used: dict[str, set[tuple[str, str]]]
    problems: list[str]


@cache
def replay() -> Replay:
    suffix = uuid.uuid4().hex[:12]
    parameter_names = {
        "AppKeysParameter": f"/kudos-{suffix}/app-keys",
        "ServerKeysParameter": f"/kudos-{suffix}/server-keys",
    }
    environment = {
        "USERS_TABLE": f"kudos-users-{suffix}",
        "ACTIVITY_TABLE": f"kudos-activity-{suffix}",
        "KUDOS_AUTH_REQUIRED": "true",
        "KUDOS_APP_KEYS_PARAMETER": parameter_names["AppKeysParameter"],
        "KUDOS_SERVER_KEYS_PARAMETER": parameter_names["ServerKeysParameter"],
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "EVENT_BUS_NAME": f"kudos-bus-{suffix}",
        # Full sweeps fanned out over two parts, so that the sweep queue is used.
        "SWEEP_PARTS": "2",
    }
    logical = {
        environment["EVENT_BUS_NAME"]: "EventBus",
        SWEEP_QUEUE: "SweepPartsQueue",
        environment["USERS_TABLE"]: "UsersTable",
        environment["ACTIVITY_TABLE"]: "ActivityTable",
        **{physical: f"parameter:{name}" for name, physical in parameter_names.items()},
    }

    def logical_name(resource: str) -> str:
        if resource in logical:
            return logical[resource]
        table, slash, rest = resource.partition("/")
        return logical.get(table, table) + slash + rest

    used: dict[str, set[tuple[str, str]]] = {name: set() for name in functions()}
    problems: list[str] = []
    calls: list[tuple[str, str]] = []
    original = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        calls.extend(iam_actions(client.meta.service_model.endpoint_prefix, operation, params))
        return original(client, operation, params)

    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
        monkeypatch.delenv("KUDOS_APP_KEYS", raising=False)
        monkeypatch.delenv("KUDOS_SERVER_KEYS", raising=False)
        settings = Settings.from_env(environment)
        reset()
        try:
            boto3.client("events", region_name="us-east-1").create_event_bus(
                Name=environment["EVENT_BUS_NAME"]
            )
            queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=SWEEP_QUEUE)[
                "QueueUrl"
            ]
            monkeypatch.setenv("SWEEP_QUEUE_URL", queue_url)
            settings = settings.model_copy(update={"sweep_queue_url": queue_url})
            store = Store(settings)
            create_tables(store.client, settings)
            ssm = boto3.client("ssm", region_name="us-east-1")
            ssm.put_parameter(
                Name=parameter_names["AppKeysParameter"],
                Value=f"app-key-old-000000000000,{APP_KEY}",
                Type="SecureString",
            )
            ssm.put_parameter(
                Name=parameter_names["ServerKeysParameter"], Value=SERVER_KEY, Type="SecureString"
            )
            monkeypatch.setattr(BaseClient, "_make_api_call", recording)

            def run(name: str, event: dict[str, Any], what: str) -> Any:
                # Each function runs in containers of its own: none finds keys another one read.
                forget_keys()
                calls.clear()
                try:
                    result = handler_of(name)(event, lambda_context(name))
                except (ImportError, AttributeError) as error:
                    problems.append(f"{name}: {error}")
                    return None
                used[name].update((logical_name(resource), action) for resource, action in calls)
                return result

            for name, event, now in [*sample_events(), *rare_paths()]:
                install(Services(settings=settings, store=store, clock=fixed_clock(now)))
                what = event.get("routeKey", event.get("detail-type"))
                if "routeKey" in event:
                    decision = run("AuthorizerFunction", authorizer_event(event), what)
                    if not (isinstance(decision, dict) and decision.get("isAuthorized") is True):
                        problems.append(f"the authorizer refused {what} with the key events/ sends")
                result = run(name, event, what)
                if isinstance(result, dict) and result.get("statusCode", 200) >= 500:
                    problems.append(
                        f"{name} answered {what} with {result['statusCode']}: {result.get('body')}"
                    )
        finally:
            reset()
    return Replay(used, problems)


def test_the_sample_events_run_and_the_authorizer_allows_them() -> None:
    assert not replay().problems, "\n".join(replay().problems)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_policy_grants_exactly_what_the_function_calls(name: str) -> None:
    calls = replay().used[name]
    grants = granted(name)
    missing = sorted(calls - grants)
    unused = sorted(grants - calls)
    report = [f"called but not granted: {action} on {resource}" for resource, action in missing]
    report += [f"granted but never called: {action} on {resource}" for resource, action in unused]
    assert not report, f"{name}:\n" + "\n".join(report)


# --- tables -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TABLES)
def test_tables(name: str) -> None:
    """The tables on AWS are the ones the local server and the tests create (kudos/store/schema.py)."""
    table = resources("AWS::DynamoDB::Table")[name]
    properties = table["Properties"]
    settings = Settings(users_table="UsersTable", activity_table="ActivityTable")
    local = next(d for d in table_definitions(settings) if d["TableName"] == name)
    assert properties["BillingMode"] == local["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == local["KeySchema"]
    assert sorted(properties["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == sorted(
        local["AttributeDefinitions"], key=lambda d: d["AttributeName"]
    )
    assert properties.get("GlobalSecondaryIndexes", []) == local.get("GlobalSecondaryIndexes", [])
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("name", TABLES)
def test_items_expire_on_the_ttl_attribute_the_code_writes(name: str) -> None:
    ttl = resources("AWS::DynamoDB::Table")[name]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


# --- configuration ----------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    return template()["Globals"]["Function"]["Environment"]["Variables"]


def test_environment_names_are_the_ones_settings_reads() -> None:
    variables = environment()
    assert variables["USERS_TABLE"] == {"Ref": "UsersTable"}
    assert variables["ACTIVITY_TABLE"] == {"Ref": "ActivityTable"}
    assert variables["KUDOS_AUTH_REQUIRED"] == "true"
    assert variables["POWERTOOLS_SERVICE_NAME"] == "kudos"
    # Give every non-Powertools variable a distinct value and see it arrive in Settings.
    samples = {
        "USERS_TABLE": "users-t",
        "ACTIVITY_TABLE": "activity-t",
        "SESSION_MAX_AGE_DAYS": "31",
        "SESSION_MAX_FUTURE_DAYS": "2",
        "SESSION_RETENTION_DAYS": "121",
        "DAY_SHARDS": "5",
        "KUDOS_AUTH_REQUIRED": "true",
        "KUDOS_APP_KEYS_PARAMETER": "/kudos/app",
        "KUDOS_SERVER_KEYS_PARAMETER": "/kudos/server",
        "EVENT_BUS_NAME": "kudos-bus",
    }
    assert variables["EVENT_BUS_NAME"] == {"Ref": "EventBus"}
    assert {n for n in variables if not n.startswith("POWERTOOLS_")} == set(samples)
    settings = Settings.from_env(samples)
    assert settings.users_table == "users-t"
    assert settings.activity_table == "activity-t"
    assert settings.session_max_age_days == 31
    assert settings.session_max_future_days == 2
    assert settings.session_retention_days == 121
    assert settings.day_shards == 5
    assert settings.auth_required is True
    assert settings.app_keys_parameter == "/kudos/app"
    assert settings.server_keys_parameter == "/kudos/server"
    assert settings.event_bus_name == "kudos-bus"
    # On AWS no key is in the environment: the functions read them from SSM (kudos.store.secrets).
    assert not settings.app_keys
    assert not settings.server_keys


@pytest.mark.parametrize(
    ("parameter", "variable", "field"),
    [
        ("SessionMaxAgeDays", "SESSION_MAX_AGE_DAYS", "session_max_age_days"),
        ("SessionMaxFutureDays", "SESSION_MAX_FUTURE_DAYS", "session_max_future_days"),
        ("SessionRetentionDays", "SESSION_RETENTION_DAYS", "session_retention_days"),
        ("DayShards", "DAY_SHARDS", "day_shards"),
    ],
)
def test_parameters_default_to_the_settings_defaults(parameter: str, variable: str, field: str) -> None:
    assert environment()[variable] == {"Ref": parameter}
    declared = template()["Parameters"][parameter]
    assert declared["Default"] == getattr(Settings(), field)
    # Settings' bounds, so that a deploy fails rather than the functions at run time.
    Settings.model_validate({field: declared["MinValue"]})
    Settings.model_validate({field: declared["MaxValue"]})


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        ("AppKeysParameter", "KUDOS_APP_KEYS_PARAMETER"),
        ("ServerKeysParameter", "KUDOS_SERVER_KEYS_PARAMETER"),
    ],
)
def test_keys_are_named_ssm_parameters_not_template_values(parameter: str, variable: str) -> None:
    # The stack holds the parameter's name only; its value (the keys) never passes through
    # CloudFormation, the console or the Lambda environment.
    declared = template()["Parameters"][parameter]
    assert declared["Type"] == "String"
    assert re.fullmatch(declared["AllowedPattern"], declared["Default"])
    assert environment()[variable] == {"Ref": parameter}
    assert not any("KEYS" in name and "PARAMETER" not in name for name in environment())


def test_outputs_name_the_api_and_the_tables() -> None:
    outputs = template()["Outputs"]
    assert "HttpApi" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["UsersTableName"]["Value"] == {"Ref": "UsersTable"}
    assert outputs["ActivityTableName"]["Value"] == {"Ref": "ActivityTable"}


# --- authentication and throttling ------------------------------------------------------------------


def http_api() -> dict[str, Any]:
    (api,) = resources("AWS::Serverless::HttpApi").values()
    return api["Properties"]


def test_every_route_is_authorized_by_the_key_authorizer_before_its_function() -> None:
    auth = http_api()["Auth"]
    name = auth["DefaultAuthorizer"]
    authorizer = auth["Authorizers"][name]
    assert authorizer["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert authorizer["AuthorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["EnableSimpleResponses"] is True
    assert authorizer["EnableFunctionDefaultPermissions"] is True
    identity = authorizer["Identity"]
    # Without x-api-key API Gateway answers 401 without invoking anything. The route is part of the
    # cache key: an app key allowed on one route must not be allowed from the cache on a server route.
    assert [h.lower() for h in identity["Headers"]] == ["x-api-key"]
    assert identity["Context"] == ["routeKey"]
    ttl = identity["ReauthorizeEvery"]
    assert ttl == {"Ref": "AuthorizerCacheSeconds"}
    declared = template()["Parameters"]["AuthorizerCacheSeconds"]
    assert 0 < declared["Default"] <= 3600
    assert declared["MaxValue"] <= 3600
    # No route opts out of the default authorizer, the ANY fallbacks included.
    for function in functions().values():
        for event in function["Properties"].get("Events", {}).values():
            assert "Auth" not in event.get("Properties", {}), event
    assert functions()["AuthorizerFunction"]["Properties"].get("Events") is None


def test_the_authorizer_reads_both_key_lists_and_nothing_else() -> None:
    assert granted("AuthorizerFunction") == {
        ("parameter:AppKeysParameter", "ssm:GetParameter"),
        ("parameter:ServerKeysParameter", "ssm:GetParameter"),
    }


INGEST_ROUTES = {
    f"{method} {path}"
    for path, served in ROUTES.items()
    for method, name in served.items()
    if name in ("SdkIngestFunction", "BackendIngestFunction")
}


def test_ingest_routes_are_throttled_each_on_its_own() -> None:
    settings = http_api()["RouteSettings"]
    assert set(settings) == INGEST_ROUTES
    for route in INGEST_ROUTES:
        assert settings[route] == {
            "ThrottlingRateLimit": {"Ref": "IngestThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "IngestThrottlingBurstLimit"},
        }
    parameters = template()["Parameters"]
    assert (
        parameters["IngestThrottlingRateLimit"]["Default"] <= parameters["ApiThrottlingRateLimit"]["Default"]
    )
    assert (
        parameters["IngestThrottlingBurstLimit"]["Default"]
        <= parameters["ApiThrottlingBurstLimit"]["Default"]
    )


@pytest.mark.parametrize("name", ["SdkIngestFunction", "BackendIngestFunction"])
def test_ingest_functions_have_reserved_concurrency(name: str) -> None:
    properties = functions()[name]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == {"Ref": "IngestReservedConcurrency"}
    assert template()["Parameters"]["IngestReservedConcurrency"]["MinValue"] >= 1
