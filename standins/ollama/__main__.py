"""Run the Ollama stand-in until SIGINT or SIGTERM: ``python -m standins.ollama --port 11434``.

Settings come from ``FAKE_OLLAMA_*`` environment variables, host and port from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from standins.ollama.server import run_fake_ollama
from standins.ollama.settings import FakeOllamaSettings

log = logging.getLogger("standins.ollama")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``--host`` and ``--port``."""
    parser = argparse.ArgumentParser(
        prog="python -m standins.ollama",
        description="Stand-in for the Ollama HTTP API: scripted answers, no models, no GPU.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=11434, help="port to bind (11434; 0 = any)")
    return parser.parse_args(argv)


async def serve(settings: FakeOllamaSettings, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with run_fake_ollama(settings, host=host, port=port) as running:
        log.info(
            "fake_ollama: STAND-IN for the Ollama API (no real models, no GPU; answers are "
            "scripted or schema placeholders) listening on %s; models %s, %d resident at once",
            running.url,
            ", ".join(settings.models),
            settings.max_loaded_models,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    settings = FakeOllamaSettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(serve(settings, args.host, args.port))


if __name__ == "__main__":
    main()
