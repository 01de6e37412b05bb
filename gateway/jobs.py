"""What a validated request asks for, as plain values the pipeline works from.

:mod:`gateway.validation` turns a ``GenerateRequest`` or ``PlanRequest`` into these; after
that nothing in the gateway reads the raw request again.

| class | holds |
|---|---|
| :class:`PlanInputs` | everything that decides the analysis and the plan (and so their reuse) |
| :class:`GenerateJob` | the plan inputs plus what only the render needs |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.caller_prompts import CallerPrompts
from imagegen.common.v1 import common_pb2
from services.common.images import ValidatedImage, ValidatedMask

__all__ = ["GenerateJob", "Mode", "PlanInputs"]


class Mode(enum.Enum):
    """Image-to-image (a source image is given) or text-to-image (none is)."""

    IMAGE_TO_IMAGE = common_pb2.GENERATION_MODE_IMAGE_TO_IMAGE
    TEXT_TO_IMAGE = common_pb2.GENERATION_MODE_TEXT_TO_IMAGE


@dataclass(frozen=True)
class PlanInputs:
    """The inputs of analysis and planning.

    Attributes:
        mode: Image-to-image or text-to-image.
        instruction: The caller's instruction, verbatim.
        image: The validated source image; None for text-to-image.
        description: The caller's own description of the source; None = ask the vision model.
        overrides: Sampler settings the caller fixed; unset fields are planned.
    """

    mode: Mode
    instruction: str
    image: ValidatedImage | None
    description: str | None
    overrides: common_pb2.SamplerSettings


@dataclass(frozen=True)
class GenerateJob:
    """A validated ``Generate`` call.

    Attributes:
        inputs: What the analysis and the plan are made from.
        seed: Seed of variant 0; None = the gateway picks one.
        variants: How many images, at least 1.
        width: Requested text-to-image width (0 = the render's default).
        height: Requested text-to-image height (0 = the render's default).
        loras: LoRAs in chain order.
        controlnet: The ControlNet, or None.
        workflow: Workflow template name; empty = the default for the mode.
        previews: Whether to stream JPEG previews.
        approved_plan: A plan the caller approved, its prompts cleaned (and replaced by
            the caller's prompt overrides); rendered as given, no model is asked.
        caller_prompts: The caller's prompt overrides, cleaned, and the warnings of
            every caller prompt cleaning changed.
        output_format: Encoding of the results (unspecified = PNG).
        output_quality: JPEG/WEBP quality; 0 = the render's default.
        scale: Upscale factor for a ``scale`` size policy workflow; None = its default.
        edit_mode: The caller's ``EditMode`` (UNSPECIFIED = AUTO).
        mask: The validated inpainting mask, or None.
    """

    inputs: PlanInputs
    seed: int | None
    variants: int
    width: int
    height: int
    loras: tuple[common_pb2.LoraSpec, ...]
    controlnet: common_pb2.ControlNetSpec | None
    workflow: str
    previews: bool
    approved_plan: common_pb2.PromptPlan | None
    caller_prompts: CallerPrompts = field(default_factory=CallerPrompts)
    output_format: common_pb2.OutputFormat = common_pb2.OUTPUT_FORMAT_UNSPECIFIED
    output_quality: int = 0
    scale: float | None = None
    edit_mode: common_pb2.EditMode = common_pb2.EDIT_MODE_UNSPECIFIED
    mask: ValidatedMask | None = None
