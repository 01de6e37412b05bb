"""Fixtures of the soak: the services tuned for fast failure paths, as in the reliability tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from tests.reliability.tuning import FAST_SERVICE_ENVIRONMENT


@pytest.fixture(autouse=True)
def fast_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short retry backoffs and poll intervals for every service started by the soak."""
    for name, value in FAST_SERVICE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def exit_stack() -> AsyncIterator[AsyncExitStack]:
    """Closes whatever a test started, in reverse order."""
    async with AsyncExitStack() as stack:
        yield stack
