"""Ten rounds of the cancel storm (`cancel_storm.py`) on one stack: no round leaves a Render
call in flight or a prompt in ComfyUI. One round takes longer than the normal suite allows
(about 3 s of work plus a stack), so it runs only here."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack

import pytest

from standins.comfyui.settings import FakeComfyUISettings
from tests.gateway.system import start_system
from tests.reliability.stream_teardown import SKIP_REASON, server_crashes
from tests.soak.cancel_storm import GATEWAY_SETTINGS, STEP_DELAY_S, cancel_storm_round

pytestmark = [pytest.mark.soak, pytest.mark.timeout(300)]

ROUNDS = 10


async def test_ten_rounds_of_thirty_cancelled_calls_leave_nothing_running(
    exit_stack: AsyncExitStack,
) -> None:
    if server_crashes():
        pytest.skip(SKIP_REASON)
    system = await start_system(
        exit_stack, comfyui=FakeComfyUISettings(step_delay_s=STEP_DELAY_S), **GATEWAY_SETTINGS
    )
    rng = random.Random(18)
    for round_ in range(ROUNDS):
        await cancel_storm_round(system, rng, round_)
