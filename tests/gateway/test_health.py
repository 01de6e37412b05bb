"""The gateway's health follows its downstream services': SERVING while it can still
produce images (render serving; vision and planner answering, with fallbacks if need be)."""

from __future__ import annotations

import asyncio
import io

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import cli
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2
from tests.gateway.images import jpeg_bytes
from tests.gateway.system import System, stop_host

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _wait_for(address: str, service: str, status: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=15)
        async for answer in watch:
            if answer.status == status:
                watch.cancel()
                return
    raise AssertionError(f"{service or 'server'} never became {status}")


async def _status(address: str, service: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(answer.status)


async def test_gateway_serves_once_every_downstream_service_does(system: System) -> None:
    await _wait_for(system.gateway.address, "", SERVING)
    assert await _status(system.gateway.address, "imagegen.gateway.v1.GatewayService") == SERVING


async def test_gateway_is_not_serving_while_a_downstream_service_is_down(system: System) -> None:
    await _wait_for(system.gateway.address, "", SERVING)
    await stop_host(system.hosts["render"])
    await _wait_for(system.gateway.address, "", NOT_SERVING)
    address = system.gateway.address
    assert await _status(address, "imagegen.render.v1.RenderService") == NOT_SERVING
    assert await _status(address, "imagegen.vision.v1.VisionService") == SERVING


async def test_health_command_names_the_service_that_is_down(system: System) -> None:
    await _wait_for(system.gateway.address, "", SERVING)
    await stop_host(system.hosts["planner"])
    await _wait_for(system.gateway.address, "imagegen.planner.v1.PlannerService", NOT_SERVING)
    out = io.StringIO()
    argv = ["health", "--target", system.gateway.address, "--vision", system.addresses["vision"]]
    code = await asyncio.to_thread(cli.main, argv, stdout=out)
    assert code == cli.EXIT_FAILED
    lines = out.getvalue().splitlines()
    assert any(line.startswith("planner (seen") and "NOT_SERVING" in line for line in lines)
    assert any(line.startswith("vision (direct)") and line.endswith(" SERVING") for line in lines)


async def test_health_command_exits_zero_when_all_serve(system: System) -> None:
    await _wait_for(system.gateway.address, "", SERVING)
    code = await asyncio.to_thread(
        cli.main, ["health", "--target", system.gateway.address], stdout=io.StringIO()
    )
    assert code == cli.EXIT_OK


async def test_gateway_stays_serving_while_the_model_backend_is_down(system: System) -> None:
    address = system.gateway.address
    await _wait_for(address, "", SERVING)
    system.ollama.fake.faults.add(kind="refuse")
    # Vision and planner report their model backend down, and still answer (fallbacks).
    await _wait_for(address, "imagegen.vision.v1.VisionService", NOT_SERVING)
    await _wait_for(address, "imagegen.planner.v1.PlannerService", NOT_SERVING)
    await asyncio.sleep(0.5)  # a few more readiness rounds of the gateway
    assert await _status(address, "") == SERVING
    assert await _status(address, "imagegen.gateway.v1.GatewayService") == SERVING
    request = gateway_pb2.GenerateRequest(
        source_image=common_pb2.Image(data=jpeg_bytes(96, 64)), instruction="make it green"
    )
    events = [e async for e in system.stub.Generate(request, timeout=30)]
    assert events[-1].HasField("completed")
    analysis = next(e.analysis.analysis for e in events if e.HasField("analysis"))
    plan = next(e.plan.plan for e in events if e.HasField("plan"))
    assert analysis.source == common_pb2.ANALYSIS_SOURCE_METADATA_FALLBACK
    assert plan.source == common_pb2.PLAN_SOURCE_RULES


async def test_health_command_shows_each_models_state_and_passes_on_fallbacks(
    system: System,
) -> None:
    address = system.gateway.address
    await _wait_for(address, "", SERVING)
    system.ollama.fake.faults.add(kind="refuse")
    await _wait_for(address, "imagegen.vision.v1.VisionService", NOT_SERVING)
    await _wait_for(address, "imagegen.planner.v1.PlannerService", NOT_SERVING)
    out = io.StringIO()
    code = await asyncio.to_thread(cli.main, ["health", "--target", address], stdout=out)
    text = out.getvalue()
    assert code == cli.EXIT_OK, text
    lines = text.splitlines()
    assert any(
        line.startswith("vision (seen") and "NOT_SERVING (its model is not ready" in line
        for line in lines
    ), text
    vision_model = next(line for line in lines if line.startswith("vision model"))
    assert "llava on ollama: backend_down" in vision_model
    assert any(line.startswith("planner model") and "backend_down" in line for line in lines)
