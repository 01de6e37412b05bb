"""Entry point: ``python -m services.vision``."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.memory import map_large_allocations
from services.vision.app import create_server
from services.vision.settings import VisionSettings


async def main() -> None:
    """Settings → logging → server → serve until SIGTERM/SIGINT → graceful stop."""
    # Decoded images come and go in 16 MiB blocks: mapped, they go back to the system when
    # freed, so memory returns to its baseline after a burst of large images.
    map_large_allocations()
    settings = VisionSettings()
    configure_logging(settings.log_level, settings.log_format, service="vision")
    host = await create_server(settings)
    await host.start()
    await host.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
