"""Deterministic answers: what the stand-in's models "say" for a request.

Nothing here is random. The same request always gets the same reply; a different image,
instruction, schema, ``seed`` (at a temperature above 0) or ``num_predict`` changes it in
a predictable way:

* A **vision** model (LLaVA) describes the image it received, from measured facts
  (:mod:`standins.ollama.image_facts`), filling the ``format`` schema if one was
  given — fields named like ``description``, ``colors``, ``lighting`` get the facts.
* A **text** model (gpt-oss) reads the instruction in the last user message (and any JSON
  analysis embedded in the messages) and fills the schema; plan-like fields
  (``positive_prompt``, ``intent``, ``denoise``, ``steps``, ``cfg``, ``guidance``…) get
  values a planner would choose, always inside the schema's bounds.
* A **thinking** model first emits a reasoning trace whose length follows the ``think``
  level, and shows gpt-oss's documented quirks: ``think: false`` with ``format`` gives
  empty content, and thinking tokens count against ``num_predict``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from standins.ollama.image_facts import NAMED_COLOURS, ImageFacts, analyse_image
from standins.ollama.intents import (
    ENGLISH_COLOURS,
    ENGLISH_MATERIALS,
    Concept,
    Rendering,
    choose_intent,
    concept_named,
    detect_concepts,
    has_cyrillic,
    render_instruction,
)
from standins.ollama.models import IMAGE_TOKENS, InstalledModel
from standins.ollama.request_bodies import Message, Think
from standins.ollama.schema_fill import Path, fill_schema, leaf_name

__all__ = [
    "Completion",
    "FormatSpec",
    "InvalidFormatError",
    "TextTask",
    "compose_reply",
    "parse_format",
    "read_task",
    "split_pieces",
]

NEGATIVE_PROMPT = "blurry, low quality, distorted, deformed, watermark, text, jpeg artifacts"

# Pieces a streamed reply is cut into: one "token" per NDJSON line, leading space attached.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")
_THINK_SENTENCES = {"low": 2, "medium": 4, "high": 7}


class InvalidFormatError(ValueError):
    """``format`` is neither ``"json"`` nor a schema object (Ollama answers 500)."""


@dataclass(frozen=True)
class FormatSpec:
    """The decoded ``format`` field."""

    kind: Literal["none", "json", "schema"]
    schema: Mapping[str, Any] | None = None


def parse_format(raw: Any) -> FormatSpec:
    """Interpret ``format`` as Ollama's completion code does.

    ``null`` and ``""`` mean no format; ``"json"`` constrains to any JSON; an object is a
    schema. Everything else is rejected with Ollama's wording.

    Raises:
        InvalidFormatError: For e.g. ``"xml"``, a number or a list.
    """
    if raw is None or raw == "":
        return FormatSpec("none")
    if raw == "json":
        return FormatSpec("json")
    if isinstance(raw, dict):
        return FormatSpec("schema", raw)
    encoded = json.dumps(raw, separators=(",", ":"))
    raise InvalidFormatError(
        f'invalid format: {json.dumps(encoded)}; expected "json" or a valid JSON Schema object'
    )


def split_pieces(text: str) -> list[str]:
    """Cut text into the token-sized pieces a stream carries (they join back to ``text``)."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class Completion:
    """A finished generation, ready to be framed as one reply or a stream."""

    thinking: tuple[str, ...]
    content: tuple[str, ...]
    done_reason: Literal["stop", "length"]
    prompt_eval_count: int

    @property
    def eval_count(self) -> int:
        """Generated tokens, thinking included (as Ollama counts them)."""
        return len(self.thinking) + len(self.content)

    @property
    def thinking_text(self) -> str:
        """The whole reasoning trace."""
        return "".join(self.thinking)

    @property
    def content_text(self) -> str:
        """The whole answer."""
        return "".join(self.content)


