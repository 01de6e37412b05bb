"""Request validation and defaults, before anything touches ComfyUI."""

from __future__ import annotations

import pytest

from imagegen.common.v1 import common_pb2
from imagegen.render.v1 import render_pb2
from services.common.errors import InvalidArgumentError
from services.common.request_rules import DEFAULT_OUTPUT_QUALITY
from services.common.sampler import SamplerOverrides
from services.render.dimensions import Size, SizePolicy
from services.render.jobs import (
    ControlKind,
    ControlNetRequest,
    JobLimits,
    LoraRequest,
    RenderJob,
    check_job,
    clean_prompt,
)
from services.render.result_images import Encoding, OutputFormat
from services.render.service import job_from_proto
from services.render.workflows import Mode, OutputSizeRule
from tests.render.conftest import png

LIMITS = JobLimits()


def _fields(job: RenderJob) -> list[str]:
    with pytest.raises(InvalidArgumentError) as refused:
        check_job(job, LIMITS)
    return [v.field for v in refused.value.violations]


def test_img2img_defaults_follow_flux_dev() -> None:
    checked = check_job(RenderJob("a house", source_image=png(100, 80)), LIMITS)
    assert checked.mode is Mode.IMG2IMG
    assert checked.workflow == "flux-img2img"
    s = checked.settings
    assert (s.denoise, s.steps, s.cfg, s.guidance, s.sampler_name, s.scheduler) == (
        0.68,
        25,
        1.0,
        3.5,
        "euler",
        "simple",
    )
    assert checked.output_size == Size(100, 80)
    assert checked.render_size == Size(96, 80)


def test_txt2img_always_denoises_fully_and_says_so_when_asked_otherwise() -> None:
    checked = check_job(RenderJob("a house", settings=SamplerOverrides(denoise=0.5)), LIMITS)
    assert checked.settings.denoise == 1.0
    assert [w.code for w in checked.warnings] == ["DENOISE_IGNORED"]


def test_img2img_size_request_is_ignored_with_a_warning() -> None:
    checked = check_job(RenderJob("x", source_image=png(1000, 750), width=512, height=512), LIMITS)
    assert checked.output_size == Size(1000, 750)
    assert checked.warnings[0].code == "DIMENSIONS_IGNORED"


def test_lora_strength_is_clamped_with_a_warning() -> None:
    job = RenderJob("x", loras=(LoraRequest("a.safetensors", 5.0), LoraRequest("b.safetensors")))
    checked = check_job(job, LIMITS)
    assert [lora.strength for lora in checked.loras] == [2.0, 1.0]
    assert [w.code for w in checked.warnings] == ["LORA_STRENGTH_CLAMPED"]


def test_prompts_lose_control_characters_and_line_breaks() -> None:
    assert clean_prompt(" a\nred\x00 house\u200b\t ") == "a red house"


def test_an_empty_prompt_after_cleaning_is_refused() -> None:
    assert _fields(RenderJob("\x00\n ")) == ["positive_prompt"]


def test_a_too_long_prompt_is_refused() -> None:
    assert _fields(RenderJob("x" * 4001)) == ["positive_prompt"]


def test_out_of_range_sampler_settings_are_refused_field_by_field() -> None:
    settings = SamplerOverrides(denoise=1.5, steps=101, cfg=0.5, guidance=float("inf"))
    assert _fields(RenderJob("x", settings=settings)) == [
        "settings.denoise",
        "settings.steps",
        "settings.cfg",
        "settings.guidance",
    ]


def test_controlnet_percent_order_is_checked() -> None:
    cn = ControlNetRequest(ControlKind.CANNY, start_percent=0.8, end_percent=0.2)
    assert _fields(RenderJob("x", source_image=png(64, 64), controlnet=cn)) == [
        "controlnet.end_percent"
    ]


def test_controlnet_defaults_are_filled_in() -> None:
    cn = ControlNetRequest(ControlKind.TILE)
    checked = check_job(RenderJob("x", source_image=png(64, 64), controlnet=cn), LIMITS)
    assert checked.controlnet is not None
    assert (checked.controlnet.strength, checked.controlnet.start_percent) == (0.6, 0.0)
    assert checked.controlnet.end_percent == 1.0


