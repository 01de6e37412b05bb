"""What the text model is asked and the JSON it must answer with.

The model (gpt-oss) gets a system prompt that explains the job, the intent table and a
worked example, a user message with the instruction and the source analysis, and the JSON
schema :data:`PLAN_SCHEMA`, so its server constrains the answer (after the model's
thinking) to that shape. The grammar guarantees syntax only: :func:`parse_plan`
validates the JSON; the planner then clamps the numbers and validates the prompts.

The parsing model accepts numbers outside their ranges on purpose: a denoise of 1.7 is
clamped with a warning, not thrown away with the rest of a good plan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.llm import UnusableAnswerError
from services.planner.intents import DENOISE_TABLE, Intent
from services.planner.plans import Mode, SourceAnalysis
from services.planner.sampling import MODEL_GUIDANCE_RANGE, MODEL_STEPS_RANGE

__all__ = [
    "PLAN_SCHEMA",
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "ModelPlan",
    "english_reask",
    "parse_plan",
    "user_message",
]


class ModelPlan(BaseModel):
    """The JSON object the text model answers with (the ``format`` schema)."""

    model_config = ConfigDict(extra="ignore", title="PromptPlan")

    intent: Intent = Field(
        description="What the instruction changes; it decides how much is redrawn."
    )
    positive_prompt: str = Field(
        description=(
            "The English Flux prompt describing the finished image: the requested change "
            "stated precisely first, then everything of the source that stays."
        )
    )
    negative_prompt: str = Field(
        description="Short English list of what must not appear (artifacts, unwanted objects)."
    )
    edit_instruction: str = Field(
        default="",
        description=(
            "For an instruction-editing model (FLUX.1 Kontext): the change as one English "
            "imperative sentence, then what must stay unchanged. Empty for text-to-image."
        ),
    )
    denoise: float = Field(
        description="Share of the source to redraw, within the intent's range.",
        json_schema_extra={"minimum": 0.0, "maximum": 1.0},
    )
    steps: int = Field(
        description=f"Sampling steps, {MODEL_STEPS_RANGE[0]} to {MODEL_STEPS_RANGE[1]}.",
        json_schema_extra={"minimum": 1, "maximum": 100},
    )
    guidance: float = Field(
        description=(
            f"Flux guidance, {MODEL_GUIDANCE_RANGE[0]:g} to {MODEL_GUIDANCE_RANGE[1]:g}; "
            "3.5 unless the change needs more or less."
        ),
        json_schema_extra={"minimum": 0.0, "maximum": 10.0},
    )


def _schema() -> dict[str, Any]:
    schema = ModelPlan.model_json_schema()
    schema.pop("description", None)  # the docstring speaks to developers, not the model
    # Inline the enum: a flat schema is what llama.cpp's grammar converter handles best.
    intent = schema.pop("$defs")["Intent"]
    schema["properties"]["intent"] = {
        "type": "string",
        "enum": intent["enum"],
        "description": schema["properties"]["intent"]["description"],
    }
    for prop in schema["properties"].values():
        prop.pop("title", None)
    schema["required"] = list(schema["properties"])
    return schema


PLAN_SCHEMA: dict[str, Any] = _schema()
"""The ``format`` of every planning request: flat, every key required."""


def _intent_table() -> str:
    meaning = {
        Intent.COLOR_CHANGE: "recolour something",
        Intent.MATERIAL_CHANGE: "change what something is made of",
        Intent.STYLE_TRANSFER: "redraw the picture in another style",
        Intent.ADD_OBJECT: "add something",
        Intent.REMOVE_OBJECT: "remove something",
        Intent.LIGHTING_CHANGE: "change the light, time of day or mood",
        Intent.MINOR_EDIT: "a small touch-up (noise, sharpness, a stain)",
        Intent.FULL_REIMAGINING: "reimagine the whole picture",
        Intent.TEXT_TO_IMAGE: "no source image: generate from the instruction alone",
    }
    return "\n".join(
        f"  - {intent.value}: {meaning[intent]} (denoise {DENOISE_TABLE[intent]})"
        for intent in Intent
    )


_EXAMPLE_ANALYSIS = {
    "description": "A bright living room with a light grey fabric sofa under a large window.",
    "subjects": ["sofa", "window", "coffee table", "rug"],
    "colors": ["light grey", "white", "beige"],
    "materials": ["fabric", "wood", "wool"],
    "style": "photograph",
    "lighting": "soft daylight from the left",
    "composition": "eye-level wide shot, sofa centred",
}
_EXAMPLE_REQUEST = (
    "Mode: image-to-image\n"
    "Instruction: Перекрась диван в тёмно-зелёный бархат\n"
    f"Source image analysis (JSON): {json.dumps(_EXAMPLE_ANALYSIS)}"
)

_EXAMPLE_ANSWER = json.dumps(
    {
        "intent": "color_change",
        "positive_prompt": (
            "A dark green velvet sofa in a bright living room, its plush velvet catching the "
            "light. A large window, a wooden coffee table and a beige wool rug around it, "
            "white walls. Photograph, soft daylight from the left, eye-level wide shot with "
            "the sofa centred."
        ),
        "negative_prompt": "grey sofa, blurry, distorted, deformed, low quality",
        "edit_instruction": (
            "Make the sofa dark green velvet. Keep the room, the window, the coffee table, "
            "the rug, the lighting and the camera angle unchanged."
        ),
        "denoise": 0.85,
        "steps": 28,
        "guidance": 3.5,
    },
    ensure_ascii=False,
)

SYSTEM_PROMPT = f"""\
You plan image edits for Flux, a text-to-image model. You get an instruction (often in \
Russian, sometimes in another language) and, for image-to-image, a description of the \
source image. Answer with one JSON object:
- intent: what the instruction changes, one of:
{_intent_table()}
- positive_prompt: an English prompt describing the finished image in plain sentences. \
Put the requested change first and state it precisely (which object, which colour, \
material or style). Then describe everything of the source the instruction does not \
change (subjects, colours, materials, style, lighting, composition) so that it stays. \
Translate everything into English. At most about 120 words; no weights, brackets or \
lists of tags.
- negative_prompt: a short English list of what must not appear, including what the \
change replaces (e.g. the old colour).
- edit_instruction: the same change for an instruction-editing model (FLUX.1 Kontext), \
which sees the source itself: an English imperative ("Make the sofa dark green velvet.") \
followed by what must stay ("Keep the room, the window, the lighting and the camera \
angle unchanged."). It gives orders, it does not describe the picture. Empty in \
text-to-image mode.
- denoise: how much of the source to redraw, inside the range of the intent.
- steps: sampling steps, {MODEL_STEPS_RANGE[0]} to {MODEL_STEPS_RANGE[1]}.
- guidance: Flux guidance, {MODEL_GUIDANCE_RANGE[0]:g} to {MODEL_GUIDANCE_RANGE[1]:g}; \
3.5 unless the change needs more or less.
In text-to-image mode the intent is text_to_image and the prompt describes the whole \
picture the instruction asks for.

