"""template.yaml says what the code and the contract (api.md) expect: routes, handlers, tables, IAM."""

from __future__ import annotations

import ast
import importlib
import json
import re
import tomllib
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from moto import mock_aws

from functions.http import ROUTES
from kudos.core.clock import fixed_clock
from kudos.core.settings import DEFAULT_SEGMENTS_DIR, Settings
from kudos.runtime import Services, install, reset
from kudos.store.dynamo import Store
from kudos.store.keys import TTL_ATTRIBUTE
from kudos.store.schema import create_tables, table_definitions

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

RUNTIME = "python3.13"

# Logical id -> (handler, {table logical id: DynamoDB actions}). The brief of each function; which
# routes each serves is functions/http.py's ROUTES, checked against the template below.
FUNCTIONS: dict[str, tuple[str, dict[str, set[str]]]] = {
    "SdkIngestFunction": (
        "functions.sdk_ingest.handler",
        {
            "UsersTable": {"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
            "ActivityTable": {"BatchGetItem", "PutItem", "UpdateItem", "DeleteItem"},
            "EventBus": {"events:PutEvents"},
        },
    ),
    "BackendIngestFunction": (
        "functions.backend_ingest.handler",
        {
            "UsersTable": {
                "GetItem",
                "BatchGetItem",
                "PutItem",
                "UpdateItem",
                "DeleteItem",
                "Query",
                "BatchWriteItem",
            },
            "ActivityTable": {"GetItem", "PutItem", "UpdateItem", "DeleteItem"},
            "EventBus": {"events:PutEvents"},
        },
    ),
    "MetricsFunction": (
        "functions.metrics.handler",
        {"ActivityTable": {"Query", "GetItem", "BatchGetItem", "PutItem"}},
    ),
    "SegmentsFunction": (
        "functions.segments.handler",
        {
            "UsersTable": {"Scan", "Query"},
            "UsersTable/index/members": {"Query"},
            "ActivityTable": {"BatchGetItem"},
        },
    ),
    "SweepFunction": (
        "functions.sweep.handler",
        {
            "UsersTable": {"Scan", "Query", "PutItem", "UpdateItem", "DeleteItem"},
            "UsersTable/index/due": {"Query"},
            "UsersTable/index/outbox": {"Query"},
            "ActivityTable": {"BatchGetItem", "PutItem"},
            "EventBus": {"events:PutEvents"},
            "SweepPartsQueue": {"sqs:SendMessage"},
        },
    ),
    "RollupFunction": (
        "functions.rollup.handler",
        {"ActivityTable": {"Query", "GetItem", "BatchGetItem", "PutItem"}},
    ),
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
    assert handler == FUNCTIONS[name][0]
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


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_policies_name_each_action_on_each_table_and_nothing_more(name: str) -> None:
    granted: dict[str, set[str]] = {}
    for statement in statements(name):
        assert statement["Effect"] == "Allow"
        actions = as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, f"{name}: wildcard action {action}"
            assert action.startswith("dynamodb:") or action in NON_DYNAMODB_ACTIONS, f"{name}: {action}"
        for resource in as_list(statement["Resource"]):
            # Only a table's own ARN or one named index of it: a string could be "*" or "table/*".
            assert isinstance(resource, dict), f"{name}: resource {resource!r} is not a table ARN"
            granted.setdefault(resource_name(resource), set()).update(
                a.removeprefix("dynamodb:") for a in actions
            )
    assert granted == FUNCTIONS[name][1]


def test_no_policy_anywhere_grants_a_wildcard_on_dynamodb() -> None:
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
        actions = as_list(statement["Action"])
        if not any(a == "*" or a.startswith("dynamodb:") for a in actions):
            continue
        assert all("*" not in a for a in actions), statement
        assert all(r != "*" and "*" not in str(r) for r in as_list(statement["Resource"])), statement


# What one DynamoDB API call is authorized against: (table, IAM action) for each item it touches.
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def iam_actions(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(table, operation) for table in params["RequestItems"]]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            (body["TableName"], _TRANSACT_ACTIONS[kind])
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if "IndexName" in params:
        return [(f"{params['TableName']}/index/{params['IndexName']}", operation)]
    return [(params.get("TableName", "?"), operation)]


def sample_events() -> list[tuple[str, dict[str, Any], float]]:
    """(function logical id, event, its time) for each events/*.json, in a replay order."""
    routes = http_routes()
    scheduled = [
        name
        for name, function in functions().items()
        if any(e["Type"] == "Schedule" for e in function["Properties"].get("Events", {}).values())
    ]
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
        else:
            # A scheduled event names its rule, and the rule is named after its function.
            (name,) = [n for n in scheduled if any(n in arn for arn in event["resources"])]
            samples.append((name, event, datetime.fromisoformat(event["time"]).timestamp()))
    return samples


def resource_name(resource: dict[str, Any]) -> str:
    """``UsersTable`` for a table's ARN, ``UsersTable/index/members`` for one named index of it."""
    if set(resource) == {"Fn::GetAtt"}:
        table, attribute = resource["Fn::GetAtt"]
        assert table in (*TABLES, *NON_DYNAMODB_RESOURCES), resource
        assert attribute == "Arn", resource
        return str(table)
    assert set(resource) == {"Fn::Sub"}, f"resource {resource!r} is not a table or index ARN"
    match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([A-Za-z0-9_.-]+)", resource["Fn::Sub"])
    assert match is not None, f"{resource!r} is not one named index"
    assert match.group(1) in TABLES, resource
    return f"{match.group(1)}/index/{match.group(2)}"


def granted_actions(name: str) -> dict[str, set[str]]:
    """Table (or index) logical id -> the DynamoDB actions the function's policy allows on it."""
    granted: dict[str, set[str]] = {}
    for statement in statements(name):
        for resource in as_list(statement["Resource"]):
            granted.setdefault(resource_name(resource), set()).update(
                a.removeprefix("dynamodb:") for a in as_list(statement["Action"])
            )
    return granted


def lambda_context(name: str) -> SimpleNamespace:
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        aws_request_id=str(uuid.uuid4()),
    )


def test_policies_grant_what_the_handlers_do_with_the_sample_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto does not enforce IAM: replay events/ and compare the calls made with each policy."""
    suffix = uuid.uuid4().hex[:12]
    environment = {
        "USERS_TABLE": f"kudos-users-{suffix}",
        "ACTIVITY_TABLE": f"kudos-activity-{suffix}",
        "KUDOS_AUTH_REQUIRED": "true",
        # The keys events/ send.
        "KUDOS_APP_KEYS": "kudos-app-key-EXAMPLE-0000000001",
        "KUDOS_SERVER_KEYS": "kudos-server-key-EXAMPLE-00000001",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv("DYNAMODB_ENDPOINT_URL", raising=False)
    settings = Settings.from_env(environment)
    tables = {settings.users_table: "UsersTable", settings.activity_table: "ActivityTable"}
    calls: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.extend(iam_actions(model.name, params))

    problems = []
    with mock_aws():
        reset()
        try:
            store = Store(settings)
            create_tables(store.client, settings)
            store.client.meta.events.register("before-parameter-build.dynamodb", record)
            for name, event, now in sample_events():
                install(Services(settings=settings, store=store, clock=fixed_clock(now)))
                module, _, attribute = functions()[name]["Properties"]["Handler"].rpartition(".")
                try:
                    handler = getattr(importlib.import_module(module), attribute)
                except (ImportError, AttributeError) as error:
                    problems.append(f"{name}: {error}")
                    continue
                calls.clear()
                result = handler(event, lambda_context(name))
                what = event.get("routeKey", event.get("detail-type"))
                if isinstance(result, dict) and result.get("statusCode", 200) >= 500:
                    problems.append(
                        f"{name} answered {what} with {result['statusCode']}: {result.get('body')}"
                    )
                granted = granted_actions(name)
                for table, action in dict.fromkeys(calls):
                    base, _, index = table.partition("/index/")
                    logical = tables.get(base, base) + (f"/index/{index}" if index else "")
                    if action not in granted.get(logical, set()):
                        problems.append(
                            f"{name}: dynamodb:{action} on {logical} for {what} is not in its policy"
                        )
        finally:
            reset()
    assert not problems, "\n".join(problems)


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
        "KUDOS_APP_KEYS": "app-1,app-2",
        "KUDOS_SERVER_KEYS": "server-1",
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
    assert settings.app_keys == {"app-1", "app-2"}
    assert settings.server_keys == {"server-1"}
    assert settings.event_bus_name == "kudos-bus"


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


@pytest.mark.parametrize("parameter", ["AppKeys", "ServerKeys"])
def test_keys_are_secret_parameters(parameter: str) -> None:
    declared = template()["Parameters"][parameter]
    assert declared["NoEcho"] is True
    assert "Default" not in declared


def test_outputs_name_the_api_and_the_tables() -> None:
    outputs = template()["Outputs"]
    assert "HttpApi" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["UsersTableName"]["Value"] == {"Ref": "UsersTable"}
    assert outputs["ActivityTableName"]["Value"] == {"Ref": "ActivityTable"}


def test_cors_lets_the_configured_web_origins_call_the_api_with_a_key() -> None:
    # Browsers (platform "web") send a preflight before a POST with a key: API Gateway answers it
    # for the origins of the stack parameter, and for none when it is empty (the default).
    parameter = template()["Parameters"]["CorsAllowOrigins"]
    assert parameter["Default"] == ""
    assert template()["Conditions"]["HasCorsOrigins"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowOrigins"}, ""]}]
    }
    condition, cors, otherwise = resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"][
        "CorsConfiguration"
    ]["Fn::If"]
    assert condition == "HasCorsOrigins"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert cors["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowOrigins"}]}
    assert set(cors["AllowMethods"]) >= {method.split()[0] for method in http_routes() if method[0] != "A"}
    assert {"authorization", "content-type", "x-api-key"} <= set(cors["AllowHeaders"])
