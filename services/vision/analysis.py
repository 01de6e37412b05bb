"""What the vision model is asked, what it must answer, and whether the answer is complete.

The model gets a system prompt with a short worked example and the JSON schema of
:class:`ModelReply`, so its server constrains the output to that shape. The grammar
guarantees syntax, not content: :func:`parse_reply` validates the JSON, :func:`find_gaps`
checks that every field of the schema (:data:`ANALYSIS_FIELDS`) says something and that
the description names the main subject, and :func:`reask_prompt` asks once, naming
exactly what is missing. :func:`empty_fields` is what ``missing_fields`` reports, for a
model's analysis and the metadata fallback alike.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common.llm import UnusableAnswerError

__all__ = [
    "ANALYSIS_FIELDS",
    "ANALYSIS_SCHEMA",
    "PROMPT_VERSION",
    "SYSTEM_PROMPT",
    "USER_PROMPT",
    "Analysis",
    "AnalysisSource",
    "Gap",
    "ModelReply",
    "empty_fields",
    "find_gaps",
    "mentions_subject",
    "merge_replies",
    "parse_reply",
    "reask_prompt",
]

_MAX_ITEMS = 8


class ModelReply(BaseModel):
    """The JSON object the vision model answers with (the requested schema).

    Every key has a default so that an answer leaving one out is *incomplete* (re-asked,
    then reported) rather than *garbage* (retried); the schema sent to the server still lists
    them all as required.
    """

    model_config = ConfigDict(extra="ignore", title="ImageAnalysis")

    description: str = Field(
        default="", description="One or two sentences naming the main subject and the scene."
    )
    subjects: list[str] = Field(
        default_factory=list,
        description="The main things in the image, most important first.",
    )
    colors: list[str] = Field(
        default_factory=list,
        description="Dominant colours in plain English, most prominent first.",
    )
    materials: list[str] = Field(
        default_factory=list,
        description="Visible materials and surfaces (wood, ceramic, fur, glass, ...).",
    )
    style: str = Field(default="", description="Visual style (photograph, watercolour, ...).")
    lighting: str = Field(default="", description="Lighting (soft daylight, low-key, ...).")
    composition: str = Field(default="", description="Composition, framing and viewpoint.")


def _schema() -> dict[str, Any]:
    schema = ModelReply.model_json_schema()
    schema.pop("description", None)  # the class docstring speaks to developers, not the model
    # Required for the grammar (the model must write every key); lenient when parsing.
    schema["required"] = list(schema["properties"])
    for prop in schema["properties"].values():
        prop.pop("default", None)
        if prop.get("type") == "array":
            prop["maxItems"] = _MAX_ITEMS
    return schema


ANALYSIS_SCHEMA: dict[str, Any] = _schema()
"""The ``format`` of every analysis request: flat, no ``$defs``, every key required."""

ANALYSIS_FIELDS: tuple[str, ...] = tuple(ModelReply.model_fields)
"""Every field of the schema, in schema order; none may stay empty."""

# What is wrong with an empty field, and what the re-ask asks for (every schema field).
_ASKS: dict[str, tuple[str, str]] = {
    "description": (
        "the description is empty",
        "description: one or two sentences that name the main subject and the scene",
    ),
    "subjects": ("no subjects were named", "subjects: the main things you can see"),
    "colors": ("no colours were named", "colors: the dominant colours you can see"),
    "materials": ("no materials were named", "materials: the materials you can see"),
    "style": ("no style was named", "style: the visual style (photograph, watercolour, ...)"),
    "lighting": ("the lighting was not described", "lighting: the light you can see"),
    "composition": (
        "the composition was not described",
        "composition: the framing and the viewpoint",
    ),
}

SYSTEM_PROMPT = """\
You describe photographs for an image-editing system. Look only at what is visible in \
the image; never guess what is outside the frame. Answer with one JSON object:
- description: one or two sentences that name the main subject and the scene.
- subjects: the main things in the image, most important first.
- colors: the dominant colours in plain English words, most prominent first.
- materials: the visible materials and surfaces (wood, ceramic, fabric, fur, metal, ...).
- style: the visual style (photograph, watercolour, 3D render, ...).
- lighting: the light (soft daylight, warm indoor light, low-key, ...).
- composition: framing and viewpoint (close-up from above, centred subject, ...).
If you cannot see something, leave its list empty rather than guessing.