Example request:
{_EXAMPLE_REQUEST}
Example answer:
{_EXAMPLE_ANSWER}"""

_ENGLISH_REASK = """\
Your prompts contain words that are not English: {words}. Flux understands only English. \
Answer with the complete JSON object again, with positive_prompt and negative_prompt \
entirely in English: translate these words (write a name in Latin letters)."""

PROMPT_VERSION = hashlib.sha256(
    json.dumps([SYSTEM_PROMPT, _ENGLISH_REASK, PLAN_SCHEMA], sort_keys=True).encode()
).hexdigest()[:12]
"""Changes whenever the prompts or the schema change (logged with every plan)."""


def english_reask(words: Sequence[str]) -> str:
    """The one follow-up question when a prompt came back in another script.

    Args:
        words: The words not in the Latin script, as the model wrote them.

    Returns:
        A user message naming each word and asking for the plan in English.
    """
    return _ENGLISH_REASK.format(words=", ".join(f"«{word}»" for word in words))


def user_message(instruction: str, mode: Mode, analysis: SourceAnalysis | None) -> str:
    """The user message of a planning request.

    Args:
        instruction: The instruction as the model should see it.
        mode: Image-to-image or text-to-image.
        analysis: The source analysis, if any.

    Returns:
        The message text, in the layout of the system prompt's example.
    """
    lines = [f"Mode: {mode.value.replace('_', '-')}", f"Instruction: {instruction}"]
    if mode is Mode.IMAGE_TO_IMAGE:
        if analysis is None or analysis.is_empty:
            lines.append(
                "Source image analysis: not available; describe what the instruction asks "
                "for and keep the rest of the picture general."
            )
        else:
            described = {
                "description": analysis.description,
                "subjects": list(analysis.subjects),
                "colors": list(analysis.colors),
                "materials": list(analysis.materials),
                "style": analysis.style,
                "lighting": analysis.lighting,
                "composition": analysis.composition,
            }
            present = {key: value for key, value in described.items() if value}
            lines.append(f"Source image analysis (JSON): {json.dumps(present, ensure_ascii=False)}")
    return "\n".join(lines)


def parse_plan(content: str) -> ModelPlan:
    """Parses the model's answer.

    Args:
        content: ``message.content`` of the reply.

    Returns:
        The plan as the model wrote it (numbers not yet clamped, prompts not validated).

    Raises:
        UnusableAnswerError: The content is not JSON of the schema's shape (retryable:
            another sample may be fine).
    """
    try:
        return ModelPlan.model_validate_json(content)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'reply'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        raise UnusableAnswerError(f"the plan JSON is invalid: {problems}") from exc
