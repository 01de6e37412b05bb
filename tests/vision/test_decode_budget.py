"""Decoded pixels: freed before the model is asked, and bounded by the decode budget."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import pytest
from PIL import Image

from services.common import images
from services.common.errors import ResourceExhaustedError
from services.common.images import DecodedImage
from services.vision import analyzer as analyzer_module
from services.vision.analysis import AnalysisSource
from standins.ollama import FaultKind
from standins.ollama.server import RunningFakeOllama
from tests.reliability.invariants import eventually
from tests.vision.conftest import analyzer_for, chat_requests, solid_png


@pytest.fixture
def decoded_pixels(monkeypatch: pytest.MonkeyPatch) -> list[weakref.ref[Image.Image]]:
    """Weak references to the full pixels of every image the analyzer decodes."""
    refs: list[weakref.ref[Image.Image]] = []
    decode = images.decode_image

    def watched(data: bytes, **kwargs: Any) -> DecodedImage:
        decoded = decode(data, **kwargs)
        refs.append(weakref.ref(decoded.pixels))
        return decoded

    monkeypatch.setattr(analyzer_module, "decode_image", watched)
    return refs


async def test_the_full_pixels_are_freed_before_the_model_is_asked(
    ollama: RunningFakeOllama, decoded_pixels: list[weakref.ref[Image.Image]]
) -> None:
    ollama.fake.faults.add(kind=FaultKind.DELAY, model="llava", delay_s=0.5)
    async with analyzer_for(ollama) as (analyzer, _):
        task = asyncio.create_task(analyzer.analyze(solid_png(2048)))
        await eventually(lambda: bool(chat_requests(ollama)), timeout_s=10, what="a chat call")
        # The model is answering now: the 2048² pixels must already be gone.
        assert len(decoded_pixels) == 1
        assert decoded_pixels[0]() is None
        analysis = await task
    assert analysis.source is AnalysisSource.MODEL
    assert (analysis.width, analysis.height) == (2048, 2048)


async def test_the_fallback_measures_without_decoding_again(
    ollama: RunningFakeOllama, decoded_pixels: list[weakref.ref[Image.Image]]
) -> None:
    ollama.fake.faults.add(kind=FaultKind.ERROR, model="llava")
    async with analyzer_for(ollama) as (analyzer, _):
        analysis = await analyzer.analyze(solid_png(1024, (230, 20, 30)))
    assert analysis.source is AnalysisSource.METADATA_FALLBACK
    assert "red" in analysis.colors
    assert len(decoded_pixels) == 1
    assert decoded_pixels[0]() is None


async def test_an_image_beyond_a_full_decode_budget_is_refused_with_a_retry_delay(
    ollama: RunningFakeOllama,
) -> None:
    # 2048² RGB costs 16 MiB decoded: one fills the smallest budget, the second waits 0 s.
    async with analyzer_for(ollama, decode_budget_mb=16, decode_wait_s=0.0) as (analyzer, _):
        results = await asyncio.gather(
            analyzer.analyze(solid_png(2048, (1, 2, 3))),
            analyzer.analyze(solid_png(2048, (4, 5, 6))),
            return_exceptions=True,
        )
    refused = [r for r in results if isinstance(r, ResourceExhaustedError)]
    assert len(refused) == 1, results
    assert refused[0].retry_after_s is not None and refused[0].retry_after_s > 0
    assert refused[0].reason == "MEMORY_BUDGET"
    assert "vision decode budget" in refused[0].message
    # The refusal happened before the model was asked for it.
    assert len(chat_requests(ollama)) == 1


async def test_a_waiting_image_is_decoded_once_the_budget_has_room(
    ollama: RunningFakeOllama,
) -> None:
    async with analyzer_for(ollama, decode_budget_mb=16, decode_wait_s=30.0) as (analyzer, _):
        first, second = await asyncio.gather(
            analyzer.analyze(solid_png(2048, (1, 2, 3))),
            analyzer.analyze(solid_png(2048, (4, 5, 6))),
        )
    assert first.source is second.source is AnalysisSource.MODEL
