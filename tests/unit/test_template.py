"""template.yaml says what the code and the contract (api.md) expect: routes, handlers, tables, IAM."""

from __future__ import annotations

import ast
import importlib
import json
import re
import tomllib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
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
from kudos.core.identity import UserKey
from kudos.core.records import SendRecord
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, ENVIRONMENT_VARIABLES, Settings
from kudos.local.sqs import received_event
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
    "SendFunction": "functions.send.handler",
}
TABLES = ("UsersTable", "ActivityTable")
# Beside the tables: what a function may do on the stack's other resources, each on its own.
NON_DYNAMODB_RESOURCES = ("EventBus", "SweepPartsQueue", "SendQueue")
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

# A resource as the test compares it: "UsersTable" (a table's own ARN, or a queue's, an event
# bus's), "UsersTable/index/*" (its indexes), "parameter:AppKeysParameter" (the SSM parameter a stack
# parameter names), "app:FcmApplicationArn" (the SNS platform application a stack parameter names),
# "endpoints:FcmApplicationArn" (that application's platform endpoints, one per device token).
_INDEXES = re.compile(r"^\$\{(\w+)\.Arn\}/index/([\w.-]+)$")
_SSM_PARAMETER = re.compile(
    r"^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:parameter\$\{(\w+)\}$"
)
# The stack parameters naming SNS platform applications, and the platform each is for.
PUSH_APPLICATIONS = {
    "ApnsApplicationArn": "APNS",
    "ApnsSandboxApplicationArn": "APNS_SANDBOX",
    "FcmApplicationArn": "GCM",
}
# The parameters the replay deploys with: APNs and FCM configured, no APNs sandbox (ios pushes go
# to APNs when it is set, so a sandbox grant would be one never used).
REPLAY_PARAMETERS = {"ApnsApplicationArn": "set", "FcmApplicationArn": "set"}
_NO_VALUE = {"Ref": "AWS::NoValue"}


def parameter_value(name: str, parameters: dict[str, str]) -> Any:
    return parameters.get(name, template()["Parameters"][name].get("Default"))


def condition_holds(node: Any, parameters: dict[str, str]) -> bool:
    """A condition of template.yaml (Fn::Not, Fn::Equals, Fn::Or, Fn::And, Condition) for ``parameters``."""
    if isinstance(node, str):
        return condition_holds(template()["Conditions"][node], parameters)
    ((function, arguments),) = node.items()
    if function == "Fn::Condition":
        return condition_holds(arguments, parameters)
    if function == "Fn::Not":
        return not condition_holds(arguments[0], parameters)
    if function == "Fn::Or":
        return any(condition_holds(argument, parameters) for argument in arguments)
    if function == "Fn::And":
        return all(condition_holds(argument, parameters) for argument in arguments)
    if function == "Fn::Equals":
        left, right = (
            parameter_value(value["Ref"], parameters) if isinstance(value, dict) else value
            for value in arguments
        )
        return bool(left == right)
    raise AssertionError(f"condition {node!r} is not modelled here")


