"""Request bodies decoded as Ollama's Go handlers decode them, errors and all.

Everything Go's ``encoding/json`` rejects while binding ``api.ChatRequest`` /
``api.ShowRequest`` is a 400 whose text is the decoder's
message (syntax errors, wrongly typed fields, bad base64, bad ``keep_alive`` or ``think``).
Later checks (unknown model, option types, ``format``) live with the handlers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standins.ollama.wire import GoDecodeError, decode_std_base64, json_kind, parse_keep_alive

__all__ = [
    "ChatRequest",
    "Message",
    "ShowRequest",
    "Think",
    "check_options",
    "decode_chat",
    "decode_show",
]

Think = bool | str | None
"""``think`` as sent: a bool, a level ("low", "medium", "high", "max") or absent."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '"high", "medium", "low", "max", true, or false'
# Types of Ollama's options, for the 500 it answers when one has the wrong JSON type.
_OPTION_TYPES = dict.fromkeys(
    ("num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch"),
    "integer",
) | dict.fromkeys(("num_gpu", "main_gpu", "num_thread"), "integer")
_OPTION_TYPES |= dict.fromkeys(
    ("temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty"),
    "float32",
) | {"frequency_penalty": "float32", "use_mmap": "boolean", "stop": "array"}


@dataclass(frozen=True)
class Message:
    """One chat message after decoding (images are raw bytes)."""

    role: str
    content: str
    images: tuple[bytes, ...] = ()
    thinking: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """A decoded ``POST /api/chat`` body (``format`` and ``options`` still unchecked)."""

    model: str
    messages: tuple[Message, ...]
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
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        raise GoDecodeError("missing request body")
    try:
        value, _ = json.JSONDecoder().raw_decode(text)  # Go ignores what follows
    except json.JSONDecodeError as exc:
        raise GoDecodeError(_go_syntax_message(exc)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GoDecodeError(
            f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}"
        )
    return value


def _go_syntax_message(exc: json.JSONDecodeError) -> str:
    doc, pos = exc.doc, exc.pos
    if pos >= len(doc.rstrip()) or exc.msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = "'\\''" if doc[pos] == "'" else f"'{doc[pos]}'"
    if exc.msg.startswith("Expecting property name"):
        return f"invalid character {char} looking for beginning of object key string"
    if exc.msg.startswith("Expecting ':'"):
        return f"invalid character {char} after object key"
    if exc.msg.startswith("Expecting ','"):
        depth = 0
        for before in reversed(_STRING.sub('""', doc[:pos])):
            depth += {"]": 1, "}": 1, "[": -1, "{": -1}.get(before, 0)
            if depth < 0:
                inside = "array element" if before == "[" else "object key:value pair"
                return f"invalid character {char} after {inside}"
    if exc.msg.startswith("Invalid control character"):
        return f"invalid character {char} in string literal"
    return f"invalid character {char} looking for beginning of value"


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

    def type_error(self, name: str, value: Any, go_type: str) -> GoDecodeError:
        return GoDecodeError(
            f"json: cannot unmarshal {json_kind(value)} into Go struct field "
            f"{self._struct}.{self._path}{name} of type {go_type}"
        )

    def typed(self, name: str, kind: type, go_type: str, default: Any) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise self.type_error(name, value, go_type)
        return value

    def images(self) -> tuple[bytes, ...]:
        value = self.typed("images", list, "[]api.ImageData", [])
        decoded: list[bytes] = []
        for item in value:
            if item is not None and not isinstance(item, str):
                raise self.type_error("images", item, "api.ImageData")
            decoded.append(decode_std_base64(item) if item else b"")
        return tuple(decoded)

    def common(self) -> dict[str, Any]:
        """The fields besides ``messages``."""
        keep_alive = self.raw("keep_alive")
        think = self.raw("think")
        if isinstance(think, str) and think not in _THINK_LEVELS:
            raise GoDecodeError(
                f"invalid think value: {json.dumps(think)} (must be {_THINK_CHOICES})"
            )
        if think is not None and not isinstance(think, bool | str):
            raise GoDecodeError(f"think must be a boolean or string ({_THINK_CHOICES})")
        return {
            "model": self.typed("model", str, "string", ""),
            "stream": self.typed("stream", bool, "bool", True),
            "format": self.raw("format"),
            "options": self.typed("options", dict, "map[string]interface {}", {}),
            "keep_alive_ns": None if keep_alive is None else parse_keep_alive(keep_alive),
            "think": think,
        }


def decode_chat(body: bytes) -> ChatRequest:
    """Decode a chat body.

    Raises:
        GoDecodeError: What Ollama answers with 400.
    """
    fields = _Fields(_parse_object(body, "api.ChatRequest"), "ChatRequest")
    messages: list[Message] = []
    for raw in fields.typed("messages", list, "[]api.Message", []):
        if raw is not None and not isinstance(raw, dict):
            raise fields.type_error("messages", raw, "api.Message")
        message = _Fields(raw or {}, "Message", "messages.")
        messages.append(
            Message(
                role=message.typed("role", str, "string", "").lower(),  # Ollama lower-cases
                content=message.typed("content", str, "string", ""),
                images=message.images(),
                thinking=message.typed("thinking", str, "string", ""),
            )
        )
    return ChatRequest(messages=tuple(messages), **fields.common())


def decode_show(body: bytes) -> ShowRequest:
    """Decode a show body; ``name`` wins over ``model`` as in Ollama's handler."""
    fields = _Fields(_parse_object(body, "api.ShowRequest"), "ShowRequest")
    name = fields.typed("name", str, "string", "") or fields.typed("model", str, "string", "")
    return ShowRequest(model=name, verbose=fields.typed("verbose", bool, "bool", False))


def check_options(options: Mapping[str, Any]) -> None:
    """Type-check runtime options as ``Options.FromMap`` does (unknown ones are ignored).

    Raises:
        GoDecodeError: ``option "temperature" must be of type float32`` and the like
            (Ollama answers these with 500).
    """
    for key, value in options.items():
        expected = _OPTION_TYPES.get(key)
        if expected is None or value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        wrong = {
            "integer": not number,
            "float32": not number,
            "boolean": not isinstance(value, bool),
            "array": not isinstance(value, list),
        }[expected]
        if wrong:
            raise GoDecodeError(f"option {json.dumps(key)} must be of type {expected}")
        if expected == "array" and not all(isinstance(item, str) for item in value):
            raise GoDecodeError(f"option {json.dumps(key)} must be of an array of strings")
