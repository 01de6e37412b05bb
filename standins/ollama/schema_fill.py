"""Fill any JSON schema with a valid value, guided by per-field suggestions.

Ollama constrains a model's output with a grammar built from the ``format`` schema, so a
real reply always parses and has the right shape (its content is another matter). The
stand-in gets the same guarantee by construction: :func:`fill_schema` walks the schema —
``$ref``/``$defs``, ``anyOf``/``oneOf``/``allOf``, ``enum``/``const``, objects, arrays,
strings, numbers, booleans, null — and asks a :class:`FieldHints` what a field should say.
A suggestion that does not fit is coerced: enums pick the closest value, numbers are
clamped into their bounds and snapped to ``multipleOf``, strings are cut or padded to
their length limits, arrays to their item counts.

Not supported (treated as absent): ``not``, ``if``/``then``/``else``,
``patternProperties``, ``dependentRequired``, remote ``$ref``. A ``pattern`` the hint
does not match is tried against a few stock strings only.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["FieldHints", "Path", "choose_enum", "fill_schema", "leaf_name"]

Path = tuple[str | int, ...]
"""Where a value sits: property names and array indices from the root."""

# Past this depth only required properties are filled, so recursive schemas end.
_MAX_DEPTH = 8
_UNSET: Any = object()
_FALLBACK_ENUM = ("unknown", "other", "none", "n/a", "unspecified", "mixed")
_STOCK_STRINGS = ("unknown", "none", "example", "a", "A", "0", "a1", "A1", "x-1")
_FORMAT_SAMPLES = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "hostname": "localhost",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "duration": "PT1S",
}


class FieldHints(Protocol):
    """What a model "knows" about the fields it is asked to fill."""

    def suggest(self, path: Path, schema: Mapping[str, Any]) -> Any:
        """A value for the field at ``path`` (any JSON type), or None for no opinion."""

    def text(self, path: Path) -> str:
        """A sensible sentence or phrase for a string field nothing else fits."""


def leaf_name(path: Path) -> str:
    """The innermost property name of a path (array indices skipped), as written."""
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return ""


def fill_schema(schema: Mapping[str, Any] | bool, hints: FieldHints) -> Any:
    """Produce a value that validates against ``schema``.

    Args:
        schema: A JSON schema, e.g. pydantic's ``model_json_schema()``.
        hints: Supplies field contents.

    Returns:
        A JSON-compatible value.
    """
    root = schema if isinstance(schema, Mapping) else {}
    return _Filler(root, hints).value(schema, (), 0)


def choose_enum(values: Sequence[Any], hint: Any) -> Any:
    """Pick the enum value closest to a hint.

    Strings: an exact (case-insensitive) match, then a value containing the hint or
    contained in it, then "unknown"/"other"-like values, then the first. Numbers: the
    nearest value. A list hint is tried item by item.

    Args:
        values: The allowed values (non-empty).
        hint: What the model would like to say.

    Returns:
        One of ``values``.
    """
    hints = hint if isinstance(hint, list) else [hint]
    for candidate in hints:
        if isinstance(candidate, bool) or candidate is None:
            if candidate in values and candidate is not None:
                return candidate
            continue
        if isinstance(candidate, int | float):
            numeric = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            if numeric:
                return min(numeric, key=lambda v: abs(v - candidate))
            continue
        text = str(candidate).strip().lower()
        if not text:
            continue
        strings = [v for v in values if isinstance(v, str)]
        for value in strings:
            if value.lower() == text:
                return value
        for value in strings:
            if text in value.lower():
                return value
        for value in strings:
            if value and re.search(rf"\b{re.escape(value.lower())}\b", text):
                return value
        words = {w for w in re.findall(r"[a-z0-9]+", text) if len(w) > 2}
        for value in strings:
            if words & set(re.findall(r"[a-z0-9]+", value.lower())):
                return value
    for value in values:
        if isinstance(value, str) and value.lower() in _FALLBACK_ENUM:
            return value
    return values[0]


class _Filler:
    def __init__(self, root: Mapping[str, Any], hints: FieldHints) -> None:
        self._root = root
        self._hints = hints

    def _resolve(self, schema: Mapping[str, Any] | bool) -> Mapping[str, Any]:
        if not isinstance(schema, Mapping):
            return {}
        seen = 0
        while "$ref" in schema and seen < 32:
            target = self._pointer(str(schema["$ref"]))
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings}
            seen += 1
        return schema

    def _pointer(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for raw in ref[1:].split("/"):
            if not raw:
                continue
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return {}
        return node if isinstance(node, Mapping) else {}

    def value(
        self, raw_schema: Mapping[str, Any] | bool, path: Path, depth: int, hint: Any = _UNSET
    ) -> Any:
        schema = self._resolve(raw_schema)
        if hint is _UNSET:
            hint = self._hints.suggest(path, schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            return choose_enum(schema["enum"], hint)
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            return self.value(self._merge_all_of(schema), path, depth, hint)
        for keyword in ("anyOf", "oneOf"):
            branches = schema.get(keyword)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != keyword}
                branch = self._pick_branch(branches, hint)
                return self.value({**rest, **branch}, path, depth, hint)
        kind = self._type_of(schema, hint)
        if kind == "null":
            return None
        if kind == "object":
            return self._object(schema, path, depth, hint)
        if kind == "array":
            return self._array(schema, path, depth, hint)
        if kind in ("integer", "number"):
            return _number(schema, hint, integer=kind == "integer")
        if kind == "boolean":
            return hint if isinstance(hint, bool) else False
        return self._string(schema, path, hint)

    def _merge_all_of(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            sub = self._resolve(part)
            for key, val in sub.items():
                if key == "properties" and isinstance(val, Mapping):
                    merged["properties"] = {**merged.get("properties", {}), **val}
                elif key == "required" and isinstance(val, list):
                    merged["required"] = [*merged.get("required", []), *val]
                else:
                    merged.setdefault(key, val)
        return merged

    def _pick_branch(self, branches: list[Any], hint: Any) -> Mapping[str, Any]:
        resolved = [self._resolve(b) for b in branches]
        usable = [b for b in resolved if b.get("type") != "null"] or resolved
        wanted = _json_type(hint)
        if wanted is not None:
            for branch in usable:
                kind = branch.get("type")
                kinds = kind if isinstance(kind, list) else [kind]
                if wanted in kinds or (wanted == "integer" and "number" in kinds):
                    return branch
        return usable[0]

    @staticmethod
    def _type_of(schema: Mapping[str, Any], hint: Any) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            options = [k for k in kind if k != "null"] or ["null"]
            wanted = _json_type(hint)
            if wanted in options:
                return str(wanted)
            if wanted == "integer" and "number" in options:
                return "number"
            return str(options[0])
        if isinstance(kind, str):
            return kind
        if "properties" in schema or "additionalProperties" in schema or "required" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return _json_type(hint) or "string"

    def _object(
        self, schema: Mapping[str, Any], path: Path, depth: int, hint: Any
    ) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        given = hint if isinstance(hint, Mapping) else {}
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if depth >= _MAX_DEPTH and name not in required:
                continue
            result[name] = self.value(sub, (*path, name), depth + 1, given.get(name, _UNSET))
        extra_schema = schema.get("additionalProperties")
        extra = extra_schema if isinstance(extra_schema, Mapping | bool) else True
        for name in required:
            if name not in result:
                result[name] = self.value(
                    extra if extra is not False else {}, (*path, name), depth + 1
                )
        if extra is not False:
            for name, value in given.items():
                if name not in result and not properties:
                    result[name] = self.value(extra, (*path, name), depth + 1, value)
            index = 1
            while len(result) < int(schema.get("minProperties", 0)):
                name = f"item_{index}"
                index += 1
                if name not in result:
                    result[name] = self.value(extra, (*path, name), depth + 1)
        maximum = schema.get("maxProperties")
        if isinstance(maximum, int):
            for name in [n for n in reversed(list(result)) if n not in required]:
                if len(result) <= maximum:
                    break
                del result[name]
        return result

    def _array(self, schema: Mapping[str, Any], path: Path, depth: int, hint: Any) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", {})
        if isinstance(items, list):  # draft-04 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        prefix = prefix if isinstance(prefix, list) else []
        minimum = int(schema.get("minItems", 0))
        maximum_raw = schema.get("maxItems")
        maximum = int(maximum_raw) if isinstance(maximum_raw, int) else None
        if items is False:
            maximum = len(prefix) if maximum is None else min(maximum, len(prefix))
        if isinstance(hint, list):
            given = list(hint)
        elif hint is None or hint is _UNSET:
            given = []
        else:
            given = [hint]
        # An explicit empty list means "none" (no invented LoRAs); no opinion means one item.
        count = len(given) if isinstance(hint, list) or given else max(minimum, 1)
        count = max(count, minimum, len(prefix) if items is False else 0)
        if maximum is not None:
            count = min(count, maximum)
        unique = bool(schema.get("uniqueItems"))
        result: list[Any] = []
        attempt = 0
        index = 0
        while len(result) < count and attempt < count * 4 + 8:
            sub = prefix[len(result)] if len(result) < len(prefix) else items
            item_hint = given[index] if index < len(given) else _UNSET
            value = self.value(
                sub if sub is not True else {}, (*path, len(result) + attempt), depth + 1, item_hint
            )
            index += 1
            if unique and value in result:
                attempt += 1
                continue
            result.append(value)
        if unique and len(result) < minimum:
            # Enum items repeat whatever the hint; top up with the values not used yet.
            allowed = self._resolve(items).get("enum")
            for value in allowed if isinstance(allowed, list) else []:
                if len(result) >= minimum:
                    break
                if value not in result:
                    result.append(value)
        return result

    def _string(self, schema: Mapping[str, Any], path: Path, hint: Any) -> str:
        if isinstance(hint, str):
            text = hint
        elif isinstance(hint, list):
            text = ", ".join(str(item) for item in hint)
        elif isinstance(hint, bool):
            text = "yes" if hint else "no"
        elif isinstance(hint, int | float):
            text = f"{hint:g}" if isinstance(hint, float) else str(hint)
        else:
            text = self._hints.text(path)
        fmt = schema.get("format")
        if isinstance(fmt, str):
            if fmt == "uuid":
                text = str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, path)) or "root"))
            elif fmt in _FORMAT_SAMPLES:
                text = _FORMAT_SAMPLES[fmt]
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            text = _matching(pattern, text)
        return _fit_length(text, schema)


def _json_type(value: Any) -> str | None:
    if value is None or value is _UNSET:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return None


def _matching(pattern: str, text: str) -> str:
    try:
        compiled = re.compile(pattern)
    except re.error:
        return text
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    for candidate in (text, slug, slug.replace("-", "_"), *_STOCK_STRINGS):
        if compiled.search(candidate):
            return candidate
    return text


def _fit_length(text: str, schema: Mapping[str, Any]) -> str:
    maximum = schema.get("maxLength")
    minimum = int(schema.get("minLength", 0))
    if isinstance(maximum, int) and len(text) > maximum:
        cut = text[:maximum]
        # Prefer ending on a word boundary when that keeps the minimum length.
        if " " in cut and cut.rfind(" ") >= max(minimum, 1):
            cut = cut[: cut.rfind(" ")]
        text = cut.rstrip(" ,;:") if len(cut.rstrip(" ,;:")) >= minimum else cut
    while len(text) < minimum:
        text = (text + " detail").strip() if text else "detail"
    if isinstance(maximum, int) and len(text) > maximum:
        text = text[:maximum]
    return text


def _number(schema: Mapping[str, Any], hint: Any, *, integer: bool) -> int | float:
    low, high = (
        _bound(schema, "minimum", "exclusiveMinimum"),
        _bound(schema, "maximum", "exclusiveMaximum"),
    )
    if isinstance(hint, int | float) and not isinstance(hint, bool) and math.isfinite(hint):
        value = float(hint)
    elif low is not None and high is not None:
        value = (low[0] + high[0]) / 2
    elif low is not None:
        value = low[0]
    elif high is not None:
        value = min(high[0], 0.0)
    else:
        value = 0.0
    raw_step = schema.get("multipleOf")
    step = float(raw_step) if isinstance(raw_step, int | float) and raw_step > 0 else None
    if integer:
        # Integers are multiples of 1 already; an integral multipleOf narrows them further.
        step = step if step is not None and step.is_integer() else 1.0
    candidates = _snap_candidates(value, step, low, high)
    for candidate in candidates:
        if _inside(candidate, low, high) and (step is None or _is_multiple(candidate, step)):
            return _emit(candidate, integer)
    return _emit(value, integer)


def _bound(schema: Mapping[str, Any], inclusive: str, exclusive: str) -> tuple[float, bool] | None:
    exclusive_value = schema.get(exclusive)
    inclusive_value = schema.get(inclusive)
    if isinstance(exclusive_value, bool):  # draft-04: a flag on the inclusive keyword
        if isinstance(inclusive_value, int | float):
            return float(inclusive_value), exclusive_value
        return None
    candidates: list[tuple[float, bool]] = []
    if isinstance(inclusive_value, int | float):
        candidates.append((float(inclusive_value), False))
    if isinstance(exclusive_value, int | float):
        candidates.append((float(exclusive_value), True))
    if not candidates:
        return None
    tighter = max if inclusive == "minimum" else min
    return tighter(candidates, key=lambda c: (c[0], c[1] if inclusive == "minimum" else not c[1]))


def _inside(value: float, low: tuple[float, bool] | None, high: tuple[float, bool] | None) -> bool:
    if low is not None and (value < low[0] or (low[1] and value == low[0])):
        return False
    return not (high is not None and (value > high[0] or (high[1] and value == high[0])))


def _is_multiple(value: float, step: float) -> bool:
    quotient = value / step
    return abs(quotient - round(quotient)) < 1e-9


def _snap_candidates(
    value: float,
    step: float | None,
    low: tuple[float, bool] | None,
    high: tuple[float, bool] | None,
) -> list[float]:
    clamped = value
    if low is not None and clamped <= low[0]:
        clamped = low[0]
    if high is not None and clamped >= high[0]:
        clamped = high[0]
    if step is None:
        nudged = clamped
        if low is not None and low[1] and nudged <= low[0]:
            span = (high[0] - low[0]) if high is not None else 1.0
            nudged = low[0] + min(1e-3, span / 2)
        if high is not None and high[1] and nudged >= high[0]:
            span = (high[0] - low[0]) if low is not None else 1.0
            nudged = high[0] - min(1e-3, span / 2)
        return [round(nudged, 6), nudged]
    base = round(clamped / step)
    out: list[float] = []
    for offset in (0, 1, -1, 2, -2, 3, -3):
        out.append(round((base + offset) * step, 9))
    if low is not None:
        out.append(math.ceil(low[0] / step) * step)
        out.append((math.floor(low[0] / step) + 1) * step)
    if high is not None:
        out.append(math.floor(high[0] / step) * step)
        out.append((math.ceil(high[0] / step) - 1) * step)
    return out


def _emit(value: float, integer: bool) -> int | float:
    return round(value) if integer else value
