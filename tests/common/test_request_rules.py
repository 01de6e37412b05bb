"""The request rules the gateway and the render service share."""

from __future__ import annotations

import math

import pytest

from imagegen.common.v1 import common_pb2
from services.common.errors import FieldViolation, InvalidArgumentError
from services.common.request_rules import (
    MAX_SEED,
    ControlNetValues,
    check_bare_name,
    check_controlnet,
    check_enum,
    check_loras,
    check_txt2img_side,
    check_variants,
    check_workflow_name,
    enum_name,
    is_workflow_name,
    raise_if_any,
    validate_workflow_name,
)


def _bare_name_refused(name: str) -> bool:
    violations: list[FieldViolation] = []
    check_bare_name(name, "loras[0].name", violations, what="LoRA")
    return bool(violations)


@pytest.mark.parametrize(
    "name",
    ["", "  ", "../x.safetensors", "a/b", "a\\b", ".hidden", "a\x00b", "a\u200bb", "x" * 256],
)
def test_names_that_are_not_bare_file_names_are_refused(name: str) -> None:
    assert _bare_name_refused(name)


@pytest.mark.parametrize("name", ["flux-realism.safetensors", "My LoRA (v2).safetensors", "é.pt"])
def test_names_as_comfyui_lists_them_pass(name: str) -> None:
    assert not _bare_name_refused(name)


@pytest.mark.parametrize("name", ["_x", "-x", "a/b", "..", "a.b", "x" * 65, ""])
def test_workflow_names_must_be_plain_template_names(name: str) -> None:
    violations: list[FieldViolation] = []
    check_workflow_name(name, "workflow", violations)
    assert [v.field for v in violations] == ["workflow"]
    assert not is_workflow_name(name)


@pytest.mark.parametrize("name", ["flux-img2img", "A1_b", "x" * 64])
def test_plain_workflow_names_pass(name: str) -> None:
    validate_workflow_name(name)


def test_a_bad_workflow_name_raises_naming_the_field() -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_workflow_name("_x", field_name="template")
    assert [v.field for v in raised.value.violations] == ["template"]


def test_zero_variants_means_one() -> None:
    assert check_variants(0, None, 8, []) == 1


def test_variants_above_the_maximum_are_refused_without_a_seed_complaint() -> None:
    violations: list[FieldViolation] = []
    check_variants(9, MAX_SEED, 8, violations)
    assert [v.field for v in violations] == ["variants"]


@pytest.mark.parametrize(
    ("seed", "refused"), [(MAX_SEED - 2, False), (MAX_SEED - 1, True), (-1, True)]
)
def test_seeds_of_every_variant_must_fit_without_wrapping(seed: int, refused: bool) -> None:
    violations: list[FieldViolation] = []
    check_variants(3, seed, 8, violations)
    assert [v.field for v in violations] == (["seed"] if refused else [])


@pytest.mark.parametrize(("side", "refused"), [(0, False), (255, True), (256, False), (2049, True)])
def test_txt2img_sides_stay_within_the_configured_limits(side: int, refused: bool) -> None:
    violations: list[FieldViolation] = []
    check_txt2img_side("width", side, 256, 2048, violations)
    assert bool(violations) is refused


def test_lora_count_names_and_strengths_are_each_named() -> None:
    violations: list[FieldViolation] = []
    loras = [("a.safetensors", 5.0), ("../b", None), ("c.safetensors", math.inf)]
    check_loras(loras, 2, violations)
    assert [v.field for v in violations] == ["loras", "loras[1].name", "loras[2].strength"]


def test_controlnet_values_out_of_range_and_out_of_order_are_refused() -> None:
    violations: list[FieldViolation] = []
    check_controlnet(
        ControlNetValues(strength=3.0, start_percent=math.nan),
        model="a/b",
        has_control_image=False,
        text_to_image=True,
        violations=violations,
    )
    assert [v.field for v in violations] == [
        "controlnet.strength",
        "controlnet.start_percent",
        "controlnet.model",
        "controlnet.control_image",
    ]
    ordered: list[FieldViolation] = []
    check_controlnet(
        ControlNetValues(start_percent=0.6, end_percent=0.2),
        model="",
        has_control_image=False,
        text_to_image=False,
        violations=ordered,
    )
    assert [v.field for v in ordered] == ["controlnet.end_percent"]


def test_an_unknown_enum_number_is_refused_naming_the_field_and_the_choices() -> None:
    violations: list[FieldViolation] = []
    check_enum(99, common_pb2.ControlType, "controlnet.type", violations)
    (violation,) = violations
    assert violation.field == "controlnet.type"
    assert "99" in violation.description and "CANNY" in violation.description
    assert "CONTROL_TYPE_" not in violation.description


def test_unspecified_is_refused_unless_allowed() -> None:
    refused: list[FieldViolation] = []
    check_enum(0, common_pb2.ControlType, "controlnet.type", refused)
    allowed: list[FieldViolation] = []
    check_enum(0, common_pb2.EditIntent, "plan.intent", allowed, unspecified_ok=True)
    assert [v.field for v in refused] == ["controlnet.type"] and allowed == []


def test_enum_name_of_an_unknown_number_is_the_number() -> None:
    assert enum_name(common_pb2.EditIntent, 999) == "999"
    assert enum_name(common_pb2.EditIntent, 1) == common_pb2.EditIntent.Name(1)


def test_raise_if_any_names_every_field_in_one_error() -> None:
    raise_if_any([], "request")
    violations = [FieldViolation("a", "is bad"), FieldViolation("b", "is worse")]
    with pytest.raises(InvalidArgumentError) as raised:
        raise_if_any(violations, "request")
    assert raised.value.violations == tuple(violations)
    assert "a is bad" in str(raised.value) and "b" in str(raised.value)