def resolved(node: Any, parameters: dict[str, str] | None) -> list[Any]:
    """``node`` with its Fn::If chosen for ``parameters`` ([] for AWS::NoValue); both branches
    when ``parameters`` is None (every grant the template could make)."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        condition, when_true, when_false = node["Fn::If"]
        if parameters is None:
            branches = [when_true, when_false]
        else:
            branches = [when_true if condition_holds(condition, parameters) else when_false]
        return [value for branch in branches for value in resolved(branch, parameters)]
    return [] if node == _NO_VALUE else [node]


def statements(name: str, parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in functions()[name]["Properties"].get("Policies", []):
        # Only inline documents: SAM policy templates and managed policies are not least privilege here.
        assert isinstance(policy, dict), f"{name}: policy {policy!r} is not an inline document"
        assert "Statement" in policy, f"{name}: policy {policy!r} is not an inline document"
        for statement in policy["Statement"]:
            found.extend(resolved(statement, parameters))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _endpoints_of(resource: dict[str, Any]) -> str | None:
    """The parameter P when ``resource`` is every platform endpoint of the application P names:
    `!Sub ["${Prefix}:endpoint/${Path}/*", {Prefix, Path}]`, P's ARN split at ":app/" (an
    application arn:...:app/GCM/kudos has its endpoints at arn:...:endpoint/GCM/kudos/<id>)."""
    text, variables = resource["Fn::Sub"]
    if text != "${Prefix}:endpoint/${Path}/*":
        return None
    for name in PUSH_APPLICATIONS:
        split = {"Fn::Split": [":app/", {"Ref": name}]}
        if variables == {"Prefix": {"Fn::Select": [0, split]}, "Path": {"Fn::Select": [1, split]}}:
            return name
    return None


def resource_name(resource: Any) -> str:
    """The test's name for a policy resource; fails on anything broader than one table, queue,
    parameter, platform application or its endpoints."""
    if isinstance(resource, dict) and set(resource) == {"Fn::GetAtt"}:
        table, attribute = resource["Fn::GetAtt"]
        assert attribute == "Arn", resource
        return str(table)
    if isinstance(resource, dict) and set(resource) == {"Ref"} and resource["Ref"] in PUSH_APPLICATIONS:
        return f"app:{resource['Ref']}"
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        if match := _INDEXES.match(text):
            return f"{match.group(1)}/index/{match.group(2)}"
        if match := _SSM_PARAMETER.match(text):
            return f"parameter:{match.group(1)}"
    sub_with_variables = isinstance(resource, dict) and set(resource) == {"Fn::Sub"}
    if (
        sub_with_variables
        and isinstance(resource["Fn::Sub"], list)
        and (application := _endpoints_of(resource))
    ):
        return f"endpoints:{application}"
    raise AssertionError(
        f"resource {resource!r} is neither a table, its indexes, a queue, a named SSM parameter, "
        "nor a named platform application or its endpoints"
    )


def granted(name: str, parameters: dict[str, str] | None = None) -> set[tuple[str, str]]:
    """(resource, "service:Action") for every pair the function's policy allows, deployed with
    ``parameters`` (default: the replay's)."""
    pairs: set[tuple[str, str]] = set()
    for statement in statements(name, REPLAY_PARAMETERS if parameters is None else parameters):
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement, f"{name}: conditions are not modelled here"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"
            for resource in as_list(statement["Resource"]):
                for chosen in resolved(resource, REPLAY_PARAMETERS if parameters is None else parameters):
                    pairs.add((resource_name(chosen), action))
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
            for chosen in resolved(resource, None):
                resource_name(chosen)


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
    if service == "sns":
        # On the platform application (CreatePlatformEndpoint) or the endpoint (the others).
        for name in ("PlatformApplicationArn", "EndpointArn", "TargetArn", "TopicArn"):
            if name in params:
                return [(params[name], f"sns:{operation}")]
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


# --- campaign sends in the replay -------------------------------------------------------------------
# Entries into thank_top_users (segments/top_users.seg: `send on entry`, `rate`, 10 % holdout that
# none of these users falls in), each queued by the function that records it, then taken by
# SendFunction as the queue's event source mapping would: every path of the sender that calls AWS
# in its own way. Each path is checked to have gone the way it is meant to, or the grants it
# exercises could be missing unnoticed.
CAMPAIGN = "thank_top_users"
SENDS_FROM = datetime.fromisoformat("2026-11-24T12:00:00Z").timestamp()
HOUR = 3600.0
DAY = 86_400.0


@dataclass(frozen=True)
class SendPaths:
    invoke: Any  # (function, event, now) -> result, recorded
    drain: Any  # (now=None) -> messages taken by SendFunction
    store: Store
    sqs: Any
    sns: Any
    send_queue_url: str
    apns_application: str
    fcm_application: str


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def top_user_sessions(
    user: str | None, device: str, at: float, *, spread: float = 12 * DAY
) -> dict[str, Any]:
    """12 sessions spread over ``spread`` before ``at``, the last an hour before: enough for top_users."""
    sessions = []
    for index in range(12):
        started = at - HOUR - (11 - index) * spread / 12
        item = {
            "session_id": f"{device}-{index}",
            "device_id": device,
            "started_at": iso(started),
            "ended_at": iso(started + 600),
        }
        sessions.append(item | ({"user_id": user} if user else {}))
    return {"sent_at": iso(at), "sessions": sessions}


def token(user: str | None, device: str, platform: str, value: str) -> dict[str, Any]:
    return {"device_id": device, "platform": platform, "token": value, "enabled": True} | (
        {"user_id": user} if user else {}
    )


def sweep_at(at: float) -> tuple[str, dict[str, Any], float]:
    event = json.loads((ROOT / "events" / "sweep_steady.json").read_text())
    event["time"] = iso(at)
    return scheduled_function(event), event, at


def sends_of(store: Store, user: UserKey) -> list[SendRecord]:
    return [send for send in store.users.load_user(user).sends.values() if send.campaign == CAMPAIGN]


def send_paths(ctx: SendPaths) -> list[str]:
    """Run each path; what did not go as meant."""
    problems: list[str] = []

    def http(sample: str, at: float, body: Any) -> None:
        name, event, now = variant(sample, iso(at), body=body)
        ctx.invoke(name, event, now)

    def top_user(user: str, device: str, platform: str, at: float, **options: Any) -> None:
        http("push_tokens", at - 60, token(user, device, platform, f"tok-{device}"))
        http("sessions", at, top_user_sessions(user, device, at, **options))

    def expect(user: UserKey, status: str, why: str) -> None:
        # One send of the campaign with that status (identify may add a not_eligible trigger).
        statuses = [send.status for send in sends_of(ctx.store, user)]
        if statuses.count(status) != 1:
            problems.append(f"{why}: {user.token}'s sends are {statuses}, not one {status}")

    # 1. An entry by a session upload (SdkIngestFunction queues it); an APNs token, a new endpoint.
    at = SENDS_FROM
    top_user("u-s1", "d-s1", "ios", at)
    ctx.drain()
    expect(UserKey.of_user("u-s1"), "sent", "an APNs push through a new endpoint")

    # 2. An entry by /v1/users/track (BackendIngestFunction queues it); an FCM token for which SNS
    #    has an endpoint it disabled: found, enabled again (the token was registered again), pushed to.
    at += 60
    disabled = ctx.sns.create_platform_endpoint(PlatformApplicationArn=ctx.fcm_application, Token="tok-d-s2")
    ctx.sns.set_endpoint_attributes(EndpointArn=disabled["EndpointArn"], Attributes={"Enabled": "false"})
    http("users_track", at - 120, {"attributes": [{"external_id": "u-s2", "is_employee": True}]})
    top_user("u-s2", "d-s2", "android", at - 30)
    http("users_track", at, {"attributes": [{"external_id": "u-s2", "is_employee": False}]})
    ctx.drain()
    expect(UserKey.of_user("u-s2"), "sent", "an FCM push through an endpoint enabled again")

    # 3. A token whose endpoint SNS disabled since its last push: gone, marked invalid, token_invalid.
    at += 60
    user = UserKey.of_user("u-s3")
    http("push_tokens", at - 120, token("u-s3", "d-s3", "ios", "tok-d-s3"))
    gone = ctx.sns.create_platform_endpoint(PlatformApplicationArn=ctx.apns_application, Token="tok-d-s3")
    ctx.sns.set_endpoint_attributes(EndpointArn=gone["EndpointArn"], Attributes={"Enabled": "false"})
    stored = ctx.store.users.load_user(user).tokens["d-s3"]
    stored.endpoint = gone["EndpointArn"]
    ctx.store.users.save(user, stored)
    http("sessions", at, top_user_sessions("u-s3", "d-s3", at))
    ctx.drain()
    expect(user, "unreachable", "a push to a disabled endpoint")
    if ctx.store.users.load_user(user).tokens["d-s3"].valid:
        problems.append("the gone token was not marked invalid")

    # 4. The campaign's `rate` already reached this minute: queued again, for the next minute.
    at += 60
    top_user("u-s4", "d-s4", "ios", at)
    ctx.store.tables.client.put_item(
        TableName=ctx.store.tables.activity_table,
        Item={"pk": {"S": f"RATE#{CAMPAIGN}#{int(at // 60)}"}, "sk": {"S": "N"}, "n": {"N": "1000"}},
    )
    ctx.drain()
    expect(UserKey.of_user("u-s4"), "queued", "a send over the campaign's rate")

    # 5. An anonymous device enters; identify merges it into a user before the sender takes it.
    at += 60
    top_user("", "d-s5", "ios", at)
    http("users_identify", at + 30, {"aliases_to_identify": [{"device_id": "d-s5", "external_id": "u-s5"}]})
    ctx.drain()
    expect(UserKey.of_user("u-s5"), "sent", "a send of a device identified since")

    # 6. The message is lost: the next sweep queues the send again (SweepFunction), then it is sent;
    #    through an APNs endpoint SNS had disabled, enabled again as in 2.
    at += 60
    disabled = ctx.sns.create_platform_endpoint(PlatformApplicationArn=ctx.apns_application, Token="tok-d-s6")
    ctx.sns.set_endpoint_attributes(EndpointArn=disabled["EndpointArn"], Attributes={"Enabled": "false"})
    top_user("u-s6", "d-s6", "ios", at)
    for message in ctx.sqs.receive_message(QueueUrl=ctx.send_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        ctx.sqs.delete_message(QueueUrl=ctx.send_queue_url, ReceiptHandle=message["ReceiptHandle"])
    ctx.invoke(*sweep_at(at + 10 * 60))
    if not ctx.drain():
        problems.append("the sweep queued no lost send again")
    expect(UserKey.of_user("u-s6"), "sent", "a send whose message was lost")

    # 7. A user in new_users too when the entry fires; by the time the sender pushes, the week is
    #    over: the push's re-evaluation records the exit (and announces it).
    at += 60
    top_user("u-s7", "d-s7", "ios", at, spread=7.5 * DAY)  # the first session 6.9 days before
    ctx.drain(now=at + 0.2 * DAY)
    expect(UserKey.of_user("u-s7"), "sent", "a push that ends a membership")
    if "new_users" in ctx.store.users.load_user(UserKey.of_user("u-s7")).memberships:
        problems.append("the push's re-evaluation recorded no exit from new_users")

    # 8. The first user opts out (SdkIngestFunction): the opt-out counts against the push, and the
    #    campaign's guardrail reads its sends since the last resume (the sends index).
    at += 60
    event = {"type": "opted_out", "user_id": "u-s1", "device_id": "d-s1", "time": iso(at - 5)}
    http("push_events", at, {"events": [event]})
    if not any(send.opted_out_at for send in sends_of(ctx.store, UserKey.of_user("u-s1"))):
        problems.append("the opt-out was not counted against the push")
    return problems


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


# The queues events/sweep_part.json and events/send.json come from (their eventSourceARN).
SWEEP_QUEUE = "kudos-SweepPartsQueue-EXAMPLE"
SEND_QUEUE = "kudos-SendQueue-EXAMPLE"
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
        SEND_QUEUE: "SendQueue",
        environment["USERS_TABLE"]: "UsersTable",
        environment["ACTIVITY_TABLE"]: "ActivityTable",
        **{physical: f"parameter:{name}" for name, physical in parameter_names.items()},
    }

    # Platform application ARN -> the stack parameter naming it (filled in once they are made).
    applications: dict[str, str] = {}

    def logical_name(resource: str) -> str:
        if resource in logical:
            return logical[resource]
        for arn, parameter in applications.items():
            # arn:...:app/GCM/name has its endpoints at arn:...:endpoint/GCM/name/<id>.
            if resource.startswith(arn.replace(":app/", ":endpoint/", 1) + "/"):
                return f"endpoints:{parameter}"
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
            sqs = boto3.client("sqs", region_name="us-east-1")
            send_queue_url = sqs.create_queue(QueueName=SEND_QUEUE)["QueueUrl"]
            monkeypatch.setenv("SEND_QUEUE_URL", send_queue_url)
            sns = boto3.client("sns", region_name="us-east-1")
            for parameter in REPLAY_PARAMETERS:
                arn = sns.create_platform_application(
                    Name=f"kudos-{suffix}", Platform=PUSH_APPLICATIONS[parameter], Attributes={}
                )["PlatformApplicationArn"]
                applications[arn] = parameter
                logical[arn] = f"app:{parameter}"
            application_settings = {
                field: next((arn for arn, name in applications.items() if name == parameter), None)
                for field, parameter in (
                    ("apns_application_arn", "ApnsApplicationArn"),
                    ("apns_sandbox_application_arn", "ApnsSandboxApplicationArn"),
                    ("fcm_application_arn", "FcmApplicationArn"),
                )
            }
            settings = settings.model_copy(
                update={
                    "sweep_queue_url": queue_url,
                    "send_queue_url": send_queue_url,
                    **application_settings,
                }
            )
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

            def invoke(name: str, event: dict[str, Any], now: float) -> Any:
                install(Services(settings=settings, store=store, clock=fixed_clock(now)))
                what = event.get("routeKey", event.get("detail-type", "an SQS batch"))
                if "routeKey" in event:
                    decision = run("AuthorizerFunction", authorizer_event(event), what)
                    if not (isinstance(decision, dict) and decision.get("isAuthorized") is True):
                        problems.append(f"the authorizer refused {what} with the key events/ sends")
                result = run(name, event, what)
                if isinstance(result, dict) and result.get("statusCode", 200) >= 500:
                    problems.append(
                        f"{name} answered {what} with {result['statusCode']}: {result.get('body')}"
                    )
                if isinstance(result, dict) and result.get("batchItemFailures"):
                    problems.append(f"{name} failed messages of {what}: {result['batchItemFailures']}")
                return result

            def drain(now: float | None = None) -> int:
                """SendFunction takes what is queued, as its event source mapping would; its clock
                ``now``, or each batch's latest trigger instant."""
                arn = sqs.get_queue_attributes(QueueUrl=send_queue_url, AttributeNames=["QueueArn"])
                taken = 0
                while messages := sqs.receive_message(
                    QueueUrl=send_queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
                ).get("Messages", []):
                    at = max(float(json.loads(message["Body"])["at"]) for message in messages)
                    event = received_event(messages, arn["Attributes"]["QueueArn"], "us-east-1")
                    invoke("SendFunction", event, at if now is None else now)
                    for message in messages:
                        sqs.delete_message(QueueUrl=send_queue_url, ReceiptHandle=message["ReceiptHandle"])
                    taken += len(messages)
                return taken

            for name, event, now in [*sample_events(), *rare_paths()]:
                invoke(name, event, now)
            problems.extend(
                send_paths(
                    SendPaths(
                        invoke=invoke,
                        drain=drain,
                        store=store,
                        sqs=sqs,
                        sns=sns,
                        send_queue_url=send_queue_url,
                        apns_application=next(
                            a for a, p in applications.items() if p == "ApnsApplicationArn"
                        ),
                        fcm_application=next(a for a, p in applications.items() if p == "FcmApplicationArn"),
                    )
                )
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


# --- campaign sends ---------------------------------------------------------------------------------


def send_function() -> dict[str, Any]:
    return functions()["SendFunction"]["Properties"]


def queue_source() -> dict[str, Any]:
    (source,) = [event for event in send_function()["Events"].values() if event["Type"] == "SQS"]
    return dict(source["Properties"])


def test_the_sender_drains_the_send_queue_with_partial_batch_failures() -> None:
    source = queue_source()
    assert source["Queue"] == {"Fn::GetAtt": ["SendQueue", "Arn"]}
    # One failing send is retried alone (functions/send.py returns batchItemFailures).
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= source["BatchSize"] <= 10
    # A push is at most a few seconds late.
    assert source.get("MaximumBatchingWindowInSeconds", 0) <= 5
    assert source["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "SendMaxConcurrency"}
    declared = template()["Parameters"]["SendMaxConcurrency"]
    assert 2 <= declared["MinValue"] <= declared["Default"] <= declared["MaxValue"] <= 1000


def test_a_send_message_stays_invisible_six_times_the_senders_timeout() -> None:
    # Lambda's advice for an SQS event source: a message being processed must not come back.
    queue = resources("AWS::SQS::Queue")["SendQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * prop(functions()["SendFunction"], "Timeout")


def test_a_send_that_keeps_failing_goes_to_a_dead_letter_queue_that_alarms() -> None:
    queues = resources("AWS::SQS::Queue")
    redrive = queues["SendQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["SendDeadLetters", "Arn"]}
    assert 1 <= redrive["maxReceiveCount"] <= 10
    # Kept longer than the queue keeps a message, so nothing expires before someone looks.
    assert (
        queues["SendDeadLetters"]["Properties"]["MessageRetentionPeriod"]
        > queues["SendQueue"]["Properties"]["MessageRetentionPeriod"]
    )
    for queue in ("SendQueue", "SendDeadLetters"):
        assert queues[queue]["Properties"]["SqsManagedSseEnabled"] is True
    alarms = [
        alarm["Properties"]
        for alarm in resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SendDeadLetters", "QueueName"]}}]
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"


def test_every_function_that_queues_sends_is_told_where() -> None:
    # The functions allowed to send to the queue are the ones given its URL, and the replay above
    # shows which call it: the ingest functions (entries), the sweep, the sender itself (`rate`).
    senders = {name for name in functions() if ("SendQueue", "sqs:SendMessage") in granted(name)}
    told = {
        name
        for name, function in functions().items()
        if function["Properties"].get("Environment", {}).get("Variables", {}).get("SEND_QUEUE_URL")
        == {"Ref": "SendQueue"}
    }
    assert senders == told == {"SdkIngestFunction", "BackendIngestFunction", "SweepFunction", "SendFunction"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_variable_a_function_sets_is_one_settings_reads(name: str) -> None:
    variables = functions()[name]["Properties"].get("Environment", {}).get("Variables", {})
    assert set(variables) <= set(ENVIRONMENT_VARIABLES.values())


@pytest.mark.parametrize(
    ("parameter", "variable", "field", "platform"),
    [
        ("ApnsApplicationArn", "APNS_APPLICATION_ARN", "apns_application_arn", "APNS"),
        (
            "ApnsSandboxApplicationArn",
            "APNS_SANDBOX_APPLICATION_ARN",
            "apns_sandbox_application_arn",
            "APNS_SANDBOX",
        ),
        ("FcmApplicationArn", "FCM_APPLICATION_ARN", "fcm_application_arn", "GCM"),
    ],
)
def test_platform_applications_are_optional_stack_parameters_the_sender_reads(
    parameter: str, variable: str, field: str, platform: str
) -> None:
    declared = template()["Parameters"][parameter]
    assert declared["Type"] == "String"
    assert declared["Default"] == ""
    pattern = re.compile(declared["AllowedPattern"])
    arn = f"arn:aws:sns:eu-west-1:123456789012:app/{platform}/kudos-prod"
    assert pattern.fullmatch("")
    assert pattern.fullmatch(arn)
    for other in set(PUSH_APPLICATIONS.values()) - {platform}:
        assert not pattern.fullmatch(f"arn:aws:sns:eu-west-1:123456789012:app/{other}/kudos-prod")
    assert not pattern.fullmatch(f"arn:aws:sns:eu-west-1:123456789012:endpoint/{platform}/kudos-prod/1")
    assert send_function()["Environment"]["Variables"][variable] == {"Ref": parameter}
    # An empty parameter is no application at all.
    assert getattr(Settings.from_env({variable: ""}), field) is None
    assert getattr(Settings.from_env({variable: arn}), field) == arn


def test_push_grants_name_only_the_configured_applications_and_their_endpoints() -> None:
    sns = lambda pairs: {pair for pair in pairs if pair[1].startswith("sns:")}  # noqa: E731
    assert sns(granted("SendFunction", {})) == set()
    assert sns(granted("SendFunction", {"ApnsSandboxApplicationArn": "set"})) == {
        ("app:ApnsSandboxApplicationArn", "sns:CreatePlatformEndpoint"),
        ("endpoints:ApnsSandboxApplicationArn", "sns:Publish"),
        ("endpoints:ApnsSandboxApplicationArn", "sns:GetEndpointAttributes"),
        ("endpoints:ApnsSandboxApplicationArn", "sns:SetEndpointAttributes"),
    }
    every = {parameter: "set" for parameter in PUSH_APPLICATIONS}
    assert {resource for resource, _ in sns(granted("SendFunction", every))} == {
        f"{kind}:{parameter}" for parameter in PUSH_APPLICATIONS for kind in ("app", "endpoints")
    }
    # No other function pushes.
    for name in set(FUNCTIONS) - {"SendFunction"}:
        assert sns(granted(name, every)) == set()


def test_an_endpoint_grant_covers_the_endpoints_sns_makes_for_the_application() -> None:
    # What CloudFormation makes of `${Prefix}:endpoint/${Path}/*` for an application ARN, against
    # the endpoint ARNs SNS gives (moto writes them as AWS does).
    application = "arn:aws:sns:us-east-1:123456789012:app/GCM/kudos"
    prefix, path = application.split(":app/")
    granted_pattern = f"{prefix}:endpoint/{path}/*"
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        arn = sns.create_platform_application(Name="kudos", Platform="GCM", Attributes={})[
            "PlatformApplicationArn"
        ]
        assert arn == application
        endpoint = sns.create_platform_endpoint(PlatformApplicationArn=arn, Token="t-1")["EndpointArn"]
    assert re.fullmatch(re.escape(granted_pattern[:-1]) + r"[^/]+", endpoint)