def test_a_bad_control_image_names_its_field() -> None:
    cn = ControlNetRequest(ControlKind.CANNY, control_image=b"nope")
    assert _fields(RenderJob("x", source_image=png(64, 64), controlnet=cn)) == [
        "controlnet.control_image.data"
    ]


def test_too_many_loras_are_refused() -> None:
    loras = tuple(LoraRequest(f"l{i}.safetensors") for i in range(9))
    assert _fields(RenderJob("x", loras=loras)) == ["loras"]


def test_txt2img_sides_outside_the_shared_limits_are_refused_like_the_gateway() -> None:
    assert _fields(RenderJob("x", width=100, height=4096)) == ["width", "height"]


def test_an_infinite_lora_strength_is_refused_not_clamped() -> None:
    job = RenderJob("x", loras=(LoraRequest("a.safetensors", float("inf")),))
    assert _fields(job) == ["loras[0].strength"]


@pytest.mark.parametrize("name", ["_x", "-x", "a/b", "x" * 65])
def test_a_workflow_name_the_gateway_refuses_is_refused_here_too(name: str) -> None:
    assert _fields(RenderJob("x", workflow=name)) == ["workflow"]


def test_sampler_names_must_be_comfyui_identifiers() -> None:
    settings = SamplerOverrides(sampler_name="Euler a", scheduler="")
    assert _fields(RenderJob("x", settings=settings)) == [
        "settings.sampler_name",
        "settings.scheduler",
    ]


def test_an_unknown_controlnet_type_number_is_refused_naming_the_field() -> None:
    request = render_pb2.RenderRequest(
        positive_prompt="x",
        controlnet=common_pb2.ControlNetSpec(type=99),  # type: ignore[arg-type]
    )
    with pytest.raises(InvalidArgumentError) as refused:
        job_from_proto(request)
    assert [v.field for v in refused.value.violations] == ["controlnet.type"]


UPSCALE = OutputSizeRule(SizePolicy.SCALE, 1.5, 4.0, 2.0)


def test_the_scale_policy_enlarges_the_source_by_the_requested_factor() -> None:
    job = RenderJob("x", source_image=png(300, 200), scale=3.0, workflow="flux-upscale")
    checked = check_job(job, LIMITS, lambda name: UPSCALE)
    assert (checked.output_size, checked.render_size) == (Size(900, 600), Size(896, 608))
    assert not checked.capped and checked.warnings == ()


def test_the_requested_policy_renders_the_requested_size_from_a_source() -> None:
    job = RenderJob("x", source_image=png(300, 200), width=512, height=384)
    checked = check_job(job, LIMITS, lambda name: OutputSizeRule(SizePolicy.REQUESTED))
    assert (checked.output_size, checked.render_size) == (Size(512, 384), Size(512, 384))
    assert checked.warnings == ()


def test_text_to_image_sizes_by_request_whatever_the_template_declares() -> None:
    checked = check_job(RenderJob("x", width=512, height=512), LIMITS, lambda name: UPSCALE)
    assert checked.output_size == Size(512, 512)


def test_the_workflow_is_asked_for_its_size_rule_only_once_the_fields_are_valid() -> None:
    asked: list[str] = []

    def rule_of(name: str) -> OutputSizeRule:
        asked.append(name)
        return UPSCALE

    with pytest.raises(InvalidArgumentError):
        check_job(RenderJob("", source_image=png(300, 200)), LIMITS, rule_of)
    assert asked == []
    check_job(RenderJob("x", source_image=png(300, 200), workflow="flux-upscale"), LIMITS, rule_of)
    assert asked == ["flux-upscale"]


def test_output_format_and_quality_reach_the_checked_job() -> None:
    job = job_from_proto(
        render_pb2.RenderRequest(
            positive_prompt="x", output_format=common_pb2.OUTPUT_FORMAT_WEBP, output_quality=0
        )
    )
    assert check_job(job, LIMITS).encoding == Encoding(OutputFormat.WEBP, DEFAULT_OUTPUT_QUALITY)
    assert _fields(RenderJob("x", output_quality=101)) == ["output_quality"]
