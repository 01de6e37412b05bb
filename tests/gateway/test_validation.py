"""Request validation: every bad field is named before any backend is touched."""

from __future__ import annotations

import threading

import pytest

from gateway.jobs import GenerateJob, Mode
from gateway.validation import (
    RequestLimits,
    checked_in_a_thread,
    validate_generate,
    validate_plan,
    validated,
)
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import InvalidArgumentError
from services.common.request_rules import MAX_SEED
from tests.gateway.images import png_bytes

LIMITS = RequestLimits(max_variants=8, max_instruction_chars=100, max_loras=2)


def _img2img(**fields: object) -> gateway_pb2.GenerateRequest:
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=png_bytes()), instruction="make the cup green"
    )
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(request, name).extend(value)
        elif hasattr(value, "DESCRIPTOR"):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


def _bad_fields(request: gateway_pb2.GenerateRequest) -> list[str]:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_generate(request, LIMITS)
    return [v.field for v in raised.value.violations]


def test_img2img_request_becomes_a_job_with_the_image_measured() -> None:
    job = validate_generate(_img2img(variants=3, seed=7), LIMITS)
    assert job.inputs.mode is Mode.IMAGE_TO_IMAGE
    assert job.inputs.image is not None
    assert (job.inputs.image.width, job.inputs.image.height) == (96, 64)
    assert (job.seed, job.variants) == (7, 3)


def test_txt2img_request_has_no_image() -> None:
    job = validate_generate(gateway_pb2.GenerateRequest(instruction="a red fox"), LIMITS)
    assert job.inputs.mode is Mode.TEXT_TO_IMAGE
    assert job.inputs.image is None


def test_zero_variants_means_one() -> None:
    assert validate_generate(_img2img(variants=0), LIMITS).variants == 1


def test_unset_seed_stays_unset_for_the_gateway_to_pick() -> None:
    assert validate_generate(_img2img(), LIMITS).seed is None


def test_blank_instruction_is_refused() -> None:
    assert _bad_fields(_img2img(instruction="   ")) == ["instruction"]


def test_overlong_instruction_is_refused() -> None:
    assert _bad_fields(_img2img(instruction="x" * 101)) == ["instruction"]


def test_variants_above_the_maximum_are_refused() -> None:
    assert _bad_fields(_img2img(variants=9)) == ["variants"]


def test_seed_that_would_wrap_is_refused() -> None:
    assert _bad_fields(_img2img(seed=MAX_SEED - 1, variants=3)) == ["seed"]


def test_highest_seed_that_does_not_wrap_is_accepted() -> None:
    assert validate_generate(_img2img(seed=MAX_SEED - 2, variants=3), LIMITS).seed == MAX_SEED - 2


def test_source_that_is_not_an_image_names_the_data_field() -> None:
    request = _img2img()
    request.source_image.data = b"GIF89a not really"
    assert _bad_fields(request) == ["source_image.data"]


def test_present_but_empty_source_image_is_refused_not_taken_as_txt2img() -> None:
    request = gateway_pb2.GenerateRequest(source_image=common_pb2.Image(), instruction="x")
    assert _bad_fields(request) == ["source_image.data"]


def test_txt2img_size_outside_the_flux_range_is_refused() -> None:
    request = gateway_pb2.GenerateRequest(instruction="a fox", width=100, height=4096)
    assert _bad_fields(request) == ["width", "height"]


def test_img2img_ignores_requested_size_here() -> None:
    assert validate_generate(_img2img(width=100, height=9999), LIMITS).width == 100


def test_too_many_loras_are_refused() -> None:
    loras = [common_pb2.LoraSpec(name=f"l{i}.safetensors") for i in range(3)]
    assert _bad_fields(_img2img(loras=loras)) == ["loras"]


def test_lora_name_must_be_a_bare_file_name() -> None:
    loras = [common_pb2.LoraSpec(name="ok.safetensors"), common_pb2.LoraSpec(name="../x")]
    assert _bad_fields(_img2img(loras=loras)) == ["loras[1].name"]


def test_lora_strength_must_be_finite() -> None:
    loras = [common_pb2.LoraSpec(name="a.safetensors", strength=float("nan"))]
    assert _bad_fields(_img2img(loras=loras)) == ["loras[0].strength"]


