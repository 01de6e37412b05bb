"""Entry point: ``python -m services.render``."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.memory import keep_message_buffers
from services.render.app import create_server
from services.render.settings import RenderSettings


async def main() -> None:
    """Settings → logging → server → serve until SIGTERM/SIGINT → graceful stop."""
    # Sources in, ComfyUI's images, the encoded results out: their buffers are reused
    # from the heap, not mapped and zeroed anew per message.
    keep_message_buffers()
    settings = RenderSettings()
    configure_logging(settings.log_level, settings.log_format, service="render")
    host = await create_server(settings)
    await host.start()
    await host.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
