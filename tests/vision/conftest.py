"""Fixtures of the vision tests: the Ollama stand-in on a free port, images, settings."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from services.common.ollama import OllamaClient
from services.common.ollama_probe import ModelProbe
from services.vision.analyzer import Analyzer
from services.vision.readiness import vision_model_probe
from services.vision.settings import VisionSettings
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

FIXTURES = Path(__file__).parents[1] / "fixtures" / "images"


def fixture_image(name: str) -> bytes:
    """A committed test photo, e.g. ``coffee.jpg``."""
    return (FIXTURES / name).read_bytes()


def two_colour_png(
    left: tuple[int, int, int] = (220, 25, 30),
    right: tuple[int, int, int] = (40, 80, 200),
    size: tuple[int, int] = (240, 120),
) -> bytes:
    """A PNG whose left half is ``left`` and right half ``right``."""
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def vision_settings(ollama_url: str, **overrides: Any) -> VisionSettings:
    """Settings for tests: port 0, tiny backoffs, a slow readiness watch."""
    values: dict[str, Any] = {
        "ollama_url": ollama_url,
        "port": 0,
        "retry_initial_backoff_s": 0.01,
        "retry_max_backoff_s": 0.02,
        "readiness_interval_s": 3600.0,
        "grace_period_s": 0.0,
        **overrides,
    }
    return VisionSettings(**values)


def chat_requests(running: RunningFakeOllama) -> list[dict[str, Any]]:
    """The bodies of the ``/api/chat`` requests the stand-in received, oldest first."""
    return [r.body for r in running.fake.requests_to("/api/chat")]


MODEL_ANSWER: dict[str, Any] = {
    "description": "A white ceramic cup of coffee on a wooden table, seen from above.",
    "subjects": ["cup", "coffee", "table"],
    "colors": ["white", "brown", "beige"],
    "materials": ["ceramic", "wood"],
    "style": "photograph",
    "lighting": "soft daylight",
    "composition": "close-up from above, cup centred",
}
"""What the stand-in's llava answers in these tests: a complete, consistent analysis."""


@pytest.fixture
async def ollama() -> AsyncIterator[RunningFakeOllama]:
    """The Ollama stand-in with llava and gpt-oss installed; llava answers
    :data:`MODEL_ANSWER` unless a test scripts otherwise."""
    async with run_fake_ollama(FakeOllamaSettings(), port=0) as running:
        running.fake.script.always(MODEL_ANSWER, model="llava")
        yield running


def make_analyzer(
    settings: VisionSettings,
) -> tuple[Analyzer, ModelProbe, OllamaClient]:
    """An analyzer on its own Ollama client (close it with ``client.aclose()``)."""
    client = OllamaClient(settings.ollama_url, timeout_s=settings.call_timeout_s)
    probe = vision_model_probe(client, settings.model)
    return Analyzer(settings, client, probe), probe, client
