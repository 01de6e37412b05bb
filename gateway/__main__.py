"""Entry point: ``python -m gateway``."""

from __future__ import annotations

import asyncio

from gateway.app import create_server
from gateway.settings import GatewaySettings
from services.common.logs import configure_logging
from services.common.memory import keep_message_buffers


async def main() -> None:
    """Settings → logging → server → serve until SIGTERM/SIGINT → graceful stop."""
    # Every request passes a source image and its results through: their buffers are
    # reused from the heap, not mapped and zeroed anew per message.
    keep_message_buffers()
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format, service="gateway")
    host = await create_server(settings)
    await host.start()
    await host.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
