"""Memory a service spends on decoded images: a budget for it, and giving it back.

A 50 KB PNG can decode to 64 MB of pixels, so the bytes a caller sends say nothing about the
memory a request costs. A service that decodes images reserves the decoded size from one
:class:`MemoryBudget` before decoding; a request that finds no room waits briefly, then is
refused with RESOURCE_EXHAUSTED and a retry delay::

    budget = MemoryBudget(256 * MIB, wait_s=2.0, name="vision decode")
    small = await budget.run_in_thread(header.decoded_bytes, lambda: shrink(data))

Freed pixels do not always leave the process: glibc raises its mmap threshold after each
large free, so the next image's blocks come from the heap, where freed memory stays.
:func:`map_large_allocations` pins the threshold (large blocks always mapped, so always
returned) and :func:`return_freed_memory` asks glibc to hand back what the heap holds free.
Both do nothing where the C library is not glibc.

Mapped blocks have a price: each new mapping's pages are faulted in and zeroed on first
touch, and a service that decodes one image per request maps, touches and unmaps the same
few blocks every time. :func:`reuse_image_blocks` has Pillow keep a few freed blocks of
a bounded size for the next image instead.

A service that holds no pixels but passes large messages on (the gateway: a source image
out, a result image in and out again) pays the same price in gRPC's and protobuf's
buffers, whatever glibc's moving threshold does: :func:`keep_message_buffers` serves
message-sized blocks from the heap and keeps a bounded amount of freed heap for the next
request.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from PIL import _imaging as pillow_core

from services.common.errors import ResourceExhaustedError
from services.common.settings import MIB

__all__ = [
    "IMAGE_BLOCK_BYTES",
    "KEPT_IMAGE_BLOCKS",
    "MESSAGE_BLOCK_BYTES",
    "MESSAGE_KEPT_BYTES",
    "MemoryBudget",
    "keep_message_buffers",
    "map_large_allocations",
    "return_freed_memory",
    "reuse_image_blocks",
]

T = TypeVar("T")

# mallopt's parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

KEPT_IMAGE_BLOCKS = 4
"""Freed Pillow blocks kept for reuse: a request's decoded pixels, the resize's
intermediate and the resized copy take three."""
IMAGE_BLOCK_BYTES = 4 * MIB
"""Largest Pillow block: a megapixel RGB image (4 bytes a pixel) fits in one, and what is
kept stays within ``KEPT_IMAGE_BLOCKS × IMAGE_BLOCK_BYTES`` (16 MiB)."""
MESSAGE_BLOCK_BYTES = 16 * MIB
"""Largest block :func:`keep_message_buffers` serves from the heap: a 4-megapixel PNG
result (about 5 MB) and the buffers gRPC assembles it in fit several times over."""
MESSAGE_KEPT_BYTES = 32 * MIB
"""Free heap :func:`keep_message_buffers` keeps for the next request before glibc gives
the rest back."""


class MemoryBudget:
    """Bytes a service may hold for one kind of work at once, shared by its requests.

    A reservation larger than the whole budget is granted when nothing else is reserved,
    so any image the limits accept can be decoded, one at a time.

    Args:
        limit_bytes: Bytes that may be reserved at once.
        wait_s: Longest wait for room before a request is refused.
        name: What the budget is for, in refusals and metrics (e.g. "vision decode").
    """

    def __init__(self, limit_bytes: int, *, wait_s: float, name: str) -> None:
        self._limit = limit_bytes
        self._wait_s = wait_s
        self._name = name
        self._used = 0
        self._changed = asyncio.Condition()

    @property
    def used_bytes(self) -> int:
        """Bytes reserved now."""
        return self._used

    @asynccontextmanager
    async def reserve(self, nbytes: int, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Holds ``nbytes`` of the budget for the duration of the block.

        Args:
            nbytes: The memory the work will hold at most.
            deadline: ``time.monotonic()`` instant after which waiting makes no sense (the
                request's deadline); the wait also stops after ``wait_s``.

        Raises:
            ResourceExhaustedError: No room within the wait; ``RetryInfo`` says when to
                try again.
        """
        wait_s = self._wait_s
        if deadline is not None:
            wait_s = max(0.0, min(wait_s, deadline - time.monotonic()))
        async with self._changed:
            try:
                async with asyncio.timeout(wait_s):
                    await self._changed.wait_for(lambda: self._fits(nbytes))
            except TimeoutError:
                raise ResourceExhaustedError(
                    f"{self._name}: {_mib(self._used)} of {_mib(self._limit)} in use, "
                    f"{_mib(nbytes)} more do not fit; retry shortly",
                    retry_after_s=max(self._wait_s, 0.5),
                    reason="MEMORY_BUDGET",
                    metadata={"budget": self._name, "limit_bytes": str(self._limit)},
                ) from None
            self._used += nbytes
        try:
            yield
        finally:
            async with self._changed:
                self._used -= nbytes
                self._changed.notify_all()

    async def run_in_thread(
        self, nbytes: int, work: Callable[[], T], *, deadline: float | None = None
    ) -> T:
        """Runs ``work`` in a worker thread while holding ``nbytes`` of the budget.

        The reservation lasts until the thread has finished, even when the caller is
        cancelled first: the thread cannot be stopped, and its memory is still in use.

        Args:
            nbytes: The memory ``work`` holds at most.
            work: A blocking function (a decode) that frees what it allocated before it
                returns, except its (small) result.
            deadline: Bounds the wait for room, as in :meth:`reserve`.

        Returns:
            What ``work`` returned.

        Raises:
            ResourceExhaustedError: No room within the wait.
        """
        async with self.reserve(nbytes, deadline=deadline):
            thread = asyncio.ensure_future(asyncio.to_thread(work))
            try:
                return await asyncio.shield(thread)
            except asyncio.CancelledError:
                await asyncio.wait({thread})
                raise

    def _fits(self, nbytes: int) -> bool:
        return self._used == 0 or self._used + nbytes <= self._limit


