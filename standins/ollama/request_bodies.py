"""Request bodies decoded as Ollama's Go handlers decode them, errors and all.

Ollama binds each body with Go's ``encoding/json`` into ``api.ChatRequest`` /
``api.GenerateRequest`` / ``api.ShowRequest``. Everything that decoder rejects is a
400 whose text is the decoder's message: a syntax error, a wrongly typed field, bad
base64 in ``images``, an unparsable ``keep_alive`` or ``think``. Those rules are
reproduced here; checks Ollama makes later (unknown model, option types, ``format``)
live with the handlers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standins.ollama.wire import (
    GoDecodeError,
    decode_std_base64,
    json_kind,
    parse_keep_alive,
)

__all__ = [
    "ChatRequest",
    "GenerateRequest",
    "Message",
    "MissingBodyError",
    "ShowRequest",
    "Think",
    "check_options",
    "decode_chat",
    "decode_generate",
    "decode_show",
]

Think = bool | str | None
"""``think`` as sent: a bool, a level ("low", "medium", "high", "max") or absent."""

_THINK_LEVELS = ("high", "medium", "low", "max")

# Types of Ollama's options (api.Options / api.Runner), for the 500 Ollama sends when an
# option has the wrong JSON type. Unknown options are ignored, as the server does.
_OPTION_TYPES: dict[str, str] = {
    **dict.fromkeys(
        (
            "num_keep",
            "seed",
            "num_predict",
            "top_k",
            "repeat_last_n",
            "num_ctx",
            "num_batch",
            "num_gpu",
            "main_gpu",
            "num_thread",
        ),
        "integer",
    ),
    **dict.fromkeys(
        (
            "temperature",
            "top_p",
            "min_p",
            "typical_p",
            "repeat_penalty",
            "presence_penalty",
            "frequency_penalty",
        ),
        "float32",
    ),
    "use_mmap": "boolean",
    "stop": "array",
}


class MissingBodyError(GoDecodeError):
    """The body was empty (Go's decoder returned ``io.EOF``)."""

    def __init__(self) -> None:
        super().__init__("missing request body")


@dataclass(frozen=True)
class Message:
    """One chat message after decoding (images are raw bytes)."""

    role: str
    content: str
    images: tuple[bytes, ...] = ()
    thinking: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """A decoded ``POST /api/chat`` body."""

    model: str
    messages: tuple[Message, ...]
    stream: bool
    format: Any
    options: Mapping[str, Any]
    keep_alive_ns: int | None
    think: Think


@dataclass(frozen=True)
class GenerateRequest:
    """A decoded ``POST /api/generate`` body."""

    model: str
    prompt: str
    system: str
    template: str
    images: tuple[bytes, ...]
    context: tuple[int, ...]
    raw: bool
    stream: bool
    format: Any
    options: Mapping[str, Any]
    keep_alive_ns: int | None
    think: Think


@dataclass(frozen=True)
class ShowRequest:
    """A decoded ``POST /api/show`` body (``name`` is the deprecated spelling of model)."""

    model: str
    verbose: bool


def _parse_object(body: bytes, go_type: str) -> dict[str, Any]:
    text = body.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise MissingBodyError
    try:
        # Go's Decoder reads the first value and ignores what follows it.
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as exc:
        raise GoDecodeError(_go_syntax_message(exc)) from None
    if not isinstance(value, dict):
        if value is None:
            return {}
        raise GoDecodeError(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}"
        )
    return value


def _go_syntax_message(exc: json.JSONDecodeError) -> str:
    doc, pos = exc.doc, exc.pos
    if pos >= len(doc.rstrip()) or exc.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = doc[pos]
    shown = "'\\''" if char == "'" else f"'{char}'"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character {shown} looking for beginning of object key string"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character {shown} after object key"
    if exc.msg.startswith("Expecting ','"):
        before = doc[:pos].rstrip()
        inside = "array element" if _innermost_open(before) == "[" else "object key:value pair"
        return f"invalid character {shown} after {inside}"
    if exc.msg.startswith("Invalid control character"):
        return f"invalid character {shown} in string literal"
    return f"invalid character {shown} looking for beginning of value"


def _innermost_open(text: str) -> str:
    depth: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth.append(char)
        elif char in "]}" and depth:
            depth.pop()
    return depth[-1] if depth else ""


