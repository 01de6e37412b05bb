"""The memory budget of decoded images."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from typing import cast

import pytest
from PIL import Image
from PIL import _imaging as pillow_core

from services.common.errors import ResourceExhaustedError
from services.common.memory import (
    IMAGE_BLOCK_BYTES,
    KEPT_IMAGE_BLOCKS,
    MESSAGE_BLOCK_BYTES,
    MemoryBudget,
    reuse_image_blocks,
)
from services.common.settings import MIB
from tests.fresh_python import fresh_python


async def test_a_reservation_beyond_the_budget_is_refused_with_a_retry_delay() -> None:
    budget = MemoryBudget(100, wait_s=0.05, name="test budget")
    async with budget.reserve(60):
        with pytest.raises(ResourceExhaustedError, match="test budget") as refused:
            async with budget.reserve(60):
                pass
    assert refused.value.retry_after_s is not None and refused.value.retry_after_s > 0
    assert budget.used_bytes == 0


async def test_a_reservation_larger_than_the_budget_runs_alone() -> None:
    budget = MemoryBudget(100, wait_s=0.0, name="test budget")
    async with budget.reserve(500):
        assert budget.used_bytes == 500


async def test_a_cancelled_caller_keeps_its_reservation_until_its_thread_ends() -> None:
    budget = MemoryBudget(100, wait_s=0.0, name="test budget")
    release = threading.Event()
    task = asyncio.create_task(budget.run_in_thread(100, release.wait))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0.05)
    # The decode thread still holds its memory: nothing else may start.
    assert budget.used_bytes == 100
    with pytest.raises(ResourceExhaustedError):
        async with budget.reserve(10):
            pass
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.used_bytes == 0


def test_freed_pixel_blocks_are_kept_for_the_next_image_within_the_bound() -> None:
    block_size, blocks_max = pillow_core.get_block_size(), pillow_core.get_blocks_max()
    try:
        reuse_image_blocks()
        before = pillow_core.get_stats()
        for _ in range(3):
            # A megapixel RGB image fits one block; a large one takes many.
            Image.new("RGB", (1152, 864)).close()
        Image.new("RGB", (4096, 4096)).close()
        after = pillow_core.get_stats()
        assert pillow_core.get_block_size() == IMAGE_BLOCK_BYTES
        assert after["reused_blocks"] - before["reused_blocks"] >= 2
        assert after["blocks_cached"] <= KEPT_IMAGE_BLOCKS
    finally:
        pillow_core.set_block_size(block_size)
        pillow_core.set_blocks_max(blocks_max)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc_mallinfo2() -> Callable[[], _MallInfo2] | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    function = getattr(libc, "mallinfo2", None)
    if function is None:
        return None
    function.restype = _MallInfo2
    return cast(Callable[[], _MallInfo2], function)


_mallinfo2 = _glibc_mallinfo2()


_MAPPED_BYTES = """
import json
from services.common.memory import MESSAGE_BLOCK_BYTES, keep_message_buffers
from services.common.settings import MIB
from tests.common.test_memory import _mallinfo2

def mapped(size):
    before = _mallinfo2().hblkhd
    block = bytearray(size)
    grown = _mallinfo2().hblkhd - before
    del block
    return grown

default = mapped(2 * MIB)
kept = keep_message_buffers()
print(json.dumps([default, kept, mapped(2 * MIB), mapped(MESSAGE_BLOCK_BYTES)]))
"""
"""Bytes mapped for a 2 MiB block before and after keep_message_buffers, and for a larger
one, in a fresh interpreter: in a process that ran other tests, glibc's threshold has
moved and freed heap is lying around, and either can serve a block from the heap."""


@pytest.mark.skipif(_mallinfo2 is None, reason="glibc 2.33 or later only")
def test_message_sized_blocks_come_from_the_heap_and_larger_ones_are_mapped() -> None:
    default, kept, message, large = fresh_python(_MAPPED_BYTES)
    assert default >= 2 * MIB  # glibc maps a block this size by default
    assert kept
    assert message == 0  # kept on the heap now
    assert large >= MESSAGE_BLOCK_BYTES
