"""Checked campaign blocks with their push templates compiled: what the trigger sweep and the sender
read (campaigns.md). Built by dsl.segments with the segments of the same files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dsl.compiler import Reader, access_for
from dsl.fields import FIELDS, ValueType
from dsl.model import CampaignDef, Cap, Conversion, FieldRef, Guardrail, Position, QuietHours, Trigger
from dsl.profile import AttributeInstant, ProfileView
from dsl.runtime import EvalContext
from dsl.templates import ATTRIBUTES, TEMPLATE_FIELDS, CompiledTemplate, compile_template
from dsl.timeutil import format_instant

# How each field a template may name is read from a profile, built once (the compiler's readers).
_NOWHERE = Position("<template>", 1, 1)
_TEMPLATE_READERS: dict[str, tuple[Reader, bool]] = {
    name: (access_for(FieldRef(name, _NOWHERE)).read, FIELDS[name].type is ValueType.INSTANT)
    for name in sorted(TEMPLATE_FIELDS - {ATTRIBUTES})
}


def template_values(profile: ProfileView, at: float) -> dict[str, object]:
    """What a push template reads about one user: every plain field by its dsl.md name (instants
    as RFC 3339 text, unset as None) and the custom attributes under `attr`."""
    context = EvalContext(at)
    values: dict[str, object] = {}
    for name, (read, is_instant) in _TEMPLATE_READERS.items():
        value = read(profile, context)
        values[name] = format_instant(value) if is_instant and value is not None else value
    values[ATTRIBUTES] = {
        name: format_instant(value.epoch) if isinstance(value, AttributeInstant) else value
        for name, value in profile.custom.items()
    }
    return values


@dataclass(frozen=True, slots=True)
class RenderedPush:
    title: str
    body: str
    deep_link: str | None
    image: str | None


@dataclass(frozen=True, slots=True)
class CompiledCampaign:
    """A campaign that checked clean: every required setting is there and every template compiled.
    The settings a sender needs are properties in the units it uses (seconds, fractions, minutes of
    the day); `definition` keeps what was written, with positions."""

    definition: CampaignDef
    title_template: CompiledTemplate
    body_template: CompiledTemplate
    deep_link_template: CompiledTemplate | None
    image_template: CompiledTemplate | None

    @classmethod
    def compile(cls, definition: CampaignDef) -> CompiledCampaign:
        """Only for a definition the checker passed (ValueError otherwise)."""
        push = definition.push
        if (
            definition.audience is None
            or definition.trigger is None
            or push is None
            or push.title is None
            or push.body is None
        ):
            raise ValueError(f"campaign {definition.name} did not check clean")
        return cls(
            definition=definition,
            title_template=compile_template(push.title.text),
            body_template=compile_template(push.body.text),
            deep_link_template=compile_template(push.deep_link.text) if push.deep_link else None,
            image_template=compile_template(push.image.text) if push.image else None,
        )

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def title(self) -> str | None:
        return self.definition.title

    @property
    def audience(self) -> str:
        assert self.definition.audience is not None  # compile() refuses a campaign without one
        return self.definition.audience

    @property
    def trigger(self) -> Trigger:
        assert self.definition.trigger is not None  # compile() refuses a campaign without one
        return self.definition.trigger

    @property
    def reeligible_after_seconds(self) -> int | None:
        """None: once per user, ever."""
        return self.definition.reeligible_after_seconds

    @property
    def holdout_fraction(self) -> float:
        return self.definition.holdout_fraction

    @property
    def quiet_hours(self) -> QuietHours | None:
        return self.definition.quiet_hours

    @property
    def cap(self) -> Cap | None:
        return self.definition.cap

    @property
    def rate_per_minute(self) -> int | None:
        rate = self.definition.rate
        return rate.per_minute if rate is not None else None

    @property
    def expire_after_seconds(self) -> int:
        return self.definition.expire_after_seconds

    @property
    def conversion(self) -> Conversion | None:
        return self.definition.conversion

    @property
    def guardrail(self) -> Guardrail | None:
        return self.definition.guardrail

    @property
    def file(self) -> str:
        return self.definition.file

    @property
    def source(self) -> str:
        """The block as written, from `campaign` to its closing brace."""
        return self.definition.source

    def render_push(self, fields: Mapping[str, object]) -> RenderedPush:
        """The push for one user, from the user's field values (see CompiledTemplate.render);
        TemplateRenderError when a template fails to render."""
        return RenderedPush(
            title=self.title_template.render(fields),
            body=self.body_template.render(fields),
            deep_link=self.deep_link_template.render(fields) if self.deep_link_template else None,
            image=self.image_template.render(fields) if self.image_template else None,
        )
