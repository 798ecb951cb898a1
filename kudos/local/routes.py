"""What template.yaml declares, read the way SAM would: functions, their handlers, routes and schedules.

template.yaml is the one source of truth for routes: ``kudos serve`` serves exactly what AWS would,
so a route cannot exist locally and be missing on AWS (or the reverse).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from kudos.local import LocalError
from kudos.local.apigw import LambdaContext

TEMPLATE_NAME = "template.yaml"
_REPO_ROOT = Path(__file__).resolve().parents[2]
# Lambda's defaults when neither the function nor Globals say otherwise.
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3.0

Handler = Callable[[Any, Any], Any]


class TemplateError(LocalError):
    pass


@dataclass(frozen=True, slots=True)
class Route:
    """One HttpApi event: ``method`` upper-case or ``ANY``; ``path`` as declared, or ``$default``."""

    method: str
    path: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.split("/")[1:])

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sorts the most specific route first: literal before ``{param}`` before ``{greedy+}``."""
        ranks = []
        for segment in self.segments:
            if not segment.startswith("{"):
                ranks.append(0)
            else:
                ranks.append(2 if segment.endswith("+}") else 1)
        return (*ranks, 3)

    def match_path(self, raw_path: str) -> dict[str, str] | None:
        """The decoded path parameters when ``raw_path`` fits this route, else None."""
        if self.path == "$default":
            return {}
        parts = raw_path.split("/")[1:]
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = parts[index:]
                if not rest or rest == [""]:
                    return None
                params[segment[1:-2]] = unquote("/".join(rest))
                return params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                if not parts[index]:
                    return None
                params[segment[1:-1]] = unquote(parts[index])
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(self.segments) else None


@dataclass(frozen=True, slots=True)
class Schedule:
    """One Schedule/ScheduleV2 event: the expression and the Input JSON text, if any."""

    name: str
    expression: str
    input: str | None = None


