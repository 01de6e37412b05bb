"""A cancel that lands as an event arrives is never swallowed (CPython gh-86296).

On Python 3.11 ``asyncio.wait_for`` returns the awaited result instead of raising when
the cancel arrives after the result but before the waiting task resumed; a render then
followed a prompt nobody waited for. The waits below use ``asyncio.timeout``. Each test
cancels at every loop turn around the event's arrival, so one of the turns is the race.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.render.comfyui.client import PromptSubscription
from services.render.comfyui.messages import WsMessage
from services.render.renderer import VariantProgress, _Outbox

TURNS = range(6)


async def _cancel_as_event_lands(
    wait: Callable[[], Awaitable[Any]], deliver: Callable[[], None], turns: int
) -> tuple[bool, asyncio.Task[Any]]:
    """Starts ``wait``, delivers an event, lets ``turns`` loop turns pass, cancels.

    Returns:
        Whether the cancel was requested while the task was still running, and the task.
    """

    async def waiting() -> Any:
        return await wait()

    task = asyncio.create_task(waiting())
    for _ in range(3):
        await asyncio.sleep(0)  # the task is now waiting
    deliver()
    for _ in range(turns):
        await asyncio.sleep(0)
    requested = task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return requested, task


@pytest.mark.parametrize("turns", TURNS)
async def test_a_subscription_wait_cancelled_as_a_message_lands_ends_cancelled(
    turns: int,
) -> None:
    subscription = PromptSubscription("p")
    message = WsMessage("progress", {"prompt_id": "p", "value": 1, "max": 4})
    requested, task = await _cancel_as_event_lands(
        lambda: subscription.next(30.0), lambda: subscription.events.put_nowait(message), turns
    )
    if requested:
        assert task.cancelled()
        assert subscription.events.qsize() == 1  # the message stays for whoever asks next
    else:
        assert task.result() == message


@pytest.mark.parametrize("turns", TURNS)
async def test_an_outbox_wait_cancelled_as_an_event_lands_ends_cancelled(turns: int) -> None:
    outbox = _Outbox()
    event = VariantProgress(0, 1, 4)
    requested, task = await _cancel_as_event_lands(
        lambda: outbox.get(30.0), lambda: outbox.put(event), turns
    )
    if requested:
        assert task.cancelled()
    else:
        assert task.result() == event
