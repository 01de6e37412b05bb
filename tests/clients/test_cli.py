"""The ``imagegen`` client, driven through grpc_testing channels (the server is played here)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest
from grpc_health.v1 import health_pb2

from clients.cli import (
    EXIT_FAILED,
    EXIT_USAGE,
    build_parser,
    build_request,
    main,
    parse_controlnet,
    parse_lora,
)
from clients.generate import ProgressBoard, run_generate
from clients.health import run_health
from clients.rpc import print_rpc_error
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from services.common.errors import FieldViolation, InvalidArgumentError, to_rpc_status
from tests.gateway.images import png_bytes

GATEWAY = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
GENERATE = GATEWAY.methods_by_name["Generate"]
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def _channel(*services: Any) -> Any:
    return grpc_testing.channel(services or [GATEWAY], grpc_testing.strict_real_time())


def _events(seed: int) -> list[gateway_pb2.GenerateResponse]:
    analysis = common_pb2.ImageAnalysis(
        description="a cup on a saucer", source=common_pb2.ANALYSIS_SOURCE_MODEL, model="llava"
    )
    plan = common_pb2.PromptPlan(
        positive_prompt="a dark green cup",
        source=common_pb2.PLAN_SOURCE_MODEL,
        intent=common_pb2.EDIT_INTENT_COLOR_CHANGE,
        settings=common_pb2.SamplerSettings(denoise=0.85, steps=4, cfg=1.0, guidance=3.5),
    )
    image = common_pb2.Image(data=png_bytes(), mime_type="image/png", width=64, height=48)
    return [
        gateway_pb2.GenerateResponse(analysis=gateway_pb2.AnalysisReady(analysis=analysis)),
        gateway_pb2.GenerateResponse(plan=gateway_pb2.PlanReady(plan=plan)),
        gateway_pb2.GenerateResponse(queued=common_pb2.RenderQueued(variant=0, position=0)),
        gateway_pb2.GenerateResponse(
            progress=common_pb2.RenderProgress(variant=0, step=2, total_steps=4)
        ),
        gateway_pb2.GenerateResponse(warning=common_pb2.Warning(code="X_NOTE", message="note")),
        gateway_pb2.GenerateResponse(
            result=common_pb2.VariantResult(index=0, seed=seed, image=image)
        ),
        gateway_pb2.GenerateResponse(
            result=common_pb2.VariantResult(index=1, seed=seed + 1, image=image)
        ),
        gateway_pb2.GenerateResponse(
            completed=gateway_pb2.Completed(
                timings=[gateway_pb2.StageTiming(stage="total", millis=1234.0)],
                seed=seed,
                variants=2,
            )
        ),
    ]


def _play_generate(
    channel: Any,
    events: list[gateway_pb2.GenerateResponse],
    *,
    code: grpc.StatusCode = grpc.StatusCode.OK,
    details: str = "",
    trailing: tuple[tuple[str, Any], ...] = (),
) -> gateway_pb2.GenerateRequest:
    _, request, rpc = channel.take_unary_stream(GENERATE)
    for event in events:
        rpc.send_response(event)
    rpc.terminate(trailing, code, details)
    return request  # type: ignore[no-any-return]


def _submit(pool: ThreadPoolExecutor, call: Callable[[], Any]) -> Future[Any]:
    return pool.submit(call)


def test_generate_writes_each_variant_named_by_its_seed(
    pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    channel, out = _channel(), io.StringIO()
    request = gateway_pb2.GenerateRequest(instruction="x", variants=2)
    future = _submit(pool, lambda: run_generate(channel, request, out_dir=tmp_path, stream=out))
    _play_generate(channel, _events(seed=41))
    outcome = future.result(timeout=10)
    assert outcome.written == [tmp_path / "41.png", tmp_path / "42.png"]
    assert (tmp_path / "41.png").read_bytes() == png_bytes()


def test_generate_shows_analysis_plan_progress_and_timings(
    pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    channel, out = _channel(), io.StringIO()
    request = gateway_pb2.GenerateRequest(instruction="x", variants=2)
    future = _submit(pool, lambda: run_generate(channel, request, out_dir=tmp_path, stream=out))
    _play_generate(channel, _events(seed=7))
    future.result(timeout=10)
    text = out.getvalue()
    for expected in (
        "analysis (model llava): a cup on a saucer",
        "plan (model), intent color_change",
        "prompt: a dark green cup",
        "variant 0 [",
        "2/4",
        "warning X_NOTE: note",
        "timings: total 1.23 s",
    ):
        assert expected in text


def test_generate_sends_the_request_it_was_given(pool: ThreadPoolExecutor, tmp_path: Path) -> None:
    channel = _channel()
    request = gateway_pb2.GenerateRequest(instruction="Перекрась чашку", variants=2, seed=5)
    future = _submit(
        pool, lambda: run_generate(channel, request, out_dir=tmp_path, stream=io.StringIO())
    )
    received = _play_generate(channel, _events(seed=5))
    future.result(timeout=10)
    assert received == request


def test_generate_sends_the_callers_token(pool: ThreadPoolExecutor, tmp_path: Path) -> None:
    channel = _channel()
    request = gateway_pb2.GenerateRequest(instruction="x", variants=2)
    metadata = (("authorization", "Bearer s3cret"),)
    future = _submit(
        pool,
        lambda: run_generate(
            channel, request, out_dir=tmp_path, stream=io.StringIO(), metadata=metadata
        ),
    )
    sent, _, rpc = channel.take_unary_stream(GENERATE)
    rpc.terminate((), grpc.StatusCode.OK, "")
    future.result(timeout=10)
    assert ("authorization", "Bearer s3cret") in sent


def test_generate_error_shows_code_message_and_field(
    pool: ThreadPoolExecutor, tmp_path: Path
) -> None:
    channel, out = _channel(), io.StringIO()
    error = InvalidArgumentError(
        "instruction is required", [FieldViolation("instruction", "must not be blank")]
    )
    status = to_rpc_status(error)
    request = gateway_pb2.GenerateRequest()
    future = _submit(pool, lambda: run_generate(channel, request, out_dir=tmp_path, stream=out))
    _play_generate(
        channel,
        [],
        code=status.code,
        details=status.details,
        trailing=tuple(status.trailing_metadata),
    )
    with pytest.raises(grpc.RpcError) as raised:
        future.result(timeout=10)
    print_rpc_error(raised.value, out)
    text = out.getvalue()
    assert "error: INVALID_ARGUMENT: instruction is required" in text
    assert "field instruction: must not be blank" in text


def _answer_health(channel: Any, statuses: dict[str, int], count: int) -> list[str]:
    check = HEALTH.methods_by_name["Check"]
    asked = []
    for _ in range(count):
        _, request, rpc = channel.take_unary_unary(check)
        asked.append(request.service)
        status = statuses.get(request.service, health_pb2.HealthCheckResponse.SERVING)
        rpc.terminate(health_pb2.HealthCheckResponse(status=status), (), grpc.StatusCode.OK, "")
    return asked


def _answer_capabilities(channel: Any, vision_state: str) -> None:
    _, _, rpc = channel.take_unary_unary(GATEWAY.methods_by_name["GetCapabilities"])
    caps = gateway_pb2.GetCapabilitiesResponse(
        language_models=[
            gateway_pb2.LanguageModel(
                service="vision", model="llava", backend="ollama", state=vision_state,
                reason="" if vision_state == "ready" else "connection refused",
            ),
            gateway_pb2.LanguageModel(
                service="planner", model="gpt-oss:20b", backend="ollama", state="ready"
            ),
        ]
    )  # fmt: skip
    rpc.terminate(caps, (), grpc.StatusCode.OK, "")


def test_health_reports_every_service_and_fails_when_one_is_down(pool: ThreadPoolExecutor) -> None:
    channel, out = _channel(HEALTH, GATEWAY), io.StringIO()
    future = _submit(pool, lambda: run_health(channel, out, timeout=5.0))
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    asked = _answer_health(channel, {"imagegen.render.v1.RenderService": not_serving}, 5)
    _answer_capabilities(channel, "ready")
    assert future.result(timeout=10) is False
    assert asked[0] == "" and "imagegen.vision.v1.VisionService" in asked
    lines = out.getvalue().splitlines()
    assert any(line.startswith("render (seen") and line.endswith("NOT_SERVING") for line in lines)


def test_health_passes_while_vision_answers_with_its_fallback(pool: ThreadPoolExecutor) -> None:
    channel, out = _channel(HEALTH, GATEWAY), io.StringIO()
    future = _submit(pool, lambda: run_health(channel, out, timeout=5.0))
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    _answer_health(channel, {"imagegen.vision.v1.VisionService": not_serving}, 5)
    _answer_capabilities(channel, "backend_down")
    assert future.result(timeout=10) is True
    lines = out.getvalue().splitlines()
    assert any(
        line.startswith("vision (seen") and "requests get the fallback" in line for line in lines
    )
    assert any(
        line.startswith("vision model")
        and line.endswith("llava on ollama: backend_down (connection refused)")
        for line in lines
    )


def test_lora_argument_takes_name_and_strength() -> None:
    assert parse_lora("flux-realism.safetensors:0.8") == common_pb2.LoraSpec(
        name="flux-realism.safetensors", strength=0.8
    )


def test_lora_argument_without_strength_leaves_it_unset() -> None:
    assert not parse_lora("a.safetensors").HasField("strength")


def test_controlnet_argument_takes_type_and_strength() -> None:
    spec = parse_controlnet("canny:0.6")
    assert spec.type == common_pb2.CONTROL_TYPE_CANNY
    assert spec.strength == pytest.approx(0.6)


def test_unknown_controlnet_type_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["generate", "--instruction", "x", "--controlnet", "sketch"])
    assert raised.value.code == EXIT_USAGE


def test_arguments_become_the_request(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(png_bytes())
    args = build_parser().parse_args(
        ["generate", "--image", str(image), "--instruction", "x", "--variants", "3",
         "--seed", "9", "--lora", "a.safetensors:0.5", "--description", "a cup"]
    )  # fmt: skip
    request = build_request(args)
    assert request.source_image.data == png_bytes()
    assert (request.variants, request.seed, request.description) == (3, 9, "a cup")
    assert request.loras[0].name == "a.safetensors"


def test_unreadable_image_exits_with_usage_error(tmp_path: Path) -> None:
    out = io.StringIO()
    code = main(
        ["generate", "--image", str(tmp_path / "missing.jpg"), "--instruction", "x"], stdout=out
    )
    assert code == EXIT_USAGE
    assert "cannot read" in out.getvalue()


def test_unreachable_gateway_exits_non_zero_with_the_status(tmp_path: Path) -> None:
    out = io.StringIO()
    code = main(
        ["generate", "--instruction", "x", "--target", "127.0.0.1:1", "--timeout", "5",
         "--out", str(tmp_path)],
        stdout=out,
    )  # fmt: skip
    assert code == EXIT_FAILED
    assert "error: UNAVAILABLE" in out.getvalue()


def test_progress_board_prints_the_start_and_each_quarter_when_not_live() -> None:
    out = io.StringIO()
    board = ProgressBoard(out, 1, live=False)
    for step in range(1, 9):
        board.progress(0, step, 8)
    assert [line.split()[-2] for line in out.getvalue().splitlines()] == [
        "1/8", "2/8", "4/8", "6/8", "8/8"
    ]  # fmt: skip


def test_progress_board_redraws_every_line_in_place_when_live() -> None:
    out = io.StringIO()
    board = ProgressBoard(out, 2, live=True)
    board.progress(0, 1, 4)
    board.progress(1, 2, 4)
    text = out.getvalue()
    assert "\x1b[2F" in text  # moved back up over both lines before redrawing
    assert text.count("variant 1 [") == 2
