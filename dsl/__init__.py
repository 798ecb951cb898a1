"""The segment language: `*.seg` files to checked, compiled predicates over a profile.

The language depends on nothing in kudos: it reads profiles through dsl.profile.ProfileView.

Contract for users: dsl.md. Typical use::

    segments = load_segments("segments")            # DslError lists every problem
    segments.evaluate_all(profile, at)              # {"top_users": True, ...}
    segments.explain("top_users", profile, at).to_json()
    check_paths(["segments"])                       # [Diagnostic, ...] for `kudos segments check`
    campaign = segments.campaigns["thank_top_users"]  # campaign blocks of the same files (campaigns.md)
    campaign.render_push({"first_name": "Ann", "attr": {"coins_bonus": 500}})  # TemplateRenderError
"""

from dsl.campaigns import CompiledCampaign, RenderedPush
from dsl.compiler import Predicate, compile_condition
from dsl.diagnostics import Diagnostic, DslError, format_diagnostics
from dsl.explain import ClauseExplanation, Explanation, GroupExplanation
from dsl.model import CampaignDef, Position, SegmentDef
from dsl.parser import parse_source
from dsl.profile import ProfileView
from dsl.runtime import EvalContext, random_bucket
from dsl.segments import (
    CompiledSegment,
    SegmentSet,
    check_paths,
    check_sources,
    compile_sources,
    load_segments,
)
from dsl.templates import CompiledTemplate, TemplateRenderError

__all__ = [
    "CampaignDef",
    "ClauseExplanation",
    "CompiledCampaign",
    "CompiledSegment",
    "CompiledTemplate",
    "Diagnostic",
    "DslError",
    "EvalContext",
    "Explanation",
    "GroupExplanation",
    "Position",
    "Predicate",
    "ProfileView",
    "RenderedPush",
    "SegmentDef",
    "SegmentSet",
    "TemplateRenderError",
    "check_paths",
    "check_sources",
    "compile_condition",
    "compile_sources",
    "format_diagnostics",
    "load_segments",
    "parse_source",
    "random_bucket",
]