@dataclass(frozen=True)
class TextTask:
    """What a text model makes of a conversation."""

    instruction: str
    analysis: Mapping[str, Any]
    concepts: tuple[Concept, ...]
    seed: int | None
    mentioned_keys: tuple[str, ...] = field(default=())
    mode: Literal["image_to_image", "text_to_image"] | None = None
    """What a ``Mode:`` line in the conversation says, if there is one."""

    @property
    def has_source_image(self) -> bool:
        """Whether the request is about an existing image (its mode, else an analysis)."""
        if self.mode is not None:
            return self.mode == "image_to_image"
        return bool(self.analysis)

    @property
    def concept(self) -> Concept:
        """The main kind of change: the strongest one detected («нарисуй» only without a
        source image), else ``edit`` with a source image and ``generate`` without."""
        source = self.has_source_image
        for concept in self.concepts:
            if not (source and concept.name == "generate"):
                return concept
        return concept_named("edit" if source else "generate")


_MODE = re.compile(r"(?im)^\s*(?:mode|режим)\s*[:：]\s*(text|image)[\s_-]*(?:to|2)[\s_-]*image")
_LABELLED_INSTRUCTION = re.compile(
    r"(?im)^\s*(?:user\s+)?(?:instruction|request|task|wish|prompt|запрос|инструкция|задача|"
    r"пожелание)\s*[:：]\s*(.+)$"
)


def read_task(messages: Sequence[Message], options: Mapping[str, Any]) -> TextTask:
    """Find the instruction and any embedded image analysis in a conversation.

    The instruction is a line labelled ``Instruction:`` / ``Запрос:``… in the last user
    message if there is one, else that message minus embedded JSON. JSON objects found in
    user messages are merged into the analysis.

    Args:
        messages: The conversation.
        options: Request options (for the seed).

    Returns:
        The task.
    """
    users = [m for m in messages if m.role == "user"] or list(messages)
    analysis: dict[str, Any] = {}
    for message in users:
        for found in _embedded_objects(message.content):
            analysis.update(found)
    last = users[-1].content if users else ""
    labelled = _LABELLED_INSTRUCTION.search(last)
    instruction = labelled.group(1).strip() if labelled else _strip_json(last).strip()
    seed = options.get("seed")
    every_text = "\n".join(m.content for m in messages)
    mentioned = re.findall(
        r"[\"'`]([a-z][a-z0-9_]{1,40})[\"'`]|\b([a-z]+_[a-z0-9_]+)\b", every_text
    )
    keys = tuple(dict.fromkeys(a or b for a, b in mentioned))
    mode_line = _MODE.search("\n".join(m.content for m in users))
    mode: Literal["image_to_image", "text_to_image"] | None = None
    if mode_line:
        mode = "text_to_image" if mode_line.group(1).lower() == "text" else "image_to_image"
    return TextTask(
        instruction=instruction,
        analysis=analysis,
        concepts=tuple(detect_concepts(instruction)),
        seed=int(seed) if isinstance(seed, int | float) and seed >= 0 else None,
        mentioned_keys=keys,
        mode=mode,
    )


def _embedded_objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        index = text.find("{", end)
    return found


def _strip_json(text: str) -> str:
    decoder = json.JSONDecoder()
    out: list[str] = []
    position = 0
    index = text.find("{")
    while index != -1:
        try:
            _, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        out.append(text[position:index])
        position = end
        index = text.find("{", end)
    out.append(text[position:])
    lines = [line for line in "".join(out).splitlines() if not re.fullmatch(r"\s*[\w ]*:\s*", line)]
    return "\n".join(lines)


