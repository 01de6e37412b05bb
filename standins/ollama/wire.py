"""Byte-level habits of Ollama's Go server that a faithful stand-in has to copy.

What a client sees is shaped by Go's standard library: ``encoding/json`` escapes ``<``,
``>`` and ``&``; ``time.Time`` marshals as RFC 3339 with trimmed nanoseconds;
``time.ParseDuration`` parses ``keep_alive`` and words its errors its own way; images are
strict standard base64 and a bad byte is reported by offset (a ``data:`` prefix fails at
byte 4).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
from typing import Any

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
    """Parse ``"5m"``, ``"1h30m"``, ``"-1m"``, ``"0"`` with ``time.ParseDuration``'s rules.

    Returns:
        Nanoseconds (may be negative).

    Raises:
        GoDecodeError: With Go's wording, e.g. ``time: missing unit in duration "10"``.
    """
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
    string; every negative value becomes :data:`MAX_DURATION_NS` ("forever").

    Raises:
        GoDecodeError: For an unparsable string or another JSON type.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        kind = "bool" if isinstance(raw, bool) else "[]interface {}"
        kind = "map[string]interface {}" if isinstance(raw, dict) else kind
        raise GoDecodeError(f"Unsupported type: '{kind}'")
    value = parse_go_duration(raw) if isinstance(raw, str) else int(raw * 1_000_000_000)
    return MAX_DURATION_NS if value < 0 else min(value, MAX_DURATION_NS)


def ns_to_seconds(nanoseconds: int) -> float:
    """Nanoseconds as float seconds; ``inf`` for the "forever" duration."""
    return math.inf if nanoseconds >= MAX_DURATION_NS else nanoseconds / 1_000_000_000


def json_kind(value: Any) -> str:
    """How Go's ``UnmarshalTypeError`` names a JSON value (``number 1.5`` for a fraction)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float) and not value.is_integer():
        return f"number {value!r}"
    kinds = ((int | float, "number"), (str, "string"), (list, "array"), (dict, "object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def decode_std_base64(text: str) -> bytes:
    """Decode standard, padded base64 as Go's ``base64.StdEncoding`` does (line breaks
    skipped).

    Raises:
        GoDecodeError: ``illegal base64 data at input byte N``, N as Go reports it.
    """
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
