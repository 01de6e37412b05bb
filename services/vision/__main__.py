"""Entry point: ``python -m services.vision``."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.vision.app import create_server
from services.vision.settings import VisionSettings


async def main() -> None:
    """Settings → logging → server → serve until SIGTERM/SIGINT → graceful stop."""
    settings = VisionSettings()
    configure_logging(settings.log_level, settings.log_format, service="vision")
    host = await create_server(settings)
    await host.start()
    await host.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
