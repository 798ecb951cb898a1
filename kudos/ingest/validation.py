"""Turning request bodies into checked values, and errors into messages that name the field.

Every ingest route shares this: a body that cannot be used at all is a BadRequest (400) or
PayloadTooLarge (413); one bad item is an ItemError reported by index, and never costs the others.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.utilities.parser import parse
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from kudos.core.errors import BadRequest, PayloadTooLarge
from kudos.core.timeutil import InstantError, parse_instant, parse_iso8601_instant

MAX_BODY_BYTES = 1_000_000
MAX_ID_LENGTH = 256
MAX_NAME_LENGTH = 255
# Ids and names end up in keys, and DynamoDB takes at most 1024 bytes in a sort key: 256 characters
# of CJK or emoji are more than that in UTF-8.
MAX_KEY_PART_BYTES = 1000
# DynamoDB's numbers: 38 significant digits, magnitudes from 1e-130 to below 1e126.
NUMBER_DIGITS = 38
NUMBER_EXPONENTS = range(-130, 126)
NOT_UNICODE = "not valid Unicode: it holds a lone surrogate (\\ud800 to \\udfff)"

Model = TypeVar("Model", bound=BaseModel)


def _instant(value: object) -> float:
    try:
        return parse_instant(value)
    except InstantError as error:
        raise PydanticCustomError("instant", str(error)) from None


def _iso8601_instant(value: object) -> float:
    try:
        return parse_iso8601_instant(value)
    except InstantError as error:
        raise PydanticCustomError("instant", str(error)) from None


# The SDK routes take RFC 3339 alone; the backend routes (Braze shapes) also the ISO 8601 variants.
Instant = Annotated[float, BeforeValidator(_instant)]
BrazeInstant = Annotated[float, BeforeValidator(_iso8601_instant)]


def text_problem(text: str) -> str | None:
    """Why DynamoDB could not store `text`, if it could not: JSON may carry a lone surrogate."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return NOT_UNICODE
    return None


def number_problem(value: float) -> str | None:
    """Why DynamoDB could not store the JSON number `value`, if it could not."""
    if isinstance(value, float) and not math.isfinite(value):
        return "expected a finite number"
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not exact:
        return None
    if exact.adjusted() not in NUMBER_EXPONENTS:
        return "out of range: magnitudes from 1e-130 to 1e125 are stored"
    # A float has at most 17 significant digits; a JSON integer may have thousands.
    if isinstance(value, int) and len(str(abs(value)).rstrip("0")) > NUMBER_DIGITS:
        return f"more than {NUMBER_DIGITS} significant digits"
    return None


def _storable_text(text: str) -> str:
    problem = text_problem(text)
    if problem:
        raise PydanticCustomError("unicode", problem)
    return text


def _key_part(text: str) -> str:
    if len(_storable_text(text).encode()) > MAX_KEY_PART_BYTES:
        raise PydanticCustomError("key_part_too_long", f"longer than {MAX_KEY_PART_BYTES} bytes in UTF-8")
    return text


def _non_empty(max_length: int) -> StringConstraints:
    return StringConstraints(strict=True, min_length=1, max_length=max_length)


# What request models are made of: non-empty strings DynamoDB can store, ids and names fit for a key.
Id = Annotated[str, _non_empty(MAX_ID_LENGTH), AfterValidator(_key_part)]
Name = Annotated[str, _non_empty(MAX_NAME_LENGTH), AfterValidator(_key_part)]
# Attribute values: short enough to compare and display; a push token may be much longer (APNs: 64
# hex characters today, FCM: ~160, with room for change).
MAX_TEXT_LENGTH = 256
MAX_LONG_TEXT_LENGTH = 4096
Text = Annotated[str, _non_empty(MAX_TEXT_LENGTH), AfterValidator(_storable_text)]
LongText = Annotated[str, _non_empty(MAX_LONG_TEXT_LENGTH), AfterValidator(_storable_text)]


@dataclass(frozen=True, slots=True)
class ItemError:
    """One rejected item: ``sessions[3].started_at: no time zone``."""

    input_array: str
    index: int
    field: str
    problem: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.problem}"

    def to_json(self) -> dict[str, Any]:
        # Braze's shape (type, input_array, index) plus the field and a readable message.
        return {
            "type": self.message,
            "input_array": self.input_array,
            "index": self.index,
            "field": self.field,
            "message": self.message,
        }