def _mib(nbytes: int) -> str:
    return f"{nbytes / MIB:.0f} MiB"


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def map_large_allocations(threshold_bytes: int = MIB) -> bool:
    """Serves every allocation of at least ``threshold_bytes`` from its own mapping.

    A mapped block goes back to the system when it is freed; glibc's default moves the
    threshold up to 32 MiB after frees, after which image blocks stay in the heap.

    Args:
        threshold_bytes: Smallest allocation that is mapped.

    Returns:
        Whether the C library took the setting (False off glibc).
    """
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))


def keep_message_buffers(
    block_bytes: int = MESSAGE_BLOCK_BYTES, kept_bytes: int = MESSAGE_KEPT_BYTES
) -> bool:
    """Serves blocks below ``block_bytes`` from the heap and keeps ``kept_bytes`` of it free.

    Receiving a 1.5 MB message, grpc and protobuf copy it through a few transient buffers.
    Each one that is a fresh mapping (or heap glibc has just trimmed) is faulted in and
    zeroed page by page: receiving such a message took 6 ms of CPU, 3 ms with this. Pinned
    here, the next request reuses the heap its predecessor freed. What stays resident is
    bounded: at most ``kept_bytes`` of free memory at the top of each malloc arena, beyond
    the live blocks.

    Args:
        block_bytes: Allocations below this come from the heap (larger ones are mapped,
            and unmapped when freed).
        kept_bytes: Free memory at the top of the heap kept for reuse.

    Returns:
        Whether the C library took both settings (False off glibc).
    """
    return (
        map_large_allocations(block_bytes)
        and _LIBC is not None
        and bool(_LIBC.mallopt(_M_TRIM_THRESHOLD, kept_bytes))
    )


def return_freed_memory() -> None:
    """Gives the free memory of every malloc arena back to the system (glibc only)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def reuse_image_blocks(
    kept_blocks: int = KEPT_IMAGE_BLOCKS, block_bytes: int = IMAGE_BLOCK_BYTES
) -> None:
    """Has Pillow keep up to ``kept_blocks`` freed pixel blocks for the next image.

    Pillow allocates pixels in blocks of at most ``block_bytes`` (16 MiB by default) and
    frees them when an image closes. With :func:`map_large_allocations`, every block is a
    new mapping whose pages the kernel faults in and zeroes on first touch: about a third
    of the CPU time of decoding a megapixel JPEG and downscaling it. Kept blocks are
    reused by the next image instead; at most ``kept_blocks × block_bytes`` stays
    resident (larger images take more, smaller blocks, all of them freed but the kept ones).

    Args:
        kept_blocks: Freed blocks kept (Pillow's ``PILLOW_BLOCKS_MAX``).
        block_bytes: Largest block (Pillow's ``PILLOW_BLOCK_SIZE``).
    """
    pillow_core.set_block_size(block_bytes)
    pillow_core.set_blocks_max(kept_blocks)
