"""Running the vision and planner suites on every language-model backend.

A test that takes the ``ollama`` fixture of ``tests/vision`` or ``tests/planner`` runs once
per backend: the Ollama stand-in reached through Ollama's own API and through its
OpenAI-compatible ``/v1``, as a real Ollama serves both. A test that checks one API's wire
format says so with ``@pytest.mark.llm_backends("ollama")``.

The stand-in's ``url`` is the root of the backend's API, so the suites' settings helpers
pass it on unchanged: :func:`model_settings` reads a URL ending in ``/v1`` as an
OpenAI-compatible API root (the form every such server documents).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from services.common.llm import Backend
from standins.ollama.server import FakeOllama, RecordedRequest, RunningFakeOllama
from standins.ollama.settings import FakeOllamaSettings

__all__ = [
    "BACKENDS",
    "LanguageModelStandIn",
    "chat_bodies",
    "model_settings",
    "parametrize_backends",
    "probe_requests",
    "serve_stand_in",
]

BACKENDS: tuple[Backend, ...] = ("ollama", "openai")
_CHAT_PATHS: dict[Backend, str] = {"ollama": "/api/chat", "openai": "/v1/chat/completions"}


class LanguageModelStandIn(RunningFakeOllama):
    """The Ollama stand-in as one backend reaches it.

    Args:
        backend: Which API the services are configured to speak.
        settings: The stand-in's configuration.

    Attributes:
        backend: Which API the services are configured to speak.
    """

    def __init__(self, backend: Backend, settings: FakeOllamaSettings | None = None) -> None:
        super().__init__(FakeOllama(settings or FakeOllamaSettings()), "127.0.0.1", 0)
        self.backend = backend

    @property
    def url(self) -> str:
        """The root of the backend's API: the server, plus ``/v1`` for ``openai``."""
        root = super().url
        return f"{root}/v1" if self.backend == "openai" else root

    @property
    def chat_path(self) -> str:
        """Where the backend's chat requests go."""
        return _CHAT_PATHS[self.backend]


@asynccontextmanager
async def serve_stand_in(
    backend: Backend, settings: FakeOllamaSettings | None = None
) -> AsyncIterator[LanguageModelStandIn]:
    """The stand-in on a free port for the duration of the block."""
    running = LanguageModelStandIn(backend, settings)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


def chat_bodies(running: RunningFakeOllama) -> list[dict[str, Any]]:
    """The chat request bodies the stand-in received on the backend's route, oldest first."""
    path = running.chat_path if isinstance(running, LanguageModelStandIn) else "/api/chat"
    return [r.body for r in running.fake.requests_to(path)]


def probe_requests(running: RunningFakeOllama) -> list[RecordedRequest]:
    """The requests with which a readiness probe asked for the model, oldest first."""
    openai = isinstance(running, LanguageModelStandIn) and running.backend == "openai"
    return running.fake.requests_to("/v1/models" if openai else "/api/show")


def model_settings(url: str) -> dict[str, Any]:
    """The settings fields that point a service at ``url`` with the matching backend."""
    if url.rstrip("/").endswith("/v1"):
        return {"llm_backend": "openai", "llm_url": url}
    return {"ollama_url": url}


def parametrize_backends(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests`` of a suite: one run per backend of the test's marker.

    Args:
        metafunc: The test being collected; tests that take no ``llm_backend`` (directly
            or through a fixture) are left alone.
    """
    if "llm_backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("llm_backends")
    backends = marker.args if marker else BACKENDS
    metafunc.parametrize("llm_backend", backends)
