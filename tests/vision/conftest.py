"""Fixtures of the vision tests: the Ollama stand-in on a free port, images, settings.

A test that takes ``ollama`` runs once per language-model backend (see
``tests/common/llm/backends.py``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from services.common.llm import Backend, ChatModel, ModelProbe, connect
from services.vision.analyzer import Analyzer
from services.vision.readiness import vision_model_probe
from services.vision.settings import VisionSettings
from standins.ollama.server import RunningFakeOllama
from tests.common.llm.backends import (
    chat_bodies,
    model_settings,
    parametrize_backends,
    serve_stand_in,
)

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


def solid_png(side: int, colour: tuple[int, int, int] = (30, 140, 90)) -> bytes:
    """A ``side``×``side`` PNG of one colour: a few KB that decode to ``4·side²`` bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_backends(metafunc)


def vision_settings(url: str, **overrides: Any) -> VisionSettings:
    """Settings for tests: the model server at ``url``, port 0, tiny backoffs, a slow
    readiness watch."""
    values: dict[str, Any] = {
        **model_settings(url),
        "port": 0,
        "retry_initial_backoff_s": 0.01,
        "retry_max_backoff_s": 0.02,
        "readiness_interval_s": 3600.0,
        "grace_period_s": 0.0,
        **overrides,
    }
    return VisionSettings(**values)


def chat_requests(running: RunningFakeOllama) -> list[dict[str, Any]]:
    """The bodies of the chat requests the stand-in received, oldest first."""
    return chat_bodies(running)


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
async def ollama(llm_backend: Backend) -> AsyncIterator[RunningFakeOllama]:
    """The Ollama stand-in with llava and gpt-oss installed, reached through the backend;
    llava answers :data:`MODEL_ANSWER` unless a test scripts otherwise."""
    async with serve_stand_in(llm_backend) as running:
        running.fake.script.always(MODEL_ANSWER, model="llava")
        yield running


def make_analyzer(
    settings: VisionSettings,
) -> tuple[Analyzer, ModelProbe, ChatModel]:
    """An analyzer on its own model adapter (close it with ``client.aclose()``)."""
    client = connect(settings)
    probe = vision_model_probe(client, settings.model)
    return Analyzer(settings, client, probe), probe, client


@asynccontextmanager
async def analyzer_for(
    ollama: RunningFakeOllama, **overrides: Any
) -> AsyncIterator[tuple[Analyzer, ModelProbe]]:
    """An analyzer on the stand-in, its adapter closed after the block."""
    analyzer, probe, client = make_analyzer(vision_settings(ollama.url, **overrides))
    try:
        yield analyzer, probe
    finally:
        await client.aclose()