def test_controlnet_without_type_is_refused() -> None:
    spec = common_pb2.ControlNetSpec(strength=0.5)
    assert _bad_fields(_img2img(controlnet=spec)) == ["controlnet.type"]


def test_controlnet_end_before_start_is_refused() -> None:
    spec = common_pb2.ControlNetSpec(
        type=common_pb2.CONTROL_TYPE_CANNY, start_percent=0.6, end_percent=0.2
    )
    assert _bad_fields(_img2img(controlnet=spec)) == ["controlnet.end_percent"]


def test_controlnet_strength_out_of_range_is_refused() -> None:
    spec = common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_CANNY, strength=3.0)
    assert _bad_fields(_img2img(controlnet=spec)) == ["controlnet.strength"]


def test_txt2img_controlnet_needs_a_control_image() -> None:
    request = gateway_pb2.GenerateRequest(
        instruction="a fox",
        controlnet=common_pb2.ControlNetSpec(type=common_pb2.CONTROL_TYPE_CANNY),
    )
    assert _bad_fields(request) == ["controlnet.control_image"]


def test_workflow_name_must_not_be_a_path() -> None:
    assert _bad_fields(_img2img(workflow="../../etc/passwd")) == ["workflow"]


def test_blank_description_is_refused() -> None:
    assert _bad_fields(_img2img(description=" ")) == ["description"]


def test_blank_description_message_says_the_field_is_optional() -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        validate_generate(_img2img(description=""), LIMITS)
    (violation,) = raised.value.violations
    assert "required" not in violation.description
    assert "leave the field unset" in violation.description


def test_approved_plan_needs_a_prompt() -> None:
    plan = common_pb2.PromptPlan(positive_prompt="")
    assert _bad_fields(_img2img(plan=plan)) == ["plan.positive_prompt"]


def test_nan_sampler_override_is_refused() -> None:
    sampler = common_pb2.SamplerSettings(denoise=float("nan"))
    assert _bad_fields(_img2img(sampler=sampler)) == ["sampler.denoise"]


def test_every_bad_field_is_reported_at_once() -> None:
    fields = _bad_fields(_img2img(instruction="", variants=20, workflow="a/b"))
    assert fields == ["instruction", "variants", "workflow"]


def test_plan_request_is_validated_like_generate() -> None:
    request = gateway_pb2.PlanRequest(instruction="")
    with pytest.raises(InvalidArgumentError) as raised:
        validate_plan(request, LIMITS)
    assert [v.field for v in raised.value.violations] == ["instruction"]


def test_plan_request_with_description_keeps_it() -> None:
    request = gateway_pb2.PlanRequest(
        source_image=common_pb2.Image(data=png_bytes()), instruction="x", description="a cup"
    )
    assert validate_plan(request, LIMITS).description == "a cup"


@pytest.mark.parametrize("name", ["_x", "-x", "x" * 65])
def test_workflow_names_the_render_refuses_are_refused_here_first(name: str) -> None:
    assert _bad_fields(_img2img(workflow=name)) == ["workflow"]


def test_an_unknown_controlnet_type_number_names_the_field() -> None:
    spec = common_pb2.ControlNetSpec(type=99)  # type: ignore[arg-type]
    assert _bad_fields(_img2img(controlnet=spec)) == ["controlnet.type"]


def test_an_approved_plan_with_an_unknown_intent_names_the_field() -> None:
    plan = common_pb2.PromptPlan(positive_prompt="a green cup", intent=999)  # type: ignore[arg-type]
    assert _bad_fields(_img2img(plan=plan)) == ["plan.intent"]


def test_approved_plan_settings_are_checked_as_the_render_would_naming_plan_settings() -> None:
    plan = common_pb2.PromptPlan(
        positive_prompt="a green cup",
        settings=common_pb2.SamplerSettings(steps=500, denoise=1.5, sampler_name="Euler a"),
    )
    assert _bad_fields(_img2img(plan=plan)) == [
        "plan.settings.denoise",
        "plan.settings.steps",
        "plan.settings.sampler_name",
    ]


