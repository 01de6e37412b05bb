"""Whatever the schema, the default (unscripted) answer validates against it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from standins.ollama.answers import fill_schema

from .samples import ANALYSIS_SCHEMA, PLAN_SCHEMA

FIELD_NAMES = [
    "description", "subjects", "colors", "materials", "lighting", "style", "width", "height",
    "brightness", "orientation", "intent", "positive_prompt", "denoise", "steps", "cfg",
    "guidance", "seed", "notes", "has_text", "count", "tags", "x",
]  # fmt: skip


def _valid(schema: Mapping[str, Any]) -> Any:
    value = fill_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(value)
    json.dumps(value, allow_nan=False)
    assert fill_schema(schema) == value  # deterministic
    return value


@st.composite
def integer_schemas(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(-50, 50))
    step = draw(st.integers(1, 4))
    high = low + draw(st.integers(2 * step + 2, 40))  # room for a multiple inside
    schema: dict[str, Any] = {"type": "integer"}
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
    if draw(st.booleans()):
        schema["multipleOf"] = step
    return schema


@st.composite
def number_schemas(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.floats(-10, 10, allow_nan=False))
    high = low + draw(st.floats(0.6, 20))
    schema: dict[str, Any] = {"type": "number"}
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
    if draw(st.booleans()):
        schema["multipleOf"] = 0.25
    return schema


@st.composite
def string_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    low = draw(st.integers(0, 8))
    if draw(st.booleans()):
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 30))
    if draw(st.booleans()):
        schema["format"] = draw(st.sampled_from(["date-time", "uuid", "email", "uri"]))
    return schema


LEAVES = st.one_of(
    integer_schemas(),
    number_schemas(),
    string_schemas(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.just({}),
    st.lists(
        st.sampled_from(["a", "b", "unknown", "landscape", "img2img_edit"]), min_size=1, unique=True
    ).map(lambda values: {"enum": values}),
    st.lists(st.integers(0, 9), min_size=1, unique=True).map(lambda values: {"enum": values}),
    st.sampled_from([{"const": "fixed"}, {"const": 3}]),
)


def _containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=5).flatmap(
        lambda props: st.builds(
            lambda required, closed: {
                "type": "object",
                "properties": props,
                "required": required,
                **({"additionalProperties": False} if closed else {}),
            },
            st.lists(st.sampled_from(sorted(props)), unique=True) if props else st.just([]),
            st.booleans(),
        )
    )
    arrays = st.builds(
        lambda items, low, extra: {
            "type": "array",
            "items": items,
            "minItems": low,
            "maxItems": low + extra,
        },
        children,
        st.integers(0, 3),
        st.integers(0, 3),
    )
    optional = children.map(lambda child: {"anyOf": [child, {"type": "null"}]})
    return st.one_of(objects, arrays, optional)


SCHEMAS = st.recursive(LEAVES, _containers, max_leaves=12)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(schema=SCHEMAS)
def test_any_generated_schema_is_filled_validly(schema: dict[str, Any]) -> None:
    _valid(schema)


def test_pydantic_schemas_with_defs_and_refs_are_filled_validly() -> None:
    for schema in (ANALYSIS_SCHEMA, PLAN_SCHEMA):
        _valid(schema)


def test_ref_siblings_and_all_of_are_honoured() -> None:
    schema = {
        "$defs": {
            "Base": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
        },
        "allOf": [
            {"$ref": "#/$defs/Base"},
            {"properties": {"b": {"type": "integer", "minimum": 5}}, "required": ["b"]},
        ],
    }
    assert _valid(schema) == {"a": "a", "b": 6}


def test_unique_items_take_distinct_enum_values() -> None:
    schema = {
        "type": "array",
        "items": {"enum": ["x", "y", "z"]},
        "minItems": 3,
        "uniqueItems": True,
    }
    assert _valid(schema) == ["x", "y", "z"]


def test_a_pattern_is_satisfied_by_a_stock_string() -> None:
    assert _valid({"type": "string", "pattern": "^[a-z]+$"}) == "value"
    assert _valid({"type": "string", "pattern": "^[0-9]$"}) == "0"


def test_placeholders_are_generic_the_first_enum_value_and_the_middle_of_the_range() -> None:
    value = _valid(PLAN_SCHEMA)
    assert value["intent"] == "txt2img"
    assert value["positive_prompt"] == "positive prompt"
    assert value["denoise"] == (0.05 + 1.0) / 2 and value["steps"] == 26
