"""Segments over stored profiles: membership at an instant, exact counts, paging, explanations.

Rules come from the `.seg` files deployed with the code (settings.segments_dir), loaded and
compiled once per process. Membership is computed from the profiles as stored (rules read the
latest profile; ``at`` moves the clock, not the data — dsl.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from dsl import DslError, SegmentSet, format_diagnostics, load_segments
from kudos.core.errors import BadRequest, NotFound, SegmentRulesError
from kudos.core.identity import UserKey
from kudos.core.timeutil import InstantError, format_instant, parse_instant
from kudos.store.ports import SegmentEvaluation, Storage

DEFAULT_PAGE = 100
MAX_PAGE = 1000


@cache
def deployed_segments(directory: Path) -> SegmentSet:
    try:
        return load_segments(directory)
    except DslError as error:
        raise SegmentRulesError(
            "the deployed segment rules do not compile (run `kudos segments check`):\n"
            + format_diagnostics(error.diagnostics)
        ) from None


# Rules reach at most 100,000 days from `at` (dsl/), and every instant they compare with must print
# as RFC 3339 in an explanation: `at` stays well inside years 1 to 9999.
EVALUATION_RANGE = (parse_instant("1900-01-01T00:00:00Z"), parse_instant("9000-01-01T00:00:00Z"))


def instant_parameter(name: str, text: str | None, default: float) -> float:
    if text is None:
        return default
    try:
        return _evaluation_instant(parse_instant(text))
    except InstantError as error:
        raise BadRequest(f"{name}: {error}") from None


def _evaluation_instant(at: float) -> float:
    earliest, latest = EVALUATION_RANGE
    if not earliest <= at < latest:  # also false for NaN
        raise InstantError("out of range: rules are evaluated from 1900 to 8999")
    return at


def _require_segment(segments: SegmentSet, name: str) -> None:
    if name not in segments:
        raise NotFound(f"no segment named {name!r}")


def source_name(file: str, directory: Path) -> str:
    """The rule file as it is named in git (``segments/top_users.seg``), not where it was deployed."""
    path = Path(file).resolve()
    root = directory.resolve()
    return str(path.relative_to(root.parent)) if path.is_relative_to(root) else path.name


def list_segments(store: Storage, segments: SegmentSet, directory: Path) -> dict[str, Any]:
    """GET /v1/segments: every deployed segment, with its last evaluation."""
    evaluations = store.figures.segment_evaluations(segments)
    listed = []
    for name, segment in segments.items():
        evaluation = evaluations.get(name)
        listed.append(
            {
                "name": name,
                "title": segment.title,
                "source": source_name(segment.file, directory),
                "last_evaluation": None
                if evaluation is None
                else {
                    "at": format_instant(evaluation.at),
                    "evaluated_at": format_instant(evaluation.evaluated_at),
                    "size": evaluation.size,
                },
            }
        )
    return {"segments": listed}


def matching_users(store: Storage, segments: SegmentSet, name: str, at: float) -> Iterator[UserKey]:
    """Every stored user in segment ``name`` at ``at``, in scan order."""
    for user in store.users.scan_users():
        if segments.evaluate(name, user.to_profile(), at):
            yield user.key


def _encode_token(at: float, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"at": at, "after": after}).encode()).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        return _evaluation_instant(float(decoded["at"])), str(decoded["after"])
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error):
        raise BadRequest("next: not a token this API returned") from None


def segment_members(
    store: Storage,
    segments: SegmentSet,
    now: float,
    name: str,
    at_text: str | None,
    limit_text: str | None,
    next_token: str | None,
) -> dict[str, Any]:
    """GET /v1/segments/{name}/members: the exact size at ``at`` and one page of members.

    Pages are in user-key order and the token carries ``at``, so paging through a segment sees
    one consistent evaluation instant.
    """
    _require_segment(segments, name)
    at = instant_parameter("at", at_text, now)
    limit = _limit(limit_text)
    after = ""
    if next_token:
        token_at, after = _decode_token(next_token)
        if at_text is not None and token_at != at:
            raise BadRequest("next: the token belongs to another `at`")
        at = token_at
    members = sorted(matching_users(store, segments, name, at), key=lambda user: user.token)
    store.figures.record_segment_evaluation(SegmentEvaluation(name, at, len(members), now))
    page = [user for user in members if user.token > after][:limit]
    more = bool(page) and page[-1].token < members[-1].token
    return {
        "segment": name,
        "at": format_instant(at),
        "count": len(members),
        "members": [user.identity() for user in page],
        "next": _encode_token(at, page[-1].token) if more else None,
    }


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest(f"limit: expected a whole number from 1 to {MAX_PAGE}")
    return int(text)


def explain_membership(
    store: Storage,
    segments: SegmentSet,
    now: float,
    name: str,
    user_id: str | None,
    device_id: str | None,
    at_text: str | None,
) -> dict[str, Any]:
    """GET /v1/segments/{name}/explain: in or out, and for each clause the value, threshold, result."""
    _require_segment(segments, name)
    if (user_id is None) == (device_id is None):
        raise BadRequest("user_id: give exactly one of user_id and device_id")
    at = instant_parameter("at", at_text, now)
    key = UserKey(user_id, device_id)
    user = store.users.load_user(key)
    if not user.exists:
        raise NotFound(f"no user with {key.describe()}")
    explanation = segments.explain(name, user.to_profile(), at).to_json()
    return {"user": key.identity(), "in": explanation["matched"], **explanation}
