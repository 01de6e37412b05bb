"""Fixtures of the reliability tests: the whole system (``tests/gateway/system.py``) tuned
for fast failure paths.

The services read their retry, polling and timeout knobs from the environment, so the
tests shorten them there: a fallback after three failed model calls then takes tens of
milliseconds instead of seconds, and the render notices a dropped websocket at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from tests.reliability.tuning import FAST_SERVICE_ENVIRONMENT


@pytest.fixture(autouse=True)
def fast_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short retry backoffs and poll intervals for every service started by a test."""
    for name, value in FAST_SERVICE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    """Closes whatever a test started, in reverse order."""
    async with AsyncExitStack() as stack:
        yield stack
