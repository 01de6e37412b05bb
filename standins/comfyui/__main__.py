"""``python -m standins.comfyui --port 8188``: run the ComfyUI stand-in until SIGINT or SIGTERM
(settings from ``FAKE_COMFYUI_*`` environment variables)."""

from __future__ import annotations

import functools

from standins import _server
from standins.comfyui.server import run_fake_comfyui
from standins.comfyui.settings import FakeComfyUISettings

__all__ = ["main", "parse_args"]

parse_args = functools.partial(_server.parse_args, "standins.comfyui", 8188)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    _server.serve(
        parse_args(argv),
        lambda host, port: run_fake_comfyui(FakeComfyUISettings(), host=host, port=port),
    )


if __name__ == "__main__":
    main()
