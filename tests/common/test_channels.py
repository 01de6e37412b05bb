"""Client channels: round-robin over replicas, UNAVAILABLE retried for unary methods."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest

from imagegen.vision.v1 import vision_pb2
from services.common.channels import LoadBalancing, create_channel, service_config
from services.common.errors import BackendUnavailableError
from tests.common.conftest import (
    RENDER_SERVICE,
    VISION_SERVICE,
    ProbeVision,
    ServeFactory,
    vision_stub,
)

MAX_MESSAGE = 64 * 1024 * 1024


def test_service_config_balances_round_robin() -> None:
    assert service_config()["loadBalancingConfig"] == [{"round_robin": {}}]


def test_service_config_takes_the_load_balancing_policy() -> None:
    config = service_config(load_balancing="pick_first")
    assert config["loadBalancingConfig"] == [{"pick_first": {}}]


def test_unknown_load_balancing_policy_is_refused() -> None:
    # gRPC would ignore the config and fall back to pick_first: one replica for everything.
    with pytest.raises(ValueError, match="round_robin"):
        service_config(load_balancing="least_request")  # type: ignore[arg-type]


def test_service_config_retries_only_unavailable_on_unary_methods() -> None:
    (method_config,) = service_config([VISION_SERVICE, RENDER_SERVICE])["methodConfig"]
    # Every unary method is retried; Render streams, so it is left to the caller.
    assert method_config["name"] == [
        {"service": VISION_SERVICE, "method": "AnalyzeImage"},
        {"service": VISION_SERVICE, "method": "ReleaseModels"},
        {"service": VISION_SERVICE, "method": "GetModelInfo"},
        {"service": RENDER_SERVICE, "method": "GetCatalog"},
    ]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def flaky_backend(failures: int) -> Any:
    attempts = 0

    async def handler(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
        nonlocal attempts
        attempts += 1
        if attempts <= failures:
            raise BackendUnavailableError("warming up", backend="ollama")
        return vision_pb2.AnalyzeImageResponse()

    return handler


@pytest.mark.parametrize(
    ("retry_services", "expected"),
    [([VISION_SERVICE], grpc.StatusCode.OK), ([], grpc.StatusCode.UNAVAILABLE)],
    ids=["retried", "not retried"],
)
async def test_unavailable_is_retried_for_the_named_services(
    serve: ServeFactory, retry_services: list[str], expected: grpc.StatusCode
) -> None:
    async with serve(ProbeVision(flaky_backend(failures=2))) as server:
        channel = create_channel(
            f"127.0.0.1:{server.port}", max_message_bytes=MAX_MESSAGE, retry_services=retry_services
        )
        async with channel:
            call = vision_stub(channel).AnalyzeImage(vision_pb2.AnalyzeImageRequest(), timeout=10)
            assert await call.code() == expected


@pytest.mark.parametrize(
    ("load_balancing", "replicas_used"), [("round_robin", 3), ("pick_first", 1)]
)
async def test_round_robin_spreads_a_multi_address_target_pick_first_does_not(
    serve: ServeFactory, load_balancing: LoadBalancing, replicas_used: int
) -> None:
    served: list[int] = []

    def replica(index: int) -> Any:
        async def handler(request: Any, context: Any) -> vision_pb2.AnalyzeImageResponse:
            served.append(index)
            return vision_pb2.AnalyzeImageResponse()

        return handler

    async with (
        serve(ProbeVision(replica(0))) as a,
        serve(ProbeVision(replica(1))) as b,
        serve(ProbeVision(replica(2))) as c,
    ):
        target = f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port},127.0.0.1:{c.port}"
        async with create_channel(
            target, max_message_bytes=MAX_MESSAGE, load_balancing=load_balancing
        ) as channel:
            stub = vision_stub(channel)
            for _ in range(30):
                await stub.AnalyzeImage(
                    vision_pb2.AnalyzeImageRequest(), timeout=5, wait_for_ready=True
                )
    assert len(set(served)) == replicas_used
