"""functions/openapi.json describes exactly the routes template.yaml declares, and is what its module writes."""

from __future__ import annotations

import json
import re
from typing import Any

from functions.http import ROUTES
from functions.openapi_document import DOCUMENT, render
from tests.unit.test_template import http_routes

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def test_the_file_is_what_the_module_writes() -> None:
    # Edit functions/openapi_document.py, then: python -m functions.openapi_document
    assert DOCUMENT.read_text() == render()


def test_it_describes_exactly_the_routes_of_the_template() -> None:
    described = {
        f"{method.upper()} {path}"
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }
    declared = {route for route in http_routes() if not route.startswith("ANY ")}
    assert described == declared
    assert described == {f"{m} {p}" for p, served in ROUTES.items() for m in served}


def test_it_is_openapi_3_1_and_every_operation_says_its_key_and_errors() -> None:
    spec = document()
    assert spec["openapi"].startswith("3.1.")
    schemes = spec["components"]["securitySchemes"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert {"401", "405"} <= set(operation["responses"]), f"{method} {path}"
            kinds = {name for requirement in operation["security"] for name in requirement}
            assert kinds <= set(schemes)
            kind = "App" if path in ("/v1/sessions", "/v1/push/tokens", "/v1/push/events") else "Server"
            assert all(name.startswith(kind) for name in kinds), f"{method} {path}: {kinds}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
            assert set(re.findall(r"\{(\w+)\}", path)) == {
                p["name"] for p in operation.get("parameters", []) if p["in"] == "path"
            }


def test_the_schema_is_valid_openapi() -> None:
    from jsonschema.validators import validator_for

    # Each schema in it is a valid JSON Schema (2020-12, as OpenAPI 3.1 says).
    def schemas(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node["schema"]] if isinstance(node.get("schema"), dict) else []
            return found + [s for value in node.values() for s in schemas(value)]
        if isinstance(node, list):
            return [s for value in node for s in schemas(value)]
        return []

    spec = document()
    for schema in [*schemas(spec["paths"]), *spec["components"]["schemas"].values()]:
        validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"}).check_schema(schema)
