"""Fixtures: a running fake ComfyUI (probe model files, no delays) and an HTTP client.

Other test folders can use ``services.fake_comfyui.run_fake_comfyui`` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.fake_comfyui import RunningFakeComfyUI, run_fake_comfyui
from tests.fake_comfyui.comfy_client import ComfyHttp
from tests.fake_comfyui.reference import probe_settings


@pytest.fixture
async def comfy() -> AsyncIterator[RunningFakeComfyUI]:
    async with run_fake_comfyui(probe_settings()) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def api(comfy: RunningFakeComfyUI, session: aiohttp.ClientSession) -> ComfyHttp:
    return ComfyHttp(session, comfy.url)