Example answer, for a photo of a bicycle (the form only; describe the image you are given):
{"description": "A red bicycle leans against a whitewashed brick wall on a sunny street.", \
"subjects": ["bicycle", "brick wall"], "colors": ["red", "white", "grey"], \
"materials": ["painted metal", "rubber", "brick"], "style": "photograph", \
"lighting": "bright midday sunlight with hard shadows", \
"composition": "side view, bicycle centred, wall filling the background"}"""

USER_PROMPT = "Describe this image as the JSON object."

_REASK_PROMPT = """\
Your answer is incomplete. Look at the image again and fill in:
{wanted}
Answer with the complete JSON object, keeping the fields you already had. \
Name only what you can see; leave a list empty if you truly cannot tell."""

PROMPT_VERSION = hashlib.sha256(
    json.dumps(
        [SYSTEM_PROMPT, USER_PROMPT, _REASK_PROMPT, ANALYSIS_SCHEMA, _ASKS], sort_keys=True
    ).encode()
).hexdigest()[:12]
"""Changes whenever the prompts or the schema change, so cached analyses never outlive them."""

# Words a model writes when it has nothing to say; they are not answers.
_PLACEHOLDERS = frozenset(
    {"", "unknown", "none", "n/a", "na", "-", "null", "not visible", "not applicable", "various"}
)
# Words that name no subject, ignored when checking that the description names it.
_STOPWORDS = frozenset({"the", "and", "with", "of", "on", "in", "a", "an", "its", "their"})


class AnalysisSource(StrEnum):
    """Who made an analysis (mirrors ``imagegen.common.v1.AnalysisSource``)."""

    MODEL = "model"
    METADATA_FALLBACK = "metadata_fallback"
    USER = "user"


@dataclass(frozen=True)
class Analysis:
    """A finished analysis of one image, whoever made it.

    Attributes mirror ``imagegen.common.v1.ImageAnalysis``.
    """

    description: str
    source: AnalysisSource
    width: int
    height: int
    image_sha256: str
    subjects: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    style: str = ""
    lighting: str = ""
    composition: str = ""
    model: str = ""
    missing_fields: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    cached: bool = False

    def size_bytes(self) -> int:
        """Approximate memory held, for the byte-bounded cache."""
        texts = [
            self.description,
            self.style,
            self.lighting,
            self.composition,
            self.model,
            self.image_sha256,
            *self.subjects,
            *self.colors,
            *self.materials,
            *self.missing_fields,
            *self.warnings,
        ]
        # Object headers of the dataclass, tuples and strings: ~50 bytes per text.
        return 200 + sum(len(t.encode()) + 50 for t in texts)


@dataclass(frozen=True)
class Gap:
    """A required part the answer lacks.

    Attributes:
        field: The field, e.g. ``"colors"``.
        problem: What is wrong, for the warning (``"no colours were named"``).
        ask: What to ask the model for in the re-ask.
        empty: The field is empty (reported in ``missing_fields``); False for a field
            that says something, but not enough (a description missing the main subject).
    """

    field: str
    problem: str
    ask: str
    empty: bool = True


def parse_reply(content: str) -> ModelReply:
    """Parses and tidies the model's answer.

    List items are stripped, de-duplicated (case-insensitively) and capped; placeholders
    such as "unknown" or "none" are removed, so they count as missing.

    Args:
        content: ``message.content`` of the reply.

    Returns:
        The tidied reply.

    Raises:
        UnusableAnswerError: The content is not a JSON object of the schema (retryable:
            it is the model's garbage, not the caller's fault).
    """
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise UnusableAnswerError(
            f"the model's answer is not JSON ({exc}): {content[:200]!r}"
        ) from exc
    if not isinstance(data, dict):
        raise UnusableAnswerError(f"the model's answer is not a JSON object: {content[:200]!r}")
    try:
        reply = ModelReply.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise UnusableAnswerError(f"the model's answer breaks the schema: {problems}") from exc
    return ModelReply(
        description=_text(reply.description),
        subjects=_items(reply.subjects),
        colors=_items(reply.colors),
        materials=_items(reply.materials),
        style=_text(reply.style),
        lighting=_text(reply.lighting),
        composition=_text(reply.composition),
    )


def _text(value: str) -> str:
    text = " ".join(value.split())
    return "" if text.lower().strip(".") in _PLACEHOLDERS else text


def _items(values: list[str]) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        text = _text(value).strip(" .,;")
        if text and text.lower() not in seen:
            seen.add(text.lower())
            kept.append(text)
    return kept[:_MAX_ITEMS]


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[^\W\d_]+", text.lower()) if w not in _STOPWORDS]


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def mentions_subject(description: str, subject: str) -> bool:
    """Whether ``description`` names ``subject`` (any of its words, plurals folded).

    >>> mentions_subject("A cup of coffee on a saucer.", "coffee cup")
    True
    >>> mentions_subject("A tabby lies on a rug.", "cat")
    False
    """
    described = {_stem(w) for w in _words(description)}
    return any(_stem(w) in described for w in _words(subject))


def empty_fields(analysis: object) -> tuple[str, ...]:
    """The schema fields an analysis (or a reply) leaves empty, in schema order.

    Args:
        analysis: Anything with the schema's fields as attributes (:class:`ModelReply`,
            :class:`Analysis`).

    Returns:
        The names of the empty fields, e.g. ``("subjects", "materials")``.
    """
    return tuple(name for name in ANALYSIS_FIELDS if not getattr(analysis, name))


def find_gaps(reply: ModelReply) -> list[Gap]:
    """The parts a (tidied) reply lacks.

    Every field of the schema must say something, and the description must mention the
    main (first) subject.

    Args:
        reply: A reply from :func:`parse_reply`.

    Returns:
        One :class:`Gap` per problem, in schema order; empty when complete.
    """
    gaps = [Gap(name, *_ASKS[name]) for name in empty_fields(reply)]
    if (
        reply.description
        and reply.subjects
        and not mentions_subject(reply.description, reply.subjects[0])
    ):
        main = reply.subjects[0]
        gaps.insert(
            0,
            Gap(
                "description",
                f"the description does not mention the main subject {main!r}",
                f"description: one or two sentences that name the main subject ({main})",
                empty=False,
            ),
        )
    return gaps


def reask_prompt(gaps: list[Gap]) -> str:
    """The one follow-up question, naming exactly what is missing.

    Args:
        gaps: What :func:`find_gaps` found.

    Returns:
        A user message asking for the complete object again.
    """
    return _REASK_PROMPT.format(wanted="\n".join(f"- {gap.ask}" for gap in gaps))


def merge_replies(first: ModelReply, second: ModelReply, gaps: list[Gap]) -> ModelReply:
    """The first answer with its gaps filled from the re-asked one.

    Fields that were fine stay as first answered (the re-ask may reword them); a gap is
    filled only when the second answer has something there.

    Args:
        first: The first, incomplete reply.
        second: The reply to the re-ask.
        gaps: The gaps of ``first``.

    Returns:
        The merged reply.
    """
    update: dict[str, Any] = {}
    for gap in gaps:
        if gap.field == "description":
            continue
        value = getattr(second, gap.field)
        if value:
            update[gap.field] = value
    merged = first.model_copy(update=update)
    if any(gap.field == "description" for gap in gaps) and second.description:
        main = merged.subjects[0] if merged.subjects else ""
        if not first.description or not main or mentions_subject(second.description, main):
            merged = merged.model_copy(update={"description": second.description})
    return merged
