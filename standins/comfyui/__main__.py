"""``python -m standins.comfyui --port 8188``: run the ComfyUI stand-in.

Settings come from ``FAKE_COMFYUI_*`` environment variables (see settings.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from standins.comfyui.server import run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings

__all__ = ["main", "parse_args", "serve"]

log = logging.getLogger("fake_comfyui")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--host`` (loopback), ``--port`` (8188), ``--log-level``."""
    parser = argparse.ArgumentParser(
        prog="python -m standins.comfyui",
        description="ComfyUI stand-in (protocol-faithful, for tests and the no-GPU demo).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8188, help="port to listen on")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def serve(host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with run_fake_comfyui(FakeComfyUISettings(), host=host, port=port) as running:
        log.warning(
            "fake ComfyUI stand-in (NOT a real ComfyUI: no models, no GPU, synthetic images) "
            "listening on %s, data dir %s",
            running.url,
            running.fake.data_dir,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m standins.comfyui``."""
    args = parse_args(argv)
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
