"""The server bootstrap: health, readiness, reflection, limits, TLS and graceful stop."""

from __future__ import annotations

import asyncio
import os
from io import BytesIO
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from imagegen.common.v1 import common_pb2
from imagegen.vision.v1 import vision_pb2
from services.common.channels import ClientTLS
from services.common.server import (
    LIVENESS_SERVICE_NAME,
    READINESS_SERVICE_NAME,
    GrpcServer,
    server_options,
)
from services.common.settings import MIB, ServerSettings
from tests.common.conftest import (
    VISION_SERVICE,
    ProbeVision,
    ServeFactory,
    open_channel,
    vision_stub,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health_of(server: GrpcServer, service: str) -> int:
    async with open_channel(server) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    status: int = response.status
    return status


@pytest.mark.parametrize("service", ["", VISION_SERVICE])
async def test_health_is_not_serving_until_ready(serve: ServeFactory, service: str) -> None:
    async with serve(ProbeVision(), ready=False) as server:
        assert await health_of(server, service) == NOT_SERVING
        await server.set_ready(True)
        assert await health_of(server, service) == SERVING


async def test_health_turns_not_serving_while_draining_and_in_flight_call_finishes(
    serve: ServeFactory,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        started.set()
        await release.wait()
        return vision_pb2.AnalyzeImageResponse()

    async with serve(ProbeVision(slow)) as server, open_channel(server) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=VISION_SERVICE)
        )
        assert (await watch.read()).status == SERVING
        call = vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=10)
        await started.wait()
        stopping = asyncio.create_task(server.stop(grace=10))

        assert (await watch.read()).status == NOT_SERVING
        release.set()
        assert await call.code() == grpc.StatusCode.OK
        watch.cancel()  # a watcher would otherwise hold the drain open for the grace
        await stopping


async def test_liveness_serves_while_not_ready_and_stops_serving_at_shutdown(
    serve: ServeFactory,
) -> None:
    async with serve(ProbeVision(), ready=False) as server:
        # The backend is down: out of rotation, but not a reason to restart the process.
        assert await health_of(server, VISION_SERVICE) == NOT_SERVING
        assert await health_of(server, LIVENESS_SERVICE_NAME) == SERVING
        await server.health.enter_graceful_shutdown()
        assert await health_of(server, LIVENESS_SERVICE_NAME) == NOT_SERVING


async def test_readiness_name_needs_both_a_ready_backend_and_room_for_work(
    serve: ServeFactory,
) -> None:
    async with serve(ProbeVision(), ready=False) as server:
        await server.set_admitting(True)
        not_ready = await health_of(server, READINESS_SERVICE_NAME)
        await server.set_ready(True)
        ready = await health_of(server, READINESS_SERVICE_NAME)
        await server.set_admitting(False, "queue full")
        saturated = (
            await health_of(server, READINESS_SERVICE_NAME),
            await health_of(server, VISION_SERVICE),
        )
        await server.set_ready(True)  # the next backend probe keeps it out of rotation
        still_saturated = await health_of(server, READINESS_SERVICE_NAME)
        await server.set_admitting(True)
        admitting = await health_of(server, READINESS_SERVICE_NAME)
    assert (not_ready, ready) == (NOT_SERVING, SERVING)
    assert saturated == (NOT_SERVING, SERVING)
    assert (still_saturated, admitting) == (NOT_SERVING, SERVING)


def test_server_options_age_connections_only_when_asked() -> None:
    aged = dict(
        server_options(ServerSettings(max_connection_age_s=30, max_connection_age_grace_s=600))
    )
    assert aged["grpc.max_connection_age_ms"] == 30_000
    assert aged["grpc.max_connection_age_grace_ms"] == 600_000
    forever = dict(server_options(ServerSettings(max_connection_age_s=0)))
    assert "grpc.max_connection_age_ms" not in forever


async def test_aged_connection_lets_a_long_call_finish_and_the_client_reconnects(
    serve: ServeFactory,
) -> None:
    """A call longer than the connection age runs to its end within the grace; the next
    call goes out on a fresh connection (where a client re-resolves its target)."""
    peers: list[str] = []

    async def slow(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        peers.append(context.peer())
        await asyncio.sleep(0.6)
        return vision_pb2.AnalyzeImageResponse()

    async with (
        serve(ProbeVision(slow), max_connection_age_s=0.2, max_connection_age_grace_s=5) as server,
        open_channel(server) as channel,
    ):
        stub = vision_stub(channel)
        await stub.AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=10)
        await stub.AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=10, wait_for_ready=True)
    # The client's port differs: the aged connection was closed and a new one opened.
    assert len(peers) == 2
    assert peers[0] != peers[1]


async def test_set_ready_after_shutdown_began_keeps_not_serving(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server:
        await server.health.enter_graceful_shutdown()
        await server.set_ready(True)
        assert await health_of(server, VISION_SERVICE) == NOT_SERVING


async def test_watch_readiness_follows_the_check(serve: ServeFactory) -> None:
    backend_up = False

    async def check() -> bool:
        if backend_up is None:
            raise ConnectionError("refused")
        return backend_up

    async with serve(ProbeVision(), ready=False) as server, open_channel(server) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=VISION_SERVICE)
        )
        server.watch_readiness(check, interval_s=0.01)
        assert (await watch.read()).status == NOT_SERVING
        backend_up = True
        assert (await watch.read()).status == SERVING
        backend_up = None  # type: ignore[assignment]  # the check now raises
        assert (await watch.read()).status == NOT_SERVING
        watch.cancel()


