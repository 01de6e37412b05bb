"""The gateway's health follows its downstream services'."""

from __future__ import annotations

import asyncio
import io

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import cli
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
