"""Entry point: ``python -m services.render``."""

from __future__ import annotations

import asyncio

from services.common.logs import configure_logging
from services.common.memory import keep_message_buffers, reuse_image_blocks
from services.render.app import create_server
from services.render.settings import RenderSettings

RESULT_IMAGE_BLOCKS = 16
"""Freed Pillow blocks (4 MiB each) the render keeps: at most 64 MiB resident."""


async def main() -> None:
    """Settings → logging → server → serve until SIGTERM/SIGINT → graceful stop."""
    # Sources in, ComfyUI's images, the encoded results out: their buffers are reused
    # from the heap, not mapped and zeroed anew per message. Finishing a 4-megapixel
    # result (decode, resize, PNG filter) holds up to ~48 MiB of pixels at once; freed
    # Pillow blocks are kept for the next result rather than mapped and zeroed again.
    keep_message_buffers()
    reuse_image_blocks(kept_blocks=RESULT_IMAGE_BLOCKS)
    settings = RenderSettings()
    configure_logging(settings.log_level, settings.log_format, service="render")
    host = await create_server(settings)
    await host.start()
    await host.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
