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
from kudos.core.timeutil import SECONDS_PER_DAY, InstantError, day_of, format_instant, parse_instant
from kudos.store.ports import CHANGE_RETENTION_DAYS, MembershipChange, Storage, SweepRun

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
        return evaluation_instant(parse_instant(text))
    except InstantError as error:
        raise BadRequest(f"{name}: {error}") from None


def evaluation_instant(at: float) -> float:
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
    """GET /v1/segments: every deployed segment with its stored size, and how fresh membership is
    (the last sweep: time-driven changes are at most one sweep interval behind)."""
    sweep = store.figures.last_sweep()
    listed = []
    for name, segment in segments.items():
        size = store.memberships.count_members(name)
        listed.append(
            {
                "name": name,
                "title": segment.title,
                "source": source_name(segment.file, directory),
                "version": segment.version,
                "size": size,
                "last_evaluation": None
                if sweep is None
                else {
                    "at": format_instant(sweep.at),
                    "evaluated_at": format_instant(sweep.finished),
                    "version": sweep.definitions.get(name),
                    # api.md: "last evaluation and its size" (stored membership, as of that sweep
                    # and every ingest call since).
                    "size": size,
                },
            }
        )
    return {"segments": listed, "last_sweep": None if sweep is None else sweep_json(sweep)}


def sweep_json(sweep: SweepRun) -> dict[str, Any]:
    return {
        "kind": sweep.kind,
        "at": format_instant(sweep.at),
        "started_at": format_instant(sweep.started),
        "finished_at": format_instant(sweep.finished),
        "seconds": round(sweep.finished - sweep.started, 3),
        "users_read": sweep.users_read,
        "changes": sweep.changes,
        "triggers": sweep.triggers,
        "requeued": sweep.requeued,
    }


def matching_users(store: Storage, segments: SegmentSet, name: str, at: float) -> Iterator[UserKey]:
    """Every stored user in segment ``name`` at ``at``, in scan order."""
    for user in store.users.scan_users():
        if segments.evaluate(name, user.to_profile(), at):
            yield user.key


def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(decoded, dict):
            raise TypeError("not an object")
        return decoded
    except (ValueError, TypeError, RecursionError, binascii.Error):
        raise BadRequest("next: not a token this API returned") from None


def _member_token(token: str) -> tuple[float | None, str]:
    """(the evaluation instant, or None for stored membership; the last user of the page before)."""
    decoded = decode_token(token)
    try:
        at = decoded.get("at")
        return (None if at is None else evaluation_instant(float(at))), str(decoded["after"])
    except (ValueError, KeyError, TypeError, InstantError):
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
    """GET /v1/segments/{name}/members: the exact size and one page of members.

    Without ``at``, stored membership answers (a Query of the members index); with ``at``, the
    rules are evaluated at that instant over every profile. Pages are in user-key order, and a
    token carries its mode (and ``at``), so paging sees one consistent answer.
    """
    _require_segment(segments, name)
    limit = page_limit(limit_text)
    at = instant_parameter("at", at_text, now) if at_text is not None else None
    after = ""
    if next_token:
        token_at, after = _member_token(next_token)
        if at_text is not None and token_at != at:
            raise BadRequest("next: the token belongs to another `at`")
        at = token_at
    if at is None:
        return _stored_members(store, name, now, limit, after)
    members = sorted(matching_users(store, segments, name, at), key=lambda user: user.token)
    page = [user for user in members if user.token > after][:limit]
    more = bool(page) and page[-1].token < members[-1].token
    return {
        "segment": name,
        "at": format_instant(at),
        "count": len(members),
        "members": [user.identity() for user in page],
        "next": encode_token({"at": at, "after": page[-1].token}) if more else None,
    }


def _stored_members(store: Storage, name: str, now: float, limit: int, after: str) -> dict[str, Any]:
    try:
        after_user = UserKey.parse(after) if after else None
    except ValueError:
        raise BadRequest("next: not a token this API returned") from None
    # One more than the page: whether there is a next page, without a second Query.
    found = store.memberships.members(name, limit + 1, after_user)
    page = found[:limit]
    return {
        "segment": name,
        "at": format_instant(now),
        "count": store.memberships.count_members(name),
        "members": [user.identity() for user in page],
        "next": encode_token({"after": page[-1].token}) if len(found) > limit else None,
    }


