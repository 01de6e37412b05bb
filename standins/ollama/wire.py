"""Byte-level habits of Ollama's Go server that a faithful stand-in has to copy.

Ollama is written in Go, so what a client sees on the wire is shaped by Go's standard
library: ``encoding/json`` escapes ``<``, ``>`` and ``&``; ``time.Time`` marshals as
RFC 3339 with up to nine trimmed fraction digits; ``time.ParseDuration`` parses
``keep_alive`` strings and words its errors in its own way; ``[]byte`` fields (images)
are decoded as strict standard base64 and a bad byte is reported by offset. Each of those
is re-implemented here so error texts and payloads match the real server's.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

# Go's time.Duration is an int64 of nanoseconds; a negative keep_alive means "forever",
# which Ollama stores as the largest duration.
MAX_DURATION_NS = 2**63 - 1

_NS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}

_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUES = {ch: i for i, ch in enumerate(_B64_ALPHABET)}


class GoDecodeError(ValueError):
    """A request body Ollama's Go decoder would reject; ``str()`` is Go's message."""


def encode_json(value: Any) -> bytes:
    """Serialise like Go's ``encoding/json``: compact, UTF-8, HTML characters escaped.

    Args:
        value: A JSON-compatible value.

    Returns:
        The encoded bytes, without a trailing newline.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Go escapes these even inside strings; clients that compare raw bytes see them.
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return text.encode("utf-8")


def rfc3339_nano(epoch_ns: int) -> str:
    """Format a UTC instant the way Go marshals ``time.Time`` (RFC 3339, trimmed nanos).

    Args:
        epoch_ns: Nanoseconds since the Unix epoch.

    Returns:
        For example ``2026-01-05T10:00:00.12345Z``; no fraction when it is zero.
    """
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_go_duration(text: str) -> int:
    """Parse a duration string with Go's ``time.ParseDuration`` rules.

    Args:
        text: For example ``"5m"``, ``"1h30m"``, ``"1.5s"``, ``"-1m"`` or ``"0"``.

    Returns:
        The duration in nanoseconds (may be negative).

    Raises:
        GoDecodeError: With Go's wording, e.g. ``time: missing unit in duration "10"``.
    """
    invalid = GoDecodeError(f"time: invalid duration {_go_quote(text)}")
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise invalid
    total = 0
    while rest:
        if not (rest[0] == "." or (rest[0].isascii() and rest[0].isdigit())):
            raise invalid
        digits = _leading_digits(rest)
        whole = int(digits) if digits else 0
        rest = rest[len(digits) :]
        fraction = ""
        if rest.startswith("."):
            fraction = _leading_digits(rest[1:])
            rest = rest[1 + len(fraction) :]
            has_point = True
        else:
            has_point = False
        if not digits and not (has_point and fraction):
            raise invalid
        unit_len = 0
        while unit_len < len(rest) and not (
            rest[unit_len] == "." or (rest[unit_len].isascii() and rest[unit_len].isdigit())
        ):
            unit_len += 1
        if unit_len == 0:
            raise GoDecodeError(f"time: missing unit in duration {_go_quote(text)}")
        unit, rest = rest[:unit_len], rest[unit_len:]
        if unit not in _NS_PER_UNIT:
            raise GoDecodeError(
                f"time: unknown unit {_go_quote(unit)} in duration {_go_quote(text)}"
            )
        scale = _NS_PER_UNIT[unit]
        value = whole * scale
        if fraction:
            value += int(int(fraction) * (scale / 10 ** len(fraction)))
        total += value
        if total > 2**63:
            raise invalid
    if negative:
        return -total
    if total > MAX_DURATION_NS:
        raise invalid
    return total


def _leading_digits(text: str) -> str:
    end = 0
    while end < len(text) and text[end].isascii() and text[end].isdigit():
        end += 1
    return text[:end]


def parse_keep_alive(raw: Any) -> int:
    """Decode a ``keep_alive`` value as Ollama's ``api.Duration.UnmarshalJSON`` does.

    Args:
        raw: The JSON value from the request: a number of seconds or a duration string.

    Returns:
        Nanoseconds; every negative value becomes :data:`MAX_DURATION_NS` ("forever").

    Raises:
        GoDecodeError: For a string Go cannot parse (no unit, unknown unit) or another type.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise GoDecodeError(f"Unsupported type: '{go_type_name(raw)}'")
    if isinstance(raw, str):
        duration = parse_go_duration(raw)
        return MAX_DURATION_NS if duration < 0 else duration
    if raw < 0:
        return MAX_DURATION_NS
    return min(int(raw * 1_000_000_000), MAX_DURATION_NS)


def go_type_name(value: Any) -> str:
    """The Go type ``encoding/json`` gives a value decoded into ``any``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


def json_kind(value: Any) -> str:
    """How Go's ``UnmarshalTypeError`` names a JSON value (``number 1.5`` for a fraction)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float) and not value.is_integer():
        return f"number {value!r}"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def decode_std_base64(text: str) -> bytes:
    """Decode standard, padded base64 exactly as Go's ``base64.StdEncoding`` does.

    Go skips ``\\r`` and ``\\n`` anywhere, insists on padding, and reports the offset of
    the first byte it cannot use — which is why a ``data:image/png;base64,`` prefix fails
    at byte 4 (the colon).

    Args:
        text: The JSON string that arrived in an ``images`` entry.

    Returns:
        The decoded bytes.

    Raises:
        GoDecodeError: ``illegal base64 data at input byte N``.
    """
    src = text.encode("utf-8")
    out = bytearray()
    si = 0
    length = len(src)
    while True:
        quantum: list[int] = []
        pad_at = -1
        while len(quantum) < 4:
            if si == length:
                if not quantum:
                    return bytes(out)
                # Input ended inside a quantum: Go reports where that quantum started.
                raise _bad_base64(si - len(quantum))
            byte = src[si]
            si += 1
            char = chr(byte)
            if char in _B64_VALUES:
                quantum.append(_B64_VALUES[char])
                continue
            if char in "\r\n":
                continue
            if char != "=":
                raise _bad_base64(si - 1)
            if len(quantum) < 2:
                raise _bad_base64(si - 1)
            if len(quantum) == 2:
                while si < length and chr(src[si]) in "\r\n":
                    si += 1
                if si == length:
                    raise _bad_base64(length)
                if chr(src[si]) != "=":
                    raise _bad_base64(si - 1)
                si += 1
            while si < length and chr(src[si]) in "\r\n":
                si += 1
            pad_at = len(quantum)
            break
        value = 0
        for index in range(4):
            value = (value << 6) | (quantum[index] if index < len(quantum) else 0)
        chunk = value.to_bytes(3, "big")
        if pad_at == -1:
            out += chunk
            continue
        out += chunk[: pad_at - 1]
        if si < length:
            raise _bad_base64(si)
        return bytes(out)


def _bad_base64(offset: int) -> GoDecodeError:
    return GoDecodeError(f"illegal base64 data at input byte {offset}")


def ns_to_seconds(nanoseconds: int) -> float:
    """Nanoseconds as float seconds; ``inf`` for the "forever" duration."""
    return math.inf if nanoseconds >= MAX_DURATION_NS else nanoseconds / 1_000_000_000
