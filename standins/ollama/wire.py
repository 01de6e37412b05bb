"""Ollama's Go server on the wire, shaped by Go's standard library: ``encoding/json`` (HTML
characters escaped, its own decoding errors, each a 400), ``time.Time`` as RFC 3339 with
trimmed nanoseconds, ``time.ParseDuration`` for ``keep_alive``, strict base64 images with
the bad byte's offset (a ``data:`` prefix fails at byte 4)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_DURATION_NS",
    "ChatRequest",
    "GoDecodeError",
    "Message",
    "Think",
    "check_options",
    "decode_chat",
    "decode_show",
    "decode_std_base64",
    "encode_json",
    "parse_go_duration",
    "parse_keep_alive",
    "rfc3339_nano",
]

# Go's time.Duration is an int64 of nanoseconds; "forever" is the largest one.
MAX_DURATION_NS = 2**63 - 1
_NS_PER_UNIT = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
_NS_PER_UNIT |= {"m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")
_B64 = re.compile(r"[A-Za-z0-9+/=]")


class GoDecodeError(ValueError):
    """A request body Ollama's Go decoder would reject; ``str()`` is Go's message."""


def encode_json(value: Any) -> bytes:
    """Serialise like Go's ``encoding/json``: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def rfc3339_nano(epoch_ns: int) -> str:
    """A UTC instant as Go marshals ``time.Time``: ``2026-01-05T10:00:00.12345Z``."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def parse_go_duration(text: str) -> int:
    """Nanoseconds (maybe negative) of ``"5m"``, ``"1h30m"``, ``"-1m"``, ``"0"`` by
    ``time.ParseDuration``'s rules; :class:`GoDecodeError` with Go's wording otherwise."""
    quoted = json.dumps(text, ensure_ascii=False)
    rest = text[1:] if text[:1] in "+-" else text
    if rest == "0":
        return 0
    parts = _DURATION_PART.findall(rest)
    if not rest or "".join(n + u for n, u in parts) != rest:
        raise GoDecodeError(f"time: invalid duration {quoted}")
    total = 0
    for number, unit in parts:
        if not unit:
            raise GoDecodeError(f"time: missing unit in duration {quoted}")
        if unit not in _NS_PER_UNIT:
            raise GoDecodeError(f"time: unknown unit {json.dumps(unit)} in duration {quoted}")
        total += int(float(number) * _NS_PER_UNIT[unit])
    if total > MAX_DURATION_NS:
        raise GoDecodeError(f"time: invalid duration {quoted}")
    return -total if text.startswith("-") else total


def parse_keep_alive(raw: Any) -> int:
    """Decode ``keep_alive`` as ``api.Duration.UnmarshalJSON`` does: seconds or a duration
    string, negative meaning forever (:data:`MAX_DURATION_NS`); else :class:`GoDecodeError`."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        kind = "bool" if isinstance(raw, bool) else "[]interface {}"
        kind = "map[string]interface {}" if isinstance(raw, dict) else kind
        raise GoDecodeError(f"Unsupported type: '{kind}'")
    value = parse_go_duration(raw) if isinstance(raw, str) else int(raw * 1_000_000_000)
    return MAX_DURATION_NS if value < 0 else min(value, MAX_DURATION_NS)


def json_kind(value: Any) -> str:
    """How Go's ``UnmarshalTypeError`` names a JSON value (``number 1.5`` for a fraction)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float) and not value.is_integer():
        return f"number {value!r}"
    kinds = ((int | float, "number"), (str, "string"), (list, "array"), (dict, "object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def decode_std_base64(text: str) -> bytes:
    """Decode padded base64 as Go's ``base64.StdEncoding`` (line breaks skipped), else
    :class:`GoDecodeError` ``illegal base64 data at input byte N`` with Go's N."""
    src = text.replace("\r", "").replace("\n", "")
    bad = next((i for i, char in enumerate(src) if not _B64.fullmatch(char)), None)
    pad = src.find("=")
    if pad >= 0 and (bad is None or pad < bad):
        start = pad - pad % 4
        if pad % 4 < 2:
            bad = pad
        elif pad % 4 == 2 and src[pad + 1 : pad + 2] != "=":
            bad = len(src) if pad + 1 == len(src) else pad + 1
        elif len(src) > start + 4:
            bad = start + 4
    elif bad is None and len(src) % 4:
        bad = len(src) - len(src) % 4
    if bad is not None:
        raise GoDecodeError(f"illegal base64 data at input byte {bad}")
    try:
        return base64.b64decode(src, validate=True)
    except (binascii.Error, ValueError):
        raise GoDecodeError(f"illegal base64 data at input byte {len(src)}") from None


Think = bool | str | None
"""``think`` as sent: a bool, a level ("low", "medium", "high", "max") or absent."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '"high", "medium", "low", "max", true, or false'
# Types of Ollama's options, for the 500 it answers when one has the wrong JSON type.
_OPTION_TYPES = dict.fromkeys(
    ("num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch"), "integer"
) | dict.fromkeys(("num_gpu", "main_gpu", "num_thread"), "integer")
_OPTION_TYPES |= dict.fromkeys(
    ("temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty"), "float32"
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
    """Decode a chat body (:class:`GoDecodeError`: what Ollama answers with 400)."""
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


def decode_show(body: bytes) -> str:
    """The model a show body names; ``name`` wins over ``model`` as in Ollama's handler."""
    fields = _Fields(_parse_object(body, "api.ShowRequest"), "ShowRequest")
    return str(fields.typed("name", str, "string", "") or fields.typed("model", str, "string", ""))


def check_options(options: Mapping[str, Any]) -> None:
    """Type-check options as ``Options.FromMap`` does (unknown ones ignored); raise
    :class:`GoDecodeError` ``option "temperature" must be of type float32`` (a 500)."""
    for key, value in options.items():
        expected = _OPTION_TYPES.get(key)
        if expected is None or value is None:
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        fits = {"boolean": isinstance(value, bool), "array": isinstance(value, list)}
        if not fits.get(expected, number):
            raise GoDecodeError(f"option {json.dumps(key)} must be of type {expected}")
        if expected == "array" and not all(isinstance(item, str) for item in value):
            raise GoDecodeError(f"option {json.dumps(key)} must be of an array of strings")