def segment_changes(
    store: Storage,
    segments: SegmentSet,
    now: float,
    name: str,
    from_text: str | None,
    to_text: str | None,
    limit_text: str | None,
    next_token: str | None,
) -> dict[str, Any]:
    """GET /v1/segments/{name}/changes: entries and exits, newest first, paged (campaigns.md).

    The log keeps CHANGE_RETENTION_DAYS; without ``from``, that is how far back it is read, and
    without ``to``, up to the later of now and the last sweep's instant.
    """
    _require_segment(segments, name)
    limit = page_limit(limit_text)
    earliest = instant_parameter("from", from_text, now - CHANGE_RETENTION_DAYS * SECONDS_PER_DAY)
    # No `to`: no bound (campaigns.md). Changes are recorded at the clock of the call or sweep that
    # found them, which a sweep's event may set past the wall clock (campaigns.md "Clock").
    last_sweep = store.figures.last_sweep() if to_text is None else None
    latest = instant_parameter("to", to_text, max(now, last_sweep.at if last_sweep else now))
    if earliest > latest:
        raise BadRequest("from: after to")
    cursor = _change_token(next_token, name) if next_token else None
    day = day_of(cursor.at if cursor is not None else latest)
    found: list[MembershipChange] = []
    # One more than the page: whether there is a next page. Days are read newest first until the
    # page is full or `from` is passed; a day read in full moves on to the day before.
    while day >= day_of(earliest) and len(found) <= limit:
        wanted = limit + 1 - len(found)
        batch = store.memberships.changes_on_day(name, day, older_than=cursor, limit=wanted)
        found += [change for change in batch if earliest <= change.at <= latest]
        if len(batch) < wanted:
            day, cursor = day - 1, None
        else:
            cursor = batch[-1]
    page = found[:limit]
    return {
        "segment": name,
        "changes": [
            {
                "user": change.user.identity(),
                "change": change.change,
                "at": format_instant(change.at),
                "by": change.by,
                "version": change.definition,
            }
            for change in page
        ],
        "next": encode_token(_change_json(page[-1])) if len(found) > limit else None,
    }


def _change_json(change: MembershipChange) -> dict[str, Any]:
    return {"at": change.at, "user": change.user.token, "change": change.change, "def": change.definition}


def _change_token(token: str, segment: str) -> MembershipChange:
    decoded = decode_token(token)
    try:
        kind = decoded["change"]
        if kind not in ("entered", "exited"):
            raise ValueError(kind)
        return MembershipChange(
            user=UserKey.parse(str(decoded["user"])),
            segment=segment,
            change=kind,
            at=evaluation_instant(float(decoded["at"])),
            by="sweep",
            definition=str(decoded["def"]),
        )
    except (ValueError, KeyError, TypeError, InstantError):
        raise BadRequest("next: not a token this API returned") from None


def page_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest(f"limit: expected a whole number from 1 to {MAX_PAGE}")
    return int(text)


def user_parameters(user_id: str | None, device_id: str | None, *, required: bool) -> UserKey | None:
    """The user a route's ``user_id`` or ``device_id`` parameter names (exactly one, not empty); None
    when neither is given and ``required`` is False."""
    if user_id is not None and device_id is not None:
        raise BadRequest("user_id: give exactly one of user_id and device_id")
    if user_id is None and device_id is None:
        if required:
            raise BadRequest("user_id: give exactly one of user_id and device_id")
        return None
    for field, value in (("user_id", user_id), ("device_id", device_id)):
        if value is not None and not value:
            raise BadRequest(f"{field}: must not be empty")
    return UserKey(user_id, device_id)


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
    key = user_parameters(user_id, device_id, required=True)
    assert key is not None
    at = instant_parameter("at", at_text, now)
    user = store.users.load_user(key)
    if not user.exists:
        raise NotFound(f"no user with {key.describe()}")
    explanation = segments.explain(name, user.to_profile(), at).to_json()
    return {"user": key.identity(), "in": explanation["matched"], **explanation}
