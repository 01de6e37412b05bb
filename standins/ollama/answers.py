"""What the stand-in's models answer: a script the test writes (see the README), else the
requested JSON schema filled with placeholders (valid, as Ollama's grammar guarantees), ``{}``
for ``format: "json"``, a fixed sentence otherwise; thinking models add a trace."""

from __future__ import annotations

import io
import json
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from standins.ollama.models import IMAGE_TOKENS, InstalledModel, canonical_name
from standins.ollama.wire import Message, Think

__all__ = [
    "Answer",
    "AnswerLike",
    "ChatCall",
    "Completion",
    "InvalidFormatError",
    "Script",
    "UnreadableImageError",
    "compose_reply",
    "fill_schema",
    "parse_format",
    "split_pieces",
]

DEFAULT_TEXT = "This is a scripted stand-in answer."
# Pieces a streamed reply is cut into: one "token" per NDJSON line, leading space attached.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")
_THINK_SENTENCES = {"low": 2, "medium": 4, "high": 7}
_THOUGHT = "Thinking about the request."
_STOCK_STRINGS = ("example", "unknown", "a", "A", "0", "a1", "x-1")
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "uri": "https://example.com/",
    "email": "user@example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


class InvalidFormatError(ValueError):
    """``format`` is neither ``"json"`` nor a schema object (Ollama answers 500)."""


class UnreadableImageError(ValueError):
    """A vision model got bytes that are not an image (Ollama's runner fails with 500)."""


Format = Mapping[str, Any] | Literal["json"] | None
"""The decoded ``format`` field: a JSON schema, ``"json"``, or none."""


def parse_format(raw: Any) -> Format:
    """Interpret ``format`` as Ollama does: null/"" none, "json", or a schema object;
    anything else raises :class:`InvalidFormatError` with Ollama's wording."""
    if raw in (None, "", "json"):
        return "json" if raw else None
    if isinstance(raw, dict):
        return raw
    encoded = json.dumps(raw, separators=(",", ":"))
    raise InvalidFormatError(
        f'invalid format: {json.dumps(encoded)}; expected "json" or a valid JSON Schema object'
    )


def split_pieces(text: str) -> list[str]:
    """Cut text into the token-sized pieces a stream carries (they join back to ``text``)."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class Answer:
    """One scripted model answer: its text, the trace of a thinking model (None: a generic
    one) and the ``done_reason`` (None: as ``num_predict`` and ``stop`` decide)."""

    content: str
    thinking: str | None = None
    done_reason: Literal["stop", "length"] | None = None


@dataclass(frozen=True)
class ChatCall:
    """What a script function sees of a request."""

    model: str
    """The canonical model name (``llava:latest``)."""
    messages: tuple[Message, ...]
    format: Format
    options: Mapping[str, Any]

    @property
    def text(self) -> str:
        """The last user message's text."""
        users = [m.content for m in self.messages if m.role == "user"]
        return users[-1] if users else ""

    @property
    def images(self) -> list[bytes]:
        """Every image of the conversation, in order."""
        return [image for m in self.messages for image in m.images]


AnswerLike = str | int | float | bool | list[Any] | dict[str, Any] | Answer | None
"""Text as is; other JSON values encoded; None: the default answer."""
ScriptEntry = AnswerLike | Callable[[ChatCall], AnswerLike]