@dataclass(frozen=True, slots=True)
class QueueSource:
    """One SQS event: the queue (its logical id) and how Lambda's event source mapping batches it."""

    name: str
    queue: str
    batch_size: int = 10
    window_s: float = 0.0
    # ReportBatchItemFailures: the handler names the failed messages; the others are deleted.
    reports_failures: bool = False


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    code_dir: Path
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    routes: tuple[Route, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    queues: tuple[QueueSource, ...] = ()
    # Plain values from Globals and the function (intrinsics such as !Ref cannot be resolved locally).
    environment: Mapping[str, str] = field(default_factory=dict)

    def resolve(self) -> Handler:
        """The handler callable, imported on first use (as Lambda does on a cold start)."""
        return resolve_handler(self.handler, self.code_dir)

    def new_context(self, region: str) -> LambdaContext:
        """A fresh Lambda context for one invocation of this function."""
        return LambdaContext(
            function_name=self.logical_id,
            memory_limit_in_mb=self.memory_mb,
            timeout_seconds=self.timeout_s,
            region=region,
        )


_import_lock = threading.Lock()


def resolve_handler(handler: str, code_dir: Path | None = None) -> Handler:
    module_name, _, attribute = handler.rpartition(".")
    if not module_name:
        raise TemplateError(f"handler {handler!r} is not module.function")
    top = module_name.split(".", 1)[0]
    if code_dir is not None and ((code_dir / top).is_dir() or (code_dir / f"{top}.py").is_file()):
        # SAM puts CodeUri at the root of the import path; do the same when CodeUri holds the code.
        # A `BuildMethod: makefile` CodeUri holds only a Makefile: the code is already importable.
        with _import_lock:
            if str(code_dir) not in sys.path:
                sys.path.append(str(code_dir))
    module = importlib.import_module(module_name)
    function = getattr(module, attribute, None)
    if not callable(function):
        raise TemplateError(f"handler {handler!r}: {module_name} has no function {attribute!r}")
    return function


@dataclass(frozen=True, slots=True)
class RouteMatch:
    function: Function
    route: Route
    path_parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class NoRoute:
    """404, or 405 when the path exists with other methods (api.md: both as ``{"message": ...}``)."""

    status: int
    message: str
    allowed: tuple[str, ...] = ()


class Router:
    def __init__(self, functions: Mapping[str, Function]) -> None:
        entries = [(route, function) for function in functions.values() for route in function.routes]
        self._default = next(((r, f) for r, f in entries if r.path == "$default"), None)
        # Most specific first; a route naming its method beats ANY on the same path.
        self._routes = sorted(
            ((r, f) for r, f in entries if r.path != "$default"),
            key=lambda entry: (entry[0].specificity, entry[0].method == "ANY"),
        )

    def match(self, method: str, raw_path: str) -> RouteMatch | NoRoute:
        method = method.upper()
        allowed: list[str] = []
        for route, function in self._routes:
            params = route.match_path(raw_path)
            if params is None:
                continue
            if route.method in ("ANY", method):
                return RouteMatch(function, route, params)
            allowed.append(route.method)
        if self._default is not None:
            route, function = self._default
            return RouteMatch(function, route, {})
        if allowed:
            return NoRoute(405, "Method Not Allowed", tuple(sorted(set(allowed))))
        return NoRoute(404, "Not Found")


@dataclass(frozen=True)
class Template:
    path: Path
    functions: dict[str, Function]
    globals_environment: Mapping[str, str]
    # Each parameter's Default, where it has one (what `sam deploy` uses when not overridden).
    parameter_defaults: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def router(self) -> Router:
        return Router(self.functions)

    def function(self, name: str) -> Function:
        """A function by Logical ID (``SdkIngestFunction``) or by handler (``functions.sdk_ingest.handler``)."""
        if name in self.functions:
            return self.functions[name]
        for function in self.functions.values():
            if function.handler == name:
                return function
        known = ", ".join(sorted(self.functions)) or "none"
        raise TemplateError(f"no function {name!r} in {self.path} (functions: {known})")

    def queue_consumer(self, queue: str) -> tuple[Function, QueueSource] | None:
        """The function whose SQS event reads the queue of logical id ``queue``, if any."""
        for function in self.functions.values():
            for source in function.queues:
                if source.queue == queue:
                    return function, source
        return None


def find_template(start: Path | None = None) -> Path:
    """template.yaml in the cwd or a parent, else this repository's."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents, _REPO_ROOT):
        candidate = directory / TEMPLATE_NAME
        if candidate.is_file():
            return candidate
    raise TemplateError(f"no {TEMPLATE_NAME} found in {here} or its parents; pass --template")


def load_template(path: Path) -> Template:
    document = _load_yaml(path)
    resources = document.get("Resources")
    if not isinstance(resources, dict):
        raise TemplateError(f"{path}: no Resources")
    defaults = (document.get("Globals") or {}).get("Function") or {}
    globals_environment = _plain_variables(defaults)
    functions: dict[str, Function] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **(resource.get("Properties") or {})}
        handler = properties.get("Handler")
        if not isinstance(handler, str):
            raise TemplateError(f"{path}: {logical_id} has no Handler")
        code_uri = properties.get("CodeUri", ".")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{path}: {logical_id}: only a local CodeUri directory can run locally")
        routes, schedules, queues = _events(path, logical_id, resource.get("Properties") or {})
        functions[logical_id] = Function(
            logical_id=logical_id,
            handler=handler,
            code_dir=(path.parent / code_uri).resolve(),
            memory_mb=int(properties.get("MemorySize", DEFAULT_MEMORY_MB)),
            timeout_s=float(properties.get("Timeout", DEFAULT_TIMEOUT_S)),
            routes=routes,
            schedules=schedules,
            queues=queues,
            environment={**globals_environment, **_plain_variables(resource.get("Properties") or {})},
        )
    return Template(
        path=path,
        functions=functions,
        globals_environment=globals_environment,
        parameter_defaults=_parameter_defaults(document),
    )


def _parameter_defaults(document: Mapping[str, Any]) -> dict[str, Any]:
    parameters = document.get("Parameters") or {}
    if not isinstance(parameters, dict):
        return {}
    return {
        name: spec["Default"]
        for name, spec in parameters.items()
        if isinstance(spec, dict) and "Default" in spec
    }


def _events(
    path: Path, logical_id: str, properties: dict[str, Any]
) -> tuple[tuple[Route, ...], tuple[Schedule, ...], tuple[QueueSource, ...]]:
    routes: list[Route] = []
    schedules: list[Schedule] = []
    queues: list[QueueSource] = []
    for name, event in (properties.get("Events") or {}).items():
        kind = event.get("Type")
        props = event.get("Properties") or {}
        if kind == "HttpApi":
            # An HttpApi event without Method/Path is the API's $default (catch-all) route.
            method = str(props.get("Method", "ANY")).upper()
            route_path = str(props.get("Path", "$default"))
            if route_path != "$default" and not route_path.startswith("/"):
                raise TemplateError(f"{path}: {logical_id}.{name}: Path must start with /")
            routes.append(Route(method, route_path))
        elif kind in ("Schedule", "ScheduleV2"):
            expression = props.get("Schedule") or props.get("ScheduleExpression")
            if isinstance(expression, str):
                schedules.append(Schedule(name, expression, props.get("Input")))
        elif kind == "SQS":
            queue = _queue_logical_id(props.get("Queue"))
            if queue is not None:
                queues.append(
                    QueueSource(
                        name,
                        queue,
                        batch_size=int(props.get("BatchSize", 10)),
                        window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                        reports_failures="ReportBatchItemFailures"
                        in (props.get("FunctionResponseTypes") or []),
                    )
                )
    return tuple(routes), tuple(schedules), tuple(queues)


def _queue_logical_id(queue: Any) -> str | None:
    """The queue an SQS event names as `!GetAtt Name.Arn` (a queue of the stack); None otherwise."""
    if isinstance(queue, dict) and isinstance(queue.get("Fn::GetAtt"), list):
        name, attribute = (queue["Fn::GetAtt"] + [None])[:2]
        if attribute == "Arn" and isinstance(name, str):
            return name
    return None


def _plain_variables(properties: Mapping[str, Any]) -> dict[str, str]:
    variables = ((properties.get("Environment") or {}).get("Variables")) or {}
    plain: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, bool):
            plain[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            plain[name] = str(value)
    return plain


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    class _TemplateLoader(yaml.SafeLoader):
        """SafeLoader that reads CloudFormation's short tags (!Ref, !GetAtt, !Sub...) as their long form."""

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix in ("Ref", "Condition"):
            return {suffix: value}
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{suffix}": value}

    _TemplateLoader.add_multi_constructor("!", intrinsic)
    try:
        with path.open(encoding="utf-8") as stream:
            document = yaml.load(stream, Loader=_TemplateLoader)
    except OSError as error:
        raise TemplateError(f"cannot read {path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise TemplateError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return document
