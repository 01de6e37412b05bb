"""One round of the cancel storm (``cancel_storm.py``); ten run in the soak."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

import pytest

from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import start_system
from tests.reliability.cancel_storm import GATEWAY_SETTINGS, STEP_DELAY_S, cancel_storm_round
from tests.reliability.stream_teardown import SKIP_REASON, server_crashes


async def test_thirty_cancelled_generate_calls_leave_no_render_and_no_prompt(
    exit_stack: AsyncExitStack,
) -> None:
    if server_crashes():
        pytest.skip(SKIP_REASON)
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=STEP_DELAY_S), **GATEWAY_SETTINGS
    )
    await cancel_storm_round(system, random.Random(1), 0)