def batch_response(counts: dict[str, int], errors: list[ItemError]) -> dict[str, Any]:
    """The body every batch route answers with: what was processed, and each refused item."""
    return {"message": "success", **counts, "errors": [error.to_json() for error in errors]}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(body: str | bytes | None, *, is_base64: bool = False, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The JSON value of a request body, or a BadRequest / PayloadTooLarge saying why not."""
    if body is None or body == "":
        raise BadRequest("the request body is empty; expected a JSON object")
    raw = body.encode() if isinstance(body, str) else body
    if is_base64:
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the request body is not valid base64") from None
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the request body is {len(raw)} bytes; at most {max_bytes} are accepted")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8") from None
    except ValueError as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None


def require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"the request body must be a JSON object, not {json_type(value)}")
    return value


def optional_array(body: dict[str, Any], name: str, limit: int) -> list[Any]:
    """``body[name]`` as a list of at most ``limit`` items; absent or null is an empty list."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{name}: expected a list, not {json_type(value)}")
    if len(value) > limit:
        raise BadRequest(f"{name}: {len(value)} items; at most {limit} are accepted per request")
    return value


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


_PROBLEMS: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda e: "is required",
    "string_type": lambda e: f"expected a string, not {json_type(e.get('input'))}",
    "string_too_short": lambda e: "must not be empty",
    "string_unicode": lambda e: NOT_UNICODE,
    "string_too_long": lambda e: f"longer than {e['ctx']['max_length']} characters",
    "string_pattern_mismatch": lambda e: f"{e.get('input')!r} is not of the form {e['ctx']['pattern']}",
    "bool_type": lambda e: f"expected true or false, not {json_type(e.get('input'))}",
    "int_type": lambda e: f"expected an integer, not {json_type(e.get('input'))}",
    "int_from_float": lambda e: "expected an integer",
    "float_type": lambda e: f"expected a number, not {json_type(e.get('input'))}",
    "finite_number": lambda e: "expected a finite number",
    "literal_error": lambda e: f"expected {e['ctx']['expected']}",
    "model_type": lambda e: f"expected an object, not {json_type(e.get('input'))}",
    "dict_type": lambda e: f"expected an object, not {json_type(e.get('input'))}",
    "list_type": lambda e: f"expected a list, not {json_type(e.get('input'))}",
    "greater_than_equal": lambda e: f"must be at least {e['ctx']['ge']}",
    "less_than_equal": lambda e: f"must be at most {e['ctx']['le']}",
    "greater_than": lambda e: f"must be greater than {e['ctx']['gt']}",
}


def field_path(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe_validation_error(error: ValidationError, prefix: str) -> list[tuple[str, str]]:
    """(field, problem) pairs for a pydantic error, in our wording rather than pydantic's."""
    problems = []
    for detail in error.errors(include_url=False):
        describe = _PROBLEMS.get(detail["type"])
        problem = describe(dict(detail)) if describe else str(detail["msg"])
        problems.append((field_path(prefix, detail["loc"]), problem))
    return problems


def validate_item(model: type[Model], raw: Any, input_array: str, index: int) -> Model | ItemError:
    """One array item as ``model``, or the first problem with it as an ItemError."""
    prefix = f"{input_array}[{index}]"
    if not isinstance(raw, dict):
        return ItemError(input_array, index, prefix, f"expected an object, not {json_type(raw)}")
    try:
        return parse(event=raw, model=model)
    except ValidationError as error:
        field, problem = describe_validation_error(error, prefix)[0]
        return ItemError(input_array, index, field, problem)


_ID = TypeAdapter(Id)


def validate_id(raw: Any, input_array: str, index: int) -> str | ItemError:
    """One element of an array of ids, or what is wrong with it as an ItemError."""
    try:
        return _ID.validate_python(raw)
    except ValidationError as error:
        field, problem = describe_validation_error(error, f"{input_array}[{index}]")[0]
        return ItemError(input_array, index, field, problem)


def validate_request(model: type[Model], raw: Any) -> Model:
    """A whole request body as ``model``; every problem goes into one BadRequest."""
    try:
        return parse(event=require_object(raw), model=model)
    except ValidationError as error:
        problems = describe_validation_error(error, "")
        details = [
            {"field": field.lstrip("."), "message": f"{field.lstrip('.')}: {p}"} for field, p in problems
        ]
        raise BadRequest("; ".join(d["message"] for d in details), errors=details) from None