def test_overrides_over_an_approved_plan_must_be_within_what_the_render_accepts() -> None:
    plan = common_pb2.PromptPlan(positive_prompt="a green cup")
    sampler = common_pb2.SamplerSettings(steps=500)
    assert _bad_fields(_img2img(plan=plan, sampler=sampler)) == ["sampler.steps"]


def test_out_of_range_overrides_for_the_planner_pass_to_be_clamped_there() -> None:
    sampler = common_pb2.SamplerSettings(steps=500, cfg=0.0)
    assert validate_generate(_img2img(sampler=sampler), LIMITS).inputs.overrides.steps == 500


def test_a_sampler_name_nothing_could_use_is_refused_before_planning() -> None:
    sampler = common_pb2.SamplerSettings(scheduler="simple; rm -rf /")
    assert _bad_fields(_img2img(sampler=sampler)) == ["sampler.scheduler"]


def test_an_infinite_lora_strength_is_refused() -> None:
    loras = [common_pb2.LoraSpec(name="a.safetensors", strength=float("inf"))]
    assert _bad_fields(_img2img(loras=loras)) == ["loras[0].strength"]


def test_txt2img_sides_follow_the_configured_limits() -> None:
    request = gateway_pb2.GenerateRequest(instruction="a fox", width=4096, height=4096)
    wide = RequestLimits(txt2img_max_side=4096)
    assert validate_generate(request, wide).width == 4096


@pytest.mark.parametrize(
    ("request_", "decodes"),
    [
        (gateway_pb2.GenerateRequest(instruction="a red fox"), False),
        (_img2img(), True),
        (gateway_pb2.GenerateRequest(mask=common_pb2.Image(data=png_bytes())), True),
        (
            gateway_pb2.GenerateRequest(
                controlnet=common_pb2.ControlNetSpec(control_image=common_pb2.Image(data=b"x"))
            ),
            True,
        ),
        (gateway_pb2.GenerateRequest(instruction="a fox", prompt="a fox"), True),
        (gateway_pb2.GenerateRequest(instruction="a fox", negative_prompt=""), True),
        (gateway_pb2.GenerateRequest(plan=common_pb2.PromptPlan(positive_prompt="a fox")), True),
        (gateway_pb2.GenerateRequest(instruction="a fox", description="a fox"), False),
        (gateway_pb2.PlanRequest(instruction="a red fox"), False),
        (gateway_pb2.PlanRequest(source_image=common_pb2.Image(data=png_bytes())), True),
    ],
)
def test_a_request_leaves_the_event_loop_when_it_carries_an_image_or_a_prompt(
    request_: gateway_pb2.GenerateRequest | gateway_pb2.PlanRequest, decodes: bool
) -> None:
    assert checked_in_a_thread(request_) is decodes


async def test_a_long_caller_prompt_is_cleaned_off_the_event_loop() -> None:
    # 65,536 characters of caller prompt: cleaning and fitting it to the CLIP budget takes
    # a fraction of a second, which on the event loop would stall every other stream.
    long_prompt = " ".join(f"word{i}" for i in range(12_000))[:65_536]
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def check(request: gateway_pb2.GenerateRequest, limits: RequestLimits) -> GenerateJob:
        threads.append(threading.get_ident())
        return validate_generate(request, limits)

    request = gateway_pb2.GenerateRequest(instruction="a fox", prompt=long_prompt)
    job = await validated(check, request, RequestLimits())
    assert threads and threads[0] != loop_thread
    assert job.caller_prompts.positive is not None
    assert len(job.caller_prompts.positive) < len(long_prompt)


async def test_only_a_request_with_an_image_is_validated_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def check(request: gateway_pb2.GenerateRequest, limits: RequestLimits) -> GenerateJob:
        threads.append(threading.get_ident())
        return validate_generate(request, limits)

    text_only = await validated(check, gateway_pb2.GenerateRequest(instruction="a fox"), LIMITS)
    with_image = await validated(check, _img2img(), LIMITS)
    assert text_only.inputs.image is None and with_image.inputs.image is not None
    assert threads[0] == loop_thread and threads[1] != loop_thread
    with pytest.raises(InvalidArgumentError):
        await validated(check, gateway_pb2.GenerateRequest(instruction=" "), LIMITS)