async def test_one_late_check_keeps_a_ready_server_ready_and_two_in_a_row_do_not(
    serve: ServeFactory,
) -> None:
    answers = ["ok", "late", "ok", "late", "late"]
    done = asyncio.Event()

    async def check() -> bool:
        answer = answers.pop(0) if answers else "late"
        if answer == "late":
            await asyncio.sleep(1.0)
        return True

    async with serve(ProbeVision(), ready=False) as server:
        seen: list[int] = []
        original = server.set_ready

        async def recording(ready: bool, reason: str = "") -> None:
            seen.append(ready)
            await original(ready, reason)
            if len(seen) == 5:
                done.set()

        server.set_ready = recording  # type: ignore[method-assign]
        server.watch_readiness(check, interval_s=0.01, timeout_s=0.05)
        async with asyncio.timeout(5):
            await done.wait()
        # ok → ready; one late → still ready; ok; late, late → not ready.
        assert seen[:5] == [True, True, True, True, False]
        assert await health_of(server, VISION_SERVICE) == NOT_SERVING


async def test_reflection_lists_the_services_health_and_reflection(serve: ServeFactory) -> None:
    async with serve(ProbeVision()) as server, open_channel(server) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        (response,) = [r async for r in call]
    names = {s.name for s in response.list_services_response.service}
    assert names == {
        VISION_SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_cleanups_run_after_stop_in_reverse_order(serve: ServeFactory) -> None:
    ran: list[str] = []

    def record(name: str) -> Any:
        async def cleanup() -> None:
            ran.append(name)

        return cleanup

    async with serve(ProbeVision()) as server:
        server.on_stop(record("http client"))
        server.on_stop(record("channel"))
        await server.stop()
    assert ran == ["channel", "http client"]


def noise_png(nbytes: int) -> bytes:
    side = int(nbytes**0.5) + 1
    image = Image.frombytes("L", (side, side), os.urandom(side * side))
    buffer = BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


async def test_ten_megabyte_image_passes_with_the_raised_limits(serve: ServeFactory) -> None:
    data = noise_png(10 * 1000 * 1000)
    assert len(data) > 10 * 1000 * 1000
    async with serve(ProbeVision()) as server, open_channel(server) as channel:
        response = await vision_stub(channel).AnalyzeImage(
            vision_pb2.AnalyzeImageRequest(image=common_pb2.Image(data=data)), timeout=10
        )
    assert response.analysis.description == "PNG"


async def test_message_above_the_server_limit_is_resource_exhausted(serve: ServeFactory) -> None:
    data = b"\0" * (5 * MIB)
    async with (
        serve(ProbeVision(), max_message_bytes=4 * MIB) as server,
        open_channel(server, max_message_bytes=64 * MIB) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await vision_stub(channel).AnalyzeImage(
                vision_pb2.AnalyzeImageRequest(image=common_pb2.Image(data=data)), timeout=10
            )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for "localhost" and a client certificate, as files."""
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    files: dict[str, Path] = {"ca": folder / "ca.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    for name, identity in (("server", "localhost"), ("client", "client.imagegen")):
        issued = ca.issue_cert(identity)
        files[f"{name}_key"] = folder / f"{name}.key"
        files[f"{name}_cert"] = folder / f"{name}.pem"
        issued.private_key_pem.write_to_path(str(files[f"{name}_key"]))
        files[f"{name}_cert"].write_bytes(b"".join(p.bytes() for p in issued.cert_chain_pems))
    return files


async def ping(server: GrpcServer, tls: ClientTLS) -> grpc.StatusCode:
    async with open_channel(server, tls=tls) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as e:
            code: grpc.StatusCode = e.code()
            return code
    return grpc.StatusCode.OK


async def test_tls_server_answers_a_client_trusting_its_ca(
    serve: ServeFactory, pki: dict[str, Path]
) -> None:
    async with serve(
        ProbeVision(), tls_cert_file=pki["server_cert"], tls_key_file=pki["server_key"]
    ) as server:
        tls = ClientTLS(ca_file=pki["ca"], server_name_override="localhost")
        assert await ping(server, tls) == grpc.StatusCode.OK


async def test_mutual_tls_refuses_a_client_without_certificate(
    serve: ServeFactory, pki: dict[str, Path]
) -> None:
    async with serve(
        ProbeVision(),
        tls_cert_file=pki["server_cert"],
        tls_key_file=pki["server_key"],
        tls_ca_file=pki["ca"],
        tls_require_client_cert=True,
    ) as server:
        anonymous = ClientTLS(ca_file=pki["ca"], server_name_override="localhost")
        identified = ClientTLS(
            ca_file=pki["ca"],
            cert_file=pki["client_cert"],
            key_file=pki["client_key"],
            server_name_override="localhost",
        )
        assert await ping(server, anonymous) == grpc.StatusCode.UNAVAILABLE
        assert await ping(server, identified) == grpc.StatusCode.OK
