"""Entry point: ``python -m services.vision``."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.memory import map_large_allocations, reuse_image_blocks
from services.vision.app import create_server
from services.vision.settings import VisionSettings


async def main() -> None:
    """Settings → logging → server → serve until SIGTERM/SIGINT → graceful stop."""
    # Decoded images come and go in blocks of at most 4 MiB: mapped, they go back to the
    # system when freed, so memory returns to its baseline after a burst of large images;
    # the few one request needs are kept for the next, not mapped and zeroed anew each time.
    map_large_allocations()
    reuse_image_blocks()
    settings = VisionSettings()
    configure_logging(settings.log_level, settings.log_format, service="vision")
    host = await create_server(settings)
    await host.start()
    await host.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
