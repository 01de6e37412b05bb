"""The container health check exits 0 only for SERVING."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import grpc_testing
import pytest
import trustme
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


def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for localhost it signed with its key: (ca, cert, key)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    leaf.cert_chain_pems[0].write_to_path(str(paths[1]))
    leaf.private_key_pem.write_to_path(str(paths[2]))
    return paths


async def test_empty_tls_arguments_count_as_not_given(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server:
        argv = ["--addr", f"127.0.0.1:{server.port}", "--tls-ca", "", "--tls-cert", ""]
        assert await asyncio.to_thread(main, [*argv, "--tls-key", "", "--tls-server-name", ""]) == 0


async def test_without_a_ca_the_check_trusts_the_certificate_it_presents(
    serve: ServeFactory, tmp_path: Path
) -> None:
    _, cert, key = tls_files(tmp_path)
    async with serve(ProbeVision(), tls_cert_file=cert, tls_key_file=key) as server:
        argv = ["--addr", f"127.0.0.1:{server.port}", "--tls-server-name", "localhost"]
        tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
        assert await asyncio.to_thread(main, [*argv, *tls, "--tls-ca", ""]) == 0
        assert await asyncio.to_thread(main, [*argv, *tls]) == 0


async def test_with_a_ca_the_check_speaks_mutual_tls(serve: ServeFactory, tmp_path: Path) -> None:
    ca, cert, key = tls_files(tmp_path)
    tls = {"tls_cert_file": cert, "tls_key_file": key, "tls_ca_file": ca}
    async with serve(ProbeVision(), tls_require_client_cert=True, **tls) as server:
        argv = ["--addr", f"127.0.0.1:{server.port}", "--tls-server-name", "localhost"]
        client = ["--tls-cert", str(cert), "--tls-key", str(key)]
        assert await asyncio.to_thread(main, [*argv, "--tls-ca", str(ca), *client]) == 0
        assert await asyncio.to_thread(main, [*argv, "--tls-ca", str(ca), "--timeout", "1"]) == 1


def test_a_certificate_without_its_key_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--addr", "127.0.0.1:1", "--tls-cert", str(tmp_path / "cert.pem")])
    assert exited.value.code == 2