def _tokens(name: str) -> list[str]:
    """Words of a field name: ``dominantColors`` and ``dominant_colors`` → dominant, colors."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [token for token in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if token]


def _human(name: str) -> str:
    return " ".join(_tokens(name)) or "value"


def _last_index(path: Path) -> int:
    for part in reversed(path):
        if isinstance(part, int):
            return part
    return 0


def _parent_name(path: Path) -> str:
    names = [p for p in path if isinstance(p, str)]
    return names[-2] if len(names) >= 2 else ""


def _schema_kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if isinstance(kind, str):
        return kind
    if schema.get("enum"):
        first = schema["enum"][0]
        return "number" if isinstance(first, int | float) else "string"
    for keyword in ("anyOf", "oneOf"):
        for branch in schema.get(keyword) or []:
            if isinstance(branch, Mapping) and branch.get("type") not in (None, "null"):
                return str(branch["type"])
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _scaled(value: float, schema: Mapping[str, Any]) -> float:
    """Put a 0…1 measurement on the scale a schema uses (0…1, 0…100 or 0…255)."""
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if isinstance(high, int | float) and not isinstance(high, bool):
        if high > 100:
            return round(value * 255, 1)
        if high > 1:
            return round(value * 100, 1)
    return round(value, 3)


# Leaf names that say nothing by themselves; inside an object they take its meaning.
_GENERIC_LEAVES = frozenset(
    {"description", "desc", "summary", "name", "label", "value", "type", "kind", "details"}
)


def _has(name: str, *words: str) -> bool:
    """True when a word of ``name`` starts with one of ``words`` (``colo`` matches
    ``colours``; ``light`` does not match ``highlights``); words containing ``_`` match
    across tokens (``is_photo``)."""
    tokens = _tokens(name)
    joined = "_".join(tokens)
    return any(
        word in joined if "_" in word else any(token.startswith(word) for token in tokens)
        for word in words
    )


def _last_token(name: str) -> str:
    tokens = _tokens(name)
    return tokens[-1] if tokens else ""


class VisionHints:
    """Field contents of a vision model looking at one image.

    Args:
        facts: The measured image.
        variant: Wording variant (from the seed at a temperature above 0).
    """

    def __init__(self, facts: ImageFacts, variant: int = 0) -> None:
        self.facts = facts
        self.variant = variant

    @property
    def subjects(self) -> list[str]:
        """Things "seen", largest first: the subject, then other dominant colour areas."""
        f = self.facts
        form = "shape" if f.flat else "region"
        found: list[str] = []
        if f.subject_colour is not None:
            found.append(f"{f.subject_size} {f.subject_colour} {form} {f.subject_position}")
        for colour in f.colours:
            if colour not in (f.background, f.subject_colour):
                found.append(f"{colour} area")
        return found or [f"plain {f.background} surface"]

    @property
    def materials(self) -> list[str]:
        """Surface qualities that follow from the pixels."""
        f = self.facts
        if f.flat:
            return ["flat digital colour fill"]
        materials = ["textured surface" if f.contrast_word == "high" else "smooth surface"]
        if {"brown", "tan", "maroon"} & set(f.colours):
            materials.append("wood-like texture")
        return materials

    @property
    def lighting(self) -> str:
        """A lighting phrase from brightness and contrast."""
        f = self.facts
        return f"{f.brightness_word} lighting with {f.contrast_word} contrast"

    @property
    def composition(self) -> str:
        """A composition phrase from orientation and subject position."""
        f = self.facts
        return (
            f"{f.orientation} frame, main subject {f.subject_position}, {f.subject_size} in frame"
        )

    @property
    def mood(self) -> str:
        """A mood phrase from palette warmth and brightness."""
        f = self.facts
        return f"{f.warmth} and {f.brightness_word}"

    @property
    def tags(self) -> list[str]:
        """Keywords for the image."""
        f = self.facts
        return [f.style, f.orientation, *f.colours[:3], f.brightness_word]

    @property
    def description(self) -> str:
        """Two sentences describing the image."""
        f = self.facts
        subject = self.subjects[0] if f.subject_colour is not None else "an evenly filled surface"
        colours = _join(f.colours)
        if self.variant % 3 == 1:
            return (
                f"This {f.width}x{f.height} {f.style} in {f.orientation} format shows {subject} "
                f"against a {f.background} background. Dominant colours are {colours}; the "
                f"image is {f.brightness_word} with {f.contrast_word} contrast."
            )
        if self.variant % 3 == 2:
            return (
                f"A {f.brightness_word} {f.orientation} {f.style} of {f.width}x{f.height} "
                f"pixels: {subject} on {f.background}. Its palette is {colours}."
            )
        return (
            f"A {f.orientation} {f.style} ({f.width}x{f.height} pixels) showing {subject} on a "
            f"{f.background} background. The palette is mostly {colours}, with "
            f"{f.brightness_word} lighting and {f.contrast_word} contrast."
        )

    def as_object(self) -> dict[str, Any]:
        """The reply to ``format: "json"``: the facts under plain names."""
        f = self.facts
        return {
            "description": self.description,
            "subjects": self.subjects,
            "colors": list(f.colours),
            "background": f.background,
            "lighting": self.lighting,
            "style": f.style,
            "composition": self.composition,
            "orientation": f.orientation,
            "width": f.width,
            "height": f.height,
            "brightness": f.brightness,
        }

    def suggest(self, path: Path, schema: Mapping[str, Any]) -> Any:
        """See :class:`standins.ollama.schema_fill.FieldHints`."""
        name = leaf_name(path)
        parent = _parent_name(path)
        kind = _schema_kind(schema)
        index = _last_index(path)
        f = self.facts
        if parent and _has(parent, "colo", "palette") and not _has(name, "colo", "palette"):
            colour = f.colours[index % len(f.colours)]
            if _has(name, "hex", "rgb", "code"):
                return "#{:02x}{:02x}{:02x}".format(*NAMED_COLOURS[colour])
            if _has(
                name, "share", "percent", "proportion", "coverage", "fraction", "ratio", "weight"
            ):
                return _scaled(f.colour_shares[index % len(f.colour_shares)], schema)
            if _has(name, "name", "label", "colo", "value", "description"):
                return colour
        if parent and _has(parent, "subject", "object", "element", "item", "entit", "thing"):
            if _has(name, "name", "label", "description", "what", "type", "kind", "object"):
                return self.subjects[index % len(self.subjects)]
            if _has(name, "position", "location", "where"):
                return f.subject_position
        own = self._by_name(name, kind, schema)
        if parent and _tokens(name)[-1:] and _tokens(name)[-1] in _GENERIC_LEAVES:
            # "lighting": {"kind": …, "description": …} is about lighting, not the image.
            inherited = self._by_name(parent, kind, schema)
            if inherited is not None:
                return inherited
        return own

    def _by_name(self, name: str, kind: str, schema: Mapping[str, Any]) -> Any:
        f = self.facts
        many = kind == "array"
        if _last_token(name) == "width":
            return f.width
        if _last_token(name) == "height":
            return f.height
        if _has(name, "aspect"):
            return round(f.width / f.height, 4) if kind in ("number", "integer") else f.aspect_ratio
        if _has(name, "orientation"):
            return f.orientation
        if _has(name, "background"):
            return f.background if _has(name, "colo") else f"{f.background} background"
        if _has(name, "subject", "object", "element", "entit", "thing", "focal", "item"):
            if kind in ("integer", "number"):
                return len(self.subjects)
            return self.subjects if many else self.subjects[0]
        if _has(name, "colo", "palette", "hue"):
            if many:
                return list(f.colours)
            if _has(name, "primary", "dominant", "main"):
                return f.colours[0]
            return _join(f.colours)
        if _has(name, "material", "texture", "surface", "fabric"):
            return self.materials if many else self.materials[0]
        if _has(name, "light", "illumin"):
            if schema.get("enum"):
                key = {"bright": "high-key", "dark": "low-key", "dim": "low-key"}
                return [key.get(f.brightness_word, "natural"), self.lighting]
            return [self.lighting] if many else self.lighting
        if _has(name, "bright", "exposure"):
            return (
                _scaled(f.brightness, schema)
                if kind in ("number", "integer")
                else f.brightness_word
            )
        if _has(name, "contrast"):
            return (
                _scaled(f.contrast * 2, schema)
                if kind in ("number", "integer")
                else f.contrast_word
            )
        if _has(name, "style", "medium", "aesthetic", "genre", "art"):
            return [f.style] if many else f.style
        if _has(name, "compos", "framing", "layout", "perspective", "angle"):
            return self.composition
        if _has(name, "mood", "atmos", "tone", "feel", "emotion", "vibe"):
            return self.mood
        if _has(name, "warm", "temperature"):
            return f.warmth
        if _has(name, "descr", "caption", "summary", "scene", "overview", "content", "alt"):
            return self.description
        if _has(name, "text", "ocr", "writing", "words", "signage"):
            # Colour statistics cannot read; the honest answer is "no text found".
            if kind == "boolean":
                return False
            return [] if many else "no legible text"
        if _has(name, "tag", "keyword", "label"):
            return self.tags if many else ", ".join(self.tags)
        if _has(name, "count", "number"):
            return len(self.subjects)
        if _has(name, "confid", "certain", "score", "quality"):
            return 0.9 if kind in ("number", "integer") else "high"
        if _has(name, "format", "file_type", "mime"):
            return f.format
        if _has(name, "time"):
            return "daytime" if f.brightness >= 0.45 else "night"
        if _has(name, "is_photo", "photo"):
            return (not f.flat) if kind == "boolean" else f.style
        if _tokens(name)[:1] in (["has"], ["is"], ["contains"]):
            return False
        if _has(name, "position", "location", "where", "placement"):
            return f.subject_position
        if _has(name, "size", "scale"):
            return f.subject_size
        if _has(name, "lang"):
            return "en"
        return None

    def text(self, path: Path) -> str:
        """A phrase for a string field no rule recognises."""
        name = leaf_name(path)
        if not name:
            return self.description
        f = self.facts
        index = path[-1] if path and isinstance(path[-1], int) else None
        suffix = f" {index + 1}" if isinstance(index, int) and index > 0 else ""
        return f"{_human(name)}{suffix}: {f.style} with {f.colours[0]} tones"


class PlanHints:
    """Field contents of a text model planning an image generation.

    Args:
        task: The instruction and analysis.
        variant: Wording variant (from the seed at a temperature above 0).
        schema: The ``format`` schema, if any: its intent enum decides the intent once,
            so that the denoise and the prompts follow the value the plan states.
    """

    def __init__(
        self, task: TextTask, variant: int = 0, schema: Mapping[str, Any] | None = None
    ) -> None:
        self.task = task
        self.variant = variant
        self.rendering: Rendering = render_instruction(task.instruction)
        self._intent_values = _intent_values(schema) if schema else None

    def choose(self, allowed: Sequence[str]) -> tuple[str, Concept]:
        """The intent value for the instruction among ``allowed``, and the concept whose
        denoise suits it."""
        value, concept = choose_intent(
            allowed,
            self.task.instruction,
            has_source_image=self.task.has_source_image,
            text_to_image=self.task.mode == "text_to_image",
        )
        return value, concept or self.task.concept

    @property
    def concept(self) -> Concept:
        """The kind of change the plan states (by the schema's intent enum if it has one)."""
        if self._intent_values:
            return self.choose(self._intent_values)[1]
        return self.task.concept

    @property
    def subjects(self) -> list[str]:
        """The source image's subjects in English, from the embedded analysis."""
        analysis = self.task.analysis
        for key in ("subjects", "subject", "main_subject", "objects"):
            value = analysis.get(key)
            if isinstance(value, list) and value:
                found = [_english_only(str(v)) for v in value]
                return [v for v in found if v]
            if isinstance(value, str) and _english_only(value):
                return [_english_only(value)]
        for key in ("description", "caption", "summary", "scene"):
            value = analysis.get(key)
            if isinstance(value, str) and value.strip():
                first = re.split(r"(?<=[.!?])\s", value.strip(), maxsplit=1)[0].rstrip(".!?")
                first = re.sub(r"\s*\([^)]*\)", "", first)
                sentence = _english_only(first[:1].lower() + first[1:])[:200]
                return [sentence] if sentence else []
        return []

    @property
    def subject(self) -> str | None:
        """The source image's subject in one phrase (up to three subjects)."""
        return _join(self.subjects[:3]) or None

    @property
    def colours(self) -> list[str]:
        """The analysis's colours, if any."""
        for key in ("colors", "colours", "palette", "dominant_colors"):
            value = self.task.analysis.get(key)
            if isinstance(value, list):
                return [_english_only(str(v)) for v in value if _english_only(str(v))]
        return []

    def _analysis_text(self, key: str) -> str:
        value = self.task.analysis.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        return _english_only(value) if isinstance(value, str) else ""

    @property
    def positive_prompt(self) -> str:
        """An English Flux prompt: the requested change as a sentence, then what of the
        source stays (subjects, palette, lighting, composition, style), then quality tags."""
        change = [p for p in (_english_only(p) for p in self.rendering.phrases) if p]
        said = " ".join(change).lower()
        parts = list(change)
        name = self.concept.name
        if name != "generate":
            kept = [s for s in self.subjects if not re.search(rf"\b{re.escape(s.lower())}\b", said)]
            if kept:
                parts.append(_join(kept[:3]))
        colour_named = bool(self.rendering.colours) or any(c in said for c in NAMED_COLOURS)
        if self.colours and not colour_named:
            parts.append(f"{_join(self.colours[:3])} color palette")
        lighting = self._analysis_text("lighting")
        if lighting and name != "lighting_change":
            parts.append(lighting)
        if name != "generate":
            parts.append(self._analysis_text("composition"))
            if name != "style_transfer":
                parts.append(self._analysis_text("style"))
        parts = [p for p in parts if p]
        if not parts:
            parts.append("a detailed scene")
        parts += ["highly detailed", "sharp focus"]
        return ", ".join(dict.fromkeys(parts))

    @property
    def negative_prompt(self) -> str:
        """What must not appear: what the change replaces or removes, then artifacts."""
        extra: list[str] = []
        name = self.concept.name
        rendering = self.rendering
        description = " ".join(
            self._analysis_text(key) for key in ("description", "caption", "subjects")
        ).lower()
        if name in ("color_change", "material_change") and description:
            words = _OLD_COLOUR if name == "color_change" else _OLD_MATERIAL
            new = {w.lower() for w in (*rendering.colours, *rendering.materials)}
            for thing in rendering.objects:
                pattern = rf"\b({words})\s+(?:[a-z-]+\s+){{0,2}}?{re.escape(thing.lower())}"
                found = re.search(pattern, description)
                if found and found.group(1) not in new:
                    extra.append(f"{found.group(1)} {thing}")
        elif name == "remove_object":
            extra += [_english_only(r) for r in rendering.removed]
        elif name == "style_transfer":
            style = self._analysis_text("style").lower()
            if "photo" in style and not any("photo" in s.lower() for s in rendering.styles):
                extra.append("photorealistic, photograph")
        return ", ".join(dict.fromkeys([*(e for e in extra if e), NEGATIVE_PROMPT]))

    @property
    def reasoning(self) -> str:
        """One sentence explaining the plan."""
        concept = self.concept
        keep = self.subject or "the scene"
        return (
            f"The instruction asks for {_a(concept.label)}, so the plan keeps {keep} "
            f"and uses denoise {concept.denoise:.2f}."
        )

    def dimensions(self) -> tuple[int, int]:
        """Output size: ``WxH`` from the instruction, else the analysed image's, else 1024²."""
        found = re.search(r"(\d{3,4})\s*[xх×]\s*(\d{3,4})", self.task.instruction)
        if found:
            return int(found.group(1)), int(found.group(2))
        width, height = self.task.analysis.get("width"), self.task.analysis.get("height")
        if isinstance(width, int | float) and isinstance(height, int | float) and width and height:
            scale = min(1.0, 1024 / max(width, height))
            return max(16, round(width * scale / 16) * 16), max(16, round(height * scale / 16) * 16)
        return 1024, 1024

    def suggest(self, path: Path, schema: Mapping[str, Any]) -> Any:
        """See :class:`standins.ollama.schema_fill.FieldHints`."""
        name = leaf_name(path)
        kind = _schema_kind(schema)
        if _has(name, "negative"):
            return self.negative_prompt
        if _has(name, "prompt"):
            return self.positive_prompt
        if _has(name, "intent", "task", "operation", "action", "edit_type", "category"):
            allowed = schema.get("enum")
            if isinstance(allowed, list) and allowed and all(isinstance(v, str) for v in allowed):
                return self.choose(allowed)[0]
            return self.concept.name
        if _has(name, "denois", "strength"):
            return self.concept.denoise
        if _has(name, "step"):
            return 28
        if _has(name, "cfg"):
            return 1.0
        if _has(name, "guidance"):
            return 3.5
        if _has(name, "seed"):
            if self.task.seed is not None:
                return self.task.seed
            digest = hashlib.sha256(self.task.instruction.encode()).digest()
            return int.from_bytes(digest[:4], "big") >> 1
        if _has(name, "sampler"):
            return "euler"
        if _has(name, "scheduler"):
            return "simple"
        if _last_token(name) == "width":
            return self.dimensions()[0]
        if _last_token(name) == "height":
            return self.dimensions()[1]
        if _has(name, "lang"):
            return "ru" if has_cyrillic(self.task.instruction) else "en"
        if _has(name, "reason", "rational", "explan", "note", "comment", "summary", "thought"):
            return self.reasoning
        if _has(name, "style"):
            if self.rendering.styles:
                return self.rendering.styles[0]
            return self._analysis_text("style") or "photographic"
        if _has(name, "subject"):
            return self.subject or "the scene"
        if _has(name, "colo", "palette"):
            return self.colours if kind == "array" else _join(self.colours) or "natural colors"
        if _has(name, "lora", "controlnet", "adapter", "reference", "extra"):
            return []
        if _has(name, "translat", "english"):
            return self.positive_prompt
        if _has(name, "instruction", "request", "original"):
            return self.task.instruction
        if _has(name, "confid", "certain", "score"):
            return 0.8
        return None

    def text(self, path: Path) -> str:
        """A phrase for a string field no rule recognises."""
        name = leaf_name(path)
        if not name:
            return self.positive_prompt
        return f"{_human(name)} for {self.subject or 'the requested image'}"

    def answer(self) -> str:
        """The plain-text reply (no ``format``)."""
        return f"Here is an English prompt for the image: {self.positive_prompt}"

    def as_object(self) -> dict[str, Any]:
        """The reply to ``format: "json"``: the keys the prompt mentions, else one field."""
        result: dict[str, Any] = {}
        for key in self.task.mentioned_keys:
            value = self.suggest((key,), {})
            if value is not None:
                result[key] = value
        return result or {"response": self.answer()}


_OLD_COLOUR = (
    r"(?:(?:light|dark|pale|bright|deep|soft|warm|cool)\s+)?(?:" + "|".join(ENGLISH_COLOURS) + ")"
)
_OLD_MATERIAL = "|".join(ENGLISH_MATERIALS)
_INTENT_FIELD_WORDS = ("intent", "task", "operation", "action", "edit_type", "category")


def _intent_values(schema: Mapping[str, Any]) -> list[str] | None:
    """The string enum of a schema's top-level intent-like field, if it has one."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    for name, sub in properties.items():
        if not (isinstance(name, str) and _has(name, *_INTENT_FIELD_WORDS)):
            continue
        values = _local(schema, sub).get("enum")
        if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
            return [str(v) for v in values]
    return None


def _local(root: Mapping[str, Any], schema: Any) -> Mapping[str, Any]:
    """``schema`` with a local ``$ref`` (or a one-branch ``allOf``/``anyOf`` of one) resolved."""
    for _ in range(8):
        if not isinstance(schema, Mapping):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node: Any = root
            for part in ref[2:].split("/"):
                node = node.get(part, {}) if isinstance(node, Mapping) else {}
            schema = node
            continue
        for keyword in ("allOf", "anyOf", "oneOf"):
            branches = schema.get(keyword)
            if isinstance(branches, list):
                typed = [b for b in branches if isinstance(b, Mapping) and b.get("type") != "null"]
                if len(typed) == 1:
                    schema = typed[0]
                    break
        else:
            return schema
    return schema if isinstance(schema, Mapping) else {}


def _a(noun: str) -> str:
    """``noun`` with its indefinite article: "an add object", "a color change"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _english_only(text: str) -> str:
    cleaned = re.sub(r"[^\x20-\x7e]", "", text)
    return re.sub(r"\s{2,}", " ", cleaned).strip(" ,;")


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _thinking(task: TextTask | None, spec: FormatSpec, level: str, hints: PlanHints | None) -> str:
    instruction = task.instruction if task else ""
    shown = instruction if len(instruction) <= 120 else instruction[:117] + "..."
    keys = list((spec.schema or {}).get("properties", {}))
    sentences = [
        f'The user wants: "{shown}".' if shown else "The user sent a request.",
        f"This looks like {_a(hints.concept.label)} request." if hints else "Let me answer.",
        f"I need to answer with JSON containing {', '.join(keys)}."
        if keys
        else "I should answer directly.",
        f"The Flux prompt must be English: {hints.positive_prompt}." if hints else "Keep it short.",
        "Denoise should reflect how much of the source must change.",
        "Numbers must stay inside the schema bounds.",
        "Steps around 28 and guidance 3.5 suit Flux dev; cfg stays at 1.",
    ]
    return " ".join(sentences[: _THINK_SENTENCES[level]])


def _think_level(think: Think) -> str:
    if think is None or think is True:
        return "medium"  # the server turns thinking on for capable models
    if think is False:
        return "low"  # gpt-oss cannot stop thinking; it thinks briefly
    return "high" if think == "max" else str(think)


def compose_reply(
    model: InstalledModel,
    messages: Sequence[Message],
    *,
    spec: FormatSpec,
    think: Think,
    options: Mapping[str, Any],
    endpoint: Literal["chat", "generate"],
) -> Completion:
    """Generate the reply to a request.

    Args:
        model: The model answering.
        messages: The conversation (for generate: system and prompt as messages).
        spec: The decoded ``format``.
        think: The ``think`` field as sent.
        options: Runtime options (``seed``, ``temperature``, ``num_predict``, ``stop``).
        endpoint: Which route asked; gpt-oss only thinks before a schema on chat.

    Returns:
        The completion.

    Raises:
        standins.ollama.image_facts.UnreadableImageError: When a vision model gets
            bytes that are not an image.
    """
    temperature = options.get("temperature", 1.0 if model.thinking else 0.8)
    seed = options.get("seed", -1)
    variant = int(seed) % 3 if isinstance(seed, int | float) and seed >= 0 and temperature else 0
    image = next((m.images[0] for m in reversed(messages) if m.images), None)
    task: TextTask | None = None
    plan: PlanHints | None = None
    if model.vision and image is not None:
        vision = VisionHints(analyse_image(image), variant)
        if spec.kind == "schema":
            content = json.dumps(fill_schema(spec.schema or {}, vision), ensure_ascii=False)
        elif spec.kind == "json":
            content = json.dumps(vision.as_object(), ensure_ascii=False)
        else:
            content = vision.description
    else:
        task = read_task(messages, options)
        plan = PlanHints(task, variant, spec.schema if spec.kind == "schema" else None)
        if spec.kind == "schema":
            content = json.dumps(fill_schema(spec.schema or {}, plan), ensure_ascii=False)
        elif spec.kind == "json":
            content = json.dumps(plan.as_object(), ensure_ascii=False)
        else:
            content = plan.answer()
    thinking = ""
    if model.thinking:
        constrained_at_once = spec.kind != "none" and (think is False or endpoint == "generate")
        if constrained_at_once:
            # The grammar applies from the first token, but gpt-oss wants to open its
            # analysis channel first: users see empty content (documented quirk).
            content = ""
        else:
            thinking = _thinking(task, spec, _think_level(think), plan)
    thinking_pieces = split_pieces(thinking)
    content_pieces = split_pieces(content)
    done_reason: Literal["stop", "length"] = "stop"
    stops = options.get("stop")
    if isinstance(stops, list) and stops:
        cut = min((content.find(s) for s in stops if s and s in content), default=-1)
        if cut >= 0:
            content_pieces = split_pieces(content[:cut])
    limit = options.get("num_predict")
    if isinstance(limit, int | float) and limit > 0:
        limit = int(limit)
        if len(thinking_pieces) >= limit:
            thinking_pieces, content_pieces = thinking_pieces[:limit], []
            done_reason = "length"
        elif len(thinking_pieces) + len(content_pieces) > limit:
            content_pieces = content_pieces[: limit - len(thinking_pieces)]
            done_reason = "length"
    prompt_tokens = sum(len(split_pieces(m.content)) + 4 for m in messages)
    if model.vision:
        prompt_tokens += IMAGE_TOKENS * sum(len(m.images) for m in messages)
    return Completion(
        thinking=tuple(thinking_pieces),
        content=tuple(content_pieces),
        done_reason=done_reason,
        prompt_eval_count=max(1, prompt_tokens),
    )
