"""VisionService.ReleaseModels: the single-GPU hand-over, on each backend, over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpc.aio
import pytest

from imagegen.common.v1 import common_pb2
from imagegen.vision.v1 import vision_pb2, vision_pb2_grpc
from services.common.llm.openai import RELEASE_UNSUPPORTED
from services.vision.app import create_server
from standins.ollama.server import RunningFakeOllama
from tests.vision.conftest import fixture_image, vision_settings


@asynccontextmanager
async def vision_stub(ollama: RunningFakeOllama) -> AsyncIterator[Any]:
    host = await create_server(vision_settings(ollama.url))
    port = await host.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield vision_pb2_grpc.VisionServiceStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await host.stop(0)


async def _analyze(stub: Any, photo: str = "coffee.jpg") -> None:
    image = common_pb2.Image(data=fixture_image(photo))
    await stub.AnalyzeImage(vision_pb2.AnalyzeImageRequest(image=image), timeout=10)


@pytest.mark.llm_backends("ollama")
async def test_the_loaded_vision_model_leaves_the_gpu_and_comes_back(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_stub(ollama) as stub:
        await _analyze(stub)
        assert ollama.fake.resident_models() == ["llava:latest"]
        released = await stub.ReleaseModels(vision_pb2.ReleaseModelsRequest(), timeout=10)
        assert ollama.fake.resident_models() == []
        again = await stub.ReleaseModels(vision_pb2.ReleaseModelsRequest(), timeout=10)
        await _analyze(stub, "chelsea.jpg")  # another image: the cache would answer this one
    assert list(released.released_models) == ["llava"]
    assert not released.held_models and not released.unsupported_reason
    assert list(again.released_models) == []
    assert ollama.fake.resident_models() == ["llava:latest"]


@pytest.mark.llm_backends("ollama")
async def test_an_unreachable_ollama_is_unavailable(ollama: RunningFakeOllama) -> None:
    async with vision_stub(ollama) as stub:
        await ollama.stop()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReleaseModels(vision_pb2.ReleaseModelsRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "could not release 'llava'" in (caught.value.details() or "")


@pytest.mark.llm_backends("openai")
async def test_an_openai_compatible_server_keeps_the_model_and_says_so(
    ollama: RunningFakeOllama,
) -> None:
    async with vision_stub(ollama) as stub:
        await _analyze(stub)
        response = await stub.ReleaseModels(vision_pb2.ReleaseModelsRequest(), timeout=10)
    assert response.unsupported_reason == RELEASE_UNSUPPORTED
    assert list(response.released_models) == []
    assert ollama.fake.resident_models() == ["llava:latest"]
