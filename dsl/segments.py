"""Segment files to one checked, compiled, ordered set of segments, with the campaigns defined in the
same files (`SegmentSet.campaigns`): what the rest of kudos uses."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from dsl.campaigns import CompiledCampaign
from dsl.checker import check_sources as _check_parsed
from dsl.checker import segment_dependencies
from dsl.compiler import Predicate, compile_condition
from dsl.diagnostics import Diagnostic, DslError, sort_diagnostics
from dsl.explain import Explanation, explain_definition
from dsl.forecast import Forecast, compile_forecast
from dsl.model import CampaignDef, SegmentDef
from dsl.parser import ParsedSource, parse_source
from dsl.profile import ProfileView
from dsl.runtime import EvalContext

SEGMENT_SUFFIX = ".seg"

# (file name as it appears in diagnostics, text)
Source = tuple[str, str]


# Hex digits of a definition version: 48 bits, ample to tell the versions of one segment apart.
VERSION_LENGTH = 12


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    definition: SegmentDef
    predicate: Predicate  # (profile, context) -> membership; context holds its dependencies
    dependencies: tuple[str, ...]  # segments read with in_segment, directly
    # (profile, context) -> (membership, next change): see next_change.
    forecast: Forecast
    # What membership changes are recorded with (campaigns.md): a hash of the rule's text and of the
    # versions of the segments it reads, so editing a dependency changes every segment above it.
    version: str = ""

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def title(self) -> str | None:
        return self.definition.title

    @property
    def file(self) -> str:
        return self.definition.file

    @property
    def source(self) -> str:
        """The definition as written, from `segment` to its closing brace."""
        return self.definition.source

    def next_change(self, profile: ProfileView, context: EvalContext) -> float | None:
        """A lower bound on the earliest instant after `context.at` at which membership could differ
        from membership at `context.at` if the profile stays as it is; None: never. `context` must
        hold the memberships and next changes of the segments this one reads (as
        SegmentSet.forecast_all leaves them)."""
        return self.forecast(profile, context)[1]


class SegmentSet(Mapping[str, CompiledSegment]):
    """Compiled segments by name, iterated in dependency order (a segment after every segment it
    reads with in_segment). `campaigns` holds the campaigns of the same files, by name, in file
    order; each one's audience is a segment of this set."""

    def __init__(
        self, ordered: Sequence[CompiledSegment], campaigns: Sequence[CompiledCampaign] = ()
    ) -> None:
        self.campaigns: Mapping[str, CompiledCampaign] = MappingProxyType(
            {campaign.name: campaign for campaign in campaigns}
        )
        self._segments = {segment.name: segment for segment in ordered}
        self._ordered = tuple((segment.name, segment.predicate) for segment in ordered)
        self._forecasts = tuple((segment.name, segment.forecast) for segment in ordered)
        # What evaluate(name) runs: the segment's dependencies (transitively, in order), then itself.
        self._plans: dict[str, tuple[tuple[str, Predicate], ...]] = {}
        for segment in ordered:
            needed = self._closure(segment.name)
            self._plans[segment.name] = tuple(item for item in self._ordered if item[0] in needed)

    def _closure(self, name: str) -> set[str]:
        found = {name}
        pending = [name]
        while pending:
            for dependency in self._segments[pending.pop()].dependencies:
                if dependency not in found:
                    found.add(dependency)
                    pending.append(dependency)
        return found

    # Mapping

    def __getitem__(self, name: str) -> CompiledSegment:
        return self._segments[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    @property
    def definitions(self) -> list[SegmentDef]:
        return [segment.definition for segment in self._segments.values()]

    @property
    def campaign_definitions(self) -> list[CampaignDef]:
        return [campaign.definition for campaign in self.campaigns.values()]

    # evaluation

    # `at` is required: the caller owns the clock (a service's clock, a sweep's instant, a test's
    # fixed instant), so that no evaluation depends on when the machine happens to run it.

    def evaluate_all(self, profile: ProfileView, at: float) -> dict[str, bool]:
        """Membership of every segment at `at`, by name, in dependency order."""
        context = EvalContext(at)
        memberships = context.memberships
        for name, predicate in self._ordered:
            memberships[name] = predicate(profile, context)
        return memberships

    def forecast_all(self, profile: ProfileView, at: float) -> tuple[dict[str, bool], float | None]:
        """Membership of every segment at `at` (as evaluate_all) and the earliest instant after `at`
        at which any of them could change if the profile stays as it is (as next_change_all), in
        one pass: what a sweep needs to write a user's changes and know when to look again."""
        context = EvalContext(at)
        memberships = context.memberships
        next_changes = context.next_changes
        earliest: float | None = None
        for name, forecast in self._forecasts:
            member, change = forecast(profile, context)
            memberships[name] = member
            next_changes[name] = change
            if change is not None and (earliest is None or change < earliest):
                earliest = change
        return memberships, earliest

    def next_change_all(self, profile: ProfileView, at: float) -> float | None:
        """A lower bound on the earliest instant after `at` at which any segment's membership could
        differ from its membership at `at`, the profile staying as it is; None: time alone changes
        nothing for this profile. Never later than the real change; may be earlier."""
        return self.forecast_all(profile, at)[1]

    def evaluate(self, name: str, profile: ProfileView, at: float) -> bool:
        """Membership of one segment (and only what it depends on) at `at`.
        KeyError for a name that is not in the set."""
        context = self._evaluate_dependencies(name, profile, at)
        return context.memberships[name]

    def explain(self, name: str, profile: ProfileView, at: float) -> Explanation:
        """Why `profile` is in segment `name` at `at`, clause by clause."""
        context = self._evaluate_dependencies(name, profile, at)
        return explain_definition(self._segments[name].definition, profile, context)

    def _evaluate_dependencies(self, name: str, profile: ProfileView, at: float) -> EvalContext:
        plan = self._plans[name]
        context = EvalContext(at)
        memberships = context.memberships
        for segment_name, predicate in plan:
            memberships[segment_name] = predicate(profile, context)
        return context


# --- building -----------------------------------------------------------------------------------


def parse_sources(sources: Iterable[Source]) -> list[ParsedSource]:
    return [parse_source(text, file) for file, text in sources]


def check_sources(sources: Iterable[Source], base: SegmentSet | None = None) -> list[Diagnostic]:
    """Every problem in these sources (in file and position order); [] when they are usable.
    With `base`, the sources are checked as an addition to it: its segment names are taken and may
    be read with in_segment."""
    parsed = _with_base(parse_sources(sources), base)
    return sort_diagnostics(_check_parsed(parsed))


def compile_sources(sources: Iterable[Source], base: SegmentSet | None = None) -> SegmentSet:
    """Parse, check and compile; DslError with every diagnostic if anything is wrong. With `base`,
    the result holds the base's segments too (e.g. to preview a new rule that uses in_segment)."""
    parsed = _with_base(parse_sources(sources), base)
    diagnostics = _check_parsed(parsed)
    if diagnostics:
        raise DslError(sort_diagnostics(diagnostics))
    definitions = [definition for source in parsed for definition in source.definitions]
    base_segments = dict(base.items()) if base is not None else {}
    compiled = [
        base_segments.get(definition.name)
        or CompiledSegment(
            definition=definition,
            predicate=compile_condition(definition.condition),
            forecast=compile_forecast(definition.condition),
            dependencies=tuple(dict.fromkeys(name for name, _ in segment_dependencies(definition))),
        )
        for definition in definitions
    ]
    base_campaigns = dict(base.campaigns) if base is not None else {}
    campaigns = [
        base_campaigns.get(definition.name) or CompiledCampaign.compile(definition)
        for source in parsed
        for definition in source.campaigns
    ]
    return SegmentSet(_with_versions(_dependency_order(compiled)), campaigns)


def definition_version(source: str, dependency_versions: Mapping[str, str]) -> str:
    """A short hash of a definition's text (`segment` to its closing brace: comments and blank lines
    around the block do not count) and of the versions of the segments it reads with in_segment.
    The same in every process (hashlib, not the salted hash())."""
    digest = hashlib.sha256()
    # Line endings are how a checkout stores the file, not what the rule says.
    digest.update(source.replace("\r\n", "\n").encode("utf-8"))
    for name in sorted(dependency_versions):
        # NUL cannot occur in a name or a version: the parts cannot run into each other.
        digest.update(f"\0{name}\0{dependency_versions[name]}".encode())
    return digest.hexdigest()[:VERSION_LENGTH]


def _with_versions(ordered: list[CompiledSegment]) -> list[CompiledSegment]:
    """The segments with their versions; `ordered` has each segment after its dependencies, so
    their versions are known when it needs them."""
    versions: dict[str, str] = {}
    versioned: list[CompiledSegment] = []
    for segment in ordered:
        version = definition_version(segment.source, {name: versions[name] for name in segment.dependencies})
        versions[segment.name] = version
        # A base segment already has its version (the same inputs give the same hash): keep it as is.
        versioned.append(
            segment if version == segment.version else dataclasses.replace(segment, version=version)
        )
    return versioned


def _with_base(parsed: list[ParsedSource], base: SegmentSet | None) -> list[ParsedSource]:
    if base is None or not len(base):
        return parsed
    # The base checked clean: it only contributes its names, first, so that a clash is reported
    # on the new definition.
    existing = ParsedSource(
        file="<base>", text="", definitions=base.definitions, campaigns=base.campaign_definitions
    )
    return [existing, *parsed]


def _dependency_order(segments: list[CompiledSegment]) -> list[CompiledSegment]:
    """Each segment after those it depends on; otherwise in the order given (files, then source).
    The checker has ruled cycles out."""
    by_name = {segment.name: segment for segment in segments}
    placed: set[str] = set()
    ordered: list[CompiledSegment] = []

    def place(root: CompiledSegment) -> None:
        # Depth first without recursion: a long chain of in_segment must not hit the stack limit.
        pending: list[tuple[CompiledSegment, int]] = [(root, 0)]
        while pending:
            segment, next_dependency = pending.pop()
            if segment.name in placed:
                continue
            if next_dependency < len(segment.dependencies):
                pending.append((segment, next_dependency + 1))
                dependency = by_name[segment.dependencies[next_dependency]]
                if dependency.name not in placed:
                    pending.append((dependency, 0))
                continue
            placed.add(segment.name)
            ordered.append(segment)

    for segment in segments:
        place(segment)
    return ordered


# --- files --------------------------------------------------------------------------------------


def segment_files(
    paths: Iterable[str | Path], require_files: bool = False
) -> tuple[list[Path], list[Diagnostic]]:
    """`*.seg` files among `paths` (directories are searched recursively), sorted; a path that
    does not exist is a diagnostic, and so is a directory without any with `require_files`."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found_here = sorted(found for found in path.rglob(f"*{SEGMENT_SUFFIX}") if found.is_file())
            if require_files and not found_here:
                problems.append(Diagnostic(str(path), 1, 1, f"no {SEGMENT_SUFFIX} file in this directory"))
            files.extend(found_here)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Diagnostic(str(path), 1, 1, "no such file or directory"))
    return list(dict.fromkeys(files)), problems


def read_sources(files: Iterable[Path]) -> tuple[list[Source], list[Diagnostic]]:
    sources: list[Source] = []
    problems: list[Diagnostic] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as error:
            problems.append(Diagnostic(str(path), 1, 1, f"cannot read: {error.strerror or error}"))
            continue
        # Editors on Windows may start a file with a byte order mark, which the writer never sees.
        data = data.removeprefix(codecs.BOM_UTF8)
        try:
            sources.append((str(path), data.decode("utf-8")))
        except UnicodeDecodeError as error:
            problems.append(_undecodable(str(path), data, error))
    return sources, problems


def _undecodable(file: str, data: bytes, error: UnicodeDecodeError) -> Diagnostic:
    """Where the first byte that is not UTF-8 sits, shown on its line (the bad bytes replaced)."""
    before = data[: error.start]
    line = before.count(b"\n") + 1
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
    line_end = data.find(b"\n", error.start)
    shown = (
        data[line_start : None if line_end < 0 else line_end].decode("utf-8", errors="replace").rstrip("\r")
    )
    return Diagnostic(file, line, column, f"not UTF-8 text: byte 0x{data[error.start]:02x}", shown)


def check_paths(paths: Iterable[str | Path]) -> list[Diagnostic]:
    """What `kudos segments check` reports: every problem in the `*.seg` files under `paths`,
    checked together; [] when they are all fine. Render with `format_diagnostics`. A directory
    without any `*.seg` file is a problem: checking nothing is not a pass."""
    files, problems = segment_files(paths, require_files=True)
    sources, unreadable = read_sources(files)
    return sort_diagnostics([*problems, *unreadable, *check_sources(sources)])


def load_segments(directory: str | Path) -> SegmentSet:
    """All `*.seg` files under `directory` (recursively) as one SegmentSet, its campaigns in
    `.campaigns`; DslError lists every problem."""
    files, problems = segment_files([directory])
    sources, unreadable = read_sources(files)
    if problems or unreadable:
        # Report the file problems with any in the readable files, not one kind at a time.
        raise DslError(sort_diagnostics([*problems, *unreadable, *check_sources(sources)]))
    return compile_sources(sources)
