"""Fixtures: a running stand-in on a free loopback port, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import ollama
import pytest

from services.common.backend_tls import backend_tls_context
from standins.ollama.server import RunningFakeOllama, run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings


@pytest.fixture
async def running() -> AsyncIterator[RunningFakeOllama]:
    """A stand-in with the default models, one resident slot and instant loads."""
    async with run_fake_ollama(FakeOllamaSettings(unload_delay_s=0.01)) as server:
        yield server


@pytest.fixture
async def http(running: RunningFakeOllama) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client for byte-level checks (with the services' shared TLS context:
    httpx would load the CA bundle again for every client)."""
    async with httpx.AsyncClient(
        base_url=running.url, timeout=10.0, verify=backend_tls_context()
    ) as client:
        yield client


@pytest.fixture
async def client(running: RunningFakeOllama) -> AsyncIterator[ollama.AsyncClient]:
    """The official Ollama client pointed at the stand-in."""
    async with ollama.AsyncClient(host=running.url, timeout=httpx.Timeout(10.0)) as official:
        yield official
