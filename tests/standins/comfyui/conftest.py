"""Fixtures: a running fake ComfyUI (probe model files, no delays) and an HTTP client.

Other test folders can use ``standins.comfyui.run_fake_comfyui`` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from standins.comfyui import RunningFakeComfyUI, run_fake_comfyui
from tests.standins.comfyui.comfy_client import ComfyHttp
from tests.standins.comfyui.reference import probe_settings


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