class Script:
    """The answers tests give the models: queued ones first, then standing ones (``standing``:
    the settings' model → answer text). ``llava`` scripts ``llava:latest``."""

    def __init__(self, standing: Mapping[str, str] | None = None) -> None:
        self._queued: dict[str | None, deque[ScriptEntry]] = {}
        self._standing: dict[str | None, ScriptEntry] = {}
        for model, answer in (standing or {}).items():
            self.always(answer, model=model)

    def _key(self, model: str | None) -> str | None:
        return None if model is None else canonical_name(model)

    def queue(self, *answers: ScriptEntry, model: str | None = None) -> None:
        """Answer the next requests (to ``model``, or to any model) with ``answers``, in order."""
        self._queued.setdefault(self._key(model), deque()).extend(answers)

    def always(self, answer: ScriptEntry, *, model: str | None = None) -> None:
        """Answer every request (to ``model``, or any) with ``answer`` once the queue is empty."""
        self._standing[self._key(model)] = answer

    def answer(self, call: ChatCall) -> Answer:
        """The answer to one request (consumes a queued entry if there is one)."""
        entry: ScriptEntry = None
        for key in (call.model, None):
            if self._queued.get(key):
                entry = self._queued[key].popleft()
                break
        else:
            entry = self._standing.get(call.model, self._standing.get(None))
        value = entry(call) if callable(entry) else entry
        if value is None:
            return Answer(default_content(call.format))
        if isinstance(value, Answer):
            return value
        return Answer(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def default_content(format_: Format) -> str:
    """The unscripted answer: the schema filled, ``{}`` for plain JSON, a sentence otherwise."""
    if isinstance(format_, Mapping):
        return json.dumps(fill_schema(format_), ensure_ascii=False)
    return "{}" if format_ == "json" else DEFAULT_TEXT


def fill_schema(schema: Mapping[str, Any] | bool) -> Any:
    """A deterministic placeholder value that validates against ``schema`` (references,
    combinators, constants, bounds, lengths, formats and simple patterns included)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _fill(root, root, "value", 0)


def _resolve(root: Mapping[str, Any], schema: Any) -> Mapping[str, Any]:
    for _ in range(32):
        if not isinstance(schema, Mapping) or not isinstance(schema.get("$ref"), str):
            break
        node: Any = root
        for part in schema["$ref"].lstrip("#").split("/"):
            if part:
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema if isinstance(schema, Mapping) else {}


def _fill(root: Mapping[str, Any], raw: Any, name: str, depth: int) -> Any:
    schema = dict(_resolve(root, raw))
    for part in schema.pop("allOf", None) or []:
        for key, value in _resolve(root, part).items():
            if key in ("properties", "required") and key in schema:
                value = {**schema[key], **value} if key == "properties" else schema[key] + value
            schema[key] = value
    for keyword in ("anyOf", "oneOf"):
        branches = [_resolve(root, b) for b in schema.pop(keyword, None) or []]
        typed = [b for b in branches if b.get("type") != "null"] or branches
        if typed:
            return _fill(root, {**schema, **typed[0]}, name, depth)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    for key in ("enum", "examples"):
        if schema.get(key):
            return schema[key][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        required = schema.get("required") or []
        names = [*(schema.get("properties") or {}), *(r for r in required if isinstance(r, str))]
        return {
            key: _fill(root, (schema.get("properties") or {}).get(key, {}), key, depth + 1)
            for key in dict.fromkeys(names)
            if depth < 8 or key in required
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 0)), 1 if depth < 8 else 0)
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        items = _resolve(root, schema.get("items", {}))
        if schema.get("uniqueItems") and items.get("enum"):
            return list(items["enum"][:count])
        return [_fill(root, items, name, depth + 1)] * count
    if kind in ("number", "integer"):
        return _number(schema, integer=kind == "integer")
    return {"boolean": False, "null": None}.get(kind, _string(schema, name))


def _string(schema: Mapping[str, Any], name: str) -> str:
    text = _FORMATS.get(str(schema.get("format")), name.replace("_", " ") or "value")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        text = next((s for s in (text, *_STOCK_STRINGS) if re.search(pattern, s)), text)
    while len(text) < int(schema.get("minLength", 0)):
        text += " value"
    maximum = schema.get("maxLength")
    return text[:maximum] if isinstance(maximum, int) else text


def _inside(schema: Mapping[str, Any], value: float) -> bool:
    return not (
        value < schema.get("minimum", -math.inf)
        or value <= schema.get("exclusiveMinimum", -math.inf)
        or value > schema.get("maximum", math.inf)
        or value >= schema.get("exclusiveMaximum", math.inf)
    )


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    lows = [schema[k] for k in ("minimum", "exclusiveMinimum") if k in schema]
    highs = [schema[k] for k in ("maximum", "exclusiveMaximum") if k in schema]
    if lows and highs:
        value = (max(lows) + min(highs)) / 2
    else:
        value = max(lows) + 1 if lows else min(highs) - 1 if highs else 0.0
    step = schema.get("multipleOf") or (1 if integer else None)
    if step:
        base = round(value / step)
        nearby = (k * step for k in (base, base + 1, base - 1, base + 2, base - 2, base + 3))
        value = next((v for v in nearby if _inside(schema, v)), value)
    return round(value) if integer else float(value)


@dataclass(frozen=True)
class Completion:
    """A finished generation, ready to be framed as one reply or a stream."""

    thinking: str
    content: str
    done_reason: Literal["stop", "length"]
    prompt_eval_count: int

    @property
    def eval_count(self) -> int:
        """Generated tokens, thinking included (as Ollama counts them)."""
        return len(split_pieces(self.thinking)) + len(split_pieces(self.content))


def _think_level(think: Think) -> str:
    # Omitted or true: the server's default; false: gpt-oss cannot stop, it thinks briefly.
    return {None: "medium", True: "medium", False: "low", "max": "high"}.get(think, str(think))


def _check_images(model: InstalledModel, messages: Sequence[Message]) -> None:
    if not model.vision:
        return  # a text model's runner drops images silently
    for image in (i for m in messages for i in m.images):
        try:
            with Image.open(io.BytesIO(image)) as opened:
                opened.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise UnreadableImageError from None


def compose_reply(
    script: Script, call: ChatCall, model: InstalledModel, think: Think
) -> Completion:
    """The reply to ``call`` from ``script``, with a thinking model's trace (by ``think``
    level), cut by ``stop`` and ``num_predict``; :class:`UnreadableImageError` when a vision
    model gets bytes that are not an image."""
    _check_images(model, call.messages)
    answer = script.answer(call)
    content, thinking = answer.content, ""
    if model.thinking:
        if call.format is not None and think is False:
            # The grammar applies from the first token, but gpt-oss wants to open its
            # analysis channel first: users see empty content (documented quirk).
            content = ""
        elif answer.thinking is not None:
            thinking = answer.thinking
        else:
            thinking = " ".join([_THOUGHT] * _THINK_SENTENCES[_think_level(think)])
    thinking_pieces, content_pieces = split_pieces(thinking), split_pieces(content)
    done_reason: Literal["stop", "length"] = answer.done_reason or "stop"
    stops = call.options.get("stop")
    if isinstance(stops, list) and stops:
        cut = min((content.find(s) for s in stops if s and s in content), default=-1)
        if cut >= 0:
            content_pieces = split_pieces(content[:cut])
    limit = call.options.get("num_predict")
    if isinstance(limit, int | float) and limit > 0:
        limit = int(limit)
        if len(thinking_pieces) >= limit:
            thinking_pieces, content_pieces = thinking_pieces[:limit], []
            done_reason = "length"
        elif len(thinking_pieces) + len(content_pieces) > limit:
            content_pieces = content_pieces[: limit - len(thinking_pieces)]
            done_reason = "length"
    prompt_tokens = sum(len(split_pieces(m.content)) + 4 for m in call.messages)
    prompt_tokens += IMAGE_TOKENS * len(call.images) if model.vision else 0
    thinking, content = "".join(thinking_pieces), "".join(content_pieces)
    return Completion(thinking, content, done_reason, prompt_tokens)
