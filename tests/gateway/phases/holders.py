"""A call that enters a phase and stays until the test lets it go."""

from __future__ import annotations

import asyncio

from gateway.scheduler import Admission, PhaseGate

__all__ = ["Holder"]


class Holder:
    """A task that enters a phase and stays until released."""

    def __init__(self, scheduler: PhaseGate, phase: str, timeout_s: float | None = None):
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.admission: Admission | None = None
        self.task = asyncio.create_task(self._run(scheduler, phase, timeout_s))

    async def _run(self, scheduler: PhaseGate, phase: str, timeout_s: float | None) -> None:
        async with scheduler.phase(phase, timeout_s=timeout_s) as admission:
            self.admission = admission
            self.entered.set()
            await self.release.wait()

    async def finish(self) -> None:
        self.release.set()
        await self.task
