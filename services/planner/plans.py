"""The planner's domain values: what a planning request holds and what a plan is.

The servicer translates ``PlanPromptRequest`` into :class:`PlanRequest` and a
:class:`Plan` back into ``PromptPlan``; everything between works on these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from services.planner.intents import Intent
from services.planner.sampling import SamplerOverrides, SamplerSettings

__all__ = ["Mode", "Plan", "PlanRequest", "PlanSource", "SourceAnalysis"]


class Mode(enum.StrEnum):
    """Which kind of generation is planned."""

    IMAGE_TO_IMAGE = "image_to_image"
    TEXT_TO_IMAGE = "text_to_image"


class PlanSource(enum.StrEnum):
    """Who made a plan."""

    MODEL = "model"
    RULES = "rules"


@dataclass(frozen=True)
class SourceAnalysis:
    """What the vision service said about the source image (English).

    Attributes:
        description: One or two sentences on the subject and scene.
        subjects: Main things in the image, most important first.
        colors: Dominant colours.
        materials: Visible materials.
        style: Visual style.
        lighting: Lighting.
        composition: Composition and framing.
    """

    description: str = ""
    subjects: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    style: str = ""
    lighting: str = ""
    composition: str = ""

    @property
    def is_empty(self) -> bool:
        """True when no field says anything."""
        return not any(
            (
                self.description.strip(),
                self.subjects,
                self.colors,
                self.materials,
                self.style.strip(),
                self.lighting.strip(),
                self.composition.strip(),
            )
        )


@dataclass(frozen=True)
class PlanRequest:
    """One planning request, as the servicer translated it.

    Attributes:
        instruction: What to do, any language (as received; the planner validates and
            cleans it).
        mode: Image-to-image or text-to-image (already resolved from the request).
        analysis: The source analysis; None for text-to-image or when the caller sent
            none.
        overrides: The caller's sampler overrides.
    """

    instruction: str
    mode: Mode
    analysis: SourceAnalysis | None = None
    overrides: SamplerOverrides = field(default_factory=SamplerOverrides)


@dataclass(frozen=True)
class Plan:
    """An English Flux prompt with complete sampler settings.

    Attributes:
        positive_prompt: Validated English prompt.
        negative_prompt: Validated negative prompt (may be empty).
        settings: Complete settings, overrides applied.
        intent: The edit intent; None when the rules recognised nothing.
        source: Who planned it.
        warnings: What was adjusted, for the caller.
        model: The model that planned it; empty for rules plans.
        edit_instruction: The change as an English imperative for an instruction-editing
            model (FLUX.1 Kontext), saying what to keep; empty for text-to-image.
    """

    positive_prompt: str
    negative_prompt: str
    settings: SamplerSettings
    intent: Intent | None
    source: PlanSource
    warnings: tuple[str, ...] = ()
    model: str = ""
    edit_instruction: str = ""