class _Fields:
    """Field access with Go's rules: case-insensitive names, ``null`` means "not set"."""

    def __init__(self, obj: Mapping[str, Any], struct: str, path: str = "") -> None:
        self._obj = obj
        self._folded = {key.lower(): key for key in obj}
        self._struct = struct
        self._path = path

    def raw(self, name: str) -> Any:
        key = name if name in self._obj else self._folded.get(name.lower())
        return None if key is None else self._obj[key]

    def _type_error(self, name: str, value: Any, go_type: str) -> GoDecodeError:
        return GoDecodeError(
            f"json: cannot unmarshal {json_kind(value)} into Go struct field "
            f"{self._struct}.{self._path}{name} of type {go_type}"
        )

    def string(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._type_error(name, value, "string")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._type_error(name, value, "bool")
        return value

    def options(self) -> dict[str, Any]:
        value = self.raw("options")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._type_error("options", value, "map[string]interface {}")
        return value

    def images(self, name: str = "images") -> tuple[bytes, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self._type_error(name, value, "[]api.ImageData")
        decoded: list[bytes] = []
        for item in value:
            if item is None:
                decoded.append(b"")
                continue
            if not isinstance(item, str):
                raise self._type_error(name, item, "api.ImageData")
            decoded.append(decode_std_base64(item))
        return tuple(decoded)

    def keep_alive(self) -> int | None:
        value = self.raw("keep_alive")
        return None if value is None else parse_keep_alive(value)

    def think(self) -> Think:
        value = self.raw("think")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value not in _THINK_LEVELS:
                raise GoDecodeError(
                    f"invalid think value: {json.dumps(value)} "
                    '(must be "high", "medium", "low", "max", true, or false)'
                )
            return value
        raise GoDecodeError(
            'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'
        )


def decode_chat(body: bytes) -> ChatRequest:
    """Decode a chat body.

    Args:
        body: The raw request body.

    Returns:
        The request; ``format`` and ``options`` are passed on unchecked, because Ollama
        checks them only once the model is scheduled (and answers 500, not 400).

    Raises:
        GoDecodeError: What Ollama answers with 400.
    """
    fields = _Fields(_parse_object(body, "api.ChatRequest"), "ChatRequest")
    raw_messages = fields.raw("messages")
    messages: list[Message] = []
    if raw_messages is not None:
        if not isinstance(raw_messages, list):
            raise fields._type_error("messages", raw_messages, "[]api.Message")
        for raw in raw_messages:
            if raw is None:
                messages.append(Message(role="", content=""))
                continue
            if not isinstance(raw, dict):
                raise fields._type_error("messages", raw, "api.Message")
            message = _Fields(raw, "Message", "messages.")
            messages.append(
                Message(
                    # Ollama lower-cases roles before templating.
                    role=message.string("role").lower(),
                    content=message.string("content"),
                    images=message.images(),
                    thinking=message.string("thinking"),
                )
            )
    return ChatRequest(
        model=fields.string("model"),
        messages=tuple(messages),
        stream=fields.boolean("stream", default=True),
        format=fields.raw("format"),
        options=fields.options(),
        keep_alive_ns=fields.keep_alive(),
        think=fields.think(),
    )


def decode_generate(body: bytes) -> GenerateRequest:
    """Decode a generate body (same rules as :func:`decode_chat`)."""
    fields = _Fields(_parse_object(body, "api.GenerateRequest"), "GenerateRequest")
    raw_context = fields.raw("context")
    context: list[int] = []
    if raw_context is not None:
        if not isinstance(raw_context, list):
            raise fields._type_error("context", raw_context, "[]int")
        for token in raw_context:
            if isinstance(token, bool) or not isinstance(token, int):
                raise fields._type_error("context", token, "int")
            context.append(token)
    return GenerateRequest(
        model=fields.string("model"),
        prompt=fields.string("prompt"),
        system=fields.string("system"),
        template=fields.string("template"),
        images=fields.images(),
        context=tuple(context),
        raw=fields.boolean("raw", default=False),
        stream=fields.boolean("stream", default=True),
        format=fields.raw("format"),
        options=fields.options(),
        keep_alive_ns=fields.keep_alive(),
        think=fields.think(),
    )


def decode_show(body: bytes) -> ShowRequest:
    """Decode a show body; ``name`` wins over ``model`` as in Ollama's handler."""
    fields = _Fields(_parse_object(body, "api.ShowRequest"), "ShowRequest")
    name = fields.string("name")
    return ShowRequest(
        model=name or fields.string("model"), verbose=fields.boolean("verbose", False)
    )


def check_options(options: Mapping[str, Any]) -> None:
    """Type-check runtime options as Ollama's ``Options.FromMap`` does.

    Raises:
        GoDecodeError: ``option "temperature" must be of type float32`` and the like;
            Ollama answers these with 500.
    """
    for key, value in options.items():
        expected = _OPTION_TYPES.get(key)
        if expected is None or value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if expected in ("integer", "float32") and not number:
            raise GoDecodeError(f"option {json.dumps(key)} must be of type {expected}")
        if expected == "boolean" and not isinstance(value, bool):
            raise GoDecodeError(f"option {json.dumps(key)} must be of type boolean")
        if expected == "array":
            if not isinstance(value, list):
                raise GoDecodeError(f"option {json.dumps(key)} must be of type array")
            if not all(isinstance(item, str) for item in value):
                raise GoDecodeError(f"option {json.dumps(key)} must be of an array of strings")
