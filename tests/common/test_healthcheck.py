"""The container health check exits 0 only for SERVING."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import grpc_testing
from grpc_health.v1 import health_pb2

from services.common.healthcheck import check_health, main
from tests.common.conftest import VISION_SERVICE, ProbeVision, ServeFactory

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
CHECK = HEALTH.methods_by_name["Check"]


def answer_check(
    response: health_pb2.HealthCheckResponse, code: grpc.StatusCode = grpc.StatusCode.OK
) -> tuple[str, str]:
    """Runs check_health against a grpc_testing channel answering as told.

    Returns:
        (the service name the check asked about, what check_health returned).
    """
    channel = grpc_testing.channel([HEALTH], grpc_testing.strict_real_time())
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(check_health, channel, service="probe.v1.Probe", timeout=2)
        _metadata, request, rpc = channel.take_unary_unary(CHECK)
        rpc.terminate(response, (), code, "")
        return request.service, result.result(timeout=5)


def test_check_reports_serving() -> None:
    asked, status = answer_check(health_pb2.HealthCheckResponse(status=1))
    assert (asked, status) == ("probe.v1.Probe", "SERVING")


def test_check_reports_not_serving() -> None:
    _, status = answer_check(health_pb2.HealthCheckResponse(status=2))
    assert status == "NOT_SERVING"


def test_check_reports_the_error_code_of_a_failed_call() -> None:
    _, status = answer_check(health_pb2.HealthCheckResponse(), grpc.StatusCode.NOT_FOUND)
    assert status == "NOT_FOUND"


async def test_command_exits_0_for_a_ready_server_and_1_before(serve: ServeFactory) -> None:
    async with serve(ProbeVision(), ready=False) as server:
        argv = ["--addr", f"127.0.0.1:{server.port}", "--service", VISION_SERVICE]
        # The synchronous check runs in a thread so this loop keeps serving it.
        assert await asyncio.to_thread(main, argv) == 1
        await server.set_ready(True)
        assert await asyncio.to_thread(main, argv) == 0


async def test_command_runs_as_a_module_and_prints_the_status(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.common.healthcheck",
            "--addr",
            f"127.0.0.1:{server.port}",
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await process.communicate()
    assert (process.returncode, stdout.decode().strip()) == (0, "SERVING")


def test_command_exits_1_when_nothing_listens() -> None:
    assert main(["--addr", "127.0.0.1:1", "--timeout", "1"]) == 1
