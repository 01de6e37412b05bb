"""Fixtures of the gateway tests: the whole system in-process (see ``system.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from tests.gateway.system import RunningGateway, System, start_gateway_in, start_system

StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
async def system(exit_stack: AsyncExitStack) -> System:
    """The default system: one-model Ollama stand-in, fast ComfyUI stand-in, default gateway."""
    return await start_system(exit_stack)


@pytest.fixture
def start_gateway(exit_stack: AsyncExitStack, system: System) -> StartGateway:
    """Starts another gateway with other settings in front of the same services."""

    async def start(**settings: Any) -> RunningGateway:
        return await start_gateway_in(exit_stack, system, **settings)

    return start
